//! One media-stream call: the WebSocket upgrade (auth, call id), then a loop that decodes
//! the scenario's frames for the [`Conversation`] (turns, replies, barge-in), sends what it
//! says as media frames and transcripts, and frees the call however it ends. The call's
//! logs carry its id (a `call` span); its end, barge-ins and reply latency go to the metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::conversation::{Conversation, Output, Settings};
use super::protocol::{self, Encoding, FrameError, Incoming, Outgoing};
use super::sequencer::Sequencer;
use crate::metrics::{Stage, Transport};
use crate::server::audio_store::random_id;
use crate::server::auth;
use crate::server::drain::Busy;
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

/// Why a call on the socket ended: `outcome` labels `voxd_calls_total`, `why` is logged.
struct Ended {
    outcome: &'static str,
    why: String,
}

impl Ended {
    fn new(outcome: &'static str, why: impl Into<String>) -> Self {
        Self {
            outcome,
            why: why.into(),
        }
    }

    /// Whether the end is a fault (counted in `voxd_errors_total`), not a normal hang-up.
    fn is_error(&self) -> bool {
        !matches!(
            self.outcome,
            "caller_hangup" | "voxd_hangup" | "voxd_transfer" | "shutdown"
        )
    }
}

/// `GET /voximplant/stream`: checks the token (header or `token` query), refuses new calls
/// while voxd drains, then upgrades.
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
    state.drain.admit_new_call()?;
    let busy = state.drain.busy();
    let span = tracing::info_span!(
        "call",
        call_id = tracing::field::Empty,
        transport = "stream"
    );
    if let Some(id) = &query.call_id {
        span.record("call_id", id.as_str());
    }
    let max = state.cfg.stream.max_frame_bytes as usize;
    // VoxEngine's createWebSocket offers the subprotocol "chat" unless the scenario names
    // another; a client that offers one and gets none back fails the handshake.
    Ok(ws
        .protocols(["chat"])
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| run(socket, state, query.call_id, busy).instrument(span)))
}

async fn run(socket: WebSocket, state: Arc<AppState>, call_id: Option<String>, _busy: Busy) {
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
    let settings = Settings {
        metrics: Some(state.metrics.clone()),
        ..Settings::from_config(&state.cfg)
    };
    let (conversation, mut reply_rx) = Conversation::new(state.engines.clone(), settings);
    let mut stop = state.drain.stop_signal();
    let mut call = Call::new(state, call_id, out_tx, conversation);
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let reason = loop {
        let step = tokio::select! {
            msg = incoming.next() => match msg {
                Some(Ok(Message::Text(text))) => call.on_text(&text),
                Some(Ok(Message::Binary(b))) => {
                    tracing::warn!(bytes = b.len(), "binary frame ignored (the protocol is JSON text)");
                    Ok(())
                }
                Some(Ok(Message::Close(_))) | None => Err(Ended::new("caller_hangup", "the scenario closed the socket")),
                Some(Ok(_)) => Ok(()),
                Some(Err(e)) => Err(Ended::new("socket_error", format!("socket error: {e}"))),
            },
            _ = stop.wait_for(|stop| *stop) => {
                let _ = call.send(Message::Close(Some(CloseFrame {
                    code: 1001,
                    reason: "voxd is shutting down".into(),
                })));
                Err(Ended::new("shutdown", "voxd is shutting down (grace period over)"))
            }
            _ = ticker.tick() => {
                let outputs = call.conversation.tick(Instant::now());
                call.deliver(outputs)
            }
            Some((id, ev)) = reply_rx.recv() => {
                let outputs = call.conversation.on_reply(id, ev);
                call.deliver(outputs)
            }
        };
        if let Err(reason) = step {
            break reason;
        }
    };
    call.finish(&reason);
    // The writer sends what is queued (a close frame last) and ends.
    drop(call);
    // Keep reading until the client answers the close: dropping a socket with unread data
    // makes the kernel reset the connection, which destroys what was just sent (the `hangup`
    // message, say) before the client has read it.
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
    conversation: Conversation,
    /// The caller's encoding, once `start` came.
    input: Option<Encoding>,
    output: Encoding,
    tag: Option<String>,
    sequencer: Sequencer,
    frames: Outgoing,
    bad_frames: u32,
}

impl Call {
    fn new(
        state: Arc<AppState>,
        call_id: Option<String>,
        out: mpsc::Sender<Message>,
        conversation: Conversation,
    ) -> Self {
        if let Some(id) = &call_id {
            state.open_call(id, Transport::Stream);
        }
        Self {
            state,
            call_id,
            out,
            conversation,
            input: None,
            output: Encoding::Pcm16,
            tag: None,
            sequencer: Sequencer::default(),
            frames: Outgoing::default(),
            bad_frames: 0,
        }
    }

    /// Queues a frame for the client; a client that does not read ends the call.
    fn send(&self, msg: Message) -> Result<(), Ended> {
        self.out.try_send(msg).map_err(|_| {
            Ended::new(
                "client_not_reading",
                "the client does not read what voxd sends",
            )
        })
    }

    fn send_text(&self, text: String) -> Result<(), Ended> {
        self.send(Message::Text(text.into()))
    }

    /// Sends what the conversation says, in the scenario's protocol.
    fn deliver(&mut self, outputs: Vec<Output>) -> Result<(), Ended> {
        for output in outputs {
            match output {
                Output::Heard { text, .. } if !text.is_empty() => {
                    // Stored before the reply is voiced: a crash from here on loses no turn.
                    self.record_turn("user", &text, None, false);
                    self.send_text(protocol::transcript("user", &text, None))?;
                }
                Output::Heard { .. } | Output::Replying(_) => {}
                Output::AudioStart => {
                    let start = self.frames.start(self.output, self.tag.as_deref());
                    self.send_text(start)?;
                }
                Output::Audio(frame) => {
                    let media = self.frames.media(self.output, &frame);
                    self.send_text(media)?;
                }
                Output::AudioStop => {
                    let stop = self.frames.stop();
                    self.send_text(stop)?;
                }
                Output::Clear => {
                    self.state.metrics.barge_in();
                    self.send_text(protocol::clear())?;
                }
                Output::Said {
                    text,
                    latency_ms,
                    interrupted,
                } => {
                    if let Some(ms) = latency_ms {
                        let m = &self.state.metrics;
                        m.stage_ms(Transport::Stream, Stage::EndOfTurnToFirstAudio, ms);
                    }
                    let timings = latency_ms.map(|ms| serde_json::json!({ "latency_ms": ms }));
                    self.record_turn("assistant", &text, timings, interrupted);
                    self.send_text(protocol::transcript("assistant", &text, latency_ms))?;
                }
                Output::Tool(tool) => {
                    if let Some(id) = &self.call_id {
                        crate::server::tools::called(&self.state, id, &tool);
                    }
                }
                Output::Transfer => {
                    let to = &self.state.cfg.tools.operator_phone;
                    self.send_text(protocol::transfer(to))?;
                    let _ = self.send(Message::Close(Some(CloseFrame {
                        code: 1000,
                        reason: "call transferred".into(),
                    })));
                    return Err(Ended::new("voxd_transfer", format!("transferred to {to}")));
                }
                Output::Hangup => {
                    self.send_text(protocol::hangup())?;
                    let _ = self.send(Message::Close(Some(CloseFrame {
                        code: 1000,
                        reason: "call ended".into(),
                    })));
                    return Err(Ended::new("voxd_hangup", "voxd ended the call"));
                }
            }
        }
        Ok(())
    }

    /// Adds a finished turn to the call history.
    fn record_turn(
        &self,
        role: &str,
        text: &str,
        timings: Option<serde_json::Value>,
        barged_in: bool,
    ) {
        if let Some(id) = &self.call_id {
            self.state.record("a stream turn", |h| {
                h.add_turn(id, role, text, timings.as_ref(), barged_in)
            });
        }
    }

    fn on_text(&mut self, text: &str) -> Result<(), Ended> {
        match protocol::parse(text) {
            Ok(frame) => {
                self.bad_frames = 0;
                self.on_frame(frame)
            }
            Err(FrameError::Fatal(what)) => {
                tracing::warn!("unsupported media format {what}");
                let _ = self.send(Message::Close(Some(CloseFrame {
                    code: 1003,
                    reason: format!("unsupported encoding {what}").into(),
                })));
                Err(Ended::new(
                    "unsupported_encoding",
                    format!("unsupported encoding {what}"),
                ))
            }
            Err(e) => self.bad_frame(&e.to_string()),
        }
    }

    fn bad_frame(&mut self, why: &str) -> Result<(), Ended> {
        self.bad_frames += 1;
        tracing::warn!("frame ignored: {why}");
        if self.bad_frames >= MAX_BAD_FRAMES {
            let _ = self.send(Message::Close(Some(CloseFrame {
                code: 1008,
                reason: "too many bad frames".into(),
            })));
            return Err(Ended::new(
                "bad_frames",
                format!("{MAX_BAD_FRAMES} bad frames in a row"),
            ));
        }
        Ok(())
    }

    fn on_frame(&mut self, frame: Incoming) -> Result<(), Ended> {
        match frame {
            Incoming::Start {
                encoding,
                tag,
                custom,
            } => {
                let id = match &self.call_id {
                    Some(id) => id.clone(),
                    None => {
                        let id = custom
                            .get("call_id")
                            .and_then(|v| v.as_str())
                            .map(String::from);
                        let id = id.unwrap_or_else(|| format!("ws-{}", random_id()));
                        tracing::Span::current().record("call_id", id.as_str());
                        self.state.open_call(&id, Transport::Stream);
                        self.call_id = Some(id.clone());
                        id
                    }
                };
                self.input = Some(encoding);
                self.sequencer.reset();
                self.output = Encoding::parse(&self.state.cfg.stream.encoding).unwrap_or(encoding);
                self.tag = tag;
                tracing::info!(encoding = encoding.wire_name(), "media stream started");
                let state = self.state.clone();
                let session_id = id.clone();
                let outputs = self.conversation.start(
                    &id,
                    Box::new(move || state.calls.session(&session_id, Transport::Stream)),
                    encoding.rate(),
                    self.output.rate(),
                );
                self.deliver(outputs)
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
                    tracing::debug!(?chunk, "late media frame dropped");
                    return Ok(());
                };
                let mut samples = vec![0i16; lost as usize * frame.len()];
                samples.extend_from_slice(&frame);
                let outputs = self.conversation.push_audio(&samples);
                self.deliver(outputs)
            }
            Incoming::Stop => {
                tracing::info!("media stream stopped");
                self.input = None;
                self.sequencer.reset();
                self.conversation.stop();
                Ok(())
            }
        }
    }

    fn finish(&mut self, ended: &Ended) {
        if ended.is_error() {
            self.state.metrics.error(ended.outcome);
        }
        let reason = ended.why.as_str();
        match &self.call_id {
            Some(id) => {
                self.state.calls.end(id, ended.outcome);
                let status = if ended.is_error() { "failed" } else { "ended" };
                self.state
                    .record("the call end", |h| h.call_ended(id, status, ended.outcome));
                tracing::info!(reason, "media stream call ended");
            }
            None => tracing::info!(reason, "media stream closed before it started"),
        }
    }
}
