//! Tests of read-aloud normalisation: per-language tables of input → spoken
//! text, unit tests of the number-word functions, language-code dispatch, and
//! robustness on odd, huge and untrusted input.

use super::ru::{Case, Form, Gender};
use super::{en, for_speech, language_of, ru};

fn check_table(language: &str, cases: &[(&str, &str)]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(input, expected)| {
            let got = for_speech(input, language);
            (got != *expected)
                .then(|| format!("{input:?}\n  expected {expected:?}\n  got      {got:?}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} {language} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

const RUSSIAN: &[(&str, &str)] = &[
    // cardinals, digit groups, decimals
    ("0", "ноль"),
    ("У меня 3 кота.", "У меня три кота."),
    ("1 500", "тысяча пятьсот"),
    ("1\u{a0}500", "тысяча пятьсот"),
    ("1\u{202f}500\u{202f}000", "один миллион пятьсот тысяч"),
    ("2 000 000", "два миллиона"),
    (
        "123 456 789",
        "сто двадцать три миллиона четыреста пятьдесят шесть тысяч семьсот восемьдесят девять",
    ),
    (
        "999 999 999 999",
        "девятьсот девяносто девять миллиардов девятьсот девяносто девять миллионов \
         девятьсот девяносто девять тысяч девятьсот девяносто девять",
    ),
    ("3,5", "три целых пять десятых"),
    ("0,25", "ноль целых двадцать пять сотых"),
    ("через 1,5 часа", "через полтора часа"),
    ("007", "ноль ноль семь"),
    ("1.2.3.4", "один.два.три.четыре"),
    ("iPhone15", "iPhone пятнадцать"),
    // times
    ("в 9:00", "в девять ноль-ноль"),
    ("9:30", "девять тридцать"),
    ("Встреча в 9:05.", "Встреча в девять ноль пять."),
    ("в 21:45", "в двадцать один сорок пять"),
    ("с 9:00 до 18:00", "с девяти до восемнадцати"),
    ("с 9:30 до 18:00", "с девяти тридцати до восемнадцати"),
    ("Работаем 9:00–18:00.", "Работаем с девяти до восемнадцати."),
    (
        "Часы работы: 9:00-18:00",
        "Часы работы: с девяти до восемнадцати",
    ),
    ("к 15:30", "к пятнадцати тридцати"),
    // dates and years
    (
        "07.12.2026",
        "седьмое декабря две тысячи двадцать шестого года",
    ),
    (
        "7 декабря 2026 г.",
        "седьмое декабря две тысячи двадцать шестого года.",
    ),
    (
        "7 декабря 2026 года",
        "седьмое декабря две тысячи двадцать шестого года",
    ),
    ("до 7 декабря", "до седьмого декабря"),
    ("Сегодня 7 декабря.", "Сегодня седьмое декабря."),
    ("80000000000 руб.", "восемьдесят миллиардов рублей."),
    ("Дата: 7 декабря.", "Дата: седьмое декабря."),
    (
        "Мы доставим заказ 7 декабря.",
        "Мы доставим заказ седьмого декабря.",
    ),
    ("Приходите 10.05.", "Приходите десятого мая."),
    ("к 1 мая", "к первому мая"),
    (
        "С 1 по 5 января офис закрыт.",
        "С первого по пятое января офис закрыт.",
    ),
    ("1-5 января", "первое-пятое января"),
    (
        "2026-12-07",
        "седьмое декабря две тысячи двадцать шестого года",
    ),
    ("10.05", "десятое мая"),
    ("с 1.03 по 3.03", "с первого марта по третье марта"),
    (
        "за 2024-2025 гг.",
        "за две тысячи двадцать четвёртый-две тысячи двадцать пятый годы.",
    ),
    (
        "в 2020–2022 годах",
        "в две тысячи двадцатом–две тысячи двадцать втором годах",
    ),
    ("в 2026 году", "в две тысячи двадцать шестом году"),
    ("в 2000 г.", "в двухтысячном году."),
    ("с 2020 года", "с две тысячи двадцатого года"),
    ("в 1990-е годы", "в тысяча девятьсот девяностые годы"),
    // phones
    (
        "+7 495 123-45-67",
        "плюс семь, четыреста девяносто пять, сто двадцать три, сорок пять, шестьдесят семь",
    ),
    (
        "8 (495) 123-45-67",
        "восемь, четыреста девяносто пять, сто двадцать три, сорок пять, шестьдесят семь",
    ),
    (
        "+74951234567",
        "плюс семь, четыреста девяносто пять, сто двадцать три, сорок пять, шестьдесят семь",
    ),
    (
        "8-800-555-35-35",
        "восемь, восемьсот, пятьсот пятьдесят пять, тридцать пять, тридцать пять",
    ),
    (
        "Звоните: +7 495 100-05-07.",
        "Звоните: плюс семь, четыреста девяносто пять, сто, ноль пять, ноль семь.",
    ),
    // money
    ("1 500 ₽", "тысяча пятьсот рублей"),
    (
        "Цена 1500 руб. за штуку",
        "Цена тысяча пятьсот рублей за штуку",
    ),
    ("1500 р. в месяц", "тысяча пятьсот рублей в месяц"),
    ("1 рубль", "один рубль"),
    ("2 рубля", "два рубля"),
    ("5 рублей", "пять рублей"),
    ("21 рубль", "двадцать один рубль"),
    ("11 рублей", "одиннадцать рублей"),
    ("100 руб. 50 коп.", "сто рублей пятьдесят копеек."),
    ("$5", "пять долларов"),
    ("$5.99", "пять долларов девяносто девять центов"),
    ("€10", "десять евро"),
    ("£3", "три фунта"),
    ("5 долларов", "пять долларов"),
    ("до $100", "до ста долларов"),
    ("на 2 000 ₽", "на две тысячи рублей"),
    ("1 000 000 рублей", "один миллион рублей"),
    ("на 1 000 рублей", "на тысячу рублей"),
    // percent
    ("15%", "пятнадцать процентов"),
    ("1%", "один процент"),
    ("2 %", "два процента"),
    ("на 3,5%", "на три целых пять десятых процента"),
    ("до 20%", "до двадцати процентов"),
    // ordinals
    ("1-й", "первый"),
    ("2-я", "вторая"),
    ("3-е место", "третье место"),
    ("5-го", "пятого"),
    ("в 10-м", "в десятом"),
    ("10-м", "десятым"),
    ("к 3-му", "к третьему"),
    ("на 2-й странице", "на второй странице"),
    ("в 1990-х", "в тысяча девятьсот девяностых"),
    ("для 2-х человек", "для двух человек"),
    ("с 5-ти лет", "с пяти лет"),
    // agreement with nouns and prepositions
    ("1 минута", "одна минута"),
    ("2 минуты", "две минуты"),
    ("21 неделя", "двадцать одна неделя"),
    ("2 тысячи", "две тысячи"),
    ("1 место", "одно место"),
    ("до 5 дней", "до пяти дней"),
    ("с 2 до 3", "с двух до трёх"),
    ("на 2 дня", "на два дня"),
    ("в 2 часа", "в два часа"),
    ("через 3 минуты", "через три минуты"),
    ("через 1 минуту", "через одну минуту"),
    ("около 10 минут", "около десяти минут"),
    ("от 100 рублей", "от ста рублей"),
    ("до 200 рублей", "до двухсот рублей"),
    ("по 5", "по пять"),
    ("по 1 штуке", "по одной штуке"),
    ("к 5 часам", "к пяти часам"),
    ("о 2 книгах", "о двух книгах"),
    ("между 4 и 5 часами", "между четырьмя и пятью часами"),
    ("о 2 и 3 комнатах", "о двух и трёх комнатах"),
    ("в 5 минутах ходьбы", "в пяти минутах ходьбы"),
    ("с 2 детьми", "с двумя детьми"),
    ("с 1 000 до 2 000 рублей", "с тысячи до двух тысяч рублей"),
    ("2-3 минуты", "две-три минуты"),
    ("до 2-3 дней", "до двух-трёх дней"),
    // units and abbreviations
    ("через 5 мин. начнём", "через пять минут начнём"),
    ("за 2 ч. доедем", "за два часа доедем"),
    ("10 км", "десять километров"),
    ("1 км", "один километр"),
    ("3 кг", "три килограмма"),
    ("60 км/ч", "шестьдесят километров в час"),
    ("ветер 5 м/с", "ветер пять метров в секунду"),
    (
        "750 мм рт. ст.",
        "семьсот пятьдесят миллиметров ртутного столба.",
    ),
    ("5 тыс. руб. в месяц", "пять тысяч рублей в месяц"),
    ("2 млн", "два миллиона"),
    ("5 млн", "пять миллионов"),
    ("1,5 млн руб. в год", "полтора миллиона рублей в год"),
    ("-5 °C", "минус пять градусов Цельсия"),
    ("+3°", "плюс три градуса"),
    (
        "ул. Ленина, д. 5, кв. 12",
        "улица Ленина, дом пять, квартира двенадцать",
    ),
    ("г. Москва", "город Москва"),
    ("пр-т Мира", "проспект Мира"),
    ("пр. Мира", "проспект Мира"),
    ("корп. 2, стр. 3", "корпус два, строение три"),
    ("т.е. завтра", "то есть завтра"),
    ("Т.е. завтра", "То есть завтра"),
    ("яблоки, груши и т.д.", "яблоки, груши и так далее."),
    (
        "книги, журналы и т. п. Потом",
        "книги, журналы и тому подобное. Потом",
    ),
    ("№ 5", "номер пять"),
    ("№5", "номер пять"),
    // mixed sentence
    (
        "Заказ № 5 на 2 000 ₽ доставим 7 декабря к 15:30.",
        "Заказ номер пять на две тысячи рублей доставим седьмого декабря к пятнадцати тридцати.",
    ),
];

const ENGLISH: &[(&str, &str)] = &[
    // cardinals, digit groups, decimals
    ("I have 3 cats.", "I have three cats."),
    ("1,500", "one thousand five hundred"),
    ("1\u{a0}500", "one thousand five hundred"),
    (
        "My number is 555 000 1111.",
        "My number is five five five, zero zero zero, one one one one.",
    ),
    ("500-1000 km", "five hundred to one thousand kilometers"),
    ("I have 150 200 300 apples", "I have one hundred fifty two hundred three hundred apples"),
    (
        "123,456,789",
        "one hundred twenty-three million four hundred fifty-six thousand seven hundred eighty-nine",
    ),
    (
        "999,999,999,999",
        "nine hundred ninety-nine billion nine hundred ninety-nine million \
         nine hundred ninety-nine thousand nine hundred ninety-nine",
    ),
    ("3.5", "three point five"),
    ("0.25", "zero point two five"),
    ("-5", "minus five"),
    ("5-7 days", "five to seven days"),
    ("007", "zero zero seven"),
    ("1.2.3.4", "one.two.three.four"),
    ("COVID19", "COVID nineteen"),
    // times
    ("9:00", "nine o'clock"),
    (
        "Meet at 9:30 a.m. tomorrow",
        "Meet at nine thirty a m tomorrow",
    ),
    (
        "Meet at 9:30 a.m. Then lunch.",
        "Meet at nine thirty a m. Then lunch.",
    ),
    ("9:30am", "nine thirty a m"),
    ("9:05", "nine oh five"),
    ("18:30", "eighteen thirty"),
    ("9:00-17:00", "nine o'clock to seventeen hundred"),
    ("from 9am to 5pm", "from nine a m to five p m"),
    ("at 5 pm", "at five p m"),
    // dates and years
    ("12/07/2026", "December seventh, twenty twenty-six"),
    ("25/12/2026", "December twenty-fifth, twenty twenty-six"),
    ("December 7, 2026", "December seventh, twenty twenty-six"),
    ("December 7th", "December seventh"),
    ("Dec. 25", "December twenty-fifth"),
    (
        "on 7 December 2026",
        "on the seventh of December, twenty twenty-six",
    ),
    ("2026-12-07", "December seventh, twenty twenty-six"),
    ("in 2026", "in twenty twenty-six"),
    ("in 1999", "in nineteen ninety-nine"),
    ("in 2005", "in two thousand five"),
    ("It is 2026.", "It is twenty twenty-six."),
    ("2026 people", "two thousand twenty-six people"),
    ("from 2020-2022", "from twenty twenty to twenty twenty-two"),
    ("the 1990s", "the nineteen nineties"),
    // phones
    (
        "+1 (555) 123-4567",
        "plus one, five five five, one two three, four five six seven",
    ),
    (
        "555-123-4567",
        "five five five, one two three, four five six seven",
    ),
    (
        "+15551234567",
        "plus one, five five five, one two three, four five six seven",
    ),
    // money
    ("$5", "five dollars"),
    ("$1", "one dollar"),
    ("$5.99", "five dollars ninety-nine cents"),
    ("$0.99", "ninety-nine cents"),
    ("$1,500", "one thousand five hundred dollars"),
    ("$2.5 million", "two point five million dollars"),
    ("€10", "ten euros"),
    ("£3", "three pounds"),
    ("1500 ₽", "one thousand five hundred rubles"),
    // percent
    ("15%", "fifteen percent"),
    ("3.5%", "three point five percent"),
    // ordinals
    ("1st", "first"),
    ("2nd", "second"),
    ("3rd", "third"),
    ("12th", "twelfth"),
    ("21st", "twenty-first"),
    ("100th", "one hundredth"),
    // units and abbreviations
    ("5 km", "five kilometers"),
    ("1 km", "one kilometer"),
    ("10 min", "ten minutes"),
    ("2 kg", "two kilograms"),
    ("60 km/h", "sixty kilometers per hour"),
    ("wind 1 m/s", "wind one meter per second"),
    ("-5°C", "minus five degrees Celsius"),
    ("Dr. Smith", "Doctor Smith"),
    ("Mr. Brown and Mrs. Brown", "Mister Brown and Missus Brown"),
    ("Ms. Lee", "Miz Lee"),
    ("Dr. Who vs. Mr. Smith", "Doctor Who versus Mister Smith"),
    ("e.g. apples", "for example apples"),
    ("i.e. now", "that is now"),
    ("cats, dogs, etc.", "cats, dogs, et cetera."),
    ("No. 5", "number five"),
    ("#3", "number three"),
    ("St. Louis", "Saint Louis"),
    ("I went to St. Petersburg", "I went to Saint Petersburg"),
    ("I live on Main St. today", "I live on Main Street today"),
    ("on Main St.", "on Main Street."),
];

#[test]
fn russian_table() {
    assert!(RUSSIAN.len() >= 40);
    check_table("ru", RUSSIAN);
}

#[test]
fn english_table() {
    assert!(ENGLISH.len() >= 40);
    check_table("en", ENGLISH);
}

#[test]
fn russian_cardinals_nominative_and_genitive() {
    let cases: &[(u64, &str, &str)] = &[
        (0, "ноль", "нуля"),
        (1, "один", "одного"),
        (2, "два", "двух"),
        (5, "пять", "пяти"),
        (11, "одиннадцать", "одиннадцати"),
        (21, "двадцать один", "двадцати одного"),
        (101, "сто один", "ста одного"),
        (1000, "тысяча", "тысячи"),
        (1001, "тысяча один", "тысячи одного"),
        (2000, "две тысячи", "двух тысяч"),
        (5000, "пять тысяч", "пяти тысяч"),
        (21_000, "двадцать одна тысяча", "двадцати одной тысячи"),
        (1_000_000, "один миллион", "одного миллиона"),
        (2_000_000, "два миллиона", "двух миллионов"),
        (5_000_000, "пять миллионов", "пяти миллионов"),
        (
            123_456_789,
            "сто двадцать три миллиона четыреста пятьдесят шесть тысяч семьсот восемьдесят девять",
            "ста двадцати трёх миллионов четырёхсот пятидесяти шести тысяч семисот восьмидесяти девяти",
        ),
    ];
    for &(n, nominative, genitive) in cases {
        assert_eq!(
            ru::number_words(n, Gender::Masc, Case::Nom),
            nominative,
            "{n}"
        );
        assert_eq!(
            ru::number_words(n, Gender::Masc, Case::Gen),
            genitive,
            "{n}"
        );
    }
}

#[test]
fn russian_cardinals_in_every_case_and_gender() {
    let cases: &[(u64, Gender, Case, &str)] = &[
        (1, Gender::Fem, Case::Nom, "одна"),
        (1, Gender::Fem, Case::Acc, "одну"),
        (1, Gender::Neut, Case::Nom, "одно"),
        (1, Gender::Masc, Case::Ins, "одним"),
        (2, Gender::Fem, Case::Nom, "две"),
        (2, Gender::Masc, Case::Ins, "двумя"),
        (3, Gender::Masc, Case::Pre, "трёх"),
        (4, Gender::Masc, Case::Dat, "четырём"),
        (5, Gender::Masc, Case::Dat, "пяти"),
        (5, Gender::Masc, Case::Ins, "пятью"),
        (8, Gender::Masc, Case::Gen, "восьми"),
        (8, Gender::Masc, Case::Ins, "восемью"),
        (15, Gender::Masc, Case::Ins, "пятнадцатью"),
        (40, Gender::Masc, Case::Gen, "сорока"),
        (50, Gender::Masc, Case::Ins, "пятьюдесятью"),
        (90, Gender::Masc, Case::Dat, "девяноста"),
        (100, Gender::Masc, Case::Gen, "ста"),
        (200, Gender::Masc, Case::Gen, "двухсот"),
        (200, Gender::Masc, Case::Dat, "двумстам"),
        (200, Gender::Masc, Case::Ins, "двумястами"),
        (200, Gender::Masc, Case::Pre, "двухстах"),
        (300, Gender::Masc, Case::Ins, "тремястами"),
        (1000, Gender::Masc, Case::Acc, "тысячу"),
        (1000, Gender::Masc, Case::Ins, "тысячей"),
        (2000, Gender::Masc, Case::Ins, "двумя тысячами"),
        (22_000, Gender::Masc, Case::Nom, "двадцать две тысячи"),
        (1_000_000, Gender::Masc, Case::Pre, "одном миллионе"),
        (
            999_999_999_999_999,
            Gender::Masc,
            Case::Nom,
            "девятьсот девяносто девять триллионов девятьсот девяносто девять миллиардов \
             девятьсот девяносто девять миллионов девятьсот девяносто девять тысяч \
             девятьсот девяносто девять",
        ),
    ];
    for &(n, gender, case, expected) in cases {
        assert_eq!(
            ru::number_words(n, gender, case),
            expected,
            "{n} {gender:?} {case:?}"
        );
    }
}

#[test]
fn russian_ordinals() {
    let masc = Form::Sg(Gender::Masc);
    let cases: &[(u64, Form, Case, &str)] = &[
        (0, masc, Case::Nom, "нулевой"),
        (1, masc, Case::Nom, "первый"),
        (2, masc, Case::Nom, "второй"),
        (3, Form::Sg(Gender::Fem), Case::Nom, "третья"),
        (3, masc, Case::Gen, "третьего"),
        (7, Form::Sg(Gender::Neut), Case::Nom, "седьмое"),
        (21, Form::Sg(Gender::Fem), Case::Acc, "двадцать первую"),
        (40, masc, Case::Nom, "сороковой"),
        (100, masc, Case::Nom, "сотый"),
        (1000, masc, Case::Nom, "тысячный"),
        (1100, masc, Case::Nom, "тысяча сотый"),
        (2000, masc, Case::Pre, "двухтысячном"),
        (2026, masc, Case::Gen, "две тысячи двадцать шестого"),
        (21_000, masc, Case::Nom, "двадцатиоднотысячный"),
        (100_000, masc, Case::Nom, "стотысячный"),
        (1_000_000, masc, Case::Nom, "миллионный"),
        (90, Form::Plural, Case::Gen, "девяностых"),
    ];
    for &(n, form, case, expected) in cases {
        assert_eq!(
            ru::ordinal_words(n, form, case),
            expected,
            "{n} {form:?} {case:?}"
        );
    }
}

#[test]
fn english_cardinals() {
    let cases: &[(u64, &str)] = &[
        (0, "zero"),
        (13, "thirteen"),
        (21, "twenty-one"),
        (40, "forty"),
        (100, "one hundred"),
        (101, "one hundred one"),
        (1000, "one thousand"),
        (1_000_000, "one million"),
        (
            123_456_789,
            "one hundred twenty-three million four hundred fifty-six thousand seven hundred eighty-nine",
        ),
    ];
    for &(n, expected) in cases {
        assert_eq!(en::number_words(n), expected);
    }
}

#[test]
fn english_ordinals_and_years() {
    let ordinals: &[(u64, &str)] = &[
        (1, "first"),
        (2, "second"),
        (3, "third"),
        (12, "twelfth"),
        (20, "twentieth"),
        (21, "twenty-first"),
        (100, "one hundredth"),
        (101, "one hundred first"),
    ];
    for &(n, expected) in ordinals {
        assert_eq!(en::ordinal_words(n), expected);
    }
    let years: &[(u64, &str)] = &[
        (2026, "twenty twenty-six"),
        (1999, "nineteen ninety-nine"),
        (2005, "two thousand five"),
        (2000, "two thousand"),
        (2010, "twenty ten"),
        (1900, "nineteen hundred"),
        (1905, "nineteen oh five"),
    ];
    for &(year, expected) in years {
        assert_eq!(en::year_words(year), expected);
    }
}

#[test]
fn cyrillic_text_is_read_in_russian_whatever_the_voice() {
    assert_eq!(language_of("Доставка стоит 300 рублей.", "en-us"), "ru");
    assert_eq!(language_of("It costs 300 rubles.", "ru"), "ru");
    assert_eq!(language_of("Це коштує 300 гривень.", "uk"), "uk");
    assert_eq!(
        language_of("It costs 300 rubles, сказал он.", "en-us"),
        "en-us"
    );
    assert_eq!(language_of("123", "en-us"), "en-us");
}

#[test]
fn language_codes() {
    for language in ["ru", "ru-RU", "ru_RU", "RU", "zle/ru", "ru_RU.UTF-8"] {
        assert_eq!(for_speech("5", language), "пять", "{language}");
    }
    for language in ["en", "en-us", "en_US", "en-gb-x-rp", "gmw/en-US"] {
        assert_eq!(for_speech("5", language), "five", "{language}");
    }
    for language in ["de", "", "xx-yy"] {
        assert_eq!(for_speech("5 €", language), "5 €", "{language}");
    }
}

#[test]
fn long_digit_runs_are_read_digit_by_digit() {
    let digits = "1234567890".repeat(4);
    let ru_digits = "один два три четыре пять шесть семь восемь девять ноль";
    let expected = [ru_digits; 4].join(" ");
    assert_eq!(for_speech(&digits, "ru"), expected);
    let en_digits = "one two three four five six seven eight nine zero";
    assert_eq!(for_speech(&digits, "en"), [en_digits; 4].join(" "));
}

const ODD_INPUTS: &[&str] = &[
    "",
    " ",
    "\n\n",
    "1234567890",
    "🙂 5 🙂",
    "👨‍👩‍👧 1️⃣ 2",
    "Привет hello 5 мир 12abc",
    "::",
    "+",
    "$",
    "%",
    "-",
    "−",
    "1:",
    ":1",
    "+7",
    "(",
    "((5))",
    "5-",
    "-5-",
    "$.",
    "$ ",
    "1,",
    ",5",
    "№",
    "#",
    "°",
    "2026-",
    "12/",
    "31.02.2026",
    "99:99",
    "24:60",
    "1-й-й",
    "0.0.0.0",
    "٣ １２ 𝟙",
    "5\u{301}",
    "1 000 000 000 000 000 000 000",
    "1,000,000,000,000,000,000",
    "+7 (",
    "8 (495",
    "1.5.",
    "т.",
    "e.",
    "St.",
    "No.",
    "9:30 a.",
    "12:00:00:00",
    "0:00",
    "00",
    "0,",
    "1e10",
    "9999999999999999999999",
    "18446744073709551616",
    "$18446744073709551616.99",
];

#[test]
fn odd_inputs_never_panic_or_leave_ascii_digits() {
    for language in ["ru", "en"] {
        for input in ODD_INPUTS {
            let spoken = for_speech(input, language);
            assert!(
                !spoken.bytes().any(|b| b.is_ascii_digit()),
                "{language} {input:?} → {spoken:?}"
            );
        }
    }
}

#[test]
fn large_inputs_run() {
    let ones = "1 ".repeat(50_000);
    let digits = "9".repeat(100_000);
    let mixed = "Встреча 07.12.2026 в 9:30, цена 1 500 ₽ (скидка 15%), тел. +7 495 123-45-67. \
                 Meet at 9:30 a.m., $5.99, 1st! 🙂 "
        .repeat(1_000);
    for language in ["ru", "en"] {
        for text in [&ones, &digits, &mixed] {
            let spoken = for_speech(text, language);
            assert!(!spoken.bytes().any(|b| b.is_ascii_digit()));
        }
    }
}

#[test]
fn numbers_read_aloud_are_the_numbers_the_scorer_reads_back() {
    // The voice's words and the WER scorer's number parser (crate::bench::wer) agree: every
    // case a preposition puts a Russian number in, and English.
    let numbers = (0..=130).chain((140..=1000).step_by(37)).chain([
        1001,
        2000,
        2024,
        5000,
        21_000,
        123_456,
        1_000_000,
        2_500_000,
        987_654_321,
    ]);
    let words = crate::bench::wer::normalised_words;
    for n in numbers {
        for prefix in ["", "до ", "к ", "между ", "о "] {
            let written = format!("{prefix}{n}");
            let spoken = for_speech(&written, "ru");
            assert_eq!(
                words(&spoken),
                words(&written),
                "{written:?} read {spoken:?}"
            );
        }
        let spoken = for_speech(&format!("{n} apples"), "en");
        assert_eq!(
            words(&spoken),
            words(&format!("{n} apples")),
            "{n} read {spoken:?}"
        );
    }
}
