// scenarios/outbound.js, run unmodified in the VoxEngine stand-in against a real voxd: from the
// custom data voxd passes through StartScenarios to the dialled call, the conversation on the
// media stream and the hang-up, with the outcome reported to /voximplant/events; and a call
// that fails (busy). End to end: POST /calls to voxd → StartScenarios on a stand-in of the
// Management API (checking the service account's JWT) → the stand-in runs outbound.js with
// the custom data → the call → its transcript and outcome at GET /calls/{id}. The scenario
// dials from the CALLER_ID the tests set; left as the shipped placeholder, it dials nothing.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { HOST, TOKEN, CALLER_ID, PLACEHOLDER_CALLER_ID, sharedVoxd, runSession } = require('./lib/session');
const { ManagementApi, serviceAccount } = require('./lib/management-api');
const v = require('./lib/voxd');

const SCENARIO = path.join(v.REPO, 'scenarios', 'outbound.js');
const RATE = 8000;
const RULE_ID = 4242;

const dir = v.scratchDir();
const account = serviceAccount(dir, 7_700_123);
// StartScenarios starts the session `nextSession` describes: {outbound, callee}.
let nextSession = null;
const sessions = [];
const managementApi = new ManagementApi({
  account,
  ruleId: RULE_ID,
  onStart: (customData) => {
    const { outbound, callee, settings } = nextSession;
    sessions.push(run({ customData, outbound, ...(settings ? { settings } : {}) }, callee));
  },
});
const daemon = sharedVoxd(async () => ({
  VOXD_VOXIMPLANT_API_URL: await managementApi.listen(),
  VOXD_VOXIMPLANT_RULE_ID: String(RULE_ID),
  VOXD_VOXIMPLANT_CREDENTIALS: account.credentials,
}));
test.after(() => managementApi.close());

/**
 * Runs outbound.js (started by StartScenarios: no inbound call) with the tests' CALLER_ID
 * unless `options.settings` says otherwise; `callee` plays the callee.
 */
function run(options, callee) {
  return runSession({
    scenario: SCENARIO,
    options: { hosts: { [HOST]: daemon.voxd.url }, settings: { CALLER_ID }, ...options },
    voxd: daemon.voxd,
    drive: callee,
    ms: 60_000,
  });
}

/** POST /calls on voxd. */
async function placeCall(body) {
  const res = await fetch(`${daemon.voxd.url}/calls`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

async function storedCall(callId) {
  const res = await fetch(`${daemon.voxd.url}/calls/${callId}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 200);
  return res.json();
}

function events(s) {
  return s.requests
    .filter((r) => new URL(r.url).pathname === '/voximplant/events')
    .map((r) => ({ ...JSON.parse(r.body), http: r.code, auth: r.headers.Authorization }));
}

test('custom data → dial → conversation on the stream → goodbye → hang-up, outcome reported', async () => {
  const callId = 'out-7f3a9c';
  const customData = JSON.stringify({ call_id: callId, phone: '+79001112233' });
  assert.ok(Buffer.byteLength(customData) <= 200);
  const question = v.streamedUtterance('Hello, who is calling, please?', dir, RATE);
  const bye = v.streamedUtterance('Thank you very much, goodbye.', dir, RATE);
  let historyDuringCall;
  const s = await run({ customData, outbound: { answerAfterMs: 800 } }, async (s) => {
    const p = s.phone;
    await p.waitFor(() => p.replies.length > 0 && p.replies[0].stopped && p.queue.length === 0, 30_000, 'the greeting');
    p.speak(question);
    await p.waitFor(() => p.replies.length > 1 && p.replies[1].stopped && p.queue.length === 0, 60_000, 'the answer');
    const res = await fetch(`${daemon.voxd.url}/voximplant/calls/${callId}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    historyDuringCall = await res.json();
    p.speak(bye);
  });
  assert.deepEqual(s.errors.map(String), [], s.report());

  // The number and caller id from the scenario's configuration reached the network.
  const dialled = s.timeline.find((e) => e.what === 'scenario: VoxEngine.callPSTN');
  assert.deepEqual([dialled.number, dialled.callerid], ['+79001112233', CALLER_ID]);

  // The stream ran under voxd's call id: the conversation is voxd's call `callId`.
  const history = historyDuringCall.history.map((m) => m.role);
  assert.deepEqual(history.slice(0, 3), ['assistant', 'user', 'assistant'], JSON.stringify(historyDuringCall));
  assert.ok(v.sharedWords(historyDuringCall.history[1].content, 'who is calling please').length >= 2, JSON.stringify(historyDuringCall));

  // voxd asked for the hang-up; the outcome reached /voximplant/events with the token.
  assert.equal(s.hangups, 1);
  const reported = events(s);
  assert.deepEqual(reported.map((e) => [e.event, e.call_id, e.mode]), [
    ['Connected', callId, 'stream'],
    ['Disconnected', callId, 'stream'],
  ]);
  assert.deepEqual(reported.map((e) => e.http), [200, 200]);
  for (const e of reported) assert.equal(e.auth, `Bearer ${TOKEN}`);
  assert.equal(reported[1].reason, 'Normal call clearing');
  assert.deepEqual(s.phone.says, []);

  // The conversation is in voxd's call history under its call id, ended by voxd's hang-up.
  const res = await fetch(`${daemon.voxd.url}/calls/${callId}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  const stored = await res.json();
  assert.equal(stored.transport, 'stream', JSON.stringify(stored));
  assert.deepEqual([stored.status, stored.outcome], ['ended', 'voxd_hangup']);
  const roles = stored.turns.map((t) => t.role);
  assert.deepEqual(roles.slice(0, 3), ['assistant', 'user', 'assistant']);
  assert.ok(stored.turns.some((t) => t.role === 'user' && /goodbye/i.test(t.text)), JSON.stringify(stored.turns));
  assert.deepEqual(stored.events.map((e) => e.event), ['Connected', 'Disconnected']);
});

test('the number is busy: Failed with its SIP code is reported and the session ends', async () => {
  const customData = JSON.stringify({ call_id: 'out-busy-1', phone: '+79001112244' });
  const s = await run({ customData, outbound: { failCode: 486, failReason: 'Busy Here', failAfterMs: 300 } }, async () => {});
  assert.deepEqual(s.errors.map(String), [], s.report());
  const reported = events(s);
  assert.equal(reported.length, 1);
  assert.deepEqual([reported[0].event, reported[0].call_id, reported[0].code, reported[0].reason], ['Failed', 'out-busy-1', 486, 'Busy Here']);
  assert.equal(s.sockets.length, 0, 'no stream for a call that never connected');
});

test('custom data that is not voxd\'s: logged, nothing dialled', async () => {
  const s = await run({ customData: 'hello' }, async () => {});
  assert.deepEqual(s.errors.map(String), [], s.report());
  assert.ok(s.logs.some((l) => l.includes('custom data must be')), s.logs.join('\n'));
  assert.equal(s.calls.length, 0);
  assert.equal(s.requests.length, 0);
});

test('POST /calls → StartScenarios (JWT checked) → outbound.js dials → conversation → transcript and outcome in the history', async () => {
  const question = v.streamedUtterance('Hello, who is calling, please?', dir, RATE);
  const bye = v.streamedUtterance('Thank you very much, goodbye.', dir, RATE);
  nextSession = {
    outbound: { answerAfterMs: 800 },
    callee: async (s) => {
      const p = s.phone;
      await p.waitFor(() => p.replies.length > 0 && p.replies[0].stopped && p.queue.length === 0, 30_000, 'the greeting');
      p.speak(question);
      await p.waitFor(() => p.replies.length > 1 && p.replies[1].stopped && p.queue.length === 0, 60_000, 'the answer');
      p.speak(bye);
    },
  };
  const context = { customer: 'Anna', order: 1042 };
  const placed = await placeCall({ phone: '+79001112233', context });
  assert.equal(placed.status, 201, JSON.stringify(placed.body));
  const callId = placed.body.call_id;
  assert.deepEqual(Object.keys(placed.body).sort(), ['call_id', 'created_at', 'phone', 'status']);
  assert.equal(placed.body.status, 'pending');

  // Voximplant got a valid, signed StartScenarios carrying voxd's call id.
  const req = managementApi.requests.at(-1);
  assert.deepEqual(req.problems, [], JSON.stringify(req));
  assert.deepEqual(JSON.parse(req.form.script_custom_data), { call_id: callId, phone: '+79001112233' });

  const s = await sessions.at(-1);
  assert.deepEqual(s.errors.map(String), [], s.report());
  const dialled = s.timeline.find((e) => e.what === 'scenario: VoxEngine.callPSTN');
  assert.deepEqual([dialled.number, dialled.callerid], ['+79001112233', CALLER_ID]);
  assert.equal(s.hangups, 1, 'voxd hung up after the goodbye');
  assert.deepEqual(events(s).map((e) => [e.event, e.call_id, e.http]), [
    ['Connected', callId, 200],
    ['Disconnected', callId, 200],
  ]);

  const stored = await storedCall(callId);
  assert.deepEqual(
    [stored.direction, stored.phone, stored.transport, stored.status, stored.outcome],
    ['outbound', '+79001112233', 'stream', 'ended', 'voxd_hangup'],
    JSON.stringify(stored),
  );
  assert.deepEqual(stored.context, context);
  assert.equal(stored.created_at, placed.body.created_at);
  assert.ok(stored.started_at && stored.ended_at, JSON.stringify(stored));
  const roles = stored.turns.map((t) => t.role);
  assert.deepEqual(roles.slice(0, 3), ['assistant', 'user', 'assistant'], JSON.stringify(stored.turns));
  assert.ok(v.sharedWords(stored.turns[1].text, 'who is calling please').length >= 2, JSON.stringify(stored.turns));
  assert.ok(stored.turns.some((t) => t.role === 'user' && /goodbye/i.test(t.text)), JSON.stringify(stored.turns));
  assert.deepEqual(stored.events.map((e) => e.event), ['ScenarioStarted', 'Connected', 'Disconnected']);
  assert.equal(stored.events[0].call_session_history_id, 1000 + managementApi.requests.length);
  // The signed token and the key never reach the log.
  assert.match(daemon.voxd.log(), /outbound calls: Voximplant rule 4242 .* service account/);
  assert.doesNotMatch(daemon.voxd.log(), /eyJ|PRIVATE KEY/);
});

test('POST /calls to a busy number: the call is stored as failed with its SIP code', async () => {
  nextSession = { outbound: { failCode: 486, failReason: 'Busy Here', failAfterMs: 300 }, callee: async () => {} };
  const placed = await placeCall({ phone: '+79001112244' });
  assert.equal(placed.status, 201, JSON.stringify(placed.body));
  const s = await sessions.at(-1);
  assert.deepEqual(s.errors.map(String), [], s.report());
  const stored = await storedCall(placed.body.call_id);
  assert.deepEqual([stored.direction, stored.status, stored.outcome], ['outbound', 'failed', '486 Busy Here'], JSON.stringify(stored));
  assert.deepEqual(stored.turns || [], []);
});

test('POST /calls with a number that is not E.164: 422, and Voximplant is not asked', async () => {
  const before = managementApi.requests.length;
  const placed = await placeCall({ phone: '8 (900) 111-22-33' });
  assert.equal(placed.status, 422);
  assert.equal(placed.body.error.code, 'invalid_phone');
  assert.match(placed.body.error.message, /must start with \+/);
  assert.equal(managementApi.requests.length, before);
});

test('CALLER_ID left as the placeholder: nothing is dialled, Failed (caller_id_not_set) is reported, the session ends', async () => {
  nextSession = { outbound: { answerAfterMs: 300 }, callee: async () => {}, settings: { CALLER_ID: PLACEHOLDER_CALLER_ID } };
  const placed = await placeCall({ phone: '+79001112255' });
  assert.equal(placed.status, 201, JSON.stringify(placed.body));
  const s = await sessions.at(-1);
  assert.deepEqual(s.errors.map(String), [], s.report());
  assert.equal(s.calls.length, 0, 'nothing dialled');
  assert.equal(s.sockets.length, 0);
  assert.ok(s.terminated);
  assert.ok(
    s.logs.some((l) => l.startsWith('not calling +79001112255: CALLER_ID is still the placeholder +10000000000')),
    s.logs.join('\n'),
  );
  assert.deepEqual(events(s).map((e) => [e.event, e.call_id, e.reason, e.http]), [['Failed', placed.body.call_id, 'caller_id_not_set', 200]]);
  const stored = await storedCall(placed.body.call_id);
  assert.deepEqual([stored.status, stored.outcome], ['failed', 'caller_id_not_set'], JSON.stringify(stored));
});

test('AMD finds a voicemail: the message is left, Voicemail reported; voxd stores the outcome voicemail (needs voxd\'s Voicemail event)', async () => {
  const message = 'Здравствуйте! Это пекарня. Ваш заказ готов.';
  nextSession = { outbound: { answerAfterMs: 300, amd: 'VOICEMAIL', amdAfterMs: 800 }, callee: async () => {}, settings: { CALLER_ID, VOICEMAIL_MESSAGE: message } };
  const placed = await placeCall({ phone: '+79001112266' });
  assert.equal(placed.status, 201, JSON.stringify(placed.body));
  const s = await sessions.at(-1);
  assert.deepEqual(s.errors.map(String), [], s.report());
  assert.deepEqual(s.phone.says, [message]);
  assert.equal(s.sockets.length, 0, 'voxd was never streamed to');
  assert.deepEqual(events(s).map((e) => [e.event, e.call_id, e.message_left, e.http]), [['Voicemail', placed.body.call_id, true, 200]]);
  const stored = await storedCall(placed.body.call_id);
  assert.equal(stored.outcome, 'voicemail', JSON.stringify(stored));
});
