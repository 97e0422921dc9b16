//! Sentence and clause boundaries in generated text: where a reply may be cut or handed
//! to the voice.

/// What ends a sentence.
const SENTENCE_END: [char; 4] = ['.', '!', '?', '…'];

/// Abbreviations (lower case, without their last '.') after which a '.' does not end the
/// sentence: "ул. Ленина, д. 5", "в 2024 г. мы", "т.е. завтра", "Mr. Smith", "e.g. this".
/// Those that usually end a sentence ("и т.д.", "etc.") are left out: a cut there is right
/// far more often than not.
const ABBREVIATIONS: [&str; 36] = [
    // Russian
    "г", "гг", "ул", "д", "т.е", "т.к", "пр", "пер", "пл", "обл", "кв", "корп", "стр", "тел", "им",
    "проф", "доц", "напр", "см", "ср", "тыс", "млн", "млрд", "руб", "т.н", "и.о",
    // English
    "mr", "mrs", "ms", "dr", "prof", "st", "vs", "e.g", "i.e", "approx",
];

/// Whether the word that ends just before byte `dot` (a '.') in `text` is an abbreviation.
fn is_abbreviation(text: &str, dot: usize) -> bool {
    let word = text[..dot]
        .rsplit(|c: char| c.is_whitespace() || c == '(' || c == '«' || c == '"')
        .next()
        .unwrap_or("");
    let word = word.to_lowercase();
    ABBREVIATIONS.contains(&word.as_str())
}

/// Whether `piece` ends with a sentence's final punctuation (a whole sentence, not a clause).
pub fn is_complete(piece: &str) -> bool {
    piece.ends_with(SENTENCE_END)
}

/// Byte offsets just past each sentence end in `text`: '.', '!', '?' or '…' (or a run of
/// them) followed by whitespace. "3.5", an abbreviation's '.' ("ул.", "Mr.") and an
/// unfinished trailing "Hello." do not count, since the generator may still continue them.
pub fn ends(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut prev: Option<(usize, char)> = None;
    for (i, c) in text.char_indices() {
        if let Some((at, p)) = prev.filter(|_| c.is_whitespace()) {
            if SENTENCE_END.contains(&p) && !(p == '.' && is_abbreviation(text, at)) {
                out.push(i);
            }
        }
        prev = Some((i, c));
    }
    out
}

/// Byte offset just past the first clause end (',', ';', ':' or '—' followed by
/// whitespace) that has at least `min_words` words before it.
pub fn first_long_clause(text: &str, min_words: usize) -> Option<usize> {
    let mut prev = ' ';
    for (i, c) in text.char_indices() {
        if c.is_whitespace()
            && matches!(prev, ',' | ';' | ':' | '—')
            && text[..i].split_whitespace().count() >= min_words
        {
            return Some(i);
        }
        prev = c;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{ends, first_long_clause};

    #[test]
    fn long_clauses() {
        let t = "Yes, of course we are open, from nine to five on Saturdays.";
        assert_eq!(first_long_clause(t, 1).map(|i| &t[..i]), Some("Yes,"));
        assert_eq!(
            first_long_clause(t, 3).map(|i| &t[..i]),
            Some("Yes, of course we are open,")
        );
        assert_eq!(first_long_clause(t, 20), None);
        assert_eq!(first_long_clause("1,5 and 2,5", 1), None);
    }

    #[test]
    fn finds_complete_sentences_only() {
        let t = "It costs 3.5 euros. Really?! Yes… ok. Trailing.";
        let cut: Vec<&str> = ends(t).into_iter().map(|i| &t[..i]).collect();
        assert_eq!(
            cut,
            [
                "It costs 3.5 euros.",
                "It costs 3.5 euros. Really?!",
                "It costs 3.5 euros. Really?! Yes…",
                "It costs 3.5 euros. Really?! Yes… ok."
            ]
        );
        assert!(ends("No end yet").is_empty());
        assert!(ends("Привет! Как дела? ").len() == 2);
    }

    #[test]
    fn abbreviations_do_not_end_a_sentence() {
        let cut = |t: &'static str| -> Vec<&'static str> {
            ends(t).into_iter().map(|i| &t[..i]).collect()
        };
        assert_eq!(
            cut("Мы на ул. Ленина, д. 5, с 2019 г. работаем. Т.е. ждём вас. "),
            [
                "Мы на ул. Ленина, д. 5, с 2019 г. работаем.",
                "Мы на ул. Ленина, д. 5, с 2019 г. работаем. Т.е. ждём вас."
            ]
        );
        assert_eq!(
            cut("Это стоит 5 тыс. руб. в месяц, т.к. тариф новый. Да. "),
            [
                "Это стоит 5 тыс. руб. в месяц, т.к. тариф новый.",
                "Это стоит 5 тыс. руб. в месяц, т.к. тариф новый. Да."
            ]
        );
        assert_eq!(
            cut("Ask Mr. Smith, e.g. by phone. Fruit, nuts etc. Done. "),
            [
                "Ask Mr. Smith, e.g. by phone.",
                "Ask Mr. Smith, e.g. by phone. Fruit, nuts etc.",
                "Ask Mr. Smith, e.g. by phone. Fruit, nuts etc. Done."
            ]
        );
    }
}
