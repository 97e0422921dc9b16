//! The transport-free conversation engine. A transport feeds a [`Conversation`] the
//! caller's audio, the clock (when [`Conversation::next_timeout`] says) and the results of
//! the work it asked for (run by [`Tasks`]), and delivers the [`Output`]s it returns;
//! underneath, the [`turn_detector`] finds the caller's turns, the [`reply`] pipeline (the
//! one road from a turn to speech, shared with the recording flow, `voxd chat` and `voxd kb
//! ask`) answers them through the [`Assistant`], and [`playout`] paces voxd's speech.

pub mod assistant;
pub mod backchannel;
mod chunker;
pub(crate) mod end_of_turn;
pub mod keypad;
mod language;
mod listening;
mod machine;
pub mod playout;
pub mod prompt;
pub mod recording_turn;
pub mod reply;
mod tasks;
#[cfg(test)]
mod tests;
pub mod tools;
pub mod turn_detector;

use std::time::Duration;

pub use assistant::{Assistant, ReplySettings};
pub use listening::join as join_words;
pub use machine::Conversation;
pub use tasks::{Effect, Tasks, Update};
use tools::ToolCall;
use turn_detector::TurnSettings;

use crate::config::Config;

/// How a conversation behaves (the `[conversation]` config; `lead` from the transport's).
#[derive(Debug, Clone)]
pub struct Settings {
    pub turns: TurnSettings,
    /// The silence that ends a turn whose speculative transcript reads as a complete
    /// question, and one whose transcript goes on ([`end_of_turn`]).
    pub complete_ms: usize,
    pub unfinished_ms: usize,
    /// The end-of-turn model's probability at or above which the caller has finished.
    pub threshold: f32,
    /// Said when the conversation starts; empty: wait for the caller.
    pub greeting: String,
    pub barge_in: bool,
    pub barge_in_min_ms: u32,
    /// Speech over voxd shorter than this may be a backchannel ([`backchannel`]).
    pub backchannel_ms: u32,
    pub backchannels: backchannel::Backchannels,
    /// How long after a cut a reply may resume, if the interruption held no words.
    pub resume_within: Duration,
    /// How far voxd's audio may run ahead of real time.
    pub lead: Duration,
    /// How the caller's keys are read ([`keypad`]).
    pub keypad: keypad::KeypadSettings,
}

impl Settings {
    pub fn from_config(cfg: &Config) -> Self {
        let c = &cfg.conversation;
        Self {
            turns: TurnSettings {
                vad_mode: c.vad_mode,
                min_speech_ms: c.min_speech_ms as usize,
                end_silence_ms: c.end_of_turn_ms as usize,
                // Speculating at or after the end of the turn would be no speculation.
                speculate_ms: if c.speculate_ms < c.end_of_turn_ms {
                    c.speculate_ms as usize
                } else {
                    0
                },
                partial_ms: c.transcribe_while_speaking_ms as usize,
                max_turn_ms: c.max_turn_secs as usize * 1000,
            },
            complete_ms: c.end_of_turn_complete_ms as usize,
            unfinished_ms: c.end_of_turn_unfinished_ms as usize,
            threshold: c.end_of_turn_threshold,
            greeting: c.greeting.clone(),
            barge_in: c.barge_in,
            barge_in_min_ms: c.barge_in_min_ms,
            backchannel_ms: c.backchannel_ms,
            backchannels: backchannel::Backchannels::new(&c.backchannels),
            resume_within: Duration::from_millis(u64::from(c.resume_within_ms)),
            lead: Duration::from_millis(u64::from(cfg.voximplant_stream.lead_ms)),
            keypad: keypad::KeypadSettings {
                gap: Duration::from_millis(cfg.dtmf.gap_ms),
                actions: cfg.key_actions(),
            },
        }
    }
}

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
    /// The model called a tool (already recorded and acted on through the call's
    /// recorder); a hangup or transfer follows once the reply has played out.
    Tool(ToolCall),
    /// The conversation is over: a goodbye was said and has played out.
    Hangup,
    /// The hand-off words have played out: connect the caller to the operator.
    Transfer,
}
