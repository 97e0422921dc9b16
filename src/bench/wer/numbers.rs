//! Numbers for the word error rate scorer: digit groups and decimals in the raw text
//! ("1 500" → "1500", "3,5" → "3.5"), ordinal endings on digits ("1st", "1-й" → "1"), leading
//! zeros ("05" → "0 5"), and Russian and English number words of any length, cardinal or ordinal,
//! in every case and gender ("две тысячи шестнадцатого" → "2016", "one hundred and twenty" →
//! "120").

use std::collections::HashMap;
use std::sync::OnceLock;

/// Characters between the digit groups of one number: "1 500", "1,500", and the no-break, narrow
/// no-break and thin spaces.
const GROUP_SEPARATORS: [char; 5] = [' ', ',', '\u{a0}', '\u{202f}', '\u{2009}'];

/// Reads the number in digits that starts at `chars[start]`, an ASCII digit that does not follow a
/// letter or digit. Digit groups are joined when the first has one to three digits and every next
/// one exactly three, after the same separator ("1 500 000", "10,000"; not "5 1000" or
/// "2015 2016"); then a '.' or ',' followed by digits is a decimal point ("3,5" → "3.5"). Returns
/// the number as text and the index of the first character after it.
pub(super) fn scan_number(chars: &[char], start: usize) -> (String, usize) {
    let digits_end = |from: usize| {
        from + chars[from..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let mut end = digits_end(start);
    let mut text: String = chars[start..end].iter().collect();
    if let Some(&separator) = chars
        .get(end)
        .filter(|c| end - start <= 3 && GROUP_SEPARATORS.contains(c))
    {
        while chars.get(end) == Some(&separator) && digits_end(end + 1) == end + 4 {
            text.extend(&chars[end + 1..end + 4]);
            end += 4;
        }
    }
    if matches!(chars.get(end), Some('.' | ','))
        && chars.get(end + 1).is_some_and(char::is_ascii_digit)
    {
        let fraction_end = digits_end(end + 1);
        text.push('.');
        text.extend(&chars[end + 1..fraction_end]);
        end = fraction_end;
    }
    (text, end)
}

/// The words that `chunk` is scored as if it is a number in digits, maybe with an ordinal or case
/// ending, which is dropped ("1st", "21st", "1-й", "2-х", "5-ти"); `None` if it is not. Leading
/// zeros are words of their own, as they are read out ("05" → "0 5", "00" → "0 0"), so that "9:00"
/// scores as "девять ноль ноль".
pub(super) fn digit_words(chunk: &str) -> Option<Vec<String>> {
    let integer_len = chunk.bytes().take_while(u8::is_ascii_digit).count();
    if integer_len == 0 {
        return None;
    }
    let (integer, rest) = chunk.split_at(integer_len);
    if let Some(after_point) = rest.strip_prefix('.') {
        let fraction_len = after_point.bytes().take_while(u8::is_ascii_digit).count();
        let (fraction, ending) = after_point.split_at(fraction_len);
        return (fraction_len > 0 && is_ordinal_ending(ending))
            .then(|| vec![format!("{integer}.{fraction}")]);
    }
    if !is_ordinal_ending(rest) {
        return None;
    }
    let significant = integer.trim_start_matches('0');
    let mut words = vec!["0".to_string(); integer.len() - significant.len()];
    if !significant.is_empty() {
        words.push(significant.to_string());
    }
    Some(words)
}

/// Whether `ending`, after digits, leaves them a number: nothing, an English ordinal ending ("st",
/// "nd", "rd", "th"), or after a hyphen one to three Russian letters ("-й", "-го", "-ого", "-х").
fn is_ordinal_ending(ending: &str) -> bool {
    let english = |e: &str| matches!(e, "" | "st" | "nd" | "rd" | "th");
    match ending.strip_prefix('-') {
        None => english(ending),
        Some(russian) => {
            english(russian)
                || (russian.chars().count() <= 3
                    && russian.chars().all(|c| ('а'..='я').contains(&c)))
        }
    }
}

/// Replaces the number words and digits in `tokens` with the numbers they make, in digits: as many
/// words as make one number become one token ("сто двадцать три" → "123"), and a word that cannot
/// continue the number starts the next one ("один два" → "1 2", "пять сто" → "5 100"). When a
/// scale word too large to continue the number ends it, the words since its last scale word start
/// the next number with it ("пятьсот тысяч три миллиона" → "500000 3000000").
pub(super) fn numbers_to_digits(tokens: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let Some(mut number) = Number::default()
            .read_token(&tokens[i])
            .or_else(|| Number::from_digits(&tokens[i]))
        else {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        };
        i += 1;
        let mut group_start = i;
        loop {
            if number.group == 0 {
                group_start = i;
            }
            let Some((next, read)) = number.continue_with(&tokens[i..]) else {
                break;
            };
            number = next;
            i += read;
        }
        if number.group > 0
            && tokens
                .get(i)
                .is_some_and(|t| number.ended_by_larger_scale(t))
        {
            out.push(number.total.to_string());
            i = group_start;
        } else {
            out.push(number.value().to_string());
        }
    }
    out
}

/// What a number word does in a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// "ноль", "zero": a number of its own.
    Zero,
    /// 1 to 9.
    Unit,
    /// 10 to 19.
    Teen,
    /// 20, 30, ... 90.
    Tens,
    /// Russian 100, 200, ... 900, one word each.
    Hundreds,
    /// English "hundred", which multiplies the words before it ("twelve hundred").
    Hundred,
    /// A thousand, million, billion or trillion: multiplies the group before it and closes it.
    Scale,
}

/// One number word: what it does, its value, and whether it is an ordinal, which ends a number.
#[derive(Clone, Copy, Debug)]
struct NumberWord {
    kind: Kind,
    value: u64,
    ordinal: bool,
}

/// Cardinal number words: Russian in every case and gender (with "ё" written "е"), and English.
const CARDINALS: &[(Kind, u64, &str)] = &[
    (
        Kind::Zero,
        0,
        "ноль нуль ноля нуля нолю нулю нолем нулем ноле нуле zero",
    ),
    (
        Kind::Unit,
        1,
        "один одна одно одного одной одному одним одном одну one",
    ),
    (Kind::Unit, 2, "два две двух двум двумя two"),
    (Kind::Unit, 3, "три трех трем тремя three"),
    (Kind::Unit, 4, "четыре четырех четырем четырьмя four"),
    (Kind::Unit, 5, "пять пяти пятью five"),
    (Kind::Unit, 6, "шесть шести шестью six"),
    (Kind::Unit, 7, "семь семи семью seven"),
    (Kind::Unit, 8, "восемь восьми восемью восьмью eight"),
    (Kind::Unit, 9, "девять девяти девятью nine"),
    (Kind::Teen, 10, "десять десяти десятью ten"),
    (
        Kind::Teen,
        11,
        "одиннадцать одиннадцати одиннадцатью eleven",
    ),
    (Kind::Teen, 12, "двенадцать двенадцати двенадцатью twelve"),
    (Kind::Teen, 13, "тринадцать тринадцати тринадцатью thirteen"),
    (
        Kind::Teen,
        14,
        "четырнадцать четырнадцати четырнадцатью fourteen",
    ),
    (Kind::Teen, 15, "пятнадцать пятнадцати пятнадцатью fifteen"),
    (
        Kind::Teen,
        16,
        "шестнадцать шестнадцати шестнадцатью sixteen",
    ),
    (
        Kind::Teen,
        17,
        "семнадцать семнадцати семнадцатью seventeen",
    ),
    (
        Kind::Teen,
        18,
        "восемнадцать восемнадцати восемнадцатью eighteen",
    ),
    (
        Kind::Teen,
        19,
        "девятнадцать девятнадцати девятнадцатью nineteen",
    ),
    (Kind::Tens, 20, "двадцать двадцати двадцатью twenty"),
    (Kind::Tens, 30, "тридцать тридцати тридцатью thirty"),
    (Kind::Tens, 40, "сорок сорока forty"),
    (Kind::Tens, 50, "пятьдесят пятидесяти пятьюдесятью fifty"),
    (Kind::Tens, 60, "шестьдесят шестидесяти шестьюдесятью sixty"),
    (Kind::Tens, 70, "семьдесят семидесяти семьюдесятью seventy"),
    (
        Kind::Tens,
        80,
        "восемьдесят восьмидесяти восемьюдесятью восьмьюдесятью eighty",
    ),
    (Kind::Tens, 90, "девяносто девяноста ninety"),
    (Kind::Hundreds, 100, "сто ста"),
    (
        Kind::Hundreds,
        200,
        "двести двухсот двумстам двумястами двухстах",
    ),
    (
        Kind::Hundreds,
        300,
        "триста трехсот тремстам тремястами трехстах",
    ),
    (
        Kind::Hundreds,
        400,
        "четыреста четырехсот четыремстам четырьмястами четырехстах",
    ),
    (
        Kind::Hundreds,
        500,
        "пятьсот пятисот пятистам пятьюстами пятистах",
    ),
    (
        Kind::Hundreds,
        600,
        "шестьсот шестисот шестистам шестьюстами шестистах",
    ),
    (
        Kind::Hundreds,
        700,
        "семьсот семисот семистам семьюстами семистах",
    ),
    (
        Kind::Hundreds,
        800,
        "восемьсот восьмисот восьмистам восемьюстами восьмьюстами восьмистах",
    ),
    (
        Kind::Hundreds,
        900,
        "девятьсот девятисот девятистам девятьюстами девятистах",
    ),
    (Kind::Hundred, 100, "hundred"),
    (
        Kind::Scale,
        1_000,
        "тысяча тысячи тысяч тысячу тысячей тысячею тысяче тысячам тысячами тысячах thousand",
    ),
    (
        Kind::Scale,
        1_000_000,
        "миллион миллиона миллионов миллиону миллионом миллионе миллионам миллионами миллионах million",
    ),
    (
        Kind::Scale,
        1_000_000_000,
        "миллиард миллиарда миллиардов миллиарду миллиардом миллиарде миллиардам миллиардами миллиардах billion",
    ),
    (
        Kind::Scale,
        1_000_000_000_000,
        "триллион триллиона триллионов триллиону триллионом триллионе триллионам триллионами триллионах trillion",
    ),
];

/// Ordinals written out whole: English, and Russian "третий", which declines on its own pattern.
const ORDINALS: &[(Kind, u64, &str)] = &[
    (Kind::Unit, 1, "first"),
    (Kind::Unit, 2, "second"),
    (
        Kind::Unit,
        3,
        "third третий третья третье третьего третьему третьим третьем третью третьи третьих третьими третьей третьею",
    ),
    (Kind::Unit, 4, "fourth"),
    (Kind::Unit, 5, "fifth"),
    (Kind::Unit, 6, "sixth"),
    (Kind::Unit, 7, "seventh"),
    (Kind::Unit, 8, "eighth"),
    (Kind::Unit, 9, "ninth"),
    (Kind::Teen, 10, "tenth"),
    (Kind::Teen, 11, "eleventh"),
    (Kind::Teen, 12, "twelfth"),
    (Kind::Teen, 13, "thirteenth"),
    (Kind::Teen, 14, "fourteenth"),
    (Kind::Teen, 15, "fifteenth"),
    (Kind::Teen, 16, "sixteenth"),
    (Kind::Teen, 17, "seventeenth"),
    (Kind::Teen, 18, "eighteenth"),
    (Kind::Teen, 19, "nineteenth"),
    (Kind::Tens, 20, "twentieth"),
    (Kind::Tens, 30, "thirtieth"),
    (Kind::Tens, 40, "fortieth"),
    (Kind::Tens, 50, "fiftieth"),
    (Kind::Tens, 60, "sixtieth"),
    (Kind::Tens, 70, "seventieth"),
    (Kind::Tens, 80, "eightieth"),
    (Kind::Tens, 90, "ninetieth"),
    (Kind::Hundred, 100, "hundredth"),
    (Kind::Scale, 1_000, "thousandth"),
    (Kind::Scale, 1_000_000, "millionth"),
    (Kind::Scale, 1_000_000_000, "billionth"),
    (Kind::Scale, 1_000_000_000_000, "trillionth"),
];

/// Stems of the other Russian ordinals, which take the endings in `ORDINAL_ENDINGS`.
const ORDINAL_STEMS: &[(Kind, u64, &str)] = &[
    (Kind::Unit, 1, "перв"),
    (Kind::Unit, 2, "втор"),
    (Kind::Unit, 4, "четверт"),
    (Kind::Unit, 5, "пят"),
    (Kind::Unit, 6, "шест"),
    (Kind::Unit, 7, "седьм"),
    (Kind::Unit, 8, "восьм"),
    (Kind::Unit, 9, "девят"),
    (Kind::Teen, 10, "десят"),
    (Kind::Teen, 11, "одиннадцат"),
    (Kind::Teen, 12, "двенадцат"),
    (Kind::Teen, 13, "тринадцат"),
    (Kind::Teen, 14, "четырнадцат"),
    (Kind::Teen, 15, "пятнадцат"),
    (Kind::Teen, 16, "шестнадцат"),
    (Kind::Teen, 17, "семнадцат"),
    (Kind::Teen, 18, "восемнадцат"),
    (Kind::Teen, 19, "девятнадцат"),
    (Kind::Tens, 20, "двадцат"),
    (Kind::Tens, 30, "тридцат"),
    (Kind::Tens, 40, "сороков"),
    (Kind::Tens, 50, "пятидесят"),
    (Kind::Tens, 60, "шестидесят"),
    (Kind::Tens, 70, "семидесят"),
    (Kind::Tens, 80, "восьмидесят"),
    (Kind::Tens, 90, "девяност"),
    (Kind::Hundreds, 100, "сот"),
    (Kind::Scale, 1_000, "тысячн"),
    (Kind::Scale, 1_000_000, "миллионн"),
    (Kind::Scale, 1_000_000_000, "миллиардн"),
    (Kind::Scale, 1_000_000_000_000, "триллионн"),
];

/// The adjective endings of Russian ordinals, in every case, gender and number.
const ORDINAL_ENDINGS: [&str; 13] = [
    "ый", "ой", "ая", "ое", "ого", "ому", "ым", "ом", "ую", "ые", "ых", "ыми", "ою",
];

/// The genitive of 2 to 9 that compound Russian ordinals start with: "двухсотый" is 200th,
/// "двухтысячный" is "две" + "тысячный".
const COMPOUND_PREFIXES: [(u64, &str); 8] = [
    (2, "двух"),
    (3, "трех"),
    (4, "четырех"),
    (5, "пяти"),
    (6, "шести"),
    (7, "семи"),
    (8, "восьми"),
    (9, "девяти"),
];

/// Every number word, with the number words it stands for (two for "двухтысячный").
fn table() -> &'static HashMap<String, Vec<NumberWord>> {
    static TABLE: OnceLock<HashMap<String, Vec<NumberWord>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let word = |kind, value, ordinal| NumberWord {
            kind,
            value,
            ordinal,
        };
        let mut table = HashMap::new();
        for (lists, ordinal) in [(CARDINALS, false), (ORDINALS, true)] {
            for &(kind, value, forms) in lists {
                for form in forms.split_whitespace() {
                    table.insert(form.to_string(), vec![word(kind, value, ordinal)]);
                }
            }
        }
        for ending in ORDINAL_ENDINGS {
            for &(kind, value, stem) in ORDINAL_STEMS {
                table.insert(format!("{stem}{ending}"), vec![word(kind, value, true)]);
                if kind == Kind::Scale {
                    for (n, prefix) in COMPOUND_PREFIXES {
                        table.insert(
                            format!("{prefix}{stem}{ending}"),
                            vec![word(Kind::Unit, n, false), word(kind, value, true)],
                        );
                    }
                }
            }
            for (n, prefix) in COMPOUND_PREFIXES {
                table.insert(
                    format!("{prefix}сот{ending}"),
                    vec![word(Kind::Hundreds, n * 100, true)],
                );
            }
        }
        table
    })
}

/// A number being read word by word: the groups that scale words have closed, and the group being
/// read (below 10 000, so adding to it cannot overflow).
#[derive(Clone, Copy, Debug, Default)]
struct Number {
    total: u64,
    group: u64,
    /// The places of `group` that are taken: a word may only fill places below all taken ones.
    hundreds: bool,
    tens: bool,
    units: bool,
    /// `group` was written in digits ("2 тысячи"): only a scale word or "hundred" may follow.
    digits: bool,
    /// The last scale word read: a later one must be smaller ("миллион двести тысяч").
    scale: Option<u64>,
    /// An ordinal or a zero has ended the number.
    closed: bool,
}

impl Number {
    /// A number started by digits from 1 to 999, which a scale word may multiply ("2 тысячи",
    /// "5 million").
    fn from_digits(token: &str) -> Option<Self> {
        if !token.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let value: u64 = token.parse().ok()?;
        (1..1000).contains(&value).then_some(Self {
            group: value,
            digits: true,
            ..Self::default()
        })
    }

    fn value(&self) -> u64 {
        self.total + self.group
    }

    /// The number with `token` read into it, if it is a number word (or two) that can continue it.
    fn read_token(self, token: &str) -> Option<Self> {
        table()
            .get(token)?
            .iter()
            .try_fold(self, |number, &word| number.read(word))
    }

    /// The number with `word` read into it, if `word` can continue it.
    fn read(self, word: NumberWord) -> Option<Self> {
        if self.closed {
            return None;
        }
        let free = !self.hundreds && !self.tens && !self.units && !self.digits;
        let mut next = Self {
            closed: word.ordinal,
            ..self
        };
        match word.kind {
            Kind::Zero if self.group == 0 && self.scale.is_none() => next.closed = true,
            Kind::Unit if !self.units && !self.digits => {
                next.group += word.value;
                next.units = true;
            }
            Kind::Teen | Kind::Tens if !self.tens && !self.units && !self.digits => {
                next.group += word.value;
                next.tens = true;
                next.units = word.kind == Kind::Teen;
            }
            Kind::Hundreds if free => {
                next.group += word.value;
                next.hundreds = true;
            }
            Kind::Hundred if !self.hundreds && self.group < 100 => {
                next.group = self.group.max(1) * 100;
                next.hundreds = true;
                next.tens = false;
                next.units = false;
                next.digits = false;
            }
            Kind::Scale if self.scale.is_none_or(|scale| word.value < scale) => {
                let closed_group = self.group.max(1).checked_mul(word.value)?;
                next = Self {
                    total: self.total.checked_add(closed_group)?,
                    scale: Some(word.value),
                    closed: word.ordinal,
                    ..Self::default()
                };
            }
            _ => return None,
        }
        Some(next)
    }

    /// Whether `token` is a scale word that this number, which has one, cannot take because it is
    /// not smaller.
    fn ended_by_larger_scale(&self, token: &str) -> bool {
        let first = table().get(token).and_then(|words| words.first());
        first.is_some_and(|word| {
            word.kind == Kind::Scale && self.scale.is_some_and(|scale| word.value >= scale)
        })
    }

    /// The number with the next word of `rest` read into it, and how many tokens that took: two
    /// for English "and" between a hundred or a scale word and the rest ("one hundred and five",
    /// "two thousand and sixteen", but "one and two" is two numbers).
    fn continue_with(self, rest: &[String]) -> Option<(Self, usize)> {
        let first = rest.first()?;
        if first != "and" {
            return self.read_token(first).map(|number| (number, 1));
        }
        let after_hundred = self.hundreds && !self.tens && !self.units;
        let after_scale = self.group == 0 && self.scale.is_some();
        let word = rest.get(1)?;
        let starts_group = table()
            .get(word)
            .and_then(|words| words.first())
            .is_some_and(|w| matches!(w.kind, Kind::Unit | Kind::Teen | Kind::Tens));
        if !(after_hundred || after_scale) || !starts_group {
            return None;
        }
        self.read_token(word).map(|number| (number, 2))
    }
}
