//! The call id: what a scenario names its call by (or voxd makes up), checked by one rule
//! wherever a call id enters voxd.

use std::fmt;

/// A valid call id: 1 to 128 printable characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallId(String);

/// Why a string is not a call id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("call_id must be 1 to 128 printable characters")]
pub struct InvalidCallId;

impl CallId {
    /// Checks `id` against the rule.
    pub fn parse(id: &str) -> Result<Self, InvalidCallId> {
        if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
            return Err(InvalidCallId);
        }
        Ok(Self(id.to_string()))
    }

    /// A fresh id for a call whose scenario named none: `prefix` and 32 random hex digits.
    pub fn random(prefix: &str) -> Self {
        Self(format!("{prefix}{:032x}", rand::random::<u128>()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule() {
        assert_eq!(CallId::parse("abc-1").unwrap().as_str(), "abc-1");
        assert_eq!(CallId::parse("звонок 1").unwrap().to_string(), "звонок 1");
        assert!(CallId::parse(&"x".repeat(128)).is_ok());
        for bad in ["", "a\nb", "tab\there", &"x".repeat(129)] {
            assert_eq!(CallId::parse(bad), Err(InvalidCallId), "{bad:?}");
        }
        assert_ne!(CallId::random("ws-"), CallId::random("ws-"));
        assert!(CallId::random("ws-").as_str().starts_with("ws-"));
    }
}
