//! The service's sections: `[server]`, `[calls]`, `[metrics]`, `[history]`, `[kb]` and
//! `[tools]` (`[download]` and `[voximplant]` live with their modules).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How the log is written (`server.log_format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Lines for people (and the journal).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: String,
    pub public_url: String,
    pub token: String,
    pub scenario_token: String,
    pub admin_token: String,
    pub log_format: LogFormat,
    pub drain_grace_secs: u64,
    pub max_connections: u32,
    /// Most connections open at once from one client address (0: no bound).
    pub max_connections_per_address: u32,
    pub header_timeout_secs: u64,
    /// Host names a voxd without tokens answers to besides the loopback ones.
    pub allowed_hosts: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            public_url: String::new(),
            token: String::new(),
            scenario_token: String::new(),
            admin_token: String::new(),
            log_format: LogFormat::Text,
            drain_grace_secs: 30,
            max_connections: 2048,
            max_connections_per_address: 256,
            header_timeout_secs: 10,
            allowed_hosts: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallsConfig {
    pub reply_audio_ttl_secs: u64,
    pub reply_audio_max_files: u32,
    pub reply_audio_max_mb: u32,
    pub idle_timeout_secs: u64,
    /// A recording-mode call with no request for this long ends as `lost`.
    pub recording_idle_secs: u64,
    /// The longest a call may last.
    pub max_call_secs: u64,
    pub max_audio_secs: f64,
    pub reprompt_text: String,
    pub hangup_phrases: Vec<String>,
    /// Live calls served at once; 0: measured at start-up ([`crate::engines::capacity`]).
    pub max_live: u32,
    pub retry_after_secs: u32,
    /// What a progressive reply is served as (a turn's `format` may ask for the other).
    pub progressive_format: ReplyFormat,
}

/// The audio a progressive reply grows as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplyFormat {
    /// MP3 (what Voximplant documents `progressivePlayback` for).
    #[default]
    Mp3,
    /// WAV whose sizes say "to the end of the stream".
    Wav,
}

impl ReplyFormat {
    /// The file name's extension, without its dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Mp3 => "mp3",
            Self::Wav => "wav",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Mp3 => "audio/mpeg",
            Self::Wav => "audio/wav",
        }
    }
}

impl Default for CallsConfig {
    fn default() -> Self {
        Self {
            reply_audio_ttl_secs: 600,
            reply_audio_max_files: 2000,
            reply_audio_max_mb: 256,
            idle_timeout_secs: 120,
            recording_idle_secs: 300,
            max_call_secs: 3600,
            max_audio_secs: 120.0,
            reprompt_text: "Sorry, I didn't catch that. Could you say it again?".into(),
            hangup_phrases: ["goodbye", "bye bye", "до свидания", "всего доброго"]
                .map(String::from)
                .to_vec(),
            max_live: 0,
            retry_after_secs: 5,
            progressive_format: ReplyFormat::Mp3,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    pub require_token: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            require_token: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    pub database: PathBuf,
    pub retention_days: u32,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            database: "data/voxd.db".into(),
            retention_days: 90,
        }
    }
}

/// The knowledge base (`voxd kb`, [`crate::kb`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KbConfig {
    pub enabled: bool,
    pub index: PathBuf,
    pub top_k: u32,
    pub min_score: f32,
    pub instruction: String,
    pub handoff: String,
}

impl Default for KbConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            index: "data/kb".into(),
            top_k: 3,
            min_score: 0.0,
            instruction: "Answer the question using only these facts from the company's \
                documents. If they do not answer it, say: \"{handoff}\""
                .into(),
            handoff: "I don't know that, shall I connect you to a colleague?".into(),
        }
    }
}

/// The assistant's tools ([`crate::conversation::tools`]): hang up, transfer, save a lead.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolsConfig {
    pub enabled: bool,
    pub operator_phone: String,
    /// The country whose national numbers callers say, for saved leads' phones.
    pub phone_country: PhoneCountry,
    pub lead_webhook: String,
    pub webhook_attempts: u32,
    pub webhook_backoff_ms: u64,
    pub webhook_timeout_secs: f64,
    pub examples: Vec<[String; 2]>,
    /// Offer `send_digits`: the model may press keys on the call (another company's menu on
    /// an outbound call), sent to the scenario as `{"type":"send_digits"}` on the media stream.
    pub send_digits: bool,
}

/// How a number said without its country code is completed to E.164.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhoneCountry {
    /// Russia (and Kazakhstan): "8 999 123-45-67" or "999 123-45-67" → "+79991234567".
    Ru,
    /// The North American plan: "(555) 123-4567" or "1 555 123 4567" → "+15551234567".
    Us,
    /// Numbers are kept as said.
    None,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            operator_phone: String::new(),
            phone_country: PhoneCountry::Ru,
            lead_webhook: String::new(),
            webhook_attempts: 5,
            webhook_backoff_ms: 1000,
            webhook_timeout_secs: 10.0,
            examples: Vec::new(),
            send_digits: false,
        }
    }
}
