//! Sentence boundaries in generated text: where a reply may be cut or handed to the voice.

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
        prev_terminal = matches!(c, '.' | '!' | '?' | '…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::ends;

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
