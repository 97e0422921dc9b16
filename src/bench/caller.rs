//! A client that behaves like a VoxEngine scenario on the media stream, for the benchmark
//! and the tests: it sends `start`, streams audio in 20 ms frames at real-time pace, and
//! records everything voxd sends back with its arrival time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::audio::Encoding;
use crate::audio::{resample, wav::to_i16, Pcm};
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Sink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;

/// What voxd sent, with when it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub json: Value,
}

pub struct Caller {
    sink: Sink,
    pub encoding: Encoding,
    received: Arc<Mutex<Vec<Received>>>,
    closed: Arc<Mutex<Option<Option<u16>>>>,
    seq: u64,
    chunk: u64,
    timestamp: u64,
    /// When the audio sent so far has played in real time: no frame goes out sooner, across
    /// every [`Caller::stream`] (voxd closes a stream that runs ahead of real time).
    played_until: Option<tokio::time::Instant>,
}

impl Caller {
    /// Connects to `/voximplant/stream` (`query` like "?call_id=x"), with the token as a
    /// Bearer header when one is given.
    pub async fn connect(
        api: std::net::SocketAddr,
        query: &str,
        token: Option<&str>,
    ) -> anyhow::Result<Caller> {
        let mut req = format!("ws://{api}/voximplant/stream{query}").into_client_request()?;
        if let Some(t) = token {
            req.headers_mut()
                .insert("Authorization", format!("Bearer {t}").parse()?);
        }
        let (ws, _) = tokio_tungstenite::connect_async(req).await?;
        let (sink, mut stream) = ws.split();
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let closed: Arc<Mutex<Option<Option<u16>>>> = Arc::default();
        let (r, c) = (received.clone(), closed.clone());
        tokio::spawn(async move {
            while let Some(msg) = stream.next().await {
                match msg {
                    Ok(Message::Text(t)) => {
                        // Anything that is not JSON is kept as a string, for the caller to flag.
                        let json = serde_json::from_str(&t)
                            .unwrap_or_else(|_| Value::String(t.to_string()));
                        r.lock().unwrap_or_else(|p| p.into_inner()).push(Received {
                            at: Instant::now(),
                            json,
                        });
                    }
                    Ok(Message::Close(frame)) => {
                        *c.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some(frame.map(|f| u16::from(f.code)));
                        return;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            c.lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(None);
        });
        Ok(Caller {
            sink,
            encoding: Encoding::Pcm16,
            received,
            closed,
            seq: 0,
            chunk: 0,
            timestamp: 0,
            played_until: None,
        })
    }

    /// Sends a raw text frame.
    pub async fn send_text(&mut self, text: String) -> anyhow::Result<()> {
        Ok(self.sink.send(Message::Text(text.into())).await?)
    }

    /// Sends a raw binary frame (not part of the protocol: voxd counts it as a bad frame).
    pub async fn send_binary(&mut self, bytes: Vec<u8>) -> anyhow::Result<()> {
        Ok(self.sink.send(Message::Binary(bytes.into())).await?)
    }

    /// Sends `start` in `encoding`, tagged `caller` like the scenarios' stream, with
    /// `call_id` in customParameters (as a JSON string, as some scenarios send it).
    pub async fn start(&mut self, encoding: Encoding, call_id: &str) -> anyhow::Result<()> {
        let format = json!({"encoding": encoding.wire_name(), "sampleRate": encoding.rate()});
        self.start_as(encoding, format, call_id).await
    }

    /// [`Self::start`] with `media_format` as the start's `mediaFormat` (another spelling
    /// of `encoding`), streaming in `encoding`.
    pub async fn start_as(
        &mut self,
        encoding: Encoding,
        media_format: Value,
        call_id: &str,
    ) -> anyhow::Result<()> {
        self.encoding = encoding;
        (self.chunk, self.timestamp) = (0, 0);
        let custom = json!({"call_id": call_id}).to_string();
        let msg = json!({"event": "start", "sequenceNumber": self.seq, "tag": "caller", "start": {
            "mediaFormat": media_format, "customParameters": custom}});
        self.seq += 1;
        self.send_text(msg.to_string()).await
    }

    /// Streams audio (any rate) in real time, 20 ms a frame, each frame once the audio
    /// before it has played; returns when the last was sent.
    pub async fn stream(&mut self, pcm: &Pcm) -> anyhow::Result<()> {
        let samples = self.samples(pcm)?;
        let rate = self.encoding.rate();
        for chunk in samples.chunks(rate as usize / 50) {
            let now = tokio::time::Instant::now();
            let at = self.played_until.filter(|t| *t > now).unwrap_or(now);
            tokio::time::sleep_until(at).await;
            self.send_media(chunk).await?;
            let length = Duration::from_secs_f64(chunk.len() as f64 / f64::from(rate));
            self.played_until = Some(at + length);
        }
        Ok(())
    }

    /// Sends audio (any rate) as one media frame at once, unpaced (as a hostile client would).
    pub async fn push(&mut self, pcm: &Pcm) -> anyhow::Result<()> {
        let samples = self.samples(pcm)?;
        self.send_media(&samples).await
    }

    fn samples(&self, pcm: &Pcm) -> anyhow::Result<Vec<i16>> {
        let pcm = resample::to_rate(pcm.clone(), self.encoding.rate())?;
        Ok(pcm.samples.iter().map(|&s| to_i16(s)).collect())
    }

    async fn send_media(&mut self, samples: &[i16]) -> anyhow::Result<()> {
        let payload =
            base64::engine::general_purpose::STANDARD.encode(self.encoding.encode(samples));
        // Numbered across the whole stream, as Voximplant does.
        self.chunk += 1;
        let msg = json!({"event": "media", "sequenceNumber": self.seq,
            "media": {"chunk": self.chunk, "timestamp": self.timestamp, "payload": payload}});
        self.timestamp += samples.len() as u64;
        self.seq += 1;
        self.send_text(msg.to_string()).await
    }

    /// A key the caller pressed, as the scenarios relay `CallEvents.ToneReceived`.
    pub async fn press(&mut self, digit: &str) -> anyhow::Result<()> {
        let msg = json!({"type": "dtmf", "digit": digit});
        self.send_text(msg.to_string()).await
    }

    /// Streams `ms` of silence in real time.
    pub async fn silence(&mut self, ms: u32) -> anyhow::Result<()> {
        let pcm = Pcm {
            samples: vec![0.0; (self.encoding.rate() * ms / 1000) as usize],
            rate: self.encoding.rate(),
        };
        self.stream(&pcm).await
    }

    /// Everything received so far.
    pub fn messages(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The close code, once voxd closed the socket (`Some(None)`: closed without a code).
    pub fn closed(&self) -> Option<Option<u16>> {
        *self.closed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits (streaming silence, as a live call does) until `pred` holds for a message
    /// received after index `from`; returns its index.
    pub async fn wait_for(
        &mut self,
        from: usize,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self
                .messages()
                .iter()
                .skip(from)
                .position(|m| pred(&m.json))
            {
                return Ok(from + i);
            }
            if Instant::now() >= deadline {
                let got: Vec<String> = self
                    .messages()
                    .iter()
                    .skip(from)
                    .map(|m| m.json.to_string().chars().take(120).collect())
                    .collect();
                anyhow::bail!("no {what} within {timeout:?}; got {got:?}");
            }
            if self.silence(100).await.is_err() {
                // voxd closed the socket: what it sent before closing is all there is.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Closes the socket from the client side.
    pub async fn close(mut self) {
        let _ = self.sink.send(Message::Close(None)).await;
    }
}

pub fn is_event(v: &Value, event: &str) -> bool {
    v["event"] == event
}

pub fn is_type(v: &Value, ty: &str) -> bool {
    v["type"] == ty
}

/// Decodes voxd's media frames in `msgs` into one track, checking the stream's rules on
/// the way: `start` first, then `chunk` and `timestamp` increasing.
pub fn decode_media(msgs: &[Received]) -> anyhow::Result<Pcm> {
    let mut encoding = None;
    let mut samples = Vec::new();
    let mut last_chunk = 0;
    let mut last_ts = None;
    for m in msgs {
        if is_event(&m.json, "start") {
            let format = &m.json["start"]["mediaFormat"];
            let enc = format["encoding"].as_str().and_then(Encoding::parse);
            let enc =
                enc.ok_or_else(|| anyhow::anyhow!("start without a known encoding: {}", m.json))?;
            anyhow::ensure!(
                format["sampleRate"].as_u64() == Some(u64::from(enc.rate())),
                "wrong sampleRate: {}",
                m.json
            );
            encoding = Some(enc);
        } else if is_event(&m.json, "media") {
            let enc = encoding.ok_or_else(|| anyhow::anyhow!("media before start"))?;
            let chunk = m.json["media"]["chunk"].as_u64().unwrap_or(0);
            let ts = m.json["media"]["timestamp"].as_u64().unwrap_or(0);
            anyhow::ensure!(chunk > last_chunk, "chunk {chunk} after {last_chunk}");
            anyhow::ensure!(
                last_ts.is_none_or(|t| ts > t),
                "timestamp {ts} after {last_ts:?}"
            );
            last_chunk = chunk;
            last_ts = Some(ts);
            let payload = m.json["media"]["payload"].as_str().unwrap_or_default();
            let bytes = base64::engine::general_purpose::STANDARD.decode(payload)?;
            samples.extend(enc.decode(&bytes).iter().map(|&s| f32::from(s) / 32768.0));
        }
    }
    Ok(Pcm {
        samples,
        rate: encoding.map_or(8000, |e| e.rate()),
    })
}
