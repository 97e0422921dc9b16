//! Configuration: the TOML file, its defaults (the test model set), and `VOXD_SECTION_KEY`
//! environment overrides. Every key is documented in `voxd.example.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The whole configuration, one struct per TOML section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub models: ModelsConfig,
    pub stt: SttConfig,
    pub llm: LlmConfig,
    pub tts: TtsConfig,
    pub download: DownloadConfig,
    pub calls: CallsConfig,
    pub stream: StreamConfig,
    pub metrics: MetricsConfig,
    pub history: HistoryConfig,
    pub kb: KbConfig,
    pub voximplant: VoximplantConfig,
    pub tools: ToolsConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: String,
    pub public_url: String,
    pub token: String,
    pub log_format: String,
    pub drain_grace_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelsConfig {
    pub stt: PathBuf,
    pub llm: PathBuf,
    pub voice: PathBuf,
    pub onnxruntime: PathBuf,
    pub espeak_data: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SttConfig {
    pub language: String,
    pub threads: u32,
    pub beam_size: u32,
    pub temperature_fallback: bool,
    pub fit_audio_context: bool,
    pub use_gpu: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    pub system_prompt: String,
    pub max_reply_tokens: u32,
    pub max_sentences: u32,
    pub context_tokens: u32,
    pub threads: u32,
    pub temperature: f32,
    pub seed: u32,
    pub gpu_layers: u32,
    pub workers: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TtsConfig {
    pub threads: u32,
    pub speaker: i64,
    pub length_scale: f32,
    pub sentence_silence_ms: u32,
    pub reply_sample_rate: u32,
    pub deterministic: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DownloadConfig {
    pub max_bytes: u64,
    pub timeout_secs: f64,
    pub max_redirects: u32,
    pub allow_private: bool,
    pub allowed_networks: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallsConfig {
    pub reply_audio_ttl_secs: u64,
    pub idle_timeout_secs: u64,
    pub max_audio_secs: f64,
    pub reprompt_text: String,
    pub hangup_phrases: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    pub greeting: String,
    pub vad_mode: u8,
    pub min_speech_ms: u32,
    pub end_of_turn_ms: u32,
    pub barge_in: bool,
    pub barge_in_min_ms: u32,
    pub max_turn_secs: u32,
    pub lead_ms: u32,
    pub encoding: String,
    pub pipeline: String,
    pub first_clause_words: u32,
    pub max_frame_bytes: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    pub require_token: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    pub database: PathBuf,
    pub retention_days: u32,
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

/// Voximplant's Management API, which `POST /calls` uses to start `scenarios/outbound.js`
/// ([`crate::outbound`]).
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VoximplantConfig {
    pub api_url: String,
    pub rule_id: u64,
    pub credentials: PathBuf,
    pub account_id: u64,
    pub api_key: String,
    pub timeout_secs: f64,
    pub pending_timeout_secs: u64,
}

impl Default for VoximplantConfig {
    fn default() -> Self {
        Self {
            api_url: "https://api.voximplant.com/platform_api".into(),
            rule_id: 0,
            credentials: PathBuf::new(),
            account_id: 0,
            api_key: String::new(),
            timeout_secs: 10.0,
            pending_timeout_secs: 900,
        }
    }
}

/// Without the API key: configurations are printed in error messages and logs.
impl std::fmt::Debug for VoximplantConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoximplantConfig")
            .field("api_url", &self.api_url)
            .field("rule_id", &self.rule_id)
            .field("credentials", &self.credentials)
            .field("account_id", &self.account_id)
            .field(
                "api_key",
                &if self.api_key.is_empty() { "" } else { "(set)" },
            )
            .field("timeout_secs", &self.timeout_secs)
            .field("pending_timeout_secs", &self.pending_timeout_secs)
            .finish()
    }
}

/// The assistant's tools ([`crate::tools`]): hang up, transfer, save a lead.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolsConfig {
    pub enabled: bool,
    pub operator_phone: String,
    pub lead_webhook: String,
    pub webhook_attempts: u32,
    pub webhook_backoff_ms: u64,
    pub webhook_timeout_secs: f64,
    pub examples: Vec<[String; 2]>,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            operator_phone: String::new(),
            lead_webhook: String::new(),
            webhook_attempts: 5,
            webhook_backoff_ms: 1000,
            webhook_timeout_secs: 10.0,
            examples: Vec::new(),
        }
    }
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

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            database: "data/voxd.db".into(),
            retention_days: 90,
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            require_token: true,
        }
    }
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            greeting: "Hello! How can I help you?".into(),
            vad_mode: 3,
            min_speech_ms: 200,
            end_of_turn_ms: 500,
            barge_in: true,
            barge_in_min_ms: 300,
            max_turn_secs: 30,
            lead_ms: 600,
            encoding: String::new(),
            pipeline: "streaming".into(),
            first_clause_words: 4,
            max_frame_bytes: 1024 * 1024,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            public_url: String::new(),
            token: String::new(),
            log_format: "text".into(),
            drain_grace_secs: 30,
        }
    }
}

impl Default for ModelsConfig {
    fn default() -> Self {
        let dir = PathBuf::from("models/test");
        Self {
            stt: dir.join("ggml-tiny.en.bin"),
            llm: dir.join("SmolLM2-135M-Instruct.Q4_1.gguf"),
            voice: dir.join("en_US-joe-medium.onnx"),
            onnxruntime: dir.join("libonnxruntime.so.1.24.4"),
            espeak_data: PathBuf::new(),
        }
    }
}

impl Default for SttConfig {
    fn default() -> Self {
        Self {
            language: "auto".into(),
            threads: 2,
            beam_size: 1,
            temperature_fallback: false,
            fit_audio_context: true,
            use_gpu: false,
        }
    }
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            system_prompt: "You are a friendly phone assistant for a small company. \
                Answer in one or two short sentences, in the caller's language. \
                When the caller says goodbye, say goodbye and end your reply with <hangup>."
                .into(),
            max_reply_tokens: 64,
            max_sentences: 2,
            context_tokens: 2048,
            threads: 2,
            temperature: 0.0,
            seed: 42,
            gpu_layers: 0,
            workers: 1,
        }
    }
}

impl Default for TtsConfig {
    fn default() -> Self {
        Self {
            threads: 2,
            speaker: 0,
            length_scale: 1.0,
            sentence_silence_ms: 200,
            reply_sample_rate: 0,
            deterministic: false,
        }
    }
}

impl Default for DownloadConfig {
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            timeout_secs: 15.0,
            max_redirects: 5,
            allow_private: false,
            allowed_networks: Vec::new(),
        }
    }
}

impl Default for CallsConfig {
    fn default() -> Self {
        Self {
            reply_audio_ttl_secs: 600,
            idle_timeout_secs: 900,
            max_audio_secs: 120.0,
            reprompt_text: "Sorry, I didn't catch that. Could you say it again?".into(),
            hangup_phrases: ["goodbye", "bye bye", "до свидания", "всего доброго"]
                .map(String::from)
                .to_vec(),
        }
    }
}

impl Config {
    /// Loads the file (if any), applies `VOXD_*` overrides, resolves relative model paths
    /// against the config file's directory, and validates.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let (text, base) = match path {
            Some(p) => (
                std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read config file {}", p.display()))?,
                p.parent().map(Path::to_path_buf).unwrap_or_default(),
            ),
            None => (String::new(), PathBuf::new()),
        };
        let mut value: toml::Table = toml::from_str(&text)
            .with_context(|| format!("config file {} is not valid TOML", display(path)))?;
        apply_env_overrides(&mut value, std::env::vars())?;
        let mut cfg: Config = toml::Value::Table(value).try_into().with_context(|| {
            format!("config file {} has an invalid key or value", display(path))
        })?;
        cfg.resolve_paths(&base);
        cfg.validate()?;
        Ok(cfg)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let m = &mut self.models;
        for p in [
            &mut m.stt,
            &mut m.llm,
            &mut m.voice,
            &mut m.onnxruntime,
            &mut m.espeak_data,
            &mut self.history.database,
            &mut self.kb.index,
            &mut self.voximplant.credentials,
        ] {
            if !p.as_os_str().is_empty() && p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// The socket address to listen on.
    pub fn bind_addr(&self) -> Result<SocketAddr> {
        self.server.bind.parse().with_context(|| {
            format!(
                "server.bind '{}' is not an address like 127.0.0.1:8080",
                self.server.bind
            )
        })
    }

    /// The base URL the reply audio links point at (what Voximplant fetches).
    pub fn public_url(&self, bound: SocketAddr) -> String {
        if self.server.public_url.is_empty() {
            format!("http://{bound}")
        } else {
            self.server.public_url.trim_end_matches('/').to_string()
        }
    }

    fn validate(&self) -> Result<()> {
        let addr = self.bind_addr()?;
        if !addr.ip().is_loopback() && self.server.token.is_empty() {
            bail!(
                "server.bind is {addr}, reachable from the network, but server.token is empty: \
                 set a token (or VOXD_SERVER_TOKEN) before serving on a public address"
            );
        }
        if !["text", "json"].contains(&self.server.log_format.as_str()) {
            bail!("server.log_format must be \"text\" or \"json\"");
        }
        if self.download.max_bytes == 0 || self.download.timeout_secs <= 0.0 {
            bail!("download.max_bytes and download.timeout_secs must be positive");
        }
        for net in &self.download.allowed_networks {
            crate::download::Network::parse(net).with_context(|| {
                format!("download.allowed_networks: {net:?} is not a network like 10.0.0.0/8")
            })?;
        }
        if !self.stream.encoding.is_empty()
            && crate::stream::protocol::Encoding::parse(&self.stream.encoding).is_none()
        {
            bail!("stream.encoding must be empty (the caller's), PCM8, PCM16, ULAW or ALAW");
        }
        if !["streaming", "sequential"].contains(&self.stream.pipeline.as_str()) {
            bail!("stream.pipeline must be \"streaming\" or \"sequential\"");
        }
        if self.stream.vad_mode > 3 || self.stream.lead_ms < 20 {
            bail!("stream.vad_mode must be 0..3 and stream.lead_ms at least 20");
        }
        if self.llm.max_reply_tokens == 0 || self.llm.context_tokens < 256 {
            bail!("llm.max_reply_tokens must be > 0 and llm.context_tokens >= 256");
        }
        if self.kb.top_k == 0 {
            bail!("kb.top_k must be at least 1");
        }
        if self.llm.workers == 0 {
            bail!("llm.workers must be at least 1");
        }
        if self.voximplant.timeout_secs <= 0.0 {
            bail!("voximplant.timeout_secs must be positive");
        }
        let tools = &self.tools;
        if !tools.operator_phone.is_empty() {
            crate::outbound::check_phone(&tools.operator_phone)
                .map_err(|e| anyhow::anyhow!("tools.operator_phone: {e}"))?;
        }
        if !tools.lead_webhook.is_empty() && url::Url::parse(&tools.lead_webhook).is_err() {
            bail!("tools.lead_webhook must be an http(s) URL");
        }
        if tools.webhook_attempts == 0 || tools.webhook_timeout_secs <= 0.0 {
            bail!("tools.webhook_attempts and tools.webhook_timeout_secs must be positive");
        }
        Ok(())
    }
}

fn display(path: Option<&Path>) -> String {
    path.map_or_else(|| "(built-in defaults)".into(), |p| p.display().to_string())
}

/// Applies `VOXD_<SECTION>_<KEY>=value` for every key the defaults know. Values are read as
/// TOML literals when they parse (numbers, booleans, arrays), else as plain strings.
fn apply_env_overrides(
    table: &mut toml::Table,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<()> {
    let defaults = toml::Table::try_from(Config::default())?;
    for (name, raw) in vars {
        let Some(rest) = name.strip_prefix("VOXD_") else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        let found = defaults.iter().find_map(|(section, keys)| {
            let key = rest.strip_prefix(section.as_str())?.strip_prefix('_')?;
            let default = keys.as_table()?.get(key)?;
            Some((section.clone(), key.to_string(), default.is_str()))
        });
        let Some((section, key, is_string)) = found else {
            continue;
        };
        // A string key takes the text as it is (an all-digit token or key stays a string).
        let value = (!is_string)
            .then(|| toml::from_str::<toml::Table>(&format!("v = {raw}")).ok())
            .flatten()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(raw));
        let entry = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        let Some(section_table) = entry.as_table_mut() else {
            bail!("config section [{section}] is not a table");
        };
        section_table.insert(key, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn env_overrides_typed_and_string_values() {
        let mut t = toml::Table::new();
        apply_env_overrides(
            &mut t,
            vars(&[
                ("VOXD_SERVER_PUBLIC_URL", "http://example.org"),
                ("VOXD_DOWNLOAD_MAX_BYTES", "1234"),
                ("VOXD_DOWNLOAD_ALLOW_PRIVATE", "true"),
                ("VOXD_SERVER_TOKEN", "12345"),
                ("VOXD_VOXIMPLANT_RULE_ID", "678"),
                ("VOXD_UNKNOWN_THING", "x"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        let cfg: Config = toml::Value::Table(t).try_into().unwrap();
        assert_eq!(cfg.server.public_url, "http://example.org");
        assert_eq!(cfg.download.max_bytes, 1234);
        assert!(cfg.download.allow_private);
        assert_eq!(cfg.server.token, "12345");
        assert_eq!(cfg.voximplant.rule_id, 678);
    }

    #[test]
    fn public_bind_without_token_is_refused() {
        let mut cfg = Config::default();
        cfg.server.bind = "0.0.0.0:8080".into();
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("server.token"), "{err}");
        cfg.server.token = "secret".into();
        cfg.validate().unwrap();
    }

    #[test]
    fn example_file_documents_every_key_with_its_default() {
        let text = include_str!("../voxd.example.toml");
        let example: toml::Table = toml::from_str(text).unwrap();
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        assert_eq!(example, defaults);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let t: toml::Table = toml::from_str("[server]\nbnd = \"x\"").unwrap();
        assert!(toml::Value::Table(t).try_into::<Config>().is_err());
    }
}
