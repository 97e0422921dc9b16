//! Listening while the caller speaks: at word gaps ([`TurnEvent::Partial`]), what is new of
//! the utterance is transcribed in the background, so that when the turn ends only the rest
//! is left to transcribe. The parts are transcribed on their own and their words joined:
//! giving Whisper the words before as its prompt made it repeat them (`voxd bench listen`).
//! It runs only while the engines have room, one part at a time, below every job with a
//! deadline. A part whose cut turns out not to be a word gap ([`TurnEvent::PartialVoid`]) is
//! stopped, or its words taken back.
//!
//! [`TurnEvent::Partial`]: super::turn_detector::TurnEvent::Partial
//! [`TurnEvent::PartialVoid`]: super::turn_detector::TurnEvent::PartialVoid

use std::sync::{Arc, Mutex, MutexGuard};

use super::assistant::Stop;
use super::Assistant;
use crate::audio::Pcm;
use crate::engines::schedule::Deadline;

/// What has been heard of the current utterance.
#[derive(Debug, Default)]
struct Progress {
    /// Which utterance this is (a new one makes older parts' results stale).
    utterance: u64,
    /// The words of the utterance's first `samples` samples.
    words: String,
    samples: usize,
    /// The part being transcribed.
    in_flight: Option<Part>,
    /// The words and samples before the last part was added, while its cut may be void.
    before_last: Option<(String, usize)>,
}

/// A part of the utterance being transcribed.
#[derive(Debug)]
struct Part {
    /// Where it ends in the utterance.
    end: usize,
    /// Set when it is no longer wanted.
    stop: Arc<Stop>,
}

/// The partial transcript of one call's current utterance.
#[derive(Default)]
pub struct Listening {
    progress: Arc<Mutex<Progress>>,
}

impl Listening {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new utterance begins, or the last one ended: what was heard of the last one no
    /// longer counts, and a part of it still being transcribed is given up.
    pub fn restart(&self) {
        let mut p = self.lock();
        if let Some(part) = &p.in_flight {
            part.stop.set();
        }
        *p = Progress {
            utterance: p.utterance + 1,
            ..Progress::default()
        };
    }

    /// The utterance so far (at `rate`): transcribes what is new of it in the background,
    /// unless a part is being transcribed already.
    pub fn offer(&self, assistant: &Arc<Assistant>, so_far: &[i16], rate: u32) {
        let end = so_far.len();
        let stop = Arc::new(Stop::default());
        let (utterance, from, before) = {
            let mut p = self.lock();
            if p.in_flight.is_some() || p.samples >= end {
                return;
            }
            p.in_flight = Some(Part {
                end,
                stop: stop.clone(),
            });
            (p.utterance, p.samples, p.words.clone())
        };
        let part = Pcm::from_i16(&so_far[from..], rate);
        let (assistant, progress) = (assistant.clone(), self.progress.clone());
        let task = async move {
            let heard = assistant
                .transcribe_unless(part, Deadline::NONE, stop.clone())
                .await;
            let mut p = progress.lock().unwrap_or_else(|p| p.into_inner());
            if p.utterance != utterance {
                return;
            }
            p.in_flight = None;
            if stop.is_set() {
                return;
            }
            match heard {
                Ok(t) if !t.text.is_empty() => {
                    p.words = join(&before, &t.text);
                    p.samples = end;
                    p.before_last = Some((before, from));
                }
                Ok(_) => {}
                Err(e) => tracing::debug!("partial transcript failed: {e:#}"),
            }
        };
        tokio::spawn(tracing::Instrument::in_current_span(task));
    }

    /// The cut at `end` samples was not a word gap: the part that ends there is stopped,
    /// or, if it was heard already, its words are taken back.
    pub fn void(&self, end: usize) {
        let mut p = self.lock();
        match &p.in_flight {
            Some(part) if part.end == end => part.stop.set(),
            _ if p.samples == end => {
                if let Some((words, samples)) = p.before_last.take() {
                    (p.words, p.samples) = (words, samples);
                }
            }
            _ => {}
        }
    }

    /// Whether a part is being transcribed.
    pub fn busy(&self) -> bool {
        self.lock().in_flight.is_some()
    }

    /// The words heard of the utterance so far, and how many of its samples they cover
    /// (0: none; transcribe it all).
    pub fn heard(&self) -> (String, usize) {
        let p = self.lock();
        (p.words.clone(), p.samples)
    }
}

/// Two stretches of words as one text.
pub fn join(before: &str, after: &str) -> String {
    match (before.trim(), after.trim()) {
        ("", a) => a.to_string(),
        (b, "") => b.to_string(),
        (b, a) => format!("{b} {a}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_stretches_of_words() {
        assert_eq!(join("", " Hello "), "Hello");
        assert_eq!(join("My number is", ""), "My number is");
        assert_eq!(
            join("My number is", "five five five."),
            "My number is five five five."
        );
    }
}
