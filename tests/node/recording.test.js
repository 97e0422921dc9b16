// scenarios/recording.js, run unmodified in the VoxEngine stand-in against a real voxd: whole
// calls turn by turn (greeting, two turns, hang-up on goodbye), with the end of each turn found
// by Voximplant's voice activity events or (TURN_END = 'fixed') by a fixed turn length, and what
// the caller gets when voxd answers an error, is down, or is too slow.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { HOST, TOKEN, sharedVoxd, runSession } = require('./lib/session');
const v = require('./lib/voxd');

const SCENARIO = path.join(v.REPO, 'scenarios', 'recording.js');
const APOLOGY = 'Извините, не получилось ответить. Повторите, пожалуйста.';
const GOODBYE = 'Извините, сейчас я не могу ответить. Пожалуйста, перезвоните позже. До свидания!';
const FALLBACK_GREETING = 'Здравствуйте! Чем могу помочь?';

// voxd downloads the recordings from the stand-in's server on loopback.
const daemon = sharedVoxd({ VOXD_DOWNLOAD_ALLOWED_NETWORKS: '["127.0.0.1/32"]' });
const dir = v.scratchDir();
let question;
let goodbye;

test.before(() => {
  question = v.recordedUtterance('Hello, what time do you open tomorrow morning?', dir);
  goodbye = v.recordedUtterance('Thank you very much, goodbye.', dir);
});

/** Runs one inbound call through recording.js, the caller saying `utterances` in turn. */
function call(options, utterances) {
  return runSession({
    scenario: SCENARIO,
    options,
    voxd: daemon.voxd,
    start: (s) => {
      utterances.forEach((u) => s.phone.queueUtterance(u));
      s.incomingCall();
    },
  });
}

function requestsTo(standin, pathname) {
  return standin.requests.filter((r) => new URL(r.url).pathname === pathname);
}

function noErrors(standin) {
  assert.deepEqual(standin.errors.map(String), [], standin.report());
}

test('two turns: greeting, an answer in voxd\'s voice, hang-up on goodbye', async () => {
  const s = await call({ hosts: { [HOST]: daemon.voxd.url }, timeScale: 0.25, settings: { PROGRESSIVE: false } }, [question, goodbye]);
  noErrors(s);

  // Every request carries the token; the events bracket the call.
  for (const r of s.requests) assert.equal(r.headers.Authorization, `Bearer ${TOKEN}`, r.url);
  const events = requestsTo(s, '/voximplant/events').map((r) => [JSON.parse(r.body).event, r.code]);
  assert.deepEqual(events, [['Connected', 200], ['Disconnected', 200]]);

  // Two turns, each recording fetched by voxd from the "Voximplant" recording server.
  const turns = requestsTo(s, '/voximplant/process_audio');
  assert.equal(turns.length, 2, s.report());
  assert.deepEqual(turns.map((t) => t.code), [200, 200]);
  assert.equal(s.recordings.requests.length, 2, 'voxd downloaded both recordings');
  const first = JSON.parse(turns[0].response);
  const second = JSON.parse(turns[1].response);
  assert.ok(v.sharedWords(first.user_text, question.text).length >= 3, `heard ${JSON.stringify(first.user_text)}`);
  assert.ok(first.reply_text.length > 0);
  assert.equal(first.action, 'continue');
  assert.match(second.user_text.toLowerCase(), /goodbye/);
  assert.equal(second.action, 'hangup');
  assert.equal(JSON.parse(turns[0].body).call_id, JSON.parse(turns[1].body).call_id);

  // The caller heard the greeting and both replies as real audio, and no fallback voice.
  assert.equal(s.phone.playbacks.length, 3, s.report());
  for (const p of s.phone.playbacks) {
    assert.ok(p.ok, `playback of ${p.url} failed: ${p.error}`);
    assert.ok(p.level > 300, `playback of ${p.url} is near silence (rms ${p.level})`);
  }
  const heard = v.transcribe(writeTmp(s.phone.playbacks[1].bytes, 'reply1.wav'));
  assert.ok(v.sharedWords(heard, first.reply_text).length >= 2, `played ${JSON.stringify(heard)} for ${JSON.stringify(first.reply_text)}`);
  assert.deepEqual(s.phone.says, []);
  assert.equal(s.hangups, 1, 'the scenario hung up after the goodbye reply');
  // The turns ended on Voximplant's voice activity events (TURN_END = 'mic_status', as shipped).
  assert.equal(s.calls[0].micStatus, true);
  assert.deepEqual(s.logs.filter((l) => l.startsWith('turn recorded')), ['turn recorded (end of speech)', 'turn recorded (end of speech)']);
  assert.deepEqual(s.cuts, []);

  // voxd ended the call when the scenario reported Disconnected, and kept its transcript.
  const auth = { headers: { Authorization: `Bearer ${TOKEN}` } };
  const live = await fetch(`${daemon.voxd.url}/voximplant/calls/${encodeURIComponent(first.call_id)}`, auth);
  assert.equal(live.status, 404);
  const stored = await (await fetch(`${daemon.voxd.url}/calls/${encodeURIComponent(first.call_id)}`, auth)).json();
  assert.equal(stored.status, 'ended', JSON.stringify(stored));
  assert.equal(stored.outcome, 'Normal call clearing');
  assert.deepEqual(
    stored.turns.map((t) => [t.role, t.text]),
    [
      ['assistant', 'Hello! How can I help you?'],
      ['user', first.user_text],
      ['assistant', first.reply_text],
      ['user', second.user_text],
      ['assistant', second.reply_text],
    ],
  );
});

test('progressive: the reply plays while voxd makes it, what follows is read after it', async () => {
  const s = await call({ hosts: { [HOST]: daemon.voxd.url }, timeScale: 0.25 }, [question, goodbye]);
  noErrors(s);
  const turns = requestsTo(s, '/voximplant/process_audio');
  assert.deepEqual(turns.map((t) => t.code), [200, 200], s.report());
  for (const t of turns) assert.equal(JSON.parse(t.body).progressive, true);
  const first = JSON.parse(turns[0].response);
  assert.equal(first.progressive, true);
  assert.ok(v.sharedWords(first.user_text, question.text).length >= 3, `heard ${JSON.stringify(first.user_text)}`);
  assert.equal(first.reply_text, undefined, 'not known when the words are');

  // Each reply was played progressively: audio came in chunks, playback began with the first.
  const replies = s.phone.playbacks.filter((p) => p.progressive);
  assert.equal(replies.length, 2, s.report());
  for (const p of replies) {
    assert.ok(p.ok, `playback of ${p.url} failed: ${p.error}`);
    assert.ok(p.chunks >= 2, `${p.chunks} chunk(s)`);
    assert.ok(p.firstAudioMs < p.arrivedMs, `first audio at ${p.firstAudioMs} ms, all of it at ${p.arrivedMs} ms`);
    assert.ok(p.level > 300, `playback of ${p.url} is near silence (rms ${p.level})`);
  }

  // Once a reply had played, the scenario read its result; the goodbye's ended the call.
  const results = s.requests.filter((r) => new URL(r.url).pathname.startsWith('/voximplant/replies/'));
  assert.deepEqual(results.map((r) => r.code), [200, 200], s.report());
  for (const r of results) assert.equal(r.headers.Authorization, `Bearer ${TOKEN}`);
  const [one, two] = results.map((r) => JSON.parse(r.response));
  assert.equal(one.done, true);
  assert.equal(one.action, 'continue');
  assert.ok(one.reply_text.length > 0);
  const heard = v.transcribe(writeTmp(replies[0].bytes, 'progressive1.wav'));
  assert.ok(v.sharedWords(heard, one.reply_text).length >= 2, `played ${JSON.stringify(heard)} for ${JSON.stringify(one.reply_text)}`);
  assert.equal(two.action, 'hangup');
  assert.deepEqual(s.phone.says, []);
  assert.equal(s.hangups, 1, 'the scenario hung up after the goodbye reply');
});

test('TURN_END = "fixed": no voice activity events; each turn is recorded for MAX_TURN_S, then answered', async () => {
  const MAX_TURN_S = 5;
  const s = await call({ hosts: { [HOST]: daemon.voxd.url }, timeScale: 0.25, settings: { TURN_END: 'fixed', MAX_TURN_S } }, [question, goodbye]);
  noErrors(s);
  // The scenario never asked for MicStatusChange; every turn ran its full length.
  assert.equal(s.calls[0].micStatus, false);
  assert.ok(!s.timeline.some((e) => e.what.includes('MicStatusChange')), s.report());
  assert.deepEqual(s.logs.filter((l) => l.startsWith('turn recorded')), ['turn recorded (turn time)', 'turn recorded (turn time)']);
  const starts = s.timeline.filter((e) => e.what === 'scenario: call.sendMediaTo(recorder)').map((e) => e.t);
  const stops = s.timeline.filter((e) => e.what === 'scenario: recorder.stop()').map((e) => e.t);
  assert.equal(starts.length, 2, s.report());
  for (let i = 0; i < 2; i++) {
    const ms = stops[i] - starts[i];
    assert.ok(Math.abs(ms - MAX_TURN_S * 1000 * 0.25) < 200, `turn ${i} recorded for ${ms} ms (scaled)`);
  }
  // Both utterances were shorter than the turn: nothing was cut, and voxd understood them.
  assert.deepEqual(s.cuts, []);
  const turns = requestsTo(s, '/voximplant/process_audio');
  assert.deepEqual(turns.map((t) => t.code), [200, 200], s.report());
  assert.ok(v.sharedWords(JSON.parse(turns[0].response).user_text, question.text).length >= 3, turns[0].response);
  const results = s.requests.filter((r) => new URL(r.url).pathname.startsWith('/voximplant/replies/'));
  assert.equal(JSON.parse(results.at(-1).response).action, 'hangup', s.report());
  assert.deepEqual(s.phone.says, []);
  assert.equal(s.hangups, 1);
});

test('TURN_END = "fixed": an answer longer than MAX_TURN_S is cut there', async () => {
  const s = await call({ hosts: { [HOST]: daemon.voxd.url }, timeScale: 0.25, settings: { TURN_END: 'fixed', MAX_TURN_S: 1 } }, [question, goodbye]);
  noErrors(s);
  assert.ok(question.durationMs > 1500, `the question is ${question.durationMs} ms long`);
  assert.equal(s.cuts.length >= 1, true, s.report());
  assert.equal(s.cuts[0].utterance, question.file);
});

function writeTmp(bytes, name) {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

test('voxd answers an error (a broken recording): apology, then the call goes on', async () => {
  const s = await call({ hosts: { [HOST]: daemon.voxd.url }, timeScale: 0.25 }, [{ corrupt: true, durationMs: 1500 }, goodbye]);
  noErrors(s);
  const turns = requestsTo(s, '/voximplant/process_audio');
  assert.deepEqual(turns.map((t) => t.code), [422, 200], s.report());
  assert.equal(JSON.parse(turns[0].response).error.code, 'audio_decode');
  assert.deepEqual(s.phone.says, [APOLOGY]);
  const results = s.requests.filter((r) => new URL(r.url).pathname.startsWith('/voximplant/replies/'));
  assert.equal(results.length, 1, s.report());
  assert.equal(JSON.parse(results[0].response).action, 'hangup');
  assert.equal(s.hangups, 1);
});

test('voxd down: fallback greeting, apology, then a polite goodbye and hang-up', async () => {
  const closed = await v.freePort();
  const s = await call({ hosts: { [HOST]: `http://127.0.0.1:${closed}` }, timeScale: 0.1 }, [question, question]);
  noErrors(s);
  assert.deepEqual(s.phone.says, [FALLBACK_GREETING, APOLOGY, GOODBYE]);
  assert.deepEqual(new Set(s.phone.voices), new Set(['VoiceList.Default.ru_RU_Female']), 'a Russian voice reads the Russian phrases');
  const codes = s.requests.map((r) => [new URL(r.url).pathname, r.code]);
  assert.deepEqual(codes, [
    ['/voximplant/events', -4],
    ['/voximplant/process_audio', -4],
    ['/voximplant/process_audio', -4],
    ['/voximplant/events', -4],
  ]);
  assert.equal(s.hangups, 1);
});

test('voxd too slow: requests time out, the caller is not left waiting in silence', async () => {
  const hung = http.createServer(() => {});
  await new Promise((r) => hung.listen(0, '127.0.0.1', r));
  try {
    const s = await call({ hosts: { [HOST]: `http://127.0.0.1:${hung.address().port}` }, timeScale: 0.05, netTimeScale: 0.05 }, [question, question]);
    noErrors(s);
    assert.deepEqual(s.phone.says, [FALLBACK_GREETING, APOLOGY, GOODBYE]);
    const turns = requestsTo(s, '/voximplant/process_audio');
    assert.deepEqual(turns.map((t) => t.code), [-7, -7]);
    assert.equal(s.hangups, 1);
  } finally {
    hung.closeAllConnections();
    hung.close();
  }
});
