//! One conversational turn on decoded audio: transcribe, reply with the LLM (keeping the
//! call's history, noting the tool it called), synthesize. Shared by the HTTP API, the CLI
//! and the benchmark.

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
use crate::tools::ToolCall;

/// What the scenario should do after playing the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Continue,
    Hangup,
    /// Connect the caller to the operator (`tools.operator_phone`).
    Transfer,
}

impl Action {
    /// What follows a reply: the caller's goodbye or the model's hangup ends the call, a
    /// transfer hands it over; any other tool (save_lead) lets it go on.
    pub fn after(caller_goodbye: bool, tool: Option<&ToolCall>) -> Self {
        match tool {
            Some(ToolCall::Transfer) => Action::Transfer,
            Some(ToolCall::Hangup) => Action::Hangup,
            _ if caller_goodbye => Action::Hangup,
            _ => Action::Continue,
        }
    }
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
    /// The tool the model called, if any.
    pub tool: Option<ToolCall>,
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
    let mut tool = None;
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
                // goes on; past the sentence limit the reply is only read for its tool call.
                let max = engines.llm.max_sentences();
                while let Some(piece) = stream.next_sentence().await? {
                    speech.push(synthesize(engines, piece.clone()));
                    pieces.push(piece);
                    if max > 0 && pieces.len() >= max {
                        break;
                    }
                }
                tool = stream.finish().await?;
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
    let action = Action::after(caller_hangup, tool.as_ref());

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
        tool,
        reply_audio,
    })
}

/// Voices `text` off the runtime; the audio comes with the milliseconds it took.
fn synthesize(engines: &Arc<Engines>, text: String) -> tokio::task::JoinHandle<Result<(Pcm, f64)>> {
    let e = engines.clone();
    let queued = Instant::now();
    tokio::task::spawn_blocking(move || Ok((e.tts.synthesize(&text)?, ms(queued))))
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
    fn the_action_follows_the_tool_then_the_callers_goodbye() {
        let lead = ToolCall::SaveLead(crate::tools::Lead {
            name: "A".into(),
            phone: "+15551234567".into(),
            request: "x".into(),
        });
        assert_eq!(Action::after(false, None), Action::Continue);
        assert_eq!(Action::after(true, None), Action::Hangup);
        assert_eq!(Action::after(false, Some(&lead)), Action::Continue);
        assert_eq!(Action::after(true, Some(&lead)), Action::Hangup);
        assert_eq!(
            Action::after(true, Some(&ToolCall::Transfer)),
            Action::Transfer
        );
        assert_eq!(
            Action::after(false, Some(&ToolCall::Hangup)),
            Action::Hangup
        );
    }

    #[test]
    fn goodbye_phrases_match_case_insensitively() {
        let p = vec!["goodbye".to_string(), "до свидания".to_string()];
        assert!(says_goodbye("OK, Goodbye.", &p));
        assert!(says_goodbye("Спасибо, До свидания", &p));
        assert!(!says_goodbye("good morning", &p));
    }
}
