//! Configuration: the TOML file, its defaults (the test model set), secrets from systemd
//! credentials ([`credentials`]), `VOXD_SECTION_KEY` environment overrides ([`env`]) and the
//! old `[stream]` keys ([`conversation::legacy`]).
//! One module per group of sections; every key is documented in `voxd.example.toml`.

mod conversation;
mod credentials;
mod engines;
mod env;
mod languages;
mod service;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

pub use crate::download::DownloadConfig;
pub use crate::outbound::VoximplantConfig;
pub use conversation::{
    CallLanguage, ConversationConfig, DtmfConfig, KeyAction, Pipeline, StreamEncoding,
    VoximplantStreamConfig,
};
pub use engines::{LlmConfig, ModelsConfig, SttConfig, TtsConfig};
pub use languages::{LanguageConfig, Phrases};
pub use service::{
    CallsConfig, HistoryConfig, KbConfig, LogFormat, MetricsConfig, PhoneCountry, ReplyFormat,
    ServerConfig, ToolsConfig,
};

/// Most sequences one llama.cpp context holds (its `LLAMA_MAX_SEQ`).
const MAX_SEQUENCES: u32 = 256;

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
    pub conversation: ConversationConfig,
    pub voximplant_stream: VoximplantStreamConfig,
    pub dtmf: DtmfConfig,
    pub metrics: MetricsConfig,
    pub history: HistoryConfig,
    pub kb: KbConfig,
    pub voximplant: VoximplantConfig,
    pub tools: ToolsConfig,
    /// `[languages.<code>]`: each language's own words, with `conversation.language =
    /// "auto"` ([`languages`]). Not settable by `VOXD_*` variables.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub languages: BTreeMap<String, LanguageConfig>,
    /// What loading found to warn about (old keys), for the log and `voxd check`.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

impl Config {
    /// Loads the file (if any), applies the credentials in `$CREDENTIALS_DIRECTORY` (if set)
    /// and `VOXD_*` overrides, resolves relative model paths against the config file's
    /// directory, and validates.
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
        let mut warnings = match std::env::var_os("CREDENTIALS_DIRECTORY") {
            Some(dir) => credentials::apply_credentials(&mut value, Path::new(&dir))?,
            None => Vec::new(),
        };
        warnings.extend(env::apply_env_overrides(&mut value, std::env::vars())?);
        warnings.extend(conversation::legacy::migrate(&mut value).map_err(anyhow::Error::msg)?);
        let turn_set = value.get("models").and_then(|m| m.get("turn")).is_some();
        let mut cfg: Config = toml::Value::Table(value).try_into().with_context(|| {
            format!("config file {} has an invalid key or value", display(path))
        })?;
        cfg.warnings = warnings;
        cfg.resolve_paths(&base);
        if !turn_set && !cfg.models.turn.is_file() {
            // A config from before the end-of-turn model: voxd runs as it did.
            cfg.warnings.push(format!(
                "config: models.turn is not set and {} does not exist: turns end on silence \
                 and words alone (scripts/download-models fetches the end-of-turn model)",
                cfg.models.turn.display()
            ));
            cfg.models.turn = PathBuf::new();
        }
        cfg.validate()?;
        cfg.warnings.extend(languages::warnings(&cfg));
        if cfg.stt.prompt_kb_headings && !cfg.kb.enabled {
            cfg.warnings.push(
                "config: stt.prompt_kb_headings is on but kb.enabled is false: Whisper's \
                 prompt gets no headings"
                    .into(),
            );
        }
        Ok(cfg)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let m = &mut self.models;
        let voices = self.languages.values_mut().filter_map(|l| l.voice.as_mut());
        for p in [
            &mut m.stt,
            &mut m.llm,
            &mut m.voice,
            &mut m.onnxruntime,
            &mut m.espeak_data,
            &mut m.turn,
            &mut self.history.database,
            &mut self.kb.index,
            &mut self.voximplant.credentials,
        ]
        .into_iter()
        .chain(voices)
        {
            if !p.as_os_str().is_empty() && p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// `[dtmf]`: keys that exist, an operator to transfer to, a text that names the keys.
    fn validate_dtmf(&self) -> Result<()> {
        let d = &self.dtmf;
        if !d.text.contains("{keys}") {
            bail!("dtmf.text must contain {{keys}} (where the keys pressed go)");
        }
        if d.gap_ms == 0 || d.gap_ms > 10_000 {
            bail!("dtmf.gap_ms must be 1..10000");
        }
        for (key, action) in &d.actions {
            if crate::conversation::keypad::key(key).is_none() {
                bail!("dtmf.actions: {key:?} is not a key (0-9, *, #, A-D)");
            }
            if *action == KeyAction::Operator && self.tools.operator_phone.is_empty() {
                bail!(
                    "dtmf.actions sends {key:?} to the operator, but tools.operator_phone is empty"
                );
            }
        }
        Ok(())
    }

    /// The keys that act at once, as keys.
    pub fn key_actions(&self) -> BTreeMap<char, KeyAction> {
        self.dtmf
            .actions
            .iter()
            .filter_map(|(k, a)| Some((crate::conversation::keypad::key(k)?, *a)))
            .collect()
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
        let s = &self.server;
        let scoped = [&s.scenario_token, &s.admin_token].map(|t| !t.is_empty());
        if scoped[0] != scoped[1] {
            bail!("server.scenario_token and server.admin_token are set together, or neither");
        }
        if scoped[0] && !s.token.is_empty() {
            bail!(
                "server.token and the scoped tokens (scenario_token, admin_token) are set: \
                 keep one or the other"
            );
        }
        if scoped[0] && s.scenario_token == s.admin_token {
            bail!("server.scenario_token and server.admin_token must differ");
        }
        if !addr.ip().is_loopback() && s.token.is_empty() && !scoped[0] {
            bail!(
                "server.bind is {addr}, reachable from the network, but server.token is empty: \
                 set a token (or VOXD_SERVER_TOKEN), or scenario_token and admin_token, before \
                 serving on a public address (under systemd the tokens are credentials: \
                 /etc/voxd/credentials, passed as $CREDENTIALS_DIRECTORY)"
            );
        }
        if self.download.max_bytes == 0 || self.download.timeout_secs <= 0.0 {
            bail!("download.max_bytes and download.timeout_secs must be positive");
        }
        for net in &self.download.allowed_networks {
            crate::download::Network::parse(net).with_context(|| {
                format!("download.allowed_networks: {net:?} is not a network like 10.0.0.0/8")
            })?;
        }
        if self.conversation.vad_mode > 3 {
            bail!("conversation.vad_mode must be 0..3");
        }
        let c = &self.conversation;
        if c.end_of_turn_complete_ms > c.end_of_turn_ms
            || c.end_of_turn_unfinished_ms < c.end_of_turn_ms
        {
            bail!(
                "conversation: end_of_turn_complete_ms ({}) ≤ end_of_turn_ms ({}) ≤ \
                 end_of_turn_unfinished_ms ({}) must hold",
                c.end_of_turn_complete_ms,
                c.end_of_turn_ms,
                c.end_of_turn_unfinished_ms
            );
        }
        if !(c.end_of_turn_threshold > 0.0 && c.end_of_turn_threshold < 1.0) {
            bail!(
                "conversation.end_of_turn_threshold must be between 0 and 1 (not {})",
                c.end_of_turn_threshold
            );
        }
        if self.voximplant_stream.lead_ms < 20 {
            bail!("voximplant_stream.lead_ms must be at least 20");
        }
        if self.llm.max_reply_tokens == 0 || self.llm.context_tokens < 256 {
            bail!("llm.max_reply_tokens must be > 0 and llm.context_tokens >= 256");
        }
        let c = &self.calls;
        if c.idle_timeout_secs == 0 || c.recording_idle_secs == 0 || c.max_call_secs == 0 {
            bail!(
                "calls.idle_timeout_secs, calls.recording_idle_secs and calls.max_call_secs must \
                 be > 0 (0 would end every call at once)"
            );
        }
        if self.llm.parallel > MAX_SEQUENCES {
            bail!(
                "llm.parallel is {}, more than the {MAX_SEQUENCES} sequences llama.cpp allows",
                self.llm.parallel
            );
        }
        self.validate_dtmf()?;
        if self.kb.top_k == 0 {
            bail!("kb.top_k must be at least 1");
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
        languages::check_codes(self)
    }
}

fn display(path: Option<&Path>) -> String {
    path.map_or_else(|| "(built-in defaults)".into(), |p| p.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::Encoding;

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
        let warnings = env::apply_env_overrides(
            &mut t,
            vars(&[
                ("VOXD_SERVER_PUBLIC_URL", "http://example.org"),
                ("VOXD_DOWNLOAD_MAX_BYTES", "1234"),
                ("VOXD_DOWNLOAD_ALLOW_PRIVATE", "true"),
                ("VOXD_SERVER_TOKEN", "12345"),
                ("VOXD_VOXIMPLANT_RULE_ID", "678"),
                ("VOXD_UNKNOWN_THING", "x"),
                ("VOXD_SERVER_BIDN", "0.0.0.0:80"),
                ("VOXD_CONFIG", "/etc/voxd/voxd.toml"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        // Misspelled names are named, not applied; voxd's own non-key variables pass.
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("VOXD_UNKNOWN_THING names no config key"));
        assert!(warnings[1].starts_with("VOXD_SERVER_BIDN names no config key"));
        let cfg: Config = toml::Value::Table(t).try_into().unwrap();
        assert_eq!(cfg.server.public_url, "http://example.org");
        assert_eq!(cfg.download.max_bytes, 1234);
        assert!(cfg.download.allow_private);
        assert_eq!(cfg.server.token, "12345");
        assert_eq!(cfg.voximplant.rule_id, 678);
    }

    #[test]
    fn a_config_from_before_the_end_of_turn_model_runs_without_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("voxd.toml");
        std::fs::write(&file, "[models]\nstt = \"whisper.bin\"\n").unwrap();
        let cfg = Config::load(Some(&file)).unwrap();
        assert_eq!(cfg.models.turn, PathBuf::new());
        assert!(cfg
            .warnings
            .iter()
            .any(|w| w.contains("models.turn is not set")));
        // Set, it must be there: the engines refuse a missing one at start-up.
        std::fs::write(&file, "[models]\nturn = \"turn.onnx\"\n").unwrap();
        let cfg = Config::load(Some(&file)).unwrap();
        assert_eq!(cfg.models.turn, dir.path().join("turn.onnx"));
        std::fs::write(&file, "[models]\nturn = \"\"\n").unwrap();
        let cfg = Config::load(Some(&file)).unwrap();
        assert_eq!(cfg.models.turn, PathBuf::new());
        assert!(!cfg.warnings.iter().any(|w| w.contains("models.turn")));
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
    fn scoped_tokens_come_in_pairs_and_replace_the_single_one() {
        let mut cfg = Config::default();
        cfg.server.bind = "0.0.0.0:8080".into();
        cfg.server.scenario_token = "scenario".into();
        assert!(cfg.validate().unwrap_err().to_string().contains("together"));
        cfg.server.admin_token = "scenario".into();
        assert!(cfg.validate().unwrap_err().to_string().contains("differ"));
        cfg.server.admin_token = "admin".into();
        cfg.validate().unwrap();
        cfg.server.token = "one".into();
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("one or the other"));
    }

    #[test]
    fn more_sequences_than_llama_cpp_allows_are_refused() {
        let mut cfg = Config::default();
        cfg.llm.parallel = MAX_SEQUENCES;
        cfg.validate().unwrap();
        cfg.llm.parallel = MAX_SEQUENCES + 1;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("llm.parallel is 257"), "{err}");
    }

    #[test]
    fn example_file_documents_every_key_with_its_default() {
        let text = include_str!("../../voxd.example.toml");
        let example: toml::Table = toml::from_str(text).unwrap();
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        assert_eq!(example, defaults);
    }

    #[test]
    fn old_stream_keys_move_to_their_sections_with_a_warning() {
        let mut t: toml::Table = toml::from_str(
            "[stream]\ngreeting = \"Hi\"\nencoding = \"ULAW\"\nlead_ms = 300\n\
             [voximplant_stream]\nlead_ms = 400",
        )
        .unwrap();
        env::apply_env_overrides(&mut t, vars(&[("VOXD_STREAM_BARGE_IN", "false")])).unwrap();
        let warnings = conversation::legacy::migrate(&mut t).unwrap();
        let cfg: Config = toml::Value::Table(t).try_into().unwrap();
        assert_eq!(cfg.conversation.greeting, "Hi");
        assert!(!cfg.conversation.barge_in);
        assert_eq!(
            cfg.voximplant_stream.encoding,
            StreamEncoding(Some(Encoding::Ulaw))
        );
        assert_eq!(cfg.voximplant_stream.lead_ms, 400, "the new key wins");
        assert_eq!(warnings.len(), 4, "{warnings:?}");
        for new in [
            "conversation.greeting",
            "conversation.barge_in",
            "voximplant_stream.encoding",
        ] {
            assert!(
                warnings.iter().any(|w| w.contains(new)),
                "{new}: {warnings:?}"
            );
        }
        assert!(warnings
            .iter()
            .any(|w| w.contains("lead_ms") && w.contains("ignored")));
        let mut bad: toml::Table = toml::from_str("[stream]\nnope = 1").unwrap();
        assert!(conversation::legacy::migrate(&mut bad).is_err());
    }

    #[test]
    fn a_call_lifetime_of_zero_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("voxd.toml");
        for key in ["idle_timeout_secs", "recording_idle_secs", "max_call_secs"] {
            std::fs::write(&file, format!("[calls]\n{key} = 0\n")).unwrap();
            let err = Config::load(Some(&file)).unwrap_err();
            assert!(format!("{err:#}").contains("must be > 0"), "{key}: {err:#}");
        }
    }

    #[test]
    fn closed_sets_are_enums() {
        let t: toml::Table = toml::from_str(
            "[conversation]\npipeline = \"sequential\"\n[server]\nlog_format = \"json\"",
        )
        .unwrap();
        let cfg: Config = toml::Value::Table(t).try_into().unwrap();
        assert_eq!(cfg.conversation.pipeline, Pipeline::Sequential);
        assert_eq!(cfg.server.log_format, LogFormat::Json);
        for bad in [
            "[conversation]\npipeline = \"fast\"",
            "[server]\nlog_format = \"xml\"",
            "[voximplant_stream]\nencoding = \"OPUS\"",
            "[conversation]\nlanguage = \"fr\"",
        ] {
            let t: toml::Table = toml::from_str(bad).unwrap();
            assert!(toml::Value::Table(t).try_into::<Config>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_call_language_is_set_by_env_but_the_language_tables_are_not() {
        let mut t = toml::Table::new();
        let warnings = env::apply_env_overrides(
            &mut t,
            vars(&[
                ("VOXD_CONVERSATION_LANGUAGE", "auto"),
                ("VOXD_LANGUAGES_EN_REPROMPT_TEXT", "Hm?"),
            ]),
        )
        .unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("VOXD_LANGUAGES_EN_REPROMPT_TEXT names no config key"));
        let cfg: Config = toml::Value::Table(t).try_into().unwrap();
        assert_eq!(cfg.conversation.language, CallLanguage::Auto);
        assert!(cfg.languages.is_empty());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let t: toml::Table = toml::from_str("[server]\nbnd = \"x\"").unwrap();
        assert!(toml::Value::Table(t).try_into::<Config>().is_err());
    }
}
