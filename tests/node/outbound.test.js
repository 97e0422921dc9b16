// scenarios/outbound.js, run unmodified in the VoxEngine stand-in against a real voxd: from the
// custom data voxd passes through StartScenarios to the dialled call, the conversation on the
// media stream and the hang-up, with the outcome reported to /voximplant/events; and a call
// that fails (busy).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { HOST, TOKEN, sharedVoxd, runSession } = require('./lib/session');
const v = require('./lib/voxd');

const SCENARIO = path.join(v.REPO, 'scenarios', 'outbound.js');
const CALLER_ID = '+10000000000';
const RATE = 8000;

const daemon = sharedVoxd();
const dir = v.scratchDir();

/** Runs outbound.js (started by StartScenarios: no inbound call); `callee` plays the callee. */
function run(options, callee) {
  return runSession({ scenario: SCENARIO, options: { hosts: { [HOST]: daemon.voxd.url }, ...options }, voxd: daemon.voxd, drive: callee, ms: 60_000 });
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
