//! One conversation as a sans-IO state machine: turn detection on the caller's audio, the
//! replies (greeting, streamed answers) made through the reply pipeline, replies begun
//! speculatively in the caller's pause (held until the turn has really ended, dropped if the
//! caller goes on), the end of turn that hears the caller's voice (the end-of-turn model) and
//! words, paced playout, barge-in (speech over voxd heard out while it may be a backchannel;
//! a cut reply resumed when the interruption held no words), and what the call's recorder
//! keeps (its memory, and the language its replies are made in). It starts no work itself:
//! it asks for it ([`Self::effects`], run by [`super::Tasks`]) and takes the results in
//! ([`Self::on_update`]); every input carries the time (`now`), and it says when it next
//! needs the clock ([`Self::next_timeout`]), so tests drive it with their own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::end_of_turn::{self, Ending};
use super::keypad::{KeyAction, Keypad, Pressed};
use super::listening::Listening;
use super::playout::Playout;
use super::reply::{millis, Action, ReplyEvent, ReplyInput, ReplyRequest};
use super::tasks::{Effect, Update};
use super::turn_detector::{TurnDetector, TurnEvent};
use super::{Assistant, Output, Settings};
use crate::audio::Pcm;
use crate::calls::CallRecorder;
use crate::engines::schedule::{Deadline, Due};

/// The caller speaking over voxd, not (yet) an interruption: it may be a backchannel.
struct Overlap {
    seq: u64,
    /// Its words are being transcribed.
    checking: bool,
    /// The utterance, if it ended before its words were known.
    ended: Option<Vec<i16>>,
}

/// A reply the caller cut, kept while what they said may turn out to hold no words.
struct Suspended {
    reply: Reply,
    playout: Playout,
    /// When it was cut.
    at: Instant,
    /// Its progress since.
    held: Vec<ReplyEvent>,
}

/// The caller's current pause, while it may end their turn, and what was heard in it.
struct Pause {
    seq: u64,
    /// The end-of-turn model's verdict: finished or not (None: not yet, or no model).
    model: Option<bool>,
    /// What the speculative transcript's words say.
    words: Option<Ending>,
}

/// The reply in progress.
struct Reply {
    id: u64,
    heard: Option<String>,
    utterance: Vec<i16>,
    turn_end: Instant,
    first_audio: Option<Instant>,
    /// Set when the reply is complete: what follows it.
    done: Option<Action>,
    /// Set while the reply answers a turn that may not be over yet.
    speculation: Option<Speculation>,
}

/// A reply begun in the caller's pause.
struct Speculation {
    /// When its first words are due: when the turn would end; moved when it does.
    due: Due,
    /// Its progress, held until the turn has really ended.
    held: Vec<ReplyEvent>,
}

/// The state of one conversation.
pub struct Conversation {
    assistant: Arc<Assistant>,
    settings: Settings,
    /// The call being held (set by [`Self::start`]).
    call: Option<Arc<CallRecorder>>,
    /// The caller's audio rate while audio flows.
    in_rate: Option<u32>,
    out_rate: u32,
    detector: Option<TurnDetector>,
    playout: Option<Playout>,
    /// `AudioStart` was emitted for the reply being played.
    out_started: bool,
    reply: Option<Reply>,
    reply_seq: u64,
    greeted: bool,
    /// Caller audio of a turn whose reply was abandoned because the caller went on.
    carry_over: Vec<i16>,
    /// What was transcribed of the caller's utterance while they spoke.
    listening: Listening,
    /// A pause (the utterance so far, and when it began to count) that came while a part of
    /// the utterance was being transcribed: the speculation starts once that is done, from
    /// its words, instead of transcribing the same audio again beside it.
    deferred: Option<(Vec<i16>, Instant)>,
    /// A hangup or transfer, due once voxd stops talking.
    ending: Option<Action>,
    /// The keys the caller pressed, until they are read.
    keypad: Keypad,
    /// The caller's pause that may end their turn, and the number of the last one.
    pause: Option<Pause>,
    pauses: u64,
    /// The caller speaking over voxd, and the number of the last such speech.
    overlap: Option<Overlap>,
    overlaps: u64,
    /// A reply the caller cut, until their words are known.
    suspended: Option<Suspended>,
    out: Vec<Output>,
    /// The work asked for, until the transport's tasks take it ([`Self::effects`]).
    effects: Vec<Effect>,
}

impl Conversation {
    /// A conversation that has not started.
    pub fn new(assistant: Arc<Assistant>, settings: Settings) -> Self {
        let keypad = Keypad::new(settings.keypad.clone());
        Self {
            assistant,
            settings,
            call: None,
            in_rate: None,
            out_rate: 16_000,
            detector: None,
            playout: None,
            out_started: false,
            reply: None,
            reply_seq: 0,
            greeted: false,
            carry_over: Vec::new(),
            listening: Listening::default(),
            deferred: None,
            ending: None,
            keypad,
            pause: None,
            pauses: 0,
            overlap: None,
            overlaps: 0,
            suspended: None,
            out: Vec::new(),
            effects: Vec::new(),
        }
    }

    /// The caller's audio of `call` starts flowing at `in_rate` (8 or 16 kHz); voxd speaks
    /// at `out_rate`. The first start says the greeting.
    pub fn start(
        &mut self,
        call: Arc<CallRecorder>,
        in_rate: u32,
        out_rate: u32,
        now: Instant,
    ) -> Vec<Output> {
        self.call = Some(call);
        self.in_rate = Some(in_rate);
        self.out_rate = out_rate;
        self.detector = Some(TurnDetector::new(in_rate, self.settings.turns));
        if !self.greeted && !self.settings.greeting.is_empty() {
            self.greeted = true;
            let text = self.settings.greeting.clone();
            self.start_reply(Vec::new(), ReplyInput::Fixed(text), now, None);
        }
        self.take()
    }

    /// The caller's audio stops (it may start again); voxd finishes what it is saying.
    pub fn stop(&mut self) {
        self.in_rate = None;
        self.detector = None;
    }

    /// Feeds the caller's audio (at the start's `in_rate`).
    pub fn push_audio(&mut self, samples: &[i16], now: Instant) -> Vec<Output> {
        let min = if self.speaking(now) {
            self.settings.barge_in_min_ms
        } else {
            self.settings.turns.min_speech_ms as u32
        };
        if let Some(detector) = self.detector.as_mut() {
            detector.set_min_speech_ms(min as usize);
            for event in detector.push(samples) {
                self.on_turn_event(event, now);
            }
        }
        if let Some(o) = &self.overlap {
            let voiced = self.detector.as_ref().map_or(0, |d| d.voiced_ms());
            if !self.speaking(now) {
                // voxd finished while the caller spoke: theirs is an ordinary turn now,
                // unless its words are being heard out ([`Self::on_overlap`] decides).
                if !o.checking {
                    self.overlap = None;
                }
            } else if voiced >= self.settings.backchannel_ms as usize {
                self.overlap = None;
                self.barge_in(now, true);
            }
        }
        self.take()
    }

    /// The caller pressed `key`: voxd stops talking; a mapped key acts at once, others are
    /// gathered and read to the model when the run is over (see [`Self::tick`]).
    pub fn pressed(&mut self, key: char, now: Instant) -> Vec<Output> {
        tracing::info!(call_id = self.label(), %key, "key pressed");
        self.overlap = None;
        if self.speaking(now) {
            self.barge_in(now, false);
        }
        self.drop_suspended();
        if let Pressed::Act(action) = self.keypad.press(key, now) {
            self.cancel_reply();
            self.ending = None;
            self.out.push(match action {
                KeyAction::Operator => Output::Transfer,
                KeyAction::Hangup => Output::Hangup,
            });
        }
        self.take()
    }

    /// Whether a reply to a turn that may not be over yet is in progress.
    pub(super) fn speculating(&self) -> bool {
        self.reply.as_ref().is_some_and(|r| r.speculation.is_some())
    }

    /// Whether a part of the caller's utterance is being transcribed while they speak.
    #[cfg(test)]
    pub(super) fn listening_busy(&self) -> bool {
        self.listening.busy()
    }

    /// Whether voxd is talking (or about to: a reply is queued for playout).
    pub fn speaking(&self, now: Instant) -> bool {
        self.playout.as_ref().is_some_and(|p| p.busy(now))
    }

    fn take(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    /// The work the conversation has asked for since the last call: the transport runs it
    /// ([`super::Tasks`]) and hands the results to [`Self::on_update`].
    pub fn effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// When [`Self::tick`] next has something to do, if anything but the caller's audio and
    /// the work's results can give it some: the next frame of voxd's speech, the end of
    /// its playout, a hangup or transfer once voxd is silent, a speculation that waited for
    /// a part being transcribed, the end of a run of keys, the end of a cut reply's chance
    /// to resume. Never later than that, never in the past while it has nothing to do.
    pub fn next_timeout(&self, now: Instant) -> Option<Instant> {
        let ready = self.played_out(now) || self.ending_due(now) || self.deferred_ready();
        let resume_ends = self
            .suspended
            .as_ref()
            .map(|s| s.at + self.settings.resume_within + Duration::from_millis(1));
        [
            ready.then_some(now),
            self.playout.as_ref().and_then(|p| p.next_change(now)),
            self.keypad.due_at(),
            resume_ends,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// voxd's reply is complete and has all played: its speech is to be closed.
    fn played_out(&self, now: Instant) -> bool {
        self.playout.as_ref().is_some_and(|p| !p.busy(now))
            && self.reply.as_ref().is_none_or(|r| r.done.is_some())
    }

    /// A hangup or transfer waits, and voxd has stopped talking.
    fn ending_due(&self, now: Instant) -> bool {
        self.ending.is_some() && !self.speaking(now)
    }

    /// A speculation waits for a part being transcribed, and the part is done.
    fn deferred_ready(&self) -> bool {
        self.deferred.is_some() && !self.listening.busy()
    }

    /// The reply in progress is abandoned.
    fn cancel_reply(&mut self) {
        if let Some(r) = self.reply.take() {
            self.effects.push(Effect::Cancel(r.id));
        }
    }

    fn label(&self) -> &str {
        self.call.as_ref().map_or("-", |c| c.id().as_str())
    }

    /// What the turn detector noticed (the transport's audio, or a test's own events).
    pub(super) fn on_turn_event(&mut self, event: TurnEvent, now: Instant) {
        match event {
            TurnEvent::SpeechStarted => {
                self.listening.restart();
                self.deferred = None;
                self.pause = None;
                if self.speaking(now) {
                    if self.settings.barge_in {
                        self.speech_over_voxd(now);
                    }
                } else if let Some(reply) = self.reply.take() {
                    // The caller went on before voxd answered: answer the whole thing later
                    // (its last max_turn at most: a turn is never longer).
                    self.effects.push(Effect::Cancel(reply.id));
                    let mut carried = reply.utterance;
                    let rate = self.in_rate.unwrap_or(16_000) as usize;
                    let keep = self.settings.turns.max_turn_ms * rate / 1000;
                    carried.drain(..carried.len().saturating_sub(keep));
                    self.carry_over = carried;
                }
            }
            TurnEvent::Partial(so_far) => {
                let Some(rate) = self.in_rate else { return };
                if self.carry_over.is_empty() && self.assistant.engine_load().has_room() {
                    self.effects.extend(self.listening.offer(&so_far, rate));
                }
            }
            TurnEvent::PartialVoid(end) => self.listening.void(end),
            TurnEvent::Paused(so_far) if self.overlap.is_some() => self.hear_overlap(&so_far),
            TurnEvent::Paused(so_far) => {
                self.judge_pause(&so_far);
                self.speculate(so_far, now, now);
            }
            TurnEvent::Resumed => {
                self.deferred = None;
                self.pause = None;
                if self.speculating() {
                    self.cancel_reply();
                    self.count_speculation("dropped");
                }
            }
            TurnEvent::TurnEnded(samples) if self.overlap.is_some() => {
                self.hear_overlap(&samples);
                if let Some(o) = self.overlap.as_mut() {
                    o.ended = Some(samples);
                }
            }
            TurnEvent::TurnEnded(samples) => {
                self.deferred = None;
                self.pause = None;
                if self.speaking(now) && !self.settings.barge_in {
                    return;
                }
                let carried = std::mem::take(&mut self.carry_over);
                if self.speculating() {
                    let mut utterance = carried;
                    utterance.extend_from_slice(&samples);
                    self.confirm(utterance, now);
                    return;
                }
                let Some((utterance, input)) = self.input(&carried, &samples) else {
                    return;
                };
                // The reply transcribes the rest itself: a part still being transcribed (a
                // speculation never runs beside one) is of no use.
                self.listening.restart();
                self.start_reply(utterance, input, now, None);
            }
        }
    }

    /// The caller's turn (audio `carried` over from an abandoned one, then what they `said`)
    /// and what a reply to it starts from: the rest after the words heard while they spoke,
    /// or all of it.
    fn input(&self, carried: &[i16], said: &[i16]) -> Option<(Vec<i16>, ReplyInput)> {
        let rate = self.in_rate?;
        let mut turn = carried.to_vec();
        turn.extend_from_slice(said);
        let (before, from) = self.listening.so_far();
        // The partial transcript is of `said` alone.
        let input = if carried.is_empty() && from > 0 && from < said.len() {
            let audio = Pcm::from_i16(&said[from..], rate);
            ReplyInput::AudioAfter { before, audio }
        } else {
            ReplyInput::Audio(Pcm::from_i16(&turn, rate))
        };
        Some((turn, input))
    }

    /// The caller paused: answer what they said so far as if the turn had ended, while the
    /// engines have room for work nobody waits for yet. The first words are due when the
    /// turn would end.
    fn speculate(&mut self, so_far: Vec<i16>, paused: Instant, now: Instant) {
        if self.reply.is_some() || self.speaking(now) {
            return;
        }
        if self.listening.busy() {
            self.deferred = Some((so_far, paused));
            return;
        }
        if !self.assistant.engine_load().has_room() {
            self.count_speculation("skipped");
            return;
        }
        let Some((utterance, input)) = self.input(&self.carry_over, &so_far) else {
            return;
        };
        let turns = self.settings.turns;
        let wait = turns.end_silence_ms.saturating_sub(turns.speculate_ms) as u64;
        let due = Due::new(Deadline::at(paused + Duration::from_millis(wait)));
        self.start_reply(utterance, input, now, Some(due));
    }

    /// The turn a speculative reply answers has ended (`utterance`: all of it): its first
    /// words are due now, and what it has made so far goes out.
    fn confirm(&mut self, utterance: Vec<i16>, now: Instant) {
        let Some(r) = self.reply.as_mut() else { return };
        let Some(speculation) = r.speculation.take() else {
            return;
        };
        r.utterance = utterance;
        r.turn_end = now;
        let id = r.id;
        self.count_speculation("used");
        let queued: f64 = speculation
            .held
            .iter()
            .map(|e| match e {
                ReplyEvent::Speech { audio, .. } => audio.duration_secs(),
                _ => 0.0,
            })
            .sum();
        speculation
            .due
            .set(Deadline::at(now + Duration::from_secs_f64(queued)));
        for event in speculation.held {
            let out = self.on_reply(id, event, now);
            self.out.extend(out);
        }
    }

    fn count_speculation(&self, outcome: &str) {
        if let Some(call) = &self.call {
            call.speculation(outcome);
        }
    }

    /// The caller paused: the end-of-turn model is to hear their turn so far (the audio
    /// carried over from an abandoned reply, then this utterance; its last 8 s count).
    fn judge_pause(&mut self, so_far: &[i16]) {
        self.pauses += 1;
        self.pause = Some(Pause {
            seq: self.pauses,
            model: None,
            words: None,
        });
        let Some(rate) = self
            .in_rate
            .filter(|_| self.assistant.turn_model().is_some())
        else {
            return;
        };
        let keep = 8 * rate as usize;
        let mut turn = self.carry_over[self.carry_over.len().saturating_sub(keep)..].to_vec();
        turn.extend_from_slice(so_far);
        let audio = Pcm::from_i16(&turn[turn.len().saturating_sub(keep)..], rate);
        self.effects.push(Effect::JudgePause {
            pause: self.pauses,
            audio,
        });
    }

    /// The end-of-turn model's verdict on pause `seq` (if it is still the caller's pause).
    fn on_verdict(&mut self, seq: u64, finished: Option<f32>, now: Instant) {
        let Some(pause) = self.pause.as_mut().filter(|p| p.seq == seq) else {
            return;
        };
        let verdict = finished.map(|p| p >= self.settings.threshold);
        pause.model = verdict;
        tracing::debug!(
            call_id = self.label(),
            ?finished,
            "end-of-turn model heard a pause"
        );
        if let Some(call) = &self.call {
            call.turn_verdict(match verdict {
                Some(true) => "finished",
                Some(false) => "unfinished",
                None => "failed",
            });
        }
        self.end_pause(now);
    }

    /// A speculative transcript's words, heard in the caller's pause.
    fn listen_to_words(&mut self, text: &str, now: Instant) {
        if let Some(pause) = self.pause.as_mut() {
            pause.words = Some(end_of_turn::judge(text));
            self.end_pause(now);
        }
    }

    /// How long the caller's pause may last before their turn ends, from what was heard in
    /// it: the model's verdict (a finished turn whose words go on is not finished), or
    /// without one the words alone (a complete question ends sooner, speech that goes on
    /// later); with neither, the plain silence.
    fn end_pause(&mut self, now: Instant) {
        let Some(pause) = &self.pause else { return };
        let (complete, unfinished) = (self.settings.complete_ms, self.settings.unfinished_ms);
        let ms = match (pause.model, pause.words) {
            (Some(true), Some(Ending::Unfinished)) | (Some(false), _) => unfinished,
            (Some(true), _) => complete,
            (None, Some(Ending::Complete)) => complete,
            (None, Some(Ending::Unfinished)) => unfinished,
            (None, _) => return,
        };
        if let Some(ended) = self.detector.as_mut().and_then(|d| d.end_after(ms)) {
            self.on_turn_event(ended, now);
        }
    }

    /// Asks for a reply through the pipeline (abandoning the one in progress); with
    /// `speculative` (when its first words are due), its progress is held.
    fn start_reply(
        &mut self,
        utterance: Vec<i16>,
        input: ReplyInput,
        now: Instant,
        speculative: Option<Due>,
    ) {
        self.cancel_reply();
        self.reply_seq += 1;
        let call = self.call.as_ref();
        let language = call.and_then(|c| c.language());
        let request = ReplyRequest {
            memory: call.map(|c| c.memory()).unwrap_or_default(),
            input,
            rate: Some(self.out_rate),
            live: true,
            due: speculative.clone(),
        };
        let id = self.reply_seq;
        self.effects.push(Effect::Reply {
            id,
            request,
            language,
        });
        self.reply = Some(Reply {
            id,
            heard: None,
            utterance,
            turn_end: now,
            first_audio: None,
            done: None,
            speculation: speculative.map(|due| Speculation {
                due,
                held: Vec::new(),
            }),
        });
    }

    /// Takes in the result of work it asked for.
    pub fn on_update(&mut self, update: Update, now: Instant) -> Vec<Output> {
        match update {
            Update::Partial { part, words } => {
                self.listening.heard(part, words);
                self.tick(now)
            }
            Update::Reply(id, event) => self.on_reply(id, event, now),
            Update::Verdict { pause, finished } => {
                self.on_verdict(pause, finished, now);
                self.take()
            }
            Update::Overlap { overlap, words } => {
                self.on_overlap(overlap, words, now);
                self.take()
            }
        }
    }

    /// The caller began to speak over voxd: an interruption, unless it may be a backchannel
    /// (it stays shorter than `backchannel_ms`, and its words are one).
    fn speech_over_voxd(&mut self, now: Instant) {
        if self.settings.backchannel_ms <= self.settings.barge_in_min_ms {
            self.barge_in(now, true);
            return;
        }
        self.overlaps += 1;
        self.overlap = Some(Overlap {
            seq: self.overlaps,
            checking: false,
            ended: None,
        });
    }

    /// The caller spoke over voxd and paused (or stopped): their words are to be
    /// transcribed, voxd talking on meanwhile.
    fn hear_overlap(&mut self, utterance: &[i16]) {
        let (Some(o), Some(rate)) = (self.overlap.as_mut(), self.in_rate) else {
            return;
        };
        if std::mem::replace(&mut o.checking, true) {
            return;
        }
        let overlap = o.seq;
        self.effects.push(Effect::HearOverlap {
            overlap,
            audio: Pcm::from_i16(utterance, rate),
        });
    }

    /// The words of the caller's speech over voxd: a backchannel (or nothing) is let be,
    /// anything else interrupts voxd and is the caller's turn.
    fn on_overlap(&mut self, seq: u64, words: Option<String>, now: Instant) {
        if self.overlap.as_ref().is_none_or(|o| o.seq != seq) {
            return;
        }
        let Some(overlap) = self.overlap.take() else {
            return;
        };
        let let_be = words
            .as_deref()
            .is_some_and(|w| w.trim().is_empty() || self.settings.backchannels.matches(w));
        if let_be {
            tracing::info!(call_id = self.label(), "backchannel: voxd talks on");
            if let Some(call) = &self.call {
                call.interruption_ignored("backchannel");
            }
            if overlap.ended.is_none() {
                if let Some(d) = self.detector.as_mut() {
                    d.forget();
                }
            }
            self.listening.restart();
            return;
        }
        if self.speaking(now) {
            self.barge_in(now, false);
        }
        if let Some(samples) = overlap.ended {
            self.on_turn_event(TurnEvent::TurnEnded(samples), now);
        }
    }

    /// Takes in the progress of a reply (events of abandoned replies are ignored).
    fn on_reply(&mut self, id: u64, event: ReplyEvent, now: Instant) -> Vec<Output> {
        if let Some(s) = self.suspended.as_mut().filter(|s| s.reply.id == id) {
            s.held.push(event);
            return Vec::new();
        }
        if self.reply.as_ref().is_none_or(|r| r.id != id) {
            return Vec::new();
        }
        if let Some(s) = self.reply.as_mut().and_then(|r| r.speculation.as_mut()) {
            let heard = match &event {
                ReplyEvent::Heard { text, .. } => Some(text.clone()),
                _ => None,
            };
            s.held.push(event);
            if let Some(text) = heard {
                self.listen_to_words(&text, now);
            }
            return self.take();
        }
        match event {
            ReplyEvent::Heard {
                text,
                call_language,
                ..
            } => {
                if self.suspended.is_some() {
                    let nothing =
                        text.trim().is_empty() || self.settings.backchannels.matches(&text);
                    if nothing {
                        self.resume(now);
                        return self.take();
                    }
                    self.drop_suspended();
                }
                if !text.is_empty() {
                    // The caller's words are theirs: in the history, in the logs at debug only.
                    let words = text.split_whitespace().count();
                    tracing::info!(call_id = self.label(), words, "caller said");
                    tracing::debug!(call_id = self.label(), %text, "the caller's words");
                }
                if let Some(call) = &self.call {
                    call.heard(&text);
                    call.speaks(call_language.as_deref());
                }
                if let Some(r) = self.reply.as_mut() {
                    self.out.push(Output::Heard {
                        text: text.clone(),
                        after: now.saturating_duration_since(r.turn_end),
                    });
                    r.heard = Some(text);
                }
            }
            ReplyEvent::Speech { audio, text } => {
                let (rate, lead) = (self.out_rate, self.settings.lead);
                let gap = self
                    .playout
                    .get_or_insert_with(|| Playout::new(rate, lead))
                    .push(&audio.to_i16(), &text, now);
                if let (Some(gap), Some(call)) = (gap, &self.call) {
                    call.reply_gap(gap);
                }
                self.out.push(Output::Replying(text));
            }
            ReplyEvent::Done(end) => {
                let heard = self.reply.as_ref().and_then(|r| r.heard.clone());
                if heard.as_deref() == Some("") {
                    self.reply = None; // nothing intelligible: keep listening
                    return self.take();
                }
                if let (Some(call), Some(_)) = (&self.call, &heard) {
                    call.replied(&end.timings);
                }
                if let Some(r) = self.reply.as_mut() {
                    r.done = Some(end.action());
                }
                if let Some(tool) = end.tool {
                    tracing::info!(call_id = self.label(), tool = tool.name(), "tool called");
                    if let Some(call) = &self.call {
                        call.tool_called(&tool);
                    }
                    self.out.push(Output::Tool(tool));
                }
            }
            ReplyEvent::Failed(e) => {
                tracing::error!(call_id = self.label(), "reply failed: {e}");
                if let Some(r) = self.reply.as_mut() {
                    r.done = Some(Action::Continue);
                }
            }
        }
        self.take()
    }

    /// Moves time on: starts a deferred speculation, emits the frames now due, ends a reply
    /// that has played out.
    pub fn tick(&mut self, now: Instant) -> Vec<Output> {
        let window = self.settings.resume_within;
        if self
            .suspended
            .as_ref()
            .is_some_and(|s| now.saturating_duration_since(s.at) > window)
        {
            self.drop_suspended();
        }
        if let Some(keys) = self.keypad.due(now) {
            if self.speaking(now) {
                self.barge_in(now, false);
            }
            let language = self.call.as_ref().and_then(|c| c.language());
            let text = self.assistant.keypad_text(language.as_deref(), &keys);
            self.start_reply(Vec::new(), ReplyInput::Words(text), now, None);
        }
        if self.deferred_ready() {
            if let Some((so_far, paused)) = self.deferred.take() {
                self.speculate(so_far, paused, now);
            }
        }
        if let Some(playout) = self.playout.as_mut() {
            let mut frames = Vec::new();
            while let Some(frame) = playout.next_frame(now) {
                frames.push(frame);
            }
            if !frames.is_empty() {
                if !self.out_started {
                    self.out_started = true;
                    self.out.push(Output::AudioStart);
                }
                self.out.extend(frames.into_iter().map(Output::Audio));
                self.note_first_audio(now);
            }
            if self.played_out(now) {
                self.end_of_reply(now, false);
            }
        }
        if self.ending_due(now) {
            match self.ending.take() {
                Some(Action::Transfer) => self.out.push(Output::Transfer),
                _ => self.out.push(Output::Hangup),
            }
        }
        self.take()
    }

    /// Notes when a reply to the caller (not the greeting) first reached the transport.
    fn note_first_audio(&mut self, now: Instant) {
        let Some(r) = self.reply.as_mut().filter(|r| r.first_audio.is_none()) else {
            return;
        };
        r.first_audio = Some(now);
        if r.utterance.is_empty() {
            return;
        }
        let ms = millis(now.saturating_duration_since(r.turn_end));
        if let Some(call) = &self.call {
            call.reply_latency(ms);
        }
    }

    /// The reply's audio is all out (or cut): close voxd's speech, keep what was said.
    fn end_of_reply(&mut self, now: Instant, interrupted: bool) {
        let Some(playout) = self.playout.take() else {
            return;
        };
        self.audio_stop();
        let reply = self.reply.take();
        self.keep_said(playout, reply, now, interrupted);
    }

    fn audio_stop(&mut self) {
        if self.out_started {
            self.out_started = false;
            self.out.push(Output::AudioStop);
        }
    }

    /// What the caller heard of `reply` by `now` goes into the call's record.
    fn keep_said(
        &mut self,
        playout: Playout,
        reply: Option<Reply>,
        now: Instant,
        interrupted: bool,
    ) {
        let said = playout.heard_text(now);
        if let Some(r) = &reply {
            self.effects.push(Effect::Cancel(r.id));
        }
        let latency = reply
            .as_ref()
            .filter(|r| !r.utterance.is_empty())
            .and_then(|r| Some(millis(r.first_audio?.saturating_duration_since(r.turn_end))));
        if let Some(call) = &self.call {
            let heard = reply.as_ref().and_then(|r| r.heard.as_deref());
            let timings = latency.map(|ms| serde_json::json!({ "latency_ms": ms }));
            call.answered(heard, &said, timings, interrupted, None);
        }
        if !said.is_empty() {
            let words = said.split_whitespace().count();
            tracing::info!(
                call_id = self.label(),
                words,
                interrupted,
                latency_ms = latency.unwrap_or(0.0) as u64,
                "voxd said"
            );
            tracing::debug!(call_id = self.label(), text = %said, "voxd's words");
            self.out.push(Output::Said {
                text: said,
                latency_ms: latency,
                interrupted,
            });
        }
        let then = reply.as_ref().and_then(|r| r.done);
        if !interrupted && matches!(then, Some(Action::Hangup | Action::Transfer)) {
            self.ending = then;
        }
    }

    /// The caller spoke over voxd: stop talking now and listen. With `may_resume`, the reply
    /// is kept until the caller's words are known: none (a cough, a noise) or a backchannel
    /// resume it ([`Self::resume`]).
    fn barge_in(&mut self, now: Instant, may_resume: bool) {
        tracing::info!(call_id = self.label(), "barge-in");
        if let Some(call) = &self.call {
            call.barge_in();
        }
        if let Some(p) = self.playout.as_mut() {
            p.clear();
        }
        self.out.push(Output::Clear);
        let resumable = may_resume
            && !self.settings.resume_within.is_zero()
            && self.reply.is_some()
            && self.playout.is_some();
        if !resumable {
            self.end_of_reply(now, true);
            return;
        }
        self.drop_suspended();
        self.audio_stop();
        if let (Some(reply), Some(playout)) = (self.reply.take(), self.playout.take()) {
            self.suspended = Some(Suspended {
                reply,
                playout,
                at: now,
                held: Vec::new(),
            });
        }
    }

    /// The caller's interruption held no words (or a backchannel): voxd says the cut reply
    /// again from the piece it was cut in, and drops the reply to the noise.
    fn resume(&mut self, now: Instant) {
        let Some(s) = self.suspended.take() else {
            return;
        };
        tracing::info!(
            call_id = self.label(),
            "no words in the interruption: voxd resumes"
        );
        if let Some(call) = &self.call {
            call.interruption_ignored("resumed");
        }
        self.cancel_reply();
        let id = s.reply.id;
        self.playout = Some(s.playout.resumed(s.at, now));
        self.reply = Some(s.reply);
        for event in s.held {
            let out = self.on_reply(id, event, now);
            self.out.extend(out);
        }
    }

    /// The caller's interruption was real: the cut reply is over, as far as they heard it.
    fn drop_suspended(&mut self) {
        if let Some(s) = self.suspended.take() {
            self.keep_said(s.playout, Some(s.reply), s.at, true);
        }
    }
}
