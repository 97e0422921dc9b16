// scenarios/streaming.js, run unmodified in the VoxEngine stand-in against a real voxd over a
// real WebSocket in Voximplant's media JSON: a whole call with one barge-in, and what the
// caller gets when voxd is down or does not accept the stream; voxd's stream tag
// (voximplant_stream.tag) paired with the scenario's VOXD_TAG, and a mismatch caught.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');
const { HOST, TOKEN, sharedVoxd, runSession } = require('./lib/session');
const v = require('./lib/voxd');

const SCENARIO = path.join(v.REPO, 'scenarios', 'streaming.js');
const RATE = 8000; // the scenario streams ULAW
const APOLOGY = 'Извините, сейчас я не могу ответить. Пожалуйста, перезвоните позже. До свидания!';
const APOLOGY_EN = 'Sorry, I cannot answer right now. Please call again later. Goodbye!';
const TAG = 'voxd';

const daemon = sharedVoxd();
// A voxd that tags its outgoing audio (voximplant_stream.tag).
const tagged = sharedVoxd({ VOXD_VOXIMPLANT_STREAM_TAG: TAG });
const dir = v.scratchDir();

/** Rings streaming.js; `caller(standin)` plays the caller; returns after the session ended. */
function call(options, caller, voxd = daemon.voxd) {
  return runSession({ scenario: SCENARIO, options, voxd, start: (s) => s.incomingCall(), drive: caller, ms: 60_000 });
}

/** Resolves when reply `i` has been sent completely and played to the caller. */
function replyPlayed(s, i, ms) {
  const p = s.phone;
  return p.waitFor(() => p.replies.length > i && p.replies[i].stopped && p.queue.length === 0, ms, `reply ${i} played`);
}

test('a whole call: greeting, a question, a barge-in, goodbye and hang-up', async () => {
  const story = v.streamedUtterance('Please tell me a long story about your company and its history.', dir, RATE);
  const interrupt = v.streamedUtterance('Sorry, stop, I have another question.', dir, RATE);
  const bye = v.streamedUtterance('Thank you very much, goodbye.', dir, RATE);
  let callId;
  const s = await call({ hosts: { [HOST]: daemon.voxd.url } }, async (s) => {
    const p = s.phone;
    await replyPlayed(s, 0, 30_000); // the greeting
    callId = s.calls[0].callId;
    p.speak(story);
    await p.waitFor(() => p.replies.length > 1 && p.heardMs(1) >= 600, 60_000, 'the answer to the question');
    assert.ok(!p.replies[1].stopped || p.queue.length > 0, 'the answer ended before the interruption; make it longer');
    p.speak(interrupt);
    await p.waitFor(() => p.clears >= 1, 10_000, 'voxd to clear the interrupted reply');
    await replyPlayed(s, 2, 60_000); // the answer to the interruption
    p.speak(bye);
  });
  assert.deepEqual(s.errors.map(String), [], s.report());
  assert.equal(s.unrouted, 0, 'voxd audio arrived before ws.sendMediaTo(call)');
  assert.deepEqual([...s.sockets[0].voxdTags], [''], 'voxd\'s audio is untagged by default');

  // The interruption cut the second reply short: the caller heard less than voxd generated.
  const p = s.phone;
  assert.equal(p.clears, 1, s.report());
  assert.ok(p.replies.length >= 4, `${p.replies.length} replies`);
  const greeting = v.transcribeSamples(p.heard(0).samples, RATE, path.join(dir, 'greeting.wav'));
  assert.ok(v.sharedWords(greeting, 'Hello! How can I help you?').length >= 3, `greeting heard as ${JSON.stringify(greeting)}`);
  const answer = v.transcribeSamples(p.heard(2).samples, RATE, path.join(dir, 'answer.wav'));
  assert.ok(v.words(answer).length >= 2, `the answer after the interruption is not speech: ${JSON.stringify(answer)}`);

  // voxd's transcripts went to the call log, the user's words among them.
  const userLines = s.logs.filter((l) => l.startsWith('user: '));
  assert.ok(userLines.some((l) => v.sharedWords(l, 'tell me a long story about your company').length >= 3), s.logs.join('\n'));
  assert.ok(userLines.some((l) => /goodbye/i.test(l)), s.logs.join('\n'));
  assert.ok(s.logs.some((l) => l.startsWith('assistant: ')));

  // voxd asked for the hang-up, the scenario did it and closed the socket; the call is over.
  assert.equal(s.hangups, 1);
  assert.deepEqual(p.says, []);
  const ws = s.sockets[0];
  assert.equal(ws.state, 'closed');
  assert.equal(ws.closeInfo.wasClean, true, JSON.stringify(ws.closeInfo));
  const res = await fetch(`${daemon.voxd.url}/voximplant/calls/${encodeURIComponent(callId)}`, {
    headers: { Authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(res.status, 404, 'voxd ended the call');
});

test('the caller hangs up mid-call: the scenario closes the stream and terminates', async () => {
  const question = v.streamedUtterance('What time do you open tomorrow?', dir, RATE);
  const s = await call({ hosts: { [HOST]: daemon.voxd.url } }, async (s) => {
    const p = s.phone;
    await replyPlayed(s, 0, 30_000);
    p.speak(question);
    await p.waitFor(() => p.replies.length > 1 && p.heardMs(1) > 200, 60_000, 'the answer');
    p.hangup();
  });
  assert.deepEqual(s.errors.map(String), [], s.report());
  assert.equal(s.hangups, 0);
  assert.equal(s.sockets[0].state, 'closed');
  assert.deepEqual(s.phone.says, []);
});

test('voxd down: an apology in Voximplant\'s voice, then hang-up', async () => {
  const closed = await v.freePort();
  const s = await call({ hosts: { [HOST]: `http://127.0.0.1:${closed}` } }, async () => {});
  assert.deepEqual(s.errors.map(String), [], s.report());
  assert.deepEqual(s.phone.says, [APOLOGY]);
  assert.deepEqual(s.phone.voices, ['VoiceList.Default.ru_RU_Female'], 'a Russian voice reads the Russian apology');
  assert.equal(s.hangups, 1);
});

test('LANGUAGE = "en": the apology is in English, read by an en_US voice', async () => {
  const closed = await v.freePort();
  const s = await call({ hosts: { [HOST]: `http://127.0.0.1:${closed}` }, settings: { LANGUAGE: 'en' } }, async () => {});
  assert.deepEqual(s.errors.map(String), [], s.report());
  assert.deepEqual(s.phone.says, [APOLOGY_EN]);
  assert.deepEqual(s.phone.voices, ['VoiceList.Default.en_US_Female']);
});

test('voxd does not accept the stream in time: apology, then hang-up', async () => {
  // Accepts TCP connections and never answers the WebSocket handshake.
  const silent = net.createServer(() => {});
  await new Promise((r) => silent.listen(0, '127.0.0.1', r));
  try {
    const s = await call({ hosts: { [HOST]: `http://127.0.0.1:${silent.address().port}` }, timeScale: 0.2 }, async () => {});
    assert.deepEqual(s.errors.map(String), [], s.report());
    assert.ok(s.logs.some((l) => l.includes('did not accept the stream')), s.logs.join('\n'));
    assert.deepEqual(s.phone.says, [APOLOGY]);
    assert.equal(s.hangups, 1);
  } finally {
    silent.close();
  }
});

test('voxd refuses the token: apology, then hang-up', async () => {
  const other = await v.startVoxd({ VOXD_SERVER_TOKEN: 'another-secret' });
  try {
    const s = await call({ hosts: { [HOST]: other.url } }, async () => {});
    assert.deepEqual(s.errors.map(String), [], s.report());
    assert.deepEqual(s.phone.says, [APOLOGY]);
    assert.equal(s.hangups, 1);
  } finally {
    await other.stop();
  }
});

test('voximplant_stream.tag = VOXD_TAG = "voxd": the tagged audio reaches the caller, a barge-in clears it', async () => {
  const story = v.streamedUtterance('Please tell me a long story about your company and its history.', dir, RATE);
  const interrupt = v.streamedUtterance('Sorry, stop, I have another question.', dir, RATE);
  const s = await call({ hosts: { [HOST]: tagged.voxd.url }, settings: { VOXD_TAG: TAG } }, async (s) => {
    const p = s.phone;
    await replyPlayed(s, 0, 30_000); // the greeting
    p.speak(story);
    await p.waitFor(() => p.replies.length > 1 && p.heardMs(1) >= 600, 60_000, 'the answer to the question');
    assert.ok(!p.replies[1].stopped || p.queue.length > 0, 'the answer ended before the interruption; make it longer');
    p.speak(interrupt);
    await p.waitFor(() => p.clears >= 1, 10_000, 'voxd to clear the interrupted reply');
    p.hangup();
  }, tagged.voxd);
  assert.deepEqual(s.errors.map(String), [], s.report());
  assert.deepEqual([...s.sockets[0].voxdTags], [TAG], 'voxd tags its audio');
  // The scenario asked for that stream and cleared that stream.
  const attach = s.timeline.find((e) => e.what === 'scenario: websocket.sendMediaTo(call)');
  assert.equal(attach.tag, TAG, s.report());
  const clears = s.timeline.filter((e) => e.what === 'scenario: websocket.clearMediaBuffer()');
  assert.ok(clears.length >= 1 && clears.every((e) => e.tag === TAG), s.report());
  const greeting = v.transcribeSamples(s.phone.heard(0).samples, RATE, path.join(dir, 'tagged-greeting.wav'));
  assert.ok(v.sharedWords(greeting, 'Hello! How can I help you?').length >= 3, `greeting heard as ${JSON.stringify(greeting)}`);
});

/** Rings streaming.js against `voxd` and waits for the stand-in to report an error, then hangs up. */
async function mismatched(voxd, settings) {
  const s = await runSession({
    scenario: SCENARIO,
    options: { hosts: { [HOST]: voxd.url }, settings },
    voxd,
    start: (s) => s.incomingCall(),
    drive: async (s) => {
      await s.waitFor(() => s.errors.length > 0, 30_000, 'the stand-in to catch the tag mismatch');
      s.phone.hangup();
    },
    ms: 60_000,
  });
  assert.equal(s.phone.replies.length, 0, 'the caller heard nothing from voxd');
  return s;
}

test('a tag mismatch fails: voxd tags its audio "voxd", the scenario plays the untagged stream', async () => {
  const s = await mismatched(tagged.voxd, {});
  assert.match(String(s.errors[0]), /tagged "voxd".*plays the stream tagged ""/, s.report());
});

test('a tag mismatch fails: voxd sends untagged audio, the scenario plays the stream tagged "voxd"', async () => {
  const s = await mismatched(daemon.voxd, { VOXD_TAG: TAG });
  assert.match(String(s.errors[0]), /tagged "".*plays the stream tagged "voxd"/, s.report());
});
