//! Text to Piper phonemes with punctuation kept, as the reference Python Piper does it.
//!
//! piper-rs 0.2.0 phonemizes whole sentences through `espeak_TextToPhonemes`, which drops
//! clause punctuation: commas lose their pause and questions their intonation. Here the
//! text is split at clause punctuation, each clause is phonemized on its own, and the
//! punctuation is put back (attached to the clause, a space before the next one).

use std::sync::Mutex;

use anyhow::{anyhow, Result};

/// espeak-ng keeps global state (voice, buffers) and is not thread-safe: every call into it
/// goes through this lock.
static ESPEAK: Mutex<()> = Mutex::new(());

/// Punctuation that ends a clause when followed by whitespace or the end of the text.
const CLAUSE_PUNCT: &[char] = &[',', ';', ':', '.', '!', '?', '…'];
const SENTENCE_END: &[char] = &['.', '!', '?'];

/// A piece of text with the punctuation that closed it (if any).
#[derive(Debug, PartialEq)]
pub struct Clause<'a> {
    pub text: &'a str,
    pub punct: Option<char>,
}

/// Splits text into clauses at runs of punctuation followed by whitespace or the end of
/// the text ("3.5" and "e.g" stay whole). A run such as "?!" or "..." counts once: its first
/// sentence end if it has one, else its first mark; "…" counts as ".".
pub fn clauses(text: &str) -> Vec<Clause<'_>> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        let run_end = chars[i..]
            .iter()
            .take_while(|(_, c)| CLAUSE_PUNCT.contains(c))
            .count()
            + i;
        if run_end == i {
            i += 1;
            continue;
        }
        let at_break = chars.get(run_end).is_none_or(|(_, c)| c.is_whitespace());
        if at_break {
            let run: Vec<char> = chars[i..run_end]
                .iter()
                .map(|&(_, c)| if c == '…' { '.' } else { c })
                .collect();
            let punct = run
                .iter()
                .copied()
                .find(|c| SENTENCE_END.contains(c))
                .unwrap_or(run[0]);
            let piece = text[start..chars[i].0].trim();
            if !piece.is_empty() {
                out.push(Clause {
                    text: piece,
                    punct: Some(punct),
                });
            }
            start = chars.get(run_end).map_or(text.len(), |&(b, _)| b);
        }
        i = run_end;
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
    let _espeak = ESPEAK.lock().unwrap_or_else(|p| p.into_inner());
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
        let c = clauses("Hello, it costs 3.5 dollars; ok?! Yes… Wait...");
        let texts: Vec<_> = c.iter().map(|c| (c.text, c.punct)).collect();
        assert_eq!(
            texts,
            vec![
                ("Hello", Some(',')),
                ("it costs 3.5 dollars", Some(';')),
                ("ok", Some('?')),
                ("Yes", Some('.')),
                ("Wait", Some('.')),
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
