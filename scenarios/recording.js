/*
 * voxd: recording mode (turn by turn, over HTTP).
 *
 * An inbound call is answered and greeted with voxd's voice. Each time the caller speaks, the
 * utterance is recorded (it ends after a short silence or a maximum length; or, with
 * TURN_END = 'fixed', after a fixed time), its URL goes to voxd's
 * POST /voximplant/process_audio, and voxd's spoken reply is played. With
 * PROGRESSIVE (the default) voxd answers as soon as it has the caller's words and the reply
 * plays while voxd is still making it (progressivePlayback); what follows the reply (its text,
 * a hang-up or a transfer) is read from the reply's reply_url once it has played. When voxd says
 * the call is over (action "hangup"), the call ends. When voxd hands the call to a human
 * (action "transfer", with the operator's number in transfer_to), the reply is played, the
 * operator is dialled and the two are connected; if the operator does not answer, the caller
 * hears an apology. Call start and end, and how a transfer went, are reported to
 * POST /voximplant/events. If voxd fails or is too slow, the caller hears a short apology,
 * and after repeated failures a polite goodbye. With several voxd servers in VOXD_URLS the
 * call goes to the first that takes its Connected event: one that is unreachable or busy
 * (503 at_capacity: it is serving all the calls it can) is passed over for the next. When
 * every one is busy the call goes to the operator voxd named (transfer_to), or the caller
 * hears that the lines are busy. Voximplant's own phrases are read with a voice of LANGUAGE.
 * A transfer comes from CALLER_ID, or from the caller's own number when CALLER_ID is empty; the
 * caller hears a ringback tone while the operator's phone rings. With CALLER_ID left as the
 * placeholder nobody is dialled: a transfer ends with the no-operator phrase and a line in the
 * call log. A key the caller presses (DTMF) is reported as a ToneReceived event; voxd may answer
 * it with a transfer or a hang-up (a key mapped to the operator), otherwise the call goes on.
 * Each sound is played by a Player that is destroyed once it has played, so a long call stays
 * within VoxEngine's 10 media players per session. TRACE logs the recorder's events and every
 * request to voxd with its answer.
 *
 * The media-stream scenario (streaming.js) is the recommended one: it hears the caller in real
 * time and needs none of the end-of-turn guessing below.
 *
 * Set the four values below, then upload this file as a scenario (see scenarios/README.md).
 */

require(Modules.Recorder);

// ---- Set these -------------------------------------------------------------------------------
// voxd's public https address (server.public_url in voxd.toml). With several voxd servers,
// list them all: each call goes to the first that has room.
const VOXD_URLS = ['https://voxd.example.com'];
// server.scenario_token (/etc/voxd/credentials/server.scenario_token as scripts/install
// writes it, or voxd.toml), or server.token where only one token is set.
const VOXD_TOKEN = 'change-me';
// Language of the fallback phrases Voximplant speaks when voxd cannot: 'ru' or 'en'. Make it
// voxd's language: when a reply's audio cannot be played, this voice reads its text.
const LANGUAGE = 'ru';
// The number transferred calls come from, E.164: one rented in your Voximplant account
// (Numbers → My numbers) or verified with it (Settings → Caller IDs). Empty: the caller's own
// number (call.callerid()), so the operator sees who is calling. Set to the placeholder
// +10000000000, transfers are refused (the caller hears the no-operator phrase).
const CALLER_ID = '';

// ---- Tuning (optional) -----------------------------------------------------------------------
// Diagnostics for a first live call: logs the recorder's events and each request to voxd with
// its answer (the token is never logged). Leave false in production.
const TRACE = false;
// The tone the caller hears while the operator's phone rings (call.playProgressTone): 'RU' or
// 'US'; '' for silence.
const RINGBACK_TONE = 'RU';
// How the end of the caller's turn is found:
//   'mic_status': by Voximplant's voice activity events (CallEvents.MicStatusChange): the turn
//     ends END_OF_TURN_MS after the caller stops talking, after MAX_UTTERANCE_S at most, or
//     after NO_SPEECH_S if they say nothing. Quick, but Voximplant does not document how these
//     events behave on telephone (PSTN) calls: if they never come, every turn waits
//     NO_SPEECH_S, and a turn that then goes on is cut there.
//   'fixed': without those events: each turn is recorded for MAX_TURN_S, then sent. Answers
//     longer than that are cut; short ones wait it out; silence gets voxd's reprompt after
//     MAX_TURN_S. Choose it if the events misbehave on your lines.
// (Any other value counts as 'mic_status'.)
const TURN_END = 'mic_status';
// 'mic_status': silence after speech that ends the caller's turn, in ms.
const END_OF_TURN_MS = 700;
// 'mic_status': longest utterance, in seconds.
const MAX_UTTERANCE_S = 20;
// 'mic_status': how long to wait for the caller to start talking before the turn is sent
// anyway (voxd answers silence with its reprompt), in seconds.
const NO_SPEECH_S = 8;
// 'fixed': how long each turn is recorded, in seconds (the longest answer that is heard whole).
const MAX_TURN_S = 6;
// Time limit of one request to voxd, in seconds (Voximplant allows at most 90).
const REQUEST_TIMEOUT_S = 30;
// Consecutive voxd failures after which the call is ended politely.
const MAX_FAILURES = 2;
// Play voxd's reply while it is being made (the caller hears it sooner); false: wait for the
// whole reply, then play it.
const PROGRESSIVE = true;

const PHRASES = {
  ru: {
    greeting: 'Здравствуйте! Чем могу помочь?',
    apology: 'Извините, не получилось ответить. Повторите, пожалуйста.',
    goodbye: 'Извините, сейчас я не могу ответить. Пожалуйста, перезвоните позже. До свидания!',
    busy: 'Извините, сейчас все линии заняты. Пожалуйста, перезвоните позже. До свидания!',
    noOperator: 'Извините, оператор сейчас не может ответить. Пожалуйста, перезвоните позже. До свидания!',
  },
  en: {
    greeting: 'Hello! How can I help you?',
    apology: 'Sorry, I could not answer that. Could you say it again?',
    goodbye: 'Sorry, I cannot answer right now. Please call again later. Goodbye!',
    busy: 'Sorry, all our lines are busy right now. Please call again later. Goodbye!',
    noOperator: 'Sorry, no operator can take your call right now. Please call again later. Goodbye!',
  },
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

/** TRACE: a request to voxd and its answer in the call log (bodies cut short; no token). */
function trace(method, url, body, res) {
  if (!TRACE) return;
  Logger.write('trace: ' + method + ' ' + url + (body ? ' ' + body.slice(0, 500) : '') + ' → ' + res.code + ' ' +
    String(res.text || res.error || '').slice(0, 500));
}

/** POSTs JSON to the voxd at `base`; resolves to {ok, code, body}. Never rejects. */
async function voxdAt(base, path, body) {
  const res = await Net.httpRequestAsync(base + path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + VOXD_TOKEN },
    postData: JSON.stringify(body),
    timeout: REQUEST_TIMEOUT_S,
  });
  trace('POST', base + path, JSON.stringify(body), res);
  let json = null;
  try {
    json = JSON.parse(res.text);
  } catch (e) {
    // Not JSON: an error page from a proxy, or nothing at all.
  }
  const ok = res.code >= 200 && res.code < 300 && json !== null;
  if (!ok) {
    const reason = (json && json.error && json.error.code) || res.error || res.text || '';
    Logger.write('voxd ' + path + ' failed: ' + res.code + ' ' + String(reason).slice(0, 300));
  }
  return { ok: ok, code: res.code, body: json };
}

/** GETs a voxd URL that answers JSON (a progressive reply's result); like voxdAt. */
async function voxdGet(url) {
  const res = await Net.httpRequestAsync(url, {
    method: 'GET',
    headers: { Authorization: 'Bearer ' + VOXD_TOKEN },
    timeout: REQUEST_TIMEOUT_S,
  });
  trace('GET', url, '', res);
  let json = null;
  try {
    json = JSON.parse(res.text);
  } catch (e) {
    // Not JSON.
  }
  const ok = res.code === 200 && json !== null && json.done === true && !json.error;
  if (!ok) Logger.write('voxd reply result failed: ' + res.code + ' ' + String(res.text || res.error || '').slice(0, 300));
  return { ok: ok, code: res.code, body: json };
}

/** Whether a voxd answer says it is serving all the calls it can. */
function atCapacity(res) {
  return res.code === 503 && !!res.body && !!res.body.error && res.body.error.code === 'at_capacity';
}

VoxEngine.addEventListener(AppEvents.CallAlerting, (alerting) => {
  const call = alerting.call;
  const callId = call.id();
  let ended = false; // the call is over: do nothing more with it
  let ending = false; // hang up after the current playback
  let transferTo = ''; // connect the caller to this number after the current playback
  let operator = null; // the operator's call leg, once dialled
  let failures = 0;
  let replyText = ''; // what the current playback says, for the fallback voice
  let replyResultUrl = ''; // a progressive reply playing: where its result is read
  let recorder = null;
  let recordingUrl = '';
  let heardSpeech = false;
  let noSpeechTimer = null;
  let maxLengthTimer = null;
  let silenceTimer = null;
  let base = VOXD_URLS[0]; // the voxd that took the call
  let player = null; // the Player the caller hears now
  let handedOff = false; // a key pressed ended the conversation with voxd (transfer or hang-up)

  /** POSTs JSON to the call's voxd. */
  function voxd(path, body) {
    return voxdAt(base, path, body);
  }

  function clearTimers() {
    [noSpeechTimer, maxLengthTimer, silenceTimer].forEach(clearTimeout);
    noSpeechTimer = maxLengthTimer = silenceTimer = null;
  }

  /**
   * Plays `p` (a Player, d.ts:2354-2408) into the call. Once it has played it is stopped, which
   * destroys it (d.ts:2390-2393): VoxEngine allows 10 media players per session, and a long call
   * makes two or three per turn (call.startPlayback and call.say return none to release).
   */
  function startPlayer(p) {
    stopPlayer();
    player = p;
    p.addEventListener(PlayerEvents.PlaybackFinished, (e) => {
      if (player !== p) return;
      player = null;
      p.stop();
      played(e);
    });
    p.sendMediaTo(call);
  }

  function stopPlayer() {
    if (!player) return;
    const p = player;
    player = null;
    p.stop();
  }

  function play(url, text) {
    replyText = text;
    // URLPlayerRequest {url} (d.ts:21408-21425).
    startPlayer(VoxEngine.createURLPlayer({ url: url }));
  }

  /** Plays a reply that is still being made; its result is read once it has played. */
  function playProgressively(url, resultUrl) {
    replyText = '';
    replyResultUrl = resultUrl;
    startPlayer(VoxEngine.createURLPlayer({ url: url }, { progressivePlayback: true }));
  }

  /** What follows a reply: its result from voxd. */
  function follow(r) {
    Logger.write('caller: ' + r.user_text + ' | voxd: ' + r.reply_text);
    ending = r.action === 'hangup';
    transferTo = r.action === 'transfer' && r.transfer_to ? r.transfer_to : '';
  }

  function say(text) {
    replyText = '';
    startPlayer(VoxEngine.createTTSPlayer(text, { voice: VOICE }));
  }

  /** voxd failed: apologize and listen again, or end the call after too many failures. */
  function failed() {
    failures += 1;
    if (failures >= MAX_FAILURES) {
      ending = true;
      say(PHRASES.goodbye);
    } else {
      say(PHRASES.apology);
    }
  }

  /** Records the caller's next utterance. */
  function listen() {
    if (ended || handedOff) return;
    heardSpeech = false;
    recordingUrl = '';
    recorder = VoxEngine.createRecorder({ name: 'voxd ' + callId });
    recorder.addEventListener(RecorderEvents.Started, (e) => {
      if (TRACE) Logger.write('trace: recorder started: ' + e.url);
      recordingUrl = e.url;
    });
    recorder.addEventListener(RecorderEvents.Stopped, (e) => {
      if (TRACE) Logger.write('trace: recorder stopped: ' + e.duration + ' s');
      recorder = null;
      turn(recordingUrl, e.duration);
    });
    recorder.addEventListener(RecorderEvents.RecorderError, (e) => {
      Logger.write('recorder error: ' + e.error);
      recorder = null;
      clearTimers();
      if (!handedOff) failed();
    });
    call.sendMediaTo(recorder);
    if (TURN_END === 'fixed') {
      // No voice activity events: the turn is what the caller says in MAX_TURN_S.
      maxLengthTimer = setTimeout(() => endUtterance('turn time'), MAX_TURN_S * 1000);
    } else {
      noSpeechTimer = setTimeout(() => endUtterance('no speech'), NO_SPEECH_S * 1000);
      maxLengthTimer = setTimeout(() => endUtterance('max length'), MAX_UTTERANCE_S * 1000);
    }
  }

  function endUtterance(why) {
    if (!recorder || ended) return;
    clearTimers();
    Logger.write('turn recorded (' + why + ')');
    call.stopMediaTo(recorder);
    recorder.stop();
  }

  /** Sends a recording to voxd and plays the reply. */
  async function turn(url, duration) {
    if (ended || handedOff) return;
    if (!url) {
      failed();
      return;
    }
    const request = { call_id: callId, audio_url: url, duration: duration, progressive: PROGRESSIVE };
    let res = await voxd('/voximplant/process_audio', request);
    if (!res.ok && res.body && res.body.error && res.body.error.code === 'download_failed') {
      // A recording can take a moment to become downloadable: one more try.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      res = await voxd('/voximplant/process_audio', request);
    }
    if (ended || handedOff) return;
    if (!res.ok) {
      failed();
      return;
    }
    failures = 0;
    const r = res.body;
    if (r.progressive) {
      playProgressively(r.reply_audio_url, r.reply_url);
      return;
    }
    follow(r);
    play(r.reply_audio_url, r.reply_text);
  }

  /** Dials the operator and connects the caller to them; apologizes if nobody answers. */
  function transfer(number) {
    transferTo = '';
    const from = transferCallerId(call);
    const problem = from.problem;
    if (problem) {
      Logger.write('not transferring the call to ' + number + ': ' + problem + '; set CALLER_ID to a number ' +
        'rented in or verified with your Voximplant account');
      voxd('/voximplant/events', { call_id: callId, event: 'TransferFailed', to: number, reason: 'caller_id_not_set' });
      ending = true;
      say(PHRASES.noOperator);
      return;
    }
    Logger.write('transferring the call to ' + number + ' from ' + from.number);
    operator = VoxEngine.callPSTN(number, from.number);
    // Ringback while the operator's phone rings. A call receives one audio stream and a new one
    // replaces it (d.ts:3624-3627), so the operator's voice or the apology ends the tone.
    if (RINGBACK_TONE) call.playProgressTone(RINGBACK_TONE);
    operator.addEventListener(CallEvents.Connected, () => {
      if (ended) {
        operator.hangup();
        return;
      }
      VoxEngine.sendMediaBetween(call, operator);
      voxd('/voximplant/events', { call_id: callId, event: 'Transferred', to: number });
    });
    operator.addEventListener(CallEvents.Failed, (e) => {
      Logger.write('the operator did not answer: ' + e.code + ' ' + e.reason);
      voxd('/voximplant/events', { call_id: callId, event: 'TransferFailed', to: number, code: e.code, reason: e.reason });
      operator = null;
      if (ended) return;
      ending = true;
      say(PHRASES.noOperator);
    });
    operator.addEventListener(CallEvents.Disconnected, () => {
      operator = null;
      if (!ended) call.hangup();
    });
  }

  call.addEventListener(CallEvents.Connected, async () => {
    // The first voxd that takes the call keeps it; the busy and the unreachable are passed over.
    let res = null;
    let busyOperator = '';
    let sawBusy = false;
    for (const url of VOXD_URLS) {
      base = url;
      res = await voxd('/voximplant/events', { call_id: callId, event: 'Connected', caller: alerting.callerid });
      if (ended) return;
      if (atCapacity(res)) {
        sawBusy = true;
        busyOperator = busyOperator || res.body.error.transfer_to || '';
        continue;
      }
      if (res.code > 0) break; // it answered: this voxd has the call
    }
    const taken = res.code > 0 && !atCapacity(res);
    if (sawBusy && !taken) {
      if (busyOperator) {
        transfer(busyOperator);
      } else {
        ending = true;
        say(PHRASES.busy);
      }
      return;
    }
    if (handedOff) return;
    if (res.ok && res.body.greeting_audio_url) play(res.body.greeting_audio_url, res.body.greeting_text);
    else say(PHRASES.greeting);
  });

  /** Whatever the caller heard has played (PlayerEvents.PlaybackFinished, error? d.ts:7943-7950). */
  async function played(e) {
    if (ended) return;
    if (replyResultUrl) {
      // A progressive reply has played (its audio ends when voxd has made all of it).
      const res = await voxdGet(replyResultUrl + '?wait_secs=10');
      replyResultUrl = '';
      if (ended || handedOff) return;
      if (!res.ok) {
        failed();
        return;
      }
      follow(res.body);
      replyText = res.body.reply_text;
    }
    if (e.error && replyText) {
      // voxd's audio could not be played: Voximplant's voice reads the same text.
      Logger.write('playback failed: ' + e.error);
      say(replyText);
      return;
    }
    if (transferTo) transfer(transferTo);
    else if (ending) call.hangup();
    else listen();
  }

  /**
   * A key the caller pressed goes to voxd as a ToneReceived event. voxd may answer with what the
   * key means (tools.dtmf in voxd.toml, e.g. 0 → the operator): then the conversation stops and
   * the call is transferred or hung up; otherwise it goes on.
   */
  async function tone(digit) {
    if (ended || handedOff) return;
    const res = await voxd('/voximplant/events', { call_id: callId, event: 'ToneReceived', digit: digit });
    if (ended || handedOff || !res.ok) return;
    const r = res.body;
    if (r.action === 'transfer' && r.transfer_to) {
      Logger.write('key ' + digit + ': transfer to ' + r.transfer_to);
      handOff();
      transfer(r.transfer_to);
    } else if (r.action === 'hangup') {
      Logger.write('key ' + digit + ': hang-up');
      handOff();
      call.hangup();
    }
  }

  /** Stops the turn under way: nothing more goes to voxd or is played from it. */
  function handOff() {
    handedOff = true;
    clearTimers();
    replyResultUrl = '';
    transferTo = '';
    if (recorder) {
      call.stopMediaTo(recorder);
      recorder.stop();
    }
    stopPlayer();
  }

  // ToneReceived comes only after handleTones(true) (d.ts:2678-2681); `tone` is 0-9, * or #
  // (d.ts:3110-3119).
  call.handleTones(true);
  call.addEventListener(CallEvents.ToneReceived, (e) => {
    tone(e.tone);
  });

  if (TURN_END !== 'fixed') {
    // 'mic_status': Voximplant's voice activity events end the turn.
    call.handleMicStatus(true);
    call.addEventListener(CallEvents.MicStatusChange, (e) => {
      if (!recorder) return;
      clearTimeout(silenceTimer);
      if (e.active) {
        heardSpeech = true;
        clearTimeout(noSpeechTimer);
      } else if (heardSpeech) {
        silenceTimer = setTimeout(() => endUtterance('end of speech'), END_OF_TURN_MS);
      }
    });
  }

  call.addEventListener(CallEvents.Disconnected, async (e) => {
    ended = true;
    clearTimers();
    if (recorder) recorder.stop();
    stopPlayer();
    if (operator) operator.hangup();
    await voxd('/voximplant/events', { call_id: callId, event: 'Disconnected', reason: e.reason, duration: e.duration });
    VoxEngine.terminate();
  });

  call.answer();
});
