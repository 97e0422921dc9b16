//! Warnings about clients' mistakes (4xx answers), rationed: at most [`PER_WINDOW`] per
//! [`WINDOW`], the rest counted and summed up in one line when the window ends, so that a
//! flood of bad requests cannot push the server's real errors out of the journal.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Client-error warnings logged per window.
pub const PER_WINDOW: u32 = 20;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(10);

/// What to do with one warning.
#[derive(Debug, PartialEq, Eq)]
pub enum Ration {
    /// Log it; first say how many the last window left out (0: none).
    Log { left_out: u32 },
    /// Leave it out (it is counted).
    LeaveOut,
}

/// The warnings of the current window.
#[derive(Debug)]
pub struct Budget {
    since: Instant,
    logged: u32,
    left_out: u32,
}

impl Budget {
    pub fn new(now: Instant) -> Self {
        Self {
            since: now,
            logged: 0,
            left_out: 0,
        }
    }

    /// Whether a warning at `now` is logged.
    pub fn ration(&mut self, now: Instant) -> Ration {
        let mut earlier = 0;
        if now.saturating_duration_since(self.since) >= WINDOW {
            earlier = std::mem::take(&mut self.left_out);
            (self.since, self.logged) = (now, 0);
        }
        if self.logged < PER_WINDOW {
            self.logged += 1;
            Ration::Log { left_out: earlier }
        } else {
            self.left_out += 1;
            Ration::LeaveOut
        }
    }
}

/// Logs a warning about a client's mistake, within the shared budget.
pub fn warn(code: &str, message: &str) {
    static BUDGET: Mutex<Option<Budget>> = Mutex::new(None);
    let now = Instant::now();
    let ration = {
        let mut budget = BUDGET.lock().unwrap_or_else(|p| p.into_inner());
        budget.get_or_insert_with(|| Budget::new(now)).ration(now)
    };
    if let Ration::Log { left_out } = ration {
        if left_out > 0 {
            tracing::warn!(
                left_out,
                "{left_out} more client errors were not logged in the last {} s",
                WINDOW.as_secs()
            );
        }
        // A message may quote what a client sent: its first 300 characters.
        let message: String = message.chars().take(300).collect();
        tracing::warn!(code, "{message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_logged_in_part_and_summed_up_in_the_next_window() {
        let t0 = Instant::now();
        let mut b = Budget::new(t0);
        let rations: Vec<Ration> = (0..100).map(|_| b.ration(t0)).collect();
        let logged = rations.iter().filter(|r| **r != Ration::LeaveOut).count();
        assert_eq!(logged, PER_WINDOW as usize);
        // The next window begins with the count of what was left out.
        assert_eq!(
            b.ration(t0 + WINDOW),
            Ration::Log {
                left_out: 100 - PER_WINDOW
            }
        );
        assert_eq!(b.ration(t0 + WINDOW), Ration::Log { left_out: 0 });
    }
}
