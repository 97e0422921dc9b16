// streaming.js against a real voxd when Voximplant's side of the media stream differs from what
// the docs leave open: the start frame naming the codec as "audio/x-mulaw" (Voximplant's
// WebSocket tutorial) or PCM16 at 8000 Hz (the format page's PCM16_8KHZ example), a call on
// hold for 15 s with no media frames at all (the stand-in's ws answers voxd's pings), keys the
// caller presses on the stream, and a key in a recording-mode call. These need the voxd side of
// issue #27 (MIME encodings and sampleRate in the start frame, media gaps, dtmf and ToneReceived).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { HOST, TOKEN, sharedVoxd, runSession } = require('./lib/session');
const v = require('./lib/voxd');

const SCENARIOS = path.join(v.REPO, 'scenarios');
const RATE = 8000;
const daemon = sharedVoxd({ VOXD_DOWNLOAD_ALLOWED_NETWORKS: '["127.0.0.1/32"]' });
const dir = v.scratchDir();

function replyPlayed(s, i, ms) {
  const p = s.phone;
  return p.waitFor(() => p.replies.length > i && p.replies[i].stopped && p.queue.length === 0, ms, `reply ${i} played`);
}

/** A streaming call: the greeting, one question answered, the caller hangs up. */
async function questionCall(options, beforeQuestion = async () => {}) {
  const question = v.streamedUtterance('What time do you open tomorrow?', dir, RATE);
  const s = await runSession({
    scenario: path.join(SCENARIOS, 'streaming.js'),
    options: { hosts: { [HOST]: daemon.voxd.url }, ...options },
    voxd: daemon.voxd,
    start: (s) => s.incomingCall(),
    ms: 90_000,
    drive: async (s) => {
      await replyPlayed(s, 0, 30_000);
      await beforeQuestion(s);
      s.phone.speak(question);
      await s.phone.waitFor(() => s.phone.replies.length > 1 && s.phone.heardMs(1) > 300, 60_000, 'the answer');
      s.phone.hangup();
    },
  });
  assert.deepEqual(s.errors.map(String), [], s.report());
  assert.deepEqual(s.phone.says, [], 'no apology: the stream held');
  assert.ok(s.logs.some((l) => l.startsWith('user: ') && v.sharedWords(l, 'what time do you open tomorrow').length >= 3), s.logs.join('\n'));
  return s;
}

test('the start frame says "audio/x-mulaw": voxd hears the caller', async () => {
  const s = await questionCall({ mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 } });
  assert.match(s.sockets[0].sent.join(''), /^$/, 'the scenario sent voxd no control messages');
});

test('the start frame says PCM16 at 8000 Hz (ENCODING = PCM8): voxd hears the caller', async () => {
  await questionCall({ settings: { ENCODING: 'PCM8' }, mediaFormat: { encoding: 'PCM16', sampleRate: 8000 } });
});

test('a 15 s hold with no media frames mid-call: the call goes on', async () => {
  await questionCall({}, async (s) => {
    s.phone.hold(15_000);
    await new Promise((r) => setTimeout(r, 15_500));
    assert.equal(s.sockets[0].state, 'open', 'voxd kept the stream through the hold');
  });
});

test('a key pressed mid-call reaches voxd and the call goes on', async () => {
  await questionCall({}, async (s) => {
    s.phone.pressDigit('5');
    await s.waitFor(() => s.sockets[0].sent.length === 1, 5_000, 'the dtmf message');
    assert.deepEqual(JSON.parse(s.sockets[0].sent[0]), { type: 'dtmf', digit: '5' });
  });
});

test('recording: a key is reported as ToneReceived, voxd accepts it and the call goes on', async () => {
  const bye = v.recordedUtterance('Thank you very much, goodbye.', dir);
  const s = await runSession({
    scenario: path.join(SCENARIOS, 'recording.js'),
    options: { hosts: { [HOST]: daemon.voxd.url }, timeScale: 0.25 },
    voxd: daemon.voxd,
    start: (s) => {
      s.phone.queueUtterance(bye);
      s.incomingCall();
    },
    drive: async (s) => {
      await s.waitFor(() => s.timeline.some((e) => e.what === 'scenario: call.sendMediaTo(recorder)'), 60_000, 'the first turn');
      s.phone.pressDigit('7');
    },
  });
  assert.deepEqual(s.errors.map(String), [], s.report());
  const events = s.requests.filter((r) => new URL(r.url).pathname === '/voximplant/events').map((r) => [JSON.parse(r.body).event, r.code]);
  assert.deepEqual(events, [['Connected', 200], ['ToneReceived', 200], ['Disconnected', 200]], s.report());
  const tone = JSON.parse(s.requests.find((r) => r.body && r.body.includes('ToneReceived')).body);
  assert.equal(tone.digit, '7');
  assert.equal(s.hangups, 1, 'the goodbye turn ended the call');
  const stored = await (await fetch(`${daemon.voxd.url}/calls/${encodeURIComponent(tone.call_id)}`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json();
  assert.ok(stored.events.some((e) => e.event === 'ToneReceived'), JSON.stringify(stored.events));
});
