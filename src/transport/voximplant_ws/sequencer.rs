//! Caller audio in chunk order: Voximplant numbers media frames (`chunk`), may deliver
//! them out of order and may lose some. Late or repeated frames are dropped (their moment
//! has passed), and a gap is filled with silence, so turn timing stays true.

/// Lost frames filled with silence at most (1 s of 20 ms frames); a bigger jump is taken
/// as a new numbering.
const MAX_GAP_FRAMES: u64 = 50;

/// Tracks the next expected chunk number.
#[derive(Debug, Default)]
pub struct Sequencer {
    next: Option<u64>,
}

impl Sequencer {
    /// What to feed onward for a frame numbered `chunk` (None: unnumbered, take it as is):
    /// the silence to insert first (in frames), or None to drop the frame.
    pub fn admit(&mut self, chunk: Option<u64>) -> Option<u64> {
        let Some(chunk) = chunk else { return Some(0) };
        match self.next {
            Some(next) if chunk < next => None,
            Some(next) if chunk - next <= MAX_GAP_FRAMES => {
                self.next = Some(chunk.saturating_add(1));
                Some(chunk - next)
            }
            _ => {
                self.next = Some(chunk.saturating_add(1));
                Some(0)
            }
        }
    }

    /// Forgets the numbering (a new stream starts).
    pub fn reset(&mut self) {
        self.next = None;
    }
}

#[cfg(test)]
mod tests {
    use super::Sequencer;

    #[test]
    fn drops_late_frames_and_fills_gaps() {
        let mut s = Sequencer::default();
        assert_eq!(s.admit(Some(1)), Some(0));
        assert_eq!(s.admit(Some(2)), Some(0));
        assert_eq!(s.admit(Some(5)), Some(2), "3 and 4 were lost");
        assert_eq!(s.admit(Some(4)), None, "4 came too late");
        assert_eq!(s.admit(Some(5)), None, "a repeat");
        assert_eq!(s.admit(None), Some(0));
        assert_eq!(s.admit(Some(1000)), Some(0), "a jump is a new numbering");
        assert_eq!(s.admit(Some(1001)), Some(0));
        s.reset();
        assert_eq!(s.admit(Some(1)), Some(0));
    }

    #[test]
    fn any_numbering_is_taken_in_and_gaps_stay_bounded() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut s = Sequencer::default();
        for _ in 0..100_000 {
            let chunk = match rng.gen_range(0..4) {
                0 => None,
                1 => Some(rng.gen()),
                2 => Some(u64::MAX - rng.gen_range(0..3)),
                _ => Some(rng.gen_range(0..200)),
            };
            if let Some(gap) = s.admit(chunk) {
                assert!(gap <= super::MAX_GAP_FRAMES, "{chunk:?} → {gap}");
            }
            if rng.gen_range(0..1000) == 0 {
                s.reset();
            }
        }
    }
}
