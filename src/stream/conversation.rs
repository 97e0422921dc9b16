//! One conversation, whatever carries its audio: turn detection on the caller's audio, the
//! replies (greeting, streamed answers), paced playout, barge-in, history and reply latency.
//! A transport (the media-stream session, the microphone mode) feeds it the caller's audio,
//! clock ticks and reply progress, and delivers the [`Output`]s it returns, in order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::playout::Playout;
use super::reply::{self, ReplyEvent, ReplyJob};
use super::turns::{TurnDetector, TurnEvent, TurnSettings};
use crate::calls::CallSession;
use crate::config::Config;
use crate::engines::llm::{ChatMessage, Role};
use crate::engines::Engines;
use crate::metrics::Metrics;
use crate::tools::ToolCall;
use crate::turn::Action;

/// How a conversation behaves (the `[stream]` and `[calls]` config).
#[derive(Debug, Clone)]
pub struct Settings {
    pub turns: TurnSettings,
    /// Said when the conversation starts; empty: wait for the caller.
    pub greeting: String,
    pub barge_in: bool,
    pub barge_in_min_ms: u32,
    /// How far voxd's audio may run ahead of real time.
    pub lead: Duration,
    pub sequential: bool,
    pub first_clause_words: usize,
    pub hangup_phrases: Vec<String>,
    /// Where the replies' stage times go (the server's metrics; none for `voxd mic`).
    pub metrics: Option<Arc<Metrics>>,
}

impl Settings {
    pub fn from_config(cfg: &Config) -> Self {
        let s = &cfg.stream;
        Self {
            turns: TurnSettings {
                vad_mode: s.vad_mode,
                min_speech_ms: s.min_speech_ms as usize,
                end_silence_ms: s.end_of_turn_ms as usize,
                max_turn_ms: s.max_turn_secs as usize * 1000,
            },
            greeting: s.greeting.clone(),
            barge_in: s.barge_in,
            barge_in_min_ms: s.barge_in_min_ms,
            lead: Duration::from_millis(u64::from(s.lead_ms)),
            sequential: s.pipeline == "sequential",
            first_clause_words: s.first_clause_words as usize,
            hangup_phrases: cfg.calls.hangup_phrases.clone(),
            metrics: None,
        }
    }
}

/// Finds the conversation's session (history, turns, latencies) each time it is needed.
pub type SessionLookup = Box<dyn Fn() -> Arc<tokio::sync::Mutex<CallSession>> + Send>;

/// Reply progress, tagged with the reply's number: the transport hands each one back to
/// [`Conversation::on_reply`].
pub type ReplyUpdates = mpsc::UnboundedReceiver<(u64, ReplyEvent)>;

/// What the conversation asks its transport to do or show.
#[derive(Debug, PartialEq)]
pub enum Output {
    /// The caller's turn, transcribed (empty: nothing intelligible), `after` the turn ended.
    Heard { text: String, after: Duration },
    /// A piece of the reply was voiced and queued for playout.
    Replying(String),
    /// voxd starts to speak: the reply's frames follow.
    AudioStart,
    /// One frame of voxd's speech at the output rate, due now.
    Audio(Vec<i16>),
    /// The reply's speech ends.
    AudioStop,
    /// The caller interrupted: drop voxd's audio not yet played.
    Clear,
    /// What voxd said, as far as the caller heard it, and the reply latency: end of the
    /// caller's turn → first audio (none for the greeting, which answers no turn).
    Said {
        text: String,
        latency_ms: Option<f64>,
        interrupted: bool,
    },
    /// The model called a tool (acted on by the transport: recorded, a lead saved); a
    /// hangup or transfer follows once the reply has played out.
    Tool(ToolCall),
    /// The conversation is over: a goodbye was said and has played out.
    Hangup,
    /// The hand-off words have played out: connect the caller to the operator.
    Transfer,
}

/// The reply in progress.
struct Reply {
    id: u64,
    task: JoinHandle<()>,
    heard: Option<String>,
    utterance: Vec<i16>,
    turn_end: Instant,
    first_audio: Option<Instant>,
    /// Set when the reply is complete: what follows it.
    done: Option<Action>,
}

/// The state of one conversation.
pub struct Conversation {
    engines: Arc<Engines>,
    settings: Settings,
    /// Names the conversation in logs (the call id).
    label: String,
    session: Option<SessionLookup>,
    replies: mpsc::UnboundedSender<(u64, ReplyEvent)>,
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
    /// A hangup or transfer, due once voxd stops talking.
    ending: Option<Action>,
    out: Vec<Output>,
}

impl Conversation {
    /// A conversation that has not started; reply progress arrives on the returned channel.
    pub fn new(engines: Arc<Engines>, settings: Settings) -> (Self, ReplyUpdates) {
        let (replies, updates) = mpsc::unbounded_channel();
        let conversation = Self {
            engines,
            settings,
            label: "-".into(),
            session: None,
            replies,
            in_rate: None,
            out_rate: 16_000,
            detector: None,
            playout: None,
            out_started: false,
            reply: None,
            reply_seq: 0,
            greeted: false,
            carry_over: Vec::new(),
            ending: None,
            out: Vec::new(),
        };
        (conversation, updates)
    }

    /// The caller's audio starts flowing at `in_rate` (8 or 16 kHz); voxd speaks at
    /// `out_rate`. The first start says the greeting.
    pub fn start(
        &mut self,
        label: &str,
        session: SessionLookup,
        in_rate: u32,
        out_rate: u32,
    ) -> Vec<Output> {
        self.label = label.to_string();
        self.session = Some(session);
        self.in_rate = Some(in_rate);
        self.out_rate = out_rate;
        self.detector = Some(TurnDetector::new(in_rate, self.settings.turns));
        if !self.greeted && !self.settings.greeting.is_empty() {
            self.greeted = true;
            let text = self.settings.greeting.clone();
            self.start_reply(None, Some(text));
        }
        self.take()
    }

    /// The caller's audio stops (it may start again); voxd finishes what it is saying.
    pub fn stop(&mut self) {
        self.in_rate = None;
        self.detector = None;
    }

    /// Feeds the caller's audio (at the start's `in_rate`).
    pub fn push_audio(&mut self, samples: &[i16]) -> Vec<Output> {
        let min = if self.speaking() {
            self.settings.barge_in_min_ms
        } else {
            self.settings.turns.min_speech_ms as u32
        };
        if let Some(detector) = self.detector.as_mut() {
            detector.set_min_speech_ms(min as usize);
            for event in detector.push(samples) {
                self.on_turn_event(event);
            }
        }
        self.take()
    }

    /// Whether voxd is talking (or about to: a reply is being prepared).
    pub fn speaking(&self) -> bool {
        self.playout
            .as_ref()
            .is_some_and(|p| p.busy(Instant::now()))
    }

    fn take(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    fn on_turn_event(&mut self, event: TurnEvent) {
        match event {
            TurnEvent::SpeechStarted => {
                if self.speaking() {
                    if self.settings.barge_in {
                        self.barge_in();
                    }
                } else if let Some(reply) = self.reply.take() {
                    // The caller went on before voxd answered: answer the whole thing later.
                    reply.task.abort();
                    self.carry_over = reply.utterance;
                }
            }
            TurnEvent::TurnEnded(samples) => {
                if self.speaking() && !self.settings.barge_in {
                    return;
                }
                let mut utterance = std::mem::take(&mut self.carry_over);
                utterance.extend_from_slice(&samples);
                self.start_reply(Some(utterance), None);
            }
        }
    }

    fn start_reply(&mut self, utterance: Option<Vec<i16>>, fixed_text: Option<String>) {
        if let Some(old) = self.reply.take() {
            old.task.abort();
        }
        let Some(in_rate) = self.in_rate else { return };
        let session = self.session.as_ref().map(|lookup| lookup());
        let mut history = Vec::new();
        if let Some(s) = session.as_ref().and_then(|s| s.try_lock().ok()) {
            history.extend(s.history.iter().cloned());
        }
        self.reply_seq += 1;
        let job = ReplyJob {
            engines: self.engines.clone(),
            history,
            utterance: utterance.clone().map(|u| (u, in_rate)),
            fixed_text,
            out_rate: self.out_rate,
            max_sentences: self.engines.llm.max_sentences(),
            hangup_phrases: self.settings.hangup_phrases.clone(),
            sequential: self.settings.sequential,
            first_clause_words: self.settings.first_clause_words,
            metrics: self.settings.metrics.clone(),
        };
        let task = tokio::spawn(reply::run(job, self.reply_seq, self.replies.clone()));
        self.reply = Some(Reply {
            id: self.reply_seq,
            task,
            heard: None,
            utterance: utterance.unwrap_or_default(),
            turn_end: Instant::now(),
            first_audio: None,
            done: None,
        });
    }

    /// Takes in the progress of a reply (events of abandoned replies are ignored).
    pub fn on_reply(&mut self, id: u64, event: ReplyEvent) -> Vec<Output> {
        if self.reply.as_ref().is_none_or(|r| r.id != id) {
            return Vec::new();
        }
        match event {
            ReplyEvent::Heard(text) => {
                if !text.is_empty() {
                    tracing::info!(call_id = self.label, %text, "caller said");
                }
                if let Some(r) = self.reply.as_mut() {
                    self.out.push(Output::Heard {
                        text: text.clone(),
                        after: r.turn_end.elapsed(),
                    });
                    r.heard = Some(text);
                }
            }
            ReplyEvent::Speech { samples, text } => {
                let (rate, lead) = (self.out_rate, self.settings.lead);
                self.playout
                    .get_or_insert_with(|| Playout::new(rate, lead))
                    .push(&samples, &text);
                self.out.push(Output::Replying(text));
            }
            ReplyEvent::Done { hangup, tool } => {
                let silent = self
                    .reply
                    .as_ref()
                    .is_some_and(|r| r.heard.as_deref() == Some(""));
                if silent {
                    self.reply = None; // nothing intelligible: keep listening
                } else if let Some(r) = self.reply.as_mut() {
                    r.done = Some(Action::after(hangup, tool.as_ref()));
                    if let Some(tool) = tool {
                        tracing::info!(call_id = self.label, tool = tool.name(), "tool called");
                        self.out.push(Output::Tool(tool));
                    }
                }
            }
            ReplyEvent::Failed(e) => {
                tracing::error!(call_id = self.label, "reply failed: {e}");
                if let Some(r) = self.reply.as_mut() {
                    r.done = Some(Action::Continue);
                }
            }
        }
        self.take()
    }

    /// Moves time on: emits the frames now due, ends a reply that has played out.
    pub fn tick(&mut self, now: Instant) -> Vec<Output> {
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
            let finished = self.reply.as_ref().is_none_or(|r| r.done.is_some());
            if finished
                && self
                    .playout
                    .as_ref()
                    .is_some_and(|p| p.all_sent() && !p.busy(now))
            {
                self.end_of_reply(now, false);
            }
        }
        if self.ending.is_some() && !self.speaking() {
            match self.ending.take() {
                Some(Action::Transfer) => self.out.push(Output::Transfer),
                _ => self.out.push(Output::Hangup),
            }
        }
        self.take()
    }

    /// Records when a reply to the caller (not the greeting) first reached the transport.
    fn note_first_audio(&mut self, now: Instant) {
        let Some(r) = self.reply.as_mut().filter(|r| r.first_audio.is_none()) else {
            return;
        };
        r.first_audio = Some(now);
        if r.utterance.is_empty() {
            return;
        }
        let ms = (now - r.turn_end).as_secs_f64() * 1000.0;
        if let Some(session) = self.session.as_ref().map(|lookup| lookup()) {
            if let Ok(mut s) = session.try_lock() {
                s.reply_latencies_ms.push(ms);
            };
        }
    }

    /// The reply's audio is all out (or cut): close voxd's speech, remember what was said.
    fn end_of_reply(&mut self, now: Instant, interrupted: bool) {
        let Some(playout) = self.playout.take() else {
            return;
        };
        if self.out_started {
            self.out_started = false;
            self.out.push(Output::AudioStop);
        }
        let said = playout.heard_text(now);
        let reply = self.reply.take();
        if let Some(r) = &reply {
            r.task.abort();
        }
        let latency = reply
            .as_ref()
            .filter(|r| !r.utterance.is_empty())
            .and_then(|r| Some((r.first_audio? - r.turn_end).as_secs_f64() * 1000.0));
        if let Some(session) = self.session.as_ref().map(|lookup| lookup()) {
            if let Ok(mut s) = session.try_lock() {
                if let Some(heard) = reply
                    .as_ref()
                    .and_then(|r| r.heard.clone())
                    .filter(|h| !h.is_empty())
                {
                    s.history.push(ChatMessage {
                        role: Role::User,
                        content: heard,
                    });
                    s.turns += 1;
                }
                if !said.is_empty() {
                    s.history.push(ChatMessage {
                        role: Role::Assistant,
                        content: said.clone(),
                    });
                }
            };
        }
        if !said.is_empty() {
            tracing::info!(call_id = self.label, text = %said, interrupted, latency_ms = latency.unwrap_or(0.0) as u64, "voxd said");
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

    /// The caller spoke over voxd: stop talking now and listen.
    fn barge_in(&mut self) {
        tracing::info!(call_id = self.label, "barge-in");
        if let Some(p) = self.playout.as_mut() {
            p.clear();
        }
        self.out.push(Output::Clear);
        self.end_of_reply(Instant::now(), true);
    }
}

impl Drop for Conversation {
    fn drop(&mut self) {
        if let Some(r) = self.reply.take() {
            r.task.abort();
        }
    }
}
