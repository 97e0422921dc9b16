//! One media-stream call: the socket's frames decoded for the [`Conversation`] (through the
//! shared [`Driver`] loop), what it says sent back as media frames and transcripts, and the
//! call freed however it ends. The call's logs carry its id (a `call` span). A stream that
//! misbehaves is closed: no `start` in time, or neither a frame nor an answer to voxd's ping
//! for too long (4408; a caller on hold keeps the socket alive), too many bad
//! or binary frames in a row, or audio far faster than real time (1008); a gap in the
//! frames is filled with at most [`MAX_GAP`] of silence; voxd pings every [`PING_EVERY`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use super::protocol::{self, Encoding, FrameError, Incoming, Outgoing};
use super::sequencer::Sequencer;
use super::StreamContext;
use crate::calls::{CallId, CallRecorder, Refused, ToolCall};
use crate::conversation::{Conversation, Output};
use crate::http::drain::Busy;
use crate::metrics::Transport;
use crate::transport::driver::{Driver, Step};

/// Frames voxd may queue for a client before deciding it does not read.
const OUT_QUEUE: usize = 256;
/// A send that blocks this long means the client stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Bad frames in a row after which the stream is closed.
const MAX_BAD_FRAMES: u32 = 100;
/// The most silence one gap in the frames is filled with.
const MAX_GAP: Duration = Duration::from_secs(1);
/// Audio that may arrive ahead of real time (network jitter delivers bursts).
const BURST: Duration = Duration::from_secs(2);
/// Audio dropped for arriving too fast, beyond which the stream is closed.
const MAX_TOO_FAST: Duration = Duration::from_secs(5);
/// How often voxd pings the scenario.
const PING_EVERY: Duration = Duration::from_secs(5);
/// Close code of a stream that went quiet: no `start`, or no frame, in time.
const CLOSE_TIMEOUT: u16 = 4408;

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
            "caller_hangup"
                | "voxd_hangup"
                | "voxd_transfer"
                | "shutdown"
                | "at_capacity"
                | "max_length"
        )
    }
}

pub(super) async fn run(
    socket: WebSocket,
    ctx: Arc<StreamContext>,
    call_id: Option<CallId>,
    test: bool,
    _busy: Busy,
) {
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
    let conversation = Conversation::new(ctx.assistant.clone(), ctx.settings.clone());
    let mut driver = Driver::new(conversation, ctx.assistant.clone());
    let mut stop = ctx.drain.stop_signal();
    let mut call = Call::new(ctx, out_tx);
    call.test = test;
    // A call named in the URL is checked now and opened at `start`: a socket that never
    // starts holds no place.
    let admitted = match call_id {
        Some(id) => call.check(id),
        None => Ok(()),
    };
    let reason = if let Err(refused) = admitted {
        refused
    } else {
        loop {
            let step = driver
                .next(async {
                    tokio::select! {
                        msg = incoming.next() => Some(msg),
                        _ = stop.wait_for(|stop| *stop) => None,
                    }
                })
                .await;
            let result = match step {
                Step::Tick(outputs) => call
                    .deliver(outputs)
                    .and_then(|()| call.check_time(Instant::now())),
                Step::Update(outputs) => call.deliver(outputs),
                Step::Input(Some(msg)) => match msg {
                    Some(Ok(Message::Text(text))) => {
                        call.last_heard = Instant::now();
                        call.on_text(&text, &mut driver.conversation)
                    }
                    Some(Ok(Message::Binary(b))) => call.bad_frame(&format!(
                        "binary frame of {} bytes (the protocol is JSON text)",
                        b.len()
                    )),
                    // The client answers voxd's pings: it is there, on hold or silent.
                    Some(Ok(Message::Pong(_))) => {
                        call.last_heard = Instant::now();
                        Ok(())
                    }
                    Some(Ok(Message::Close(_))) | None => Err(Ended::new(
                        "caller_hangup",
                        "the scenario closed the socket",
                    )),
                    Some(Ok(_)) => Ok(()),
                    Some(Err(e)) => Err(Ended::new("socket_error", format!("socket error: {e}"))),
                },
                Step::Input(None) => {
                    call.close(1001, "voxd is shutting down");
                    Err(Ended::new(
                        "shutdown",
                        "voxd is shutting down (grace period over)",
                    ))
                }
            };
            if let Err(reason) = result {
                break reason;
            }
        }
    };
    call.finish(&reason);
    drop(driver);
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
    ctx: Arc<StreamContext>,
    /// The call, once `start` came.
    recorder: Option<Arc<CallRecorder>>,
    /// The call's id from the URL, until `start` opens it.
    named: Option<CallId>,
    out: mpsc::Sender<Message>,
    /// The caller's encoding, once `start` came.
    input: Option<Encoding>,
    output: Encoding,
    sequencer: Sequencer,
    frames: Outgoing,
    /// A console test call (opened with a ticket).
    test: bool,
    bad_frames: u32,
    /// Whether `start` came; when the socket opened, when the client last sent a (text)
    /// frame, and when voxd last pinged it.
    started: bool,
    opened: Instant,
    last_heard: Instant,
    last_ping: Instant,
    /// The caller's audio since `start`: when it started, how much came, how much was
    /// dropped for coming faster than real time.
    audio_since: Instant,
    audio_received: Duration,
    audio_dropped: Duration,
    /// The keys the caller pressed lately (a bound on the replies they start).
    keys: KeyRate,
}

/// At most [`KeyRate::MAX`] keys in [`KeyRate::WINDOW`].
struct KeyRate {
    window_start: Instant,
    count: u32,
}

impl KeyRate {
    const MAX: u32 = 20;
    const WINDOW: Duration = Duration::from_secs(10);

    fn admit(&mut self, now: Instant) -> bool {
        if now.duration_since(self.window_start) >= Self::WINDOW {
            (self.window_start, self.count) = (now, 0);
        }
        self.count += 1;
        self.count <= Self::MAX
    }
}

impl Call {
    fn new(ctx: Arc<StreamContext>, out: mpsc::Sender<Message>) -> Self {
        Self {
            frames: Outgoing::new(ctx.tag.clone()),
            ctx,
            recorder: None,
            named: None,
            out,
            input: None,
            output: Encoding::Pcm16,
            sequencer: Sequencer::default(),
            test: false,
            bad_frames: 0,
            started: false,
            opened: Instant::now(),
            last_heard: Instant::now(),
            last_ping: Instant::now(),
            audio_since: Instant::now(),
            audio_received: Duration::ZERO,
            audio_dropped: Duration::ZERO,
            keys: KeyRate {
                window_start: Instant::now(),
                count: 0,
            },
        }
    }

    /// Closes a stream that went quiet (no `start`, or no frame, in time); pings the client
    /// now and then.
    fn check_time(&mut self, now: Instant) -> Result<(), Ended> {
        let (start, idle) = (self.ctx.start_timeout, self.ctx.idle_timeout);
        let quiet = if !self.started && now.duration_since(self.opened) >= start {
            Some(format!("no start within {} s", start.as_secs()))
        } else if now.duration_since(self.last_heard) >= idle {
            Some(format!("no frame for {} s", idle.as_secs()))
        } else {
            None
        };
        let longest = self.ctx.calls.max_call();
        if self.started && now.duration_since(self.opened) >= longest {
            let why = format!(
                "the call lasted {} s, the longest allowed",
                longest.as_secs()
            );
            self.close(1000, &why);
            return Err(Ended::new("max_length", why));
        }
        if let Some(why) = quiet {
            self.close(CLOSE_TIMEOUT, &why);
            return Err(Ended::new("stream_timeout", why));
        }
        if now.duration_since(self.last_ping) >= PING_EVERY {
            self.last_ping = now;
            self.send(Message::Ping(Vec::new().into()))?;
        }
        Ok(())
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

    /// Queues a close frame (what follows it is not sent); the reason is cut to the 123
    /// bytes a close frame holds.
    fn close(&self, code: u16, reason: &str) {
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let _ = self.send(Message::Close(Some(CloseFrame {
            code,
            reason: reason[..end].to_string().into(),
        })));
    }

    /// Sends what the conversation says, in the scenario's protocol.
    fn deliver(&mut self, outputs: Vec<Output>) -> Result<(), Ended> {
        for output in outputs {
            match output {
                Output::Heard { text, .. } if !text.is_empty() => {
                    self.send_text(protocol::transcript("user", &text, None))?;
                }
                Output::Tool(ToolCall::SendDigits(digits)) => {
                    self.send_text(protocol::send_digits(&digits))?;
                }
                Output::Heard { .. } | Output::Replying(_) | Output::Tool(_) => {}
                Output::AudioStart => {
                    let start = self.frames.start(self.output);
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
                Output::Clear => self.send_text(protocol::clear())?,
                Output::Said {
                    text, latency_ms, ..
                } => {
                    self.send_text(protocol::transcript("assistant", &text, latency_ms))?;
                }
                Output::Transfer => {
                    let to = self.ctx.operator_phone.clone();
                    self.send_text(protocol::transfer(&to))?;
                    self.close(1000, "call transferred");
                    return Err(Ended::new("voxd_transfer", format!("transferred to {to}")));
                }
                Output::Hangup => {
                    self.send_text(protocol::hangup())?;
                    self.close(1000, "call ended");
                    return Err(Ended::new("voxd_hangup", "voxd ended the call"));
                }
            }
        }
        Ok(())
    }

    fn on_text(&mut self, text: &str, conversation: &mut Conversation) -> Result<(), Ended> {
        match protocol::parse(text) {
            Ok(frame) => {
                self.bad_frames = 0;
                self.on_frame(frame, conversation)
            }
            Err(FrameError::Fatal(what)) => {
                let what: String = what.chars().take(200).collect();
                crate::http::warn_budget::warn(
                    "unsupported_encoding",
                    &format!("unsupported media format {what}"),
                );
                self.close(1003, &format!("unsupported encoding {what}"));
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
        // What a client sent may be long and is its own: a part of it, within the budget.
        let why: String = why.chars().take(200).collect();
        crate::http::warn_budget::warn("bad_frame", &format!("frame ignored: {why}"));
        if self.bad_frames >= MAX_BAD_FRAMES {
            self.close(1008, "too many bad frames");
            return Err(Ended::new(
                "bad_frames",
                format!("{MAX_BAD_FRAMES} bad frames in a row"),
            ));
        }
        Ok(())
    }

    /// The call's recorder: the one named in the URL, else the `start` frame's
    /// `customParameters.call_id`, else a new `ws-…` id.
    fn recorder(
        &mut self,
        custom: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Arc<CallRecorder>, Ended> {
        if let Some(r) = &self.recorder {
            return Ok(r.clone());
        }
        let id = match (
            self.named.take(),
            custom.get("call_id").and_then(|v| v.as_str()),
        ) {
            (Some(id), _) => id,
            (None, Some(id)) => CallId::parse(id).map_err(|e| {
                self.close(1008, "invalid call_id");
                Ended::new("invalid_call_id", format!("customParameters.call_id: {e}"))
            })?,
            (None, None) => CallId::random("ws-"),
        };
        tracing::Span::current().record("call_id", id.as_str());
        self.admit(id)
    }

    /// Whether the call named in the URL may start (see [`Self::admit`]); it is kept for
    /// `start`.
    fn check(&mut self, id: CallId) -> Result<(), Ended> {
        if let Err(refused) = self.ctx.calls.check_room(&id, Transport::Stream) {
            return Err(self.refuse(refused));
        }
        if self.ctx.calls.find(&id).is_some_and(|c| c.has_stream()) {
            return Err(self.in_use(&id));
        }
        self.named = Some(id);
        Ok(())
    }

    /// Refuses a second stream for a call another one carries (1008).
    fn in_use(&mut self, id: &CallId) -> Ended {
        self.close(1008, "call_id is in use by another media stream");
        Ended::new(
            "call_in_use",
            format!("call {id} already has a media stream"),
        )
    }

    /// Tells the scenario why its call is not served and closes the stream: busy (1013,
    /// "try again later"), or an ended call (1008).
    fn refuse(&mut self, refused: Refused) -> Ended {
        match refused {
            Refused::Full(full) => {
                let busy = protocol::busy(self.ctx.retry_after_secs, &self.ctx.operator_phone);
                let _ = self.send_text(busy);
                self.close(1013, "voxd is at capacity");
                Ended::new("at_capacity", full.to_string())
            }
            ended @ Refused::Ended(_) => {
                self.close(1008, "the call has ended");
                Ended::new("call_ended", ended.to_string())
            }
        }
    }

    /// Opens the call if voxd has room for it and it has not ended; otherwise refuses it
    /// ([`Self::refuse`]).
    fn admit(&mut self, id: CallId) -> Result<Arc<CallRecorder>, Ended> {
        match self.ctx.calls.admit(&id, Transport::Stream, self.test) {
            Ok(recorder) if recorder.transport() != Transport::Stream => {
                self.close(1008, "call_id names a recording-mode call");
                Err(Ended::new(
                    "call_in_use",
                    format!("call {id} is a recording-mode call"),
                ))
            }
            Ok(recorder) if !recorder.attach_stream() => Err(self.in_use(&id)),
            Ok(recorder) => {
                self.recorder = Some(recorder.clone());
                Ok(recorder)
            }
            Err(refused) => Err(self.refuse(refused)),
        }
    }

    fn on_frame(&mut self, frame: Incoming, conversation: &mut Conversation) -> Result<(), Ended> {
        match frame {
            Incoming::Start {
                encoding,
                tag,
                custom,
            } => {
                let recorder = self.recorder(&custom)?;
                // The audio's real-time budget runs from the first start: a start sent again
                // does not renew it (audio far ahead of real time stays refused).
                if !self.started {
                    (self.audio_since, self.audio_received) = (Instant::now(), Duration::ZERO);
                }
                self.started = true;
                self.input = Some(encoding);
                self.sequencer.reset();
                self.output = self.ctx.output.unwrap_or(encoding);
                // The tag is the scenario's own text: at most its first 64 characters.
                let tag: String = tag.as_deref().unwrap_or("").chars().take(64).collect();
                tracing::info!(encoding = encoding.wire_name(), tag, "media stream started");
                let outputs = conversation.start(
                    recorder,
                    encoding.rate(),
                    self.output.rate(),
                    Instant::now(),
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
                let rate = encoding.rate() as usize;
                let gap =
                    (lost as usize * frame.len()).min(rate * MAX_GAP.as_millis() as usize / 1000);
                let mut samples = vec![0i16; gap];
                samples.extend_from_slice(&frame);
                let length = Duration::from_secs_f64(samples.len() as f64 / rate as f64);
                if self.too_fast(length)? {
                    return Ok(());
                }
                let outputs = conversation.push_audio(&samples, Instant::now());
                self.deliver(outputs)
            }
            Incoming::Dtmf(key) => {
                if !self.started {
                    return self.bad_frame("dtmf before start");
                }
                if !self.keys.admit(Instant::now()) {
                    return self.bad_frame("more than 20 keys in 10 s");
                }
                let outputs = conversation.pressed(key, Instant::now());
                self.deliver(outputs)
            }
            Incoming::Stop => {
                tracing::info!("media stream stopped");
                self.input = None;
                self.sequencer.reset();
                conversation.stop();
                Ok(())
            }
        }
    }

    /// Whether `length` more audio comes faster than real time beyond the burst allowance
    /// (it is dropped then); past [`MAX_TOO_FAST`] of dropped audio the stream is closed.
    fn too_fast(&mut self, length: Duration) -> Result<bool, Ended> {
        let allowed = self.audio_since.elapsed() + BURST;
        if self.audio_received + length <= allowed {
            self.audio_received += length;
            return Ok(false);
        }
        self.audio_dropped += length;
        if self.audio_dropped > MAX_TOO_FAST {
            self.close(1008, "audio faster than real time");
            return Err(Ended::new(
                "too_fast",
                format!("more than {MAX_TOO_FAST:?} of audio ahead of real time"),
            ));
        }
        Ok(true)
    }

    fn finish(&mut self, ended: &Ended) {
        let metrics = &self.ctx.calls.log().metrics;
        if ended.is_error() {
            metrics.error(ended.outcome);
        }
        let reason = ended.why.as_str();
        match &self.recorder {
            Some(call) => {
                call.detach_stream();
                self.ctx.calls.end(call.id(), ended.outcome);
                let status = if ended.is_error() { "failed" } else { "ended" };
                call.ended(status, ended.outcome);
                tracing::info!(reason, "media stream call ended");
            }
            None => tracing::info!(reason, "media stream closed before it started"),
        }
    }
}
