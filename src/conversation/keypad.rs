//! Keys the caller presses (DTMF): which keys there are, a key mapped to an action taken at
//! once (`dtmf.actions`), and a run of keys gathered into one entry the model reads ("1 2 3")
//! once the caller stops pressing for `dtmf.gap_ms` or presses `#`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub use crate::config::KeyAction;

/// Most keys gathered into one entry; one more makes it due at once.
const MAX_KEYS: usize = 32;

/// The key `text` names: one of 0-9, *, #, A-D (a-d read as A-D).
pub fn key(text: &str) -> Option<char> {
    let mut chars = text.chars();
    let c = chars.next()?.to_ascii_uppercase();
    (chars.next().is_none() && matches!(c, '0'..='9' | '*' | '#' | 'A'..='D')).then_some(c)
}

/// How keys are read: the pause that ends a run, and the keys that act at once.
#[derive(Debug, Clone, Default)]
pub struct KeypadSettings {
    pub gap: Duration,
    pub actions: BTreeMap<char, KeyAction>,
}

/// What a key press does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pressed {
    /// A mapped key, the first of a run: its action, now.
    Act(KeyAction),
    /// Gathered; the run is read once it is over ([`Keypad::due`]).
    Gathered,
}

/// The keys of one call.
#[derive(Debug, Default)]
pub struct Keypad {
    settings: KeypadSettings,
    pending: Vec<char>,
    /// When the run is over (the last key plus the gap; at once after `#`).
    due_at: Option<Instant>,
}

impl Keypad {
    pub fn new(settings: KeypadSettings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    pub fn press(&mut self, key: char, now: Instant) -> Pressed {
        if self.pending.is_empty() {
            if let Some(action) = self.settings.actions.get(&key) {
                return Pressed::Act(*action);
            }
        }
        self.pending.push(key);
        let over = key == '#' || self.pending.len() >= MAX_KEYS;
        self.due_at = Some(if over { now } else { now + self.settings.gap });
        Pressed::Gathered
    }

    /// When the run of keys is over, if keys are gathered.
    pub fn due_at(&self) -> Option<Instant> {
        self.due_at
    }

    /// The run of keys, space-separated, once it is over.
    pub fn due(&mut self, now: Instant) -> Option<String> {
        if self.due_at? > now {
            return None;
        }
        self.due_at = None;
        let keys: Vec<String> = self.pending.drain(..).map(String::from).collect();
        Some(keys.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_single_dtmf_symbols() {
        assert_eq!(key("5"), Some('5'));
        assert_eq!(key("#"), Some('#'));
        assert_eq!(key("d"), Some('D'));
        for bad in ["", "12", "E", " ", "५"] {
            assert_eq!(key(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_run_is_read_after_the_gap_or_at_hash_and_a_mapped_first_key_acts() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut pad = Keypad::new(KeypadSettings {
            gap: Duration::from_millis(1500),
            actions: BTreeMap::from([('0', KeyAction::Operator)]),
        });
        assert_eq!(pad.press('0', t0), Pressed::Act(KeyAction::Operator));
        assert_eq!(pad.due(ms(5000)), None, "an action leaves nothing to read");
        assert_eq!(pad.press('1', ms(0)), Pressed::Gathered);
        // A mapped key inside a run is just a key.
        assert_eq!(pad.press('0', ms(1000)), Pressed::Gathered);
        assert_eq!(pad.due(ms(2400)), None);
        assert_eq!(pad.due(ms(2500)).as_deref(), Some("1 0"));
        assert_eq!(pad.due(ms(9000)), None);
        pad.press('4', ms(10_000));
        pad.press('#', ms(10_100));
        assert_eq!(pad.due(ms(10_100)).as_deref(), Some("4 #"));
        for i in 0..MAX_KEYS {
            pad.press('7', ms(20_000 + i as u64));
        }
        assert_eq!(pad.due(ms(20_040)).map(|k| k.len()), Some(MAX_KEYS * 2 - 1));
    }
}
