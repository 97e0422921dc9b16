// A stand-in for the part of Voximplant's Management API that voxd uses: StartScenarios, a
// form POST to <api>/StartScenarios/ signed with a service account's JWT (RS256; checked here
// with the account's public key: kid, iss, iat, exp). A valid request starts a VoxEngine
// session with the request's script_custom_data, as Voximplant runs the rule's scenario; an
// invalid one gets Voximplant's error JSON. Also makes the service account's key file.
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

class ManagementApi {
  /** `onStart(customData)` runs the rule's scenario for a valid StartScenarios. */
  constructor({ account, ruleId, onStart }) {
    this.account = account;
    this.ruleId = ruleId;
    this.onStart = onStart;
    this.requests = []; // {method, path, contentType, form, problems}
    this.server = http.createServer((req, res) => this.handle(req, res));
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

  close() {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(r));
  }
}

module.exports = { ManagementApi, serviceAccount };
