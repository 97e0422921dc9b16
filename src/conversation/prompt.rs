//! The LLM messages for a caller's turn, built in this one place for every mode: the prompt
//! head (the system message with the tools' description, then the tools' examples), the
//! call's memory and the caller's words, with the knowledge base's passages when it is on.

use anyhow::Result;

use super::tools::Tools;
use crate::config::KbConfig;
use crate::engines::{ChatMessage, Role};
use crate::kb::{Hit, KnowledgeBase};

/// What every call's prompt starts with: the system message (with the tools' description
/// when replies may call tools, in the chat template's own words when it knows tool calls:
/// `hermes`), then the tools' examples as earlier exchanges.
pub fn head(system_prompt: &str, tools: Option<&Tools>, hermes: bool) -> Vec<ChatMessage> {
    let mut content = system_prompt.to_string();
    if let Some(t) = tools {
        content.push_str("\n\n");
        content.push_str(&t.describe(hermes));
    }
    let mut head = vec![ChatMessage::new(Role::System, content)];
    for [caller, assistant] in tools.iter().flat_map(|t| &t.examples) {
        head.push(ChatMessage::new(Role::User, caller.clone()));
        head.push(ChatMessage::new(Role::Assistant, assistant.clone()));
    }
    head
}

/// How to answer a caller's turn.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnPrompt {
    /// Ask the LLM with these messages.
    Ask(Vec<ChatMessage>),
    /// The knowledge base has nothing on what the caller said: say this sentence (the
    /// configured hand-off) without asking the LLM.
    Handoff(String),
}

/// The prompt for the caller's words `heard`, after the call's `history` (without a system
/// message), behind `head` (see [`head`]). With the knowledge base on, the passages that
/// match `heard` best are put in
/// the last user message, after the instruction to answer only from them; when none
/// matches, the answer is the hand-off sentence. A goodbye (`goodbye`: the caller said one
/// of `calls.hangup_phrases`) is answered by the LLM alone, so it can say goodbye.
///
/// Why the last user message: the LLM workers reuse their KV cache for the longest prefix
/// a prompt shares with the previous one. The system prompt and the earlier turns stay
/// byte-identical from turn to turn, so they are never evaluated again; the passages,
/// which change every turn, cost only their own tokens (about 100 each) plus the previous
/// exchange (the history keeps the caller's words without the passages, so transcripts and
/// later prompts stay small). Passages in the system message would instead make every turn
/// evaluate the whole conversation again, and keeping them in the history would fill the
/// context with stale passages.
pub fn for_turn(
    head: &[ChatMessage],
    kb: Option<&KnowledgeBase>,
    history: &[ChatMessage],
    heard: &str,
    goodbye: bool,
) -> Result<TurnPrompt> {
    let kb = kb.map(|kb| (kb, KbWords::of(kb.config())));
    for_turn_in(head, kb, history, heard, goodbye)
}

/// What the knowledge base's part of a prompt says, in the call's language.
#[derive(Debug, Clone, Copy)]
pub struct KbWords<'a> {
    /// How to answer from the passages (`{handoff}` stands for the hand-off sentence).
    pub instruction: &'a str,
    /// Said when the passages do not answer the question.
    pub handoff: &'a str,
}

impl<'a> KbWords<'a> {
    /// The configured words (`kb.instruction`, `kb.handoff`).
    pub fn of(cfg: &'a KbConfig) -> Self {
        Self {
            instruction: &cfg.instruction,
            handoff: &cfg.handoff,
        }
    }
}

/// [`for_turn`] with the knowledge base's words in the call's language.
pub fn for_turn_in(
    head: &[ChatMessage],
    kb: Option<(&KnowledgeBase, KbWords<'_>)>,
    history: &[ChatMessage],
    heard: &str,
    goodbye: bool,
) -> Result<TurnPrompt> {
    let mut messages = head.to_vec();
    messages.extend(history.iter().cloned());
    let content = match kb {
        Some((kb, words)) if !goodbye => {
            let hits = kb.search(heard)?;
            tracing::info!(
                passages = hits.len(),
                best = hits.first().map_or(0.0, |h| h.score),
                "knowledge base"
            );
            if hits.is_empty() {
                return Ok(TurnPrompt::Handoff(words.handoff.to_string()));
            }
            with_passages(words, &hits, heard)
        }
        _ => heard.to_string(),
    };
    messages.push(ChatMessage {
        role: Role::User,
        content,
    });
    Ok(TurnPrompt::Ask(messages))
}

/// The user message that carries the passages: the instruction first (with the hand-off
/// sentence in it), then the passages, best match first (with the 135M test model that
/// quoted the right fact more often than best match last), then the caller's words.
pub fn with_passages(words: KbWords<'_>, hits: &[Hit], heard: &str) -> String {
    let mut out = words.instruction.replace("{handoff}", words.handoff);
    out.push_str("\n\nFacts:");
    for h in hits.iter() {
        out.push_str("\n- ");
        if !h.heading.is_empty() {
            out.push_str(&h.heading);
            out.push_str(": ");
        }
        out.push_str(&h.text);
    }
    out.push_str("\n\nQuestion: ");
    out.push_str(heard);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(score: f32, heading: &str, text: &str) -> Hit {
        Hit {
            score,
            source: "faq.md".into(),
            heading: heading.into(),
            text: text.into(),
        }
    }

    #[test]
    fn passages_follow_the_instruction_and_precede_the_question() {
        let cfg = KbConfig::default();
        let hits = [
            hit(3.0, "Opening hours", "We open at 9 am."),
            hit(1.0, "", "Parking is free."),
        ];
        let msg = with_passages(KbWords::of(&cfg), &hits, "When do you open?");
        assert_eq!(
            msg,
            "Answer the question using only these facts from the company's documents. \
             If they do not answer it, say: \"I don't know that, shall I connect you to a \
             colleague?\"\n\nFacts:\n- Opening hours: We open at 9 am.\n- Parking is free.\
             \n\nQuestion: When do you open?"
        );
    }
}
