//! How conversations behave (`[conversation]`: greeting, turn detection, barge-in, the
//! reply pipeline; `[dtmf]`: the keys the caller presses) and how Voximplant's media stream
//! carries them (`[voximplant_stream]`: encoding, playout lead, frame size). The first and
//! last replace the old `[stream]` section, whose keys still work for one release
//! ([`legacy`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::audio::Encoding;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConversationConfig {
    pub greeting: String,
    pub vad_mode: u8,
    pub min_speech_ms: u32,
    pub end_of_turn_ms: u32,
    pub speculate_ms: u32,
    pub transcribe_while_speaking_ms: u32,
    pub end_of_turn_complete_ms: u32,
    pub end_of_turn_unfinished_ms: u32,
    /// The end-of-turn model's probability at or above which the caller has finished.
    pub end_of_turn_threshold: f32,
    pub barge_in: bool,
    pub barge_in_min_ms: u32,
    /// Speech over voxd shorter than this may be a backchannel: voxd talks on while it is
    /// heard out.
    pub backchannel_ms: u32,
    /// What counts as a backchannel (every language's in one list).
    pub backchannels: Vec<String>,
    /// How long after an interruption that held no words (or only a backchannel) voxd may
    /// resume the reply it cut; 0: never.
    pub resume_within_ms: u32,
    pub max_turn_secs: u32,
    pub pipeline: Pipeline,
    pub first_clause_words: u32,
    /// Whether a call is answered in the language Whisper hears (`"auto"`) or always with
    /// the base keys (`""`, the default).
    pub language: CallLanguage,
}

impl Default for ConversationConfig {
    fn default() -> Self {
        Self {
            greeting: "Hello! How can I help you?".into(),
            vad_mode: 3,
            min_speech_ms: 200,
            end_of_turn_ms: 500,
            speculate_ms: 200,
            transcribe_while_speaking_ms: 1000,
            end_of_turn_complete_ms: 300,
            end_of_turn_unfinished_ms: 1000,
            end_of_turn_threshold: 0.5,
            barge_in: true,
            barge_in_min_ms: 300,
            backchannel_ms: 350,
            backchannels: crate::conversation::backchannel::Backchannels::builtin(),
            resume_within_ms: 2000,
            max_turn_secs: 30,
            pipeline: Pipeline::Streaming,
            first_clause_words: 4,
            language: CallLanguage::Base,
        }
    }
}

/// How a real-time reply is voiced (`conversation.pipeline`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pipeline {
    /// Piece by piece while the LLM writes (the default).
    #[default]
    Streaming,
    /// The whole reply at once, after the LLM (for comparison).
    Sequential,
}

/// Which words a call is answered with (`conversation.language`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallLanguage {
    /// The base keys, whatever the caller speaks (`""`, the default).
    #[default]
    #[serde(rename = "")]
    Base,
    /// The words of the language Whisper hears (`"auto"`, see `[languages.<code>]`).
    #[serde(rename = "auto")]
    Auto,
}

/// `[dtmf]`: the keys the caller presses (relayed by the scenarios from
/// `CallEvents.ToneReceived`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DtmfConfig {
    /// What the model reads for a run of keys; `{keys}` becomes them ("1 2 3").
    pub text: String,
    /// Keys pressed less than this apart are one run, read once the caller stops (or
    /// presses `#`).
    pub gap_ms: u64,
    /// Keys that act at once, without the model, when pressed first: `"operator"` (transfer
    /// to `tools.operator_phone`) or `"hangup"`.
    pub actions: BTreeMap<String, KeyAction>,
}

impl Default for DtmfConfig {
    fn default() -> Self {
        Self {
            text: "(The caller pressed {keys} on the phone keypad.)".into(),
            gap_ms: 1500,
            actions: BTreeMap::new(),
        }
    }
}

/// What a mapped key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyAction {
    /// Transfer the caller to `tools.operator_phone`.
    Operator,
    /// End the call.
    Hangup,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VoximplantStreamConfig {
    pub encoding: StreamEncoding,
    pub lead_ms: u32,
    pub max_frame_bytes: u32,
    pub start_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    /// The tag on voxd's outgoing `start`/`media` frames; empty: none (the default stream).
    pub tag: String,
}

impl Default for VoximplantStreamConfig {
    fn default() -> Self {
        Self {
            encoding: StreamEncoding::default(),
            lead_ms: 600,
            max_frame_bytes: 1024 * 1024,
            start_timeout_secs: 5,
            idle_timeout_secs: 10,
            tag: String::new(),
        }
    }
}

/// The encoding voxd speaks in on the media stream: none (`""`, the default) answers in the
/// caller's encoding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamEncoding(pub Option<Encoding>);

impl TryFrom<String> for StreamEncoding {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        if name.is_empty() {
            return Ok(Self(None));
        }
        Encoding::parse(&name)
            .map(|e| Self(Some(e)))
            .ok_or_else(|| {
                format!(
                    "{name:?} is not an encoding: empty (the caller's), PCM8, PCM16, ULAW or ALAW"
                )
            })
    }
}

impl From<StreamEncoding> for String {
    fn from(e: StreamEncoding) -> String {
        e.0.map_or_else(String::new, |e| e.wire_name().to_string())
    }
}

/// The old `[stream]` section: each of its keys and the section that took it over.
pub mod legacy {
    /// `[stream]` key → its new section.
    pub const MOVED: [(&str, &str); 12] = [
        ("greeting", "conversation"),
        ("vad_mode", "conversation"),
        ("min_speech_ms", "conversation"),
        ("end_of_turn_ms", "conversation"),
        ("barge_in", "conversation"),
        ("barge_in_min_ms", "conversation"),
        ("max_turn_secs", "conversation"),
        ("pipeline", "conversation"),
        ("first_clause_words", "conversation"),
        ("encoding", "voximplant_stream"),
        ("lead_ms", "voximplant_stream"),
        ("max_frame_bytes", "voximplant_stream"),
    ];

    /// Moves the keys of a `[stream]` section in `table` to their new sections (a key
    /// already set there wins) and returns a warning for each, naming the new key.
    pub fn migrate(table: &mut toml::Table) -> Result<Vec<String>, String> {
        let Some(old) = table.remove("stream") else {
            return Ok(Vec::new());
        };
        let old = match old {
            toml::Value::Table(t) => t,
            _ => return Err("config section [stream] is not a table".into()),
        };
        let mut warnings = Vec::new();
        for (key, value) in old {
            let section = MOVED
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, s)| *s)
                .ok_or_else(|| format!("unknown key stream.{key}"))?;
            let new = table
                .entry(section)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(new) = new.as_table_mut() else {
                return Err(format!("config section [{section}] is not a table"));
            };
            let kept = if new.contains_key(&key) {
                " (ignored: it is set there too)"
            } else {
                new.insert(key.clone(), value);
                ""
            };
            warnings.push(format!(
                "config: stream.{key} is deprecated and will be removed in the next release; \
                 use {section}.{key}{kept}"
            ));
        }
        Ok(warnings)
    }
}
