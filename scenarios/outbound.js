/*
 * voxd: outbound call (real time, over a WebSocket).
 *
 * Started by voxd through Voximplant's Management API (StartScenarios) with custom data
 * {"call_id": "<voxd's call id>", "phone": "+7..."} (at most 200 bytes). Dials the number; when
 * the callee answers, the call runs exactly like scenarios/streaming.js. The outcome (Connected,
 * Failed with its SIP code, Disconnected with its reason) is reported to POST
 * /voximplant/events under voxd's call id, and so is a transfer to the operator (Transferred,
 * or TransferFailed when nobody answers: the callee then hears an apology). If voxd is busy
 * when the callee answers ({"type":"busy"}: it is serving all the calls it can), the callee
 * goes to the operator voxd named, or hears that the lines are busy. Voximplant's own phrases
 * are read with a voice of LANGUAGE. With CALLER_ID left as the placeholder nothing is
 * dialled: the session logs why, reports Failed (reason "caller_id_not_set") and ends.
 * With AMD on, Voximplant's answering machine detector listens first: a person is connected to
 * voxd; on a voicemail VOICEMAIL_MESSAGE is left (or nothing, when it is empty), the call is hung
 * up and Voicemail is reported ({"message_left": true|false}). Keys the callee presses go to
 * voxd ({"type":"dtmf"}), and {"type":"send_digits"} from voxd is dialled into the call (another
 * company's menu). The callee hears a ringback tone while the operator's phone rings.
 *
 * Set the three values below, then upload this file as a scenario (see scenarios/README.md).
 */

// ---- Set these -------------------------------------------------------------------------------
// voxd's public https address (server.public_url in voxd.toml); the stream uses wss:// on it.
const VOXD_URL = 'https://voxd.example.com';
// server.scenario_token (/etc/voxd/credentials/server.scenario_token as scripts/install
// writes it, or voxd.toml), or server.token where only one token is set.
const VOXD_TOKEN = 'change-me';
// The number calls come from, E.164: one rented in your Voximplant account (Numbers → My
// numbers) or verified with it (Settings → Caller IDs). Left as +10000000000, no call is made.
const CALLER_ID = '+10000000000';

// Answering machines: true lets Voximplant's detector (AMD) tell a person from a voicemail
// before voxd speaks; false connects whoever answers to voxd at once.
const AMD_ON = true;
// Left on a voicemail, read in LANGUAGE's voice (VOICE); '' hangs up without a message.
const VOICEMAIL_MESSAGE = '';

// ---- Tuning (optional) -----------------------------------------------------------------------
// Diagnostics for a first live call: opens the stream with Voximplant's trace option and logs
// the stream's format, the first start and media frames of voxd's audio (as far as the scenario
// sees them) and the detector's results (see streaming.js). Leave false in production.
const TRACE = false;
// The detector's model (AMD.Model, d.ts:1075-1120: RU, US, KZ, EU_GENERAL, ...) and how long it
// may listen after the answer, in ms (at most 20000). No result in time counts as a person.
const AMD_MODEL = AMD.Model.RU;
const AMD_TIMEOUT_MS = 6500;
// The tone the callee hears while the operator's phone rings: 'RU', 'US' or '' (silence).
const RINGBACK_TONE = 'RU';
// The tag on the audio voxd sends back: voximplant_stream.tag in voxd.toml
// (VOXD_VOXIMPLANT_STREAM_TAG). The two must be equal; both are empty by default (voxd's audio
// is untagged, Voximplant's default stream). If they differ, the callee hears nothing from voxd.
const VOXD_TAG = '';
// Audio format on the stream: ULAW, PCM8 or PCM16 (see streaming.js).
const ENCODING = WebSocketAudioEncoding.ULAW;
// How long to wait for voxd to accept the stream, in seconds.
const CONNECT_TIMEOUT_S = 10;
// Time limit of one request to voxd, in seconds.
const REQUEST_TIMEOUT_S = 15;
// Spoken by Voximplant when voxd cannot answer ('ru' or 'en').
const LANGUAGE = 'ru';
const APOLOGY = {
  ru: 'Извините, сейчас я не могу продолжить разговор. До свидания!',
  en: 'Sorry, I cannot continue the call right now. Goodbye!',
}[LANGUAGE];
const BUSY = {
  ru: 'Извините, сейчас все линии заняты. Мы перезвоним вам позже. До свидания!',
  en: 'Sorry, all our lines are busy right now. We will call you back later. Goodbye!',
}[LANGUAGE];
const NO_OPERATOR = {
  ru: 'Извините, оператор сейчас не может ответить. До свидания!',
  en: 'Sorry, no operator can take the call right now. Goodbye!',
}[LANGUAGE];
// The voice that reads these phrases (VoiceList; it must speak LANGUAGE: without one Voximplant
// reads them in US English). See streaming.js for other voices.
const VOICE = {
  ru: VoiceList.Default.ru_RU_Female,
  en: VoiceList.Default.en_US_Female,
}[LANGUAGE];

// The caller id this file ships with: not a number of any account, so it is never dialled.
const PLACEHOLDER_CALLER_ID = '+10000000000';

/** Why CALLER_ID cannot be dialled from, or '' when it can. */
function callerIdProblem() {
  if (CALLER_ID === PLACEHOLDER_CALLER_ID) return 'CALLER_ID is still the placeholder ' + PLACEHOLDER_CALLER_ID;
  if (!/^\+?[1-9]\d{6,14}$/.test(CALLER_ID)) return 'CALLER_ID ' + JSON.stringify(CALLER_ID) + ' is not an E.164 number';
  return '';
}

/** Reports a call event to voxd; logs a failure, never rejects. */
async function report(callId, event, details) {
  const body = Object.assign({ call_id: callId, event: event, mode: 'stream' }, details);
  const res = await Net.httpRequestAsync(VOXD_URL + '/voximplant/events', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + VOXD_TOKEN },
    postData: JSON.stringify(body),
    timeout: REQUEST_TIMEOUT_S,
  });
  if (res.code < 200 || res.code >= 300) {
    Logger.write('voxd event ' + event + ' not accepted: ' + res.code + ' ' + (res.text || res.error || '').slice(0, 300));
  }
}

/**
 * Connects a live call to voxd's media stream. `onFailure` runs when voxd cannot be reached or
 * the stream ends while the call is still up; `onTransfer(number)` when voxd hands the call to
 * a human (the stream is closed by then); `onBusy(number)` when voxd is at capacity (with its
 * operator's number, or ''). Returns {close()} for the call's teardown.
 */
function connectToVoxd(call, callId, onFailure, onTransfer, onBusy) {
  const url = VOXD_URL.replace(/^http/, 'ws') + '/voximplant/stream?call_id=' + encodeURIComponent(callId);
  // trace (WebSocketParameters, d.ts:17172-17178): Voximplant keeps a file of every message.
  const ws = VoxEngine.createWebSocket(url, {
    headers: [{ name: 'Authorization', value: 'Bearer ' + VOXD_TOKEN }],
    trace: TRACE,
  });
  const traced = {}; // TRACE: the frame kinds already logged
  let open = false;
  let done = false; // closing on purpose: no fallback
  let busy = null; // voxd said it is at capacity: the operator it named, or ''
  const connectTimer = setTimeout(() => {
    if (open || done) return;
    Logger.write('voxd did not accept the stream in ' + CONNECT_TIMEOUT_S + ' s');
    done = true;
    ws.close();
    onFailure();
  }, CONNECT_TIMEOUT_S * 1000);

  ws.addEventListener(WebSocketEvents.OPEN, () => {
    open = true;
    clearTimeout(connectTimer);
    call.sendMediaTo(ws, { encoding: ENCODING, tag: 'callee', customParameters: { call_id: callId } });
    // voxd's audio into the call: the stream tagged VOXD_TAG, or the untagged default stream
    // (SendMediaParameters requires a tag, so then no parameters at all).
    if (VOXD_TAG) ws.sendMediaTo(call, { tag: VOXD_TAG });
    else ws.sendMediaTo(call);
  });

  ws.addEventListener(WebSocketEvents.MESSAGE, (e) => {
    let msg;
    try {
      msg = JSON.parse(e.text);
    } catch (err) {
      Logger.write('voxd sent a message that is not JSON: ' + e.text.slice(0, 200));
      return;
    }
    if (msg.event !== undefined) {
      // Voximplant's media frames (start/media/stop), should VoxEngine pass voxd's own to this
      // handler: they are audio, not control messages.
      if (TRACE && (msg.event === 'start' || msg.event === 'media') && !traced[msg.event]) {
        traced[msg.event] = true;
        Logger.write('trace: first ' + msg.event + ' frame from voxd: ' + e.text.slice(0, 500));
      }
      return;
    }
    if (msg.type === 'clear') {
      if (VOXD_TAG) ws.clearMediaBuffer({ tag: VOXD_TAG });
      else ws.clearMediaBuffer();
    } else if (msg.type === 'hangup') {
      done = true;
      call.hangup();
    } else if (msg.type === 'transfer') {
      done = true;
      call.stopMediaTo(ws);
      ws.close();
      onTransfer(msg.to);
    } else if (msg.type === 'busy') {
      busy = msg.transfer_to || '';
      call.stopMediaTo(ws);
    } else if (msg.type === 'send_digits') {
      // DTMF into the call, e.g. to get through another company's menu (d.ts:3664-3667).
      if (typeof msg.digits === 'string' && /^[0-9*#p]+$/.test(msg.digits)) call.sendDigits(msg.digits);
      else Logger.write('voxd sent digits that cannot be dialled: ' + e.text.slice(0, 200));
    } else if (msg.type === 'transcript') {
      const latency = msg.latency_ms !== undefined ? ' (' + Math.round(msg.latency_ms) + ' ms)' : '';
      Logger.write(msg.role + ': ' + msg.text + latency);
    } else {
      Logger.write('voxd sent an unknown message: ' + e.text.slice(0, 200));
    }
  });

  if (TRACE) {
    ws.addEventListener(WebSocketEvents.MEDIA_STARTED, (e) => {
      Logger.write('trace: voxd audio started: encoding ' + e.encoding + ', tag ' + JSON.stringify(e.tag));
    });
    Logger.write('trace: streaming the call to voxd as ' + ENCODING + ', tag "callee"');
  }

  ws.addEventListener(WebSocketEvents.ERROR, () => {
    Logger.write('voxd stream error');
  });

  ws.addEventListener(WebSocketEvents.CLOSE, (e) => {
    clearTimeout(connectTimer);
    Logger.write('voxd stream closed: ' + e.code + ' ' + e.reason);
    if (done) return;
    done = true;
    if (busy !== null) onBusy(busy);
    else onFailure();
  });

  return {
    /** A key the callee pressed (CallEvents.ToneReceived) goes to voxd. */
    tone(digit) {
      if (!open || done) return;
      ws.send(JSON.stringify({ type: 'dtmf', digit: digit }));
    },
    close() {
      clearTimeout(connectTimer);
      if (done && !open) return;
      done = true;
      ws.close();
    },
  };
}

VoxEngine.addEventListener(AppEvents.Started, async () => {
  let data = null;
  try {
    data = JSON.parse(VoxEngine.customData());
  } catch (e) {
    // handled below
  }
  if (!data || typeof data.call_id !== 'string' || typeof data.phone !== 'string') {
    Logger.write('custom data must be {"call_id": "...", "phone": "+..."}; got: ' + VoxEngine.customData());
    VoxEngine.terminate();
    return;
  }
  const callId = data.call_id;
  const problem = callerIdProblem();
  if (problem) {
    // Voximplant would refuse to dial from it: say why, tell voxd the call failed, and stop.
    Logger.write('not calling ' + data.phone + ': ' + problem + '; set CALLER_ID to a number rented in or ' +
      'verified with your Voximplant account');
    await report(callId, 'Failed', { reason: 'caller_id_not_set' });
    VoxEngine.terminate();
    return;
  }
  // The detector goes with the dialling (CallPSTNParameters.amd, d.ts:3254-3259; AMD.create,
  // d.ts:992-997); it listens once the callee answers.
  const amd = AMD_ON ? AMD.create({ model: AMD_MODEL, timeout: AMD_TIMEOUT_MS }) : null;
  const call = amd ? VoxEngine.callPSTN(data.phone, CALLER_ID, { amd: amd }) : VoxEngine.callPSTN(data.phone, CALLER_ID);
  let stream = null;
  let apologizing = false;
  let ended = false;
  let operator = null;
  let answered = false; // the callee answered: voxd is told once a person is on the line
  let decided = false; // the detector's answer (or its absence) has been acted on
  let voicemail = null; // leaving a message: {left}

  /** Dials the operator and connects the callee to them; apologizes if nobody answers. */
  function transfer(number) {
    Logger.write('transferring the call to ' + number);
    operator = VoxEngine.callPSTN(number, CALLER_ID);
    // Ringback until the operator's voice or the apology replaces it (one incoming stream per
    // call, d.ts:3624-3627).
    if (RINGBACK_TONE) call.playProgressTone(RINGBACK_TONE);
    operator.addEventListener(CallEvents.Connected, async () => {
      VoxEngine.sendMediaBetween(call, operator);
      await report(callId, 'Transferred', { to: number });
    });
    operator.addEventListener(CallEvents.Failed, async (e) => {
      Logger.write('the operator did not answer: ' + e.code + ' ' + e.reason);
      operator = null;
      if (!ended) {
        apologizing = true;
        call.say(NO_OPERATOR, { voice: VOICE });
      }
      await report(callId, 'TransferFailed', { to: number, code: e.code, reason: e.reason });
    });
    operator.addEventListener(CallEvents.Disconnected, () => {
      operator = null;
      if (!ended) call.hangup();
    });
  }

  /** A person is on the line (or the detector could not tell): the conversation starts. */
  async function talk() {
    if (ended) return;
    stream = connectToVoxd(
      call,
      callId,
      () => {
        apologizing = true;
        call.say(APOLOGY, { voice: VOICE });
      },
      transfer,
      (operatorNumber) => {
        if (operatorNumber) {
          transfer(operatorNumber);
        } else {
          apologizing = true;
          call.say(BUSY, { voice: VOICE });
        }
      },
    );
    await report(callId, 'Connected', {});
  }

  /** The detector found a voicemail: leave the message (if any), hang up, tell voxd. */
  function leaveMessage() {
    if (!VOICEMAIL_MESSAGE) {
      voicemail = { left: false };
      call.hangup();
      return;
    }
    voicemail = { left: false, playing: true };
    call.say(VOICEMAIL_MESSAGE, { voice: VOICE });
  }

  /** Acts on the detector's result once: HUMAN, VOICEMAIL, TIMEOUT, CALL_ENDED or none. */
  function decide(resultClass) {
    if (decided || ended) return;
    decided = true;
    if (TRACE || resultClass !== AMD.ResultClass.HUMAN) Logger.write('answering machine detector: ' + resultClass);
    if (resultClass === AMD.ResultClass.VOICEMAIL) leaveMessage();
    else if (resultClass !== AMD.ResultClass.CALL_ENDED) talk(); // HUMAN, TIMEOUT, an error: a person may be there
  }

  if (amd) {
    // AMD.Events (d.ts:999-1071): resultClass is an AMD.ResultClass (d.ts:1123-1145).
    amd.addEventListener(AMD.Events.DetectionComplete, (e) => {
      if (TRACE) Logger.write('trace: detector: ' + e.resultClass + ' ' + (e.resultSubtype || '') + ' ' + (e.confidence === undefined ? '' : e.confidence));
      if (answered) decide(e.resultClass);
    });
    amd.addEventListener(AMD.Events.DetectionError, (e) => {
      Logger.write('answering machine detector failed: ' + e.message);
      if (answered) decide('ERROR');
    });
  }

  call.addEventListener(CallEvents.Connected, () => {
    answered = true;
    call.handleTones(true);
    if (!amd) {
      talk();
      return;
    }
    // Should the detector never answer, the callee is not left in silence.
    setTimeout(() => decide('NO_RESULT'), AMD_TIMEOUT_MS + 3000);
  });

  // Keys the callee presses go to voxd (ToneReceived after handleTones(true), d.ts:2678-2681,
  // 3110-3119: `tone` is 0-9, * or #).
  call.addEventListener(CallEvents.ToneReceived, (e) => {
    if (stream) stream.tone(e.tone);
  });

  call.addEventListener(CallEvents.Failed, async (e) => {
    Logger.write('call to ' + data.phone + ' failed: ' + e.code + ' ' + e.reason);
    await report(callId, 'Failed', { code: e.code, reason: e.reason });
    VoxEngine.terminate();
  });

  call.addEventListener(CallEvents.PlaybackFinished, (e) => {
    if (voicemail && voicemail.playing) {
      voicemail = { left: !e.error };
      call.hangup();
    } else if (apologizing) {
      call.hangup();
    }
  });

  call.addEventListener(CallEvents.Disconnected, async (e) => {
    ended = true;
    if (stream) stream.close();
    if (operator) operator.hangup();
    if (voicemail) {
      // The call's outcome is the voicemail (voxd was never connected); a message cut off by
      // the machine hanging up counts as not left.
      Logger.write('voicemail: message ' + (voicemail.left ? 'left' : 'not left'));
      await report(callId, 'Voicemail', { message_left: voicemail.left });
    } else {
      await report(callId, 'Disconnected', { reason: e.reason, duration: e.duration });
    }
    VoxEngine.terminate();
  });
});
