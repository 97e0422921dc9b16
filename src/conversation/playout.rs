//! voxd's outgoing speech: 20 ms frames paced to run at most `lead` ahead of real time,
//! the playout position (what the caller has actually heard) for barge-in, the rest of a
//! reply from the piece it was cut in (to resume it), and the gaps: silence inside a reply
//! while its next piece was not ready.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One reply being spoken: its audio queue and the text of each piece.
#[derive(Debug)]
pub struct Playout {
    rate: u32,
    lead: Duration,
    queue: VecDeque<i16>,
    /// When the first frame of this reply was sent.
    started: Option<Instant>,
    sent: u64,
    /// (sample offset where a piece ends, its text, its audio), in order.
    pieces: Vec<(u64, String, Vec<i16>)>,
    queued: u64,
    /// What the caller heard of this reply before it was cut and resumed.
    heard_before: String,
}

impl Playout {
    pub fn new(rate: u32, lead: Duration) -> Self {
        Self {
            rate,
            lead,
            queue: VecDeque::new(),
            started: None,
            sent: 0,
            pieces: Vec::new(),
            queued: 0,
            heard_before: String::new(),
        }
    }

    /// The same reply again from the piece the caller was hearing at `at` (when it was
    /// cut), that piece whole: what they heard of the pieces before it counts as heard.
    pub fn resumed(&self, at: Instant, now: Instant) -> Playout {
        let played = self.played(at);
        let mut out = Playout::new(self.rate, self.lead);
        let mut before = vec![self.heard_before.clone()];
        for (end, text, samples) in &self.pieces {
            if played >= *end {
                before.push(text.clone());
            } else {
                out.push(samples, text, now);
            }
        }
        before.retain(|t| !t.is_empty());
        out.heard_before = before.join(" ");
        out
    }

    /// Samples in one 20 ms frame.
    fn frame_len(&self) -> usize {
        self.rate as usize / 50
    }

    /// Queues a piece of speech with the text it says, arriving at `now`. Returns the gap
    /// the caller heard before it, when the speech before it had already played out; the
    /// clock of the reply moves on by the gap.
    pub fn push(&mut self, samples: &[i16], text: &str, now: Instant) -> Option<Duration> {
        let gap = self
            .started
            .filter(|_| self.queue.is_empty())
            .map(|s| s + self.duration(self.sent))
            .filter(|end| now > *end)
            .map(|end| now - end);
        if let (Some(gap), Some(started)) = (gap, self.started.as_mut()) {
            *started += gap;
        }
        self.queue.extend(samples);
        self.queued += samples.len() as u64;
        self.pieces
            .push((self.queued, text.to_string(), samples.to_vec()));
        gap
    }

    fn duration(&self, samples: u64) -> Duration {
        Duration::from_secs_f64(samples as f64 / f64::from(self.rate))
    }

    /// The next frame to send now, if the pacing allows one (the last may be short).
    pub fn next_frame(&mut self, now: Instant) -> Option<Vec<i16>> {
        if self.queue.is_empty() {
            return None;
        }
        let elapsed = self
            .started
            .map_or(Duration::ZERO, |s| now.duration_since(s));
        let ahead = self.duration(self.sent).saturating_sub(elapsed);
        if ahead >= self.lead {
            return None;
        }
        self.started.get_or_insert(now);
        let n = self.frame_len().min(self.queue.len());
        self.sent += n as u64;
        Some(self.queue.drain(..n).collect())
    }

    /// When the next frame may go out, or (all sent) when the last stops playing; None
    /// once it has.
    pub fn next_change(&self, now: Instant) -> Option<Instant> {
        let Some(started) = self.started else {
            return (!self.queue.is_empty()).then_some(now);
        };
        let sent_end = started + self.duration(self.sent);
        if !self.queue.is_empty() {
            // A frame may go once less than `lead` is queued ahead of real time.
            let at = sent_end.checked_sub(self.lead).unwrap_or(now) + Duration::from_millis(1);
            Some(at.max(now))
        } else if self.busy(now) {
            Some(sent_end + Duration::from_millis(1))
        } else {
            None
        }
    }

    /// Samples the caller has heard by `now` (sent, and due by the clock).
    pub fn played(&self, now: Instant) -> u64 {
        let elapsed = self
            .started
            .map_or(0.0, |s| now.duration_since(s).as_secs_f64());
        ((elapsed * f64::from(self.rate)) as u64).min(self.sent)
    }

    /// True while there is audio queued or still playing at the caller.
    pub fn busy(&self, now: Instant) -> bool {
        !self.queue.is_empty() || self.played(now) < self.sent
    }

    /// True once everything queued has been sent.
    #[cfg(test)]
    fn all_sent(&self) -> bool {
        self.queue.is_empty()
    }

    /// The text the caller has heard by `now`: whole pieces, and the part of the current
    /// one in proportion to its audio, cut at a word.
    pub fn heard_text(&self, now: Instant) -> String {
        let played = self.played(now);
        let mut out = vec![self.heard_before.clone()];
        out.retain(|t| !t.is_empty());
        let mut start = 0;
        for (end, text, _) in &self.pieces {
            if played >= *end {
                out.push(text.clone());
            } else {
                let frac = (played.saturating_sub(start)) as f64 / (end - start).max(1) as f64;
                let words: Vec<&str> = text.split_whitespace().collect();
                let n = (words.len() as f64 * frac).floor() as usize;
                if n > 0 {
                    out.push(format!("{}…", words[..n].join(" ")));
                }
                break;
            }
            start = *end;
        }
        out.join(" ")
    }

    /// Drops everything not yet sent (barge-in).
    pub fn clear(&mut self) {
        self.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paces_to_the_lead_and_tracks_what_was_heard() {
        let mut p = Playout::new(8000, Duration::from_millis(100));
        let t0 = Instant::now();
        assert_eq!(p.push(&[1; 8000], "one two three four", t0), None);
        assert_eq!(p.push(&[2; 8000], "five six", t0), None);
        let mut frames = 0;
        while p.next_frame(t0).is_some() {
            frames += 1;
        }
        assert_eq!(frames, 5, "100 ms of lead is five 20 ms frames");
        let t1 = t0 + Duration::from_millis(500);
        while p.next_frame(t1).is_some() {
            frames += 1;
        }
        assert_eq!(frames, 30, "600 ms sent by 500 ms with a 100 ms lead");
        assert_eq!(p.played(t1), 4000);
        assert_eq!(p.heard_text(t1), "one two…");
        let t2 = t0 + Duration::from_millis(1250);
        while p.next_frame(t2).is_some() {}
        assert_eq!(
            p.heard_text(t2),
            "one two three four",
            "a quarter of \"five six\" is no whole word"
        );
        p.clear();
        assert!(p.all_sent());
        assert!(p.busy(t2), "sent audio is still playing");
        assert!(!p.busy(t0 + Duration::from_secs(10)));
    }

    #[test]
    fn a_cut_reply_resumes_from_the_piece_it_was_cut_in() {
        let mut p = Playout::new(8000, Duration::from_millis(100));
        let t0 = Instant::now();
        p.push(&[1; 4000], "one", t0);
        p.push(&[2; 8000], "two three", t0);
        p.push(&[3; 4000], "four", t0);
        let cut = t0 + Duration::from_millis(700);
        while p.next_frame(t0).is_some() {}
        while p.next_frame(cut).is_some() {}
        p.clear();
        let later = cut + Duration::from_secs(1);
        let mut r = p.resumed(cut, later);
        assert_eq!(r.heard_text(later), "one", "heard before the cut piece");
        let mut samples = Vec::new();
        let end = later + Duration::from_secs(5);
        for ms in (0..5000).step_by(20) {
            while let Some(frame) = r.next_frame(later + Duration::from_millis(ms)) {
                samples.extend(frame);
            }
        }
        assert_eq!(samples.len(), 12_000, "\"two three\" whole, then \"four\"");
        assert_eq!(samples[0], 2);
        assert_eq!(r.heard_text(end), "one two three four");
    }

    #[test]
    fn a_piece_that_comes_after_the_speech_ran_out_is_a_gap() {
        let mut p = Playout::new(8000, Duration::from_millis(100));
        let t0 = Instant::now();
        p.push(&[1; 4000], "one", t0);
        while p.next_frame(t0).is_some() {}
        while p.next_frame(t0 + Duration::from_millis(450)).is_some() {}
        // Queued before the first piece has played: no gap.
        let on_time = t0 + Duration::from_millis(450);
        assert_eq!(p.push(&[2; 4000], "two", on_time), None);
        while p.next_frame(t0 + Duration::from_millis(1000)).is_some() {}
        // The third piece comes 300 ms after the second played out at 1 s.
        let late = t0 + Duration::from_millis(1300);
        let gap = p.push(&[3; 4000], "three", late).unwrap();
        assert!(gap.abs_diff(Duration::from_millis(300)) < Duration::from_millis(1));
        // The reply's clock moved on by the gap: the new piece is paced from now.
        assert_eq!(p.played(late), 8000);
        let mut burst = 0;
        while p.next_frame(late).is_some() {
            burst += 1;
        }
        assert_eq!(
            burst, 5,
            "paced by the lead, not sent in a burst to catch up"
        );
    }
}
