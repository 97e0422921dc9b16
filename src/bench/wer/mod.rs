//! Word error rate, for the benchmarks and the tests that check what Whisper heard: the words of a
//! transcript as the scorer compares them (lower case, "ё" as "е", no punctuation, numbers as
//! digits) and the word-level edit distance between a reference and a hypothesis.

mod numbers;

/// The words of `s`, lower case, without punctuation.
pub fn words(s: &str) -> Vec<String> {
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

/// The words of `s` as the scorer compares them: lower case, ё as е, punctuation and hyphens
/// dropped, numbers as digits (digit groups joined: "1 500" → "1500"; number words in Russian
/// and English, however many words: "двадцать пять" → "25", "one hundred and twenty" → "120",
/// "две тысячи шестнадцатого" → "2016"; ordinals too: "первый"/"first"/"1st"/"1-й" → "1").
///
/// Also: digit groups are joined only when the first has one to three digits and each next one
/// exactly three ("1,500", "1 500 000"), so "5 1000" and "2015 2016" stay apart; "3.5" and "3,5"
/// are the decimal "3.5"; leading zeros are words of their own ("05" → "0 5"), so "9:00" is
/// "9 0 0" like "девять ноль ноль" and "18:30" is "18 30" like "восемнадцать тридцать"; "1 2 3"
/// stays three numbers, and digits from 1 to 999 before a scale word multiply it ("2 тысячи" →
/// "2000"). English contractions are written out ("don't" → "do not", "I'm" → "i am", "'s" →
/// "is" whether it is one or a possessive: both sides alike; "’" is read as "'"), stress marks
/// and soft hyphens are dropped. "oh" and "полтора" stay words.
pub fn normalised_words(s: &str) -> Vec<String> {
    let chars: Vec<char> = s
        .to_lowercase()
        .chars()
        .filter(|c| !matches!(c, '\u{301}' | '\u{308}' | '\u{ad}'))
        .map(|c| match c {
            'ё' => 'е',
            '’' | 'ʼ' | '‘' => '\'',
            '\u{2010}' | '\u{2011}' => '-',
            c => c,
        })
        .collect();
    let mut words = Vec::new();
    let mut chunk = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() && (i == 0 || !chars[i - 1].is_alphanumeric()) {
            let (number, end) = numbers::scan_number(&chars, i);
            chunk.push_str(&number);
            i = end;
            continue;
        }
        if c.is_alphanumeric() || c == '\'' || c == '-' {
            chunk.push(c);
        } else {
            split_chunk(&chunk, &mut words);
            chunk.clear();
        }
        i += 1;
    }
    split_chunk(&chunk, &mut words);
    numbers::numbers_to_digits(&words)
}

/// Pushes the words of `chunk`, a run of letters, digits, apostrophes and hyphens, onto `words`:
/// split on hyphens, unless it is digits with a hyphenated ending ("1-й"), and with the
/// apostrophes around each word dropped.
fn split_chunk(chunk: &str, words: &mut Vec<String>) {
    if let Some(digits) = numbers::digit_words(chunk) {
        words.extend(digits);
        return;
    }
    for part in chunk.split('-') {
        let part = part.trim_matches('\'');
        match numbers::digit_words(part) {
            Some(digits) => words.extend(digits),
            None if !part.is_empty() => words.extend(expanded(part)),
            None => {}
        }
    }
}

/// An English contraction as its words ("won't" → "will not", "they're" → "they are"); any
/// other word as it is.
fn expanded(word: &str) -> Vec<String> {
    const WHOLE: [(&str, &str, &str); 3] = [
        ("won't", "will", "not"),
        ("can't", "can", "not"),
        ("shan't", "shall", "not"),
    ];
    const ENDINGS: [(&str, &str); 7] = [
        ("n't", "not"),
        ("'re", "are"),
        ("'ve", "have"),
        ("'ll", "will"),
        ("'m", "am"),
        ("'d", "would"),
        ("'s", "is"),
    ];
    if let Some((_, a, b)) = WHOLE.iter().find(|(w, _, _)| *w == word) {
        return vec![a.to_string(), b.to_string()];
    }
    ENDINGS
        .iter()
        .find_map(|(ending, full)| {
            let stem = word.strip_suffix(ending)?;
            (!stem.is_empty()).then(|| vec![stem.to_string(), full.to_string()])
        })
        .unwrap_or_else(|| vec![word.to_string()])
}

/// Word errors of one utterance: (edits, reference words), for corpus-level WER
/// (sum of edits / sum of reference words).
pub fn errors(reference: &str, hyp: &str) -> (usize, usize) {
    let reference = normalised_words(reference);
    let hyp = normalised_words(hyp);
    (edit_distance(&reference, &hyp), reference.len())
}

/// Word error rate of `hyp` against `reference`, compared as `normalised_words`. With no
/// reference words it is 0 when the hypothesis has none either, and 1 otherwise.
pub fn wer(reference: &str, hyp: &str) -> f64 {
    match errors(reference, hyp) {
        (0, _) => 0.0,
        (_, 0) => 1.0,
        (edits, words) => edits as f64 / words as f64,
    }
}

/// Levenshtein distance between two word sequences: substitutions, insertions and deletions.
fn edit_distance(a: &[String], b: &[String]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if x == y {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_words_table() {
        let cases: &[(&str, &str)] = &[
            // Case, ё, punctuation, hyphens, apostrophes.
            ("Ёлка, ЁЖ и всё!", "елка еж и все"),
            ("«Привет», — сказал он.", "привет сказал он"),
            ("кто-то где‑то", "кто то где то"),
            (
                "Don't stop ‘quoted’ rock’n’roll",
                "do not stop quoted rock'n'roll",
            ),
            ("за\u{301}мок е\u{308}лка", "замок елка"),
            // Digits.
            ("с 9 до 18", "с 9 до 18"),
            ("1 500 рублей", "1500 рублей"),
            ("1,500 and 10,000", "1500 and 10000"),
            ("1\u{a0}500 2\u{202f}000\u{202f}000", "1500 2000000"),
            (
                "5 1000, 2015 2016, 1 2 3, 12 34",
                "5 1000 2015 2016 1 2 3 12 34",
            ),
            ("3.5 3,5 1 500,25", "3.5 3.5 1500.25"),
            ("1, 2, 3", "1 2 3"),
            ("mp3 500", "mp3 500"),
            ("9:00 18:30, 05, 007", "9 0 0 18 30 0 5 0 0 7"),
            ("1st 2nd 3rd 4th 21st", "1 2 3 4 21"),
            ("1-й 2-х 5-ти 15-го 90-х", "1 2 5 15 90"),
            ("covid-19 2-3", "covid 19 2 3"),
            (
                "123456789012345678901234567890",
                "123456789012345678901234567890",
            ),
            (
                "999999999999999999999 thousand",
                "999999999999999999999 1000",
            ),
            ("2 тысячи 5 million 1500 тысяч", "2000 5000000 1500 1000"),
            // Russian number words.
            ("Двадцать пять рублей", "25 рублей"),
            ("с девяти до восемнадцати", "с 9 до 18"),
            ("сто двадцать три", "123"),
            ("две тысячи двадцать шесть", "2026"),
            ("одна тысяча девятьсот", "1900"),
            ("тысяча", "1000"),
            ("двадцать пятое", "25"),
            ("две тысячи шестнадцатого года", "2016 года"),
            ("тысяча девятьсот девяносто пятого", "1995"),
            ("один два три", "1 2 3"),
            ("двадцать двадцать", "20 20"),
            ("пять сто", "5 100"),
            ("девять ноль ноль", "9 0 0"),
            ("ноль нуль нуля", "0 0 0"),
            ("сорок сорока семьдесят семь", "40 40 77"),
            ("пятьсот тысяч три миллиона", "500000 3000000"),
            ("двумястами пятистах восемьюстами", "200 500 800"),
            ("о двух тысячах пятистах", "о 2500"),
            ("пятью тысячами", "5000"),
            (
                "первый первая первое первого первой первому первым первом",
                "1 1 1 1 1 1 1 1",
            ),
            ("второй третий третьей четвёртом", "2 3 3 4"),
            ("одиннадцатый двадцатый тридцатый", "11 20 30"),
            ("сто первый сотый тысячный", "101 100 1000"),
            ("в двухтысячном году трёхсотый", "в 2000 году 300"),
            ("восьмидесятых девяностые", "80 90"),
            ("тысяча тысяч", "1000 1000"),
            ("пятьсот тысяч три", "500003"),
            (
                "five hundred thousand and three million",
                "500000 and 3000000",
            ),
            ("миллион двести тысяч", "1200000"),
            ("полтора", "полтора"),
            // English number words.
            ("one hundred and twenty", "120"),
            ("one and two", "1 and 2"),
            ("twenty-five twenty five", "25 25"),
            ("twenty-first", "21"),
            ("first second third tenth", "1 2 3 10"),
            ("a hundred", "a 100"),
            ("hundred", "100"),
            ("twelve hundred", "1200"),
            ("nineteen hundred and five", "1905"),
            ("two thousand and sixteen", "2016"),
            ("one thousand and one nights", "1001 nights"),
            ("two million three hundred thousand", "2300000"),
            ("one hundred first", "101"),
            ("zero oh", "0 oh"),
            ("ten twenty", "10 20"),
            ("five hundred and", "500 and"),
        ];
        for &(input, expected) in cases {
            let expected: Vec<&str> = expected.split_whitespace().collect();
            assert_eq!(normalised_words(input), expected, "input: {input:?}");
        }
    }

    #[test]
    fn words_keeps_its_old_meaning() {
        assert_eq!(words("Ёлка, don't 1 500!"), ["ёлка", "don't", "1", "500"]);
    }

    #[test]
    fn no_panic_on_odd_text() {
        let odd = "1 -1- -- ' '' 1, 1. ,5 .5 1-- 0 00 0.0 9 99999999999999999999999 \u{0} 𝟙𝟚 ١٢٣ \
                   五百 ß ǅ İ ё\u{308} 1\u{a0} 1 50 1 5000 999 триллионов 999 миллиардов trillion \
                   and and one and 1st-й 1-st 5-тысячный é\u{301}";
        let chars: Vec<char> = odd.chars().collect();
        for start in 0..chars.len() {
            for end in start..=chars.len().min(start + 12) {
                let piece: String = chars[start..end].iter().collect();
                normalised_words(&piece);
            }
        }
        assert_eq!(
            normalised_words(
                "девятьсот девяносто девять триллионов девятьсот девяносто девять миллиардов"
            ),
            ["999999000000000"]
        );
        assert_eq!(
            normalised_words("999 триллионов 999"),
            ["999000000000000", "999"]
        );
    }

    #[test]
    fn wer_normalises() {
        assert_eq!(wer("с 9 до 18", "с девяти до восемнадцати"), 0.0);
        assert_eq!(wer("Двадцать пять рублей", "25 рублей"), 0.0);
        assert_eq!(wer("ёлка", "елка"), 0.0);
        assert_eq!(wer("one hundred and twenty", "120"), 0.0);
        assert_eq!(wer("в 2016 году", "в две тысячи шестнадцатом году"), 0.0);
        assert_eq!(wer("1-й этаж", "первый этаж"), 0.0);
        assert_eq!(wer("Встреча в 9:00.", "встреча в девять ноль ноль"), 0.0);
        assert_eq!(wer("Hello, World!", "hello world"), 0.0);
        assert_eq!(
            wer(
                "I am sorry, that's not valid",
                "I'm sorry, that is not valid"
            ),
            0.0
        );
        assert_eq!(
            wer("You won't, they can't", "you will not, they can not"),
            0.0
        );
        assert_eq!(
            wer("the party you are calling", "the party you're calling"),
            0.0
        );
    }

    #[test]
    fn wer_counts_errors() {
        assert_eq!(wer("one two three four", "one too three"), 0.5);
        assert_eq!(wer("a b", "a b c d"), 1.0);
        assert_eq!(wer("a b", ""), 1.0);
        assert_eq!(wer("", ""), 0.0);
        assert_eq!(wer("", "a"), 1.0);
        assert_eq!(wer("пять сто", "500"), 1.0);
    }

    #[test]
    fn errors_for_corpus_wer() {
        assert_eq!(errors("", ""), (0, 0));
        assert_eq!(errors("one two three four", "one too three"), (2, 4));
        assert_eq!(errors("a b", "a b c d"), (2, 2));
        assert_eq!(errors("двадцать пять рублей", "25 рубля"), (1, 2));
        assert_eq!(errors("", "a b"), (2, 0));
        assert_eq!(errors("kitten sitting", "sitting kitten on"), (2, 2));
    }
}
