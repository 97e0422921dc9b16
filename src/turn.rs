//! One conversational turn on decoded audio: transcribe, reply with the LLM (keeping the
//! call's history), synthesize. Shared by the HTTP API, the CLI and the benchmark.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Result};
use serde::Serialize;

use crate::audio::{resample, Pcm, STT_RATE};
use crate::calls::CallSession;
use crate::config::Config;
use crate::engines::llm::{ChatMessage, Role};
use crate::engines::Engines;

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

fn ms(t: Instant) -> f64 {
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
    let e = engines.clone();
    let transcript = tokio::task::spawn_blocking(move || {
        let pcm = resample::to_rate(audio, STT_RATE)?;
        e.stt.transcribe(&pcm.samples)
    })
    .await??;
    timings.stt = ms(t);
    let user_text = transcript.text;

    let (reply_text, action) = if user_text.is_empty() {
        (cfg.calls.reprompt_text.clone(), Action::Continue)
    } else {
        let t = Instant::now();
        let mut messages = vec![engines.llm.system_message()];
        messages.extend(session.history.iter().cloned());
        messages.push(ChatMessage {
            role: Role::User,
            content: user_text.clone(),
        });
        let (raw, first) = engines.llm.reply(messages)?.collect().await?;
        timings.llm = ms(t);
        timings.llm_first_token = first.map_or(timings.llm, |d| d.as_secs_f64() * 1000.0);
        let (text, model_hangup) = strip_hangup(&raw);
        let caller_hangup = says_goodbye(&user_text, &cfg.calls.hangup_phrases);
        let text = if text.is_empty() {
            cfg.calls.reprompt_text.clone()
        } else {
            text
        };
        session.history.push(ChatMessage {
            role: Role::User,
            content: user_text.clone(),
        });
        session.history.push(ChatMessage {
            role: Role::Assistant,
            content: text.clone(),
        });
        session.turns += 1;
        (
            text,
            if model_hangup || caller_hangup {
                Action::Hangup
            } else {
                Action::Continue
            },
        )
    };

    let t = Instant::now();
    let e = engines.clone();
    let to_say = reply_text.clone();
    let out_rate = cfg.tts.reply_sample_rate;
    let reply_audio = tokio::task::spawn_blocking(move || -> Result<Pcm> {
        let pcm = e.tts.synthesize(&to_say)?;
        if out_rate > 0 {
            resample::to_rate(pcm, out_rate)
        } else {
            Ok(pcm)
        }
    })
    .await
    .map_err(|e| anyhow!("TTS task failed: {e}"))??;
    timings.tts = ms(t);
    Ok(TurnOutcome {
        user_text,
        language: transcript.language,
        reply_text,
        action,
        reply_audio,
    })
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
