//! A test client that behaves like a VoxEngine scenario on the media stream: it sends
//! `start`, streams audio in 20 ms frames at real-time pace, and records everything voxd
//! sends back with its arrival time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use voxd::audio::{resample, wav::to_i16, Pcm};
use voxd::stream::protocol::Encoding;

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
    pub received: Arc<Mutex<Vec<Received>>>,
    pub closed: Arc<Mutex<Option<Option<u16>>>>,
    seq: u64,
}

impl Caller {
    /// Connects to `/voximplant/stream` with the token header.
    pub async fn connect(api: std::net::SocketAddr, query: &str) -> Caller {
        let mut req = format!("ws://{api}/voximplant/stream{query}")
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("Authorization", super::auth().parse().unwrap());
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("websocket connects");
        let (sink, mut stream) = ws.split();
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let closed: Arc<Mutex<Option<Option<u16>>>> = Arc::default();
        let (r, c) = (received.clone(), closed.clone());
        tokio::spawn(async move {
            while let Some(msg) = stream.next().await {
                match msg {
                    Ok(Message::Text(t)) => {
                        let json = serde_json::from_str(&t).expect("voxd sends JSON");
                        r.lock().unwrap().push(Received {
                            at: Instant::now(),
                            json,
                        });
                    }
                    Ok(Message::Close(frame)) => {
                        *c.lock().unwrap() = Some(frame.map(|f| u16::from(f.code)));
                        return;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            c.lock().unwrap().get_or_insert(None);
        });
        Caller {
            sink,
            encoding: Encoding::Pcm16,
            received,
            closed,
            seq: 0,
        }
    }

    pub async fn send_text(&mut self, text: String) {
        self.sink.send(Message::Text(text.into())).await.unwrap();
    }

    /// Sends `start` in `encoding`, with `call_id` in customParameters (as a JSON string,
    /// as some scenarios send it).
    pub async fn start(&mut self, encoding: Encoding, call_id: &str) {
        self.encoding = encoding;
        let custom = json!({"call_id": call_id}).to_string();
        let msg = json!({"event": "start", "sequenceNumber": self.seq, "start": {
            "mediaFormat": {"encoding": encoding.wire_name(), "sampleRate": encoding.rate()},
            "customParameters": custom}});
        self.seq += 1;
        self.send_text(msg.to_string()).await;
    }

    /// Streams audio (any rate) in real time, 20 ms a frame; returns when the last was sent.
    pub async fn stream(&mut self, pcm: &Pcm) {
        let rate = self.encoding.rate();
        let pcm = resample::to_rate(pcm.clone(), rate).unwrap();
        let samples: Vec<i16> = pcm.samples.iter().map(|&s| to_i16(s)).collect();
        let frame = rate as usize / 50;
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for (i, chunk) in samples.chunks(frame).enumerate() {
            tick.tick().await;
            let payload =
                base64::engine::general_purpose::STANDARD.encode(self.encoding.encode(chunk));
            let msg = json!({"event": "media", "sequenceNumber": self.seq,
                "media": {"chunk": i + 1, "timestamp": i * frame, "payload": payload}});
            self.seq += 1;
            self.send_text(msg.to_string()).await;
        }
    }

    /// Streams `ms` of silence in real time.
    pub async fn silence(&mut self, ms: u32) {
        let pcm = Pcm {
            samples: vec![0.0; (self.encoding.rate() * ms / 1000) as usize],
            rate: self.encoding.rate(),
        };
        self.stream(&pcm).await;
    }

    pub fn messages(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (streaming silence, as a live call does) until `pred` holds for a message
    /// received after index `from`; returns its index.
    pub async fn wait_for(
        &mut self,
        from: usize,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self
                .messages()
                .iter()
                .skip(from)
                .position(|m| pred(&m.json))
            {
                return from + i;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {timeout:?}; got {:?}",
                self.messages()
                    .iter()
                    .skip(from)
                    .map(|m| m.json.to_string().chars().take(120).collect::<String>())
                    .collect::<Vec<_>>()
            );
            self.silence(100).await;
        }
    }

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

/// Decodes voxd's media frames in `msgs` into one PCM track (checks numbering on the way).
pub fn decode_media(msgs: &[Received]) -> Pcm {
    let mut encoding = None;
    let mut samples = Vec::new();
    let mut last_chunk = 0;
    let mut last_ts = None;
    for m in msgs {
        if is_event(&m.json, "start") {
            let name = m.json["start"]["mediaFormat"]["encoding"].as_str().unwrap();
            encoding = Encoding::parse(name);
            assert_eq!(
                m.json["start"]["mediaFormat"]["sampleRate"].as_u64(),
                encoding.map(|e| u64::from(e.rate()))
            );
        } else if is_event(&m.json, "media") {
            let enc = encoding.expect("media before start");
            let chunk = m.json["media"]["chunk"].as_u64().unwrap();
            let ts = m.json["media"]["timestamp"].as_u64().unwrap();
            assert!(chunk > last_chunk, "chunks must increase");
            assert!(last_ts.is_none_or(|t| ts > t), "timestamps must increase");
            last_chunk = chunk;
            last_ts = Some(ts);
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(m.json["media"]["payload"].as_str().unwrap())
                .unwrap();
            samples.extend(enc.decode(&bytes).iter().map(|&s| f32::from(s) / 32768.0));
        }
    }
    Pcm {
        samples,
        rate: encoding.map_or(8000, |e| e.rate()),
    }
}
