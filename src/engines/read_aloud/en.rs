//! English read-aloud rules: cardinals, ordinals, years, decimals, dates,
//! clock times with a.m./p.m., phone numbers, money, percents, units and
//! common abbreviations ("Dr.", "St.", "e.g.", "etc.").

use super::{
    char_at, digits_at, dotted_phrase, is_capitalised, is_char, is_space, kept_dot, match_case,
    next_word, number_at, prev_word, range_end, scan_clock, scan_dash, scan_iso_date, scan_numeral,
    scan_numeric_date, scan_phone, sign_at, skip_space, starts_sentence, word_at, Amount, Clock,
    Date, Found, Marks, Numeral, PhoneReading, Rewrite, Rule, Tok, Units, MAX_DIGITS,
};

pub(super) const RULES: &[Rule] = &[
    abbreviation,
    month_day,
    number_sign,
    iso_date,
    slash_date,
    phone,
    sign,
    currency_first,
    clock,
    day_month,
    ordinal,
    decade,
    quantity,
];

const MARKS: Marks = Marks {
    decimal: &['.'],
    group: &[','],
    space_groups: false,
};

// ---------------------------------------------------------------- number words

const MAX_NUMBER: u64 = 999_999_999_999_999;

const SMALL: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 8] = [
    "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];
const SCALES: [(u64, &str); 4] = [
    (1_000_000_000_000, "trillion"),
    (1_000_000_000, "billion"),
    (1_000_000, "million"),
    (1_000, "thousand"),
];

/// `n` in words, American style: 101 → "one hundred one".
pub(super) fn number_words(n: u64) -> String {
    if n > MAX_NUMBER {
        return digit_words(&n.to_string());
    }
    if n == 0 {
        return SMALL[0].to_string();
    }
    let mut words = Vec::new();
    for (scale, name) in SCALES {
        let count = n / scale % 1000;
        if count > 0 {
            words.push(format!("{} {name}", hundreds_words(count)));
        }
    }
    if !n.is_multiple_of(1000) {
        words.push(hundreds_words(n % 1000));
    }
    words.join(" ")
}

/// Words of 1 to 999.
fn hundreds_words(n: u64) -> String {
    let (hundreds, rest) = (n / 100, n % 100);
    let hundreds_word = SMALL[hundreds as usize];
    match (hundreds, rest) {
        (0, _) => below_hundred(rest),
        (_, 0) => format!("{hundreds_word} hundred"),
        _ => format!("{hundreds_word} hundred {}", below_hundred(rest)),
    }
}

fn below_hundred(n: u64) -> String {
    let tens = || TENS[(n / 10 - 2) as usize];
    match n {
        0..=19 => SMALL[n as usize].to_string(),
        _ if n.is_multiple_of(10) => tens().to_string(),
        _ => format!("{}-{}", tens(), SMALL[(n % 10) as usize]),
    }
}

/// 21 → "twenty-first", 100 → "one hundredth".
pub(super) fn ordinal_words(n: u64) -> String {
    let cardinal = number_words(n);
    let split = cardinal.rfind([' ', '-']).map_or(0, |p| p + 1);
    let (head, last) = cardinal.split_at(split);
    format!("{head}{}", ordinal_of_word(last))
}

fn ordinal_of_word(word: &str) -> String {
    match word {
        "one" => "first".to_string(),
        "two" => "second".to_string(),
        "three" => "third".to_string(),
        "five" => "fifth".to_string(),
        "eight" => "eighth".to_string(),
        "nine" => "ninth".to_string(),
        "twelve" => "twelfth".to_string(),
        _ => match word.strip_suffix('y') {
            Some(stem) => format!("{stem}ieth"),
            None => format!("{word}th"),
        },
    }
}

/// 2026 → "twenty twenty-six", 1905 → "nineteen oh five", 2005 → "two thousand five".
pub(super) fn year_words(year: u64) -> String {
    if !(1000..=9999).contains(&year) || year % 1000 < 10 {
        return number_words(year);
    }
    let (high, low) = (number_words(year / 100), year % 100);
    match low {
        0 => format!("{high} hundred"),
        1..=9 => format!("{high} oh {}", number_words(low)),
        _ => format!("{high} {}", number_words(low)),
    }
}

fn digit_words(digits: &str) -> String {
    digits
        .bytes()
        .filter_map(|b| {
            SMALL
                .get(usize::from(b.wrapping_sub(b'0')))
                .filter(|_| b.is_ascii_digit())
        })
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

fn amount_words(amount: &Amount) -> String {
    match amount {
        Amount::Whole(n) => number_words(*n),
        Amount::Decimal(whole, frac) => {
            format!("{} point {}", number_words(*whole), digit_words(frac))
        }
        Amount::Digits(digits) => digit_words(digits),
    }
}

// ---------------------------------------------------------------- units

/// A unit or currency after a number (or a currency sign before it).
struct Unit {
    one: &'static str,
    many: &'static str,
    /// Hundredth part of a currency, singular and plural.
    minor: Option<(&'static str, &'static str)>,
}

impl Unit {
    const fn plain(one: &'static str, many: &'static str) -> Unit {
        Unit {
            one,
            many,
            minor: None,
        }
    }

    const fn money(
        one: &'static str,
        many: &'static str,
        minor_one: &'static str,
        minor_many: &'static str,
    ) -> Unit {
        Unit {
            one,
            many,
            minor: Some((minor_one, minor_many)),
        }
    }

    fn name(&self, amount: &Amount) -> &'static str {
        if matches!(amount, Amount::Whole(1)) {
            self.one
        } else {
            self.many
        }
    }
}

static PERCENT: Unit = Unit::plain("percent", "percent");
static DOLLARS: Unit = Unit::money("dollar", "dollars", "cent", "cents");
static EUROS: Unit = Unit::money("euro", "euros", "cent", "cents");
static POUNDS: Unit = Unit::money("pound", "pounds", "penny", "pence");
static RUBLES: Unit = Unit::money("ruble", "rubles", "kopeck", "kopecks");
static DEGREES: Unit = Unit::plain("degree", "degrees");
static CELSIUS: Unit = Unit::plain("degree Celsius", "degrees Celsius");
static FAHRENHEIT: Unit = Unit::plain("degree Fahrenheit", "degrees Fahrenheit");
static KM_PER_HOUR: Unit = Unit::plain("kilometer per hour", "kilometers per hour");
static M_PER_SECOND: Unit = Unit::plain("meter per second", "meters per second");

static SYMBOL_UNITS: [(char, &Unit); 6] = [
    ('%', &PERCENT),
    ('$', &DOLLARS),
    ('€', &EUROS),
    ('£', &POUNDS),
    ('₽', &RUBLES),
    ('℃', &CELSIUS),
];

static WORD_UNITS: &[(&str, Unit)] = &[
    ("km", Unit::plain("kilometer", "kilometers")),
    ("cm", Unit::plain("centimeter", "centimeters")),
    ("mm", Unit::plain("millimeter", "millimeters")),
    ("mi", Unit::plain("mile", "miles")),
    ("mph", Unit::plain("mile per hour", "miles per hour")),
    ("kg", Unit::plain("kilogram", "kilograms")),
    ("g", Unit::plain("gram", "grams")),
    ("mg", Unit::plain("milligram", "milligrams")),
    ("lb", Unit::plain("pound", "pounds")),
    ("lbs", Unit::plain("pound", "pounds")),
    ("oz", Unit::plain("ounce", "ounces")),
    ("ml", Unit::plain("milliliter", "milliliters")),
    ("h", Unit::plain("hour", "hours")),
    ("hr", Unit::plain("hour", "hours")),
    ("hrs", Unit::plain("hour", "hours")),
    ("min", Unit::plain("minute", "minutes")),
    ("mins", Unit::plain("minute", "minutes")),
    ("sec", Unit::plain("second", "seconds")),
    ("secs", Unit::plain("second", "seconds")),
    ("ms", Unit::plain("millisecond", "milliseconds")),
    ("MB", Unit::plain("megabyte", "megabytes")),
    ("GB", Unit::plain("gigabyte", "gigabytes")),
    ("TB", Unit::plain("terabyte", "terabytes")),
];

/// Words that may follow a currency amount: "$2.5 million".
const SCALE_WORDS: [&str; 4] = ["thousand", "million", "billion", "trillion"];

/// English units after a number.
static MEASURES: Units<Unit> = Units {
    words: WORD_UNITS,
    symbols: &SYMBOL_UNITS,
    speeds: [("km", "h", &KM_PER_HOUR), ("m", "s", &M_PER_SECOND)],
    degrees: [&DEGREES, &CELSIUS, &FAHRENHEIT],
    celsius: &["C"],
};

/// A unit symbol or abbreviation at `j`, after an optional space.
fn scan_unit(toks: &[Tok<'_>], j: usize) -> Option<Found<Unit>> {
    MEASURES.scan(toks, j)
}

/// "five dollars ninety-nine cents", "two point five million dollars".
fn measured(amount: &Amount, unit: &Unit, scale: Option<&str>) -> String {
    if let Some(scale) = scale {
        return format!("{} {scale} {}", amount_words(amount), unit.many);
    }
    money_words(amount, unit)
        .unwrap_or_else(|| format!("{} {}", amount_words(amount), unit.name(amount)))
}

fn money_words(amount: &Amount, unit: &Unit) -> Option<String> {
    let (minor_one, minor_many) = unit.minor?;
    let Amount::Decimal(whole, frac) = amount else {
        return None;
    };
    if frac.len() != 2 {
        return None;
    }
    let cents: u64 = frac.parse().ok()?;
    let major_name = if *whole == 1 { unit.one } else { unit.many };
    let minor_name = if cents == 1 { minor_one } else { minor_many };
    let major = format!("{} {major_name}", number_words(*whole));
    let minor = format!("{} {minor_name}", number_words(cents));
    Some(match (*whole, cents) {
        (0, 1..) => minor,
        (_, 0) => major,
        _ => format!("{major} {minor}"),
    })
}

// ---------------------------------------------------------------- quantities

/// Words before a number that make a four-digit number a year: "in 2026".
const YEAR_WORDS: [&str; 14] = [
    "in", "since", "by", "until", "till", "from", "of", "year", "before", "after", "to", "through",
    "during", "circa",
];

/// Whether a four-digit number reads as a year: after a year word or a month
/// name, or not followed by a word (a count like "2026 people" reads as a cardinal).
fn year_context(prev: Option<&str>, word_follows: bool) -> bool {
    let year_word = prev.is_some_and(|w| {
        YEAR_WORDS.contains(&w) || MONTHS.iter().any(|m| m.eq_ignore_ascii_case(w))
    });
    year_word || !word_follows
}

/// Any number not matched by a more specific rule, with its range and unit.
fn quantity(toks: &[Tok<'_>], i: usize) -> Option<Rewrite> {
    let first = scan_numeral(toks, i, &MARKS)?;
    let range = range_end(toks, &first, &MARKS);
    let last = range.as_ref().map_or(&first, |(_, second)| second);
    if let Some(found) = scan_unit(toks, last.end) {
        let text = match &range {
            Some((_, second)) => format!(
                "{} to {} {}",
                amount_words(&first.amount),
                amount_words(&second.amount),
                found.unit.many
            ),
            None => measured(&first.amount, found.unit, None),
        };
        return Some(Rewrite {
            end: found.end,
            text: text + kept_dot(toks, found.end, found.dot),
        });
    }
    let years = year_context(
        prev_word(toks, i).as_deref(),
        next_word(toks, last.end).is_some(),
    );
    let say = |numeral: &Numeral| match numeral.amount {
        Amount::Whole(year) if years && numeral.plain && (1000..=2099).contains(&year) => {
            year_words(year)
        }
        _ => amount_words(&numeral.amount),
    };
    let text = match &range {
        Some((_, second)) => format!("{} to {}", say(&first), say(second)),
        None => say(&first),
    };
    Some(Rewrite {
        end: last.end,
        text,
    })
}

/// "$5", "€10.50", "$2.5 million".
fn currency_first(toks: &[Tok<'_>], i: usize) -> Option<Rewrite> {
    let symbol = char_at(toks, i)?;
    let &(_, unit) = SYMBOL_UNITS
        .iter()
        .find(|(s, unit)| *s == symbol && unit.minor.is_some())?;
    let numeral = scan_numeral(toks, skip_space(toks, i + 1), &MARKS)?;
    let scale = next_word(toks, numeral.end).filter(|w| SCALE_WORDS.contains(w));
    let end = if scale.is_some() {
        skip_space(toks, numeral.end) + 1
    } else {
        numeral.end
    };
    Some(Rewrite {
        end,
        text: measured(&numeral.amount, unit, scale),
    })
}

fn sign(toks: &[Tok<'_>], i: usize) -> Option<Rewrite> {
    let minus = sign_at(toks, i)?;
    Some(Rewrite {
        end: i + 1,
        text: if minus { "minus " } else { "plus " }.to_string(),
    })
}

/// "#5", "№ 5" → "number".
fn number_sign(toks: &[Tok<'_>], i: usize) -> Option<Rewrite> {
    let marked = matches!(char_at(toks, i), Some('#' | '№'));
    (marked && digits_at(toks, skip_space(toks, i + 1)).is_some()).then(|| Rewrite {
        end: i + 1,
        text: "number".to_string(),
    })
}

fn is_ordinal_suffix(word: &str) -> bool {
    matches!(
        word.to_ascii_lowercase().as_str(),
        "st" | "nd" | "rd" | "th"
    )
}

/// "1st", "22nd", "100th".
fn ordinal(toks: &[Tok<'_>], i: usize) -> Option<Rewrite> {
    let n = number_at(toks, i, MAX_DIGITS, 0..=MAX_NUMBER)?;
    word_at(toks, i + 1).filter(|w| is_ordinal_suffix(w))?;
    Some(Rewrite {
        end: i + 2,
        text: ordinal_words(n),
    })
}

/// "1990s" → "nineteen nineties", "80s" → "eighties".
fn decade(toks: &[Tok<'_>], i: usize) -> Option<Rewrite> {
    let digits = digits_at(toks, i)?;
    if word_at(toks, i + 1) != Some("s") || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let n = digits
        .parse::<u64>()
        .ok()
        .filter(|n| n.is_multiple_of(10))?;
    let words = if digits.len() == 4 {
        year_words(n)
    } else {
        number_words(n)
    };
    let text = match words.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{words}s"),
    };
    Some(Rewrite { end: i + 2, text })
}

// ---------------------------------------------------------------- dates

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// "December", "Dec", "Sept" → 0-based month index.
fn month_index(word: &str) -> Option<usize> {
    MONTHS.iter().position(|month| {
        *month == word
            || (word.len() == 3 && month.starts_with(word))
            || (word == "Sept" && *month == "September")
    })
}

/// The token after a month name, past an abbreviation's dot ("Dec.").
fn after_month_name(toks: &[Tok<'_>], i: usize, word: &str, month: usize) -> usize {
    if word.len() < MONTHS[month].len() && is_char(toks, i + 1, '.') {
        i + 2
    } else {
        i + 1
    }
}

/// ", 2026" or " 2026" after a day of the month: the spoken year and where it ends.
fn year_after(toks: &[Tok<'_>], j: usize) -> (String, usize) {
    let k = skip_space(toks, if is_char(toks, j, ',') { j + 1 } else { j });
    match number_at(toks, k, 4, 1000..=9999) {
        Some(year) if k > j => (format!(", {}", year_words(year)), k + 1),
        _ => (String::new(), j),
    }
}

/// "December 7, 2026" → "December seventh, twenty twenty-six".
fn month_day(toks: &[Tok<'_>], i: usize) -> Option<Rewrite> {
    let word = word_at(toks, i)?;
    let month = month_index(word)?;
    let after_name = after_month_name(toks, i, word, month);
    let k = skip_space(toks, after_name);
    if k == after_name {
        return None;
    }
    let day = number_at(toks, k, 2, 1..=31)?;
    let mut end = k + 1;
    if word_at(toks, end).is_some_and(is_ordinal_suffix) {
        end += 1;
    }
    let (year, end) = year_after(toks, end);
    Some(Rewrite {
        end,
        text: format!("{} {}{year}", MONTHS[month], ordinal_words(day)),
    })
}

/// "7 December 2026" → "the seventh of December, twenty twenty-six".
fn day_month(toks: &[Tok<'_>], i: usize) -> Option<Rewrite> {
    let day = number_at(toks, i, 2, 1..=31)?;
    let mut j = i + 1;
    if word_at(toks, j).is_some_and(is_ordinal_suffix) {
        j += 1;
    }
    let k = skip_space(toks, j);
    let word = word_at(toks, k).filter(|_| k > j)?;
    let month = month_index(word)?;
    let (year, end) = year_after(toks, after_month_name(toks, k, word, month));
    let the = if prev_word(toks, i).as_deref() == Some("the") {
        ""
    } else {
        "the "
    };
    Some(Rewrite {
        end,
        text: format!("{the}{} of {}{year}", ordinal_words(day), MONTHS[month]),
    })
}

/// "12/07/2026" (month first, unless the first number cannot be a month).
fn slash_date(toks: &[Tok<'_>], i: usize) -> Option<Rewrite> {
    let date = scan_numeric_date(toks, i, '/')?;
    date.year?;
    let (month, day) = if date.first > 12 && date.second <= 12 {
        (date.second, date.first)
    } else {
        (date.first, date.second)
    };
    say_date(&Date {
        day,
        month,
        year: date.year,
        end: date.end,
    })
}

/// "2026-12-07".
fn iso_date(toks: &[Tok<'_>], i: usize) -> Option<Rewrite> {
    say_date(&scan_iso_date(toks, i)?)
}

fn say_date(date: &Date) -> Option<Rewrite> {
    let month = usize::try_from(date.month).ok()?.checked_sub(1)?;
    let name = MONTHS.get(month)?;
    let year = date.year?;
    if !(1..=31).contains(&date.day) {
        return None;
    }
    Some(Rewrite {
        end: date.end,
        text: format!("{name} {}, {}", ordinal_words(date.day), year_words(year)),
    })
}

// ---------------------------------------------------------------- times

/// "a.m.", "am", "PM" after a time.
struct Meridiem {
    label: &'static str,
    end: usize,
    dot: bool,
}

fn scan_meridiem(toks: &[Tok<'_>], j: usize) -> Option<Meridiem> {
    let k = skip_space(toks, j);
    let word = word_at(toks, k)?.to_ascii_lowercase();
    let label = |letter: &str| match letter {
        "a" | "am" => Some("a m"),
        "p" | "pm" => Some("p m"),
        _ => None,
    };
    if word.len() == 2 && word.ends_with('m') {
        return Some(Meridiem {
            label: label(&word)?,
            end: k + 1,
            dot: false,
        });
    }
    let dotted = is_char(toks, k + 1, '.')
        && word_at(toks, k + 2).is_some_and(|m| m.eq_ignore_ascii_case("m"));
    if !dotted {
        return None;
    }
    let dot = is_char(toks, k + 3, '.');
    Some(Meridiem {
        label: label(&word)?,
        end: k + 3 + usize::from(dot),
        dot,
    })
}

/// "9:00" → "nine o'clock", "18:00" → "eighteen hundred", "9:05" → "nine oh five".
fn clock_words(clock: &Clock, with_meridiem: bool) -> String {
    let hour = number_words(clock.hour);
    let mut text = match clock.minute {
        0 if with_meridiem => hour,
        0 if (1..=12).contains(&clock.hour) => format!("{hour} o'clock"),
        0 => format!("{hour} hundred"),
        1..=9 => format!("{hour} oh {}", number_words(clock.minute)),
        _ => format!("{hour} {}", number_words(clock.minute)),
    };
    if let Some(second) = clock.second {
        let unit = if second == 1 { "second" } else { "seconds" };
        text.push_str(&format!(" and {} {unit}", number_words(second)));
    }
    text
}

/// A time at `i` ("9:30", "9:30 a.m.", "9am"): its words and where it ends.
fn time_at(toks: &[Tok<'_>], i: usize) -> Option<(String, usize)> {
    if let Some(clock) = scan_clock(toks, i) {
        let meridiem = scan_meridiem(toks, clock.end);
        let mut text = clock_words(&clock, meridiem.is_some());
        let Some(meridiem) = meridiem else {
            return Some((text, clock.end));
        };
        text.push(' ');
        text.push_str(meridiem.label);
        text.push_str(kept_dot(toks, meridiem.end, meridiem.dot));
        return Some((text, meridiem.end));
    }
    let hour = number_at(toks, i, 2, 1..=12)?;
    let meridiem = scan_meridiem(toks, i + 1)?;
    let text = format!(
        "{} {}{}",
        number_words(hour),
        meridiem.label,
        kept_dot(toks, meridiem.end, meridiem.dot)
    );
    Some((text, meridiem.end))
}

/// A time or a range of times ("9:00-17:00" → "nine o'clock to seventeen hundred").
fn clock(toks: &[Tok<'_>], i: usize) -> Option<Rewrite> {
    let (start, start_end) = time_at(toks, i)?;
    match scan_dash(toks, start_end).and_then(|k| time_at(toks, k)) {
        Some((finish, end)) => Some(Rewrite {
            end,
            text: format!("{start} to {finish}"),
        }),
        None => Some(Rewrite {
            end: start_end,
            text: start,
        }),
    }
}

// ---------------------------------------------------------------- phones

/// "+1 (555) 123-4567" → "plus one, five five five, one two three, four five six seven";
/// "555-1234" and "555 123 4567" (the North American groups) too.
fn phone(toks: &[Tok<'_>], i: usize) -> Option<Rewrite> {
    let phone = scan_phone(toks, i)?;
    let sizes: Vec<usize> = phone.groups.iter().map(|g| g.len()).collect();
    // "555-1234", unless a unit follows: "500-1000 km" is a range.
    let local = phone.hyphens == 1 && sizes == [3, 4] && scan_unit(toks, phone.end).is_none();
    let national = sizes == [3, 3, 4];
    if !phone.is_formatted() && !local && !national {
        return None;
    }
    Some(phone.read_aloud(&PhoneReading {
        plus: "plus ",
        run_sizes,
        group_sizes,
        words: digit_words,
    }))
}

fn run_sizes(run: &str) -> Vec<usize> {
    match run.len() {
        11 if run.starts_with('1') => [vec![1], group_sizes(10)].concat(),
        len => group_sizes(len),
    }
}

/// 10 digits → 3-3-4, 7 → 3-4; up to 4 digits stay one group.
fn group_sizes(len: usize) -> Vec<usize> {
    match len {
        0..=4 => vec![len],
        7 => vec![3, 4],
        10 => vec![3, 3, 4],
        _ => [vec![3], group_sizes(len - 3)].concat(),
    }
}

// ---------------------------------------------------------------- abbreviations

/// Titles before a name; the dot is dropped.
static TITLES: &[(&str, &str)] = &[
    ("Dr", "Doctor"),
    ("Mr", "Mister"),
    ("Mrs", "Missus"),
    ("Ms", "Miz"),
    ("Prof", "Professor"),
];

/// Abbreviations with whether they may end a sentence (then their dot stays there).
static SHORTENED: &[(&str, &str, bool)] = &[
    ("etc", "et cetera", true),
    ("vs", "versus", false),
    ("approx", "approximately", false),
];

static PHRASES: &[(&str, &str, &str)] = &[
    ("e", "g", "for example"),
    ("i", "e", "that is"),
    ("a", "m", "a m"),
    ("p", "m", "p m"),
];

fn abbreviation(toks: &[Tok<'_>], i: usize) -> Option<Rewrite> {
    let word = word_at(toks, i)?;
    phrase(toks, i, word)
        .or_else(|| title(toks, i, word))
        .or_else(|| shortened(toks, i, word))
        .or_else(|| saint_or_street(toks, i, word))
        .or_else(|| number_abbreviation(toks, i, word))
}

/// "e.g.", "i.e.", "a.m.", "p.m.".
fn phrase(toks: &[Tok<'_>], i: usize, word: &str) -> Option<Rewrite> {
    PHRASES.iter().find_map(|(first, second, expansion)| {
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

/// "Dr. Smith", "Mr Brown" (without a dot only before a capitalised name).
fn title(toks: &[Tok<'_>], i: usize, word: &str) -> Option<Rewrite> {
    let (_, expansion) = TITLES.iter().find(|(short, _)| *short == word)?;
    let dot = is_char(toks, i + 1, '.');
    let end = i + 1 + usize::from(dot);
    let named = next_word(toks, end).is_some_and(is_capitalised);
    (dot || named).then(|| Rewrite {
        end,
        text: expansion.to_string(),
    })
}

/// "etc.", "vs.", "approx.".
fn shortened(toks: &[Tok<'_>], i: usize, word: &str) -> Option<Rewrite> {
    let lower = word.to_lowercase();
    let (_, expansion, may_end) = SHORTENED.iter().find(|(short, _, _)| *short == lower)?;
    let dot = is_char(toks, i + 1, '.');
    let end = i + 1 + usize::from(dot);
    Some(Rewrite {
        end,
        text: format!(
            "{}{}",
            match_case(word, expansion),
            kept_dot(toks, end, dot && *may_end)
        ),
    })
}

/// "St. Louis" → "Saint Louis"; "Main St." → "Main Street".
fn saint_or_street(toks: &[Tok<'_>], i: usize, word: &str) -> Option<Rewrite> {
    if word != "St" || !is_char(toks, i + 1, '.') {
        return None;
    }
    let end = i + 2;
    let before_name = next_word(toks, end).is_some_and(is_capitalised);
    let text = if before_name && !follows_street_name(toks, i) {
        "Saint".to_string()
    } else {
        format!("Street{}", kept_dot(toks, end, true))
    };
    Some(Rewrite { end, text })
}

/// The word before `i` names a street: "Main St.", "5th St." (a capitalised
/// word that does not open the sentence, or an ordinal).
fn follows_street_name(toks: &[Tok<'_>], i: usize) -> bool {
    let Some(p) = i.checked_sub(2).filter(|&p| is_space(toks, p + 1)) else {
        return false;
    };
    let Some(name) = word_at(toks, p) else {
        return false;
    };
    let ordinal = p
        .checked_sub(1)
        .is_some_and(|q| digits_at(toks, q).is_some());
    ordinal || (is_capitalised(name) && !starts_sentence(toks, p))
}

/// "No. 5" → "number five" (only before a number: "No." alone is the word "no").
fn number_abbreviation(toks: &[Tok<'_>], i: usize, word: &str) -> Option<Rewrite> {
    let numbered = matches!(word, "No" | "no" | "NO")
        && is_char(toks, i + 1, '.')
        && digits_at(toks, skip_space(toks, i + 2)).is_some();
    numbered.then(|| Rewrite {
        end: i + 2,
        text: "number".to_string(),
    })
}
