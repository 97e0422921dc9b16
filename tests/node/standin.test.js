// The stand-in itself: a scenario that uses an API the stand-in does not know (a drifted or
// misspelt name, a wrong argument shape, a global VoxEngine lacks) fails loudly instead of
// passing quietly; WebSocketAudioEncoding and VoiceList are as the typings declare them, and a
// phrase read without a voice of its language is caught; voxd's audio reaches the call only on
// the stream whose tag the scenario asked for; the media-stream codecs match G.711 as sox
// implements it; and players read MP3 as well as WAV (frame headers, lame's decoding), failing
// a progressive playback whose stream falls behind real time.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const WS = require('ws');
const { StandIn, DriftError } = require('./lib/voxengine');
const audio = require('./lib/audio');
const mp3 = require('./lib/mp3');
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

// MP3 replies: the frame headers say how much audio has arrived, lame decodes what was played,
// and a progressive player that runs dry is a failure.

/** `seconds` of a 440 Hz tone at `rate` as MP3 (mono CBR at `kbps`, no Xing tag; `extra` lame flags). */
function toneMp3(rate, kbps, seconds, extra = []) {
  const name = `tone-${rate}-${kbps}-${seconds}-${extra.join('')}`.replace(/[^\w.-]/g, '');
  const wav = path.join(dir, `${name}.wav`);
  const mp3 = path.join(dir, `${name}.mp3`);
  execFileSync('sox', ['-n', '-r', String(rate), '-c', '1', '-b', '16', wav, 'synth', String(seconds), 'sine', '440', 'vol', '0.5']);
  execFileSync('lame', ['--quiet', '-m', 'm', '-b', String(kbps), '-t', '--resample', String(rate / 1000), ...extra, wav, mp3]);
  return fs.readFileSync(mp3);
}

/** The frames of an MP3 file, cut at their headers. */
function framesOf(buf) {
  const out = [];
  for (let pos = 0; pos < buf.length; ) {
    const h = mp3.parseFrameHeader(buf, pos);
    assert.ok(h, `no frame at byte ${pos}`);
    out.push(buf.subarray(pos, pos + h.length));
    pos += h.length;
  }
  return out;
}


test('MP3 frame headers: MPEG-1, 2 and 2.5 Layer III as lame writes them, frame lengths and durations', () => {
  for (const [rate, kbps, version, samples] of [
    [8000, 32, 'MPEG-2.5', 576], [11025, 32, 'MPEG-2.5', 576], [12000, 32, 'MPEG-2.5', 576],
    [16000, 32, 'MPEG-2', 576], [22050, 48, 'MPEG-2', 576], [24000, 48, 'MPEG-2', 576],
    [32000, 48, 'MPEG-1', 1152], [44100, 48, 'MPEG-1', 1152], [48000, 48, 'MPEG-1', 1152],
  ]) {
    const buf = toneMp3(rate, kbps, 1);
    const frames = framesOf(buf); // the lengths add up to the file, frame after frame
    for (const f of frames) {
      const h = mp3.parseFrameHeader(f);
      assert.deepEqual([h.version, h.sampleRate, h.bitrate, h.channels, h.samples], [version, rate, kbps * 1000, 1, samples]);
      const exact = ((samples / 8) * kbps * 1000) / rate;
      assert.equal(h.length, Math.floor(exact) + h.padding, `${rate} Hz frame length`);
    }
    const seconds = (frames.length * samples) / rate;
    assert.ok(seconds >= 1 && seconds < 1 + (3 * samples) / rate, `${rate} Hz: ${frames.length} frames, ${seconds} s for 1 s`);
    if (rate === 22050 || rate === 44100) assert.ok(frames.some((f) => mp3.parseFrameHeader(f).padding), `${rate} Hz pads some frames`);
  }
  // By hand: FF FB 90 C4 is MPEG-1 Layer III, no CRC, 128 kbit/s, 44.1 kHz, no padding, mono.
  assert.deepEqual(mp3.parseFrameHeader(Buffer.from([0xff, 0xfb, 0x90, 0xc4])), {
    version: 'MPEG-1', sampleRate: 44100, bitrate: 128000, padding: 0, channels: 1, protected: false, length: 417, samples: 1152, seconds: 1152 / 44100,
  });
  // FF F3 4A C0: MPEG-2, 32 kbit/s, 16 kHz, padded: 72 * 32000 / 16000 + 1 = 145 bytes.
  assert.equal(mp3.parseFrameHeader(Buffer.from([0xff, 0xf3, 0x4a, 0xc0])).length, 145);
  for (const bad of [[0xff, 0xfd, 0x90, 0xc4], [0xff, 0xfb, 0xf0, 0xc4], [0xff, 0xfb, 0x0c, 0xc4], [0xff, 0xeb, 0x90, 0xc4], [0xfe, 0xfb, 0x90, 0xc4], [0xff, 0xfb, 0x00, 0xc4]]) {
    assert.equal(mp3.parseFrameHeader(Buffer.from(bad)), null, Buffer.from(bad).toString('hex'));
  }
});

test('MP3 streams are read in chunks cut anywhere; an ID3 tag is skipped, junk and a cut frame are errors', () => {
  const buf = toneMp3(16000, 32, 1);
  const whole = new mp3.Mp3Frames();
  whole.push(buf);
  whole.end();
  for (const size of [1, 3, 7, 100, 1000]) {
    const r = new mp3.Mp3Frames();
    let seconds = 0;
    for (let i = 0; i < buf.length; i += size) seconds += r.push(buf.subarray(i, i + size));
    r.end();
    assert.deepEqual([r.frames, seconds.toFixed(6)], [whole.frames, whole.seconds.toFixed(6)], `chunks of ${size}`);
  }
  const tagged = toneMp3(16000, 32, 1, ['--add-id3v2', '--tt', 'reply']);
  assert.equal(tagged.toString('latin1', 0, 3), 'ID3');
  const t = new mp3.Mp3Frames();
  t.push(tagged);
  t.end();
  assert.ok(t.id3);
  assert.equal(t.frames, whole.frames);
  assert.throws(() => new mp3.Mp3Frames().push(Buffer.concat([buf.subarray(0, 144), Buffer.from('junk'), buf.subarray(144)])), /not an MP3 Layer III frame at byte 144/);
  const cut = new mp3.Mp3Frames();
  cut.push(buf.subarray(0, buf.length - 10));
  assert.throws(() => cut.end(), /not a whole frame/);
});

test('progressive playback clock: a chunk more than 0.25 s after the audio before it ran out is a stall (MP3 and WAV)', () => {
  // MP3 at 8 kHz: 72 ms a frame. Seven frames (0.504 s) at once, then the rest.
  const frames = framesOf(toneMp3(8000, 32, 2));
  const seven = Buffer.concat(frames.slice(0, 7));
  const rest = Buffer.concat(frames.slice(7));
  const onTime = new mp3.ProgressiveClock();
  assert.equal(onTime.push(seven, 10), null);
  assert.equal(onTime.started, true);
  assert.equal(onTime.push(rest, 10.75), null, 'dry for 0.246 s: within the allowance');
  assert.deepEqual(onTime.stalls, []);
  const late = new mp3.ProgressiveClock();
  late.push(seven, 10);
  const stall = late.push(rest, 10.76);
  assert.ok(stall, 'dry for 0.256 s: a stall');
  assert.equal(stall.at.toFixed(3), '0.760');
  assert.equal(stall.had.toFixed(3), '0.504');
  assert.equal(stall.behind.toFixed(3), '0.256');
  assert.equal(late.format, 'mp3');

  // Fed in real time a frame ahead, any number of chunks play without a stall; one late frame
  // is one stall, after which the player plays on from its arrival.
  const paced = new mp3.ProgressiveClock();
  frames.forEach((f, i) => assert.equal(paced.push(f, 100 + Math.max(0, i - 1) * 0.072), null, `frame ${i}`));
  const gap = new mp3.ProgressiveClock();
  const times = frames.map((_, i) => (i < 10 ? i * 0.072 : i * 0.072 + 0.6));
  const stalls = frames.map((f, i) => gap.push(f, times[i])).filter(Boolean);
  assert.equal(stalls.length, 1, JSON.stringify(gap.stalls));
  assert.equal(stalls[0].had.toFixed(3), '0.720');

  // Bytes before the first whole frame do not start the player; its clock starts with the frame.
  const split = new mp3.ProgressiveClock();
  split.push(frames[0].subarray(0, 100), 0);
  assert.equal(split.started, false);
  split.push(Buffer.concat([frames[0].subarray(100), frames[1]]), 5);
  assert.equal(split.started, true);
  assert.equal(split.push(Buffer.concat(frames.slice(2)), 5.3), null);

  // WAV: the byte rate of the header. 8 kHz 16-bit: 16000 bytes a second.
  const wav = audio.buildWav(new Int16Array(16000), 8000);
  const half = 44 + 8000;
  const w1 = new mp3.ProgressiveClock();
  assert.equal(w1.push(wav.subarray(0, 44), 0), null);
  assert.equal(w1.started, false, 'a header alone is no audio');
  w1.push(wav.subarray(44, half), 0.01);
  assert.equal(w1.push(wav.subarray(half), 0.75), null);
  const w2 = new mp3.ProgressiveClock();
  w2.push(wav.subarray(0, half), 0);
  assert.deepEqual(w2.push(wav.subarray(half), 0.8), { at: 0.8, had: 0.5, behind: 0.30000000000000004 });
  assert.equal(w2.format, 'wav');
  assert.throws(() => new mp3.ProgressiveClock().push(Buffer.from('<html>nope</html>'), 0), /neither WAV nor MP3/);
});

test('lame decodes MP3 into the WAV the caller hears', async () => {
  const wav = audio.parseWav(await mp3.decodeMp3(toneMp3(8000, 32, 1)));
  assert.equal(wav.sampleRate, 8000);
  assert.equal(wav.channels, 1);
  assert.ok(wav.samples.length >= 8000 && wav.samples.length < 8000 + 3 * 576, `${wav.samples.length} samples`);
  assert.ok(audio.rms(wav.samples) > 5000, `rms ${audio.rms(wav.samples)}`);
});

/**
 * A server playing voxd's audio store: GET /a.mp3 (or .wav) sends `file` as `type` in chunks of
 * `seconds` of audio: `ahead` of them at once, then one every `every` s (`pause` s before the
 * chunk numbered `pauseAt`).
 */
async function chunkedAudio(file, type, { chunkBytes, ahead = 1, every = 0.1, pauseAt = -1, pause = 0 }) {
  const server = require('node:http').createServer(async (req, res) => {
    res.writeHead(200, { 'Content-Type': type });
    const sleep = (s) => new Promise((r) => setTimeout(r, s * 1000));
    for (let i = 0, n = 0; i < file.length; i += chunkBytes, n++) {
      if (n === pauseAt) await sleep(pause);
      if (n >= ahead) await sleep(every);
      res.write(file.subarray(i, i + chunkBytes));
    }
    res.end();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => { server.closeAllConnections(); return new Promise((r) => server.close(r)); } };
}

/** A scenario playing `file` (progressively or not) to the caller. */
function playScenario(file, progressive) {
  const play = progressive
    ? `const p = VoxEngine.createURLPlayer({ url: 'https://voxd.example.com/${file}' }, { progressivePlayback: true }); p.sendMediaTo(call);`
    : `call.startPlayback('https://voxd.example.com/${file}');`;
  return `VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
    const call = e.call;
    call.addEventListener(CallEvents.Connected, () => { ${play} });
    call.answer();
  });`;
}

test('MP3 progressive playback: played as it arrives and heard as WAV; a stream that falls behind real time fails', async () => {
  const tone = toneMp3(16000, 32, 1.5);
  const frames = framesOf(tone); // 36 ms, 144 bytes each
  // Five frames (0.18 s) every 0.1 s, 0.36 s ahead: always ahead of the player.
  let server = await chunkedAudio(tone, 'audio/mpeg', { chunkBytes: 5 * 144, ahead: 2 });
  let s;
  try {
    s = await runScenario(playScenario('a.mp3', true), { voxd: server.url, settleMs: 1500 });
  } finally {
    await server.close();
  }
  assert.deepEqual(s.errors.map(String), [], s.report());
  const [p] = s.phone.playbacks;
  assert.ok(p.ok, p.error);
  assert.equal(p.format, 'mp3');
  assert.deepEqual(p.mp3, { frames: frames.length, versions: ['MPEG-2'], sampleRates: [16000], bitrates: [32000], channels: [1], id3: false });
  assert.ok(p.chunks >= 5, `${p.chunks} chunks`);
  assert.deepEqual(p.stalls, []);
  const heard = audio.parseWav(p.bytes);
  assert.equal(heard.sampleRate, 16000);
  assert.ok(p.durationMs >= 1500 && p.durationMs < 1700, `${p.durationMs} ms`);
  assert.ok(p.level > 5000, `rms ${p.level}`);

  // The same, with the stream stopping for 0.8 s after 0.36 s of audio: the player runs dry.
  server = await chunkedAudio(tone, 'audio/mpeg', { chunkBytes: 5 * 144, ahead: 2, pauseAt: 2, pause: 0.8 });
  try {
    s = await runScenario(playScenario('a.mp3', true), { voxd: server.url, settleMs: 2300 });
  } finally {
    await server.close();
  }
  assert.equal(s.errors.length, 1, s.report());
  assert.match(s.errors[0].message, /progressive playback of https:\/\/voxd\.example\.com\/a\.mp3 stalled: a chunk arrived \d+\.\d{3} s after the first audio, with 0\.360 s of audio before it/);
  assert.equal(s.phone.playbacks[0].stalls.length, 1);
});

test('WAV progressive playback stalls too; MP3 plays without progressivePlayback; a Content-Type naming another format is an error', async () => {
  const wav = audio.buildWav(Int16Array.from({ length: 8000 }, (_, i) => Math.round(8000 * Math.sin(i / 3))), 8000);
  let server = await chunkedAudio(wav, 'audio/wav', { chunkBytes: 3200, ahead: 1, pauseAt: 2, pause: 0.7 });
  let s;
  try {
    s = await runScenario(playScenario('a.wav', true), { voxd: server.url, settleMs: 1800 });
  } finally {
    await server.close();
  }
  assert.equal(s.errors.length, 1, s.report());
  assert.match(s.errors[0].message, /a\.wav stalled: .* with 0\.397 s of audio before it/); // two chunks less the header
  assert.equal(s.phone.playbacks[0].format, 'wav');

  const tone = toneMp3(8000, 32, 1);
  server = await chunkedAudio(tone, 'audio/mpeg', { chunkBytes: tone.length });
  try {
    s = await runScenario(playScenario('b.mp3', false), { voxd: server.url, settleMs: 500 });
  } finally {
    await server.close();
  }
  assert.deepEqual(s.errors.map(String), [], s.report());
  assert.equal(s.phone.playbacks[0].format, 'mp3');
  assert.ok(s.phone.playbacks[0].ok, s.phone.playbacks[0].error);
  assert.equal(audio.parseWav(s.phone.playbacks[0].bytes).sampleRate, 8000);

  server = await chunkedAudio(tone, 'audio/wav', { chunkBytes: tone.length });
  try {
    s = await runScenario(playScenario('c.wav', false), { voxd: server.url, settleMs: 500 });
  } finally {
    await server.close();
  }
  assert.match(s.phone.playbacks[0].error, /served as audio\/wav, but the bytes are MP3/);
});
