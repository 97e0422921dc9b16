/*
 * voxd: media-stream mode (real time, over a WebSocket).
 *
 * An inbound call is answered and its audio is streamed to voxd's /voximplant/stream; voxd's
 * speech is played back into the call as it arrives. voxd detects the caller's turns, answers
 * with streamed speech and stops talking when the caller interrupts: it then sends
 * {"type":"clear"} and the audio already queued in Voximplant is dropped. {"type":"hangup"}
 * ends the call; {"type":"transfer","to":"+7..."} (sent once voxd's hand-off words have
 * played) closes the stream, dials the operator and connects the caller to them (an apology
 * if nobody answers); {"type":"transcript"} lines go to the call log. With several voxd
 * servers in VOXD_URLS the call goes to the first that takes it: one that is unreachable, or
 * busy ({"type":"busy"}, then close code 1013: it is serving all the calls it can), is passed
 * over for the next. When every one is busy the call goes to the operator voxd named in its
 * busy message (tools.operator_phone), or the caller hears that the lines are busy. If voxd
 * cannot be reached or the stream breaks, the caller hears a short apology and the call ends.
 * Voximplant's own phrases (apology, busy, no operator) are read with a voice of LANGUAGE.
 * A transfer comes from CALLER_ID, or from the caller's own number when CALLER_ID is empty; the
 * caller hears a ringback tone while the operator's phone rings. With CALLER_ID left as the
 * placeholder nobody is dialled: a transfer ends with the no-operator phrase and a line in the
 * call log. Keys the caller presses (DTMF) go to voxd as {"type":"dtmf","digit":"5"};
 * {"type":"send_digits","digits":"12#"} from voxd is dialled into the call. TRACE logs what a
 * first live call needs to settle the stream's format.
 *
 * Set the four values below, then upload this file as a scenario (see scenarios/README.md).
 */

// ---- Set these -------------------------------------------------------------------------------
// voxd's public https address (server.public_url in voxd.toml); the stream uses wss:// on it.
// With several voxd servers, list them all: each call goes to the first that has room.
const VOXD_URLS = ['https://voxd.example.com'];
// server.scenario_token (/etc/voxd/credentials/server.scenario_token as scripts/install
// writes it, or voxd.toml), or server.token where only one token is set.
const VOXD_TOKEN = 'change-me';
// Audio format on the stream: ULAW (8 kHz, telephone quality, least traffic), PCM8 (16-bit
// 8 kHz) or PCM16 (16-bit 16 kHz, best for recognition).
const ENCODING = WebSocketAudioEncoding.ULAW;
// The number transferred calls come from, E.164: one rented in your Voximplant account
// (Numbers → My numbers) or verified with it (Settings → Caller IDs). Empty: the caller's own
// number (call.callerid()), so the operator sees who is calling. Set to the placeholder
// +10000000000, transfers are refused (the caller hears NO_OPERATOR).
const CALLER_ID = '';

// ---- Tuning (optional) -----------------------------------------------------------------------
// Diagnostics for a first live call: opens the stream with Voximplant's trace option (a trace
// file of every message sent and received, linked from the session log) and logs the stream's
// format and the first start and media frames voxd's audio arrives in, as far as the scenario
// sees them. Leave false in production.
const TRACE = false;
// The tone the caller hears while the operator's phone rings (call.playProgressTone): 'RU' or
// 'US'; '' for silence.
const RINGBACK_TONE = 'RU';
// The tag on the audio voxd sends back: voximplant_stream.tag in voxd.toml
// (VOXD_VOXIMPLANT_STREAM_TAG). The two must be equal; both are empty by default (voxd's audio
// is untagged, Voximplant's default stream). With a tag, voxd's audio is played with
// ws.sendMediaTo(call, {tag}) and cleared with ws.clearMediaBuffer({tag}); if the two differ,
// the caller hears nothing from voxd.
const VOXD_TAG = '';
// How long to wait for voxd to accept the stream, in seconds.
const CONNECT_TIMEOUT_S = 10;
// Spoken by Voximplant when voxd cannot answer ('ru' or 'en').
const LANGUAGE = 'ru';
const APOLOGY = {
  ru: 'Извините, сейчас я не могу ответить. Пожалуйста, перезвоните позже. До свидания!',
  en: 'Sorry, I cannot answer right now. Please call again later. Goodbye!',
}[LANGUAGE];
const BUSY = {
  ru: 'Извините, сейчас все линии заняты. Пожалуйста, перезвоните позже. До свидания!',
  en: 'Sorry, all our lines are busy right now. Please call again later. Goodbye!',
}[LANGUAGE];
const NO_OPERATOR = {
  ru: 'Извините, оператор сейчас не может ответить. Пожалуйста, перезвоните позже. До свидания!',
  en: 'Sorry, no operator can take your call right now. Please call again later. Goodbye!',
}[LANGUAGE];
// The voice that reads these phrases (VoiceList; it must speak LANGUAGE: without one Voximplant
// reads them in US English). The freemium VoiceList.Default voices cost least; others, e.g.
// VoiceList.Yandex.Neural.ru_RU_alena or VoiceList.TBank.ru_RU_Anna, sound more natural.
const VOICE = {
  ru: VoiceList.Default.ru_RU_Female,
  en: VoiceList.Default.en_US_Female,
}[LANGUAGE];

// The caller id this file ships with: not a number of any account, so it is never dialled.
const PLACEHOLDER_CALLER_ID = '+10000000000';

/**
 * The number a transfer comes from: CALLER_ID, or when it is empty the caller's own number
 * (Call.callerid(), d.ts:3484). {number, problem}: problem says why it cannot be dialled from.
 */
function transferCallerId(call) {
  if (CALLER_ID === PLACEHOLDER_CALLER_ID) return { number: '', problem: 'CALLER_ID is still the placeholder ' + PLACEHOLDER_CALLER_ID };
  const number = CALLER_ID || call.callerid();
  if (!/^\+?[1-9]\d{6,14}$/.test(number)) {
    const what = CALLER_ID ? 'CALLER_ID ' : "CALLER_ID is empty and the caller's number ";
    return { number: '', problem: what + JSON.stringify(number) + ' is not an E.164 number' };
  }
  return { number: number, problem: '' };
}

/**
 * Connects a live call to the voxd at `base`. The handlers: `unreachable()` when that voxd
 * never accepted the stream (down, refused, too slow), `busy(transferTo)` when it is at
 * capacity (its operator's number, or ''), `failure()` when the stream ends while the call is
 * still up, `transfer(number)` when voxd hands the call to a human (the stream is closed by
 * then). Returns {close()} for the call's teardown.
 */
function connectToVoxd(call, callId, base, on) {
  const url = base.replace(/^http/, 'ws') + '/voximplant/stream?call_id=' + encodeURIComponent(callId);
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
    Logger.write('voxd ' + base + ' did not accept the stream in ' + CONNECT_TIMEOUT_S + ' s');
    done = true;
    ws.close();
    on.unreachable();
  }, CONNECT_TIMEOUT_S * 1000);

  ws.addEventListener(WebSocketEvents.OPEN, () => {
    open = true;
    clearTimeout(connectTimer);
    call.sendMediaTo(ws, { encoding: ENCODING, tag: 'caller', customParameters: { call_id: callId } });
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
      on.transfer(msg.to);
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
    // The format Voximplant says voxd's audio is in, and the one the call's audio goes out in.
    ws.addEventListener(WebSocketEvents.MEDIA_STARTED, (e) => {
      Logger.write('trace: voxd audio started: encoding ' + e.encoding + ', tag ' + JSON.stringify(e.tag));
    });
    Logger.write('trace: streaming the call to voxd as ' + ENCODING + ', tag "caller"');
  }

  ws.addEventListener(WebSocketEvents.ERROR, () => {
    Logger.write('voxd stream error');
  });

  ws.addEventListener(WebSocketEvents.CLOSE, (e) => {
    clearTimeout(connectTimer);
    Logger.write('voxd stream closed: ' + e.code + ' ' + e.reason);
    if (done) return;
    done = true;
    if (busy !== null) on.busy(busy);
    else if (!open) on.unreachable();
    else on.failure();
  });

  return {
    /** A key the caller pressed (CallEvents.ToneReceived) goes to voxd. */
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

VoxEngine.addEventListener(AppEvents.CallAlerting, (alerting) => {
  const call = alerting.call;
  let stream = null;
  let apologizing = false;
  let ended = false;
  let operator = null;

  /** Dials the operator and connects the caller to them; apologizes if nobody answers. */
  function transfer(number) {
    const from = transferCallerId(call);
    const problem = from.problem;
    if (problem) {
      Logger.write('not transferring the call to ' + number + ': ' + problem + '; set CALLER_ID to a number ' +
        'rented in or verified with your Voximplant account');
      apologize(NO_OPERATOR);
      return;
    }
    Logger.write('transferring the call to ' + number + ' from ' + from.number);
    operator = VoxEngine.callPSTN(number, from.number);
    // Ringback while the operator's phone rings. A call receives one audio stream and a new one
    // replaces it (d.ts:3624-3627), so the operator's voice or the apology ends the tone.
    if (RINGBACK_TONE) call.playProgressTone(RINGBACK_TONE);
    operator.addEventListener(CallEvents.Connected, () => VoxEngine.sendMediaBetween(call, operator));
    operator.addEventListener(CallEvents.Failed, (e) => {
      Logger.write('the operator did not answer: ' + e.code + ' ' + e.reason);
      operator = null;
      if (ended) return;
      apologizing = true;
      call.say(NO_OPERATOR, { voice: VOICE });
    });
    operator.addEventListener(CallEvents.Disconnected, () => {
      operator = null;
      if (!ended) call.hangup();
    });
  }

  function apologize(text) {
    apologizing = true;
    call.say(text, { voice: VOICE });
  }

  // The voxd servers not tried yet for this call, and what the busy ones said.
  let next = 0;
  let sawBusy = false;
  let busyOperator = '';

  /** Connects the call to the next voxd; when none is left, transfers or apologizes. */
  function connect() {
    if (ended) return;
    if (next >= VOXD_URLS.length) {
      if (busyOperator) transfer(busyOperator);
      else apologize(sawBusy ? BUSY : APOLOGY);
      return;
    }
    const base = VOXD_URLS[next];
    next += 1;
    stream = connectToVoxd(call, call.id(), base, {
      unreachable: connect,
      busy: (operatorNumber) => {
        Logger.write('voxd ' + base + ' is busy');
        sawBusy = true;
        busyOperator = busyOperator || operatorNumber;
        connect();
      },
      failure: () => apologize(APOLOGY),
      transfer: transfer,
    });
  }

  call.addEventListener(CallEvents.Connected, connect);

  // Keys the caller presses go to voxd. ToneReceived comes only after handleTones(true)
  // (d.ts:2678-2681); its payload's `tone` is 0-9, * or # (d.ts:3110-3119).
  call.handleTones(true);
  call.addEventListener(CallEvents.ToneReceived, (e) => {
    if (stream) stream.tone(e.tone);
  });

  call.addEventListener(CallEvents.PlaybackFinished, () => {
    if (apologizing) call.hangup();
  });

  call.addEventListener(CallEvents.Disconnected, () => {
    ended = true;
    if (stream) stream.close();
    if (operator) operator.hangup();
    VoxEngine.terminate();
  });

  call.answer();
});
