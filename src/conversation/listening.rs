//! Listening while the caller speaks: at word gaps ([`TurnEvent::Partial`]), what is new of
//! the utterance is transcribed in the background, so that when the turn ends only the rest
//! is left to transcribe (the conversation's tasks run the [`Effect::Listen`] it asks for).
//! The parts are transcribed on their own and their words joined:
//! giving Whisper the words before as its prompt made it repeat them (`voxd bench listen`).
//! It runs only while the engines have room, one part at a time, below every job with a
//! deadline. A part whose cut turns out not to be a word gap ([`TurnEvent::PartialVoid`]) is
//! stopped, or its words taken back.
//!
//! [`TurnEvent::Partial`]: super::turn_detector::TurnEvent::Partial
//! [`TurnEvent::PartialVoid`]: super::turn_detector::TurnEvent::PartialVoid

use std::sync::Arc;

use super::assistant::Stop;
use super::tasks::Effect;
use crate::audio::Pcm;

/// A part of the utterance being transcribed.
#[derive(Debug)]
struct Part {
    /// Its number among all parts of the call (a result for another is stale).
    seq: u64,
    /// Where it starts and ends in the utterance.
    from: usize,
    end: usize,
    /// The words of the utterance before it.
    before: String,
    /// Set when it is no longer wanted.
    stop: Arc<Stop>,
}

/// The partial transcript of one call's current utterance.
#[derive(Debug, Default)]
pub struct Listening {
    /// The words of the utterance's first `samples` samples.
    words: String,
    samples: usize,
    /// The part being transcribed.
    in_flight: Option<Part>,
    /// The words and samples before the last part was added, while its cut may be void.
    before_last: Option<(String, usize)>,
    /// The number of the last part asked for.
    parts: u64,
}

impl Listening {
    /// A new utterance begins, or the last one ended: what was heard of the last one no
    /// longer counts, and a part of it still being transcribed is given up.
    pub fn restart(&mut self) {
        if let Some(part) = &self.in_flight {
            part.stop.set();
        }
        *self = Self {
            parts: self.parts,
            ..Self::default()
        };
    }

    /// The utterance so far (at `rate`): the transcription of what is new of it, unless a
    /// part is being transcribed already.
    pub fn offer(&mut self, so_far: &[i16], rate: u32) -> Option<Effect> {
        let end = so_far.len();
        if self.in_flight.is_some() || self.samples >= end {
            return None;
        }
        self.parts += 1;
        let stop = Arc::new(Stop::default());
        self.in_flight = Some(Part {
            seq: self.parts,
            from: self.samples,
            end,
            before: self.words.clone(),
            stop: stop.clone(),
        });
        Some(Effect::Listen {
            part: self.parts,
            audio: Pcm::from_i16(&so_far[self.samples..], rate),
            stop,
        })
    }

    /// The words of part `seq` (None: not heard): they join the words before it, unless the
    /// part was given up meanwhile.
    pub fn heard(&mut self, seq: u64, words: Option<String>) {
        if self.in_flight.as_ref().is_none_or(|p| p.seq != seq) {
            return;
        }
        let Some(part) = self.in_flight.take() else {
            return;
        };
        match words {
            Some(words) if !part.stop.is_set() && !words.is_empty() => {
                self.words = join(&part.before, &words);
                self.samples = part.end;
                self.before_last = Some((part.before, part.from));
            }
            _ => {}
        }
    }

    /// The cut at `end` samples was not a word gap: the part that ends there is stopped,
    /// or, if it was heard already, its words are taken back.
    pub fn void(&mut self, end: usize) {
        match &self.in_flight {
            Some(part) if part.end == end => part.stop.set(),
            _ if self.samples == end => {
                if let Some((words, samples)) = self.before_last.take() {
                    (self.words, self.samples) = (words, samples);
                }
            }
            _ => {}
        }
    }

    /// Whether a part is being transcribed.
    pub fn busy(&self) -> bool {
        self.in_flight.is_some()
    }

    /// The words heard of the utterance so far, and how many of its samples they cover
    /// (0: none; transcribe it all).
    pub fn so_far(&self) -> (String, usize) {
        (self.words.clone(), self.samples)
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
