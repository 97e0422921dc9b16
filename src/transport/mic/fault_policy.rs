//! Device errors reported while a conversation runs: which ones voxd rides out and which
//! end `voxd mic`. A sound server reports passing errors under load: after an underrun
//! the ALSA pulse plugin re-creates its stream, and until the new one is ready every poll
//! fails with an I/O error, then the stream plays on. So an error alone is not a failure;
//! a device that is gone, or one that reported an error and has not moved since, is.

use std::time::{Duration, Instant};

use cpal::ErrorKind;

use super::devices::Direction;

/// A device that reported an error and has not run its audio callback for this long has
/// stopped working.
const STALL: Duration = Duration::from_secs(3);

/// What to do about one reported error.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Routine (an underrun, no realtime priority), or the stall already reported.
    Ignore,
    /// Worth a warning; voxd waits for the device to go on.
    Warn,
    /// The device is gone: end with the error.
    Fatal,
}

/// An error after which the device has not moved yet.
struct Stall {
    since: Instant,
    progress: u64,
    error: cpal::Error,
}

/// The devices' outstanding errors.
#[derive(Default)]
pub struct FaultPolicy {
    stalls: [Option<Stall>; 2],
}

fn slot(direction: Direction) -> usize {
    match direction {
        Direction::Input => 0,
        Direction::Output => 1,
    }
}

impl FaultPolicy {
    /// Judges an error of the device in `direction`, whose audio callback has run
    /// `progress` times so far.
    pub fn error(
        &mut self,
        direction: Direction,
        error: cpal::Error,
        progress: u64,
        now: Instant,
    ) -> Verdict {
        match error.kind() {
            ErrorKind::Xrun | ErrorKind::RealtimeDenied => Verdict::Ignore,
            ErrorKind::DeviceNotAvailable => Verdict::Fatal,
            _ => {
                let stall = &mut self.stalls[slot(direction)];
                if stall.as_ref().is_some_and(|s| s.progress == progress) {
                    return Verdict::Ignore;
                }
                *stall = Some(Stall {
                    since: now,
                    progress,
                    error,
                });
                Verdict::Warn
            }
        }
    }

    /// The device that reported an error and has not moved for [`STALL`] since, with that
    /// error; `progress` is how often each device's callback has run (input, output).
    pub fn stalled(
        &mut self,
        progress: [u64; 2],
        now: Instant,
    ) -> Option<(Direction, &cpal::Error)> {
        for direction in [Direction::Input, Direction::Output] {
            let i = slot(direction);
            if self.stalls[i]
                .as_ref()
                .is_some_and(|s| s.progress != progress[i])
            {
                self.stalls[i] = None;
            }
        }
        [Direction::Input, Direction::Output]
            .into_iter()
            .find_map(|direction| {
                self.stalls[slot(direction)]
                    .as_ref()
                    .filter(|s| now.duration_since(s.since) >= STALL)
                    .map(|s| (direction, &s.error))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io_error() -> cpal::Error {
        cpal::Error::with_message(ErrorKind::Other, "snd_pcm_avail_delay: I/O error (5)")
    }

    #[test]
    fn underruns_are_routine_and_a_vanished_device_is_fatal() {
        let mut p = FaultPolicy::default();
        let now = Instant::now();
        let xrun = || cpal::Error::from(ErrorKind::Xrun);
        for _ in 0..20 {
            assert_eq!(p.error(Direction::Output, xrun(), 0, now), Verdict::Ignore);
        }
        let gone = cpal::Error::from(ErrorKind::DeviceNotAvailable);
        assert_eq!(p.error(Direction::Input, gone, 5, now), Verdict::Fatal);
        assert!(p.stalled([5, 0], now + STALL * 2).is_none());
    }

    #[test]
    fn a_burst_of_errors_is_ridden_out_while_the_device_moves_on() {
        let mut p = FaultPolicy::default();
        let start = Instant::now();
        assert_eq!(
            p.error(Direction::Output, io_error(), 7, start),
            Verdict::Warn
        );
        for _ in 0..100 {
            assert_eq!(
                p.error(Direction::Output, io_error(), 7, start),
                Verdict::Ignore
            );
        }
        assert!(p.stalled([0, 7], start + STALL / 2).is_none());
        // The speaker plays again: the stall is over, and a later error is news.
        assert!(p.stalled([0, 8], start + STALL * 2).is_none());
        let later = start + STALL * 3;
        assert_eq!(
            p.error(Direction::Output, io_error(), 9, later),
            Verdict::Warn
        );
    }

    #[test]
    fn a_device_that_stays_silent_after_an_error_has_failed() {
        let mut p = FaultPolicy::default();
        let start = Instant::now();
        assert_eq!(
            p.error(Direction::Input, io_error(), 3, start),
            Verdict::Warn
        );
        assert!(p.stalled([3, 50], start + STALL / 2).is_none());
        let (direction, error) = p.stalled([3, 90], start + STALL).unwrap();
        assert_eq!(direction, Direction::Input);
        assert!(error.to_string().contains("I/O error"), "{error}");
    }
}
