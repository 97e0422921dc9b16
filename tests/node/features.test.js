// The scenarios' side of issue #27, each run unmodified in the VoxEngine stand-in against a
// scripted voxd (lib/fake-voxd.js: no models, so quick): keys the caller presses (DTMF) reach
// voxd, digits voxd asks for are dialled, voxd's own media frames in the MESSAGE handler are
// ignored without a log line each, TRACE, transfers from the caller's own number with a ringback
// tone, answering machines on outbound calls (a message left, or not, and Voicemail reported),
// and a 30-turn recording call within VoxEngine's 10 media players per session.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { HOST, CALLER_ID, runSession } = require('./lib/session');
const { StandIn, DriftError } = require('./lib/voxengine');
const { FakeVoxd } = require('./lib/fake-voxd');
const v = require('./lib/voxd');

const SCENARIOS = path.join(v.REPO, 'scenarios');
const CALLER = '+79001234567'; // the stand-in's default inbound caller
const OPERATOR = '+74950000000';
const dir = v.scratchDir();

function noErrors(s) {
  assert.deepEqual(s.errors.map(String), [], s.report());
}

/** Runs `fn(fake)` with a scripted voxd listening; closes it after. */
async function withFake(options, fn) {
  const fake = new FakeVoxd(options);
  await fake.listen();
  try {
    return await fn(fake);
  } finally {
    await fake.close();
  }
}

/** Rings streaming.js against `fake`; `drive` plays the caller. */
function streamingCall(fake, options, drive) {
  return runSession({
    scenario: path.join(SCENARIOS, 'streaming.js'),
    options: { hosts: { [HOST]: fake.url }, ...options },
    start: (s) => s.incomingCall(),
    drive,
    ms: 30_000,
  });
}

const sources = (call) => call.heardSources.map((h) => h.source);

test('streaming: a key pressed goes to voxd as {"type":"dtmf"}; {"type":"send_digits"} is dialled into the call', () =>
  withFake({}, async (fake) => {
    const s = await streamingCall(fake, {}, async (s) => {
      await s.waitFor(() => s.sockets.length === 1 && s.sockets[0].outbound, 10_000, 'the stream');
      s.phone.pressDigit('5');
      s.phone.pressDigit('#');
      await s.waitFor(() => fake.received.filter((m) => m.type === 'dtmf').length === 2, 5_000, 'two dtmf messages at voxd');
      fake.send({ type: 'send_digits', digits: '12#' });
      await s.waitFor(() => s.calls[0].digitsSent.length === 1, 5_000, 'call.sendDigits');
      fake.send({ type: 'hangup' });
    });
    noErrors(s);
    assert.deepEqual(fake.received.filter((m) => m.type === 'dtmf'), [{ type: 'dtmf', digit: '5' }, { type: 'dtmf', digit: '#' }]);
    assert.deepEqual(s.phone.unheardTones, [], 'the scenario asked for tones (call.handleTones(true))');
    assert.deepEqual(s.calls[0].digitsSent, ['12#']);
    // Voximplant's own start and media frames reached voxd as before.
    assert.equal(fake.received[0].event, 'start');
    assert.ok(fake.received.some((m) => m.event === 'media'));
    assert.equal(s.hangups, 1);
  }));

/** voxd's audio as Voximplant frames: a start, `n` media frames of ULAW silence, a stop. */
function sendVoxdAudio(fake, n) {
  fake.send({ event: 'start', sequenceNumber: 0, start: { mediaFormat: { encoding: 'ULAW', sampleRate: 8000 } } });
  const payload = Buffer.alloc(160, 0xff).toString('base64');
  for (let i = 1; i <= n; i++) fake.send({ event: 'media', sequenceNumber: i, media: { chunk: i, timestamp: (i - 1) * 160, payload } });
  fake.send({ event: 'stop', sequenceNumber: n + 1, stop: { mediaInfo: { bytesSent: n * 160, duration: 1 } } });
}

test('streaming: voxd\'s media frames in the MESSAGE handler are ignored without a log line each', () =>
  withFake({}, async (fake) => {
    const s = await streamingCall(fake, { mediaFramesToMessage: true }, async (s) => {
      await s.waitFor(() => s.sockets.length === 1 && s.sockets[0].outbound, 10_000, 'the stream');
      sendVoxdAudio(fake, 50);
      await s.waitFor(() => s.phone.replies.length === 1 && s.phone.replies[0].stopped, 5_000, 'voxd\'s audio');
      fake.send({ type: 'hangup' });
    });
    noErrors(s);
    assert.ok(s.timeline.filter((e) => e.what === 'websocket ← WebSocket.Message').length >= 52, 'the frames reached MESSAGE');
    assert.deepEqual(s.logs.filter((l) => !l.startsWith('voxd stream closed')), [], 'no log line for media frames');
    assert.equal(s.sockets[0].trace, false, 'no trace unless TRACE');
  }));

test('streaming, TRACE = true: the WebSocket is traced and the first start and media frame are logged once', () =>
  withFake({}, async (fake) => {
    const s = await streamingCall(fake, { mediaFramesToMessage: true, settings: { TRACE: true } }, async (s) => {
      await s.waitFor(() => s.sockets.length === 1 && s.sockets[0].outbound, 10_000, 'the stream');
      sendVoxdAudio(fake, 20);
      await s.waitFor(() => s.phone.replies.length === 1 && s.phone.replies[0].stopped, 5_000, 'voxd\'s audio');
      fake.send({ type: 'hangup' });
    });
    noErrors(s);
    assert.equal(s.sockets[0].trace, true, 'createWebSocket({trace: true})');
    const traces = s.logs.filter((l) => l.startsWith('trace: '));
    assert.equal(traces.filter((l) => l.startsWith('trace: first start frame from voxd: ')).length, 1, traces.join('\n'));
    assert.equal(traces.filter((l) => l.startsWith('trace: first media frame from voxd: ')).length, 1, traces.join('\n'));
    assert.ok(traces.some((l) => l === 'trace: voxd audio started: encoding ULAW, tag undefined'), traces.join('\n'));
    assert.ok(traces.some((l) => l === 'trace: streaming the call to voxd as ULAW, tag "caller"'), traces.join('\n'));
  }));

test('streaming: CALLER_ID empty → the transfer comes from the caller\'s own number; ringback until the operator answers', () =>
  withFake({}, async (fake) => {
    const s = await streamingCall(fake, { outbound: { answerAfterMs: 1500 } }, async (s) => {
      await s.waitFor(() => s.sockets.length === 1 && s.sockets[0].outbound, 10_000, 'the stream');
      fake.send({ type: 'transfer', to: OPERATOR });
      await s.waitFor(() => s.bridges.length === 1, 10_000, 'the operator bridged');
      s.calls[1].disconnect('Normal call clearing', 200);
    });
    noErrors(s);
    const dialled = s.timeline.find((e) => e.what === 'scenario: VoxEngine.callPSTN');
    assert.deepEqual([dialled.number, dialled.callerid], [OPERATOR, CALLER], s.report());
    // The caller heard voxd, then the ringback while the operator's phone rang, then the operator.
    assert.deepEqual(sources(s.calls[0]), ['voxd stream ""', 'progress tone RU', `bridge ${s.calls[1].callId}`]);
    const [tone, bridge] = s.calls[0].heardSources.slice(1).map((h) => h.t);
    assert.ok(bridge - tone >= 1000, `ringback for ${bridge - tone} ms`);
  }));

test('streaming: the operator does not answer → the apology replaces the ringback', () =>
  withFake({}, async (fake) => {
    const s = await streamingCall(fake, { settings: { CALLER_ID }, outbound: { failCode: 486, failReason: 'Busy Here', failAfterMs: 500 } }, async (s) => {
      await s.waitFor(() => s.sockets.length === 1 && s.sockets[0].outbound, 10_000, 'the stream');
      fake.send({ type: 'transfer', to: OPERATOR });
    });
    noErrors(s);
    const dialled = s.timeline.find((e) => e.what === 'scenario: VoxEngine.callPSTN');
    assert.equal(dialled.callerid, CALLER_ID, 'a CALLER_ID that is set is used');
    assert.deepEqual(sources(s.calls[0]).slice(1, 3), ['progress tone RU', 'say "Извините, оператор сейчас не может ответ"']);
    assert.equal(s.hangups, 1);
  }));

test('streaming: RINGBACK_TONE = "" → no tone; a caller whose number is hidden cannot be the caller ID', () =>
  withFake({}, async (fake) => {
    const s = await runSession({
      scenario: path.join(SCENARIOS, 'streaming.js'),
      options: { hosts: { [HOST]: fake.url }, settings: { RINGBACK_TONE: '' } },
      start: (s) => s.incomingCall({ callerid: 'anonymous' }),
      drive: async (s) => {
        await s.waitFor(() => s.sockets.length === 1 && s.sockets[0].outbound, 10_000, 'the stream');
        fake.send({ type: 'transfer', to: OPERATOR });
      },
      ms: 30_000,
    });
    noErrors(s);
    assert.equal(s.calls.length, 1, 'nobody dialled');
    assert.ok(s.logs.some((l) => l.includes('CALLER_ID is empty and the caller\'s number "anonymous" is not an E.164 number')), s.logs.join('\n'));
    assert.ok(!sources(s.calls[0]).includes('progress tone RU'));
  }));

/** Rings recording.js against `fake` with `turns` silent utterances; `drive` plays the caller. */
function recordingCall(fake, options, drive) {
  return runSession({
    scenario: path.join(SCENARIOS, 'recording.js'),
    options: { hosts: { [HOST]: fake.url }, timeScale: 0.1, ...options },
    start: (s) => s.incomingCall(),
    drive,
    ms: 60_000,
  });
}

test('recording: a key is reported as ToneReceived; one voxd maps to the operator transfers from the caller\'s number', () => {
  const onEvent = (e) => {
    if (e.event === 'Connected') return { greeting_audio_url: `${fake.publicUrl}/audio/greeting.wav`, greeting_text: 'Hello' };
    if (e.event === 'ToneReceived' && e.digit === '0') return { action: 'transfer', transfer_to: OPERATOR };
    return {};
  };
  const fake = new FakeVoxd({ onEvent });
  return fake.listen().then(async () => {
    try {
      const s = await recordingCall(fake, {}, async (s) => {
        await s.waitFor(() => s.timeline.some((e) => e.what === 'scenario: call.sendMediaTo(recorder)'), 10_000, 'the first turn');
        s.phone.pressDigit('5'); // nothing mapped: the call goes on
        await s.waitFor(() => fake.turns.length >= 1, 10_000, 'the first turn at voxd');
        await s.waitFor(() => s.timeline.filter((e) => e.what === 'scenario: call.sendMediaTo(recorder)').length >= 2, 10_000, 'the second turn');
        s.phone.pressDigit('0');
        await s.waitFor(() => s.bridges.length === 1, 10_000, 'the operator bridged');
        s.calls[1].disconnect('Normal call clearing', 200);
      });
      noErrors(s);
      const tones = fake.events.filter((e) => e.event === 'ToneReceived');
      assert.deepEqual(tones.map((e) => [e.call_id, e.digit]), [[s.calls[0].callId, '5'], [s.calls[0].callId, '0']]);
      assert.equal(fake.turns.length, 1, 'the turn under way when 0 was pressed was not sent');
      const dialled = s.timeline.find((e) => e.what === 'scenario: VoxEngine.callPSTN');
      assert.deepEqual([dialled.number, dialled.callerid], [OPERATOR, CALLER], s.report());
      assert.deepEqual(sources(s.calls[0]).slice(-2), ['progress tone RU', `bridge ${s.calls[1].callId}`]);
      assert.deepEqual(fake.events.map((e) => e.event), ['Connected', 'ToneReceived', 'ToneReceived', 'Transferred', 'Disconnected']);
    } finally {
      await fake.close();
    }
  });
});

test('recording: a key voxd maps to hang-up ends the call', () => {
  const fake = new FakeVoxd({ onEvent: (e) => (e.event === 'ToneReceived' ? { action: 'hangup' } : {}) });
  return fake.listen().then(async () => {
    try {
      const s = await recordingCall(fake, {}, async (s) => {
        await s.waitFor(() => s.timeline.some((e) => e.what === 'scenario: call.sendMediaTo(recorder)'), 10_000, 'the first turn');
        s.phone.pressDigit('9');
      });
      noErrors(s);
      assert.equal(s.hangups, 1);
      assert.equal(fake.turns.length, 0);
      assert.deepEqual(fake.events.map((e) => e.event), ['Connected', 'ToneReceived', 'Disconnected']);
    } finally {
      await fake.close();
    }
  });
});

test('recording: a 30-turn call stays within 10 media players (each Player is stopped once it has played)', () => {
  const TURNS = 30;
  let fake;
  const onTurn = (body, n) => ({
    call_id: body.call_id, user_text: `turn ${n}`, reply_text: `reply ${n}`,
    reply_audio_url: `${fake.publicUrl}/audio/reply-${n}.wav`, action: n >= TURNS ? 'hangup' : 'continue',
  });
  const onEvent = (e) => (e.event === 'Connected' ? { greeting_audio_url: `${fake.publicUrl}/audio/greeting.wav`, greeting_text: 'Hello' } : {});
  fake = new FakeVoxd({ onEvent, onTurn });
  return fake.listen().then(async () => {
    try {
      const s = await recordingCall(fake, { timeScale: 0.05, settings: { TURN_END: 'fixed', MAX_TURN_S: 1, PROGRESSIVE: false } });
      noErrors(s);
      assert.equal(fake.turns.length, TURNS);
      assert.equal(s.phone.playbacks.length, TURNS + 1, 'the greeting and 30 replies');
      assert.ok(s.phone.playbacks.every((p) => p.ok), s.report());
      assert.ok(s.playersMade >= TURNS + 1, `${s.playersMade} players made`);
      assert.ok(s.maxPlayersAlive <= 2, `${s.maxPlayersAlive} players alive at once`);
      assert.equal(s.players.size, 0, 'every player was released');
      assert.equal(s.hangups, 1);
    } finally {
      await fake.close();
    }
  });
});

test('recording, TRACE = true: the recorder\'s events and each request with its answer are logged, never the token', () => {
  const fake = new FakeVoxd({ onEvent: () => ({}), onTurn: (b) => ({ call_id: b.call_id, user_text: 'bye', reply_text: 'Bye', reply_audio_url: `${fake.publicUrl}/audio/bye.wav`, action: 'hangup' }) });
  return fake.listen().then(async () => {
    try {
      const s = await recordingCall(fake, { settings: { TRACE: true, PROGRESSIVE: false } });
      noErrors(s);
      const traces = s.logs.filter((l) => l.startsWith('trace: '));
      assert.ok(traces.some((l) => l.startsWith('trace: recorder started: http://')), traces.join('\n'));
      assert.ok(traces.some((l) => /^trace: recorder stopped: \d+ s$/.test(l)), traces.join('\n'));
      assert.ok(traces.some((l) => l.startsWith(`trace: POST https://${HOST}/voximplant/events {"call_id"`) && l.includes('"event":"Connected"') && l.includes(' → 200 {}')), traces.join('\n'));
      assert.ok(traces.some((l) => l.includes('/voximplant/process_audio') && l.includes('"action":"hangup"')), traces.join('\n'));
      assert.ok(!s.logs.some((l) => l.includes('change-me')), 'the token is not logged');
    } finally {
      await fake.close();
    }
  });
});

test('the stand-in fails an 11th media player alive at once, as VoxEngine would', async () => {
  const file = path.join(dir, 'players.js');
  fs.writeFileSync(file, `VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
    e.call.addEventListener(CallEvents.Connected, () => {
      for (let i = 0; i < 11; i++) e.call.say('Hello number ' + i, { voice: VoiceList.Default.en_US_Female });
    });
    e.call.answer();
  });`);
  const s = new StandIn({ timeScale: 0.1 });
  try {
    await s.load(file);
    s.incomingCall();
    await s.waitFor(() => s.errors.length > 0, 5_000, 'the limit');
    assert.ok(s.errors[0] instanceof DriftError && /over the limit of 10/.test(s.errors[0].message), String(s.errors[0]));
    assert.equal(s.phone.says.length, 10);
  } finally {
    await s.close();
  }
});

/** Runs outbound.js against `fake` with the detector saying `amd`. */
function outboundCall(fake, { amd, settings = {}, drive }) {
  const customData = JSON.stringify({ call_id: 'out-amd-1', phone: '+79001112233' });
  return runSession({
    scenario: path.join(SCENARIOS, 'outbound.js'),
    options: { hosts: { [HOST]: fake.url }, customData, timeScale: 0.2, outbound: { answerAfterMs: 300, amd, amdAfterMs: 2000 }, settings: { CALLER_ID, ...settings } },
    drive,
    ms: 30_000,
  });
}

const MESSAGE = 'Здравствуйте! Это пекарня «Солнышко». Ваш заказ готов. Перезвоните нам, пожалуйста.';

test('outbound, AMD: a voicemail → the message is left, the call hung up, Voicemail reported (message_left true); voxd never streamed', () =>
  withFake({}, async (fake) => {
    const s = await outboundCall(fake, { amd: 'VOICEMAIL', settings: { VOICEMAIL_MESSAGE: MESSAGE } });
    noErrors(s);
    const dialled = s.timeline.find((e) => e.what === 'scenario: VoxEngine.callPSTN');
    assert.equal(dialled.amd, 'ru', 'a detector went with the dialling');
    assert.deepEqual(s.phone.says, [MESSAGE]);
    assert.deepEqual(s.phone.voices, ['VoiceList.Default.ru_RU_Female']);
    assert.equal(s.sockets.length, 0, 'no stream to voxd');
    assert.equal(s.hangups, 1);
    assert.deepEqual(fake.events.map((e) => [e.event, e.call_id, e.message_left]), [['Voicemail', 'out-amd-1', true]]);
  }));

test('outbound, AMD: a voicemail with VOICEMAIL_MESSAGE empty → hung up at once, message_left false', () =>
  withFake({}, async (fake) => {
    const s = await outboundCall(fake, { amd: 'VOICEMAIL' });
    noErrors(s);
    assert.deepEqual(s.phone.says, []);
    assert.equal(s.hangups, 1);
    assert.deepEqual(fake.events.map((e) => [e.event, e.message_left]), [['Voicemail', false]]);
  }));

test('outbound, AMD: a person → the stream opens only once the detector says HUMAN; keys and digits both ways', () =>
  withFake({}, async (fake) => {
    const s = await outboundCall(fake, {
      amd: 'HUMAN',
      drive: async (s) => {
        await s.waitFor(() => s.calls.length === 1 && s.calls[0].live(), 10_000, 'the answer');
        const answeredAt = Date.now();
        await s.waitFor(() => s.sockets.length === 1 && s.sockets[0].outbound, 10_000, 'the stream');
        assert.ok(Date.now() - answeredAt >= 300, 'the stream waited for the detector');
        s.phone.pressDigit('1');
        await s.waitFor(() => fake.received.some((m) => m.type === 'dtmf'), 5_000, 'the dtmf at voxd');
        fake.send({ type: 'send_digits', digits: '2p3' });
        await s.waitFor(() => s.calls[0].digitsSent.length === 1, 5_000, 'call.sendDigits');
        fake.send({ type: 'hangup' });
      },
    });
    noErrors(s);
    assert.deepEqual(fake.received.filter((m) => m.type === 'dtmf'), [{ type: 'dtmf', digit: '1' }]);
    assert.deepEqual(s.calls[0].digitsSent, ['2p3']);
    assert.deepEqual(fake.events.map((e) => e.event), ['Connected', 'Disconnected']);
  }));

test('outbound, AMD = false: no detector, the stream opens when the callee answers', () =>
  withFake({}, async (fake) => {
    const s = await outboundCall(fake, {
      settings: { AMD_ON: false },
      drive: async (s) => {
        await s.waitFor(() => s.sockets.length === 1 && s.sockets[0].outbound, 10_000, 'the stream');
        fake.send({ type: 'hangup' });
      },
    });
    noErrors(s);
    assert.equal(s.timeline.find((e) => e.what === 'scenario: VoxEngine.callPSTN').amd, undefined);
    assert.deepEqual(fake.events.map((e) => e.event), ['Connected', 'Disconnected']);
  }));

test('outbound, AMD: a detector error counts as a person (the callee is not dropped)', () =>
  withFake({}, async (fake) => {
    const s = await outboundCall(fake, {
      amd: 'ERROR',
      drive: async (s) => {
        await s.waitFor(() => s.sockets.length === 1 && s.sockets[0].outbound, 10_000, 'the stream');
        fake.send({ type: 'hangup' });
      },
    });
    noErrors(s);
    assert.ok(s.logs.some((l) => l.startsWith('answering machine detector failed: ')), s.logs.join('\n'));
    assert.deepEqual(fake.events.map((e) => e.event), ['Connected', 'Disconnected']);
  }));
