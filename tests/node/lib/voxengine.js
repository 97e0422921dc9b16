// A stand-in for Voximplant's VoxEngine runtime. It loads a scenario file unmodified into a
// sandbox that provides the VoxEngine globals the scenarios use, with the names, argument
// shapes and event payloads of Voximplant's published typings (voximplant/voxengine-ci,
// typings/voxengine.d.ts), and plays the telephone network around it: the caller's audio,
// recordings served over HTTP, playback of URLs, and a real WebSocket to voxd carrying
// Voximplant's media-stream JSON. Anything the stand-in does not know (an unknown global,
// method, option or event) is a drift error that fails the test loudly. It also fails what a
// real account would only show as a silent or wrong-sounding call: voxd's audio on a stream
// whose tag the scenario did not ask for (the caller hears nothing), and call.say without a
// VoiceList voice of the phrase's language (Voximplant reads it in US English).
'use strict';

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const vm = require('node:vm');
const WS = require('ws');
const audio = require('./audio');
const { ProgressiveClock, decodeMp3 } = require('./mp3');
const { voiceNames } = require('./voicelist');

/** Raised (and recorded) when a scenario uses something the stand-in does not provide. */
class DriftError extends Error {}

// Property names that JavaScript itself probes (await, JSON.stringify, util.inspect).
const PROBED = new Set(['then', 'toJSON', 'constructor', 'inspect', 'valueOf', 'toString']);

const APP_EVENTS = {
  CallAlerting: 'Application.CallAlerting',
  Terminating: 'Application.Terminating',
  Terminated: 'Application.Terminated',
  Started: 'Application.Started',
  HttpRequest: 'Application.HttpRequest',
  WebSocket: 'AppEvents.NewWebSocketConnection',
  NewWebSocketFailed: 'Application.OnNewWebSocketFailed',
};

const CALL_EVENTS = {
  AudioStarted: 'Call.AudioStarted',
  Connected: 'Call.Connected',
  Disconnected: 'Call.Disconnected',
  Failed: 'Call.Failed',
  MicStatusChange: 'Call.MicStatusChange',
  PlaybackFinished: 'Call.PlaybackFinished',
  PlaybackReady: 'Call.PlaybackReady',
  PlaybackStarted: 'Call.PlaybackStarted',
  RecordStarted: 'Call.RecordStarted',
  RecordStopped: 'Call.RecordStopped',
  RecordError: 'Call.RecordError',
  Ringing: 'Call.Ringing',
  StateChanged: 'Call.StateChanged',
  ToneReceived: 'Call.ToneReceived',
};

const WEBSOCKET_EVENTS = {
  OPEN: 'WebSocket.Open',
  CLOSE: 'WebSocket.Close',
  MESSAGE: 'WebSocket.Message',
  ERROR: 'WebSocket.Error',
  CREATED: 'WebSocket.Created',
  MEDIA_STARTED: 'WebSocket.MediaEventStarted',
  MEDIA_ENDED: 'WebSocket.MediaEventEnded',
};

// As the typings declare the enum: PCM8 and PCM16_8KHZ are the same value, PCM16 and
// PCM16_16KHZ too.
const WEBSOCKET_AUDIO_ENCODING = {
  PCM8: 'PCM8',
  PCM16_8KHZ: 'PCM8',
  PCM16: 'PCM16',
  PCM16_16KHZ: 'PCM16',
  ALAW: 'ALAW',
  ULAW: 'ULAW',
  OPUS: 'OPUS',
};

// PlayerEvents (d.ts:7844-7896): a Player from VoxEngine.createURLPlayer/createTTSPlayer.
const PLAYER_EVENTS = {
  Created: 'Player.Created',
  PlaybackReady: 'Player.PlaybackReady',
  Started: 'Player.Started',
  Stopped: 'Player.Stopped',
  PlaybackFinished: 'Player.PlaybackFinished',
  Error: 'Player.Error',
  PlaybackMarkerReached: 'Player.PlaybackMarkerReached',
  PlaybackBuffering: 'Player.Buffering',
};

// The AMD namespace (d.ts:924-1165): a global in the typings (Modules has no AMD member).
const AMD_EVENTS = { DetectionComplete: 'AMD.Events.DetectionComplete', DetectionError: 'AMD.Events.DetectionError' };
const AMD_MODELS = { BR: 'br', CL: 'cl', CO: 'colombia', KZ: 'kz', MX: 'mx', RU: 'ru', PH: 'ph', PE: 'pe', US: 'us', EU_GENERAL: 'eu_general' };
const AMD_RESULT_CLASS = { VOICEMAIL: 'VOICEMAIL', HUMAN: 'HUMAN', TIMEOUT: 'TIMEOUT', CALL_ENDED: 'CALL_ENDED' };
const AMD_RESULT_SUBTYPE = { MIMIC: 'MIMIC', NONE: 'NONE' };

// DTMFType (d.ts:5473-5490), for call.handleTones(doHandle, supportedDtmfTypes).
const DTMF_TYPE = { ALL: 0, TELEPHONE_EVENT: 1, IN_BAND: 2, SIP_INFO: 3 };

// "Max number of media players per session is 10" (Voximplant's limits page). Whether that counts
// players alive at once or all a session ever made is not said; the stand-in reads it as alive at
// once, and conservatively: a Player from createURLPlayer/createTTSPlayer counts until
// player.stop() (which the typings say destroys it, d.ts:2390-2393; one that merely finished may
// still be held); call.startPlayback, call.say and call.playProgressTone return no Player
// (d.ts:3599, 3608, 3627), so nothing can release theirs: each counts to the session's end.
const MAX_PLAYERS = 10;

const RECORDER_EVENTS = {
  RecorderError: 'Recorder.Error',
  Started: 'Recorder.Started',
  Stopped: 'Recorder.Stopped',
};

// Net.HttpRequestResult.code for failures that are not HTTP statuses.
const NET_CODE = { hostNotFound: -3, connectionError: -4, networkError: -6, timeout: -7, tooLarge: -9 };
const NET_MAX_BODY = 2 * 1024 * 1024;

const FRAME_MS = 20;

/** Event handler table of one VoxEngine object (call, WebSocket, recorder, the app). */
class Handlers {
  constructor(standin, owner, known) {
    this.standin = standin;
    this.owner = owner;
    this.known = new Set(Object.values(known));
    this.table = new Map();
  }

  add(event, callback) {
    if (!this.known.has(event)) this.standin.drift(`${this.owner}.addEventListener(${JSON.stringify(event)})`);
    if (typeof callback !== 'function') this.standin.drift(`${this.owner}.addEventListener with a non-function handler`);
    if (!this.table.has(event)) this.table.set(event, []);
    this.table.get(event).push(callback);
  }

  remove(event, callback) {
    if (!this.known.has(event)) this.standin.drift(`${this.owner}.removeEventListener(${JSON.stringify(event)})`);
    const list = this.table.get(event) || [];
    this.table.set(event, callback ? list.filter((f) => f !== callback) : []);
  }

  /** Delivers `event` asynchronously, as the platform does. */
  emit(event, payload) {
    setImmediate(() => this.emitNow(event, payload));
  }

  emitNow(event, payload) {
    if (this.standin.terminated && event !== APP_EVENTS.Terminating && event !== APP_EVENTS.Terminated) return;
    this.standin.note(`${this.owner} ← ${event}`, summarize(payload));
    for (const handler of [...(this.table.get(event) || [])]) this.standin.invoke(handler, payload, `${event} handler`);
  }
}

function summarize(payload) {
  const out = {};
  for (const [k, v] of Object.entries(payload || {})) {
    if (v && typeof v === 'object' && !Array.isArray(v)) continue;
    out[k] = typeof v === 'string' && v.length > 120 ? `${v.slice(0, 120)}…` : v;
  }
  return out;
}

/** The caller's side of one call: what they say and what they hear. */
class Phone {
  constructor(standin) {
    this.standin = standin;
    this.utterances = []; // recording mode: {file, durationMs} | {corrupt: true}
    this.outgoing = []; // media-stream mode: Int16Array chunks at the stream's rate
    this.replies = []; // media-stream mode: {samples: Int16Array[], rate, started, cleared}
    this.queue = []; // received but not yet played: {samples, reply}
    this.clears = 0;
    this.droppedMs = 0;
    this.playbacks = []; // startPlayback: {url, ok, durationMs, error}
    this.says = []; // call.say texts
    this.voices = []; // the voice of each call.say, as its VoiceList name ('VoiceList.Default.ru_RU_Female')
    this.unheardTones = []; // keys pressed while the scenario did not handle tones
    this.holdUntil = 0; // media-stream mode: no media frames go to voxd before this time
  }

  /** The caller (the first call leg; `leg` picks another) presses a key: CallEvents.ToneReceived. */
  pressDigit(tone, leg = 0) {
    this.standin.check(/^[0-9*#]$/.test(tone), `a DTMF tone ${JSON.stringify(tone)} (0-9, *, #)`);
    this.standin.calls[leg].tone(tone);
  }

  /** Media-stream mode: the call is on hold for `ms`: Voximplant sends voxd no media frames. */
  hold(ms) {
    this.holdUntil = Date.now() + ms;
    this.standin.note('caller on hold: no media frames', { ms });
  }

  /** Recording mode: what the caller says during the next recorded turn. */
  queueUtterance(u) {
    this.utterances.push(u);
  }

  /** Media-stream mode: the caller starts saying `samples` (at the stream's rate) now. */
  speak(samples) {
    this.outgoing.push(samples);
  }

  /** Milliseconds of voxd's audio the caller has heard in reply `i` (default: the latest). */
  heardMs(i = this.replies.length - 1) {
    const r = this.replies[i];
    if (!r) return 0;
    return (r.samples.reduce((n, s) => n + s.length, 0) / r.rate) * 1000;
  }

  /** Everything heard in reply `i`, as one Int16Array. */
  heard(i) {
    const r = this.replies[i];
    const out = new Int16Array(r.samples.reduce((n, s) => n + s.length, 0));
    let at = 0;
    for (const s of r.samples) {
      out.set(s, at);
      at += s.length;
    }
    return { samples: out, rate: r.rate };
  }

  /** Audio still queued for playback, in ms. */
  queuedMs() {
    return this.queue.reduce((n, q) => n + (q.samples.length / q.reply.rate) * 1000, 0);
  }

  /** The caller hangs up. */
  hangup() {
    for (const call of this.standin.calls) call.disconnect('Normal call clearing', 200);
  }

  /** Resolves when `cond()` holds; rejects after `ms` with `what` and the timeline. */
  waitFor(cond, ms, what) {
    return this.standin.waitFor(cond, ms, what);
  }
}

/** One call leg (the scenario sees it through a strict proxy). */
class Call {
  constructor(standin, { incoming, callerid, number }) {
    this.standin = standin;
    this.kind = 'call';
    this.handlers = new Handlers(standin, 'call', CALL_EVENTS);
    this.incomingLeg = incoming;
    this.cid = callerid;
    this.num = number;
    this.callId = `${incoming ? 'in' : 'out'}-${standin.nextId()}-${Date.now().toString(36)}`;
    this.callState = incoming ? 'ALERTING' : 'PROGRESSING';
    this.connectedAt = null;
    this.micStatus = false;
    this.playback = null;
    this.mediaTargets = new Set();
    this.recording = null;
    this.tones = false; // handleTones(true) was called
    this.digitsSent = []; // call.sendDigits
    this.hearing = 'silence'; // the one audio stream the call receives (d.ts:3624)
    this.heardSources = []; // {t, source}: each stream the call received, in order
    this.api = standin.strict(
      {
        id: () => this.callId,
        callerid: () => this.cid,
        number: () => this.num,
        incoming: () => this.incomingLeg,
        state: () => this.callState,
        customData: () => '',
        addEventListener: (e, cb) => this.handlers.add(e, cb),
        removeEventListener: (e, cb) => this.handlers.remove(e, cb),
        answer: (headers, parameters) => this.answer(headers, parameters),
        hangup: (headers) => this.hangupByScenario(headers),
        startPlayback: (url, parameters) => this.startPlayback(url, parameters),
        stopPlayback: () => this.stopPlayback(),
        say: (text, parameters) => this.say(text, parameters),
        record: (parameters) => this.record(parameters),
        sendMediaTo: (unit, parameters) => this.sendMediaTo(unit, parameters),
        stopMediaTo: (unit) => this.stopMediaTo(unit),
        displayName: () => this.cid,
        // d.ts:3649-3654: ToneReceived fires only once handleTones(true) asked for it.
        handleTones: (doHandle, types) => {
          this.standin.check(typeof doHandle === 'boolean', 'call.handleTones(doHandle: boolean)');
          this.standin.check(types === undefined || Object.values(DTMF_TYPE).includes(types), 'call.handleTones supportedDtmfTypes (a DTMFType)');
          this.standin.note('scenario: call.handleTones', { doHandle });
          this.tones = doHandle;
        },
        // d.ts:3664-3667: digits 0-9, *, #, p (pause).
        sendDigits: (digits) => {
          this.standin.check(typeof digits === 'string' && /^[0-9*#p]+$/.test(digits), `call.sendDigits(${JSON.stringify(digits)}) (0-9, *, #, p)`);
          this.standin.check(this.live(), `call.sendDigits on a call in state ${this.callState}`);
          this.standin.note('scenario: call.sendDigits', { digits });
          this.digitsSent.push(digits);
        },
        // d.ts:3624-3627: country-specific tones, US or RU.
        playProgressTone: (country) => {
          this.standin.check(country === 'US' || country === 'RU', `call.playProgressTone(${JSON.stringify(country)}) (US or RU)`);
          this.standin.check(this.live(), `call.playProgressTone on a call in state ${this.callState} (startEarlyMedia first)`);
          this.standin.countPlayer('call.playProgressTone', null);
          this.cancelPlayback();
          this.hear(`progress tone ${country}`);
        },
        handleMicStatus: (handle) => {
          this.standin.check(typeof handle === 'boolean', 'call.handleMicStatus(handle: boolean)');
          this.micStatus = handle;
        },
      },
      'call',
    );
  }

  event(name, extra = {}) {
    return { call: this.api, name, id: this.callId, ...extra };
  }

  /** A new incoming stream always replaces the previous one (d.ts:3624). */
  hear(source) {
    this.hearing = source;
    this.heardSources.push({ t: Date.now() - this.standin.t0, source });
    this.standin.note(`${this.incomingLeg ? 'caller' : 'callee'} hears ${source}`);
  }

  /** The other side presses a key: ToneReceived if the scenario asked for tones (d.ts:3110-3119). */
  tone(tone) {
    if (!this.tones || !this.live()) {
      this.standin.note('tone not handled (no call.handleTones(true))', { tone });
      this.standin.phone.unheardTones.push(tone);
      return;
    }
    this.handlers.emitNow(CALL_EVENTS.ToneReceived, this.event(CALL_EVENTS.ToneReceived, { tone, type: '1' }));
  }

  live() {
    return this.callState === 'CONNECTED';
  }

  answer(headers, parameters) {
    this.standin.checkOptions('call.answer extraHeaders', headers, null);
    this.standin.checkOptions('call.answer parameters', parameters, ['displayName', 'scheme', 'maxVideoBitrate', 'conferenceCall', 'disableDtxForAudio']);
    this.standin.check(this.callState === 'ALERTING', `call.answer() in state ${this.callState}`);
    this.standin.note('scenario: call.answer()');
    this.connect();
  }

  connect() {
    this.callState = 'CONNECTED';
    this.connectedAt = Date.now();
    this.handlers.emit(CALL_EVENTS.Connected, this.event(CALL_EVENTS.Connected, { headers: {}, customData: '' }));
  }

  fail(code, reason) {
    this.callState = 'TERMINATED';
    this.handlers.emit(CALL_EVENTS.Failed, this.event(CALL_EVENTS.Failed, { headers: {}, code, reason }));
  }

  hangupByScenario(headers) {
    this.standin.checkOptions('call.hangup extraHeaders', headers, null);
    this.standin.note('scenario: call.hangup()');
    this.standin.hangups++;
    this.disconnect('Normal call clearing', 200);
  }

  disconnect(reason, internalCode) {
    if (this.callState === 'TERMINATED') return;
    const duration = this.connectedAt ? Math.round((Date.now() - this.connectedAt) / 1000) : 0;
    this.callState = 'TERMINATED';
    this.cancelPlayback();
    for (const unit of this.mediaTargets) unit.detach(this);
    this.mediaTargets.clear();
    this.handlers.emit(
      CALL_EVENTS.Disconnected,
      this.event(CALL_EVENTS.Disconnected, {
        headers: {},
        internalCode,
        reason,
        duration,
        cost: 0,
        direction: this.incomingLeg ? 'incoming' : 'outgoing',
      }),
    );
    if (this.recording) {
      const url = this.recording;
      setImmediate(() =>
        this.handlers.emit(CALL_EVENTS.RecordStopped, this.event(CALL_EVENTS.RecordStopped, { url, cost: '0.0000', duration })),
      );
    }
  }

  cancelPlayback() {
    if (this.playback) clearTimeout(this.playback.timer);
    this.playback = null;
  }

  finishPlaybackLater(ms, error) {
    const token = {};
    this.playback = token;
    token.timer = setTimeout(() => {
      if (this.playback !== token || !this.live()) return;
      this.playback = null;
      this.handlers.emitNow(CALL_EVENTS.PlaybackFinished, this.event(CALL_EVENTS.PlaybackFinished, error ? { error } : {}));
    }, ms);
  }

  startPlayback(url, parameters) {
    this.standin.check(typeof url === 'string', 'call.startPlayback(url: string)');
    this.standin.checkOptions('call.startPlayback parameters', parameters, ['loop', 'progressivePlayback']);
    this.standin.check(this.live(), `call.startPlayback on a call in state ${this.callState}`);
    this.standin.note('scenario: call.startPlayback', { url });
    this.standin.countPlayer('call.startPlayback', null);
    this.hear(`playback ${url}`);
    this.cancelPlayback();
    const token = {};
    this.playback = token;
    const record = { url, ok: false, progressive: !!(parameters && parameters.progressivePlayback) };
    this.standin.phone.playbacks.push(record);
    if (record.progressive) {
      this.playProgressively(url, token, record);
      return;
    }
    this.standin
      .fetchAudio(url)
      .then(({ seconds, level, body, format, mp3 }) => {
        Object.assign(record, { ok: true, durationMs: seconds * 1000, level, bytes: body, format, mp3 });
        if (this.playback !== token || !this.live()) return;
        this.handlers.emitNow(CALL_EVENTS.PlaybackStarted, this.event(CALL_EVENTS.PlaybackStarted, { duration: seconds }));
        this.finishPlaybackLater(this.standin.scaled(seconds * 1000));
      })
      .catch((err) => {
        record.error = err.message;
        if (this.playback !== token || !this.live()) return;
        this.finishPlaybackLater(0, `cannot play ${url}: ${err.message}`);
      });
  }

  /**
   * progressivePlayback: the file is played as it arrives. Playback starts with the first
   * chunk that carries audio and ends once the whole file has arrived and played (from its
   * start, scaled). The record notes the chunks and when they came.
   */
  playProgressively(url, token, record) {
    const t0 = Date.now();
    const onFirst = () => {
      record.firstAudioMs = Date.now() - t0;
      if (this.playback !== token || !this.live()) return;
      this.handlers.emitNow(CALL_EVENTS.PlaybackStarted, this.event(CALL_EVENTS.PlaybackStarted, { duration: 0 }));
    };
    this.standin
      .fetchAudioProgressively(url, onFirst, () => this.playback === token && this.live())
      .then(({ seconds, level, body, chunks, format, mp3, stalls }) => {
        Object.assign(record, { ok: true, durationMs: seconds * 1000, level, bytes: body, chunks, format, mp3, stalls, arrivedMs: Date.now() - t0 });
        if (this.playback !== token || !this.live()) return;
        const left = this.standin.scaled(seconds * 1000) - (Date.now() - t0 - record.firstAudioMs);
        this.finishPlaybackLater(Math.max(0, left));
      })
      .catch((err) => {
        record.error = err.message;
        if (this.playback !== token || !this.live()) return;
        this.finishPlaybackLater(0, `cannot play ${url}: ${err.message}`);
      });
  }

  stopPlayback() {
    this.standin.note('scenario: call.stopPlayback()');
    this.cancelPlayback();
  }

  say(text, parameters) {
    this.standin.check(typeof text === 'string', 'call.say(text: string)');
    this.standin.checkOptions('call.say parameters', parameters, ['voice', 'progressivePlayback', 'ttsOptions', 'request']);
    this.standin.check(this.live(), `call.say on a call in state ${this.callState}`);
    const voice = parameters && parameters.voice !== undefined ? this.standin.voiceOf(parameters.voice) : null;
    this.standin.note('scenario: call.say', { text, voice: voice ? voice.name : '(none)' });
    this.standin.checkVoice(text, voice);
    // A phrase over the player limit is never spoken: count the player first.
    this.standin.countPlayer('call.say', null);
    this.standin.phone.says.push(text);
    this.standin.phone.voices.push(voice ? voice.name : null);
    this.hear(`say ${JSON.stringify(text.slice(0, 40))}`);
    this.cancelPlayback();
    if (text.length > 1500) {
      this.finishPlaybackLater(0, 'text longer than 1500 characters');
      return;
    }
    const words = text.split(/\s+/).filter(Boolean).length;
    this.finishPlaybackLater(this.standin.scaled(300 * words + 200));
  }

  record(parameters) {
    this.standin.checkOptions('call.record parameters', parameters, [
      'stereo', 'dict', 'labels', 'provider', 'format', 'secure', 'transcribe', 'language',
      'hd_audio', 'expire', 'lossless', 'video', 'videoParameters', 'recordNamePrefix',
    ]);
    this.standin.check(this.live(), `call.record on a call in state ${this.callState}`);
    this.recording = `${this.standin.recordings.base}/call-${this.callId}.mp3`;
    this.handlers.emit(CALL_EVENTS.RecordStarted, this.event(CALL_EVENTS.RecordStarted, { url: this.recording }));
  }

  sendMediaTo(unit, parameters) {
    const target = this.standin.unitOf(unit, 'call.sendMediaTo');
    this.standin.check(this.live(), `call.sendMediaTo on a call in state ${this.callState}`);
    this.standin.note(`scenario: call.sendMediaTo(${target.kind})`, parameters && { encoding: parameters.encoding, tag: parameters.tag });
    this.mediaTargets.add(target);
    target.attach(this, parameters);
  }

  stopMediaTo(unit) {
    const target = this.standin.unitOf(unit, 'call.stopMediaTo');
    this.standin.note(`scenario: call.stopMediaTo(${target.kind})`);
    this.mediaTargets.delete(target);
    target.detach(this);
  }

  /** Voice activity as Voximplant reports it, when the scenario asked for it. */
  mic(active) {
    if (this.micStatus && this.live()) {
      this.handlers.emitNow(CALL_EVENTS.MicStatusChange, this.event(CALL_EVENTS.MicStatusChange, { active }));
    }
  }
}

/**
 * A Player (d.ts:2354-2408, 7985): VoxEngine.createURLPlayer(request, parameters) or
 * VoxEngine.createTTSPlayer(text, parameters). It plays from its creation; what it plays reaches
 * the calls it is sent to (player.sendMediaTo(call)). PlaybackFinished ends it; player.stop()
 * destroys it (Stopped).
 */
class Player {
  constructor(standin, kind, what) {
    this.kind = 'player';
    this.standin = standin;
    this.handlers = new Handlers(standin, 'player', PLAYER_EVENTS);
    this.pid = `player-${standin.nextId()}`;
    this.what = what;
    this.destroyed = false;
    this.finished = false;
    this.timer = null;
    this.targets = new Set();
    this.api = standin.strict(
      {
        id: () => this.pid,
        addEventListener: (e, cb) => this.handlers.add(e, cb),
        removeEventListener: (e, cb) => this.handlers.remove(e, cb),
        pause: () => this.standin.note('scenario: player.pause()'),
        resume: () => this.standin.note('scenario: player.resume()'),
        stop: () => this.stop(),
        sendMediaTo: (unit, parameters) => this.sendMediaTo(unit, parameters),
        stopMediaTo: (unit) => {
          this.targets.delete(this.standin.unitOf(unit, 'player.stopMediaTo'));
        },
        addMarker: (offset) => this.standin.check(typeof offset === 'number', 'player.addMarker(offset: number)'),
      },
      'player',
    );
    standin.units.set(this.api, this);
    standin.countPlayer(`VoxEngine.${kind}`, this);
    this.handlers.emit(PLAYER_EVENTS.Created, { player: this.api });
  }

  sendMediaTo(unit, parameters) {
    const target = this.standin.unitOf(unit, 'player.sendMediaTo');
    this.standin.checkOptions('SendMediaParameters', parameters, ['tag', 'customParameters', 'encoding']);
    this.standin.check(!this.destroyed, 'player.sendMediaTo after player.stop()');
    this.standin.check(target.kind !== 'call' || target.live(), `player.sendMediaTo a call in state ${target.callState}`);
    this.standin.note('scenario: player.sendMediaTo', { player: this.pid, to: target.callId || target.kind });
    this.targets.add(target);
    if (target.kind === 'call') {
      target.cancelPlayback();
      target.hear(this.what);
    }
  }

  started(duration) {
    if (!this.destroyed) this.handlers.emitNow(PLAYER_EVENTS.Started, { player: this.api, duration });
  }

  finishLater(ms, error) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.destroyed || this.standin.terminated) return;
      this.finished = true;
      if (error) this.handlers.emitNow(PLAYER_EVENTS.Error, { player: this.api, error });
      this.handlers.emitNow(PLAYER_EVENTS.PlaybackFinished, error ? { player: this.api, error } : { player: this.api });
    }, ms);
  }

  stop() {
    this.standin.note('scenario: player.stop()', { player: this.pid });
    if (this.destroyed) return;
    this.destroyed = true;
    clearTimeout(this.timer);
    this.standin.players.delete(this);
    this.handlers.emit(PLAYER_EVENTS.Stopped, { player: this.api });
  }

  detach() {}

  attach() {
    this.standin.drift('sending media to a player');
  }
}

/** AMD.create(parameters) (d.ts:992-997): an answering machine detector for VoxEngine.callPSTN. */
class Detector {
  constructor(standin, parameters) {
    standin.check(parameters && typeof parameters === 'object', 'AMD.create(parameters: AMD.AMDParameters)');
    standin.checkOptions('AMD.AMDParameters', parameters, ['model', 'timeout', 'thresholds']);
    standin.check(Object.values(AMD_MODELS).includes(parameters.model), `AMDParameters.model = ${JSON.stringify(parameters.model)} (an AMD.Model)`);
    const t = parameters.timeout;
    standin.check(t === undefined || (typeof t === 'number' && t >= 0 && t <= 20000), 'AMDParameters.timeout (ms, 0 to 20000)');
    if (parameters.thresholds !== undefined) standin.checkOptions('AMD.Thresholds', parameters.thresholds, ['human', 'voicemail', 'mimic']);
    this.standin = standin;
    this.handlers = new Handlers(standin, 'amd', AMD_EVENTS);
    this.aid = `amd-${standin.nextId()}`;
    this.model = parameters.model;
    this.timeout = t;
    this.call = null;
    const self = this;
    this.api = standin.strict(
      {
        id: () => this.aid,
        get model() {
          return self.model;
        },
        get timeout() {
          return self.timeout;
        },
        get call() {
          return self.call ? self.call.api : undefined;
        },
        detect: () => standin.drift('amd.detect() (the stand-in runs detection through VoxEngine.callPSTN {amd})'),
        addEventListener: (e, cb) => this.handlers.add(e, cb),
        removeEventListener: (e, cb) => this.handlers.remove(e, cb),
      },
      'amd',
    );
    standin.detectors.set(this.api, this);
  }

  /** The call was answered: after `ms` the detector says `result` (an AMD.ResultClass, or 'ERROR'). */
  detectLater(call, result, ms) {
    setTimeout(() => {
      if (this.standin.terminated) return;
      if (result === 'ERROR') {
        this.handlers.emitNow(AMD_EVENTS.DetectionError, { amd: this.api, callId: call.callId, message: 'detection failed' });
        return;
      }
      if (!call.live() && result !== AMD_RESULT_CLASS.CALL_ENDED) return;
      this.handlers.emitNow(AMD_EVENTS.DetectionComplete, {
        amd: this.api, call: call.api, callId: call.callId, resultClass: result, resultSubtype: AMD_RESULT_SUBTYPE.NONE, confidence: 90,
      });
    }, ms);
  }
}

/** VoxEngine.createRecorder(): records what a call sends to it; the file is served over HTTP. */
class Recorder {
  constructor(standin, parameters) {
    this.kind = 'recorder';
    this.standin = standin;
    this.handlers = new Handlers(standin, 'recorder', RECORDER_EVENTS);
    this.rid = `rec-${standin.nextId()}`;
    this.url = `${standin.recordings.base}/${this.rid}.mp3`;
    this.started = null;
    this.utterance = null;
    this.timers = [];
    this.stopped = false;
    this.name = parameters && parameters.name;
    this.api = standin.strict(
      {
        id: () => this.rid,
        addEventListener: (e, cb) => this.handlers.add(e, cb),
        removeEventListener: (e, cb) => this.handlers.remove(e, cb),
        mute: (doMute) => this.standin.check(typeof doMute === 'boolean', 'recorder.mute(doMute: boolean)'),
        stop: () => this.stop(),
      },
      'recorder',
    );
    standin.units.set(this.api, this);
    this.handlers.emit(RECORDER_EVENTS.Started, { recorder: this.api, url: this.url });
  }

  attach(call) {
    this.standin.check(!this.stopped, 'call.sendMediaTo(recorder) after recorder.stop()');
    if (this.started) return;
    this.started = Date.now();
    // The caller says their next line into the recording.
    const u = this.standin.phone.utterances.shift();
    if (!u) return;
    this.utterance = u;
    const onset = this.standin.scaled(150);
    this.speechEnds = this.started + onset + this.standin.scaled(u.durationMs || 1000);
    this.timers.push(setTimeout(() => call.mic(true), onset));
    this.timers.push(setTimeout(() => call.mic(false), onset + this.standin.scaled(u.durationMs || 1000)));
  }

  detach() {}

  stop() {
    if (this.stopped) return;
    this.stopped = true;
    this.timers.forEach(clearTimeout);
    const seconds = this.started ? (Date.now() - this.started) / 1000 : 0;
    // Stopped while the caller was still talking: the recording would miss their last words
    // (the stand-in still serves the whole utterance; the test sees the cut in `cuts`).
    const cut = !!this.utterance && Date.now() < this.speechEnds;
    if (cut) this.standin.cuts.push({ url: this.url, utterance: this.utterance.file || 'corrupt' });
    this.standin.recordings.serve(`/${this.rid}.mp3`, this.utterance);
    this.standin.note('scenario: recorder.stop()', { url: this.url, utterance: this.utterance && (this.utterance.file || 'corrupt'), cut });
    this.handlers.emit(RECORDER_EVENTS.Stopped, { recorder: this.api, cost: '0.0000', duration: Math.round(seconds) });
  }
}

/** VoxEngine.createWebSocket(): a real WebSocket client speaking Voximplant's media JSON. */
class VoxWebSocket {
  constructor(standin, url, parameters) {
    this.kind = 'websocket';
    this.standin = standin;
    this.handlers = new Handlers(standin, 'websocket', WEBSOCKET_EVENTS);
    this.url = url;
    this.state = 'connecting';
    this.wsid = `ws-${standin.nextId()}`;
    this.inbound = null; // voxd → call: {call, encoding, rate}
    this.outbound = null; // call → voxd: {call, encoding, rate, tag, seq, chunk, timestamp, sentMs, started}
    this.seq = 0;
    this.voxdTags = new Set(); // the tags on voxd's start/media/stop frames ('' for none)
    this.closeInfo = null;
    this.sent = []; // what the scenario sent with websocket.send (text)
    this.trace = !!(parameters && parameters.trace);
    const self = this;
    this.api = standin.strict(
      {
        id: () => this.wsid,
        get readyState() {
          return self.state;
        },
        url,
        close: () => this.closeByScenario(),
        send: (data) => {
          this.standin.check(typeof data === 'string', 'websocket.send(data: string)');
          this.standin.check(this.state === 'open', `websocket.send in state ${this.state}`);
          this.standin.note('scenario: websocket.send', { data: data.slice(0, 200) });
          this.sent.push(data);
          this.ws.send(data);
        },
        addEventListener: (e, cb) => this.handlers.add(e, cb),
        removeEventListener: (e, cb) => this.handlers.remove(e, cb),
        sendMediaTo: (unit, params) => this.sendMediaTo(unit, params),
        stopMediaTo: (unit) => this.stopMediaTo(unit),
        clearMediaBuffer: (params) => this.clearMediaBuffer(params),
      },
      'websocket',
    );
    standin.units.set(this.api, this);

    standin.checkOptions('VoxEngine.createWebSocket parameters', parameters, ['protocols', 'headers', 'statistics', 'trace', 'privacy']);
    const headers = {};
    const list = (parameters && parameters.headers) || [];
    standin.check(Array.isArray(list), 'WebSocketParameters.headers must be a list of {name, value}');
    for (const h of list) {
      standin.check(h && typeof h.name === 'string' && typeof h.value === 'string' && Object.keys(h).length === 2,
        'WebSocketParameters.headers must be a list of {name, value}');
      headers[h.name] = h.value;
    }
    const protocols = (parameters && parameters.protocols) || 'chat';
    const target = standin.route(url, ['ws:', 'wss:']);
    this.ws = new WS(target, protocols, { headers, handshakeTimeout: 10_000 });
    standin.sockets.push(this);
    this.ws.on('open', () => {
      this.state = 'open';
      this.handlers.emitNow(WEBSOCKET_EVENTS.OPEN, { websocket: this.api });
    });
    this.ws.on('message', (data, isBinary) => this.receive(isBinary ? null : data.toString()));
    this.ws.on('error', (err) => {
      standin.note('websocket error', { error: err.message });
      this.handlers.emitNow(WEBSOCKET_EVENTS.ERROR, { websocket: this.api });
    });
    this.ws.on('close', (code, reason) => {
      const wasClean = code !== 1006;
      this.closeInfo = { code, reason: reason.toString(), wasClean };
      this.state = 'closed';
      this.stopPump();
      this.handlers.emitNow(WEBSOCKET_EVENTS.CLOSE, { websocket: this.api, ...this.closeInfo });
    });
  }

  closeByScenario() {
    this.standin.note('scenario: websocket.close()');
    if (this.state === 'closed') return;
    this.state = 'closing';
    this.stopPump();
    this.ws.close(1000);
  }

  /** call.sendMediaTo(ws): the caller's audio goes to voxd as start + media frames. */
  attach(call, parameters) {
    this.standin.check(parameters && typeof parameters.tag === 'string', 'SendMediaParameters.tag is required (a string)');
    this.standin.checkOptions('SendMediaParameters', parameters, ['tag', 'customParameters', 'encoding']);
    const encoding = parameters.encoding || WEBSOCKET_AUDIO_ENCODING.PCM16_8KHZ;
    const info = audio.encodingInfo(encoding);
    this.standin.check(this.state === 'open', `call.sendMediaTo(websocket) in state ${this.state}`);
    this.outbound = { call, encoding, rate: info.sampleRate, tag: parameters.tag, chunk: 0, timestamp: 0, sentMs: 0, started: Date.now() };
    // `mediaFormat` (a stand-in option) replaces what the start frame says of the audio: Voximplant's
    // tutorials show "audio/x-mulaw", and PCM16 at 8000 Hz for PCM16_8KHZ; the payload stays `encoding`.
    const start = { mediaFormat: this.standin.mediaFormat || { encoding, sampleRate: info.sampleRate } };
    if (parameters.customParameters !== undefined) start.customParameters = parameters.customParameters;
    this.sendJson({ event: 'start', sequenceNumber: this.seq++, tag: parameters.tag, start });
    this.pump = setInterval(() => this.tick(), 10);
  }

  detach() {
    if (!this.outbound) return;
    const o = this.outbound;
    this.stopPump();
    if (this.state === 'open') {
      const bytes = o.timestamp * audio.encodingInfo(o.encoding).bytesPerSample;
      this.sendJson({ event: 'stop', sequenceNumber: this.seq++, tag: o.tag, stop: { mediaInfo: { bytesSent: bytes, duration: Math.round(o.sentMs / 1000) } } });
    }
    this.outbound = null;
  }

  stopPump() {
    if (this.pump) clearInterval(this.pump);
    this.pump = null;
  }

  sendJson(obj) {
    if (this.state === 'open') this.ws.send(JSON.stringify(obj));
  }

  /** Real-time pacing: the caller's audio (or silence) in 20 ms frames; the call's playout. */
  tick() {
    const o = this.outbound;
    if (!o) return;
    const phone = this.standin.phone;
    const frame = (o.rate * FRAME_MS) / 1000;
    while (o.sentMs + FRAME_MS <= Date.now() - o.started) {
      if (Date.now() < phone.holdUntil) {
        // On hold: no frames (the caller's audio waits); voxd's queued audio still plays out.
        o.sentMs += FRAME_MS;
        this.playout(FRAME_MS);
        continue;
      }
      const samples = new Int16Array(frame);
      let filled = 0;
      while (filled < frame && phone.outgoing.length) {
        const head = phone.outgoing[0];
        const n = Math.min(frame - filled, head.length);
        samples.set(head.subarray(0, n), filled);
        filled += n;
        if (n === head.length) phone.outgoing.shift();
        else phone.outgoing[0] = head.subarray(n);
      }
      o.chunk += 1;
      this.sendJson({
        event: 'media',
        sequenceNumber: this.seq++,
        tag: o.tag,
        media: { chunk: o.chunk, timestamp: o.timestamp, payload: audio.encodeSamples(samples, o.encoding).toString('base64') },
      });
      o.timestamp += frame;
      o.sentMs += FRAME_MS;
      this.playout(FRAME_MS);
    }
  }

  /** The call plays `ms` of the audio voxd queued: it reaches the caller's ear. */
  playout(ms) {
    const phone = this.standin.phone;
    let left = ms;
    while (left > 0 && phone.queue.length) {
      const head = phone.queue[0];
      const want = Math.round((head.reply.rate * left) / 1000);
      const n = Math.min(want, head.samples.length);
      head.reply.samples.push(head.samples.subarray(0, n));
      left -= (n / head.reply.rate) * 1000;
      if (n === head.samples.length) phone.queue.shift();
      else head.samples = head.samples.subarray(n);
      if (n === 0) break;
    }
  }

  receive(text) {
    if (text === null) {
      this.standin.fail(new Error('voxd sent a binary frame; Voximplant expects JSON text frames'));
      return;
    }
    let msg = null;
    try {
      msg = JSON.parse(text);
    } catch {
      // Not JSON: the scenario gets it as a message.
    }
    if (msg && typeof msg === 'object' && ['start', 'media', 'stop'].includes(msg.event)) {
      this.media(msg);
      // Whether VoxEngine also hands these frames to the MESSAGE handlers is not documented;
      // `mediaFramesToMessage` takes the pessimistic reading (review risk 7).
      if (!this.standin.mediaFramesToMessage) return;
    }
    this.handlers.emitNow(WEBSOCKET_EVENTS.MESSAGE, { websocket: this.api, text });
  }

  /**
   * voxd's speech, played into the call when the scenario routed it with ws.sendMediaTo(call).
   * Tags route streams: one tagged "x" reaches only a consumer attached with {tag: "x"}, an
   * untagged one (the default stream) only a consumer attached without a tag. Voximplant does
   * not document what an untagged consumer does with a tagged stream, so the stand-in takes
   * the strict reading: a mismatch is silence for the caller, and an error here.
   */
  media(msg) {
    const phone = this.standin.phone;
    const tag = typeof msg.tag === 'string' ? msg.tag : '';
    this.voxdTags.add(tag);
    if (!this.inbound) {
      this.standin.unrouted++;
      return;
    }
    if (tag !== this.inbound.tag) {
      if (this.standin.tagErrors++ === 0) {
        this.standin.fail(new Error(
          `voxd's audio is tagged ${JSON.stringify(tag)} (empty: untagged) but the scenario plays the stream ` +
            `tagged ${JSON.stringify(this.inbound.tag)} (ws.sendMediaTo(call${this.inbound.tag ? ', {tag}' : ''})): ` +
            'the caller hears nothing; voxd\'s voximplant_stream.tag and the scenario\'s VOXD_TAG must be equal',
        ));
      }
      return;
    }
    if (msg.event === 'start') {
      const fmt = (msg.start && msg.start.mediaFormat) || {};
      const info = audio.encodingInfo(fmt.encoding);
      this.standin.check(fmt.sampleRate === info.sampleRate, `voxd start: ${fmt.encoding} at ${fmt.sampleRate} Hz`);
      this.inbound.encoding = fmt.encoding;
      this.inbound.reply = { samples: [], rate: info.sampleRate, started: Date.now(), stopped: false };
      phone.replies.push(this.inbound.reply);
      this.handlers.emitNow(WEBSOCKET_EVENTS.MEDIA_STARTED, { websocket: this.api, tag: msg.tag, encoding: fmt.encoding, customParameters: {} });
    } else if (msg.event === 'media') {
      if (!this.inbound.reply) {
        this.standin.fail(new Error('voxd sent media before start'));
        return;
      }
      const samples = audio.decodeSamples(Buffer.from(msg.media.payload, 'base64'), this.inbound.encoding);
      phone.queue.push({ samples, reply: this.inbound.reply });
    } else if (this.inbound.reply) {
      this.inbound.reply.stopped = true;
      this.handlers.emitNow(WEBSOCKET_EVENTS.MEDIA_ENDED, { websocket: this.api, tag: msg.tag, mediaInfo: { duration: 0 } });
    }
  }

  /** ws.sendMediaTo(call[, {tag}]): voxd's stream of that tag (none: the default) plays into the call. */
  sendMediaTo(unit, params) {
    const target = this.standin.unitOf(unit, 'websocket.sendMediaTo');
    this.standin.check(target.kind === 'call', 'websocket.sendMediaTo expects a call');
    this.standin.checkOptions('SendMediaParameters', params, ['tag', 'customParameters', 'encoding']);
    // SendMediaParameters.tag is a required string: parameters without one are not typed.
    if (params !== undefined) this.standin.check(params && typeof params.tag === 'string', 'SendMediaParameters.tag is required (a string)');
    const tag = params ? params.tag : '';
    this.standin.note('scenario: websocket.sendMediaTo(call)', { tag });
    this.inbound = { call: target, encoding: null, reply: null, tag };
    target.hear(`voxd stream ${JSON.stringify(tag)}`);
  }

  stopMediaTo(unit) {
    this.standin.unitOf(unit, 'websocket.stopMediaTo');
    this.inbound = null;
  }

  /** ws.clearMediaBuffer([{tag}]): drops the queued audio of that tag's stream (none: the default). */
  clearMediaBuffer(params) {
    this.standin.checkOptions('ClearMediaBufferParameters', params, ['tag']);
    const tag = params && params.tag !== undefined ? params.tag : '';
    this.standin.check(typeof tag === 'string', 'ClearMediaBufferParameters.tag (a string)');
    if (this.inbound && tag !== this.inbound.tag) {
      this.standin.fail(new Error(
        `ws.clearMediaBuffer() for the stream tagged ${JSON.stringify(tag)} while the call plays the one tagged ` +
          `${JSON.stringify(this.inbound.tag)}: the queued audio is not dropped`,
      ));
      return;
    }
    const phone = this.standin.phone;
    phone.clears++;
    phone.droppedMs += phone.queuedMs();
    phone.queue = [];
    this.standin.note('scenario: websocket.clearMediaBuffer()', { tag });
  }
}

/** 1.5 s of a quiet line as Voximplant records it (8 kHz mono MP3), made with sox and lame. */
function silenceMp3() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voxd-silence-'));
  try {
    const wav = path.join(dir, 'silence.wav');
    execFileSync('sox', ['-n', '-r', '8000', '-c', '1', '-b', '16', wav, 'synth', '1.5', 'whitenoise', 'vol', '0.002']);
    execFileSync('lame', ['--quiet', '-b', '32', wav, path.join(dir, 'silence.mp3')]);
    return fs.readFileSync(path.join(dir, 'silence.mp3'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** An HTTP server that serves the recordings the stand-in makes (voxd downloads them). */
class RecordingServer {
  constructor() {
    this.files = new Map();
    this.requests = [];
    this.server = http.createServer((req, res) => {
      this.requests.push(req.url);
      const body = this.files.get(req.url);
      if (!body) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'audio/mpeg', 'Content-Length': body.length }).end(body);
    });
  }

  async listen() {
    this.silence = silenceMp3();
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.base = `http://127.0.0.1:${this.server.address().port}/records`;
  }

  serve(pathname, utterance) {
    let body;
    if (!utterance) body = this.silence;
    else if (utterance.corrupt) body = Buffer.from('ID3\x03\x00\x00\x00\x00\x00\x00this is not an mp3 frame at all'.repeat(40));
    else body = fs.readFileSync(utterance.file);
    this.files.set(`/records${pathname}`, body);
  }

  close() {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(r));
  }
}

/**
 * The runtime around one scenario. Options: `hosts` maps host names the scenario uses to
 * local base URLs ({"voxd.example.com": "http://127.0.0.1:8080"}), `timeScale` shortens the
 * scenario's timers and playback (1 = real time; media streams always run in real time),
 * `netTimeScale` shortens the time limits of Net.httpRequestAsync,
 * `customData` is what VoxEngine.customData() returns, `outbound` says how callPSTN ends
 * ({answerAfterMs} or {failCode, failReason}; with an AMD detector passed to callPSTN, `amd` is
 * the AMD.ResultClass it reports, HUMAN unless set, or 'ERROR' for DetectionError, `amdAfterMs`
 * after the answer), `mediaFormat` replaces the start frame's mediaFormat (e.g.
 * {encoding: 'audio/x-mulaw', sampleRate: 8000}), `mediaFramesToMessage` also hands voxd's
 * start/media/stop frames to the scenario's MESSAGE handlers, `settings` sets values of the scenario's
 * settings as its author would ({VOXD_URLS: [...], CALLER_ID: '+7…', VOXD_TAG: 'voxd'}: the
 * line `const NAME = …;` is given the JSON value).
 */
class StandIn {
  constructor({ hosts = {}, timeScale = 1, netTimeScale = 1, customData = '', outbound = { answerAfterMs: 300 }, settings = {}, mediaFormat = null, mediaFramesToMessage = false } = {}) {
    this.hosts = hosts;
    this.mediaFramesToMessage = mediaFramesToMessage;
    this.mediaFormat = mediaFormat;
    this.settings = settings;
    this.timeScale = timeScale;
    this.netTimeScale = netTimeScale;
    this.customDataValue = customData;
    this.outbound = outbound;
    this.errors = [];
    this.timeline = [];
    this.logs = [];
    this.requests = [];
    this.calls = [];
    this.sockets = [];
    this.units = new Map();
    this.timers = new Set();
    this.terminated = false;
    this.hangups = 0;
    this.bridges = [];
    this.unrouted = 0;
    this.ids = 0;
    this.t0 = Date.now();
    this.phone = new Phone(this);
    this.recordings = new RecordingServer();
    this.app = new Handlers(this, 'VoxEngine', APP_EVENTS);
    this.modules = new Set();
    this.voices = new Map(); // VoiceList's Voice objects → {name, language}
    this.tagErrors = 0; // voxd audio that reached no consumer because its tag differed
    this.cuts = []; // recordings stopped while the caller was still talking
    this.players = new Set(); // media players alive (see MAX_PLAYERS)
    this.playersMade = 0;
    this.maxPlayersAlive = 0;
    this.detectors = new Map(); // AMD.create's detectors: api → Detector
    this.waiters = [];
    this.terminatedPromise = new Promise((r) => {
      this.onTerminated = r;
    });
  }

  /** A media player is made: more than MAX_PLAYERS alive fails the session as VoxEngine would. */
  countPlayer(what, player) {
    if (this.players.size >= MAX_PLAYERS) {
      const err = new DriftError(`${what}: a media player over the limit of ${MAX_PLAYERS} per session ` +
        `(${this.players.size} alive; stop Players when they finish, avoid call.say/startPlayback per turn)`);
      this.fail(err);
      throw err;
    }
    this.players.add(player || { internal: what });
    this.playersMade += 1;
    this.maxPlayersAlive = Math.max(this.maxPlayersAlive, this.players.size);
  }

  /** VoxEngine.createURLPlayer(request, parameters) (d.ts:10282-10299, 21339-21425). */
  createURLPlayer(request, parameters) {
    this.check(request && typeof request === 'object' && typeof request.url === 'string', 'VoxEngine.createURLPlayer(request: URLPlayerRequest {url})');
    this.checkOptions('URLPlayerRequest', request, ['url', 'method', 'headers', 'body']);
    this.checkOptions('URLPlayerParameters', parameters, ['loop', 'onPause', 'progressivePlayback', 'hideHeaders', 'hideBody']);
    const url = request.url;
    const progressive = !!(parameters && parameters.progressivePlayback);
    this.note('scenario: VoxEngine.createURLPlayer', { url, progressive });
    const player = new Player(this, 'createURLPlayer', `playback ${url}`);
    const record = { url, ok: false, progressive, player: player.pid };
    this.phone.playbacks.push(record);
    const t0 = Date.now();
    if (progressive) {
      const playing = () => !player.destroyed && !player.finished && !this.terminated;
      this.fetchAudioProgressively(url, () => {
        record.firstAudioMs = Date.now() - t0;
        player.started(0);
      }, playing)
        .then(({ seconds, level, body, chunks, format, mp3, stalls }) => {
          Object.assign(record, { ok: true, durationMs: seconds * 1000, level, bytes: body, chunks, format, mp3, stalls, arrivedMs: Date.now() - t0 });
          const left = this.scaled(seconds * 1000) - (Date.now() - t0 - record.firstAudioMs);
          player.finishLater(Math.max(0, left));
        })
        .catch((err) => {
          record.error = err.message;
          player.finishLater(0, `cannot play ${url}: ${err.message}`);
        });
    } else {
      this.fetchAudio(url)
        .then(({ seconds, level, body, format, mp3 }) => {
          Object.assign(record, { ok: true, durationMs: seconds * 1000, level, bytes: body, format, mp3 });
          player.started(seconds);
          player.finishLater(this.scaled(seconds * 1000));
        })
        .catch((err) => {
          record.error = err.message;
          player.finishLater(0, `cannot play ${url}: ${err.message}`);
        });
    }
    return player.api;
  }

  /** VoxEngine.createTTSPlayer(text, parameters) (d.ts:10268-10274, 21274-21310). */
  createTTSPlayer(text, parameters) {
    this.check(typeof text === 'string', 'VoxEngine.createTTSPlayer(text: string)');
    this.checkOptions('TTSPlayerParameters', parameters, ['voice', 'progressivePlayback', 'ttsOptions', 'onPause', 'request']);
    const voice = parameters && parameters.voice !== undefined ? this.voiceOf(parameters.voice) : null;
    this.note('scenario: VoxEngine.createTTSPlayer', { text, voice: voice ? voice.name : '(none)' });
    this.checkVoice(text, voice);
    const player = new Player(this, 'createTTSPlayer', `say ${JSON.stringify(text.slice(0, 40))}`);
    this.phone.says.push(text);
    this.phone.voices.push(voice ? voice.name : null);
    if (text.length > 1500) {
      player.finishLater(0, 'text longer than 1500 characters');
    } else {
      setImmediate(() => player.started(0));
      player.finishLater(this.scaled(300 * text.split(/\s+/).filter(Boolean).length + 200));
    }
    return player.api;
  }

  nextId() {
    this.ids += 1;
    return this.ids;
  }

  scaled(ms) {
    return Math.max(0, Math.round(ms * this.timeScale));
  }

  note(what, detail) {
    const entry = { t: Date.now() - this.t0, what, ...(detail || {}) };
    this.timeline.push(entry);
    if (process.env.VOXD_TEST_LOG) process.stderr.write(`[standin ${entry.t} ms] ${what} ${detail ? JSON.stringify(detail) : ''}\n`);
    this.poke();
  }

  fail(err) {
    this.errors.push(err);
    this.note('ERROR', { error: String(err && err.stack ? err.stack : err) });
  }

  drift(what) {
    const err = new DriftError(`the scenario used ${what}, which the VoxEngine stand-in does not provide (API drift or a typo)`);
    this.fail(err);
    throw err;
  }

  check(ok, what) {
    if (!ok) this.drift(what);
  }

  /** `options` must be undefined or an object whose keys are all in `allowed` (null: any string map). */
  checkOptions(what, options, allowed) {
    if (options === undefined || options === null) return;
    this.check(typeof options === 'object' && !Array.isArray(options), `${what} as ${JSON.stringify(options)} (expected an object)`);
    for (const [k, v] of Object.entries(options)) {
      if (allowed === null) this.check(typeof v === 'string', `${what}.${k} = ${JSON.stringify(v)} (expected a string)`);
      else this.check(allowed.includes(k), `${what}.${k}`);
    }
  }

  /** The VoiceList global: namespaces of opaque Voice objects, as the typings declare them. */
  voiceList() {
    const root = {};
    for (const [ns, names] of Object.entries(voiceNames())) {
      let node = root;
      for (const part of ns.split('.')) node = node[part] = node[part] || {};
      for (const name of names) {
        const voice = Object.freeze({});
        this.voices.set(voice, { name: `VoiceList.${ns}.${name}`, language: name.slice(0, 5) });
        node[name] = voice;
      }
    }
    const wrap = (node, name) => {
      const out = {};
      for (const [k, v] of Object.entries(node)) out[k] = this.voices.has(v) ? v : wrap(v, `${name}.${k}`);
      return this.strict(out, name);
    };
    return wrap(root, 'VoiceList');
  }

  /** {name, language} of a Voice from VoiceList; anything else is drift. */
  voiceOf(voice) {
    const info = this.voices.get(voice);
    this.check(info, `CallSayParameters.voice = ${JSON.stringify(voice)} (expected a Voice from VoiceList)`);
    return info;
  }

  /**
   * call.say must name a voice that speaks the phrase's language: without one Voximplant reads
   * it with its default voice (VoiceList.Amazon.en_US_Joanna, US English), and a Russian phrase
   * would be read in English. Cyrillic text needs a ru_RU voice, Latin text an en_US one. A
   * mismatch is recorded as an error; the phrase is still "spoken", so the call goes on.
   */
  checkVoice(text, voice) {
    const language = /[\u0400-\u04FF]/.test(text) ? 'ru_RU' : /[A-Za-z]/.test(text) ? 'en_US' : null;
    if (!language) return;
    if (!voice) {
      this.fail(new Error(`call.say(${JSON.stringify(text.slice(0, 60))}) without a voice: Voximplant would read it with its default en_US voice; pass {voice: VoiceList.….${language}_…}`));
    } else if (voice.language !== language) {
      this.fail(new Error(`call.say(${JSON.stringify(text.slice(0, 60))}) with ${voice.name}, which does not speak ${language}`));
    }
  }

  /** A proxy that throws a drift error on any property the stand-in does not define. */
  strict(target, name) {
    const standin = this;
    return new Proxy(target, {
      get(t, prop, receiver) {
        if (typeof prop === 'symbol' || prop in t) return Reflect.get(t, prop, receiver);
        if (PROBED.has(prop)) return undefined;
        return standin.drift(`${name}.${prop}`);
      },
      set(t, prop) {
        return standin.drift(`assignment to ${name}.${String(prop)}`);
      },
    });
  }

  unitOf(api, what) {
    const unit = this.units.get(api);
    if (!unit) this.drift(`${what} with an argument that is not a call, WebSocket or recorder`);
    return unit;
  }

  /** Runs a scenario handler, recording exceptions and rejected promises as failures. */
  invoke(fn, arg, what) {
    try {
      const out = fn(arg);
      if (out && typeof out.then === 'function') out.then(undefined, (err) => this.fail(annotate(err, what)));
    } catch (err) {
      if (!(err instanceof DriftError)) this.fail(annotate(err, what));
    }
  }

  /** Maps a URL the scenario uses onto a local base URL; unknown hosts are drift. */
  route(url, protocols) {
    let u;
    try {
      u = new URL(url);
    } catch {
      return this.drift(`the malformed URL ${JSON.stringify(url)}`);
    }
    this.check(protocols.includes(u.protocol), `a ${u.protocol} URL where ${protocols.join(' or ')} is expected (${url})`);
    if (u.hostname === '127.0.0.1' && this.recordings.base && url.startsWith(this.recordings.base)) return url;
    const base = this.hosts[u.host] || this.hosts[u.hostname];
    this.check(base, `a URL on the unexpected host ${u.host} (${url})`);
    const local = new URL(base);
    if (u.protocol === 'ws:' || u.protocol === 'wss:') local.protocol = local.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${local.origin}${u.pathname}${u.search}`;
  }

  /** Downloads an audio URL (WAV or MP3) as the call's player would and checks it is real sound. */
  async fetchAudio(url) {
    const res = await fetch(this.route(url, ['http:', 'https:']), { signal: AbortSignal.timeout(12_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const body = Buffer.from(await res.arrayBuffer());
    if (body.length > 10 * 1024 * 1024) throw new Error('over 10 MB');
    const clock = new ProgressiveClock();
    clock.push(body, 0);
    clock.end();
    return this.heardAudio(body, clock, res.headers.get('content-type'));
  }

  /**
   * Fetches a WAV or MP3 file as it arrives; `onFirst` runs when the first audio is in (the
   * first whole MP3 frame, the first WAV sample). The player plays it from then on in real
   * time (not scaled by timeScale: voxd's pacing is real time); a chunk that arrives more
   * than 0.25 s after the audio before it ran out is a stall, a failure of the test (on
   * Voximplant the player runs dry, and may end the playback silently), while `playing()`
   * says the playback goes on (one stopped or on a call that ended hears nothing).
   */
  async fetchAudioProgressively(url, onFirst, playing = () => true) {
    const res = await fetch(this.route(url, ['http:', 'https:']), { signal: AbortSignal.timeout(60_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const parts = [];
    let size = 0;
    let started = false;
    const clock = new ProgressiveClock();
    for await (const part of res.body) {
      const stall = clock.push(Buffer.from(part), performance.now() / 1000);
      parts.push(Buffer.from(part));
      size += part.length;
      if (size > 10 * 1024 * 1024) throw new Error('over 10 MB');
      if (stall && playing()) {
        const s = (x) => `${x.toFixed(3)} s`;
        this.fail(new Error(
          `progressive playback of ${url} stalled: a chunk arrived ${s(stall.at)} after the first audio, ` +
            `with ${s(stall.had)} of audio before it; the player had run dry ${s(stall.behind)} before ` +
            `(more than ${s(clock.slack)}), so the caller hears a gap, or Voximplant ends the playback`,
        ));
      }
      if (!started && clock.started) {
        started = true;
        onFirst();
      }
    }
    clock.end();
    const heard = await this.heardAudio(Buffer.concat(parts), clock, res.headers.get('content-type'));
    return { ...heard, chunks: clock.chunks, stalls: clock.stalls };
  }

  /**
   * What the caller hears of a downloaded file whose bytes `clock` has read: {seconds, level,
   * body (a WAV file: MP3 decoded by lame), format ('wav' or 'mp3'), received (bytes), mp3 (for
   * MP3: frames, versions, sampleRates, bitrates, channels, id3)}. A Content-Type that names
   * another format than the bytes' is an error.
   */
  async heardAudio(received, clock, contentType) {
    const type = (contentType || '').split(';')[0].trim().toLowerCase();
    const declared = type === 'audio/mpeg' || type === 'audio/mp3' ? 'mp3' : ['audio/wav', 'audio/x-wav', 'audio/wave'].includes(type) ? 'wav' : null;
    if (declared && declared !== clock.format) throw new Error(`served as ${type}, but the bytes are ${clock.format.toUpperCase()}`);
    const body = clock.format === 'mp3' ? await decodeMp3(received) : received;
    const wav = audio.parseWav(body);
    const seconds = wav.samples.length / wav.channels / wav.sampleRate;
    if (seconds < 0.2) throw new Error(`only ${seconds.toFixed(2)} s of audio`);
    const out = { seconds, level: audio.rms(wav.samples), body, format: clock.format, received: received.length };
    if (clock.format === 'mp3') {
      const r = clock.reader;
      out.mp3 = { frames: r.frames, versions: [...r.versions], sampleRates: [...r.sampleRates], bitrates: [...r.bitrates], channels: [...r.channels], id3: r.id3 };
    }
    return out;
  }

  /** Net.httpRequestAsync: the arguments are checked at the call, the request runs async. */
  httpRequest(url, options) {
    this.checkOptions('Net.HttpRequestOptions', options, ['method', 'headers', 'postData', 'params', 'rawOutput', 'timeout', 'connectionTimeout', 'enableSystemLog']);
    const o = options || {};
    if (o.headers !== undefined) this.checkOptions('Net.HttpRequestOptions.headers', o.headers, null);
    this.check(o.postData === undefined || typeof o.postData === 'string' || Array.isArray(o.postData), 'Net.HttpRequestOptions.postData (string or byte array)');
    this.check(o.timeout === undefined || (typeof o.timeout === 'number' && o.timeout > 0 && o.timeout <= 90), 'Net.HttpRequestOptions.timeout (seconds, at most 90)');
    const target = new URL(this.route(url, ['http:', 'https:']));
    return this.send(url, target, o);
  }

  async send(url, target, o) {
    const method = (o.method || 'GET').toUpperCase();
    for (const [k, v] of Object.entries(o.params || {})) target.searchParams.set(k, v);
    const record = { method, url, body: typeof o.postData === 'string' ? o.postData : undefined, headers: o.headers || {} };
    this.requests.push(record);
    this.note(`scenario: Net ${method} ${url}`);
    const timeoutMs = Math.round((o.timeout || 90) * 1000 * this.netTimeScale);
    const init = { method, headers: o.headers || {}, signal: AbortSignal.timeout(timeoutMs) };
    if (['POST', 'PUT', 'PATCH'].includes(method) && o.postData !== undefined) {
      init.body = typeof o.postData === 'string' ? o.postData : Buffer.from(o.postData);
    }
    let result;
    try {
      const res = await fetch(target, init);
      const bytes = Buffer.from(await res.arrayBuffer());
      if (bytes.length > NET_MAX_BODY) {
        result = { code: NET_CODE.tooLarge, error: 'response larger than 2 MB' };
      } else {
        const headers = [...res.headers.entries()].map(([key, value]) => ({ key, value }));
        result = {
          code: res.status,
          headers,
          raw_headers: headers.map((h) => `${h.key}: ${h.value}`).join('\r\n'),
          text: bytes.toString('utf8'),
          data: o.rawOutput ? [...bytes] : undefined,
        };
      }
    } catch (err) {
      const cause = (err && err.cause && err.cause.code) || '';
      if (err.name === 'TimeoutError') result = { code: NET_CODE.timeout, error: 'timeout' };
      else if (cause === 'ENOTFOUND') result = { code: NET_CODE.hostNotFound, error: 'host not found' };
      else if (cause === 'ECONNREFUSED') result = { code: NET_CODE.connectionError, error: 'connection error' };
      else result = { code: NET_CODE.networkError, error: String(err.message) };
    }
    record.code = result.code;
    record.response = result.text;
    this.note(`Net → ${result.code}`, { url });
    return result;
  }

  /** The globals of a VoxEngine scenario. */
  globals() {
    const s = this;
    const timer = (kind) => (fn, ms) => {
      s.check(typeof fn === 'function', `${kind}(callback: function)`);
      const min = kind === 'setInterval' ? 100 : 0;
      const delay = s.scaled(Math.max(min, ms || 0));
      const wrapped = () => {
        if (kind === 'setTimeout') s.timers.delete(id);
        if (!s.terminated) s.invoke(fn, undefined, `${kind} callback`);
      };
      const id = kind === 'setTimeout' ? setTimeout(wrapped, delay) : setInterval(wrapped, delay);
      s.timers.add(id);
      return id;
    };
    const clear = (id) => {
      clearTimeout(id);
      s.timers.delete(id);
    };
    const VoxEngine = s.strict(
      {
        addEventListener: (e, cb) => s.app.add(e, cb),
        removeEventListener: (e, cb) => s.app.remove(e, cb),
        customData: (value) => {
          if (value !== undefined) {
            s.check(typeof value === 'string' && Buffer.byteLength(value) <= 200, 'VoxEngine.customData(value) with more than 200 bytes');
            s.customDataValue = value;
          }
          return s.customDataValue;
        },
        createWebSocket: (url, parameters) => new VoxWebSocket(s, url, parameters).api,
        createURLPlayer: (request, parameters) => s.createURLPlayer(request, parameters),
        createTTSPlayer: (text, parameters) => s.createTTSPlayer(text, parameters),
        createRecorder: (parameters) => {
          s.check(s.modules.has('recorder'), 'VoxEngine.createRecorder without require(Modules.Recorder)');
          s.checkOptions('RecorderParameters', parameters, ['name', 'provider', 'secure', 'transcribe', 'language', 'hd_audio', 'expire', 'lossless', 'video', 'videoParameters', 'recordNamePrefix']);
          return new Recorder(s, parameters).api;
        },
        callPSTN: (number, callerid, parameters) => s.callPSTN(number, callerid, parameters),
        sendMediaBetween: (unit1, unit2) => s.sendMediaBetween(unit1, unit2),
        terminate: () => s.terminate(),
      },
      'VoxEngine',
    );
    const Net = s.strict({ httpRequestAsync: (url, options) => s.httpRequest(url, options) }, 'Net');
    const Logger = s.strict(
      {
        write: (message) => {
          s.check(typeof message === 'string', 'Logger.write(message: string)');
          s.check(message.length <= 15000, 'Logger.write with more than 15000 characters');
          s.logs.push(message);
          s.note('log', { message });
        },
      },
      'Logger',
    );
    const Modules = s.strict({ Recorder: 'recorder' }, 'Modules');
    return {
      VoxEngine,
      Net,
      Logger,
      Modules,
      AppEvents: s.strict({ ...APP_EVENTS }, 'AppEvents'),
      CallEvents: s.strict({ ...CALL_EVENTS }, 'CallEvents'),
      WebSocketEvents: s.strict({ ...WEBSOCKET_EVENTS }, 'WebSocketEvents'),
      WebSocketAudioEncoding: s.strict({ ...WEBSOCKET_AUDIO_ENCODING }, 'WebSocketAudioEncoding'),
      PlayerEvents: s.strict({ ...PLAYER_EVENTS }, 'PlayerEvents'),
      DTMFType: s.strict({ ...DTMF_TYPE }, 'DTMFType'),
      AMD: s.strict(
        {
          create: (parameters) => new Detector(s, parameters).api,
          Events: s.strict({ ...AMD_EVENTS }, 'AMD.Events'),
          Model: s.strict({ ...AMD_MODELS }, 'AMD.Model'),
          ResultClass: s.strict({ ...AMD_RESULT_CLASS }, 'AMD.ResultClass'),
          ResultSubtype: s.strict({ ...AMD_RESULT_SUBTYPE }, 'AMD.ResultSubtype'),
        },
        'AMD',
      ),
      VoiceList: s.voiceList(),
      require: (mod) => {
        s.check(mod === 'recorder', `require(${JSON.stringify(mod)})`);
        s.modules.add(mod);
        s.context.RecorderEvents = s.strict({ ...RECORDER_EVENTS }, 'RecorderEvents');
      },
      setTimeout: timer('setTimeout'),
      setInterval: timer('setInterval'),
      clearTimeout: clear,
      clearInterval: clear,
    };
  }

  /** Loads the scenario file unmodified and starts the session (AppEvents.Started). */
  async load(file) {
    await this.recordings.listen();
    this.context = vm.createContext(this.globals());
    // V8 gives every context a console; VoxEngine scenarios have Logger instead.
    vm.runInContext('delete globalThis.console', this.context);
    let code = fs.readFileSync(file, 'utf8');
    for (const [name, value] of Object.entries(this.settings)) {
      const line = new RegExp(`^const ${name} = .*;$`, 'm');
      if (!line.test(code)) throw new Error(`${path.basename(file)} has no setting ${name}`);
      code = code.replace(line, () => `const ${name} = ${JSON.stringify(value)};`);
    }
    try {
      vm.runInContext(code, this.context, { filename: file });
    } catch (err) {
      this.fail(annotate(err, `loading ${path.basename(file)}`));
      throw err;
    }
    this.app.emit(APP_EVENTS.Started, {
      accessURL: 'http://media.voximplant.test/request/session',
      accessSecureURL: 'https://media.voximplant.test/request/session',
      accountId: 1,
      applicationId: 1,
      logURL: 'https://logs.voximplant.test/session.log',
      sessionId: 1,
      conference_name: '',
    });
  }

  /** An incoming call arrives (AppEvents.CallAlerting). Returns the stand-in's call. */
  incomingCall({ callerid = '+79001234567', destination = '+74951234567' } = {}) {
    const call = new Call(this, { incoming: true, callerid, number: destination });
    this.calls.push(call);
    this.units.set(call.api, call);
    this.app.emit(APP_EVENTS.CallAlerting, {
      call: call.api,
      name: APP_EVENTS.CallAlerting,
      callerid,
      destination,
      toURI: `sip:${destination}@voximplant.test`,
      fromURI: `sip:${callerid}@voximplant.test`,
      displayName: callerid,
      headers: {},
      scheme: {},
    });
    return call;
  }

  callPSTN(number, callerid, parameters) {
    this.check(typeof number === 'string' && /^\+?[1-9]\d{6,14}$/.test(number), `VoxEngine.callPSTN with number ${JSON.stringify(number)} (E.164 expected)`);
    this.check(typeof callerid === 'string' && callerid.length > 0, 'VoxEngine.callPSTN(number, callerid) without a caller id');
    this.checkOptions('CallPSTNParameters', parameters, ['amd', 'followDiversion']);
    const detector = parameters && parameters.amd !== undefined ? this.detectors.get(parameters.amd) : null;
    if (parameters && parameters.amd !== undefined) this.check(detector, 'CallPSTNParameters.amd (an AMD.AnsweringMachineDetector from AMD.create)');
    this.note('scenario: VoxEngine.callPSTN', { number, callerid, amd: detector ? detector.model : undefined });
    const call = new Call(this, { incoming: false, callerid, number });
    this.calls.push(call);
    this.units.set(call.api, call);
    if (detector) detector.call = call;
    // `outbound.amd`: what the detector says once the callee answered (HUMAN unless told), after
    // `amdAfterMs` (default 1500, scaled).
    const o = this.outbound;
    setTimeout(() => {
      if (o.failCode) {
        call.fail(o.failCode, o.failReason || 'Failed');
        return;
      }
      call.connect();
      if (detector) detector.detectLater(call, o.amd || AMD_RESULT_CLASS.HUMAN, this.scaled(o.amdAfterMs || 1500));
    }, this.scaled(o.answerAfterMs || o.failAfterMs || 300));
    return call.api;
  }

  /** VoxEngine.sendMediaBetween(mediaUnit1, mediaUnit2): the two hear each other. */
  sendMediaBetween(unit1, unit2) {
    const one = this.unitOf(unit1, 'VoxEngine.sendMediaBetween');
    const two = this.unitOf(unit2, 'VoxEngine.sendMediaBetween');
    this.check(one !== two, 'VoxEngine.sendMediaBetween with the same unit twice');
    for (const u of [one, two]) {
      this.check(u.kind !== 'call' || u.live(), `VoxEngine.sendMediaBetween with a call in state ${u.callState}`);
    }
    this.note('scenario: VoxEngine.sendMediaBetween', { units: [one.callId || one.kind, two.callId || two.kind] });
    this.bridges.push([one, two]);
    if (one.kind === 'call') one.hear(`bridge ${two.callId || two.kind}`);
    if (two.kind === 'call') two.hear(`bridge ${one.callId || one.kind}`);
  }

  terminate() {
    if (this.terminated) return;
    this.note('scenario: VoxEngine.terminate()');
    this.app.emitNow(APP_EVENTS.Terminating, {});
    this.terminated = true;
    for (const id of this.timers) clearTimeout(id);
    for (const sock of this.sockets) sock.stopPump();
    this.app.emitNow(APP_EVENTS.Terminated, {});
    this.onTerminated();
  }

  /** Resolves once `cond()` is true (checked on every stand-in event and every 50 ms). */
  waitFor(cond, ms, what) {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = { cond, resolve };
      const poll = setInterval(() => this.poke(), 50);
      w.done = () => clearInterval(poll);
      w.timer = setTimeout(() => {
        w.done();
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}\n${this.report()}`));
      }, ms);
      this.waiters.push(w);
    });
  }

  poke() {
    for (const w of [...this.waiters]) {
      if (w.cond()) {
        clearTimeout(w.timer);
        w.done();
        this.waiters = this.waiters.filter((x) => x !== w);
        w.resolve();
      }
    }
  }

  /** Waits for VoxEngine.terminate(). */
  waitTerminated(ms) {
    return this.waitFor(() => this.terminated, ms, 'VoxEngine.terminate()');
  }

  /** The timeline and errors, for failure messages. */
  report() {
    const lines = this.timeline.map((e) => {
      const { t, what, ...rest } = e;
      return `  ${String(t).padStart(6)} ms  ${what} ${Object.keys(rest).length ? JSON.stringify(rest) : ''}`;
    });
    return `stand-in timeline:\n${lines.join('\n')}\nerrors: ${this.errors.map(String).join('\n') || 'none'}`;
  }

  async close() {
    this.terminated = true;
    for (const id of this.timers) clearTimeout(id);
    for (const sock of this.sockets) {
      sock.stopPump();
      if (sock.ws && sock.ws.readyState === WS.OPEN || sock.ws.readyState === WS.CONNECTING) sock.ws.terminate();
    }
    await this.recordings.close();
  }
}

function annotate(err, what) {
  if (err instanceof Error) {
    err.message = `${what}: ${err.message}`;
    return err;
  }
  return new Error(`${what}: ${String(err)}`);
}

module.exports = { StandIn, DriftError, APP_EVENTS, CALL_EVENTS, WEBSOCKET_EVENTS };
