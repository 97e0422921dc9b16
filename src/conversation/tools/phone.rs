//! Phone numbers as callers say them: separators dropped, 7 to 15 digits, a leading `+`
//! kept, and a national number completed to E.164 for the configured country
//! (`tools.phone_country`; the operator's number is checked as E.164 by
//! [`crate::outbound::check_phone`]).

use crate::config::PhoneCountry;

/// `+7 (999) 123-45-67` → `+79991234567`, and for Russia `8 999 123-45-67` → the same;
/// None when it is not a plausible number.
pub fn normalize(raw: &str, country: PhoneCountry) -> Option<String> {
    let raw = raw.trim();
    let (plus, rest) = match raw.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", raw),
    };
    let mut digits = String::new();
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '(' | ')' | '.' => {}
            _ => return None,
        }
    }
    if !(7..=15).contains(&digits.len()) {
        return None;
    }
    if plus.is_empty() {
        if let Some(e164) = national(&digits, country) {
            return Some(e164);
        }
    }
    Some(format!("{plus}{digits}"))
}

/// A national number of `country` in E.164, if `digits` is one.
fn national(digits: &str, country: PhoneCountry) -> Option<String> {
    let (n, first) = (digits.len(), digits.as_bytes()[0]);
    match country {
        // 8 (trunk prefix) or 7 (country code) + 10 digits; or the 10 digits alone.
        PhoneCountry::Ru if n == 11 && matches!(first, b'7' | b'8') => {
            Some(format!("+7{}", &digits[1..]))
        }
        PhoneCountry::Ru if n == 10 && first != b'0' => Some(format!("+7{digits}")),
        PhoneCountry::Us if n == 11 && first == b'1' => Some(format!("+{digits}")),
        PhoneCountry::Us if n == 10 && !matches!(first, b'0' | b'1') => Some(format!("+1{digits}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_normalized_or_refused() {
        let none = PhoneCountry::None;
        assert_eq!(
            normalize(" +7 (999) 123-45-67 ", none).as_deref(),
            Some("+79991234567")
        );
        assert_eq!(
            normalize("8.999.123.45.67", none).as_deref(),
            Some("89991234567")
        );
        assert_eq!(normalize("123456", none), None);
        assert_eq!(normalize("+1234567890123456", none), None);
        assert_eq!(normalize("call me", none), None);
        assert_eq!(normalize("++79991234567", none), None);
    }

    #[test]
    fn national_numbers_become_e164() {
        let ru = PhoneCountry::Ru;
        for said in [
            "8 999 123-45-67",
            "7 999 123 45 67",
            "(999) 123-45-67",
            "+79991234567",
        ] {
            assert_eq!(
                normalize(said, ru).as_deref(),
                Some("+79991234567"),
                "{said}"
            );
        }
        assert_eq!(
            normalize("8 (495) 123-45-67", ru).as_deref(),
            Some("+74951234567")
        );
        // Short or foreign numbers are kept as said.
        assert_eq!(normalize("123-45-67", ru).as_deref(), Some("1234567"));
        assert_eq!(
            normalize("+1 555 123 4567", ru).as_deref(),
            Some("+15551234567")
        );
        let us = PhoneCountry::Us;
        for said in ["(555) 123-4567", "1 555 123 4567"] {
            assert_eq!(
                normalize(said, us).as_deref(),
                Some("+15551234567"),
                "{said}"
            );
        }
        assert_eq!(
            normalize("8 999 123-45-67", us).as_deref(),
            Some("89991234567")
        );
    }
}
