//! Backchannels: the short words a listener says to show they follow ("угу", "ага",
//! "да-да", "mm-hm", "uh-huh", "okay"), which are not a turn of their own. Said over voxd
//! they do not stop it, and an interruption that turns out to be one (or no words at all: a
//! cough, a noise) lets voxd resume what it was saying.

use std::collections::HashSet;

/// The backchannels voxd knows without configuration, by language.
pub const ENGLISH: &[&str] = &[
    "mm",
    "mhm",
    "mm-hm",
    "mm-hmm",
    "hmm",
    "uh-huh",
    "uh huh",
    "okay",
    "ok",
    "yeah",
    "yep",
    "yes",
    "right",
    "sure",
    "i see",
    "got it",
    "alright",
    "all right",
];
pub const RUSSIAN: &[&str] = &[
    "угу",
    "ага",
    "да",
    "да-да",
    "ну да",
    "так",
    "ну",
    "хорошо",
    "понятно",
    "ясно",
    "ок",
    "окей",
    "ладно",
    "м-м",
    "мм",
    "ммм",
    "угу-угу",
];

/// The phrases that count as backchannels, compared without case, punctuation, hyphens
/// or repetition ("Да-да-да." is "да").
#[derive(Debug, Clone, Default)]
pub struct Backchannels {
    phrases: HashSet<String>,
}

impl Backchannels {
    pub fn new<S: AsRef<str>>(phrases: &[S]) -> Self {
        Self {
            phrases: phrases
                .iter()
                .map(|p| normalise(p.as_ref()))
                .filter(|p| !p.is_empty())
                .collect(),
        }
    }

    /// The built-in English and Russian ones.
    pub fn builtin() -> Vec<String> {
        ENGLISH
            .iter()
            .chain(RUSSIAN)
            .map(|s| s.to_string())
            .collect()
    }

    /// Whether `heard` says nothing but a backchannel.
    pub fn matches(&self, heard: &str) -> bool {
        let heard = normalise(heard);
        !heard.is_empty() && self.phrases.contains(&heard)
    }
}

/// Lower case, words only (hyphens split them), a word repeated in a row said once.
fn normalise(text: &str) -> String {
    let lower = text.to_lowercase();
    let mut words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    words.dedup();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backchannels_are_heard_in_any_spelling_and_real_words_are_not() {
        let b = Backchannels::new(&Backchannels::builtin());
        for heard in [
            "Угу.",
            "Ага!",
            "Да-да.",
            "да да да",
            "Mm-hm.",
            "Uh-huh",
            "Okay.",
            "OK",
            "ммм",
            "Yeah, yeah.",
        ] {
            assert!(b.matches(heard), "{heard}");
        }
        for heard in [
            "",
            " ",
            "Да, но подождите",
            "Stop",
            "okay wait",
            "нет",
            "угу, а сколько?",
        ] {
            assert!(!b.matches(heard), "{heard}");
        }
        let own = Backchannels::new(&["jawohl"]);
        assert!(own.matches("Jawohl!") && !own.matches("okay"));
    }
}
