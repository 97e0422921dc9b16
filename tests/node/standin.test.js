// The stand-in itself: a scenario that uses an API the stand-in does not know (a drifted or
// misspelt name, a wrong argument shape, a global VoxEngine lacks) fails loudly instead of
// passing quietly; WebSocketAudioEncoding and VoiceList are as the typings declare them, and a
// phrase read without a voice of its language is caught; voxd's audio reaches the call only on
// the stream whose tag the scenario asked for; and the media-stream codecs match G.711 as sox
// implements it.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const WS = require('ws');
const { StandIn, DriftError } = require('./lib/voxengine');
const audio = require('./lib/audio');
const v = require('./lib/voxd');

const dir = v.scratchDir();

/** Loads `code` as a scenario, rings it, and returns the stand-in after things settle. */
async function runScenario(code, { ring = true, voxd = 'http://127.0.0.1:9', settleMs = 100 } = {}) {
  const file = path.join(dir, `scenario-${Date.now()}-${Math.random().toString(36).slice(2)}.js`);
  fs.writeFileSync(file, code);
  const s = new StandIn({ hosts: { 'voxd.example.com': voxd }, timeScale: 0.1 });
  try {
    await s.load(file).catch(() => {});
    if (ring && !s.errors.length) s.incomingCall();
    await new Promise((r) => setTimeout(r, settleMs));
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
  ['websocket.sendMediaTo(call, parameters) without a tag', 'e.call.answer(); e.call.addEventListener(CallEvents.Connected, () => { const ws = VoxEngine.createWebSocket("ws://voxd.example.com/x"); ws.sendMediaTo(e.call, {}); });', /tag is required/],
  ['a voice VoiceList does not declare', 'const v = VoiceList.Default.ru_RU_Natasha;', /VoiceList\.Default\.ru_RU_Natasha/],
  ['a voice that is not from VoiceList', 'e.call.answer(); e.call.addEventListener(CallEvents.Connected, () => e.call.say("Привет", {voice: "ru_RU_Female"}));', /CallSayParameters\.voice/],
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

test('WebSocketAudioEncoding has the members and values of the typings (PCM8 and PCM16 included)', async () => {
  const s = await runScenario(
    'VoxEngine.addEventListener(AppEvents.CallAlerting, () => { Logger.write(JSON.stringify(["PCM8", "PCM16_8KHZ", "PCM16", "PCM16_16KHZ", "ALAW", "ULAW", "OPUS"].map((k) => WebSocketAudioEncoding[k]))); });',
  );
  assert.deepEqual(s.errors.map(String), []);
  assert.deepEqual(JSON.parse(s.logs[0]), ['PCM8', 'PCM8', 'PCM16', 'PCM16', 'ALAW', 'ULAW', 'OPUS']);
});

/** Rings a scenario that says `text` with `params` once the call is up. */
function sayScenario(text, params) {
  return runScenario(
    `VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
      e.call.addEventListener(CallEvents.Connected, () => e.call.say(${JSON.stringify(text)}${params ? `, ${params}` : ''}));
      e.call.answer();
    });`,
  );
}

test('call.say: a voice of the phrase\'s language passes; none, or one of another language, is an error', async () => {
  const ok = [
    ['Извините, до свидания!', '{voice: VoiceList.Default.ru_RU_Female}', 'VoiceList.Default.ru_RU_Female'],
    ['Извините, до свидания!', '{voice: VoiceList.Yandex.Neural.ru_RU_alena}', 'VoiceList.Yandex.Neural.ru_RU_alena'],
    ['Sorry, goodbye!', '{voice: VoiceList.Default.en_US_Female}', 'VoiceList.Default.en_US_Female'],
    ['Sorry, goodbye!', '{voice: VoiceList.Amazon.en_US_Joanna}', 'VoiceList.Amazon.en_US_Joanna'],
  ];
  for (const [text, params, name] of ok) {
    const s = await sayScenario(text, params);
    assert.deepEqual(s.errors.map(String), [], `${text} with ${params}`);
    assert.deepEqual([s.phone.says, s.phone.voices], [[text], [name]]);
  }
  const bad = [
    ['Извините, до свидания!', null, /without a voice/],
    ['Извините, до свидания!', '{voice: VoiceList.Default.en_US_Female}', /en_US_Female, which does not speak ru_RU/],
    ['Sorry, goodbye!', '{voice: VoiceList.TBank.ru_RU_Anna}', /ru_RU_Anna, which does not speak en_US/],
  ];
  for (const [text, params, expected] of bad) {
    const s = await sayScenario(text, params);
    assert.ok(s.errors.some((e) => expected.test(e.message)), `${text} with ${params}: ${s.errors.map(String).join('\n') || 'no error'}`);
  }
});

/**
 * A WebSocket server playing voxd: on the scenario's "go" it sends one short reply (start,
 * media, stop) carrying `tag` (undefined: untagged), then the text message "clear".
 */
async function fakeVoxd(tag) {
  const server = new WS.Server({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => server.on('listening', r));
  server.on('connection', (ws) => {
    ws.on('message', (data) => {
      if (data.toString() !== 'go') return;
      const tagged = (frame) => JSON.stringify(tag === undefined ? frame : { ...frame, tag });
      const payload = Buffer.alloc(160, 0x7f).toString('base64'); // 20 ms of ULAW silence
      ws.send(tagged({ event: 'start', sequenceNumber: 0, start: { mediaFormat: { encoding: 'ULAW', sampleRate: 8000 } } }));
      for (let i = 1; i <= 5; i++) ws.send(tagged({ event: 'media', sequenceNumber: i, media: { chunk: i, timestamp: (i - 1) * 160, payload } }));
      ws.send(tagged({ event: 'stop', sequenceNumber: 6, stop: { mediaInfo: { duration: 0 } } }));
      ws.send('clear');
    });
  });
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

/** Connects a call to the fake voxd; `play` and `clear` are how the scenario attaches and clears voxd's stream. */
async function tagScenario(serverTag, play, clear) {
  const voxd = await fakeVoxd(serverTag);
  try {
    return await runScenario(
      `VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
        const call = e.call;
        call.addEventListener(CallEvents.Connected, () => {
          const ws = VoxEngine.createWebSocket('wss://voxd.example.com/voximplant/stream');
          ws.addEventListener(WebSocketEvents.OPEN, () => {
            ${play};
            ws.send('go');
          });
          ws.addEventListener(WebSocketEvents.MESSAGE, (m) => {
            if (m.text === 'clear') { ${clear}; }
          });
        });
        call.answer();
      });`,
      { voxd: voxd.url, settleMs: 500 },
    );
  } finally {
    await voxd.close();
  }
}

test('tags route voxd\'s stream: the matching consumer hears it and can clear it', async () => {
  for (const [serverTag, play, clear] of [
    [undefined, 'ws.sendMediaTo(call)', 'ws.clearMediaBuffer()'],
    ['voxd', 'ws.sendMediaTo(call, {tag: "voxd"})', 'ws.clearMediaBuffer({tag: "voxd"})'],
  ]) {
    const s = await tagScenario(serverTag, play, clear);
    assert.deepEqual(s.errors.map(String), [], `${serverTag}: ${s.report()}`);
    assert.equal(s.phone.replies.length, 1, `${serverTag}: ${s.report()}`);
    assert.equal(s.phone.replies[0].stopped, true);
    assert.equal(s.phone.clears, 1);
    assert.deepEqual([...s.sockets[0].voxdTags], [serverTag || '']);
  }
});

test('tags route voxd\'s stream: a mismatch is silence for the caller and an error', async () => {
  for (const [serverTag, play, expected] of [
    ['voxd', 'ws.sendMediaTo(call)', /tagged "voxd".*plays the stream tagged ""/],
    [undefined, 'ws.sendMediaTo(call, {tag: "voxd"})', /tagged "".*plays the stream tagged "voxd"/],
    ['caller', 'ws.sendMediaTo(call, {tag: "voxd"})', /tagged "caller".*plays the stream tagged "voxd"/],
  ]) {
    const s = await tagScenario(serverTag, play, '');
    assert.equal(s.phone.replies.length, 0, `${serverTag}: ${s.report()}`);
    assert.equal(s.errors.length, 1, s.errors.map(String).join('\n'));
    assert.match(s.errors[0].message, expected);
  }
});

test('ws.clearMediaBuffer for another tag than the one played is an error, and clears nothing', async () => {
  const s = await tagScenario('voxd', 'ws.sendMediaTo(call, {tag: "voxd"})', 'ws.clearMediaBuffer()');
  assert.equal(s.phone.clears, 0);
  assert.ok(s.errors.some((e) => /clearMediaBuffer\(\) for the stream tagged "" while the call plays the one tagged "voxd"/.test(e.message)), s.report());
});
