//! Sentence and clause boundaries in generated text: where a reply may be cut or handed
//! to the voice.

/// What ends a sentence.
const SENTENCE_END: [char; 4] = ['.', '!', '?', '…'];

/// Whether `piece` ends with a sentence's final punctuation (a whole sentence, not a clause).
pub fn is_complete(piece: &str) -> bool {
    piece.ends_with(SENTENCE_END)
}

/// Byte offsets just past each sentence end in `text`: '.', '!', '?' or '…' (or a run of
/// them) followed by whitespace. "3.5" and an unfinished trailing "Hello." do not count,
/// since the generator may still continue them.
pub fn ends(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut prev_terminal = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() && prev_terminal {
            out.push(i);
        }
        prev_terminal = SENTENCE_END.contains(&c);
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
}
