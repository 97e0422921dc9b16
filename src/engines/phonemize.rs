//! Text to Piper phonemes with punctuation kept, as the reference Python Piper does it.
//!
//! piper-rs 0.2.0 phonemizes whole sentences through `espeak_TextToPhonemes`, which drops
//! clause punctuation: commas lose their pause and questions their intonation. Here the
//! text is split at clause punctuation, each clause is phonemized on its own, and the
//! punctuation is put back (attached to the clause, a space before the next one).

use anyhow::{anyhow, Result};

/// Punctuation that ends a clause when followed by whitespace or the end of the text.
const CLAUSE_PUNCT: &[char] = &[',', ';', ':', '.', '!', '?', '…'];
const SENTENCE_END: &[char] = &['.', '!', '?'];

/// A piece of text with the punctuation that closed it (if any).
#[derive(Debug, PartialEq)]
pub struct Clause<'a> {
    pub text: &'a str,
    pub punct: Option<char>,
}

/// Splits text into clauses at punctuation that is followed by whitespace or the end
/// ("3.5" and "e.g" stay whole).
pub fn clauses(text: &str) -> Vec<Clause<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let at_break = iter.peek().is_none_or(|(_, n)| n.is_whitespace());
        if CLAUSE_PUNCT.contains(&c) && at_break {
            let piece = text[start..i].trim();
            let punct = if c == '…' { '.' } else { c };
            if !piece.is_empty() {
                out.push(Clause {
                    text: piece,
                    punct: Some(punct),
                });
            } else if let Some(last) = out.last_mut() {
                // "?!" or "..." : the first mark wins unless a sentence end follows a comma.
                if !last.punct.is_some_and(|p| SENTENCE_END.contains(&p)) {
                    last.punct = Some(punct);
                }
            }
            start = i + c.len_utf8();
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(Clause {
            text: rest,
            punct: None,
        });
    }
    out
}

/// Phonemizes `text` for the espeak `voice`; one phoneme string per sentence.
pub fn phonemize(text: &str, voice: &str) -> Result<Vec<String>> {
    let mut sentences = Vec::new();
    let mut current = String::new();
    for clause in clauses(text) {
        let phonemes = espeak_rs::text_to_phonemes(clause.text, voice, None)
            .map_err(|e| anyhow!("espeak-ng could not phonemize {:?}: {e}", clause.text))?
            .join(" ");
        let phonemes = phonemes.trim().trim_end_matches(CLAUSE_PUNCT).trim_end();
        if phonemes.is_empty() {
            continue;
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(phonemes);
        if let Some(p) = clause.punct {
            current.push(p);
            if SENTENCE_END.contains(&p) {
                sentences.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        sentences.push(current);
    }
    Ok(sentences)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_clause_punctuation_only_before_space() {
        let c = clauses("Hello, it costs 3.5 dollars; ok?! Yes…");
        let texts: Vec<_> = c.iter().map(|c| (c.text, c.punct)).collect();
        assert_eq!(
            texts,
            vec![
                ("Hello", Some(',')),
                ("it costs 3.5 dollars", Some(';')),
                ("ok", Some('?')),
                ("Yes", Some('.')),
            ]
        );
        assert_eq!(
            clauses("no punctuation"),
            vec![Clause {
                text: "no punctuation",
                punct: None
            }]
        );
        assert!(clauses(" , ").is_empty());
    }
}
