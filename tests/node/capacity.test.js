// The shipped scenarios when voxd is full, run unmodified (but for VOXD_URLS and CALLER_ID,
// set as their author would) in the VoxEngine stand-in against two real voxd daemons with room for one
// call each. A call goes to the next voxd when one is busy; with no room anywhere the caller
// goes to the operator the busy voxd names, or hears that the lines are busy.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { HOST, TOKEN, CALLER_ID, sharedVoxd, runSession } = require('./lib/session');
const v = require('./lib/voxd');

const HOST_B = 'voxd-b.example.com';
const OPERATOR = '+15550001111';
const BUSY_STREAM = 'Извините, сейчас все линии заняты. Пожалуйста, перезвоните позже. До свидания!';
const BUSY_OUTBOUND = 'Извините, сейчас все линии заняты. Мы перезвоним вам позже. До свидания!';

// A names an operator for the callers it cannot take; B does not.
const a = sharedVoxd({ VOXD_CALLS_MAX_LIVE: '1', VOXD_TOOLS_OPERATOR_PHONE: OPERATOR });
const b = sharedVoxd({ VOXD_CALLS_MAX_LIVE: '1' });

const scenario = (name) => path.join(v.REPO, 'scenarios', name);
const hosts = () => ({ [HOST]: a.voxd.url, [HOST_B]: b.voxd.url });

/** Takes voxd's one place with a recording-mode call that stays live. */
async function fill(daemon, callId) {
  const res = await fetch(`${daemon.voxd.url}/voximplant/events`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ call_id: callId, event: 'Connected' }),
  });
  assert.equal(res.status, 200, await res.text());
  const health = await fetch(`${daemon.voxd.url}/health`);
  const body = await health.json();
  assert.equal(health.status, 503, JSON.stringify(body));
  assert.deepEqual([body.status, body.active_calls, body.capacity, body.room], ['at_capacity', 1, 1, 0]);
}

function streamingCall(urls, drive = async () => {}) {
  return runSession({
    scenario: scenario('streaming.js'),
    options: { hosts: hosts(), settings: { VOXD_URLS: urls, CALLER_ID } },
    voxd: b.voxd,
    start: (s) => s.incomingCall(),
    drive,
    ms: 60_000,
  });
}

function noErrors(s) {
  assert.deepEqual(s.errors.map(String), [], s.report());
}

test('streaming.js: a busy voxd is passed over for the next one, which takes the call', async () => {
  await fill(a, 'hold-a');
  const s = await streamingCall([`https://${HOST}`, `https://${HOST_B}`], async (s) => {
    const p = s.phone;
    await p.waitFor(() => p.replies.length > 0 && p.replies[0].stopped && p.queue.length === 0, 30_000, 'the greeting from voxd B');
    p.hangup();
  });
  noErrors(s);
  assert.ok(s.logs.includes(`voxd https://${HOST} is busy`), s.logs.join('\n'));
  assert.equal(s.sockets.length, 2, s.report());
  assert.equal(s.sockets[0].closeInfo.code, 1013, s.report());
  assert.deepEqual(s.phone.says, []);
});

test('streaming.js: an unreachable voxd is passed over too', async () => {
  const closed = await v.freePort();
  const s = await runSession({
    scenario: scenario('streaming.js'),
    options: { hosts: { ...hosts(), 'down.example.com': `http://127.0.0.1:${closed}` }, settings: { VOXD_URLS: ['https://down.example.com', `https://${HOST_B}`] } },
    voxd: b.voxd,
    start: (s) => s.incomingCall(),
    drive: async (s) => {
      const p = s.phone;
      await p.waitFor(() => p.replies.length > 0 && p.replies[0].stopped && p.queue.length === 0, 30_000, 'the greeting from voxd B');
      p.hangup();
    },
    ms: 60_000,
  });
  noErrors(s);
  assert.deepEqual(s.phone.says, []);
});

test('streaming.js: every voxd busy, one names an operator: the caller is put through to them', async () => {
  const s = await streamingCall([`https://${HOST}`], async (s) => {
    await s.waitFor(() => s.bridges.length === 1, 30_000, 'the caller and the operator bridged');
    s.calls.find((c) => !c.incomingLeg).disconnect('Normal call clearing', 200);
  });
  noErrors(s);
  const dialled = s.timeline.find((e) => e.what === 'scenario: VoxEngine.callPSTN');
  assert.equal(dialled && dialled.number, OPERATOR, s.report());
  assert.equal(s.sockets[0].closeInfo.code, 1013);
  assert.deepEqual(s.phone.says, []);
});

test('streaming.js: every voxd busy and no operator: "all lines are busy", then hang-up', async () => {
  await fill(b, 'hold-b');
  const s = await streamingCall([`https://${HOST_B}`]);
  noErrors(s);
  assert.deepEqual(s.phone.says, [BUSY_STREAM]);
  assert.equal(s.hangups, 1);
  assert.equal(s.sockets[0].closeInfo.code, 1013);
});

test('recording.js: every voxd busy → the operator named by one, else the busy phrase', async () => {
  const toOperator = await runSession({
    scenario: scenario('recording.js'),
    options: { hosts: hosts(), settings: { VOXD_URLS: [`https://${HOST_B}`, `https://${HOST}`], CALLER_ID }, timeScale: 0.25 },
    voxd: a.voxd,
    start: (s) => s.incomingCall(),
    drive: async (s) => {
      await s.waitFor(() => s.bridges.length === 1, 30_000, 'the caller and the operator bridged');
      s.calls.find((c) => !c.incomingLeg).disconnect('Normal call clearing', 200);
    },
    ms: 60_000,
  });
  noErrors(toOperator);
  const connected = toOperator.requests.filter((r) => new URL(r.url).pathname === '/voximplant/events' && JSON.parse(r.body).event === 'Connected');
  assert.deepEqual(connected.map((r) => r.code), [503, 503], toOperator.report());
  const refusal = JSON.parse(connected[1].response);
  assert.equal(refusal.error.code, 'at_capacity');
  assert.equal(refusal.error.transfer_to, OPERATOR);
  const dialled = toOperator.timeline.find((e) => e.what === 'scenario: VoxEngine.callPSTN');
  assert.equal(dialled && dialled.number, OPERATOR, toOperator.report());

  const apology = await runSession({
    scenario: scenario('recording.js'),
    options: { hosts: hosts(), settings: { VOXD_URLS: [`https://${HOST_B}`] }, timeScale: 0.25 },
    voxd: b.voxd,
    start: (s) => s.incomingCall(),
    ms: 60_000,
  });
  noErrors(apology);
  assert.deepEqual(apology.phone.says, [BUSY_STREAM]);
  assert.equal(apology.hangups, 1);
});

test('outbound.js: voxd busy when the callee answers → "all lines are busy", then hang-up', async () => {
  const customData = JSON.stringify({ call_id: 'out-busy', phone: '+79001112233' });
  const s = await runSession({
    scenario: scenario('outbound.js'),
    options: { hosts: { [HOST]: b.voxd.url }, customData, settings: { CALLER_ID } },
    voxd: b.voxd,
    ms: 60_000,
  });
  noErrors(s);
  assert.deepEqual(s.phone.says, [BUSY_OUTBOUND], s.report());
  assert.equal(s.hangups, 1);
  assert.equal(s.sockets[0].closeInfo.code, 1013);
});
