// scripts/voximplant-deploy against the Management API stand-in (tests/node/lib/management-api.js):
// an empty account wired in one run, a second run that changes nothing, a new public_url that
// updates only the scenarios' text, a switch to the recording scenario, a dry run, and the
// errors an administrator can make (a wrong key, no config, no token, a number the account
// does not have). Needs neither voxd nor models.
'use strict';

const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const test = require('node:test');
const vm = require('node:vm');

const { ManagementApi, serviceAccount } = require('./lib/management-api');

const REPO = path.resolve(__dirname, '..', '..');
const SCRIPT = path.join(REPO, 'scripts', 'voximplant-deploy');
const TOKEN = 'scen-token-7f3a9c1d2e4b5a60';
const PHONE = '79991234567';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxd-deploy-'));
const credDir = path.join(dir, 'credentials');
fs.mkdirSync(credDir);
fs.writeFileSync(path.join(credDir, 'server.scenario_token'), `${TOKEN}\n`);
const account = serviceAccount(dir, 7_700_321);
const configPath = path.join(dir, 'voxd.toml');
let api;

function writeConfig({ publicUrl = 'https://voxd.example.org', apiUrl = api.url, extra = '' } = {}) {
  fs.writeFileSync(configPath, `# test config
[server]
public_url = "${publicUrl}"
token = ""
scenario_token = ""

[stt]
language = "en"

[voximplant_stream]
tag = "voxd"

[voximplant]
api_url = "${apiUrl}"
rule_id = 0
credentials = "credentials.json"
${extra}`);
}

/** Runs the script; resolves {code, stdout, stderr} (never rejects). */
function deploy(args, { config = configPath } = {}) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('VOXD_') || k === 'CREDENTIALS_DIRECTORY') delete env[k];
  const argv = ['--config', config, '--credentials-dir', credDir, '--voxfiles', path.join(dir, 'voxfiles'), ...args];
  return new Promise((resolve) => {
    execFile(SCRIPT, argv, { env, cwd: dir, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

function noSecrets(r) {
  const out = r.stdout + r.stderr;
  assert.ok(!out.includes(TOKEN), 'the token is never printed');
  assert.ok(!out.includes('PRIVATE KEY'), 'the private key is never printed');
}

const scenarioByName = (name) => api.state.scenarios.find((s) => s.scenario_name === name);
const ruleByName = (name) => api.state.rules.find((r) => r.rule_name === name);

test.before(async () => {
  api = new ManagementApi({ account, ruleId: 0, onStart() {}, accountName: 'acme', phones: [PHONE, '74950000000'] });
  await api.listen();
  writeConfig();
});
test.after(() => api.close());

test('an empty account is wired in one run', async () => {
  const r = await deploy(['--phone', `+${PHONE}`]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  noSecrets(r);
  assert.deepEqual(api.requests.flatMap((q) => q.problems), []);
  const st = api.state;
  assert.equal(st.applications.length, 1);
  const app = st.applications[0];
  assert.equal(app.application_name, 'voxd.acme.voximplant.com');

  const streaming = scenarioByName('voxd-streaming');
  const outbound = scenarioByName('voxd-outbound');
  assert.ok(streaming && outbound, 'both scenarios uploaded');
  assert.equal(st.scenarios.length, 2);
  for (const s of [streaming, outbound]) {
    assert.equal(s.application_id, app.application_id);
    new vm.Script(s.scenario_script, { filename: s.scenario_name }); // still valid JavaScript
    assert.match(s.scenario_script, new RegExp(`^const VOXD_TOKEN = '${TOKEN}';$`, 'm'));
    assert.match(s.scenario_script, /^const LANGUAGE = 'en';$/m);
    assert.match(s.scenario_script, /^const VOXD_TAG = 'voxd';$/m);
    assert.doesNotMatch(s.scenario_script, /change-me|voxd\.example\.com/);
  }
  assert.match(streaming.scenario_script, /^const VOXD_URLS = \['https:\/\/voxd\.example\.org'\];$/m);
  assert.match(outbound.scenario_script, /^const VOXD_URL = 'https:\/\/voxd\.example\.org';$/m);
  // Only the settings lines differ from the shipped file.
  const shipped = fs.readFileSync(path.join(REPO, 'scenarios', 'streaming.js'), 'utf8').split('\n');
  const filled = streaming.scenario_script.split('\n');
  assert.equal(filled.length, shipped.length);
  const changed = filled.map((l, i) => (l === shipped[i] ? null : l.split(' = ')[0])).filter(Boolean);
  assert.deepEqual(changed, ['const VOXD_URLS', 'const VOXD_TOKEN', 'const VOXD_TAG', 'const LANGUAGE']);

  const inbound = ruleByName('voxd-inbound');
  const out = ruleByName('voxd-outbound');
  assert.equal(inbound.rule_pattern, PHONE);
  assert.deepEqual(inbound.scenario_ids, [streaming.scenario_id]);
  assert.equal(out.rule_pattern, '.*');
  assert.deepEqual(out.scenario_ids, [outbound.scenario_id]);
  const phone = st.phones.find((p) => p.phone_number === PHONE);
  assert.equal(phone.application_id, app.application_id);
  assert.equal(phone.rule_id, inbound.rule_id);
  assert.equal(st.phones.find((p) => p.phone_number !== PHONE).application_id, null, 'other numbers untouched');

  assert.match(r.stdout, new RegExp(`voximplant\\.rule_id = ${out.rule_id}: set it in`));
  assert.match(r.stdout, /Done: 6 change\(s\) made\./);

  // voxengine-ci's layout, the token's files readable by their owner alone.
  const appDir = path.join(dir, 'voxfiles', 'applications', 'voxd.acme.voximplant.com');
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(appDir, 'application.config.json'))), { applicationName: 'voxd.acme.voximplant.com' });
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(appDir, 'rules.config.json'))), [
    { ruleName: 'voxd-inbound', scenarios: ['voxd-streaming'], rulePattern: PHONE },
    { ruleName: 'voxd-outbound', scenarios: ['voxd-outbound'], rulePattern: '.*' },
  ]);
  const src = path.join(dir, 'voxfiles', 'scenarios', 'src', 'voxd-streaming.voxengine.js');
  assert.equal(fs.readFileSync(src, 'utf8'), streaming.scenario_script);
  assert.equal(fs.statSync(src).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.join(dir, 'voxfiles')).mode & 0o777, 0o700);
});

test('a second run changes nothing and says so', async () => {
  const before = api.requests.length;
  // The admin has set voximplant.rule_id as the first run said.
  const outId = ruleByName('voxd-outbound').rule_id;
  fs.writeFileSync(configPath, fs.readFileSync(configPath, 'utf8').replace('rule_id = 0', `rule_id = ${outId}`));
  const r = await deploy(['--phone', `+${PHONE}`]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  noSecrets(r);
  const calls = api.methods().slice(before);
  assert.ok(calls.length > 0);
  assert.deepEqual(calls.filter((m) => !m.startsWith('Get')), [], `no writing calls: ${calls}`);
  assert.doesNotMatch(r.stdout, /: (create|created|update|updated|bind|bound)\b/);
  assert.match(r.stdout, /Nothing to change: the account already matches\./);
  assert.match(r.stdout, new RegExp(`voximplant\\.rule_id = ${outId} \\(already set`));
});

test("a new public_url updates only the scenarios' text", async () => {
  const rulesBefore = JSON.stringify(api.state.rules);
  const phonesBefore = JSON.stringify(api.state.phones);
  const before = api.requests.length;
  writeConfig({ publicUrl: 'https://voice.example.net/' });
  const r = await deploy(['--phone', `+${PHONE}`]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  noSecrets(r);
  const writes = api.methods().slice(before).filter((m) => !m.startsWith('Get'));
  assert.deepEqual(writes, ['SetScenarioInfo', 'SetScenarioInfo']);
  assert.match(scenarioByName('voxd-streaming').scenario_script, /^const VOXD_URLS = \['https:\/\/voice\.example\.net'\];$/m);
  assert.match(scenarioByName('voxd-outbound').scenario_script, /^const VOXD_URL = 'https:\/\/voice\.example\.net';$/m);
  assert.equal(JSON.stringify(api.state.rules), rulesBefore);
  assert.equal(JSON.stringify(api.state.phones), phonesBefore);
  assert.match(r.stdout, /scenario voxd-streaming: updated/);
  assert.match(r.stdout, /Done: 2 change\(s\) made\./);
});

test('a dry run prints the plan and writes nothing', async () => {
  // Planned against the live account: switching the number to the recording scenario.
  const state = JSON.stringify(api.state);
  const before = api.requests.length;
  let r = await deploy(['--phone', `+${PHONE}`, '--scenario', 'recording', '--dry-run']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  noSecrets(r);
  assert.deepEqual(api.methods().slice(before).filter((m) => !m.startsWith('Get')), []);
  assert.equal(JSON.stringify(api.state), state);
  assert.match(r.stdout, /scenario voxd-recording: create/);
  assert.match(r.stdout, /scenario voxd-outbound: unchanged/);
  assert.match(r.stdout, /rule voxd-inbound \(pattern 79991234567, runs voxd-recording\): update \(id \d+: bind voxd-recording; unbind voxd-streaming\)/);
  assert.match(r.stdout, /Dry run: 2 change\(s\) planned; nothing was changed\./);

  // And against an empty account: everything to create, no layout written.
  const empty = new ManagementApi({ account, ruleId: 0, onStart() {}, phones: [PHONE] });
  await empty.listen();
  try {
    const out = path.join(dir, 'voxfiles-dry');
    r = await deploy(['--api-url', empty.url, '--phone', `+${PHONE}`, '--dry-run', '--voxfiles', out]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    noSecrets(r);
    assert.deepEqual(empty.writes(), []);
    assert.deepEqual(empty.methods(), ['GetPhoneNumbers', 'GetApplications']);
    for (const line of ['application voxd: create', 'scenario voxd-streaming: create', 'scenario voxd-outbound: create',
      'rule voxd-inbound (pattern 79991234567, runs voxd-streaming): create', 'rule voxd-outbound (pattern .*, runs voxd-outbound): create',
      'phone number +79991234567 → voxd / voxd-inbound: bind (not bound)']) {
      assert.ok(r.stdout.includes(line), `plan has "${line}":\n${r.stdout}`);
    }
    assert.match(r.stdout, /Dry run: 6 change\(s\) planned/);
    assert.ok(!fs.existsSync(out), 'a dry run writes no files');
  } finally {
    await empty.close();
  }
});

test('switching to the recording scenario rebinds the rule', async () => {
  const r = await deploy(['--phone', `+${PHONE}`, '--scenario', 'recording']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const rec = scenarioByName('voxd-recording');
  assert.match(rec.scenario_script, /^const VOXD_URLS = \['https:\/\/voice\.example\.net'\];$/m);
  assert.deepEqual(ruleByName('voxd-inbound').scenario_ids, [rec.scenario_id]);
  const again = await deploy(['--phone', `+${PHONE}`, '--scenario', 'recording']);
  assert.match(again.stdout, /Nothing to change/);
});

test('a key Voximplant does not know: a clear error, exit code 1, nothing written', async () => {
  const otherDir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxd-deploy-other-'));
  const other = serviceAccount(otherDir, 7_700_321); // same account id, another key pair
  const before = api.requests.length;
  const r = await deploy(['--credentials', other.credentials]);
  assert.equal(r.code, 1);
  noSecrets(r);
  assert.match(r.stderr, /Voximplant refused the credentials \(.*credentials\.json\): Authorization failed/);
  assert.deepEqual(api.methods().slice(before), ['GetApplications']);

  fs.writeFileSync(path.join(otherDir, 'bad.json'), '{"account_id": 1}');
  const bad = await deploy(['--credentials', path.join(otherDir, 'bad.json')]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /is not a service account key: it needs account_id, key_id and private_key/);
  assert.equal(api.requests.length, before + 1, 'no request with a broken key file');
});

test('no config, no token, no public_url, a number not in the account: clear errors', async () => {
  let r = await deploy([], { config: path.join(dir, 'missing.toml') });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /voxd's config .*missing\.toml does not exist \(--config FILE\)/);

  const noToken = path.join(dir, 'no-token.toml');
  fs.writeFileSync(noToken, fs.readFileSync(configPath, 'utf8'));
  fs.renameSync(path.join(credDir, 'server.scenario_token'), path.join(dir, 'moved-token'));
  try {
    r = await deploy([], { config: noToken });
  } finally {
    fs.renameSync(path.join(dir, 'moved-token'), path.join(credDir, 'server.scenario_token'));
  }
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no token for the scenarios: server\.scenario_token and server\.token are empty/);

  const noUrl = path.join(dir, 'no-url.toml');
  fs.writeFileSync(noUrl, fs.readFileSync(configPath, 'utf8').replace(/public_url = ".*"/, 'public_url = ""'));
  r = await deploy([], { config: noUrl });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /server\.public_url is empty/);

  const before = api.requests.length;
  r = await deploy(['--phone', '+79990000000']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /the number \+79990000000 is not in this Voximplant account/);
  assert.deepEqual(api.methods().slice(before), ['GetPhoneNumbers'], 'stopped before any change');

  r = await deploy(['--scenario', 'video']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--scenario video: streaming or recording/);
});
