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

// ---- Tuning (optional) -----------------------------------------------------------------------
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
  const ws = VoxEngine.createWebSocket(url, {
    headers: [{ name: 'Authorization', value: 'Bearer ' + VOXD_TOKEN }],
  });
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
    } else if (msg.type === 'transcript') {
      const latency = msg.latency_ms !== undefined ? ' (' + Math.round(msg.latency_ms) + ' ms)' : '';
      Logger.write(msg.role + ': ' + msg.text + latency);
    } else {
      Logger.write('voxd sent an unknown message: ' + e.text.slice(0, 200));
    }
  });

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
  const call = VoxEngine.callPSTN(data.phone, CALLER_ID);
  let stream = null;
  let apologizing = false;
  let ended = false;
  let operator = null;

  /** Dials the operator and connects the callee to them; apologizes if nobody answers. */
  function transfer(number) {
    Logger.write('transferring the call to ' + number);
    operator = VoxEngine.callPSTN(number, CALLER_ID);
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

  call.addEventListener(CallEvents.Connected, async () => {
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
  });

  call.addEventListener(CallEvents.Failed, async (e) => {
    Logger.write('call to ' + data.phone + ' failed: ' + e.code + ' ' + e.reason);
    await report(callId, 'Failed', { code: e.code, reason: e.reason });
    VoxEngine.terminate();
  });

  call.addEventListener(CallEvents.PlaybackFinished, () => {
    if (apologizing) call.hangup();
  });

  call.addEventListener(CallEvents.Disconnected, async (e) => {
    ended = true;
    if (stream) stream.close();
    if (operator) operator.hangup();
    await report(callId, 'Disconnected', { reason: e.reason, duration: e.duration });
    VoxEngine.terminate();
  });
});
