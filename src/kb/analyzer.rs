//! How passages and questions are cut into search terms: words, lower-cased, without stop
//! words, stemmed — Russian words by the Russian Snowball stemmer and English words by the
//! English one, so "цены", "цену" and "ценами" all find "цена", and "prices" finds "price".

use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};

/// The name the analyzer is registered under in the index.
pub const NAME: &str = "voxd_kb";

/// English words that carry no topic in a caller's question, beyond the short Lucene list
/// tantivy has (the Russian Snowball list already holds its pronouns and question words).
const ENGLISH_EXTRA_STOP_WORDS: &[&str] = &[
    "i", "me", "my", "you", "your", "yours", "we", "us", "our", "he", "she", "him", "her", "his",
    "its", "them", "what", "when", "where", "which", "who", "whom", "why", "how", "do", "does",
    "did", "can", "could", "would", "should", "shall", "may", "might", "must", "am", "been",
    "being", "have", "has", "had", "there", "here", "about", "please", "tell", "know", "hello",
    "hi", "want", "like", "get", "so", "just", "any", "some", "from", "up", "out", "also",
];

/// The analyzer for passages and questions alike.
///
/// Both stemmers run on every word: each only changes words of its own alphabet (the
/// Snowball algorithms work on their language's letters), so a mixed Russian and English
/// text needs no language detection. Unit tests below check that property.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(stop_words(Language::English))
        .filter(stop_words(Language::Russian))
        .filter(StopWordFilter::remove(
            ENGLISH_EXTRA_STOP_WORDS.iter().map(|w| w.to_string()),
        ))
        .filter(Stemmer::new(Language::Russian))
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The stop words tantivy ships for `lang` (both languages have a list).
fn stop_words(lang: Language) -> StopWordFilter {
    StopWordFilter::new(lang).unwrap_or_else(|| StopWordFilter::remove(Vec::<String>::new()))
}

/// The distinct terms of `text`, in order of appearance.
pub fn terms(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while let Some(token) = stream.next() {
        if !out.contains(&token.text) {
            out.push(token.text.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Vec<String> {
        terms(&mut analyzer(), text)
    }

    #[test]
    fn russian_inflections_share_a_stem() {
        assert_eq!(t("цена"), t("цены"));
        assert_eq!(t("цену"), t("ценами"));
        assert_eq!(t("работаете"), t("работаем"));
        assert_eq!(t("Доставка"), t("доставку"));
    }

    #[test]
    fn english_inflections_share_a_stem() {
        assert_eq!(t("price"), t("prices"));
        assert_eq!(t("opening"), t("opens"));
        assert_eq!(t("Deliveries"), t("delivery"));
    }

    #[test]
    fn stop_words_go_and_mixed_text_keeps_both_alphabets() {
        assert_eq!(t("What are your opening hours?"), ["open", "hour"]);
        assert_eq!(t("Где вы находитесь?"), ["наход"]);
        assert_eq!(t("Есть ли у вас Wi-Fi?"), ["wi", "fi"]);
        assert_eq!(t("Скидки for students"), ["скидк", "student"]);
    }
}
