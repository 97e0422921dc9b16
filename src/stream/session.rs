//! One media-stream call: the WebSocket upgrade (auth, call id), then a loop that feeds the
//! caller's audio to turn detection, runs replies, paces voxd's speech, handles barge-in,
//! and frees the call however it ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::playout::Playout;
use super::protocol::{self, Encoding, FrameError, Incoming, Outgoing};
use super::reply::{self, ReplyEvent, ReplyJob};
use super::sequencer::Sequencer;
use super::turns::{TurnDetector, TurnEvent, TurnSettings};
use crate::engines::llm::{ChatMessage, Role};
use crate::server::audio_store::random_id;
use crate::server::auth;
use crate::server::error::ApiError;
use crate::server::AppState;

/// Frames voxd may queue for a client before deciding it does not read.
const OUT_QUEUE: usize = 256;
/// A send that blocks this long means the client stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Bad frames in a row after which the stream is closed.
const MAX_BAD_FRAMES: u32 = 100;

#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    call_id: Option<String>,
    token: Option<String>,
}

/// `GET /voximplant/stream`: checks the token (header or `token` query), then upgrades.
pub async fn handle(
    State(state): State<Arc<AppState>>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let given = auth::bearer(&headers).or(query.token.as_deref());
    auth::check(&state.cfg.server.token, given)?;
    if let Some(id) = &query.call_id {
        crate::server::process_audio::check_call_id(id)?;
    }
    let max = state.cfg.stream.max_frame_bytes as usize;
    Ok(ws
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| run(socket, state, query.call_id)))
}

async fn run(socket: WebSocket, state: Arc<AppState>, call_id: Option<String>) {
    let (mut sink, mut incoming) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(OUT_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(msg) = out_rx.recv().await {
            let closing = matches!(msg, Message::Close(_));
            match tokio::time::timeout(SEND_TIMEOUT, sink.send(msg)).await {
                Ok(Ok(())) if !closing => {}
                _ => break,
            }
        }
        let _ = sink.close().await;
    });
    let (reply_tx, mut reply_rx) = mpsc::unbounded_channel();
    let mut call = Call::new(state, call_id, out_tx, reply_tx);
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let reason = loop {
        let step = tokio::select! {
            msg = incoming.next() => match msg {
                Some(Ok(Message::Text(text))) => call.on_text(&text),
                Some(Ok(Message::Binary(b))) => {
                    tracing::warn!(call_id = call.id(), bytes = b.len(), "binary frame ignored (the protocol is JSON text)");
                    Ok(())
                }
                Some(Ok(Message::Close(_))) | None => Err("the scenario closed the socket".to_string()),
                Some(Ok(_)) => Ok(()),
                Some(Err(e)) => Err(format!("socket error: {e}")),
            },
            _ = ticker.tick() => call.on_tick(),
            Some((id, ev)) = reply_rx.recv() => call.on_reply(id, ev),
        };
        if let Err(reason) = step {
            break reason;
        }
    };
    call.finish(&reason);
    drop(call); // the writer sends what is queued (a close frame last) and ends
                // Keep reading until the client answers the close: dropping a socket with unread data
                // makes the kernel reset the connection, which destroys what was just sent (the
                // `hangup` message, say) before the client has read it.
    let drain = async {
        while let Some(Ok(msg)) = incoming.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
    let _ = writer.await;
}

/// The state of one call on the socket.
struct Call {
    state: Arc<AppState>,
    call_id: Option<String>,
    out: mpsc::Sender<Message>,
    replies: mpsc::UnboundedSender<(u64, ReplyEvent)>,
    /// The caller's encoding, once `start` came.
    input: Option<Encoding>,
    output: Encoding,
    tag: Option<String>,
    detector: Option<TurnDetector>,
    sequencer: Sequencer,
    frames: Outgoing,
    playout: Option<Playout>,
    /// voxd's own `start` was sent for the reply being played.
    out_started: bool,
    reply: Option<Reply>,
    reply_seq: u64,
    greeted: bool,
    /// Caller audio of a turn whose reply was abandoned because the caller went on.
    carry_over: Vec<i16>,
    bad_frames: u32,
    hangup_pending: bool,
}

/// The reply in progress.
struct Reply {
    id: u64,
    task: JoinHandle<()>,
    heard: Option<String>,
    utterance: Vec<i16>,
    turn_end: Option<Instant>,
    first_audio: Option<Instant>,
    done: Option<bool>,
}

impl Call {
    fn new(
        state: Arc<AppState>,
        call_id: Option<String>,
        out: mpsc::Sender<Message>,
        replies: mpsc::UnboundedSender<(u64, ReplyEvent)>,
    ) -> Self {
        if let Some(id) = &call_id {
            state.calls.session(id);
        }
        Self {
            state,
            call_id,
            out,
            replies,
            input: None,
            output: Encoding::Pcm16,
            tag: None,
            detector: None,
            sequencer: Sequencer::default(),
            frames: Outgoing::default(),
            playout: None,
            out_started: false,
            reply: None,
            reply_seq: 0,
            greeted: false,
            carry_over: Vec::new(),
            bad_frames: 0,
            hangup_pending: false,
        }
    }

    fn id(&self) -> &str {
        self.call_id.as_deref().unwrap_or("-")
    }

    /// Queues a frame for the client; a client that does not read ends the call.
    fn send(&self, msg: Message) -> Result<(), String> {
        self.out
            .try_send(msg)
            .map_err(|_| "the client does not read what voxd sends".to_string())
    }

    fn send_text(&self, text: String) -> Result<(), String> {
        self.send(Message::Text(text.into()))
    }

    fn on_text(&mut self, text: &str) -> Result<(), String> {
        match protocol::parse(text) {
            Ok(frame) => {
                self.bad_frames = 0;
                self.on_frame(frame)
            }
            Err(FrameError::Fatal(what)) => {
                tracing::warn!(call_id = self.id(), "unsupported media format {what}");
                let _ = self.send(Message::Close(Some(CloseFrame {
                    code: 1003,
                    reason: format!("unsupported encoding {what}").into(),
                })));
                Err(format!("unsupported encoding {what}"))
            }
            Err(e) => self.bad_frame(&e.to_string()),
        }
    }

    fn bad_frame(&mut self, why: &str) -> Result<(), String> {
        self.bad_frames += 1;
        tracing::warn!(call_id = self.id(), "frame ignored: {why}");
        if self.bad_frames >= MAX_BAD_FRAMES {
            let _ = self.send(Message::Close(Some(CloseFrame {
                code: 1008,
                reason: "too many bad frames".into(),
            })));
            return Err(format!("{MAX_BAD_FRAMES} bad frames in a row"));
        }
        Ok(())
    }

    fn on_frame(&mut self, frame: Incoming) -> Result<(), String> {
        match frame {
            Incoming::Start {
                encoding,
                tag,
                custom,
            } => {
                if self.call_id.is_none() {
                    let id = custom
                        .get("call_id")
                        .and_then(|v| v.as_str())
                        .map(String::from);
                    let id = id.unwrap_or_else(|| format!("ws-{}", random_id()));
                    self.state.calls.session(&id);
                    self.call_id = Some(id);
                }
                let cfg = &self.state.cfg.stream;
                self.input = Some(encoding);
                self.sequencer.reset();
                self.output = Encoding::parse(&cfg.encoding).unwrap_or(encoding);
                self.tag = tag;
                self.detector = Some(TurnDetector::new(
                    encoding.rate(),
                    TurnSettings {
                        vad_mode: cfg.vad_mode,
                        min_speech_ms: cfg.min_speech_ms as usize,
                        end_silence_ms: cfg.end_of_turn_ms as usize,
                        max_turn_ms: cfg.max_turn_secs as usize * 1000,
                    },
                ));
                tracing::info!(
                    call_id = self.id(),
                    encoding = encoding.wire_name(),
                    "media stream started"
                );
                if !self.greeted && !cfg.greeting.is_empty() {
                    self.greeted = true;
                    let text = cfg.greeting.clone();
                    self.start_reply(None, Some(text));
                }
                Ok(())
            }
            Incoming::Media {
                samples_b64, chunk, ..
            } => {
                let Some(encoding) = self.input else {
                    return self.bad_frame("media before start");
                };
                let frame = match protocol::payload(&samples_b64, encoding) {
                    Ok(s) => s,
                    Err(e) => return self.bad_frame(&e.to_string()),
                };
                let Some(lost) = self.sequencer.admit(chunk) else {
                    tracing::debug!(call_id = self.id(), ?chunk, "late media frame dropped");
                    return Ok(());
                };
                let mut samples = vec![0i16; lost as usize * frame.len()];
                samples.extend_from_slice(&frame);
                let speaking = self.speaking();
                let cfg = &self.state.cfg.stream;
                let min = if speaking {
                    cfg.barge_in_min_ms
                } else {
                    cfg.min_speech_ms
                };
                let Some(detector) = self.detector.as_mut() else {
                    return Ok(());
                };
                detector.set_min_speech_ms(min as usize);
                for event in detector.push(&samples) {
                    self.on_turn_event(event)?;
                }
                Ok(())
            }
            Incoming::Stop => {
                tracing::info!(call_id = self.id(), "media stream stopped");
                self.input = None;
                self.sequencer.reset();
                self.detector = None;
                Ok(())
            }
        }
    }

    /// Whether voxd is talking (or about to: a reply is being prepared).
    fn speaking(&self) -> bool {
        self.playout
            .as_ref()
            .is_some_and(|p| p.busy(Instant::now()))
    }

    fn on_turn_event(&mut self, event: TurnEvent) -> Result<(), String> {
        match event {
            TurnEvent::SpeechStarted => {
                if self.speaking() {
                    if self.state.cfg.stream.barge_in {
                        self.barge_in()?;
                    }
                } else if let Some(reply) = self.reply.take() {
                    // The caller went on before voxd answered: answer the whole thing later.
                    reply.task.abort();
                    self.carry_over = reply.utterance;
                }
                Ok(())
            }
            TurnEvent::TurnEnded(samples) => {
                if self.speaking() && !self.state.cfg.stream.barge_in {
                    return Ok(());
                }
                let mut utterance = std::mem::take(&mut self.carry_over);
                utterance.extend_from_slice(&samples);
                self.start_reply(Some(utterance), None);
                Ok(())
            }
        }
    }

    fn start_reply(&mut self, utterance: Option<Vec<i16>>, fixed_text: Option<String>) {
        if let Some(old) = self.reply.take() {
            old.task.abort();
        }
        let Some(input) = self.input else { return };
        let state = &self.state;
        let session = self.call_id.as_deref().map(|id| state.calls.session(id));
        let mut history = vec![state.engines.llm.system_message()];
        if let Some(s) = session.as_ref().and_then(|s| s.try_lock().ok()) {
            history.extend(s.history.iter().cloned());
        }
        self.reply_seq += 1;
        let job = ReplyJob {
            engines: state.engines.clone(),
            history,
            utterance: utterance.clone().map(|u| (u, input.rate())),
            fixed_text,
            out_rate: self.output.rate(),
            max_sentences: state.engines.llm.max_sentences(),
            hangup_phrases: state.cfg.calls.hangup_phrases.clone(),
            sequential: state.cfg.stream.pipeline == "sequential",
            first_clause_words: state.cfg.stream.first_clause_words as usize,
        };
        let task = tokio::spawn(reply::run(job, self.reply_seq, self.replies.clone()));
        self.reply = Some(Reply {
            id: self.reply_seq,
            task,
            heard: None,
            utterance: utterance.unwrap_or_default(),
            turn_end: Some(Instant::now()),
            first_audio: None,
            done: None,
        });
    }

    fn on_reply(&mut self, id: u64, event: ReplyEvent) -> Result<(), String> {
        if self.reply.as_ref().is_none_or(|r| r.id != id) {
            return Ok(()); // from a reply that was abandoned
        }
        match event {
            ReplyEvent::Heard(text) => {
                if !text.is_empty() {
                    tracing::info!(call_id = self.id(), %text, "caller said");
                    self.send_text(protocol::transcript("user", &text, None))?;
                }
                if let Some(r) = self.reply.as_mut() {
                    r.heard = Some(text);
                }
            }
            ReplyEvent::Speech { samples, text } => {
                let lead = Duration::from_millis(u64::from(self.state.cfg.stream.lead_ms));
                let rate = self.output.rate();
                self.playout
                    .get_or_insert_with(|| Playout::new(rate, lead))
                    .push(&samples, &text);
            }
            ReplyEvent::Done { hangup } => {
                let silent = self
                    .reply
                    .as_ref()
                    .is_some_and(|r| r.heard.as_deref() == Some(""));
                if silent {
                    self.reply = None; // nothing intelligible: keep listening
                } else if let Some(r) = self.reply.as_mut() {
                    r.done = Some(hangup);
                }
            }
            ReplyEvent::Failed(e) => {
                tracing::error!(call_id = self.id(), "reply failed: {e}");
                if let Some(r) = self.reply.as_mut() {
                    r.done = Some(false);
                }
            }
        }
        Ok(())
    }

    fn on_tick(&mut self) -> Result<(), String> {
        let now = Instant::now();
        let Some(playout) = self.playout.as_mut() else {
            return self.maybe_hang_up();
        };
        let mut frames = Vec::new();
        while let Some(frame) = playout.next_frame(now) {
            frames.push(frame);
        }
        if !frames.is_empty() && !self.out_started {
            self.out_started = true;
            let start = self.frames.start(self.output, self.tag.as_deref());
            self.send_text(start)?;
        }
        let had_frames = !frames.is_empty();
        for frame in frames {
            let media = self.frames.media(self.output, &frame);
            self.send_text(media)?;
        }
        if had_frames {
            self.note_first_audio(now);
        }
        let finished = self.reply.as_ref().is_none_or(|r| r.done.is_some());
        if finished
            && self
                .playout
                .as_ref()
                .is_some_and(|p| p.all_sent() && !p.busy(now))
        {
            self.end_of_reply(now, false)?;
        }
        self.maybe_hang_up()
    }

    /// Records when a reply to the caller (not the greeting) first reached the wire.
    fn note_first_audio(&mut self, now: Instant) {
        let Some(r) = self.reply.as_mut().filter(|r| r.first_audio.is_none()) else {
            return;
        };
        r.first_audio = Some(now);
        let (Some(end), false) = (r.turn_end, r.utterance.is_empty()) else {
            return;
        };
        let ms = (now - end).as_secs_f64() * 1000.0;
        if let Some(id) = &self.call_id {
            if let Ok(mut s) = self.state.calls.session(id).try_lock() {
                s.reply_latencies_ms.push(ms);
            };
        }
    }

    /// The reply's audio is all out (or cut): close voxd's stream, remember what was said.
    fn end_of_reply(&mut self, now: Instant, interrupted: bool) -> Result<(), String> {
        let Some(playout) = self.playout.take() else {
            return Ok(());
        };
        if self.out_started {
            self.out_started = false;
            let stop = self.frames.stop();
            self.send_text(stop)?;
        }
        let said = playout.heard_text(now);
        let reply = self.reply.take();
        if let Some(r) = &reply {
            r.task.abort();
        }
        let latency = reply
            .as_ref()
            .and_then(|r| Some((r.first_audio? - r.turn_end?).as_secs_f64() * 1000.0));
        if let Some(id) = self.call_id.clone() {
            let session = self.state.calls.session(&id);
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
            tracing::info!(call_id = self.id(), text = %said, interrupted, latency_ms = latency.unwrap_or(0.0) as u64, "voxd said");
            self.send_text(protocol::transcript("assistant", &said, latency))?;
        }
        if reply.as_ref().and_then(|r| r.done) == Some(true) && !interrupted {
            self.hangup_pending = true;
        }
        Ok(())
    }

    /// The caller spoke over voxd: stop talking now and listen.
    fn barge_in(&mut self) -> Result<(), String> {
        let now = Instant::now();
        tracing::info!(call_id = self.id(), "barge-in");
        if let Some(p) = self.playout.as_mut() {
            p.clear();
        }
        self.send_text(protocol::clear())?;
        self.end_of_reply(now, true)
    }

    /// After a reply that ends the call has played out, tell the scenario to hang up.
    fn maybe_hang_up(&mut self) -> Result<(), String> {
        if self.hangup_pending && !self.speaking() {
            self.hangup_pending = false;
            self.send_text(protocol::hangup())?;
            let _ = self.send(Message::Close(Some(CloseFrame {
                code: 1000,
                reason: "call ended".into(),
            })));
            return Err("voxd ended the call".into());
        }
        Ok(())
    }

    fn finish(&mut self, reason: &str) {
        if let Some(r) = self.reply.take() {
            r.task.abort();
        }
        match &self.call_id {
            Some(id) => {
                self.state.calls.end(id);
                tracing::info!(call_id = %id, reason, "media stream call ended");
            }
            None => tracing::info!(reason, "media stream closed before it started"),
        }
    }
}
