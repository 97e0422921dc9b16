//! One conversational turn on decoded audio: transcribe, reply with the LLM (keeping the
//! call's history), synthesize. Shared by the HTTP API, the CLI and the benchmark.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Result};
use serde::Serialize;

use crate::audio::{resample, Pcm};
use crate::calls::CallSession;
use crate::config::Config;
use crate::engines::llm::{ChatMessage, Role};
use crate::engines::Engines;
use crate::prompt::TurnPrompt;

/// Marker the system prompt asks the model to emit when the call should end.
pub const HANGUP_MARKER: &str = "<hangup>";

/// What the scenario should do after playing the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Continue,
    Hangup,
}

/// Stage durations in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub download: f64,
    pub decode: f64,
    pub stt: f64,
    pub llm: f64,
    pub llm_first_token: f64,
    /// Synthesis of the reply's first sentence, from when its text was complete.
    pub tts_first_audio: f64,
    pub tts: f64,
    pub total: f64,
}

/// A finished turn.
#[derive(Debug, Clone)]
pub struct TurnOutcome {
    pub user_text: String,
    pub language: String,
    pub reply_text: String,
    pub action: Action,
    pub reply_audio: Pcm,
}

/// Milliseconds since `t`.
pub fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Runs STT → LLM → TTS on `audio` (any rate), updating the call's history.
pub async fn run(
    engines: &Arc<Engines>,
    cfg: &Config,
    session: &mut CallSession,
    audio: Pcm,
    timings: &mut Timings,
) -> Result<TurnOutcome> {
    let t = Instant::now();
    let transcript = crate::engines::transcribe(engines, audio).await?;
    timings.stt = ms(t);
    let user_text = transcript.text;

    let caller_hangup = says_goodbye(&user_text, &cfg.calls.hangup_phrases);
    let mut model_hangup = false;
    let mut pieces: Vec<String> = Vec::new();
    let mut speech = Vec::new();
    if !user_text.is_empty() {
        let t = Instant::now();
        match crate::prompt::for_turn(
            &engines.llm,
            engines.kb.as_ref(),
            &session.history,
            &user_text,
            caller_hangup,
        )? {
            TurnPrompt::Handoff(text) => {
                speech.push(synthesize(engines, text.clone()));
                pieces.push(text);
            }
            TurnPrompt::Ask(messages) => {
                let mut stream = engines.llm.reply(messages)?;
                // Each sentence goes to the voice as soon as it is written, while the LLM
                // goes on.
                while let Some(sentence) = stream.next_sentence().await? {
                    let (piece, marker) = strip_hangup(&sentence);
                    if !piece.is_empty() {
                        speech.push(synthesize(engines, piece.clone()));
                        pieces.push(piece);
                    }
                    model_hangup |= marker;
                    let max = engines.llm.max_sentences();
                    if marker || (max > 0 && pieces.len() >= max) {
                        break;
                    }
                }
                timings.llm = ms(t);
                timings.llm_first_token = stream
                    .first_text()
                    .map_or(timings.llm, |d| d.as_secs_f64() * 1000.0);
            }
        }
    }
    if pieces.is_empty() {
        pieces.push(cfg.calls.reprompt_text.clone());
        speech.push(synthesize(engines, cfg.calls.reprompt_text.clone()));
    }
    let reply_text = pieces.join(" ");
    if !user_text.is_empty() {
        session.history.push(ChatMessage {
            role: Role::User,
            content: user_text.clone(),
        });
        session.history.push(ChatMessage {
            role: Role::Assistant,
            content: reply_text.clone(),
        });
        session.turns += 1;
    }
    let action = if model_hangup || caller_hangup {
        Action::Hangup
    } else {
        Action::Continue
    };

    // What synthesis still takes once the text is complete.
    let t = Instant::now();
    let mut parts = Vec::with_capacity(speech.len());
    for (i, task) in speech.into_iter().enumerate() {
        let (pcm, took) = task.await.map_err(|e| anyhow!("TTS task failed: {e}"))??;
        if i == 0 {
            timings.tts_first_audio = took;
        }
        parts.push(pcm);
    }
    let mut reply_audio = engines.tts.join(parts);
    if cfg.tts.reply_sample_rate > 0 {
        reply_audio = resample::to_rate(reply_audio, cfg.tts.reply_sample_rate)?;
    }
    timings.tts = ms(t);
    Ok(TurnOutcome {
        user_text,
        language: transcript.language,
        reply_text,
        action,
        reply_audio,
    })
}

/// Voices `text` off the runtime; the audio comes with the milliseconds it took.
fn synthesize(engines: &Arc<Engines>, text: String) -> tokio::task::JoinHandle<Result<(Pcm, f64)>> {
    let e = engines.clone();
    let queued = Instant::now();
    tokio::task::spawn_blocking(move || Ok((e.tts.synthesize(&text)?, ms(queued))))
}

/// Removes the hangup marker (and anything the model wrote after it).
pub fn strip_hangup(reply: &str) -> (String, bool) {
    match reply.find(HANGUP_MARKER) {
        Some(i) => (tidy(&reply[..i]), true),
        None => (tidy(reply), false),
    }
}

fn tidy(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether the caller's words contain one of the configured goodbye phrases.
pub fn says_goodbye(user_text: &str, phrases: &[String]) -> bool {
    let lower = user_text.to_lowercase();
    phrases
        .iter()
        .any(|p| !p.is_empty() && lower.contains(&p.to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hangup_marker_is_stripped() {
        assert_eq!(
            strip_hangup("Goodbye!  <hangup> trailing"),
            ("Goodbye!".into(), true)
        );
        assert_eq!(strip_hangup(" Hi there "), ("Hi there".into(), false));
    }

    #[test]
    fn goodbye_phrases_match_case_insensitively() {
        let p = vec!["goodbye".to_string(), "до свидания".to_string()];
        assert!(says_goodbye("OK, Goodbye.", &p));
        assert!(says_goodbye("Спасибо, До свидания", &p));
        assert!(!says_goodbye("good morning", &p));
    }
}
