//! The language a call is answered in. With `conversation.language = "auto"` a turn is
//! answered in the language Whisper heard when voxd has words for it ([`Phrases`]: a
//! `[languages.<code>]` table or its own English and Russian), and that language stays the
//! call's until the caller is heard speaking another one; a one-word utterance (a name, "ok")
//! is often heard as the wrong language, so it changes a call's language only before it has
//! one. Without `"auto"` every call is answered with the base keys.

use std::collections::BTreeMap;

use super::prompt;
use super::tools::Tools;
use crate::config::{CallLanguage, Phrases};
use crate::engines::ChatMessage;

/// Words an utterance needs to change the language of a call that has one.
const MIN_WORDS_TO_SWITCH: usize = 2;

/// The language a turn is answered in (None: the base keys): the `heard` one when the
/// `setting` follows the caller, voxd has words for it (`has_words`) and the utterance has
/// words, enough of them or the call no language yet; else the `call`'s so far.
pub fn turn_language(
    setting: CallLanguage,
    heard: &str,
    words: usize,
    call: Option<&str>,
    has_words: impl Fn(&str) -> bool,
) -> Option<String> {
    // Nothing heard says nothing of the language (Whisper guesses one from noise).
    let switch = setting == CallLanguage::Auto
        && words > 0
        && has_words(heard)
        && (words >= MIN_WORDS_TO_SWITCH || call.is_none());
    if switch {
        Some(heard.to_string())
    } else {
        call.map(str::to_string)
    }
}

/// One language's words, with the prompt head made of its system prompt.
#[derive(Debug, Clone)]
pub struct Spoken {
    pub head: Vec<ChatMessage>,
    pub phrases: Phrases,
}

/// The languages calls may be answered in besides the base keys.
#[derive(Debug, Clone, Default)]
pub struct Languages {
    setting: CallLanguage,
    spoken: BTreeMap<String, Spoken>,
}

impl Languages {
    /// The languages of `phrases`, each head made as [`prompt::head`] makes the base one.
    pub fn new(
        setting: CallLanguage,
        phrases: BTreeMap<String, Phrases>,
        tools: Option<&Tools>,
        hermes: bool,
    ) -> Self {
        let spoken = phrases
            .into_iter()
            .map(|(code, phrases)| {
                let head = prompt::head(&phrases.system_prompt, tools, hermes);
                (code, Spoken { head, phrases })
            })
            .collect();
        Self { setting, spoken }
    }

    /// The language of a turn in which Whisper `heard` this language and these `words`, on
    /// a call whose language so far is `call` ([`turn_language`]).
    pub fn of_turn(&self, heard: &str, words: usize, call: Option<&str>) -> Option<String> {
        turn_language(self.setting, heard, words, call, |l| {
            self.spoken.contains_key(l)
        })
    }

    /// A language's words, if voxd has them.
    pub fn get(&self, language: Option<&str>) -> Option<&Spoken> {
        self.spoken.get(language?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choose(
        setting: CallLanguage,
        heard: &str,
        words: usize,
        call: Option<&str>,
    ) -> Option<String> {
        turn_language(setting, heard, words, call, |l| ["en", "ru"].contains(&l))
    }

    #[test]
    fn a_turn_takes_the_heard_language_when_it_may() {
        use CallLanguage::{Auto, Base};
        assert_eq!(choose(Auto, "en", 5, Some("ru")).as_deref(), Some("en"));
        assert_eq!(
            choose(Auto, "en", 1, None).as_deref(),
            Some("en"),
            "the first word sets it"
        );
        assert_eq!(
            choose(Auto, "ru", 1, Some("en")).as_deref(),
            Some("en"),
            "one word does not change it"
        );
        assert_eq!(
            choose(Auto, "de", 6, Some("en")).as_deref(),
            Some("en"),
            "no words for German"
        );
        assert_eq!(choose(Auto, "de", 6, None), None);
        assert_eq!(
            choose(Auto, "", 0, Some("ru")).as_deref(),
            Some("ru"),
            "silence"
        );
        assert_eq!(
            choose(Auto, "en", 0, None),
            None,
            "noise heard as a language sets nothing"
        );
        assert_eq!(choose(Base, "en", 5, None), None, "the base keys, always");
    }

    #[test]
    fn each_language_has_its_head() {
        let cfg = crate::config::Config {
            conversation: crate::config::ConversationConfig {
                language: CallLanguage::Auto,
                ..Default::default()
            },
            ..Default::default()
        };
        let langs = Languages::new(CallLanguage::Auto, cfg.language_phrases(), None, false);
        let ru = langs.get(Some("ru")).unwrap();
        assert_eq!(ru.head.len(), 1);
        assert!(ru.head[0].content.starts_with("Ты — вежливый"));
        assert!(langs.get(None).is_none() && langs.get(Some("de")).is_none());
        assert_eq!(langs.of_turn("ru", 3, None).as_deref(), Some("ru"));
    }
}
