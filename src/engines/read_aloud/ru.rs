//! Russian read-aloud rules: cardinal and ordinal numerals declined for gender
//! and case, decimal fractions, dates, clock times, phone numbers, money,
//! percents, units and common abbreviations ("ул.", "т.е.", "руб."). A number
//! takes its case from the preposition before it and its gender from the noun
//! or unit after it, and an expanded unit agrees with the number.

use super::{
    char_at, digits_at, dotted_phrase, governing_word, is_capitalised, is_char, is_dash, kept_dot,
    match_case, next_word, number_at, prev_word, range_end, scan_clock, scan_dash, scan_iso_date,
    scan_numeral, scan_numeric_date, scan_phone, sign_at, skip_space, starts_sentence, word_at,
    Amount, Clock, Date, Found, Marks, PhoneReading, Rewrite, Rule, Tok, Units, MAX_DIGITS,
};

pub(super) const RULES: &[Rule] = &[
    abbreviation,
    iso_date,
    dotted_date,
    phone,
    sign,
    currency_first,
    clock,
    ordinal,
    day_of_month,
    year_range,
    year,
    quantity,
];

const MARKS: Marks = Marks {
    decimal: &[',', '.'],
    group: &[],
    space_groups: true,
};

// ---------------------------------------------------------------- grammar

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Gender {
    Masc,
    Fem,
    Neut,
}

/// Grammatical case; the accusative is that of inanimate nouns.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Case {
    Nom,
    Gen,
    Dat,
    Acc,
    Ins,
    Pre,
}

impl Case {
    fn index(self) -> usize {
        self as usize
    }

    /// Column in the numeral tables, which list Nom, Gen, Dat, Ins, Pre (Acc reads as Nom).
    fn column(self) -> usize {
        match self {
            Case::Nom | Case::Acc => 0,
            Case::Gen => 1,
            Case::Dat => 2,
            Case::Ins => 3,
            Case::Pre => 4,
        }
    }

    fn is_direct(self) -> bool {
        matches!(self, Case::Nom | Case::Acc)
    }
}

/// The number form of an ordinal (an adjective).
#[derive(Clone, Copy, Debug)]
pub(super) enum Form {
    Sg(Gender),
    Plural,
}

impl Form {
    fn row(self) -> usize {
        match self {
            Form::Sg(gender) => gender as usize,
            Form::Plural => 3,
        }
    }
}

/// Which form a noun takes after a number: "1 рубль", "2 рубля", "5 рублей".
#[derive(Clone, Copy, PartialEq, Eq)]
enum Count {
    One,
    Few,
    Many,
}

fn count_of(n: u64) -> Count {
    if (11..=14).contains(&(n % 100)) {
        Count::Many
    } else {
        match n % 10 {
            1 => Count::One,
            2..=4 => Count::Few,
            _ => Count::Many,
        }
    }
}

fn preposition_case(prev: Option<&str>) -> Case {
    match prev.unwrap_or_default() {
        "до" | "от" | "около" | "из" | "без" | "для" | "после" | "с" | "со" | "у" | "кроме"
        | "вместо" | "более" | "менее" | "больше" | "меньше" | "свыше" | "порядка" | "среди"
        | "возле" | "против" => Case::Gen,
        "к" | "ко" | "благодаря" | "согласно" => Case::Dat,
        "на" | "в" | "во" | "через" | "за" | "про" | "по" => Case::Acc,
        "между" | "перед" | "над" => Case::Ins,
        "о" | "об" | "при" => Case::Pre,
        _ => Case::Nom,
    }
}

/// "в 2026 году", "в 10-м ряду": prepositions that put an ordinal in the prepositional case.
fn is_locative(prev: Option<&str>) -> bool {
    matches!(prev, Some("в" | "во" | "о" | "об" | "при"))
}

/// Stems of common feminine nouns, to agree "1"/"2" with them ("одна минута").
const FEMININE_STEMS: &[&str] = &[
    "минут",
    "секунд",
    "недел",
    "тысяч",
    "копе",
    "штук",
    "ноч",
    "поездк",
    "поездок",
    "заявк",
    "заявок",
    "задач",
    "ошибк",
    "ошибок",
    "попытк",
    "попыток",
    "страниц",
    "строк",
    "книг",
    "комнат",
    "машин",
    "тонн",
    "част",
    "порци",
    "единиц",
    "таблетк",
    "таблеток",
];

/// Stems of common neuter nouns ("одно место").
const NEUTER_STEMS: &[&str] = &[
    "мест",
    "сообщени",
    "письм",
    "писем",
    "окн",
    "окон",
    "яйц",
    "яиц",
    "задани",
    "упражнени",
];

/// Gender of a lowercase noun written after a number, when it is a known feminine or neuter noun.
fn written_gender(word: &str) -> Option<Gender> {
    if FEMININE_STEMS.iter().any(|stem| word.starts_with(stem)) {
        Some(Gender::Fem)
    } else if NEUTER_STEMS.iter().any(|stem| word.starts_with(stem)) {
        Some(Gender::Neut)
    } else {
        None
    }
}

// ---------------------------------------------------------------- nouns

enum Forms {
    /// Regular hard-stem masculine noun: "доллар", "доллара", … "долларах".
    Hard(&'static str),
    /// Singular Nom, Gen, Dat, Acc, Ins, Pre, then the plural in the same order.
    Table(&'static [&'static str; 12]),
}

struct Noun {
    gender: Gender,
    forms: Forms,
}

const HARD_SINGULAR: [&str; 6] = ["", "а", "у", "", "ом", "е"];
const HARD_PLURAL: [&str; 6] = ["ы", "ов", "ам", "ы", "ами", "ах"];

impl Noun {
    const fn hard(stem: &'static str) -> Noun {
        Noun {
            gender: Gender::Masc,
            forms: Forms::Hard(stem),
        }
    }

    const fn table(gender: Gender, forms: &'static [&'static str; 12]) -> Noun {
        Noun {
            gender,
            forms: Forms::Table(forms),
        }
    }

    fn form(&self, plural: bool, case: Case) -> String {
        let k = case.index();
        match self.forms {
            Forms::Hard(stem) => {
                let ending = if plural {
                    HARD_PLURAL[k]
                } else {
                    HARD_SINGULAR[k]
                };
                format!("{stem}{ending}")
            }
            Forms::Table(forms) => forms[if plural { k + 6 } else { k }].to_string(),
        }
    }

    /// The form after the whole number `n` in `case`.
    fn agree(&self, n: u64, case: Case) -> String {
        match (count_of(n), case.is_direct()) {
            (Count::One, _) => self.form(false, case),
            (Count::Few, true) => self.form(false, Case::Gen),
            (Count::Many, true) => self.form(true, Case::Gen),
            (_, false) => self.form(true, case),
        }
    }
}

#[rustfmt::skip]
const RUBLE: Noun = Noun::table(Gender::Masc, &[
    "рубль", "рубля", "рублю", "рубль", "рублём", "рубле",
    "рубли", "рублей", "рублям", "рубли", "рублями", "рублях",
]);
#[rustfmt::skip]
const KOPECK: Noun = Noun::table(Gender::Fem, &[
    "копейка", "копейки", "копейке", "копейку", "копейкой", "копейке",
    "копейки", "копеек", "копейкам", "копейки", "копейками", "копейках",
]);
/// Indeclinable; masculine ("один евро").
const EURO: Noun = Noun::table(Gender::Masc, &["евро"; 12]);
#[rustfmt::skip]
const THOUSAND: Noun = Noun::table(Gender::Fem, &[
    "тысяча", "тысячи", "тысяче", "тысячу", "тысячей", "тысяче",
    "тысячи", "тысяч", "тысячам", "тысячи", "тысячами", "тысячах",
]);
#[rustfmt::skip]
const MINUTE: Noun = Noun::table(Gender::Fem, &[
    "минута", "минуты", "минуте", "минуту", "минутой", "минуте",
    "минуты", "минут", "минутам", "минуты", "минутами", "минутах",
]);
#[rustfmt::skip]
const SECOND: Noun = Noun::table(Gender::Fem, &[
    "секунда", "секунды", "секунде", "секунду", "секундой", "секунде",
    "секунды", "секунд", "секундам", "секунды", "секундами", "секундах",
]);
#[rustfmt::skip]
const PIECE: Noun = Noun::table(Gender::Fem, &[
    "штука", "штуки", "штуке", "штуку", "штукой", "штуке",
    "штуки", "штук", "штукам", "штуки", "штуками", "штуках",
]);
/// "в году" (locative) for the prepositional; the plural is for "2024-2025 гг.".
#[rustfmt::skip]
const YEAR: Noun = Noun::table(Gender::Masc, &[
    "год", "года", "году", "год", "годом", "году",
    "годы", "годов", "годам", "годы", "годами", "годах",
]);
const DOLLAR: Noun = Noun::hard("доллар");
const CENT: Noun = Noun::hard("цент");
const POUND: Noun = Noun::hard("фунт");
const PENNY: Noun = Noun::hard("пенс");
const PERCENT: Noun = Noun::hard("процент");
const DEGREE: Noun = Noun::hard("градус");
const MILLION: Noun = Noun::hard("миллион");
const BILLION: Noun = Noun::hard("миллиард");
const TRILLION: Noun = Noun::hard("триллион");
const KILOMETER: Noun = Noun::hard("километр");
const METER: Noun = Noun::hard("метр");
const CENTIMETER: Noun = Noun::hard("сантиметр");
const MILLIMETER: Noun = Noun::hard("миллиметр");
const KILOGRAM: Noun = Noun::hard("килограмм");
const GRAM: Noun = Noun::hard("грамм");
const MILLIGRAM: Noun = Noun::hard("миллиграмм");
const LITER: Noun = Noun::hard("литр");
const MILLILITER: Noun = Noun::hard("миллилитр");
const HOUR: Noun = Noun::hard("час");

// ---------------------------------------------------------------- cardinals

const MAX_NUMBER: u64 = 999_999_999_999_999;

const ZERO: [&str; 5] = ["ноль", "нуля", "нулю", "нулём", "нуле"];
/// "1" by gender, in all six cases (the feminine accusative differs).
const ONE: [[&str; 6]; 3] = [
    ["один", "одного", "одному", "один", "одним", "одном"],
    ["одна", "одной", "одной", "одну", "одной", "одной"],
    ["одно", "одного", "одному", "одно", "одним", "одном"],
];
/// 3 to 9.
const UNITS: [[&str; 5]; 7] = [
    ["три", "трёх", "трём", "тремя", "трёх"],
    ["четыре", "четырёх", "четырём", "четырьмя", "четырёх"],
    ["пять", "пяти", "пяти", "пятью", "пяти"],
    ["шесть", "шести", "шести", "шестью", "шести"],
    ["семь", "семи", "семи", "семью", "семи"],
    ["восемь", "восьми", "восьми", "восемью", "восьми"],
    ["девять", "девяти", "девяти", "девятью", "девяти"],
];
/// 10 to 19 in the nominative; they decline like "пять".
const TEENS: [&str; 10] = [
    "десять",
    "одиннадцать",
    "двенадцать",
    "тринадцать",
    "четырнадцать",
    "пятнадцать",
    "шестнадцать",
    "семнадцать",
    "восемнадцать",
    "девятнадцать",
];
/// 20 to 90.
const TENS: [[&str; 5]; 8] = [
    ["двадцать", "двадцати", "двадцати", "двадцатью", "двадцати"],
    ["тридцать", "тридцати", "тридцати", "тридцатью", "тридцати"],
    ["сорок", "сорока", "сорока", "сорока", "сорока"],
    [
        "пятьдесят",
        "пятидесяти",
        "пятидесяти",
        "пятьюдесятью",
        "пятидесяти",
    ],
    [
        "шестьдесят",
        "шестидесяти",
        "шестидесяти",
        "шестьюдесятью",
        "шестидесяти",
    ],
    [
        "семьдесят",
        "семидесяти",
        "семидесяти",
        "семьюдесятью",
        "семидесяти",
    ],
    [
        "восемьдесят",
        "восьмидесяти",
        "восьмидесяти",
        "восемьюдесятью",
        "восьмидесяти",
    ],
    [
        "девяносто",
        "девяноста",
        "девяноста",
        "девяноста",
        "девяноста",
    ],
];
/// 100 to 900.
const HUNDREDS: [[&str; 5]; 9] = [
    ["сто", "ста", "ста", "ста", "ста"],
    ["двести", "двухсот", "двумстам", "двумястами", "двухстах"],
    ["триста", "трёхсот", "трёмстам", "тремястами", "трёхстах"],
    [
        "четыреста",
        "четырёхсот",
        "четырёмстам",
        "четырьмястами",
        "четырёхстах",
    ],
    ["пятьсот", "пятисот", "пятистам", "пятьюстами", "пятистах"],
    [
        "шестьсот",
        "шестисот",
        "шестистам",
        "шестьюстами",
        "шестистах",
    ],
    ["семьсот", "семисот", "семистам", "семьюстами", "семистах"],
    [
        "восемьсот",
        "восьмисот",
        "восьмистам",
        "восемьюстами",
        "восьмистах",
    ],
    [
        "девятьсот",
        "девятисот",
        "девятистам",
        "девятьюстами",
        "девятистах",
    ],
];
const SCALES: [(u64, Noun); 4] = [
    (1_000_000_000_000, TRILLION),
    (1_000_000_000, BILLION),
    (1_000_000, MILLION),
    (1_000, THOUSAND),
];
const DIGITS: [&str; 10] = [
    "ноль",
    "один",
    "два",
    "три",
    "четыре",
    "пять",
    "шесть",
    "семь",
    "восемь",
    "девять",
];

/// `n` in words, agreeing with a noun of `gender` in `case`: (21, Fem, Gen) → "двадцати одной".
pub(super) fn number_words(n: u64, gender: Gender, case: Case) -> String {
    if n > MAX_NUMBER {
        return digit_words(&n.to_string());
    }
    if n == 0 {
        return ZERO[case.column()].to_string();
    }
    let mut words = Vec::new();
    for (scale, noun) in &SCALES {
        let count = n / scale % 1000;
        if count == 0 {
            continue;
        }
        let bare_thousand = *scale == 1000 && count == 1 && n < 1_000_000;
        if !bare_thousand {
            push_hundreds(&mut words, count, noun.gender, case);
        }
        words.push(noun.agree(count, case));
    }
    if !n.is_multiple_of(1000) {
        push_hundreds(&mut words, n % 1000, gender, case);
    }
    words.join(" ")
}

/// Words of 1 to 999.
fn push_hundreds(words: &mut Vec<String>, n: u64, gender: Gender, case: Case) {
    let column = case.column();
    let (hundreds, rest) = (n / 100, n % 100);
    if hundreds > 0 {
        words.push(HUNDREDS[(hundreds - 1) as usize][column].to_string());
    }
    if (10..=19).contains(&rest) {
        words.push(teen_word(TEENS[(rest - 10) as usize], case));
        return;
    }
    if rest >= 20 {
        words.push(TENS[(rest / 10 - 2) as usize][column].to_string());
    }
    if rest % 10 > 0 {
        words.push(unit_word(rest % 10, gender, case).to_string());
    }
}

/// "пятнадцать" → "пятнадцати", "пятнадцатью".
fn teen_word(nominative: &str, case: Case) -> String {
    match case.column() {
        0 => nominative.to_string(),
        3 => format!("{nominative}ю"),
        _ => format!("{}и", nominative.strip_suffix('ь').unwrap_or(nominative)),
    }
}

fn unit_word(unit: u64, gender: Gender, case: Case) -> &'static str {
    match unit {
        1 => ONE[gender as usize][case.index()],
        2 => two_word(gender, case),
        _ => UNITS[(unit - 3) as usize][case.column()],
    }
}

fn two_word(gender: Gender, case: Case) -> &'static str {
    match case {
        Case::Nom | Case::Acc if gender == Gender::Fem => "две",
        Case::Nom | Case::Acc => "два",
        Case::Gen | Case::Pre => "двух",
        Case::Dat => "двум",
        Case::Ins => "двумя",
    }
}

fn digit_words(digits: &str) -> String {
    digits
        .bytes()
        .filter_map(|b| DIGITS.get(usize::from(b.wrapping_sub(b'0'))))
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------- fractions

const DENOMINATORS: [&str; 6] = [
    "десят",
    "сот",
    "тысячн",
    "десятитысячн",
    "стотысячн",
    "миллионн",
];
const FRACTION_PLURAL: [&str; 6] = ["ых", "ых", "ым", "ых", "ыми", "ых"];

/// "3,5" → "три целых пять десятых"; over six decimals: "… запятая" and the digits.
fn decimal_words(whole: u64, frac: &str, case: Case) -> String {
    let denominator = frac.len().checked_sub(1).and_then(|k| DENOMINATORS.get(k));
    let (Some(denominator), Ok(numerator)) = (denominator, frac.parse::<u64>()) else {
        return format!(
            "{} запятая {}",
            number_words(whole, Gender::Masc, case),
            digit_words(frac)
        );
    };
    format!(
        "{} {} {} {}",
        number_words(whole, Gender::Fem, case),
        fraction_word("цел", whole, case),
        number_words(numerator, Gender::Fem, case),
        fraction_word(denominator, numerator, case)
    )
}

/// "целая"/"целых", "десятая"/"десятых" after `n`.
fn fraction_word(stem: &str, n: u64, case: Case) -> String {
    let endings = if count_of(n) == Count::One {
        ADJECTIVE_ENDINGS[1]
    } else {
        FRACTION_PLURAL
    };
    format!("{stem}{}", endings[case.index()])
}

// ---------------------------------------------------------------- ordinals

const ORDINAL_UNITS: [&str; 19] = [
    "перв",
    "втор",
    "трет",
    "четвёрт",
    "пят",
    "шест",
    "седьм",
    "восьм",
    "девят",
    "десят",
    "одиннадцат",
    "двенадцат",
    "тринадцат",
    "четырнадцат",
    "пятнадцат",
    "шестнадцат",
    "семнадцат",
    "восемнадцат",
    "девятнадцат",
];
const ORDINAL_TENS: [&str; 8] = [
    "двадцат",
    "тридцат",
    "сороков",
    "пятидесят",
    "шестидесят",
    "семидесят",
    "восьмидесят",
    "девяност",
];
const ORDINAL_HUNDREDS: [&str; 9] = [
    "сот",
    "двухсот",
    "трёхсот",
    "четырёхсот",
    "пятисот",
    "шестисот",
    "семисот",
    "восьмисот",
    "девятисот",
];
const ORDINAL_SCALES: [(u64, &str); 4] = [
    (1_000, "тысячн"),
    (1_000_000, "миллионн"),
    (1_000_000_000, "миллиардн"),
    (1_000_000_000_000, "триллионн"),
];
/// Stems stressed on the ending: "второй", not "вторый".
const STRESSED_STEMS: [&str; 6] = ["втор", "шест", "седьм", "восьм", "сороков", "нулев"];
/// Rows: masculine, feminine, neuter, plural; columns: the six cases.
const ADJECTIVE_ENDINGS: [[&str; 6]; 4] = [
    ["ый", "ого", "ому", "ый", "ым", "ом"],
    ["ая", "ой", "ой", "ую", "ой", "ой"],
    ["ое", "ого", "ому", "ое", "ым", "ом"],
    ["ые", "ых", "ым", "ые", "ыми", "ых"],
];
/// "третий" declines with a soft sign.
const THIRD_ENDINGS: [[&str; 6]; 4] = [
    ["ий", "ьего", "ьему", "ий", "ьим", "ьем"],
    ["ья", "ьей", "ьей", "ью", "ьей", "ьей"],
    ["ье", "ьего", "ьему", "ье", "ьим", "ьем"],
    ["ьи", "ьих", "ьим", "ьи", "ьими", "ьих"],
];

/// Ordinal of `n`: only the last word declines ("две тысячи двадцать шестого").
pub(super) fn ordinal_words(n: u64, form: Form, case: Case) -> String {
    if n > MAX_NUMBER {
        return digit_words(&n.to_string());
    }
    let (prefix, stem) = ordinal_parts(n);
    let last = adjective(&stem, form, case);
    if prefix == 0 {
        last
    } else {
        format!("{} {last}", number_words(prefix, Gender::Masc, Case::Nom))
    }
}

/// The part of `n` read as a cardinal, and the stem of the ordinal word for the rest.
fn ordinal_parts(n: u64) -> (u64, String) {
    if n == 0 {
        return (0, "нулев".to_string());
    }
    let low = n % 1000;
    if low == 0 {
        return round_ordinal_parts(n);
    }
    let rest = low % 100;
    let (value, stem) = match rest {
        0 => (low, ORDINAL_HUNDREDS[(low / 100 - 1) as usize]),
        1..=19 => (rest, ORDINAL_UNITS[(rest - 1) as usize]),
        _ if rest.is_multiple_of(10) => (rest, ORDINAL_TENS[(rest / 10 - 2) as usize]),
        _ => (rest % 10, ORDINAL_UNITS[(rest % 10 - 1) as usize]),
    };
    (n - value, stem.to_string())
}

/// 2000 → "двухтысячн", 1 000 000 → "миллионн".
fn round_ordinal_parts(n: u64) -> (u64, String) {
    let (scale, stem) = ORDINAL_SCALES
        .iter()
        .copied()
        .find(|(scale, _)| !(n / scale).is_multiple_of(1000))
        .unwrap_or(ORDINAL_SCALES[0]);
    let count = n / scale % 1000;
    (
        n - count * scale,
        format!("{}{stem}", combining_form(count)),
    )
}

/// The count glued before "тысячный": 2 → "двух", 21 → "двадцатиодно", 100 → "сто".
fn combining_form(count: u64) -> String {
    if count == 1 {
        return String::new();
    }
    number_words(count, Gender::Masc, Case::Gen)
        .split(' ')
        .map(|word| match word {
            "одного" => "одно",
            "ста" => "сто",
            "девяноста" => "девяносто",
            other => other,
        })
        .collect()
}

fn adjective(stem: &str, form: Form, case: Case) -> String {
    let table = if stem == "трет" {
        &THIRD_ENDINGS
    } else {
        &ADJECTIVE_ENDINGS
    };
    let ending = table[form.row()][case.index()];
    let ending = if ending == "ый" && STRESSED_STEMS.contains(&stem) {
        "ой"
    } else {
        ending
    };
    format!("{stem}{ending}")
}

// ---------------------------------------------------------------- units

/// A unit or currency that may follow a number.
struct Unit {
    noun: &'static Noun,
    /// Hundredth part of a currency: "копейка" for "рубль".
    minor: Option<&'static Noun>,
    /// Words after the noun: "градусов Цельсия".
    suffix: &'static str,
    /// "тыс.", "млн": a count that may itself be followed by a unit.
    multiplier: bool,
}

impl Unit {
    const fn of(noun: &'static Noun) -> Unit {
        Unit {
            noun,
            minor: None,
            suffix: "",
            multiplier: false,
        }
    }

    const fn money(noun: &'static Noun, minor: &'static Noun) -> Unit {
        Unit {
            minor: Some(minor),
            ..Unit::of(noun)
        }
    }

    const fn scale(noun: &'static Noun) -> Unit {
        Unit {
            multiplier: true,
            ..Unit::of(noun)
        }
    }

    const fn with_suffix(noun: &'static Noun, suffix: &'static str) -> Unit {
        Unit {
            suffix,
            ..Unit::of(noun)
        }
    }
}

static RUBLES: Unit = Unit::money(&RUBLE, &KOPECK);
static DOLLARS: Unit = Unit::money(&DOLLAR, &CENT);
static EUROS: Unit = Unit::money(&EURO, &CENT);
static POUNDS: Unit = Unit::money(&POUND, &PENNY);
static PERCENTS: Unit = Unit::of(&PERCENT);
static DEGREES: Unit = Unit::of(&DEGREE);
static CELSIUS: Unit = Unit::with_suffix(&DEGREE, " Цельсия");
static FAHRENHEIT: Unit = Unit::with_suffix(&DEGREE, " по Фаренгейту");
static KM_PER_HOUR: Unit = Unit::with_suffix(&KILOMETER, " в час");
static M_PER_SECOND: Unit = Unit::with_suffix(&METER, " в секунду");

static SYMBOL_UNITS: [(char, &Unit); 6] = [
    ('%', &PERCENTS),
    ('₽', &RUBLES),
    ('$', &DOLLARS),
    ('€', &EUROS),
    ('£', &POUNDS),
    ('℃', &CELSIUS),
];

static WORD_UNITS: &[(&str, Unit)] = &[
    ("руб", Unit::money(&RUBLE, &KOPECK)),
    ("р", Unit::money(&RUBLE, &KOPECK)),
    ("коп", Unit::of(&KOPECK)),
    ("тыс", Unit::scale(&THOUSAND)),
    ("млн", Unit::scale(&MILLION)),
    ("млрд", Unit::scale(&BILLION)),
    ("км", Unit::of(&KILOMETER)),
    ("м", Unit::of(&METER)),
    ("см", Unit::of(&CENTIMETER)),
    ("мм", Unit::of(&MILLIMETER)),
    ("кг", Unit::of(&KILOGRAM)),
    ("г", Unit::of(&GRAM)),
    ("мг", Unit::of(&MILLIGRAM)),
    ("л", Unit::of(&LITER)),
    ("мл", Unit::of(&MILLILITER)),
    ("ч", Unit::of(&HOUR)),
    ("мин", Unit::of(&MINUTE)),
    ("сек", Unit::of(&SECOND)),
    ("шт", Unit::of(&PIECE)),
];

/// Russian units after a number.
static MEASURES: Units<Unit> = Units {
    words: WORD_UNITS,
    symbols: &SYMBOL_UNITS,
    speeds: [("км", "ч", &KM_PER_HOUR), ("м", "с", &M_PER_SECOND)],
    degrees: [&DEGREES, &CELSIUS, &FAHRENHEIT],
    celsius: &["C", "С"],
};

/// A unit symbol or abbreviation at `j`, after an optional space.
fn scan_unit(toks: &[Tok<'_>], j: usize) -> Option<Found<Unit>> {
    MEASURES.scan(toks, j)
}

/// What follows a number: an optional multiplier ("тыс.") and an optional unit ("руб.").
struct Measure {
    scale: Option<&'static Unit>,
    unit: Option<&'static Unit>,
    end: usize,
    dot: bool,
}

impl Measure {
    fn is_empty(&self) -> bool {
        self.scale.is_none() && self.unit.is_none()
    }

    fn gender(&self) -> Option<Gender> {
        self.scale.or(self.unit).map(|unit| unit.noun.gender)
    }
}

fn scan_measure(toks: &[Tok<'_>], j: usize) -> Measure {
    let Some(first) = scan_unit(toks, j) else {
        return Measure {
            scale: None,
            unit: None,
            end: j,
            dot: false,
        };
    };
    if !first.unit.multiplier {
        return Measure {
            scale: None,
            unit: Some(first.unit),
            end: first.end,
            dot: first.dot,
        };
    }
    let unit = scan_unit(toks, first.end).filter(|found| !found.unit.multiplier);
    let last = unit.unwrap_or(first);
    Measure {
        scale: Some(first.unit),
        unit: unit.map(|found| found.unit),
        end: last.end,
        dot: last.dot,
    }
}

// ---------------------------------------------------------------- quantities

/// How the numbers of one quantity are read.
struct Reading {
    case: Case,
    gender: Gender,
    /// A noun or unit follows, so "1,5" may read "полтора".
    noun_follows: bool,
}

impl Reading {
    fn new(prev: Option<&str>, last: &Amount, measure: &Measure, written: Option<&str>) -> Self {
        let written = written.map(str::to_lowercase);
        let written = written.as_deref();
        let gender = measure
            .gender()
            .or_else(|| written.and_then(written_gender))
            .unwrap_or(Gender::Masc);
        let mut case = number_case(prev, last);
        let accusative_noun = written.is_some_and(|w| w.ends_with(['у', 'ю']));
        if case == Case::Nom && gender == Gender::Fem && accusative_noun {
            case = Case::Acc;
        }
        if let Some(oblique) = written.and_then(oblique_plural_case) {
            case = oblique;
        }
        let noun_follows = !measure.is_empty() || written.is_some_and(looks_genitive_singular);
        Reading {
            case,
            gender,
            noun_follows,
        }
    }

    fn amount(&self, amount: &Amount) -> String {
        match amount {
            Amount::Whole(n) => number_words(*n, self.gender, self.case),
            Amount::Decimal(1, frac)
                if frac == "5" && self.noun_follows && self.case.is_direct() =>
            {
                one_and_a_half(self.gender).to_string()
            }
            Amount::Decimal(whole, frac) => decimal_words(*whole, frac, self.case),
            Amount::Digits(digits) => digit_words(digits),
        }
    }

    /// " тысяч рублей": the multiplier and unit words after the last number.
    fn measure(&self, last: &Amount, measure: &Measure) -> String {
        let mut text = String::new();
        if let Some(scale) = measure.scale {
            text.push(' ');
            text.push_str(&noun_after(scale.noun, last, self.case));
        }
        if let Some(unit) = measure.unit {
            let noun = if measure.scale.is_some() {
                unit.noun.form(true, Case::Gen)
            } else {
                noun_after(unit.noun, last, self.case)
            };
            text.push(' ');
            text.push_str(&noun);
            text.push_str(unit.suffix);
        }
        text
    }
}

/// The case of a number after `prev`; "по" takes the dative with numbers ending in 1 ("по одному").
fn number_case(prev: Option<&str>, amount: &Amount) -> Case {
    let ends_in_one = matches!(amount, Amount::Whole(n) if count_of(*n) == Count::One);
    if prev == Some("по") && ends_in_one {
        Case::Dat
    } else {
        preposition_case(prev)
    }
}

/// The case shown by a plural noun ending: "метрах" (prepositional),
/// "часами", "детьми" (instrumental), "часам" (dative).
fn oblique_plural_case(word: &str) -> Option<Case> {
    if word.chars().count() < 4 || matches!(word, "нами" | "вами") {
        return None;
    }
    if ["ами", "ями", "ьми"].iter().any(|e| word.ends_with(e)) {
        Some(Case::Ins)
    } else if ["ах", "ях"].iter().any(|e| word.ends_with(e)) {
        Some(Case::Pre)
    } else if ["ам", "ям"].iter().any(|e| word.ends_with(e)) {
        Some(Case::Dat)
    } else {
        None
    }
}

/// "часа", "минуты", "недели": a noun form that may follow "полтора".
fn looks_genitive_singular(word: &str) -> bool {
    word.chars().count() >= 3 && word.ends_with(['а', 'я', 'ы', 'и'])
}

fn one_and_a_half(gender: Gender) -> &'static str {
    if gender == Gender::Fem {
        "полторы"
    } else {
        "полтора"
    }
}

/// A noun after a number: agreeing with a whole number, genitive singular after a fraction.
fn noun_after(noun: &Noun, amount: &Amount, case: Case) -> String {
    match amount {
        Amount::Whole(n) => noun.agree(*n, case),
        Amount::Decimal(..) => noun.form(false, Case::Gen),
        Amount::Digits(_) => noun.form(true, Case::Gen),
    }
}

/// "5.99" dollars → "пять долларов девяносто девять центов".
fn money_words(amount: &Amount, measure: &Measure, case: Case) -> Option<String> {
    let unit = measure.unit.filter(|_| measure.scale.is_none())?;
    let minor = unit.minor?;
    let Amount::Decimal(whole, frac) = amount else {
        return None;
    };
    if frac.len() != 2 {
        return None;
    }
    let cents: u64 = frac.parse().ok()?;
    let major = counted(*whole, unit.noun, case);
    let minor_text = counted(cents, minor, case);
    Some(match (*whole, cents) {
        (0, 1..) => minor_text,
        (_, 0) => major,
        _ => format!("{major} {minor_text}"),
    })
}

fn counted(n: u64, noun: &Noun, case: Case) -> String {
    format!(
        "{} {}",
        number_words(n, noun.gender, case),
        noun.agree(n, case)
    )
}

/// A number or a range of two, then the measure words.
fn say_quantity(
    first: &Amount,
    range: Option<(&str, &Amount)>,
    measure: &Measure,
    reading: &Reading,
) -> String {
    if range.is_none() {
        if let Some(money) = money_words(first, measure, reading.case) {
            return money;
        }
    }
    let mut text = reading.amount(first);
    let mut last = first;
    if let Some((dash, second)) = range {
        text.push_str(dash);
        text.push_str(&reading.amount(second));
        last = second;
    }
    text.push_str(&reading.measure(last, measure));
    text
}

/// Any number not matched by a more specific rule, with its range, units and agreement.
fn quantity(toks: &[Tok<'_>], i: usize) -> Option<Rewrite> {
    let first = scan_numeral(toks, i, &MARKS)?;
    let range = range_end(toks, &first, &MARKS);
    let last = range.as_ref().map_or(&first, |(_, second)| second);
    let measure = scan_measure(toks, last.end);
    let written = if measure.is_empty() {
        next_word(toks, last.end)
    } else {
        None
    };
    let governing = governing_word(toks, i);
    let reading = Reading::new(governing.as_deref(), &last.amount, &measure, written);
    let range_amounts = range.as_ref().map(|(dash, second)| (*dash, &second.amount));
    let mut text = say_quantity(&first.amount, range_amounts, &measure, &reading);
    text.push_str(kept_dot(toks, measure.end, measure.dot));
    Some(Rewrite {
        end: measure.end,
        text,
    })
}

/// "$5", "€10", "$2 млн".
fn currency_first(toks: &[Tok<'_>], i: usize) -> Option<Rewrite> {
    let symbol = char_at(toks, i)?;
    let &(_, unit) = SYMBOL_UNITS
        .iter()
        .find(|(s, unit)| *s == symbol && unit.minor.is_some())?;
    let numeral = scan_numeral(toks, skip_space(toks, i + 1), &MARKS)?;
    let scale = scan_unit(toks, numeral.end).filter(|found| found.unit.multiplier);
    let measure = Measure {
        scale: scale.map(|found| found.unit),
        unit: Some(unit),
        end: scale.map_or(numeral.end, |found| found.end),
        dot: scale.is_some_and(|found| found.dot),
    };
    let reading = Reading::new(
        prev_word(toks, i).as_deref(),
        &numeral.amount,
        &measure,
        None,
    );
    let mut text = say_quantity(&numeral.amount, None, &measure, &reading);
    text.push_str(kept_dot(toks, measure.end, measure.dot));
    Some(Rewrite {
        end: measure.end,
        text,
    })
}

fn sign(toks: &[Tok<'_>], i: usize) -> Option<Rewrite> {
    let minus = sign_at(toks, i)?;
    Some(Rewrite {
        end: i + 1,
        text: if minus { "минус " } else { "плюс " }.to_string(),
    })
}

// ---------------------------------------------------------------- ordinals in text

/// How a number with a written ending ("5-го", "2-х") is read.
enum Suffixed {
    Ordinal(Form, Case),
    Cardinal(Case),
}

/// "1-й", "2-я", "3-е", "5-го", "в 10-м", "90-х", and cardinal endings "5-ти", "2-х".
fn ordinal(toks: &[Tok<'_>], i: usize) -> Option<Rewrite> {
    let n = number_at(toks, i, MAX_DIGITS, 0..=MAX_NUMBER)?;
    let hyphen = is_char(toks, i + 1, '-');
    let k = if hyphen { i + 2 } else { i + 1 };
    let suffix = word_at(toks, k).filter(|s| hyphen || s.chars().count() >= 2)?;
    let prev = prev_word(toks, i);
    let next = next_word(toks, k + 1).map(str::to_lowercase);
    let text = match suffix_reading(suffix, n, prev.as_deref(), next.as_deref())? {
        Suffixed::Ordinal(form, case) => ordinal_words(n, form, case),
        Suffixed::Cardinal(case) => number_words(n, Gender::Masc, case),
    };
    Some(Rewrite { end: k + 1, text })
}

fn suffix_reading(
    suffix: &str,
    n: u64,
    prev: Option<&str>,
    next: Option<&str>,
) -> Option<Suffixed> {
    use Suffixed::{Cardinal, Ordinal};
    let fem_next = next.and_then(written_gender) == Some(Gender::Fem);
    let few = (2..=4).contains(&(n % 10)) && !(11..=14).contains(&(n % 100));
    let masc = Form::Sg(Gender::Masc);
    let fem = Form::Sg(Gender::Fem);
    Some(match suffix {
        "й" | "ый" | "ой" | "ий" if fem_next => Ordinal(fem, Case::Gen),
        "й" | "ый" | "ой" | "ий" => Ordinal(masc, Case::Nom),
        "я" | "ая" | "яя" => Ordinal(fem, Case::Nom),
        "е" | "ое" | "ее" | "ье" if names_decade(n, next) => {
            Ordinal(Form::Plural, Case::Nom)
        }
        "е" | "ое" | "ее" | "ье" => Ordinal(Form::Sg(Gender::Neut), Case::Nom),
        "го" | "ого" | "его" => Ordinal(masc, Case::Gen),
        "му" | "ому" | "ему" => Ordinal(masc, Case::Dat),
        "м" | "ым" | "им" if is_locative(prev) || prev == Some("на") => {
            Ordinal(masc, Case::Pre)
        }
        "м" | "ым" | "им" => Ordinal(masc, Case::Ins),
        "ом" | "ем" => Ordinal(masc, Case::Pre),
        "ю" | "ую" | "юю" => Ordinal(fem, Case::Acc),
        "х" if few => Cardinal(Case::Gen),
        "х" | "ых" | "их" => Ordinal(Form::Plural, Case::Gen),
        "ми" if matches!(n % 10, 7 | 8) => Cardinal(Case::Gen),
        "ми" | "ыми" | "ими" => Ordinal(Form::Plural, Case::Ins),
        "ти" | "и" | "ух" | "ех" | "ёх" => Cardinal(Case::Gen),
        "мя" => Cardinal(Case::Ins),
        _ => return None,
    })
}

/// "90-е", "1990-е годы": a decade, read as a plural ordinal.
fn names_decade(n: u64, next: Option<&str>) -> bool {
    match next {
        Some(word) => word.starts_with("год"),
        None => n >= 20 && n.is_multiple_of(10) && n % 100 != 10,
    }
}

// ---------------------------------------------------------------- dates

const MONTHS_GENITIVE: [&str; 12] = [
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
];
const MONTH_STEMS: [&str; 11] = [
    "январ",
    "феврал",
    "март",
    "апрел",
    "июн",
    "июл",
    "август",
    "сентябр",
    "октябр",
    "ноябр",
    "декабр",
];

fn is_month(word: &str) -> bool {
    MONTH_STEMS.iter().any(|stem| word.starts_with(stem))
        || matches!(word, "май" | "мая" | "мае" | "маем")
}

/// "7 декабря" → "седьмое", "с 1 по 5 января" → "с первого по пятое"; the month is left as written.
fn day_of_month(toks: &[Tok<'_>], i: usize) -> Option<Rewrite> {
    let day = number_at(toks, i, 2, 1..=31)?;
    if !month_after_day(toks, i + 1) {
        return None;
    }
    Some(Rewrite {
        end: i + 1,
        text: ordinal_words(day, Form::Sg(Gender::Neut), day_case(toks, i)),
    })
}

/// The case of the day of a date at `i`: its preposition's ("до седьмого", "по пятое");
/// without one, the nominative where the date is named (opening a sentence or after a
/// colon, "Сегодня седьмое декабря") and the genitive where it says when ("доставим
/// седьмого декабря").
fn day_case(toks: &[Tok<'_>], i: usize) -> Case {
    // The second day of "1-5 января" takes the first one's case.
    if i >= 2 && is_dash(toks, i - 1) && digits_at(toks, i - 2).is_some() {
        return day_case(toks, i - 2);
    }
    let prev = prev_word(toks, i);
    match preposition_case(prev.as_deref()) {
        Case::Nom => {
            let colon =
                (i >= 2 && is_char(toks, i - 2, ':')) || (i >= 1 && is_char(toks, i - 1, ':'));
            let named = matches!(
                prev.as_deref(),
                Some(
                    "сегодня"
                        | "завтра"
                        | "вчера"
                        | "послезавтра"
                        | "это"
                        | "дата"
                        | "число"
                )
            );
            if named || colon || starts_sentence(toks, i) {
                Case::Nom
            } else {
                Case::Gen
            }
        }
        case => case,
    }
}

/// A genitive month name at `j`, or after a second day: "1-5 января", "1 по 5 января".
fn month_after_day(toks: &[Tok<'_>], j: usize) -> bool {
    let is_month_name = |k: usize| {
        next_word(toks, k).is_some_and(|w| MONTHS_GENITIVE.contains(&w.to_lowercase().as_str()))
    };
    if is_month_name(j) {
        return true;
    }
    let second_day = if is_dash(toks, j) {
        j + 1
    } else {
        let k = skip_space(toks, j);
        match word_at(toks, k) {
            Some("по" | "до") => skip_space(toks, k + 1),
            _ => return false,
        }
    };
    number_at(toks, second_day, 2, 1..=31).is_some() && is_month_name(second_day + 1)
}

/// "07.12.2026", "07.12", "1.03" (without a year only when padded and not before a unit).
fn dotted_date(toks: &[Tok<'_>], i: usize) -> Option<Rewrite> {
    let date = scan_numeric_date(toks, i, '.')?;
    // "10.05" may be a time or a decimal ("10.05 рубля"): without a year, a date only after a
    // preposition of dates ("с 1.03 по 3.03") or where no word follows it.
    let bare = date.year.is_none();
    let dated = matches!(
        prev_word(toks, i).as_deref(),
        Some("с" | "со" | "по" | "до" | "на" | "к" | "от")
    ) || next_word(toks, date.end).is_none();
    if bare && (!date.padded || !dated) {
        return None;
    }
    let date = Date {
        day: date.first,
        month: date.second,
        year: date.year,
        end: date.end,
    };
    say_date(toks, i, &date)
}

/// "2026-12-07".
fn iso_date(toks: &[Tok<'_>], i: usize) -> Option<Rewrite> {
    say_date(toks, i, &scan_iso_date(toks, i)?)
}

/// "седьмое декабря две тысячи двадцать шестого года".
fn say_date(toks: &[Tok<'_>], i: usize, date: &Date) -> Option<Rewrite> {
    let month = usize::try_from(date.month).ok()?.checked_sub(1)?;
    let month_name = MONTHS_GENITIVE.get(month)?;
    if !(1..=31).contains(&date.day) {
        return None;
    }
    let prev = prev_word(toks, i);
    let day = ordinal_words(date.day, Form::Sg(Gender::Neut), day_case(toks, i));
    let mut text = format!("{day} {month_name}");
    let Some(year) = date.year else {
        return Some(Rewrite {
            end: date.end,
            text,
        });
    };
    let marker = year_marker(toks, date.end, prev.as_deref());
    let (tail, end) = genitive_year_tail(toks, date.end, &marker);
    text.push(' ');
    text.push_str(&ordinal_words(year, Form::Sg(Gender::Masc), Case::Gen));
    text.push_str(&tail);
    Some(Rewrite { end, text })
}

/// What follows a year: "г.", a form of "год" (giving the case), or nothing.
enum YearMarker {
    Abbreviation { end: usize },
    Noun(Case),
    Absent,
}

fn year_marker(toks: &[Tok<'_>], j: usize, prev: Option<&str>) -> YearMarker {
    let k = skip_space(toks, j);
    match word_at(toks, k) {
        Some("г") if is_char(toks, k + 1, '.') => YearMarker::Abbreviation { end: k + 2 },
        Some("год") => YearMarker::Noun(Case::Nom),
        Some("года") => YearMarker::Noun(Case::Gen),
        Some("году") if is_locative(prev) => YearMarker::Noun(Case::Pre),
        Some("году") => YearMarker::Noun(Case::Dat),
        Some("годом") => YearMarker::Noun(Case::Ins),
        _ => YearMarker::Absent,
    }
}

/// After a year in the genitive: "г." or nothing become "года"; a written "года" stays.
fn genitive_year_tail(toks: &[Tok<'_>], j: usize, marker: &YearMarker) -> (String, usize) {
    match marker {
        YearMarker::Abbreviation { end } => (format!(" года{}", kept_dot(toks, *end, true)), *end),
        YearMarker::Noun(_) => (String::new(), j),
        YearMarker::Absent => (" года".to_string(), j),
    }
}

/// "2026 г.", "в 2026 году", "декабря 2026": a year read as an ordinal.
fn year(toks: &[Tok<'_>], i: usize) -> Option<Rewrite> {
    let year = number_at(toks, i, 4, 1000..=2999)?;
    let prev = prev_word(toks, i);
    let marker = year_marker(toks, i + 1, prev.as_deref());
    let masc = Form::Sg(Gender::Masc);
    if prev.as_deref().is_some_and(is_month) {
        let (tail, end) = genitive_year_tail(toks, i + 1, &marker);
        let text = format!("{}{tail}", ordinal_words(year, masc, Case::Gen));
        return Some(Rewrite { end, text });
    }
    match marker {
        YearMarker::Abbreviation { end } => {
            let case = year_case(prev.as_deref());
            let text = format!(
                "{} {}{}",
                ordinal_words(year, masc, case),
                YEAR.form(false, case),
                kept_dot(toks, end, true)
            );
            Some(Rewrite { end, text })
        }
        YearMarker::Noun(case) => Some(Rewrite {
            end: i + 1,
            text: ordinal_words(year, masc, case),
        }),
        YearMarker::Absent => None,
    }
}

/// "в 2026 г." takes the prepositional ("в году"); other prepositions as usual.
fn year_case(prev: Option<&str>) -> Case {
    if is_locative(prev) {
        Case::Pre
    } else {
        preposition_case(prev)
    }
}

/// "за 2024-2025 гг." → "за две тысячи двадцать четвёртый-две тысячи двадцать пятый годы";
/// also before a written plural "годы", "годах".
fn year_range(toks: &[Tok<'_>], i: usize) -> Option<Rewrite> {
    let first = number_at(toks, i, 4, 1000..=2999)?;
    let dash = toks.get(i + 1).filter(|_| is_dash(toks, i + 1))?.text;
    let second = number_at(toks, i + 2, 4, 1000..=2999)?;
    let k = skip_space(toks, i + 3);
    let (case, end, noun) = match word_at(toks, k)? {
        "гг" if is_char(toks, k + 1, '.') => {
            let case = year_case(prev_word(toks, i).as_deref());
            let noun = format!(" {}{}", YEAR.form(true, case), kept_dot(toks, k + 2, true));
            (case, k + 2, noun)
        }
        word => (plural_year_case(word)?, i + 3, String::new()),
    };
    let masc = Form::Sg(Gender::Masc);
    let text = format!(
        "{}{dash}{}{noun}",
        ordinal_words(first, masc, case),
        ordinal_words(second, masc, case)
    );
    Some(Rewrite { end, text })
}

fn plural_year_case(word: &str) -> Option<Case> {
    match word {
        "годы" => Some(Case::Nom),
        "годов" => Some(Case::Gen),
        "годам" => Some(Case::Dat),
        "годами" => Some(Case::Ins),
        "годах" => Some(Case::Pre),
        _ => None,
    }
}

// ---------------------------------------------------------------- times

/// "9:30", "в 9:00", "с 9:00 до 18:00", "9:00–18:00" (read "с девяти до восемнадцати").
fn clock(toks: &[Tok<'_>], i: usize) -> Option<Rewrite> {
    let start = scan_clock(toks, i)?;
    let prev = prev_word(toks, i);
    let Some(finish) = scan_dash(toks, start.end).and_then(|k| scan_clock(toks, k)) else {
        return Some(Rewrite {
            end: start.end,
            text: clock_words(&start, preposition_case(prev.as_deref())),
        });
    };
    let from = if matches!(prev.as_deref(), Some("с" | "со")) {
        ""
    } else {
        "с "
    };
    let text = format!(
        "{from}{} до {}",
        clock_words(&start, Case::Gen),
        clock_words(&finish, Case::Gen)
    );
    Some(Rewrite {
        end: finish.end,
        text,
    })
}

/// "девять ноль-ноль", "девять тридцать", "девять ноль пять"; after a
/// preposition the hour declines and ":00" is not read ("с девяти").
fn clock_words(clock: &Clock, case: Case) -> String {
    let mut words = number_words(clock.hour, Gender::Masc, case);
    let field_case = if case.is_direct() { Case::Nom } else { case };
    for value in [Some(clock.minute), clock.second].into_iter().flatten() {
        if let Some(field) = clock_field_words(value, field_case) {
            words.push(' ');
            words.push_str(&field);
        }
    }
    words
}

fn clock_field_words(value: u64, case: Case) -> Option<String> {
    match value {
        0 if case != Case::Nom => None,
        0 => Some("ноль-ноль".to_string()),
        1..=9 => Some(format!("ноль {}", number_words(value, Gender::Fem, case))),
        _ => Some(number_words(value, Gender::Fem, case)),
    }
}

// ---------------------------------------------------------------- phones

/// "+7 495 123-45-67" → "плюс семь, четыреста девяносто пять, сто двадцать три, сорок пять, шестьдесят семь".
fn phone(toks: &[Tok<'_>], i: usize) -> Option<Rewrite> {
    let phone = scan_phone(toks, i)?;
    let bare_trunk = !phone.plus
        && phone.groups.len() == 1
        && phone.digit_count() == 11
        && phone.groups[0].starts_with(['7', '8'])
        && scan_unit(toks, phone.end).is_none();
    if !phone.is_formatted() && !bare_trunk {
        return None;
    }
    Some(phone.read_aloud(&PhoneReading {
        plus: "плюс ",
        run_sizes,
        group_sizes,
        words: phone_group_words,
    }))
}

/// "74951234567" → 7 495 123 45 67; "375291234567" → 375 29 123 45 67.
fn run_sizes(run: &str) -> Vec<usize> {
    match run.len() {
        11 if run.starts_with(['7', '8']) => [vec![1], group_sizes(10)].concat(),
        12 => [vec![3, 2], group_sizes(7)].concat(),
        len => group_sizes(len),
    }
}

/// 7 digits → 3-2-2, 10 → 3-3-2-2, 4 → 2-2.
fn group_sizes(len: usize) -> Vec<usize> {
    match len {
        0..=3 => vec![len],
        4 => vec![2, 2],
        _ => [vec![3], group_sizes(len - 3)].concat(),
    }
}

/// A group as a number, or digit by digit when it starts with 0 ("05" → "ноль пять").
fn phone_group_words(group: &str) -> String {
    match group.parse::<u64>() {
        Ok(n) if !group.starts_with('0') => number_words(n, Gender::Masc, Case::Nom),
        _ => digit_words(group),
    }
}

// ---------------------------------------------------------------- abbreviations

/// Where a one-word abbreviation with a dot is expanded.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Anywhere,
    BeforeNumber,
    BeforeName,
    AfterAnd,
}

static DOTTED_WORDS: &[(&str, &str, Place)] = &[
    ("ул", "улица", Place::Anywhere),
    ("корп", "корпус", Place::Anywhere),
    ("напр", "например", Place::Anywhere),
    ("см", "смотри", Place::Anywhere),
    ("д", "дом", Place::BeforeNumber),
    ("кв", "квартира", Place::BeforeNumber),
    ("стр", "строение", Place::BeforeNumber),
    ("г", "город", Place::BeforeName),
    ("пр", "проспект", Place::BeforeName),
    ("пр", "прочее", Place::AfterAnd),
    ("др", "другие", Place::AfterAnd),
];

static DOTTED_PHRASES: &[(&str, &str, &str)] = &[
    ("т", "е", "то есть"),
    ("т", "д", "так далее"),
    ("т", "п", "тому подобное"),
    ("т", "к", "так как"),
    ("рт", "ст", "ртутного столба"),
];

fn abbreviation(toks: &[Tok<'_>], i: usize) -> Option<Rewrite> {
    if is_char(toks, i, '№') {
        return Some(Rewrite {
            end: i + 1,
            text: "номер".to_string(),
        });
    }
    let word = word_at(toks, i)?;
    phrase_abbreviation(toks, i, word)
        .or_else(|| avenue_abbreviation(toks, i, word))
        .or_else(|| word_abbreviation(toks, i, word))
}

/// "т.е.", "т. д.", "т.п.", "т.к.".
fn phrase_abbreviation(toks: &[Tok<'_>], i: usize, word: &str) -> Option<Rewrite> {
    DOTTED_PHRASES
        .iter()
        .find_map(|(first, second, expansion)| {
            let (end, dot) = dotted_phrase(toks, i, first, second)?;
            Some(Rewrite {
                end,
                text: format!(
                    "{}{}",
                    match_case(word, expansion),
                    kept_dot(toks, end, dot)
                ),
            })
        })
}

/// "пр-т".
fn avenue_abbreviation(toks: &[Tok<'_>], i: usize, word: &str) -> Option<Rewrite> {
    let avenue = word == "пр" && is_char(toks, i + 1, '-') && word_at(toks, i + 2) == Some("т");
    avenue.then(|| Rewrite {
        end: i + 3,
        text: "проспект".to_string(),
    })
}

/// "ул.", "д. 5", "г. Москва", "и др.".
fn word_abbreviation(toks: &[Tok<'_>], i: usize, word: &str) -> Option<Rewrite> {
    if !is_char(toks, i + 1, '.') {
        return None;
    }
    let lower = word.to_lowercase();
    let prev = prev_word(toks, i);
    let after = skip_space(toks, i + 2);
    let fits = |place: Place| match place {
        Place::Anywhere => true,
        Place::BeforeNumber => digits_at(toks, after).is_some(),
        Place::BeforeName => word_at(toks, after).is_some_and(is_capitalised),
        Place::AfterAnd => prev.as_deref() == Some("и"),
    };
    let (_, expansion, place) = DOTTED_WORDS
        .iter()
        .find(|(short, _, place)| *short == lower && fits(*place))?;
    let dot = if *place == Place::AfterAnd {
        kept_dot(toks, i + 2, true)
    } else {
        ""
    };
    Some(Rewrite {
        end: i + 2,
        text: format!("{}{dot}", match_case(word, expansion)),
    })
}
