//! Voximplant's media-stream wire format (JSON text frames, base64 audio) and voxd's own
//! control messages to the scenario (which use `type`, never `event`).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Map, Value};

pub use crate::audio::Encoding;

/// A frame from the scenario, as far as voxd cares.
#[derive(Debug, PartialEq)]
pub enum Incoming {
    Start {
        encoding: Encoding,
        tag: Option<String>,
        custom: Map<String, Value>,
    },
    Media {
        samples_b64: String,
        chunk: Option<u64>,
        timestamp: Option<u64>,
    },
    Stop,
    /// `{"type":"dtmf","digit":"5"}`: a key the caller pressed (the scenario relays
    /// `CallEvents.ToneReceived`): 0-9, *, #, A-D.
    Dtmf(char),
}

/// Why a frame was not understood. `Fatal` ends the stream; others are skipped.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FrameError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("unknown event {0:?}")]
    UnknownEvent(String),
    #[error("malformed {0} frame: {1}")]
    Malformed(&'static str, String),
    #[error(
        "{0} (voxd takes PCM8, PCM16 or audio/l16 at 8 or 16 kHz, ULAW/PCMU or ALAW/PCMA at 8 kHz)"
    )]
    Fatal(String),
}

/// Parses one text frame.
pub fn parse(text: &str) -> Result<Incoming, FrameError> {
    let v: Value = serde_json::from_str(text).map_err(|e| FrameError::NotJson(e.to_string()))?;
    if v.get("type").and_then(Value::as_str) == Some("dtmf") {
        let digit = v.get("digit").and_then(Value::as_str).unwrap_or_default();
        return crate::conversation::keypad::key(digit)
            .map(Incoming::Dtmf)
            .ok_or_else(|| {
                let digit: String = digit.chars().take(20).collect();
                FrameError::Malformed("dtmf", format!("{digit:?} is not a key (0-9, *, #, A-D)"))
            });
    }
    let event = v.get("event").and_then(Value::as_str).unwrap_or_default();
    match event {
        "start" => {
            let start = v.get("start").unwrap_or(&Value::Null);
            let format = start.get("mediaFormat").or_else(|| v.get("mediaFormat"));
            let encoding = start_encoding(format)?;
            let tag = [&v, start]
                .iter()
                .find_map(|o| o.get("tag"))
                .and_then(Value::as_str)
                .map(String::from);
            let custom = match start
                .get("customParameters")
                .or_else(|| v.get("customParameters"))
            {
                Some(Value::Object(m)) => m.clone(),
                Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_default(),
                _ => Map::new(),
            };
            Ok(Incoming::Start {
                encoding,
                tag,
                custom,
            })
        }
        "media" => {
            let media = v
                .get("media")
                .ok_or_else(|| FrameError::Malformed("media", "no media object".into()))?;
            let payload = media
                .get("payload")
                .and_then(Value::as_str)
                .ok_or_else(|| FrameError::Malformed("media", "no payload".into()))?;
            let number = |k: &str| {
                media
                    .get(k)
                    .and_then(|n| n.as_u64().or_else(|| n.as_str()?.parse().ok()))
            };
            Ok(Incoming::Media {
                samples_b64: payload.to_string(),
                chunk: number("chunk"),
                timestamp: number("timestamp"),
            })
        }
        "stop" => Ok(Incoming::Stop),
        other => Err(FrameError::UnknownEvent(other.to_string())),
    }
}

/// The caller's encoding from `start.mediaFormat`: its `encoding` in any of Voximplant's
/// forms (a MIME type too), at the rate `sampleRate` (or the MIME type's `rate=`) says.
fn start_encoding(format: Option<&Value>) -> Result<Encoding, FrameError> {
    let Some(name) = format
        .and_then(|f| f.get("encoding"))
        .and_then(Value::as_str)
    else {
        return Err(FrameError::Malformed(
            "start",
            "no start.mediaFormat.encoding".into(),
        ));
    };
    let encoding = Encoding::parse(name).ok_or_else(|| FrameError::Fatal(format!("{name:?}")))?;
    let param_rate = name
        .split(';')
        .skip(1)
        .find_map(|p| p.trim().strip_prefix("rate=")?.parse().ok());
    let rate = format
        .and_then(|f| f.get("sampleRate"))
        .and_then(|r| r.as_u64().or_else(|| r.as_str()?.parse().ok()))
        .or(param_rate);
    match rate {
        None => Ok(encoding),
        Some(rate) => u32::try_from(rate)
            .ok()
            .and_then(|r| encoding.at_rate(r))
            .ok_or_else(|| FrameError::Fatal(format!("{name:?} at {rate} Hz"))),
    }
}

/// Decodes a media payload.
pub fn payload(b64: &str, encoding: Encoding) -> Result<Vec<i16>, FrameError> {
    let bytes = B64
        .decode(b64)
        .map_err(|e| FrameError::Malformed("media", format!("payload is not base64: {e}")))?;
    Ok(encoding.decode(&bytes))
}

/// Builds voxd's outgoing media-stream frames, numbering them and tagging each with `tag`
/// (none: Voximplant's default stream).
#[derive(Debug, Default)]
pub struct Outgoing {
    tag: Option<String>,
    sequence: u64,
    chunk: u64,
    timestamp: u64,
}

impl Outgoing {
    pub fn new(tag: Option<String>) -> Self {
        Self {
            tag,
            ..Self::default()
        }
    }

    fn tagged(&self, mut v: Value) -> String {
        if let Some(tag) = &self.tag {
            v["tag"] = json!(tag);
        }
        v.to_string()
    }

    fn next_seq(&mut self) -> u64 {
        let s = self.sequence;
        self.sequence += 1;
        s
    }

    pub fn start(&mut self, encoding: Encoding) -> String {
        let v = json!({"event": "start", "sequenceNumber": self.next_seq(),
            "start": {"mediaFormat": {"encoding": encoding.wire_name(), "sampleRate": encoding.rate()}}});
        self.tagged(v)
    }

    pub fn media(&mut self, encoding: Encoding, samples: &[i16]) -> String {
        self.chunk += 1;
        let v = json!({"event": "media", "sequenceNumber": self.next_seq(),
            "media": {"chunk": self.chunk, "timestamp": self.timestamp, "payload": B64.encode(encoding.encode(samples))}});
        self.timestamp += samples.len() as u64;
        self.tagged(v)
    }

    pub fn stop(&mut self) -> String {
        let v = json!({"event": "stop", "sequenceNumber": self.next_seq()});
        self.tagged(v)
    }
}

/// `{"type":"busy"}`: voxd is at capacity and refuses this new call (close code 1013 next);
/// `transfer_to` is the operator the scenario may hand the caller to (omitted when none).
pub fn busy(retry_after_secs: u32, transfer_to: &str) -> String {
    let mut msg = json!({"type": "busy", "retry_after_secs": retry_after_secs});
    if !transfer_to.is_empty() {
        msg["transfer_to"] = json!(transfer_to);
    }
    msg.to_string()
}

/// `{"type":"clear"}`: the scenario drops audio queued for the call.
pub fn clear() -> String {
    json!({"type": "clear"}).to_string()
}

/// `{"type":"send_digits","digits":"1#"}`: the scenario presses these keys on the call
/// (`call.sendDigits`), e.g. in another company's menu.
pub fn send_digits(digits: &str) -> String {
    json!({"type": "send_digits", "digits": digits}).to_string()
}

/// `{"type":"hangup"}`: the scenario ends the call.
pub fn hangup() -> String {
    json!({"type": "hangup"}).to_string()
}

/// `{"type":"transfer","to":"+7…"}`: the scenario connects the caller to this number and
/// stops streaming to voxd.
pub fn transfer(to: &str) -> String {
    json!({"type": "transfer", "to": to}).to_string()
}

/// `{"type":"transcript","role","text","final"}` (+ `latency_ms` for assistant turns).
pub fn transcript(role: &str, text: &str, latency_ms: Option<f64>) -> String {
    let mut v = json!({"type": "transcript", "role": role, "text": text, "final": true});
    if let Some(ms) = latency_ms {
        v["latency_ms"] = json!(ms);
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_start_with_tag_and_custom_parameters_anywhere() {
        let a = parse(r#"{"event":"start","sequenceNumber":0,"start":{"mediaFormat":{"encoding":"PCM16","sampleRate":16000},"customParameters":"{\"call_id\":\"c1\"}"},"tag":"t"}"#).unwrap();
        let Incoming::Start {
            encoding,
            tag,
            custom,
        } = a
        else {
            panic!()
        };
        assert_eq!((encoding, tag.as_deref()), (Encoding::Pcm16, Some("t")));
        assert_eq!(custom["call_id"], "c1");
        let b = parse(r#"{"event":"start","start":{"tag":"in","mediaFormat":{"encoding":"ulaw"},"customParameters":{"call_id":"c2"}}}"#).unwrap();
        let Incoming::Start {
            encoding,
            tag,
            custom,
        } = b
        else {
            panic!()
        };
        assert_eq!((encoding, tag.as_deref()), (Encoding::Ulaw, Some("in")));
        assert_eq!(custom["call_id"], "c2");
    }

    #[test]
    fn rejects_what_it_cannot_play() {
        assert!(matches!(
            parse(r#"{"event":"start","start":{"mediaFormat":{"encoding":"OPUS"}}}"#),
            Err(FrameError::Fatal(_))
        ));
        let at_44k =
            r#"{"event":"start","start":{"mediaFormat":{"encoding":"PCM16","sampleRate":44100}}}"#;
        let err = parse(at_44k).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("\"PCM16\" at 44100 Hz (voxd takes"),
            "{err}"
        );
        let err = parse(r#"{"event":"start","start":{"mediaFormat":{"encoding":"audio/opus"}}}"#)
            .unwrap_err();
        assert!(
            err.to_string().starts_with("\"audio/opus\" (voxd takes"),
            "{err}"
        );
        for bad in [
            r#"{"type":"dtmf","digit":"12"}"#,
            r#"{"type":"dtmf"}"#,
            r#"{"type":"dtmf","digit":"x"}"#,
        ] {
            assert!(
                matches!(parse(bad), Err(FrameError::Malformed("dtmf", _))),
                "{bad}"
            );
        }
        assert!(matches!(parse("{nope"), Err(FrameError::NotJson(_))));
        assert!(matches!(
            parse(r#"{"event":"dance"}"#),
            Err(FrameError::UnknownEvent(_))
        ));
        assert!(matches!(
            parse(r#"{"event":"media","media":{}}"#),
            Err(FrameError::Malformed(..))
        ));
        assert!(payload("@@not base64@@", Encoding::Pcm8).is_err());
    }

    #[test]
    fn the_rate_decides_linear_pcm_and_mime_forms_are_read() {
        let start = |format: &str| match parse(&format!(
            r#"{{"event":"start","start":{{"mediaFormat":{format}}},"unknown":{{"x":1}}}}"#
        )) {
            Ok(Incoming::Start { encoding, .. }) => encoding,
            other => panic!("{format}: {other:?}"),
        };
        assert_eq!(
            start(r#"{"encoding":"PCM16","sampleRate":8000}"#),
            Encoding::Pcm8
        );
        assert_eq!(
            start(r#"{"encoding":"PCM16","sampleRate":"16000"}"#),
            Encoding::Pcm16
        );
        assert_eq!(
            start(r#"{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}"#),
            Encoding::Ulaw
        );
        assert_eq!(start(r#"{"encoding":"audio/PCMA"}"#), Encoding::Alaw);
        assert_eq!(
            start(r#"{"encoding":"audio/l16;rate=8000"}"#),
            Encoding::Pcm8
        );
        assert_eq!(
            start(r#"{"encoding":"audio/L16","sampleRate":16000}"#),
            Encoding::Pcm16
        );
        assert_eq!(
            parse(r##"{"type":"dtmf","digit":"#","extra":true}"##),
            Ok(Incoming::Dtmf('#'))
        );
        assert_eq!(
            parse(r#"{"type":"dtmf","digit":"b"}"#),
            Ok(Incoming::Dtmf('B'))
        );
    }

    #[test]
    fn media_numbers_may_be_strings_and_outgoing_counts_up() {
        let m =
            parse(r#"{"event":"media","media":{"chunk":"3","timestamp":480,"payload":"AAA="}}"#)
                .unwrap();
        assert_eq!(
            m,
            Incoming::Media {
                samples_b64: "AAA=".into(),
                chunk: Some(3),
                timestamp: Some(480)
            }
        );
        let mut out = Outgoing::default();
        let s: Value = serde_json::from_str(&out.start(Encoding::Ulaw)).unwrap();
        assert_eq!(s["start"]["mediaFormat"]["sampleRate"], 8000);
        assert!(s.get("tag").is_none(), "untagged by default: {s}");
        let m1: Value = serde_json::from_str(&out.media(Encoding::Ulaw, &[0; 160])).unwrap();
        let m2: Value = serde_json::from_str(&out.media(Encoding::Ulaw, &[0; 160])).unwrap();
        assert_eq!(
            (m1["media"]["chunk"].as_u64(), m2["media"]["chunk"].as_u64()),
            (Some(1), Some(2))
        );
        assert_eq!(
            (
                m1["media"]["timestamp"].as_u64(),
                m2["media"]["timestamp"].as_u64()
            ),
            (Some(0), Some(160))
        );
        assert_eq!(m2["sequenceNumber"], 2);
        let bytes = B64
            .decode(m1["media"]["payload"].as_str().unwrap())
            .unwrap();
        assert_eq!(bytes.len(), 160);
    }

    #[test]
    fn a_configured_tag_is_on_every_outgoing_frame() {
        let mut out = Outgoing::new(Some("voxd".into()));
        for frame in [
            out.start(Encoding::Pcm16),
            out.media(Encoding::Pcm16, &[0; 320]),
            out.stop(),
        ] {
            let v: Value = serde_json::from_str(&frame).unwrap();
            assert_eq!(v["tag"], "voxd", "{v}");
        }
    }

    #[test]
    fn pcm_is_little_endian() {
        assert_eq!(Encoding::Pcm16.encode(&[1, -2]), vec![1, 0, 0xFE, 0xFF]);
        assert_eq!(Encoding::Pcm8.decode(&[1, 0, 0xFE, 0xFF, 7]), vec![1, -2]);
    }
}
