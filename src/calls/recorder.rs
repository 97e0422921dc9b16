//! One call's recorder: the one writer of everything a call leaves behind. Its memory (the
//! chat context the next reply sees) and language (the one its replies are made in), its
//! history rows (turns, tool calls, the end), its
//! metrics (answered turns, stage times, barge-ins, reply latency). Every transport and the
//! conversation write through it; short locks, never skipped when busy.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{json, Value};

use super::history::{now_ms, to_rfc3339};
use super::{tool_effects, CallId, CallLog, ToolCall};
use crate::engines::{ChatMessage, Role};
use crate::metrics::{Stage, Timings, Transport};

/// Turns, and tool calls, the console's live view keeps of a call (the newest).
const LIVE_TURNS: usize = 200;
const LIVE_TOOLS: usize = 50;

/// Most messages a call's memory keeps (the newest): a prompt holds fewer, and fitting it
/// works through what is kept.
pub const MAX_MEMORY: usize = 64;
/// Most reply latencies a call keeps (the newest), for its live view.
const MAX_LATENCIES: usize = 256;

/// What a call has gathered so far.
#[derive(Debug, Default)]
struct Gathered {
    memory: Vec<ChatMessage>,
    /// The language the call is answered in, once one is known (see
    /// `conversation::language`).
    language: Option<String>,
    turns: u32,
    /// Real-time replies: end of the caller's turn → first reply audio sent, in ms.
    reply_latencies_ms: Vec<f64>,
    /// The console's live view: the turns as published to the feed, the tools called, the
    /// barge-ins.
    transcript: VecDeque<Value>,
    tools: VecDeque<Value>,
    barge_ins: u32,
    /// Facts told to the feed so far: each carries its number as `seq`, and the live view
    /// the last one, so a console drops the facts its snapshot already holds.
    facts: u64,
}

impl Gathered {
    /// Keeps `message` in the memory, forgetting the oldest beyond [`MAX_MEMORY`] (so that
    /// the memory still starts with a caller's turn).
    fn remember(&mut self, role: Role, text: &str) {
        self.memory.push(ChatMessage::new(role, text));
        if self.memory.len() > MAX_MEMORY {
            let mut drop = self.memory.len() - MAX_MEMORY;
            let last = self.memory.len() - 1;
            while drop < last && self.memory[drop].role != Role::User {
                drop += 1;
            }
            self.memory.drain(..drop);
        }
    }
}

/// A live call's recorder.
pub struct CallRecorder {
    id: CallId,
    transport: Transport,
    log: Arc<CallLog>,
    started: Instant,
    /// When it started, as Unix ms (for the console).
    started_at: i64,
    /// `inbound`, `outbound` or `test` (a console test call).
    direction: Mutex<&'static str>,
    gathered: Mutex<Gathered>,
    /// Held for the length of a recording-mode turn, so a call's turns run in order.
    turn: tokio::sync::Mutex<()>,
    /// A media stream carries the call (a second one may not take it over).
    streamed: std::sync::atomic::AtomicBool,
    /// The registry ended the call: what still happens on it (a turn that was being
    /// answered) goes to the history, not to the console's live feed.
    ended: std::sync::atomic::AtomicBool,
}

impl CallRecorder {
    /// A recorder for a call that starts now (the registry records the start).
    pub(super) fn new(id: CallId, transport: Transport, log: Arc<CallLog>) -> Self {
        Self {
            id,
            transport,
            log,
            started: Instant::now(),
            started_at: now_ms(),
            direction: Mutex::new("inbound"),
            gathered: Mutex::default(),
            turn: tokio::sync::Mutex::new(()),
            streamed: std::sync::atomic::AtomicBool::new(false),
            ended: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Attaches a media stream to the call; false if one is attached already.
    pub fn attach_stream(&self) -> bool {
        !self
            .streamed
            .swap(true, std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether a media stream carries the call now.
    pub fn has_stream(&self) -> bool {
        self.streamed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The registry no longer holds the call.
    pub(super) fn mark_ended(&self) {
        self.ended.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Tells the console's live feed, while the call is live.
    fn publish(&self, kind: &'static str, fact: Value) {
        if !self.ended.load(std::sync::atomic::Ordering::SeqCst) {
            self.log.feed.publish(kind, fact);
        }
    }

    /// The call's media stream is gone.
    pub fn detach_stream(&self) {
        self.streamed
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn id(&self) -> &CallId {
        &self.id
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }

    fn gathered(&self) -> std::sync::MutexGuard<'_, Gathered> {
        self.gathered.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes up a conversation kept in the history (`(role, text)` turns in order, and the
    /// call's language): a recording-mode call whose session a restart lost goes on where
    /// it was.
    pub(super) fn take_up(&self, turns: Vec<(String, String)>, language: Option<String>) {
        let mut g = self.gathered();
        g.language = language;
        for (role, text) in turns {
            let role = match role.as_str() {
                "user" => {
                    g.turns += 1;
                    Role::User
                }
                "assistant" => Role::Assistant,
                _ => continue,
            };
            g.remember(role, &text);
        }
    }

    /// The conversation so far, for the next reply's prompt.
    pub fn memory(&self) -> Vec<ChatMessage> {
        self.gathered().memory.clone()
    }

    /// The language the call is answered in so far (None: the base keys).
    pub fn language(&self) -> Option<String> {
        self.gathered().language.clone()
    }

    /// The call is answered in `language` from now on (None: as before): a change is
    /// stored in the history and told to the console.
    pub fn speaks(&self, language: Option<&str>) {
        let Some(language) = language else { return };
        if self.gathered().language.as_deref() == Some(language) {
            return;
        }
        // Stored before the call's facts are taken: a slow history holds no other fact.
        self.log.record("the call's language", |h| {
            h.set_language(self.id.as_str(), language)
        });
        let mut g = self.gathered();
        g.language = Some(language.to_string());
        g.facts += 1;
        let fact = json!({"call_id": self.id.as_str(), "seq": g.facts, "language": language});
        // Told while the call's facts are held: their numbers reach the feed in order.
        self.publish("language", fact);
    }

    /// Answered turns so far.
    pub fn turns(&self) -> u32 {
        self.gathered().turns
    }

    /// Waits for the call's previous turn to finish; the turn runs while the guard lives.
    pub async fn turn_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.turn.lock().await
    }

    /// The caller's words, stored at once: a crash from here on loses no turn.
    pub fn heard(&self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.log.record("the caller's turn", |h| {
            h.add_turn(self.id.as_str(), "user", text, None, false, None)
        });
        self.publish_turn("user", text, None, false);
    }

    /// The caller pressed keys (`text`: what the model reads): kept in the memory and the
    /// history like the caller's words, for the next reply to see.
    pub fn keys_pressed(&self, text: &str) {
        self.gathered().remember(Role::User, text);
        self.heard(text);
    }

    /// Tells the console about a turn, and keeps it for the call's live view.
    fn publish_turn(&self, role: &str, text: &str, latency_ms: Option<f64>, barged_in: bool) {
        let mut g = self.gathered();
        g.facts += 1;
        let turn = json!({
            "call_id": self.id.as_str(),
            "seq": g.facts,
            "role": role,
            "text": text,
            "at": to_rfc3339(now_ms()),
            "latency_ms": latency_ms,
            "barged_in": barged_in,
        });
        if g.transcript.len() == LIVE_TURNS {
            g.transcript.pop_front();
        }
        g.transcript.push_back(turn.clone());
        // Told while the call's facts are held: their numbers reach the feed in order.
        self.publish("turn", turn);
    }

    /// An exchange is over: voxd `said` this (as far as the caller heard it; `interrupted`
    /// when the caller cut in) in answer to `heard` (None: to no turn, the greeting; empty:
    /// nothing intelligible, which the memory does not keep). The memory gets what was
    /// really heard and said; the history gets voxd's words with `timings`.
    pub fn answered(
        &self,
        heard: Option<&str>,
        said: &str,
        timings: Option<Value>,
        interrupted: bool,
        audio_url: Option<&str>,
    ) {
        {
            let mut g = self.gathered();
            if heard != Some("") {
                if let Some(heard) = heard {
                    g.remember(Role::User, heard);
                    g.turns += 1;
                }
                if !said.is_empty() {
                    g.remember(Role::Assistant, said);
                }
            }
        }
        if !said.is_empty() {
            self.log.record("voxd's turn", |h| {
                h.add_turn(
                    self.id.as_str(),
                    "assistant",
                    said,
                    timings.as_ref(),
                    interrupted,
                    audio_url,
                )
            });
            // Voice to voice on the stream, the whole turn's processing in recording mode.
            let latency = timings
                .as_ref()
                .and_then(|t| t.get("latency_ms").or(t.get("total")))
                .and_then(Value::as_f64);
            self.publish_turn("assistant", said, latency, interrupted);
        }
    }

    /// A turn was answered in these stage times (the metrics).
    pub fn replied(&self, t: &Timings) {
        let m = &self.log.metrics;
        m.turn_answered(self.transport);
        for (stage, took) in [
            (Stage::Download, t.download),
            (Stage::Decode, t.decode),
            (Stage::Stt, t.stt),
            (Stage::LlmFirstToken, t.llm_first_token),
            (Stage::Llm, t.llm),
            (Stage::TtsFirstAudio, t.tts_first_audio),
            (Stage::TurnTotal, t.total),
        ] {
            if took > 0.0 {
                m.stage_ms(self.transport, stage, took);
            }
        }
    }

    /// A real-time reply's first audio went out `ms` after the caller's turn ended.
    pub fn reply_latency(&self, ms: f64) {
        {
            let mut g = self.gathered();
            if g.reply_latencies_ms.len() == MAX_LATENCIES {
                g.reply_latencies_ms.remove(0);
            }
            g.reply_latencies_ms.push(ms);
        }
        let m = &self.log.metrics;
        m.stage_ms(self.transport, Stage::EndOfTurnToFirstAudio, ms);
    }

    /// The caller heard `gap` of silence inside a reply: its next piece was not ready.
    pub fn reply_gap(&self, gap: std::time::Duration) {
        let m = &self.log.metrics;
        m.stage_ms(self.transport, Stage::ReplyGap, gap.as_secs_f64() * 1000.0);
    }

    /// What became of a reply begun in the caller's pause: `used`, `dropped` (the caller
    /// went on) or `skipped` (the engines had no room for it).
    pub fn speculation(&self, outcome: &str) {
        self.log.metrics.speculation(outcome);
    }

    /// Speech over voxd did not end its reply (backchannel, resumed).
    pub fn interruption_ignored(&self, kind: &str) {
        self.log.metrics.interruption_ignored(kind);
    }

    /// The end-of-turn model heard one of the caller's pauses (finished, unfinished, failed).
    pub fn turn_verdict(&self, verdict: &str) {
        self.log.metrics.turn_verdict(verdict);
    }

    /// The caller interrupted voxd.
    pub fn barge_in(&self) {
        self.log.metrics.barge_in();
        let mut g = self.gathered();
        g.barge_ins += 1;
        g.facts += 1;
        let at = to_rfc3339(now_ms());
        self.publish(
            "barge_in",
            json!({"call_id": self.id.as_str(), "seq": g.facts, "at": at}),
        );
    }

    /// The assistant called `tool`: count it, note it, act on it (a lead is stored).
    pub fn tool_called(&self, tool: &ToolCall) {
        tool_effects::called(
            &self.log,
            self.id.as_str(),
            tool,
            self.direction() == "test",
        );
        let mut g = self.gathered();
        g.facts += 1;
        let called = json!({
            "call_id": self.id.as_str(),
            "seq": g.facts,
            "name": tool.name(),
            "at": to_rfc3339(now_ms()),
        });
        if g.tools.len() == LIVE_TOOLS {
            g.tools.pop_front();
        }
        g.tools.push_back(called.clone());
        self.publish("tool", called);
    }

    /// When the call started (Unix ms).
    pub fn started_at(&self) -> i64 {
        self.started_at
    }

    /// `inbound`, `outbound` or `test`.
    pub fn direction(&self) -> &'static str {
        *self.direction.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the call's direction (the history's word for it, or `test` for a console call).
    pub fn set_direction(&self, direction: &'static str) {
        *self.direction.lock().unwrap_or_else(|p| p.into_inner()) = direction;
    }

    /// The call as the console's live view shows it.
    pub fn live_view(&self) -> Value {
        let g = self.gathered();
        json!({
            "call_id": self.id.as_str(),
            "transport": self.transport.as_str(),
            "direction": self.direction(),
            "started_at": to_rfc3339(self.started_at),
            "language": g.language,
            "turns": g.transcript,
            "barge_ins": g.barge_ins,
            "seq": g.facts,
            "tools": g.tools,
        })
    }

    /// The `call_started` fact of the feed.
    pub(super) fn started_fact(&self) -> Value {
        json!({
            "call_id": self.id.as_str(),
            "transport": self.transport.as_str(),
            "direction": self.direction(),
            "started_at": to_rfc3339(self.started_at),
        })
    }

    /// Records how the call ended in the history (`status`: ended or failed).
    pub fn ended(&self, status: &str, outcome: &str) {
        self.log.record("the call end", |h| {
            h.call_ended(self.id.as_str(), status, outcome)
        });
    }

    /// The live call as `GET /voximplant/calls/{call_id}` shows it.
    pub fn snapshot(&self) -> Value {
        let g = self.gathered();
        json!({
            "call_id": self.id.as_str(),
            "turns": g.turns,
            "duration_secs": self.started.elapsed().as_secs_f64(),
            "history": g.memory,
            "reply_latencies_ms": g.reply_latencies_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_keeps_the_newest_messages_from_a_callers_turn() {
        let mut g = Gathered::default();
        for i in 0..100 {
            g.remember(Role::User, &format!("q{i}"));
            g.remember(Role::Assistant, &format!("a{i}"));
        }
        g.remember(Role::User, "last");
        assert!(g.memory.len() <= MAX_MEMORY, "{}", g.memory.len());
        assert_eq!(g.memory[0].role, Role::User);
        assert_eq!(g.memory.last().unwrap().content, "last");
        assert_eq!(g.memory[g.memory.len() - 2].content, "a99");
    }
}
