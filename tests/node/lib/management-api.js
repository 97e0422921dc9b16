// A stand-in for the part of Voximplant's Management API that voxd uses: StartScenarios, a
// form POST to <api>/StartScenarios/ signed with a service account's JWT (RS256; checked here
// with the account's public key: kid, iss, iat, exp). A valid request starts a VoxEngine
// session with the request's script_custom_data, as Voximplant runs the rule's scenario; an
// invalid one gets Voximplant's error JSON. Also makes the service account's key file.
//
// For scripts/voximplant-deploy it also keeps an account in memory (applications, scenarios,
// rules, phone numbers) and answers the methods that manage it, with the parameters and
// result fields of Voximplant's Management API reference
// (https://voximplant.com/docs/references/httpapi: applications, scenarios, rules,
// phonenumbers; structures ApplicationInfoType, ScenarioInfoType, RuleInfoType,
// AttachedPhoneInfoType) and of its typed client @voximplant/apiclient-nodejs (src/index.ts,
// TypeTransformer.ts): GetApplications, AddApplication, GetScenarios, AddScenario,
// SetScenarioInfo, GetRules, AddRule, SetRuleInfo, BindScenario, GetPhoneNumbers,
// BindPhoneNumberToApplication. Each is a POST to <api>/<Method>/ with form parameters, signed
// with the JWT; lists answer {result: [...], total_count, count}, writes {result: 1, ...},
// failures {error: {msg, code}}.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

/** A new service account: its key file in `dir` (Voximplant's layout) and its public key. */
function serviceAccount(dir, accountId) {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyId = crypto.randomUUID();
  const credentials = path.join(dir, 'credentials.json');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' });
  fs.writeFileSync(credentials, JSON.stringify({ account_email: 'dev@example.com', account_id: accountId, key_id: keyId, private_key: pem }));
  return { accountId, keyId, publicKey, credentials };
}

/** What is wrong with the JWT of `authorization` for `account` ([] when nothing is). */
function checkJwt(authorization, account) {
  const m = /^Bearer ([\w-]+)\.([\w-]+)\.([\w-]+)$/.exec(authorization || '');
  if (!m) return [`Authorization is not "Bearer <JWT>": ${JSON.stringify(authorization)}`];
  const [, h, c, s] = m;
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const claims = JSON.parse(Buffer.from(c, 'base64url'));
  const problems = [];
  if (header.alg !== 'RS256') problems.push(`alg ${header.alg}`);
  if (header.kid !== account.keyId) problems.push(`kid ${header.kid}`);
  if (claims.iss !== account.accountId) problems.push(`iss ${JSON.stringify(claims.iss)}`);
  const now = Math.floor(Date.now() / 1000);
  if (!(claims.iat <= now && now < claims.exp && claims.exp - claims.iat <= 3600)) problems.push(`iat ${claims.iat} exp ${claims.exp} now ${now}`);
  if (!crypto.verify('sha256', Buffer.from(`${h}.${c}`), account.publicKey, Buffer.from(s, 'base64url'))) problems.push('bad signature');
  return problems;
}

/** The account's management methods that change it (the rest only read). */
const WRITES = new Set(['AddApplication', 'AddScenario', 'SetScenarioInfo', 'AddRule', 'SetRuleInfo', 'BindScenario', 'BindPhoneNumberToApplication']);

class ManagementApi {
  /** `onStart(customData)` runs the rule's scenario for a valid StartScenarios. `accountName`
   * and `phones` (numbers rented in the account, E.164 digits without "+") seed the account
   * the management methods work on. */
  constructor({ account, ruleId, onStart, accountName = 'voxdtest', phones = [] }) {
    this.account = account;
    this.ruleId = ruleId;
    this.onStart = onStart;
    this.requests = []; // {method, path, contentType, form, problems}
    this.state = {
      accountName,
      nextId: 1000,
      applications: [], // {application_id, application_name, modified, secure_record_storage}
      scenarios: [], // {scenario_id, scenario_name, scenario_script, application_id, modified}
      rules: [], // {rule_id, rule_name, rule_pattern, application_id, scenario_ids, modified}
      phones: phones.map((n, i) => ({ phone_id: 500 + i, phone_number: n, application_id: null, rule_id: null })),
    };
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  /** The management methods called so far, in order (their names). */
  methods() {
    return this.requests.map((r) => /^\/platform_api\/(\w+)\/$/.exec(r.path)).map((m) => (m ? m[1] : '?'));
  }

  /** The methods called so far that change the account. */
  writes() {
    return this.methods().filter((m) => WRITES.has(m));
  }

  /** Listens on a free loopback port; returns the API's base URL (voximplant.api_url). */
  listen() {
    return new Promise((resolve) => {
      this.server.listen(0, '127.0.0.1', () => {
        this.url = `http://127.0.0.1:${this.server.address().port}/platform_api`;
        resolve(this.url);
      });
    });
  }

  async handle(req, res) {
    let body = '';
    for await (const chunk of req) body += chunk;
    const form = Object.fromEntries(new URLSearchParams(body));
    const record = { method: req.method, path: req.url, contentType: req.headers['content-type'], form, problems: [] };
    this.requests.push(record);
    const p = record.problems;
    const method = /^\/platform_api\/(\w+)\/$/.exec(req.url);
    if (req.method === 'POST' && method && method[1] !== 'StartScenarios') {
      this.manage(method[1], form, record, req, res);
      return;
    }
    if (req.method !== 'POST' || req.url !== '/platform_api/StartScenarios/') p.push(`${req.method} ${req.url}`);
    if (record.contentType !== 'application/x-www-form-urlencoded') p.push(`content type ${record.contentType}`);
    if (form.rule_id !== String(this.ruleId)) p.push(`rule_id ${form.rule_id}`);
    const data = form.script_custom_data;
    if (typeof data !== 'string' || Buffer.byteLength(data) > 200) p.push(`script_custom_data ${JSON.stringify(data)}`);
    p.push(...checkJwt(req.headers.authorization, this.account));
    res.setHeader('Content-Type', 'application/json');
    if (p.length) {
      res.end(JSON.stringify({ error: { code: 100, msg: p.join('; ') } }));
      return;
    }
    const session = this.requests.length;
    res.end(JSON.stringify({
      result: 1,
      media_session_access_url: `http://media.voximplant.test/request/${session}`,
      media_session_access_secure_url: `https://media.voximplant.test/request/${session}`,
      call_session_history_id: 1000 + session,
    }));
    this.onStart(data);
  }

  /** The account's management methods (see the top of the file). */
  manage(method, form, record, req, res) {
    const p = record.problems;
    res.setHeader('Content-Type', 'application/json');
    const reply = (o) => res.end(JSON.stringify(o));
    const error = (code, msg) => {
      p.push(msg);
      reply({ error: { code, msg } });
    };
    if (record.contentType !== 'application/x-www-form-urlencoded') p.push(`content type ${record.contentType}`);
    p.push(...checkJwt(req.headers.authorization, this.account));
    // Voximplant answers an unsigned or badly signed request with code 100 (authorization).
    if (p.length) return error(100, `Authorization failed: ${p.join('; ')}`);
    const st = this.state;
    const now = () => new Date().toISOString().replace('T', ' ').slice(0, 19);
    const id = () => ++st.nextId;
    const bool = (v, dflt) => (v === undefined ? dflt : v === 'true' || v === '1');
    const list = (items) => reply({ result: items, total_count: items.length, count: items.length });
    const fullName = (n) => (n.includes('.') ? n : `${n}.${st.accountName}.voximplant.com`);
    const app = () => {
      const a = form.application_id !== undefined
        ? st.applications.find((x) => String(x.application_id) === form.application_id)
        : form.application_name !== undefined ? st.applications.find((x) => x.application_name === fullName(form.application_name)) : undefined;
      return a;
    };
    const appInfo = (a) => ({ application_id: a.application_id, application_name: a.application_name, modified: a.modified, secure_record_storage: a.secure_record_storage });
    const scenarioInfo = (s, withScript) => ({
      scenario_id: s.scenario_id, scenario_name: s.scenario_name, modified: s.modified, parent: false,
      ...(withScript ? { scenario_script: s.scenario_script } : {}),
    });
    const ruleInfo = (r, withScenarios) => ({
      rule_id: r.rule_id, application_id: r.application_id, rule_name: r.rule_name, rule_pattern: r.rule_pattern,
      rule_pattern_exclude: '', video_conference: false, modified: r.modified,
      ...(withScenarios ? { scenarios: r.scenario_ids.map((sid) => scenarioInfo(st.scenarios.find((s) => s.scenario_id === sid), false)) } : {}),
    });
    const checkPattern = (pattern) => {
      try {
        new RegExp(pattern);
        return true;
      } catch {
        return false;
      }
    };
    switch (method) {
      case 'GetApplications': {
        let apps = st.applications;
        if (form.application_id !== undefined) apps = apps.filter((a) => String(a.application_id) === form.application_id);
        if (form.application_name !== undefined) apps = apps.filter((a) => a.application_name === fullName(form.application_name));
        return list(apps.map(appInfo));
      }
      case 'AddApplication': {
        const name = form.application_name || '';
        if (!/^[a-z0-9][a-z0-9-]{0,39}$/i.test(name)) return error(121, `Invalid application_name ${JSON.stringify(name)}`);
        if (st.applications.some((a) => a.application_name === fullName(name))) return error(122, `The application ${name} already exists`);
        const a = { application_id: id(), application_name: fullName(name), modified: now(), secure_record_storage: bool(form.secure_record_storage, false) };
        st.applications.push(a);
        return reply({ result: 1, ...appInfo(a) });
      }
      case 'GetScenarios': {
        let sc = st.scenarios;
        if (form.application_id !== undefined) sc = sc.filter((s) => String(s.application_id) === form.application_id);
        if (form.scenario_id !== undefined) sc = sc.filter((s) => String(s.scenario_id) === form.scenario_id);
        if (form.scenario_name !== undefined) sc = sc.filter((s) => s.scenario_name === form.scenario_name);
        return list(sc.map((s) => scenarioInfo(s, bool(form.with_script, false))));
      }
      case 'AddScenario': {
        const name = form.scenario_name || '';
        const script = form.scenario_script || '';
        if (!name || name.length >= 30) return error(125, `Invalid scenario_name ${JSON.stringify(name)}: the length must be less than 30`);
        if (Buffer.byteLength(script) >= 128 * 1024) return error(125, 'scenario_script: the length must be less than 128 KB');
        const a = app();
        if ((form.application_id !== undefined || form.application_name !== undefined) && !a) return error(123, 'The application is not found');
        const applicationId = a ? a.application_id : null; // none: the Shared folder
        const same = st.scenarios.find((s) => s.scenario_name === name && s.application_id === applicationId);
        if (same && !bool(form.rewrite, false)) return error(125, `The scenario ${name} already exists`);
        const s = same || { scenario_id: id(), scenario_name: name, application_id: applicationId };
        Object.assign(s, { scenario_script: script, modified: now() });
        if (!same) st.scenarios.push(s);
        return reply({ result: 1, scenario_id: s.scenario_id });
      }
      case 'SetScenarioInfo': {
        const s = st.scenarios.find((x) => String(x.scenario_id) === form.scenario_id);
        if (!s) return error(126, `The scenario ${form.scenario_id} is not found`);
        if (form.scenario_name !== undefined) s.scenario_name = form.scenario_name;
        if (form.scenario_script !== undefined) {
          if (Buffer.byteLength(form.scenario_script) >= 128 * 1024) return error(125, 'scenario_script: the length must be less than 128 KB');
          s.scenario_script = form.scenario_script;
        }
        s.modified = now();
        return reply({ result: 1 });
      }
      case 'GetRules': {
        const a = app();
        if (!a) return error(123, 'The application is not found');
        let rules = st.rules.filter((r) => r.application_id === a.application_id);
        if (form.rule_id !== undefined) rules = rules.filter((r) => String(r.rule_id) === form.rule_id);
        if (form.rule_name !== undefined) rules = rules.filter((r) => r.rule_name === form.rule_name);
        return list(rules.map((r) => ruleInfo(r, bool(form.with_scenarios, false))));
      }
      case 'AddRule': {
        const a = app();
        if (!a) return error(123, 'The application is not found');
        const name = form.rule_name || '';
        if (!name) return error(127, 'rule_name is required');
        if (!checkPattern(form.rule_pattern || '')) return error(127, `Invalid rule_pattern ${JSON.stringify(form.rule_pattern)}`);
        if (st.rules.some((r) => r.application_id === a.application_id && r.rule_name === name)) return error(127, `The rule ${name} already exists`);
        const ids = (form.scenario_id || '').split(';').filter(Boolean).map(Number);
        for (const sid of ids) if (!st.scenarios.some((s) => s.scenario_id === sid)) return error(126, `The scenario ${sid} is not found`);
        const r = { rule_id: id(), rule_name: name, rule_pattern: form.rule_pattern, application_id: a.application_id, scenario_ids: ids, modified: now() };
        st.rules.push(r);
        return reply({ result: 1, rule_id: r.rule_id });
      }
      case 'SetRuleInfo': {
        const r = st.rules.find((x) => String(x.rule_id) === form.rule_id);
        if (!r) return error(128, `The rule ${form.rule_id} is not found`);
        if (form.rule_pattern !== undefined) {
          if (!checkPattern(form.rule_pattern)) return error(127, `Invalid rule_pattern ${JSON.stringify(form.rule_pattern)}`);
          r.rule_pattern = form.rule_pattern;
        }
        if (form.rule_name !== undefined) r.rule_name = form.rule_name;
        r.modified = now();
        return reply({ result: 1 });
      }
      case 'BindScenario': {
        const r = st.rules.find((x) => String(x.rule_id) === form.rule_id);
        if (!r) return error(128, `The rule ${form.rule_id} is not found`);
        const ids = (form.scenario_id || '').split(';').filter(Boolean).map(Number);
        for (const sid of ids) if (!st.scenarios.some((s) => s.scenario_id === sid)) return error(126, `The scenario ${sid} is not found`);
        if (bool(form.bind, true)) for (const sid of ids) { if (!r.scenario_ids.includes(sid)) r.scenario_ids.push(sid); }
        else r.scenario_ids = r.scenario_ids.filter((sid) => !ids.includes(sid));
        return reply({ result: 1 });
      }
      case 'GetPhoneNumbers': {
        let phones = st.phones;
        if (form.phone_number !== undefined) {
          const want = form.phone_number.split(';');
          phones = phones.filter((n) => want.includes(n.phone_number));
        }
        return list(phones.map((n) => {
          const a = st.applications.find((x) => x.application_id === n.application_id);
          const r = st.rules.find((x) => x.rule_id === n.rule_id);
          return {
            phone_id: n.phone_id, phone_number: n.phone_number, phone_country_code: 'RU', deactivated: false, canceled: false,
            ...(a ? { application_id: a.application_id, application_name: a.application_name } : {}),
            ...(r ? { rule_id: r.rule_id, rule_name: r.rule_name } : {}),
          };
        }));
      }
      case 'BindPhoneNumberToApplication': {
        const n = st.phones.find((x) => (form.phone_id !== undefined ? String(x.phone_id) === form.phone_id : x.phone_number === form.phone_number));
        if (!n) return error(131, 'The phone number is not found');
        if (!bool(form.bind, true)) {
          Object.assign(n, { application_id: null, rule_id: null });
          return reply({ result: 1 });
        }
        const a = app();
        if (!a) return error(123, 'The application is not found');
        let ruleId = null;
        if (form.rule_id !== undefined) {
          const r = st.rules.find((x) => String(x.rule_id) === form.rule_id && x.application_id === a.application_id);
          if (!r) return error(128, `The rule ${form.rule_id} is not found in the application`);
          ruleId = r.rule_id;
        }
        Object.assign(n, { application_id: a.application_id, rule_id: ruleId });
        return reply({ result: 1 });
      }
      default:
        return error(185, `Unknown method ${method} (not in this stand-in)`);
    }
  }

  close() {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(r));
  }
}

module.exports = { ManagementApi, serviceAccount };
