//! Phone numbers as callers say them: separators dropped, 7 to 15 digits, a leading `+`
//! kept (the operator's number is checked as E.164 by [`crate::outbound::check_phone`]).

/// `+7 (999) 123-45-67` → `+79991234567`; None when it is not a plausible number.
pub fn normalize(raw: &str) -> Option<String> {
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
    (7..=15)
        .contains(&digits.len())
        .then(|| format!("{plus}{digits}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_normalized_or_refused() {
        assert_eq!(
            normalize(" +7 (999) 123-45-67 ").as_deref(),
            Some("+79991234567")
        );
        assert_eq!(normalize("8.999.123.45.67").as_deref(), Some("89991234567"));
        assert_eq!(normalize("123456"), None);
        assert_eq!(normalize("+1234567890123456"), None);
        assert_eq!(normalize("call me"), None);
        assert_eq!(normalize("++79991234567"), None);
    }
}
