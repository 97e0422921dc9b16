//! The end of turn that listens to the words: whether a partial transcript (the speculative
//! one, taken in the caller's pause) reads as a finished question, as speech that goes on
//! ("my number is…", "and", "um"), or as neither, in English and Russian.

/// How a partial transcript ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// A question or exclamation that stands on its own ("…on Saturday?").
    Complete,
    /// The caller is mid-sentence: trailing off, a conjunction, a filler, a preposition.
    Unfinished,
    /// Nothing to tell either way: the plain silence decides.
    Plain,
}

/// Words after which a sentence goes on (conjunctions, fillers, articles, prepositions,
/// "is"), in English and Russian, lower case.
const GOES_ON: &[&str] = &[
    "and",
    "or",
    "but",
    "so",
    "because",
    "cause",
    "um",
    "umm",
    "uh",
    "uhm",
    "er",
    "erm",
    "hmm",
    "like",
    "the",
    "a",
    "an",
    "to",
    "of",
    "with",
    "for",
    "in",
    "on",
    "at",
    "from",
    "my",
    "our",
    "your",
    "is",
    "are",
    "was",
    "then",
    "that",
    "which",
    "if",
    "when",
    "than",
    "about",
    "и",
    "а",
    "но",
    "или",
    "что",
    "чтобы",
    "потому",
    "ну",
    "э",
    "эм",
    "ээ",
    "эээ",
    "мм",
    "ммм",
    "вот",
    "это",
    "мой",
    "моя",
    "моё",
    "мое",
    "мои",
    "наш",
    "наша",
    "в",
    "во",
    "на",
    "с",
    "со",
    "к",
    "ко",
    "по",
    "для",
    "от",
    "из",
    "у",
    "о",
    "об",
    "если",
    "когда",
    "чем",
    "который",
    "которая",
    "как",
    "то",
    "же",
    "ли",
];

/// How `text`, what the caller has said so far, ends.
pub fn judge(text: &str) -> Ending {
    let text = text.trim();
    let last = text
        .split_whitespace()
        .next_back()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .unwrap_or_default();
    if last.is_empty() {
        return Ending::Plain;
    }
    let trails_off = ["...", "…", ",", "-", "—"]
        .iter()
        .any(|p| text.ends_with(p));
    if trails_off || GOES_ON.contains(&last.as_str()) {
        return Ending::Unfinished;
    }
    if text.ends_with('?') || text.ends_with('!') {
        Ending::Complete
    } else {
        Ending::Plain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_are_complete_and_trailing_words_unfinished_in_english_and_russian() {
        for text in [
            "What time do you open on Saturday?",
            "Thank you so much!",
            "Во сколько вы открываетесь в субботу?",
            "Спасибо!",
        ] {
            assert_eq!(judge(text), Ending::Complete, "{text}");
        }
        for text in [
            "My number is...",
            "My number is",
            "I'd like to book a table and",
            "So, um.",
            "I want to, uh",
            "Мой номер…",
            "Я хотел бы записаться на",
            "Ну, э",
            "Мне нужно, чтобы",
            "Let me think,",
        ] {
            assert_eq!(judge(text), Ending::Unfinished, "{text}");
        }
        for text in [
            "",
            "  ",
            "...",
            "I'd like to book a table for two.",
            "Запишите меня на завтра.",
            "Okay",
        ] {
            assert_eq!(judge(text), Ending::Plain, "{text:?}");
        }
    }
}
