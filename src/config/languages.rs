//! The words a call is answered with in each language (`[languages.<code>]`), for a line
//! whose callers may speak another language than its own (`conversation.language =
//! "auto"`): each table overrides some base keys, voxd has English and Russian phrases of
//! its own for a language with no table, and both resolve to one [`Phrases`] per language.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::{CallLanguage, CallsConfig, Config, DtmfConfig, KbConfig, LlmConfig};

/// `[languages.<code>]`: a language's own words; a key left out (or an empty list) takes
/// the base key's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LanguageConfig {
    /// Instead of `llm.system_prompt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// Instead of `calls.reprompt_text`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reprompt_text: Option<String>,
    /// Instead of `kb.handoff`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kb_handoff: Option<String>,
    /// Instead of `kb.instruction`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kb_instruction: Option<String>,
    /// Instead of `calls.hangup_phrases`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hangup_phrases: Vec<String>,
    /// Instead of `dtmf.text`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keypad_text: Option<String>,
    /// Instead of `models.voice`: the Piper voice (`.onnx`, its `.onnx.json` beside it) that
    /// speaks to callers heard in this language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voice: Option<PathBuf>,
}

/// What a call is answered with in one language, every key resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Phrases {
    pub system_prompt: String,
    pub reprompt_text: String,
    pub kb_handoff: String,
    pub kb_instruction: String,
    pub hangup_phrases: Vec<String>,
    pub keypad_text: String,
}

impl Phrases {
    /// The base keys' words (`llm.system_prompt`, `calls.reprompt_text`, ...).
    pub fn base(cfg: &Config) -> Self {
        Self {
            system_prompt: cfg.llm.system_prompt.clone(),
            reprompt_text: cfg.calls.reprompt_text.clone(),
            kb_handoff: cfg.kb.handoff.clone(),
            kb_instruction: cfg.kb.instruction.clone(),
            hangup_phrases: cfg.calls.hangup_phrases.clone(),
            keypad_text: cfg.dtmf.text.clone(),
        }
    }

    /// `table`'s words, the base's where it has none.
    fn over(table: &LanguageConfig, base: &Phrases) -> Self {
        let pick = |own: &Option<String>, base: &String| own.clone().unwrap_or(base.clone());
        Self {
            system_prompt: pick(&table.system_prompt, &base.system_prompt),
            reprompt_text: pick(&table.reprompt_text, &base.reprompt_text),
            kb_handoff: pick(&table.kb_handoff, &base.kb_handoff),
            kb_instruction: pick(&table.kb_instruction, &base.kb_instruction),
            keypad_text: pick(&table.keypad_text, &base.keypad_text),
            hangup_phrases: if table.hangup_phrases.is_empty() {
                base.hangup_phrases.clone()
            } else {
                table.hangup_phrases.clone()
            },
        }
    }
}

/// The languages voxd has words of its own for.
const BUILT_IN: [&str; 2] = ["en", "ru"];

/// voxd's own words for `code` (English: the base keys' defaults), if it has any; the
/// caller's goodbyes stay `calls.hangup_phrases` (whose default has both languages').
fn built_in(code: &str) -> Option<LanguageConfig> {
    let (system_prompt, reprompt_text, kb_handoff, kb_instruction, keypad_text) = match code {
        "en" => (
            LlmConfig::default().system_prompt,
            CallsConfig::default().reprompt_text,
            KbConfig::default().handoff,
            KbConfig::default().instruction,
            DtmfConfig::default().text,
        ),
        "ru" => (
            "Ты — вежливый телефонный помощник небольшой компании. Отвечай одним-двумя \
             короткими предложениями, на языке собеседника. Когда собеседник прощается, \
             попрощайся и закончи ответ меткой <hangup>."
                .to_string(),
            "Извините, я не расслышал. Повторите, пожалуйста.".to_string(),
            "Я этого не знаю, соединить вас с коллегой?".to_string(),
            "Ответь на вопрос, используя только эти факты из документов компании. Если они \
             не отвечают на него, скажи: \"{handoff}\""
                .to_string(),
            "(Абонент нажал на телефоне клавиши: {keys}.)".to_string(),
        ),
        _ => return None,
    };
    Some(LanguageConfig {
        system_prompt: Some(system_prompt),
        reprompt_text: Some(reprompt_text),
        kb_handoff: Some(kb_handoff),
        kb_instruction: Some(kb_instruction),
        keypad_text: Some(keypad_text),
        hangup_phrases: Vec::new(),
        voice: None,
    })
}

impl Config {
    /// The words of every language a call may be answered in besides the base keys: none
    /// unless `conversation.language = "auto"`; then each `[languages.<code>]` table, and
    /// voxd's own words for a built-in language that has no table.
    pub fn language_phrases(&self) -> BTreeMap<String, Phrases> {
        if self.conversation.language != CallLanguage::Auto {
            return BTreeMap::new();
        }
        let base = Phrases::base(self);
        let own = BUILT_IN
            .iter()
            .filter(|code| !self.languages.contains_key(**code))
            .filter_map(|code| Some((code.to_string(), built_in(code)?)));
        self.languages
            .iter()
            .map(|(code, table)| (code.clone(), table.clone()))
            .chain(own)
            .map(|(code, table)| (code, Phrases::over(&table, &base)))
            .collect()
    }
}

impl Config {
    /// The voices that speak to callers heard in another language than the base one
    /// (`[languages.<code>] voice`), by language code: none unless `conversation.language =
    /// "auto"`.
    pub fn language_voices(&self) -> BTreeMap<String, PathBuf> {
        if self.conversation.language != CallLanguage::Auto {
            return BTreeMap::new();
        }
        self.languages
            .iter()
            .filter_map(|(code, table)| Some((code.clone(), table.voice.clone()?)))
            .collect()
    }
}

/// Refuses a `[languages.<code>]` table whose code is not 2–3 lowercase ASCII letters
/// (Whisper's codes: `en`, `ru`, `haw`).
pub(super) fn check_codes(cfg: &Config) -> Result<()> {
    for code in cfg.languages.keys() {
        if !(2..=3).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_lowercase()) {
            bail!("[languages.{code}]: a language code is 2 or 3 lowercase letters, like en or ru");
        }
    }
    Ok(())
}

/// What to warn about in the languages' settings: tables that nothing uses, and an
/// `"auto"` that cannot hear another language or would replace the base keys' words.
pub(super) fn warnings(cfg: &Config) -> Vec<String> {
    if cfg.conversation.language != CallLanguage::Auto {
        return if cfg.languages.is_empty() {
            Vec::new()
        } else {
            vec![
                "config: the [languages.*] tables are used only with conversation.language = \
                 \"auto\""
                    .into(),
            ]
        };
    }
    let mut out = Vec::new();
    if cfg.stt.language != "auto" {
        out.push(format!(
            "config: conversation.language = \"auto\" but stt.language is \"{}\": Whisper \
             hears only that language; set stt.language = \"auto\" to hear the caller's",
            cfg.stt.language
        ));
    }
    if english_only(&cfg.models.stt) {
        out.push(format!(
            "config: conversation.language = \"auto\" but models.stt ({}) is an English-only \
             Whisper model: every caller is heard as English; use a multilingual model",
            cfg.models.stt.display()
        ));
    }
    let (llm, calls, kb) = (
        LlmConfig::default(),
        CallsConfig::default(),
        KbConfig::default(),
    );
    let customized = cfg.llm.system_prompt != llm.system_prompt
        || cfg.calls.reprompt_text != calls.reprompt_text
        || cfg.kb.handoff != kb.handoff
        || cfg.kb.instruction != kb.instruction;
    let untabled = BUILT_IN
        .iter()
        .filter(|code| !cfg.languages.contains_key(**code));
    for code in untabled.filter(|_| customized) {
        out.push(format!(
            "config: conversation.language = \"auto\": callers heard in \"{code}\" get voxd's \
             own words for it instead of your llm.system_prompt, calls.reprompt_text and kb \
             words; add a [languages.{code}] table (an empty one keeps the base keys)"
        ));
    }
    out
}

/// Whether a Whisper model file is named as an English-only one (`ggml-tiny.en.bin`,
/// `ggml-base.en-q5_1.bin`).
fn english_only(model: &std::path::Path) -> bool {
    let name = model
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    name.contains(".en.") || name.contains(".en-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto(toml: &str) -> Config {
        let mut cfg: Config = toml::from_str(toml).unwrap();
        cfg.conversation.language = CallLanguage::Auto;
        cfg
    }

    #[test]
    fn built_in_languages_fill_in_and_a_table_falls_back_to_the_base_keys() {
        let cfg = auto(
            "[llm]\nsystem_prompt = \"Base.\"\n[calls]\nreprompt_text = \"Again?\"\n\
             [languages.de]\nsystem_prompt = \"Kurz.\"\nhangup_phrases = [\"tschüss\"]",
        );
        let sets = cfg.language_phrases();
        assert_eq!(sets.keys().collect::<Vec<_>>(), ["de", "en", "ru"]);
        let de = &sets["de"];
        assert_eq!(de.system_prompt, "Kurz.");
        assert_eq!(de.reprompt_text, "Again?", "the base key");
        assert_eq!(de.hangup_phrases, ["tschüss"]);
        let en = &sets["en"];
        assert_eq!(en.system_prompt, LlmConfig::default().system_prompt);
        assert_eq!(en.kb_handoff, KbConfig::default().handoff);
        assert_eq!(en.hangup_phrases, cfg.calls.hangup_phrases);
        assert_eq!(
            sets["ru"].reprompt_text,
            "Извините, я не расслышал. Повторите, пожалуйста."
        );
        assert!(sets["ru"].kb_instruction.contains("{handoff}"));
    }

    #[test]
    fn a_languages_voice_is_used_with_auto_only_and_read_from_the_config_files_folder() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("voxd.toml");
        std::fs::write(
            &file,
            "[conversation]\nlanguage = \"auto\"\n[languages.en]\nvoice = \"en/joe.onnx\"\n\
             [languages.ru]\nsystem_prompt = \"Кратко.\"",
        )
        .unwrap();
        let cfg = Config::load(Some(&file)).unwrap();
        let voices = cfg.language_voices();
        assert_eq!(voices.keys().collect::<Vec<_>>(), ["en"], "ru has no voice");
        assert_eq!(voices["en"], dir.path().join("en/joe.onnx"));
        let base = Config {
            conversation: Default::default(),
            ..cfg
        };
        assert!(base.language_voices().is_empty());
    }

    #[test]
    fn a_table_for_a_built_in_language_replaces_its_words() {
        let cfg = auto("[llm]\nsystem_prompt = \"Свой.\"\n[languages.ru]");
        assert_eq!(cfg.language_phrases()["ru"].system_prompt, "Свой.");
        let own_words = |cfg: &Config| -> Vec<String> {
            warnings(cfg)
                .into_iter()
                .filter(|w| w.contains("own words"))
                .collect()
        };
        // English callers would still get voxd's English words instead of "Свой.".
        let w = own_words(&cfg);
        assert!(w.len() == 1 && w[0].contains("[languages.en]"), "{w:?}");
        let both = auto("[llm]\nsystem_prompt = \"Свой.\"\n[languages.ru]\n[languages.en]");
        assert!(own_words(&both).is_empty());
        let kb_only = auto("[kb]\nhandoff = \"Не знаю.\"");
        assert_eq!(
            own_words(&kb_only).len(),
            2,
            "a customised kb word counts too"
        );
        assert!(
            own_words(&auto("")).is_empty(),
            "the defaults are voxd's own words"
        );
    }

    #[test]
    fn without_auto_there_is_one_set_of_words() {
        let cfg: Config = toml::from_str("[languages.en]\nreprompt_text = \"Hm?\"").unwrap();
        assert!(cfg.language_phrases().is_empty());
        assert_eq!(warnings(&cfg).len(), 1, "the table is unused");
        assert!(warnings(&Config::default()).is_empty());
    }

    #[test]
    fn language_codes_are_two_or_three_lowercase_letters() {
        for good in ["en", "haw"] {
            let cfg: Config = toml::from_str(&format!("[languages.{good}]")).unwrap();
            check_codes(&cfg).unwrap();
        }
        for bad in ["EN", "e", "english", "e1"] {
            let cfg: Config = toml::from_str(&format!("[languages.{bad}]")).unwrap();
            assert!(check_codes(&cfg).is_err(), "{bad}");
        }
        let unknown = "[languages.en]\ngreeting = \"Hi\"";
        assert!(toml::from_str::<Config>(unknown).is_err());
    }

    #[test]
    fn auto_warns_when_whisper_cannot_hear_another_language() {
        let cfg = auto("[stt]\nlanguage = \"ru\"");
        let w = warnings(&cfg);
        assert!(
            w.iter().any(|w| w.contains("stt.language is \"ru\"")),
            "{w:?}"
        );
        assert!(
            w.iter().any(|w| w.contains("English-only")),
            "the default test model is tiny.en: {w:?}"
        );
        let multilingual = auto("[models]\nstt = \"models/test/ggml-base.bin\"");
        assert!(warnings(&multilingual).is_empty());
        assert!(english_only(std::path::Path::new("ggml-base.en-q5_1.bin")));
    }
}
