//! How many live calls this machine serves with the configured models: measured once at
//! start-up when `calls.max_live` is 0, by running one caller's turn through the three
//! engines (which also warms them up, so the first real caller waits no longer than the
//! next). A call keeps the engines busy for the turn's engine time out of every turn it
//! takes (the question, the reply's speech and the wait); calls are admitted while they
//! keep the engines at most [`BUSY_SHARE`] busy, so that turns ending at the same moment
//! still find room.

use std::time::Instant;

use anyhow::{anyhow, Result};

use super::llm::Llm;
use super::stt::Stt;
use super::tts::Tts;
use super::{ChatMessage, LlmEvent, Role};
use crate::audio::{resample, STT_RATE};

/// The share of the engines' time live calls may keep busy on average: turns end at random
/// moments, and those that end together queue. On 2 cores with the test models a turn
/// keeps the engines busy about 1.2 s out of 11, so this admits 3 calls; 4 calls (about
/// 45 % busy) already reach 2.3–3.7 s at p95 (BENCHMARKS.md, "Many calls on one server").
pub const BUSY_SHARE: f64 = 0.35;

/// What the measured turn says the caller asked.
const QUESTION: &str = "Hello, can you tell me when your office opens tomorrow?";

/// One measured turn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TurnCost {
    /// Transcription + the whole reply's text + its speech, seconds, engines alone.
    pub engine_secs: f64,
    /// The turn as the caller lives it: the question, the wait and the reply's speech.
    pub turn_secs: f64,
}

impl TurnCost {
    /// The calls that keep the engines [`BUSY_SHARE`] busy when `parallel` turns can be
    /// worked on at once (the speech jobs that fit the cores); at least one.
    pub fn calls(&self, parallel: usize) -> usize {
        let per_call = self.engine_secs / self.turn_secs.max(f64::EPSILON);
        ((BUSY_SHARE * parallel.max(1) as f64 / per_call.max(f64::EPSILON)).floor() as usize).max(1)
    }
}

/// Runs one turn through the engines: the voice speaks a question, Whisper transcribes it,
/// the LLM answers it in full, the voice speaks the answer. Blocking; not on an async
/// runtime's thread.
pub fn measure(stt: &Stt, llm: &Llm, tts: &Tts, system_prompt: &str) -> Result<TurnCost> {
    let question = tts.synthesize(QUESTION)?;
    let started = Instant::now();
    let heard = stt.transcribe(&resample::to_rate(question.clone(), STT_RATE)?.samples)?;
    let messages = vec![
        ChatMessage::new(Role::System, system_prompt),
        ChatMessage::new(Role::User, heard.text),
    ];
    let mut stream = llm.reply(messages, None)?;
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let mut text = String::new();
    loop {
        match rt.block_on(stream.next()) {
            Some(LlmEvent::Text(t)) => text.push_str(&t),
            Some(LlmEvent::Done { .. }) => break,
            Some(LlmEvent::Error(e)) => return Err(anyhow!("the LLM failed: {e}")),
            None => return Err(anyhow!("the LLM stopped mid-reply")),
        }
    }
    let reply = tts.synthesize(if text.trim().is_empty() { "OK." } else { &text })?;
    let engine_secs = started.elapsed().as_secs_f64();
    Ok(TurnCost {
        engine_secs,
        turn_secs: question.duration_secs() + engine_secs + reply.duration_secs(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_fill_a_third_of_the_engines_time() {
        // A turn of 11 s of conversation needs 1.2 s of the engines: a call keeps them
        // 11 % busy, three calls 33 % busy.
        let turn = TurnCost {
            engine_secs: 1.2,
            turn_secs: 11.0,
        };
        assert_eq!(turn.calls(1), 3);
        assert_eq!(turn.calls(4), 12);
        let slow = TurnCost {
            engine_secs: 12.0,
            turn_secs: 20.0,
        };
        assert_eq!(slow.calls(1), 1, "at least one call");
    }
}
