// The stand-in itself: a scenario that uses an API the stand-in does not know (a drifted or
// misspelt name, a wrong argument shape, a global VoxEngine lacks) fails loudly instead of
// passing quietly; and the media-stream codecs match G.711 as sox implements it.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { StandIn, DriftError } = require('./lib/voxengine');
const audio = require('./lib/audio');
const v = require('./lib/voxd');

const dir = v.scratchDir();

/** Loads `code` as a scenario, rings it, and returns the stand-in after things settle. */
async function runScenario(code, { ring = true } = {}) {
  const file = path.join(dir, `scenario-${Date.now()}-${Math.random().toString(36).slice(2)}.js`);
  fs.writeFileSync(file, code);
  const s = new StandIn({ hosts: { 'voxd.example.com': 'http://127.0.0.1:9' } });
  try {
    await s.load(file).catch(() => {});
    if (ring && !s.errors.length) s.incomingCall();
    await new Promise((r) => setTimeout(r, 100));
    return s;
  } finally {
    await s.close();
  }
}

const cases = [
  ['an unknown Call method', 'e.call.startRecognition();', /call\.startRecognition/],
  ['an unknown event name', 'e.call.addEventListener(CallEvents.Answered, () => {});', /CallEvents\.Answered/],
  ['a misspelt VoxEngine function', 'VoxEngine.createWebsocket("wss://voxd.example.com/x");', /VoxEngine\.createWebsocket/],
  ['headers as an object for createWebSocket', 'VoxEngine.createWebSocket("wss://voxd.example.com/x", {headers: {Authorization: "x"}});', /headers must be a list/],
  ['headers as a list for Net', 'Net.httpRequestAsync("https://voxd.example.com/x", {headers: [{key: "a", value: "b"}]});', /HttpRequestOptions\.headers/],
  ['sendMediaTo without a tag', 'e.call.answer(); e.call.addEventListener(CallEvents.Connected, () => { const ws = VoxEngine.createWebSocket("ws://voxd.example.com/x"); e.call.sendMediaTo(ws, {encoding: WebSocketAudioEncoding.ULAW}); });', /tag is required/],
  ['an unknown encoding name', 'const x = WebSocketAudioEncoding.PCM16_48KHZ;', /WebSocketAudioEncoding\.PCM16_48KHZ/],
  ['a host nobody configured', 'Net.httpRequestAsync("https://evil.example.net/x");', /unexpected host/],
  ['a recorder without require(Modules.Recorder)', 'VoxEngine.createRecorder();', /require\(Modules\.Recorder\)/],
  ['sendMediaBetween with something that is not a media unit', 'VoxEngine.sendMediaBetween(e.call, "+74950000000");', /VoxEngine\.sendMediaBetween/],
  ['sendMediaBetween with a call not connected yet', 'VoxEngine.sendMediaBetween(e.call, VoxEngine.callPSTN("+74950000000", "+10000000000"));', /sendMediaBetween with a call in state/],
  ['the misspelt sendMediaBetweeen', 'VoxEngine.sendMediaBetweeen(e.call, e.call);', /VoxEngine\.sendMediaBetweeen/],
];

for (const [name, body, expected] of cases) {
  test(`drift is caught: ${name}`, async () => {
    const s = await runScenario(`VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => { ${body} });`);
    assert.ok(s.errors.length > 0, `no error for ${name}`);
    assert.ok(s.errors.some((e) => e instanceof DriftError && expected.test(e.message)), s.errors.map(String).join('\n'));
  });
}

test('a global VoxEngine does not have (console) is an error, not a pass', async () => {
  const s = await runScenario('VoxEngine.addEventListener(AppEvents.CallAlerting, () => { console.log("hi"); });');
  assert.ok(s.errors.some((e) => /console is not defined/.test(e.message)), s.errors.map(String).join('\n'));
});

test('an exception thrown at load time fails the load', async () => {
  const s = await runScenario('VoxEngine.addEventListener(AppEvents.NoSuchEvent, () => {});', { ring: false });
  assert.ok(s.errors.some((e) => e instanceof DriftError), s.errors.map(String).join('\n'));
});

test('a rejected async handler is an error', async () => {
  const s = await runScenario('VoxEngine.addEventListener(AppEvents.CallAlerting, async () => { throw new Error("boom"); });');
  assert.ok(s.errors.some((e) => /boom/.test(e.message)), s.errors.map(String).join('\n'));
});

test('call.record behaves as the typings say: RecordStarted with a URL, RecordStopped only after Disconnected', async () => {
  const s = await runScenario(`
    VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
      const call = e.call;
      call.addEventListener(CallEvents.Connected, () => call.record({ hd_audio: false }));
      call.addEventListener(CallEvents.RecordStarted, (ev) => { Logger.write('started ' + ev.url); call.hangup(); });
      call.addEventListener(CallEvents.Disconnected, () => Logger.write('disconnected'));
      call.addEventListener(CallEvents.RecordStopped, (ev) => Logger.write('stopped ' + ev.url + ' ' + typeof ev.cost));
      call.answer();
    });`);
  assert.deepEqual(s.errors.map(String), []);
  assert.equal(s.logs.length, 3, s.logs.join('\n'));
  assert.match(s.logs[0], /^started http:\/\/127\.0\.0\.1:\d+\/records\/call-.*\.mp3$/);
  assert.equal(s.logs[1], 'disconnected');
  assert.match(s.logs[2], /^stopped http.* string$/);
});

test('G.711 decoding matches sox, and encoding round-trips within one quantization step', () => {
  const samples = Int16Array.from({ length: 4000 }, (_, i) => Math.round(20000 * Math.sin(i / 7) * Math.sin(i / 500)));
  for (const [encoding, type] of [['ULAW', 'ul'], ['ALAW', 'al']]) {
    const raw = path.join(dir, `t.${type}`);
    fs.writeFileSync(raw, audio.encodeSamples(samples, encoding));
    const wav = path.join(dir, `t-${type}.wav`);
    execFileSync('sox', ['-t', type, '-r', '8000', '-c', '1', raw, '-b', '16', '-e', 'signed-integer', wav]);
    const bySox = audio.parseWav(fs.readFileSync(wav)).samples;
    const ours = audio.decodeSamples(fs.readFileSync(raw), encoding);
    assert.deepEqual(Array.from(ours), Array.from(bySox), `${encoding} decoding differs from sox`);
    for (let i = 0; i < samples.length; i++) {
      const step = Math.max(32, Math.abs(samples[i]) / 8);
      assert.ok(Math.abs(ours[i] - samples[i]) <= step, `${encoding} sample ${i}: ${samples[i]} → ${ours[i]}`);
    }
  }
});
