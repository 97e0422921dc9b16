#!/usr/bin/env node
// scripts/voximplant-deploy: wires a Voximplant account to voxd in one command. See USAGE.
//
// It fills the settings block at the top of scenarios/*.js from voxd's config, writes them in
// @voximplant/voxengine-ci's layout (voxfiles/applications/<app>/application.config.json and
// rules.config.json, voxfiles/scenarios/src/<name>.voxengine.js), and makes the account match
// through Voximplant's Management API: the application, the scenarios (created, updated when
// their text differs), the inbound rule (the number's, or `.*`) and the outbound rule (for
// StartScenarios, voxd's voximplant.rule_id), and the phone number bound to the inbound rule.
// Idempotent; --dry-run prints the plan and calls no method that writes.
//
// Why not voxengine-ci for the calls: it builds its client as `new VoximplantApiClient(file)`
// with no host, and @voximplant/apiclient-nodejs always posts to `https://<host>/platform_api`,
// so it cannot be pointed at voxd.toml's voximplant.api_url or at a test stand-in; it does not
// bind phone numbers; and its `upload` first needs `init`, which downloads the whole account.
// The requests here are the ones the Management API reference documents (a POST to
// <api_url>/<Method>/ with form parameters, answered {"result": …} or {"error": {"msg",
// "code"}}; https://voximplant.com/docs/references/httpapi), signed like voxd's own
// StartScenarios: a service account's RS256 JWT (iss = account_id, kid = key_id, 64 s).
// The layout it writes is voxengine-ci's, so `npx @voximplant/voxengine-ci upload
// --application-name <app>` works from it too (with VOX_CI_ROOT_PATH pointing at it).
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');

const TOML = require('@iarna/toml');

const REPO = path.resolve(__dirname, '..', '..');
const DEFAULT_API = 'https://api.voximplant.com/platform_api';

const USAGE = `Usage: scripts/voximplant-deploy [options]

Uploads voxd's VoxEngine scenarios (scenarios/) to your Voximplant account with their
settings filled from voxd's config, and creates the application, the routing rules and the
phone number's binding. Run it again after changing voxd's config: only what differs changes.

  --config FILE          voxd's config (default /etc/voxd/voxd.toml)
  --credentials-dir DIR  voxd's systemd credentials (default $CREDENTIALS_DIRECTORY or
                         /etc/voxd/credentials): server.scenario_token is read from here when
                         voxd.toml's token keys are empty
  --credentials FILE     the service account's key JSON (default: voximplant.credentials)
  --application NAME     the Voximplant application (default voxd)
  --phone +7...          a number rented in the account: its calls run the scenario
                         (default: none; the rule's pattern is .*)
  --scenario KIND        streaming (default) or recording: what inbound calls run
  --no-outbound          skip outbound.js and its rule (voxd's POST /calls)
  --voxd-url URL         voxd's public https address (default server.public_url); repeat it
                         to list several voxd servers
  --language ru|en       the language of Voximplant's own phrases (default: stt.language or
                         conversation.language)
  --voice VOICE          a VoiceList voice for them, e.g. VoiceList.Yandex.Neural.ru_RU_alena
  --caller-id +7...      CALLER_ID: the number transfers and outbound calls come from
  --api-url URL          the Management API (default voximplant.api_url, or ${DEFAULT_API})
  --voxfiles DIR         where the voxengine-ci layout is written (default ./voxfiles)
  --dry-run              print the plan; change nothing
  -h, --help             this text
`;

class Fatal extends Error {}

function fail(msg) {
  throw new Fatal(msg);
}

// ---- voxd's config ---------------------------------------------------------------------------

/** voxd's settings as voxd itself resolves them: VOXD_<SECTION>_<KEY>, then a credential file
 * named <section>.<key> (secrets only), then voxd.toml. */
function voxdSettings(configPath, credentialsDir) {
  let text;
  try {
    text = fs.readFileSync(configPath, 'utf8');
  } catch (e) {
    if (e.code === 'ENOENT') fail(`voxd's config ${configPath} does not exist (--config FILE)`);
    if (e.code === 'EACCES') fail(`cannot read ${configPath}: run as root (sudo)`);
    throw e;
  }
  let toml;
  try {
    toml = TOML.parse(text);
  } catch (e) {
    fail(`${configPath} is not valid TOML: ${e.message.split('\n')[0]}`);
  }
  const SECRETS = new Set(['server.token', 'server.scenario_token', 'voximplant.credentials', 'voximplant.api_key']);
  const get = (section, key) => {
    const env = process.env[`VOXD_${section}_${key}`.toUpperCase()];
    if (env !== undefined && env !== '') return { value: env, from: `$VOXD_${section}_${key}`.toUpperCase() };
    const name = `${section}.${key}`;
    if (SECRETS.has(name) && credentialsDir) {
      const file = path.join(credentialsDir, name);
      try {
        const value = fs.readFileSync(file, 'utf8').trim();
        if (value) return { value, from: file };
      } catch (e) {
        if (e.code === 'EACCES') fail(`cannot read ${file}: run as root (sudo)`);
        if (e.code !== 'ENOENT' && e.code !== 'ENOTDIR') throw e;
      }
    }
    const v = toml[section] ? toml[section][key] : undefined;
    return { value: v === undefined || v === null ? '' : v, from: configPath };
  };
  return { get, dir: path.dirname(path.resolve(configPath)) };
}

/** JavaScript source for a string (single-quoted, as the scenarios write them). */
function jsString(s) {
  if (/[\u0000-\u001f\u2028\u2029]/.test(s)) fail(`a value for the scenarios has a control character: ${JSON.stringify(s.slice(0, 20))}…`);
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** The values each scenario's settings block gets. */
function scenarioValues(opts, settings, configPath) {
  const notes = [];
  let urls = opts['voxd-url'] && opts['voxd-url'].length ? opts['voxd-url'] : [];
  if (!urls.length) {
    const pub = String(settings.get('server', 'public_url').value || '');
    if (!pub) fail(`server.public_url is empty in ${configPath}: set it to voxd's public https address (e.g. https://voxd.example.com), or pass --voxd-url`);
    urls = [pub];
  }
  urls = urls.map((u) => u.replace(/\/+$/, ''));
  for (const u of urls) {
    if (!/^https?:\/\/[^\s/]+/.test(u)) fail(`voxd's URL ${JSON.stringify(u)} is not an http(s) address`);
    if (!u.startsWith('https://')) notes.push(`warning: ${u} is not https: Voximplant's cloud needs https (and wss://) with a valid certificate`);
  }

  let token = settings.get('server', 'scenario_token');
  let tokenKey = 'server.scenario_token';
  if (!token.value) {
    token = settings.get('server', 'token');
    tokenKey = 'server.token';
  }
  if (!token.value) {
    fail(`no token for the scenarios: server.scenario_token and server.token are empty in ${configPath}` +
      (opts['credentials-dir'] ? ` and ${path.join(opts['credentials-dir'], 'server.scenario_token')} does not exist` : '') +
      ' (scripts/install writes it to /etc/voxd/credentials/server.scenario_token; --credentials-dir DIR)');
  }
  notes.push(`token: ${tokenKey} from ${token.from} (not shown)`);

  let language = opts.language;
  if (!language) {
    for (const [s, k] of [['stt', 'language'], ['conversation', 'language']]) {
      const v = String(settings.get(s, k).value || '').toLowerCase().split(/[-_]/)[0];
      if (v === 'ru' || v === 'en') {
        language = v;
        break;
      }
    }
  }
  if (language && language !== 'ru' && language !== 'en') fail(`--language ${language}: the scenarios speak ru or en`);
  if (!language) notes.push("language: neither stt.language nor conversation.language is ru or en; the scenarios keep their own ('ru'; --language to choose)");
  if (opts.voice && !/^VoiceList(\.[A-Za-z0-9_]+)+$/.test(opts.voice)) fail(`--voice ${opts.voice} is not a VoiceList voice (e.g. VoiceList.Default.ru_RU_Female)`);
  if (opts['caller-id'] !== undefined && opts['caller-id'] !== '' && !/^\+[1-9][0-9]{6,14}$/.test(opts['caller-id'])) fail(`--caller-id ${opts['caller-id']} is not an E.164 number (+7...)`);

  const tag = String(settings.get('voximplant_stream', 'tag').value || '');
  return { urls, token: String(token.value), language, voice: opts.voice, callerId: opts['caller-id'], tag, notes };
}

/** The scenario's text with its settings filled: each `const NAME = …;` line replaced. */
function fillScenario(file, v) {
  let text = fs.readFileSync(file, 'utf8');
  const set = (name, literal, required) => {
    const re = new RegExp(`^const ${name} = .*;$`, 'gm');
    const n = (text.match(re) || []).length;
    if (n === 0 && !required) return;
    if (n !== 1) fail(`${file}: expected one line "const ${name} = …;", found ${n}`);
    text = text.replace(re, () => `const ${name} = ${literal};`);
  };
  const has = (name) => new RegExp(`^const ${name} = `, 'm').test(text);
  if (has('VOXD_URLS')) set('VOXD_URLS', `[${v.urls.map(jsString).join(', ')}]`, true);
  else set('VOXD_URL', jsString(v.urls[0]), true);
  set('VOXD_TOKEN', jsString(v.token), true);
  if (v.language) set('LANGUAGE', jsString(v.language), false);
  set('VOXD_TAG', jsString(v.tag), false);
  if (v.callerId !== undefined) set('CALLER_ID', jsString(v.callerId), false);
  if (v.voice) {
    const re = /^const VOICE = (\{[\s\S]*?\}\[LANGUAGE\]|VoiceList[\w.]*);$/m;
    if (!re.test(text)) fail(`${file}: no "const VOICE = …;" to set`);
    text = text.replace(re, () => `const VOICE = ${v.voice};`);
  }
  return text;
}

// ---- the Management API ----------------------------------------------------------------------

function loadServiceAccount(file) {
  let key;
  try {
    key = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    if (e.code === 'ENOENT') fail(`the service account key ${file} does not exist (--credentials FILE)`);
    if (e.code === 'EACCES') fail(`cannot read ${file}: run as root (sudo)`);
    fail(`${file} is not a service account key: ${e.message}`);
  }
  if (!key || !key.account_id || !key.key_id || !key.private_key) fail(`${file} is not a service account key: it needs account_id, key_id and private_key (Settings → Service accounts → generate a key)`);
  let privateKey;
  try {
    privateKey = crypto.createPrivateKey(key.private_key);
  } catch (e) {
    fail(`${file}: its private_key cannot be read (${e.message})`);
  }
  return { accountId: key.account_id, keyId: key.key_id, privateKey, file };
}

/** A service account's Authorization header: RS256 JWT, iss = account_id, kid = key_id. */
function bearer(sa) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const head = `${b64({ alg: 'RS256', typ: 'JWT', kid: sa.keyId })}.${b64({ iss: sa.accountId, iat: now, exp: now + 64 })}`;
  return `Bearer ${head}.${crypto.sign('sha256', Buffer.from(head), sa.privateKey).toString('base64url')}`;
}

const WRITES = new Set(['AddApplication', 'AddScenario', 'SetScenarioInfo', 'AddRule', 'SetRuleInfo', 'BindScenario', 'BindPhoneNumberToApplication']);

class Api {
  constructor({ url, auth, dryRun, timeoutMs }) {
    this.url = url.replace(/\/+$/, '');
    this.auth = auth; // {sa} or {accountId, apiKey}
    this.dryRun = dryRun;
    this.timeoutMs = timeoutMs;
  }

  async call(method, params) {
    if (this.dryRun && WRITES.has(method)) throw new Error(`internal: ${method} in a dry run`);
    const body = new URLSearchParams();
    const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
    if (this.auth.sa) headers.Authorization = bearer(this.auth.sa);
    else {
      body.append('account_id', String(this.auth.accountId));
      body.append('api_key', this.auth.apiKey);
    }
    for (const [k, v] of Object.entries(params)) if (v !== undefined) body.append(k, String(v));
    let res;
    try {
      res = await fetch(`${this.url}/${method}/`, { method: 'POST', headers, body, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (e) {
      fail(`the Management API at ${this.url} cannot be reached (${method}): ${e.cause ? e.cause.message || e.cause.code : e.message}`);
    }
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      fail(`${method}: the Management API answered HTTP ${res.status} with no JSON: ${text.slice(0, 200)}`);
    }
    if (json.error) {
      const { code, msg } = json.error;
      if (code === 100 || /authori[sz]|credential|jwt|token|api.?key/i.test(msg || '')) {
        fail(`Voximplant refused the credentials (${this.auth.sa ? this.auth.sa.file : 'voximplant.account_id + api_key'}): ${msg} (code ${code}). ` +
          'Check the key file (Settings → Service accounts; the account needs the Developer role, or Owner/Admin)');
      }
      fail(`${method}: ${msg} (code ${code})`);
    }
    return json;
  }
}

// ---- the plan --------------------------------------------------------------------------------

const digits = (phone) => String(phone).replace(/[^0-9]/g, '');

async function deploy(opts) {
  const configPath = opts.config;
  const settings = voxdSettings(configPath, opts['credentials-dir']);
  const values = scenarioValues(opts, settings, configPath);
  const appName = opts.application;
  if (!/^[A-Za-z0-9][A-Za-z0-9-]{0,39}$/.test(appName)) fail(`--application ${appName}: letters, digits and dashes only`);
  if (!['streaming', 'recording'].includes(opts.scenario)) fail(`--scenario ${opts.scenario}: streaming or recording`);
  let phone;
  if (opts.phone) {
    if (!/^\+?[1-9][0-9]{6,14}$/.test(opts.phone.replace(/[\s()-]/g, ''))) fail(`--phone ${opts.phone} is not a phone number in E.164 (+7...)`);
    phone = digits(opts.phone);
  }

  // Sign-in: --credentials, voximplant.credentials, or voximplant.account_id + api_key.
  let auth;
  let credFile = opts.credentials || String(settings.get('voximplant', 'credentials').value || '');
  if (credFile) {
    if (!opts.credentials) credFile = path.resolve(settings.dir, credFile);
    auth = { sa: loadServiceAccount(credFile) };
  } else {
    const accountId = settings.get('voximplant', 'account_id').value;
    const apiKey = settings.get('voximplant', 'api_key').value;
    if (!accountId || !apiKey) fail("no Voximplant credentials: pass --credentials FILE (the service account's key JSON) or set voximplant.credentials in voxd's config");
    auth = { accountId, apiKey: String(apiKey) };
  }
  const apiUrl = opts['api-url'] || String(settings.get('voximplant', 'api_url').value || '') || DEFAULT_API;
  const api = new Api({ url: apiUrl, auth, dryRun: opts['dry-run'], timeoutMs: 20000 });

  // What the account should hold.
  const wanted = [{ kind: opts.scenario, file: path.join(REPO, 'scenarios', `${opts.scenario}.js`) }];
  if (!opts['no-outbound']) wanted.push({ kind: 'outbound', file: path.join(REPO, 'scenarios', 'outbound.js') });
  for (const w of wanted) {
    w.name = `${appName}-${w.kind}`;
    if (w.name.length >= 30) fail(`scenario name ${w.name} is too long for Voximplant (under 30 characters): shorten --application`);
    w.script = fillScenario(w.file, values);
  }
  const inboundRule = { name: `${appName}-inbound`, pattern: phone || '.*', scenario: wanted[0] };
  const rules = [inboundRule];
  if (!opts['no-outbound']) rules.push({ name: `${appName}-outbound`, pattern: '.*', scenario: wanted[1] });

  const lines = [];
  let changes = 0;
  const item = (what, action, detail) => {
    if (action !== 'unchanged') changes++;
    lines.push(`  ${what}: ${action}${detail ? ` (${detail})` : ''}`);
    console.log(lines[lines.length - 1]);
  };
  const dry = opts['dry-run'];
  console.log(`${dry ? 'Plan' : 'Deploying'}: application ${appName} at ${apiUrl}; inbound calls run ${wanted[0].name} (scenarios/${opts.scenario}.js)`);
  console.log(`  voxd: ${values.urls.join(', ')}; language ${values.language || '(as shipped)'}; stream tag ${JSON.stringify(values.tag)}`);
  for (const n of values.notes) console.log(`  ${n}`);

  // The phone number first (a read): one the account does not have stops everything.
  let p;
  if (phone) {
    const r = await api.call('GetPhoneNumbers', { phone_number: phone });
    p = (r.result || []).find((n) => digits(n.phone_number) === phone);
    if (!p) fail(`the number +${phone} is not in this Voximplant account: rent it first (control panel: Numbers → Buy), then run this again`);
  }

  // Application.
  const apps = (await api.call('GetApplications', { application_name: appName })).result || [];
  let app = apps.find((a) => a.application_name === appName || a.application_name.split('.')[0] === appName);
  if (app) item(`application ${app.application_name}`, 'unchanged', `id ${app.application_id}`);
  else if (dry) item(`application ${appName}`, 'create');
  else {
    const r = await api.call('AddApplication', { application_name: appName });
    app = { application_id: r.application_id, application_name: r.application_name || appName };
    item(`application ${app.application_name}`, 'created', `id ${app.application_id}`);
  }
  const appId = app && app.application_id;

  // Scenarios: in the application, text compared byte for byte.
  for (const w of wanted) {
    let found;
    if (appId) {
      const r = await api.call('GetScenarios', { application_id: appId, scenario_name: w.name, with_script: true });
      found = (r.result || []).find((s) => s.scenario_name === w.name);
    }
    if (!found) {
      if (dry) item(`scenario ${w.name}`, 'create', `scenarios/${w.kind}.js, settings filled`);
      else {
        const r = await api.call('AddScenario', { application_id: appId, scenario_name: w.name, scenario_script: w.script });
        w.id = r.scenario_id;
        item(`scenario ${w.name}`, 'created', `id ${w.id}`);
      }
    } else {
      w.id = found.scenario_id;
      if (found.scenario_script === w.script) item(`scenario ${w.name}`, 'unchanged', `id ${w.id}`);
      else if (dry) item(`scenario ${w.name}`, 'update', `id ${w.id}: its text differs`);
      else {
        await api.call('SetScenarioInfo', { scenario_id: w.id, scenario_script: w.script });
        item(`scenario ${w.name}`, 'updated', `id ${w.id}`);
      }
    }
  }

  // Rules: pattern, and exactly our scenario bound.
  const existingRules = appId ? (await api.call('GetRules', { application_id: appId, with_scenarios: true })).result || [] : [];
  for (const rule of rules) {
    const sc = rule.scenario;
    const found = existingRules.find((r) => r.rule_name === rule.name);
    const what = `rule ${rule.name} (pattern ${rule.pattern}, runs ${sc.name})`;
    if (!found) {
      if (dry) item(what, 'create');
      else {
        const r = await api.call('AddRule', { application_id: appId, rule_name: rule.name, rule_pattern: rule.pattern, scenario_id: sc.id });
        rule.id = r.rule_id;
        item(what, 'created', `id ${rule.id}`);
      }
      continue;
    }
    rule.id = found.rule_id;
    const todo = [];
    if (found.rule_pattern !== rule.pattern) todo.push(`pattern ${found.rule_pattern} → ${rule.pattern}`);
    const bound = found.scenarios || [];
    const others = bound.filter((s) => s.scenario_name !== sc.name);
    const ours = bound.some((s) => s.scenario_name === sc.name);
    if (!ours) todo.push(`bind ${sc.name}`);
    if (others.length) todo.push(`unbind ${others.map((s) => s.scenario_name).join(', ')}`);
    if (!todo.length) {
      item(what, 'unchanged', `id ${rule.id}`);
      continue;
    }
    if (dry) {
      item(what, 'update', `id ${rule.id}: ${todo.join('; ')}`);
      continue;
    }
    if (found.rule_pattern !== rule.pattern) await api.call('SetRuleInfo', { rule_id: rule.id, rule_pattern: rule.pattern });
    if (!ours) await api.call('BindScenario', { scenario_id: sc.id, rule_id: rule.id, application_id: appId, bind: true });
    if (others.length) await api.call('BindScenario', { scenario_id: others.map((s) => s.scenario_id).join(';'), rule_id: rule.id, application_id: appId, bind: false });
    item(what, 'updated', `id ${rule.id}: ${todo.join('; ')}`);
  }

  // The phone number: bound to the application and to the inbound rule.
  if (phone) {
    const what = `phone number +${phone} → ${appName} / ${inboundRule.name}`;
    if (appId && p.application_id === appId && inboundRule.id && p.rule_id === inboundRule.id) item(what, 'unchanged');
    else {
      const was = p.application_id ? `now bound to ${p.application_name || p.application_id}${p.rule_name ? ` / ${p.rule_name}` : ''}` : 'not bound';
      if (dry) item(what, 'bind', was);
      else {
        await api.call('BindPhoneNumberToApplication', { phone_id: p.phone_id, application_id: appId, rule_id: inboundRule.id, bind: true });
        item(what, 'bound', `was ${was}`);
      }
    }
  }

  // The voxengine-ci layout (holds the token: root's alone).
  if (!dry) {
    const root = path.resolve(opts.voxfiles);
    const fullName = (app && app.application_name) || appName;
    const write = (rel, text) => {
      const f = path.join(root, rel);
      fs.mkdirSync(path.dirname(f), { recursive: true, mode: 0o700 });
      fs.writeFileSync(f, text, { mode: 0o600 });
      fs.chmodSync(f, 0o600);
    };
    write(path.join('applications', fullName, 'application.config.json'), `${JSON.stringify({ applicationName: fullName })}\n`);
    write(path.join('applications', fullName, 'rules.config.json'), `${JSON.stringify(rules.map((r) => ({ ruleName: r.name, scenarios: [r.scenario.name], rulePattern: r.pattern })), null, 2)}\n`);
    for (const w of wanted) write(path.join('scenarios', 'src', `${w.name}.voxengine.js`), w.script);
    fs.chmodSync(root, 0o700);
    console.log(`  voxengine-ci layout: ${root} (holds the token; readable by you alone)`);
  }

  // voxd's voximplant.rule_id.
  if (!opts['no-outbound']) {
    const out = rules[1];
    const configured = Number(settings.get('voximplant', 'rule_id').value || 0);
    if (!out.id) console.log('voximplant.rule_id: known once the outbound rule exists (run without --dry-run)');
    else if (configured === out.id) console.log(`voximplant.rule_id = ${out.id} (already set in voxd's config)`);
    else console.log(`voximplant.rule_id = ${out.id}: set it in ${configPath} ([voximplant] rule_id = ${out.id}) for POST /calls, then restart voxd`);
  }
  if (dry) console.log(changes ? `Dry run: ${changes} change(s) planned; nothing was changed.` : 'Dry run: nothing to change; the account already matches.');
  else console.log(changes ? `Done: ${changes} change(s) made.` : 'Nothing to change: the account already matches.');
}

async function main() {
  let opts;
  try {
    ({ values: opts } = parseArgs({
      options: {
        config: { type: 'string', default: '/etc/voxd/voxd.toml' },
        'credentials-dir': { type: 'string', default: process.env.CREDENTIALS_DIRECTORY || '/etc/voxd/credentials' },
        credentials: { type: 'string' },
        application: { type: 'string', default: 'voxd' },
        phone: { type: 'string' },
        scenario: { type: 'string', default: 'streaming' },
        'no-outbound': { type: 'boolean', default: false },
        'voxd-url': { type: 'string', multiple: true },
        language: { type: 'string' },
        voice: { type: 'string' },
        'caller-id': { type: 'string' },
        'api-url': { type: 'string' },
        voxfiles: { type: 'string', default: 'voxfiles' },
        'dry-run': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`voximplant-deploy: ${e.message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (opts.help) {
    process.stdout.write(USAGE);
    return;
  }
  try {
    await deploy(opts);
  } catch (e) {
    if (!(e instanceof Fatal)) throw e;
    process.stderr.write(`voximplant-deploy: ${e.message}\n`);
    process.exit(1);
  }
}

main().catch((e) => {
  process.stderr.write(`voximplant-deploy: ${e.stack || e}\n`);
  process.exit(1);
});
