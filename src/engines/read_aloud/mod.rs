//! Read-aloud normalisation for speech synthesis (Piper + espeak-ng): rewrites
//! reply text so numbers, dates, times, money, phone numbers and abbreviations
//! are spoken right. This file owns the public entry point, the language
//! dispatch, the tokenizer, the rewrite loop and the token-pattern scanners
//! shared by the per-language rules in `ru.rs` and `en.rs`.

mod en;
mod ru;
#[cfg(test)]
mod tests;

use std::ops::RangeInclusive;

/// Reply text rewritten so a voice reads it aloud right in `language`
/// (an ISO 639-1 code or an espeak-ng voice name: "ru", "ru-RU", "ru_RU", "en", "en-us", "en_US"...).
/// Unknown languages: text returned unchanged.
pub fn for_speech(text: &str, language: &str) -> String {
    match primary_language(language).as_str() {
        "ru" => rewrite(text, ru::RULES),
        "en" => rewrite(text, en::RULES),
        _ => text.to_string(),
    }
}

/// The language to read `text` in with a voice of `voice_language`: Russian when an English
/// voice reads text whose letters are mostly Cyrillic (a Russian reply's numbers stay Russian
/// words), else the voice's (a Ukrainian voice's Cyrillic is not Russian).
pub fn language_of<'a>(text: &str, voice_language: &'a str) -> &'a str {
    if primary_language(voice_language) != "en" {
        return voice_language;
    }
    let (mut cyrillic, mut letters) = (0usize, 0usize);
    for c in text.chars().filter(|c| c.is_alphabetic()) {
        letters += 1;
        cyrillic += usize::from(matches!(c, '\u{0400}'..='\u{04FF}'));
    }
    if cyrillic * 2 > letters {
        "ru"
    } else {
        voice_language
    }
}

/// "gmw/en-US" → "en", "ru_RU.UTF-8" → "ru".
pub(super) fn primary_language(language: &str) -> String {
    let voice = language.trim().rsplit('/').next().unwrap_or_default();
    voice
        .split(['-', '_', '.'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// A language's units after a number: abbreviations ("km", "руб."), symbols ("$", "%"),
/// speeds ("km/h") and degrees ("°", "°C", "°F"), each with the language's own unit type.
struct Units<U: 'static> {
    words: &'static [(&'static str, U)],
    symbols: &'static [(char, &'static U)],
    /// Each speed's two abbreviations ("km", "h") and its unit.
    speeds: [(&'static str, &'static str, &'static U); 2],
    /// Degrees alone, Celsius and Fahrenheit.
    degrees: [&'static U; 3],
    /// What may follow "°" for Celsius ("C", and the Cyrillic "С" in Russian).
    celsius: &'static [&'static str],
}

/// A unit found after a number, where it ends, and whether its abbreviation's dot was
/// consumed.
struct Found<U: 'static> {
    unit: &'static U,
    end: usize,
    dot: bool,
}

impl<U> Clone for Found<U> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<U> Copy for Found<U> {}

impl<U> Units<U> {
    /// A unit symbol or abbreviation at `j`, after an optional space.
    fn scan(&self, toks: &[Tok<'_>], j: usize) -> Option<Found<U>> {
        let k = skip_space(toks, j);
        if let Some(symbol) = char_at(toks, k) {
            return self.symbol(toks, k, symbol);
        }
        let word = word_at(toks, k)?;
        if let Some(speed) = self.speed(toks, k, word) {
            return Some(speed);
        }
        let (_, unit) = self.words.iter().find(|(name, _)| *name == word)?;
        let dot = is_char(toks, k + 1, '.');
        Some(Found {
            unit,
            end: k + 1 + usize::from(dot),
            dot,
        })
    }

    /// "km/h", "м/с".
    fn speed(&self, toks: &[Tok<'_>], k: usize, word: &str) -> Option<Found<U>> {
        if !is_char(toks, k + 1, '/') {
            return None;
        }
        let per = word_at(toks, k + 2)?;
        let &(_, _, unit) = self
            .speeds
            .iter()
            .find(|(a, b, _)| *a == word && *b == per)?;
        Some(Found {
            unit,
            end: k + 3,
            dot: false,
        })
    }

    fn symbol(&self, toks: &[Tok<'_>], k: usize, symbol: char) -> Option<Found<U>> {
        if symbol == '°' {
            return Some(self.degrees(toks, k));
        }
        let &(_, unit) = self.symbols.iter().find(|(s, _)| *s == symbol)?;
        Some(Found {
            unit,
            end: k + 1,
            dot: false,
        })
    }

    /// "°", "°C", "° C", "°F".
    fn degrees(&self, toks: &[Tok<'_>], k: usize) -> Found<U> {
        let m = skip_space(toks, k + 1);
        let [plain, celsius, fahrenheit] = self.degrees;
        let (unit, end) = match word_at(toks, m) {
            Some(w) if self.celsius.contains(&w) => (celsius, m + 1),
            Some("F") => (fahrenheit, m + 1),
            _ => (plain, k + 1),
        };
        Found {
            unit,
            end,
            dot: false,
        }
    }
}

/// Largest number read as a number; longer digit runs are read digit by digit.
const MAX_DIGITS: usize = 15;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Word,
    Digits,
    Space,
    Other,
}

/// A run of letters, ASCII digits or whitespace, or one other character.
#[derive(Clone, Copy)]
struct Tok<'a> {
    kind: Kind,
    text: &'a str,
}

fn kind_of(c: char) -> Kind {
    if c.is_ascii_digit() {
        Kind::Digits
    } else if c.is_alphabetic() {
        Kind::Word
    } else if c.is_whitespace() {
        Kind::Space
    } else {
        Kind::Other
    }
}

fn tokenize(text: &str) -> Vec<Tok<'_>> {
    let mut toks = Vec::new();
    let mut start = 0;
    let mut current: Option<Kind> = None;
    for (pos, c) in text.char_indices() {
        let kind = kind_of(c);
        if let Some(open) = current.filter(|&open| open != kind || kind == Kind::Other) {
            toks.push(Tok {
                kind: open,
                text: &text[start..pos],
            });
            start = pos;
        }
        current = Some(kind);
    }
    if let Some(kind) = current {
        toks.push(Tok {
            kind,
            text: &text[start..],
        });
    }
    toks
}

/// What a rule made of the tokens from where it was tried up to `end`.
struct Rewrite {
    end: usize,
    text: String,
}

/// A rewrite rule tried at token `i`; `None` when it does not apply there.
type Rule = fn(&[Tok<'_>], usize) -> Option<Rewrite>;

fn rewrite(text: &str, rules: &[Rule]) -> String {
    let toks = tokenize(text);
    let mut out = String::with_capacity(text.len() * 2);
    let mut i = 0;
    let mut after_rewrite = false;
    while i < toks.len() {
        if let Some(done) = rules.iter().find_map(|rule| rule(&toks, i)) {
            push_spaced(&mut out, &done.text);
            i = done.end.max(i + 1);
            after_rewrite = true;
        } else {
            let tok = toks[i];
            if after_rewrite && tok.kind == Kind::Word {
                push_spaced(&mut out, tok.text);
            } else {
                out.push_str(tok.text);
            }
            i += 1;
            after_rewrite = false;
        }
    }
    out
}

/// Appends `piece`, with a space where it would otherwise glue two words ("iPhone15").
fn push_spaced(out: &mut String, piece: &str) {
    if out.ends_with(char::is_alphabetic) && piece.starts_with(char::is_alphabetic) {
        out.push(' ');
    }
    out.push_str(piece);
}

fn char_at(toks: &[Tok<'_>], j: usize) -> Option<char> {
    toks.get(j)
        .filter(|t| t.kind == Kind::Other)
        .and_then(|t| t.text.chars().next())
}

fn is_char(toks: &[Tok<'_>], j: usize, c: char) -> bool {
    char_at(toks, j) == Some(c)
}

fn is_dash(toks: &[Tok<'_>], j: usize) -> bool {
    matches!(char_at(toks, j), Some('-' | '–' | '—'))
}

fn digits_at<'a>(toks: &[Tok<'a>], j: usize) -> Option<&'a str> {
    toks.get(j)
        .filter(|t| t.kind == Kind::Digits)
        .map(|t| t.text)
}

fn word_at<'a>(toks: &[Tok<'a>], j: usize) -> Option<&'a str> {
    toks.get(j).filter(|t| t.kind == Kind::Word).map(|t| t.text)
}

/// Whitespace within a line.
fn is_space(toks: &[Tok<'_>], j: usize) -> bool {
    toks.get(j)
        .is_some_and(|t| t.kind == Kind::Space && !t.text.contains('\n'))
}

/// `j`, or the token after it when `j` is whitespace within a line.
fn skip_space(toks: &[Tok<'_>], j: usize) -> usize {
    if is_space(toks, j) {
        j + 1
    } else {
        j
    }
}

/// One space, no-break space, narrow no-break space or thin space: a digit-group separator.
fn is_group_space(toks: &[Tok<'_>], j: usize, plain: bool) -> bool {
    toks.get(j).is_some_and(|t| {
        t.kind == Kind::Space
            && (matches!(t.text, "\u{a0}" | "\u{202f}" | "\u{2009}") || (plain && t.text == " "))
    })
}

/// The number at token `j` when it has at most `max_len` digits and lies in `range`.
fn number_at(
    toks: &[Tok<'_>],
    j: usize,
    max_len: usize,
    range: RangeInclusive<u64>,
) -> Option<u64> {
    digits_at(toks, j)
        .filter(|d| d.len() <= max_len)
        .and_then(|d| d.parse().ok())
        .filter(|n| range.contains(n))
}

/// The lowercased word just before token `i`, looking past spaces and a sign.
fn prev_word(toks: &[Tok<'_>], i: usize) -> Option<String> {
    let mut k = i;
    for _ in 0..3 {
        k = k.checked_sub(1)?;
        let tok = toks.get(k)?;
        match tok.kind {
            Kind::Word => return Some(tok.text.to_lowercase()),
            Kind::Space => {}
            Kind::Other if matches!(tok.text, "+" | "-" | "−") => {}
            _ => return None,
        }
    }
    None
}

/// The word that governs the case of the number at `i`: the word before it,
/// or, after "и"/"или" joining two numbers ("между 4 и 5"), the word before the first number.
fn governing_word(toks: &[Tok<'_>], i: usize) -> Option<String> {
    let word = prev_word(toks, i)?;
    if !matches!(word.as_str(), "и" | "или") {
        return Some(word);
    }
    let first_number = i.checked_sub(4).filter(|&d| {
        is_space(toks, d + 1) && is_space(toks, d + 3) && digits_at(toks, d).is_some()
    });
    first_number.and_then(|d| prev_word(toks, d)).or(Some(word))
}

/// The word at `j`, or after the space at `j`.
fn next_word<'a>(toks: &[Tok<'a>], j: usize) -> Option<&'a str> {
    word_at(toks, skip_space(toks, j))
}

fn is_capitalised(word: &str) -> bool {
    word.chars().next().is_some_and(char::is_uppercase)
}

/// `expansion` with its first letter capitalised when `source` starts with a capital.
fn match_case(source: &str, expansion: &str) -> String {
    if !is_capitalised(source) {
        return expansion.to_string();
    }
    let mut chars = expansion.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Whether a sentence seems to end before token `j`: end of text, a line break,
/// or a space followed by a capitalised word.
fn sentence_ends_at(toks: &[Tok<'_>], j: usize) -> bool {
    match toks.get(j) {
        None => true,
        Some(tok) if tok.kind == Kind::Space => {
            tok.text.contains('\n')
                || toks
                    .get(j + 1)
                    .is_none_or(|next| next.kind == Kind::Word && is_capitalised(next.text))
        }
        Some(_) => false,
    }
}

/// The abbreviation dot to keep after an expansion: kept only where it also ends a sentence.
fn kept_dot(toks: &[Tok<'_>], end: usize, dot: bool) -> &'static str {
    if dot && sentence_ends_at(toks, end) {
        "."
    } else {
        ""
    }
}

/// Whether the word at `p` opens a sentence.
fn starts_sentence(toks: &[Tok<'_>], p: usize) -> bool {
    let Some(mut q) = p.checked_sub(1) else {
        return true;
    };
    if is_space(toks, q) {
        let Some(before) = q.checked_sub(1) else {
            return true;
        };
        q = before;
    }
    matches!(char_at(toks, q), Some('.' | '!' | '?'))
        || toks.get(q).is_some_and(|t| t.kind == Kind::Space)
}

/// "т.е.", "т. е.", "e.g.": `first`, a dot, an optional space, `second`, an
/// optional dot (case-insensitive). Returns where it ends and whether the final dot is there.
fn dotted_phrase(toks: &[Tok<'_>], i: usize, first: &str, second: &str) -> Option<(usize, bool)> {
    let is =
        |j: usize, expected: &str| word_at(toks, j).is_some_and(|w| w.to_lowercase() == expected);
    if !is(i, first) || !is_char(toks, i + 1, '.') {
        return None;
    }
    let k = skip_space(toks, i + 2);
    if !is(k, second) {
        return None;
    }
    let dot = is_char(toks, k + 1, '.');
    Some((k + 1 + usize::from(dot), dot))
}

/// A "+" or "-" glued to a number and not after a word or number: `Some(true)` for minus.
fn sign_at(toks: &[Tok<'_>], i: usize) -> Option<bool> {
    let minus = match char_at(toks, i)? {
        '-' | '−' => true,
        '+' => false,
        _ => return None,
    };
    digits_at(toks, i + 1)?;
    let free = i.checked_sub(1).and_then(|p| toks.get(p)).is_none_or(|t| {
        t.kind == Kind::Space || matches!(t.text, "(" | "[" | "/" | ":" | "=" | "≈" | "~")
    });
    free.then_some(minus)
}

/// The value of a written number.
enum Amount {
    Whole(u64),
    /// Whole part and the digits after the decimal mark.
    Decimal(u64, String),
    /// Too long to read as a number, or with leading zeros: read digit by digit.
    Digits(String),
}

/// A number as written, possibly with digit groups and a decimal part.
struct Numeral {
    amount: Amount,
    end: usize,
    /// A single run of digits, no group separators or decimal part.
    plain: bool,
}

/// The decimal marks and the digit-group marks (besides spaces) of a language.
struct Marks {
    decimal: &'static [char],
    group: &'static [char],
    /// A plain space groups digits ("1 500"; non-breaking and thin spaces always do). Not
    /// in English, where "555 000 1111" is three numbers.
    space_groups: bool,
}

/// The number starting at token `i`: "1500", "1 500", "1,500" (English), "3,5" (Russian).
fn scan_numeral(toks: &[Tok<'_>], i: usize, marks: &Marks) -> Option<Numeral> {
    let first = digits_at(toks, i)?;
    let mut int = first.to_string();
    let mut j = i + 1;
    if first.len() <= 3 && !first.starts_with('0') {
        while int.len() < MAX_DIGITS {
            let separated = is_group_space(toks, j, marks.space_groups)
                || char_at(toks, j).is_some_and(|c| marks.group.contains(&c));
            match digits_at(toks, j + 1) {
                Some(group) if separated && group.len() == 3 => {
                    int.push_str(group);
                    j += 2;
                }
                _ => break,
            }
        }
    }
    let plain = j == i + 1;
    if int.len() > MAX_DIGITS || (int.len() > 1 && int.starts_with('0')) {
        return Some(Numeral {
            amount: Amount::Digits(int),
            end: j,
            plain,
        });
    }
    let whole = int.parse().ok()?;
    Some(match fraction_at(toks, i, j, marks.decimal) {
        Some(frac) => Numeral {
            amount: Amount::Decimal(whole, frac.to_string()),
            end: j + 2,
            plain: false,
        },
        None => Numeral {
            amount: Amount::Whole(whole),
            end: j,
            plain,
        },
    })
}

/// The digits after a decimal mark at `j`, unless the number is part of a
/// chain like "1.2.3.4" (an address or version, read number by number).
fn fraction_at<'a>(toks: &[Tok<'a>], i: usize, j: usize, marks: &[char]) -> Option<&'a str> {
    let is_mark = |k: usize| char_at(toks, k).is_some_and(|c| marks.contains(&c));
    let chained_after = is_mark(j + 2) && digits_at(toks, j + 3).is_some();
    let chained_before = i >= 2 && is_mark(i - 1) && digits_at(toks, i - 2).is_some();
    if !is_mark(j) || chained_after || chained_before {
        return None;
    }
    digits_at(toks, j + 1)
}

/// "2-3": the dash and the number after `first`, when they are glued to it.
fn range_end<'a>(toks: &[Tok<'a>], first: &Numeral, marks: &Marks) -> Option<(&'a str, Numeral)> {
    if !is_dash(toks, first.end) {
        return None;
    }
    let second = scan_numeral(toks, first.end + 1, marks)?;
    let chained = is_dash(toks, second.end) && digits_at(toks, second.end + 1).is_some();
    let dash = toks.get(first.end)?.text;
    (!chained).then_some((dash, second))
}

/// A clock time "9:30" or "09:30:15".
#[derive(Clone, Copy)]
struct Clock {
    hour: u64,
    minute: u64,
    second: Option<u64>,
    end: usize,
}

fn scan_clock(toks: &[Tok<'_>], i: usize) -> Option<Clock> {
    let hour = number_at(toks, i, 2, 0..=24)?;
    let minute = clock_field(toks, i + 1)?;
    let second = clock_field(toks, i + 3);
    let end = if second.is_some() { i + 5 } else { i + 3 };
    let glued_before = i.checked_sub(1).is_some_and(|p| is_char(toks, p, ':'));
    let glued_after = is_char(toks, end, ':') && digits_at(toks, end + 1).is_some();
    (!glued_before && !glued_after).then_some(Clock {
        hour,
        minute,
        second,
        end,
    })
}

/// ":MM" with exactly two digits, 00 to 59.
fn clock_field(toks: &[Tok<'_>], j: usize) -> Option<u64> {
    if !is_char(toks, j, ':') || digits_at(toks, j + 1)?.len() != 2 {
        return None;
    }
    number_at(toks, j + 1, 2, 0..=59)
}

/// A dash between two times, with optional spaces: where the second time starts.
fn scan_dash(toks: &[Tok<'_>], j: usize) -> Option<usize> {
    let k = skip_space(toks, j);
    is_dash(toks, k).then(|| skip_space(toks, k + 1))
}

/// A calendar date; `month` is 1 to 12.
struct Date {
    day: u64,
    month: u64,
    year: Option<u64>,
    end: usize,
}

/// Two numbers of one or two digits and an optional four-digit year, joined by
/// `sep`: "07.12.2026", "12/07/2026", "07.12". Which part is the day is up to the language.
struct NumericDate {
    first: u64,
    second: u64,
    year: Option<u64>,
    /// The second part has two digits, and so has the first or the second
    /// starts with 0: "07.12", "1.03" (not "3.5" or "12.5").
    padded: bool,
    end: usize,
}

fn scan_numeric_date(toks: &[Tok<'_>], i: usize, sep: char) -> Option<NumericDate> {
    let (a, b) = (digits_at(toks, i)?, digits_at(toks, i + 2)?);
    if !is_char(toks, i + 1, sep) || a.len() > 2 || b.len() > 2 {
        return None;
    }
    let chained_before = i >= 2 && is_char(toks, i - 1, sep) && digits_at(toks, i - 2).is_some();
    let year = if is_char(toks, i + 3, sep) {
        digits_at(toks, i + 4).filter(|y| y.len() == 4)
    } else {
        None
    };
    let end = if year.is_some() { i + 5 } else { i + 3 };
    let chained_after = is_char(toks, end, sep) && digits_at(toks, end + 1).is_some();
    if chained_before || chained_after {
        return None;
    }
    Some(NumericDate {
        first: a.parse().ok()?,
        second: b.parse().ok()?,
        year: year.and_then(|y| y.parse().ok()),
        padded: b.len() == 2 && (a.len() == 2 || b.starts_with('0')),
        end,
    })
}

/// "2026-12-07".
fn scan_iso_date(toks: &[Tok<'_>], i: usize) -> Option<Date> {
    if digits_at(toks, i)?.len() != 4 || !is_char(toks, i + 1, '-') || !is_char(toks, i + 3, '-') {
        return None;
    }
    let year = number_at(toks, i, 4, 1000..=9999)?;
    let month = number_at(toks, i + 2, 2, 1..=12)?;
    let day = number_at(toks, i + 4, 2, 1..=31)?;
    let end = i + 5;
    if is_dash(toks, end) && digits_at(toks, end + 1).is_some() {
        return None;
    }
    Some(Date {
        day,
        month,
        year: Some(year),
        end,
    })
}

/// Digit groups that may be a phone number: "+7 (495) 123-45-67", "8-800-555-35-35".
struct Phone<'a> {
    plus: bool,
    groups: Vec<&'a str>,
    parens: bool,
    hyphens: usize,
    end: usize,
}

const MAX_PHONE_GROUPS: usize = 8;

/// How a language reads a phone number: "plus ", where it cuts the digits, and a group's words.
struct PhoneReading {
    plus: &'static str,
    run_sizes: fn(&str) -> Vec<usize>,
    group_sizes: fn(usize) -> Vec<usize>,
    words: fn(&str) -> String,
}

impl<'a> Phone<'a> {
    fn digit_count(&self) -> usize {
        self.groups.iter().map(|g| g.len()).sum()
    }

    /// Written like a phone number: 7 to 15 digits with a leading "+", an area
    /// code in brackets, two or more hyphens, or four or more groups that are not thousands.
    fn is_formatted(&self) -> bool {
        let marked = self.plus
            || self.parens
            || self.hyphens >= 2
            || (self.groups.len() >= 4 && !self.is_thousands());
        marked && (7..=15).contains(&self.digit_count())
    }

    /// The number read aloud in a language's way: `plus` for a leading "+", then its groups
    /// (as written, a long one cut by `group_sizes`; one written without separators cut by
    /// `run_sizes`), each in `words`, with a pause between them.
    fn read_aloud(&self, way: &PhoneReading) -> Rewrite {
        let groups: Vec<&str> = match self.groups[..] {
            [run] => split_digits(run, &(way.run_sizes)(run)),
            _ => self
                .groups
                .iter()
                .flat_map(|group| split_digits(group, &(way.group_sizes)(group.len())))
                .collect(),
        };
        let words: Vec<String> = groups.into_iter().map(way.words).collect();
        let plus = if self.plus { way.plus } else { "" };
        Rewrite {
            end: self.end,
            text: format!("{plus}{}", words.join(", ")),
        }
    }

    fn is_thousands(&self) -> bool {
        self.groups.first().is_some_and(|g| g.len() <= 3)
            && self.groups.iter().skip(1).all(|g| g.len() == 3)
    }
}

fn scan_phone<'a>(toks: &[Tok<'a>], i: usize) -> Option<Phone<'a>> {
    let plus = is_char(toks, i, '+');
    let mut j = if plus { i + 1 } else { i };
    if plus && digits_at(toks, j).is_none() {
        return None;
    }
    let mut phone = Phone {
        plus,
        groups: Vec::new(),
        parens: false,
        hyphens: 0,
        end: j,
    };
    while phone.groups.len() < MAX_PHONE_GROUPS {
        let Some((group, end, paren)) = phone_group(toks, j) else {
            break;
        };
        phone.groups.push(group);
        phone.parens |= paren;
        phone.end = end;
        let (next, hyphen) = phone_separator(toks, end);
        if phone_group(toks, next).is_none() {
            break;
        }
        phone.hyphens += usize::from(hyphen);
        j = next;
    }
    (!phone.groups.is_empty()).then_some(phone)
}

/// "495" or "(495)": the digits, where the group ends, and whether it was bracketed.
fn phone_group<'a>(toks: &[Tok<'a>], j: usize) -> Option<(&'a str, usize, bool)> {
    if is_char(toks, j, '(') {
        let digits = digits_at(toks, j + 1)?;
        return is_char(toks, j + 2, ')').then_some((digits, j + 3, true));
    }
    digits_at(toks, j).map(|d| (d, j + 1, false))
}

/// A space, a hyphen or both between phone groups: where the next group starts and whether a hyphen was seen.
fn phone_separator(toks: &[Tok<'_>], j: usize) -> (usize, bool) {
    let k = skip_space(toks, j);
    if is_char(toks, k, '-') {
        (skip_space(toks, k + 1), true)
    } else {
        (k, false)
    }
}

/// `digits` cut into pieces of the given sizes; what is left over is the last piece.
fn split_digits<'a>(digits: &'a str, sizes: &[usize]) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let mut rest = digits;
    for &size in sizes {
        if rest.len() <= size || !rest.is_char_boundary(size) {
            break;
        }
        let (head, tail) = rest.split_at(size);
        parts.push(head);
        rest = tail;
    }
    if !rest.is_empty() {
        parts.push(rest);
    }
    parts
}
