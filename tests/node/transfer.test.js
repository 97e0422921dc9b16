// voxd's transfer tool through the scenarios, run unmodified in the VoxEngine stand-in against
// a real voxd whose test model (steered by tools.examples, greedy, under the tools' grammar)
// decides to hand the caller to a human: recording.js gets action "transfer" and
// streaming.js {"type":"transfer"}; each plays voxd's words, dials the operator with
// VoxEngine.callPSTN and bridges the two with VoxEngine.sendMediaBetween; the call ends when
// the operator hangs up, and an operator who does not answer gets the caller an apology.
// outbound.js does the same for the callee of an outbound call. The scenarios dial from the
// CALLER_ID the tests set; left as the shipped placeholder, nobody is dialled.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { HOST, TOKEN, CALLER_ID, PLACEHOLDER_CALLER_ID, sharedVoxd, runSession } = require('./lib/session');
const v = require('./lib/voxd');

const OPERATOR = '+74950000000';
const NO_OPERATOR_RU = 'Извините, оператор сейчас не может ответить. Пожалуйста, перезвоните позже. До свидания!';
const ASK = 'Please connect me to an operator.';

const daemon = sharedVoxd({
  VOXD_DOWNLOAD_ALLOWED_NETWORKS: '["127.0.0.1/32"]',
  VOXD_CONVERSATION_GREETING: '',
  VOXD_LLM_SYSTEM_PROMPT: 'You are the phone assistant of Sunny Bakery. Reply in one short sentence.',
  VOXD_TOOLS_ENABLED: 'true',
  VOXD_TOOLS_OPERATOR_PHONE: OPERATOR,
  VOXD_TOOLS_EXAMPLES: JSON.stringify([
    ['Do you sell cakes?', 'Yes, we sell cakes.'],
    ['Connect me to an operator.', 'Connecting you to an operator. <tool_call>{"name": "transfer"}</tool_call>'],
  ]),
});
const dir = v.scratchDir();

function noErrors(s) {
  assert.deepEqual(s.errors.map(String), [], s.report());
}

/** The operator's leg: the second call of the session. */
function operatorLeg(s) {
  return s.calls.find((c) => !c.incomingLeg);
}

async function storedCall(callId) {
  const res = await fetch(`${daemon.voxd.url}/calls/${encodeURIComponent(callId)}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  return res.json();
}

/** Rings recording.js with the caller asking for a human; `drive` plays the operator. */
function recordingCall(options, drive) {
  return runSession({
    scenario: path.join(v.REPO, 'scenarios', 'recording.js'),
    options: { hosts: { [HOST]: daemon.voxd.url }, timeScale: 0.25, settings: { CALLER_ID }, ...options },
    voxd: daemon.voxd,
    start: (s) => {
      s.phone.queueUtterance(v.recordedUtterance(ASK, dir));
      s.incomingCall();
    },
    drive,
  });
}

test('recording flow: action "transfer" → the reply plays, the operator is dialled and bridged; the call ends with the operator', async () => {
  const s = await recordingCall({}, async (s) => {
    await s.waitFor(() => s.bridges.length === 1, 120_000, 'the caller and the operator bridged');
    operatorLeg(s).disconnect('Normal call clearing', 200);
  });
  noErrors(s);
  // The turn is answered progressively: what follows the reply is its result, read after it.
  const turn = s.requests.find((r) => new URL(r.url).pathname.startsWith('/voximplant/replies/'));
  const reply = JSON.parse(turn.response);
  assert.equal(reply.action, 'transfer', turn.response);
  assert.equal(reply.transfer_to, OPERATOR);

  // voxd's hand-off words were played before the dialling, then the two legs were bridged.
  const order = s.timeline.map((e) => e.what);
  const played = order.lastIndexOf('scenario: VoxEngine.createURLPlayer');
  const dialled = order.indexOf('scenario: VoxEngine.callPSTN');
  assert.ok(played >= 0 && dialled > played, s.report());
  assert.deepEqual(s.timeline[dialled].number, OPERATOR);
  assert.deepEqual(s.timeline[dialled].callerid, CALLER_ID);
  const [a, b] = s.bridges[0];
  assert.deepEqual([a.incomingLeg, b.incomingLeg], [true, false]);
  assert.equal(s.hangups, 1, 'the caller was hung up after the operator left');

  // The transfer is in the call's history: voxd's tool call and the scenario's report.
  const events = s.requests.filter((r) => new URL(r.url).pathname === '/voximplant/events').map((r) => [JSON.parse(r.body).event, r.code]);
  assert.deepEqual(events, [['Connected', 200], ['Transferred', 200], ['Disconnected', 200]]);
  const stored = await storedCall(reply.call_id);
  const names = stored.events.map((e) => e.event);
  assert.deepEqual(names.filter((n) => n !== 'Connected' && n !== 'Disconnected'), ['transfer', 'Transferred'], JSON.stringify(stored.events));
  assert.equal(stored.events.find((e) => e.event === 'transfer').to, OPERATOR);
});

test('recording flow: the operator does not answer → an apology, then hang-up', async () => {
  const s = await recordingCall({ outbound: { failCode: 486, failReason: 'Busy Here' } });
  noErrors(s);
  assert.equal(s.bridges.length, 0);
  assert.deepEqual(s.phone.says.slice(-1), [NO_OPERATOR_RU], s.report());
  assert.equal(s.hangups, 1);
  const events = s.requests.filter((r) => new URL(r.url).pathname === '/voximplant/events').map((r) => JSON.parse(r.body));
  const failed = events.find((e) => e.event === 'TransferFailed');
  assert.ok(failed, s.report());
  assert.deepEqual([failed.to, failed.code], [OPERATOR, 486]);
});

test('streaming flow: {"type":"transfer"} after the hand-off words → stream closed, operator dialled and bridged', async () => {
  const ask = v.streamedUtterance(ASK, dir, 8000);
  let callId;
  const s = await runSession({
    scenario: path.join(v.REPO, 'scenarios', 'streaming.js'),
    options: { hosts: { [HOST]: daemon.voxd.url }, settings: { CALLER_ID } },
    voxd: daemon.voxd,
    start: (s) => s.incomingCall(),
    ms: 120_000,
    drive: async (s) => {
      await s.waitFor(() => s.sockets.length === 1 && s.sockets[0].outbound, 30_000, 'the stream to voxd');
      callId = s.calls[0].callId;
      s.phone.speak(ask);
      await s.waitFor(() => s.bridges.length === 1, 120_000, 'the caller and the operator bridged');
      operatorLeg(s).disconnect('Normal call clearing', 200);
    },
  });
  noErrors(s);
  const p = s.phone;
  // The hand-off words reached the caller before the transfer; the socket closed cleanly.
  assert.ok(p.replies.length >= 1 && p.heardMs(0) > 300, s.report());
  const order = s.timeline.map((e) => e.what);
  const closed = order.indexOf('scenario: call.stopMediaTo(websocket)');
  const dialled = order.indexOf('scenario: VoxEngine.callPSTN');
  assert.ok(closed >= 0 && dialled > closed, s.report());
  assert.deepEqual([s.timeline[dialled].number, s.timeline[dialled].callerid], [OPERATOR, CALLER_ID]);
  assert.equal(s.sockets[0].state, 'closed');
  assert.equal(s.hangups, 1);
  assert.deepEqual(p.says, []);
  const stored = await storedCall(callId);
  assert.equal(stored.outcome, 'voxd_transfer', JSON.stringify(stored));
  assert.ok(stored.events.some((e) => e.event === 'transfer' && e.to === OPERATOR), JSON.stringify(stored.events));
});

test('outbound flow: {"type":"transfer"} → the callee is connected to the operator, Transferred reported under voxd\'s call id', async () => {
  const callId = 'out-transfer-1';
  const customData = JSON.stringify({ call_id: callId, phone: '+79001112233' });
  const ask = v.streamedUtterance(ASK, dir, 8000);
  const s = await runSession({
    scenario: path.join(v.REPO, 'scenarios', 'outbound.js'),
    options: { hosts: { [HOST]: daemon.voxd.url }, customData, outbound: { answerAfterMs: 300 }, settings: { CALLER_ID } },
    voxd: daemon.voxd,
    ms: 120_000,
    drive: async (s) => {
      await s.waitFor(() => s.sockets.length === 1 && s.sockets[0].outbound, 30_000, 'the stream to voxd');
      s.phone.speak(ask);
      await s.waitFor(() => s.bridges.length === 1, 120_000, 'the callee and the operator bridged');
      s.calls[1].disconnect('Normal call clearing', 200);
    },
  });
  noErrors(s);
  // The callee was dialled first, then the operator, after voxd's stream was closed.
  const order = s.timeline.map((e) => e.what);
  const dials = s.timeline.filter((e) => e.what === 'scenario: VoxEngine.callPSTN').map((e) => [e.number, e.callerid]);
  assert.deepEqual(dials, [['+79001112233', CALLER_ID], [OPERATOR, CALLER_ID]], s.report());
  const closed = order.indexOf('scenario: call.stopMediaTo(websocket)');
  assert.ok(closed >= 0 && closed < order.lastIndexOf('scenario: VoxEngine.callPSTN'), s.report());
  assert.equal(s.sockets[0].state, 'closed');
  assert.deepEqual(s.bridges[0].map((c) => c === s.calls[0] || c === s.calls[1]), [true, true]);
  assert.equal(s.hangups, 1, 'the callee was hung up after the operator left');
  assert.deepEqual(s.phone.says, []);

  const reported = s.requests.filter((r) => new URL(r.url).pathname === '/voximplant/events').map((r) => JSON.parse(r.body));
  assert.deepEqual(reported.map((e) => [e.event, e.call_id]).slice(0, 2), [['Connected', callId], ['Transferred', callId]], s.report());
  assert.equal(reported[1].to, OPERATOR);
  const stored = await storedCall(callId);
  assert.equal(stored.outcome, 'voxd_transfer', JSON.stringify(stored));
  assert.ok(stored.events.some((e) => e.event === 'transfer' && e.to === OPERATOR), JSON.stringify(stored.events));
  assert.ok(stored.events.some((e) => e.event === 'Transferred'), JSON.stringify(stored.events));
});

test('recording flow, CALLER_ID set to the placeholder: nobody is dialled, the caller hears the no-operator phrase', async () => {
  const s = await recordingCall({ settings: { CALLER_ID: PLACEHOLDER_CALLER_ID } });
  noErrors(s);
  const turn = s.requests.find((r) => new URL(r.url).pathname.startsWith('/voximplant/replies/'));
  assert.equal(JSON.parse(turn.response).action, 'transfer', s.report());
  assert.equal(s.calls.length, 1, 'no operator leg');
  assert.ok(!s.timeline.some((e) => e.what === 'scenario: VoxEngine.callPSTN'), s.report());
  assert.ok(
    s.logs.some((l) => l.startsWith(`not transferring the call to ${OPERATOR}: CALLER_ID is still the placeholder`)),
    s.logs.join('\n'),
  );
  assert.deepEqual(s.phone.says.slice(-1), [NO_OPERATOR_RU], s.report());
  assert.deepEqual(s.phone.voices.slice(-1), ['VoiceList.Default.ru_RU_Female']);
  assert.equal(s.hangups, 1);
  const failed = s.requests
    .filter((r) => new URL(r.url).pathname === '/voximplant/events')
    .map((r) => JSON.parse(r.body))
    .find((e) => e.event === 'TransferFailed');
  assert.deepEqual(failed && [failed.to, failed.reason], [OPERATOR, 'caller_id_not_set'], s.report());
});

test('streaming flow, CALLER_ID set to the placeholder: stream closed, nobody dialled, the no-operator phrase, hang-up', async () => {
  const ask = v.streamedUtterance(ASK, dir, 8000);
  const s = await runSession({
    scenario: path.join(v.REPO, 'scenarios', 'streaming.js'),
    options: { hosts: { [HOST]: daemon.voxd.url }, settings: { CALLER_ID: PLACEHOLDER_CALLER_ID } },
    voxd: daemon.voxd,
    start: (s) => s.incomingCall(),
    ms: 120_000,
    drive: async (s) => {
      await s.waitFor(() => s.sockets.length === 1 && s.sockets[0].outbound, 30_000, 'the stream to voxd');
      s.phone.speak(ask);
    },
  });
  noErrors(s);
  assert.equal(s.sockets[0].state, 'closed');
  assert.equal(s.calls.length, 1, 'no operator leg');
  assert.ok(
    s.logs.some((l) => l.startsWith(`not transferring the call to ${OPERATOR}: CALLER_ID is still the placeholder`)),
    s.logs.join('\n'),
  );
  assert.deepEqual(s.phone.says, [NO_OPERATOR_RU], s.report());
  assert.deepEqual(s.phone.voices, ['VoiceList.Default.ru_RU_Female']);
  assert.equal(s.hangups, 1);
});
