//! Turn detection on the caller's audio with webrtc-vad: when speech starts (after a
//! minimum voiced duration, so clicks are ignored) and when a turn ends (after silence).

use webrtc_vad::{SampleRate, Vad, VadMode};

/// Milliseconds per VAD frame.
const FRAME_MS: usize = 20;
/// Unvoiced frames that end a voiced run (short gaps inside words do not).
const GAP_FRAMES: usize = 3;
/// Audio kept from before the detected start, so the first syllable is not lost.
const PRE_ROLL_MS: usize = 300;

/// The fvad handle is only ever used by the one call that owns it.
struct OwnedVad(Vad);
// SAFETY: `Vad` wraps a heap-allocated libfvad instance with no thread affinity; `OwnedVad`
// is never shared (no `Sync`), only moved with the call's task between worker threads.
unsafe impl Send for OwnedVad {}

/// What the detector noticed in the audio just pushed.
#[derive(Debug, PartialEq)]
pub enum TurnEvent {
    /// The caller has been speaking for the minimum duration.
    SpeechStarted,
    /// The caller stopped: the utterance (with pre-roll) at the detector's rate.
    TurnEnded(Vec<i16>),
}

/// Settings of the detector.
#[derive(Debug, Clone, Copy)]
pub struct TurnSettings {
    pub vad_mode: u8,
    /// Voiced time before speech counts as started.
    pub min_speech_ms: usize,
    /// Silence that ends a turn.
    pub end_silence_ms: usize,
    /// A turn longer than this ends anyway.
    pub max_turn_ms: usize,
}

/// Per-call turn detector.
pub struct TurnDetector {
    vad: OwnedVad,
    rate: usize,
    settings: TurnSettings,
    pending: Vec<i16>,
    pre_roll: std::collections::VecDeque<i16>,
    utterance: Vec<i16>,
    in_speech: bool,
    voiced_run: usize,
    gap_run: usize,
    silent_frames: usize,
}

impl TurnDetector {
    /// `rate` must be 8000 or 16000.
    pub fn new(rate: u32, settings: TurnSettings) -> Self {
        let sr = if rate == 16_000 {
            SampleRate::Rate16kHz
        } else {
            SampleRate::Rate8kHz
        };
        let mode = match settings.vad_mode {
            0 => VadMode::Quality,
            1 => VadMode::LowBitrate,
            2 => VadMode::Aggressive,
            _ => VadMode::VeryAggressive,
        };
        Self {
            vad: OwnedVad(Vad::new_with_rate_and_mode(sr, mode)),
            rate: rate as usize,
            settings,
            pending: Vec::new(),
            pre_roll: Default::default(),
            utterance: Vec::new(),
            in_speech: false,
            voiced_run: 0,
            gap_run: 0,
            silent_frames: 0,
        }
    }

    /// Changes the voiced time needed to count as speech (longer while voxd is talking,
    /// so that only a real interruption cuts it).
    pub fn set_min_speech_ms(&mut self, ms: usize) {
        self.settings.min_speech_ms = ms;
    }

    /// Whether the caller is in the middle of an utterance.
    #[cfg(test)]
    fn in_speech(&self) -> bool {
        self.in_speech
    }

    /// Feeds audio; returns what happened in it.
    pub fn push(&mut self, samples: &[i16]) -> Vec<TurnEvent> {
        let frame = self.rate * FRAME_MS / 1000;
        self.pending.extend_from_slice(samples);
        let mut events = Vec::new();
        let mut offset = 0;
        while self.pending.len() - offset >= frame {
            let chunk = self.pending[offset..offset + frame].to_vec();
            offset += frame;
            if let Some(ev) = self.frame(&chunk) {
                events.push(ev);
            }
        }
        self.pending.drain(..offset);
        events
    }

    fn frame(&mut self, frame: &[i16]) -> Option<TurnEvent> {
        let voiced = self.vad.0.is_voice_segment(frame).unwrap_or(false);
        if voiced {
            self.voiced_run += 1;
            self.gap_run = 0;
        } else {
            self.gap_run += 1;
            if self.gap_run >= GAP_FRAMES {
                self.voiced_run = 0;
            }
        }
        if !self.in_speech {
            self.pre_roll.extend(frame);
            let keep = self.rate * (PRE_ROLL_MS + self.settings.min_speech_ms) / 1000;
            while self.pre_roll.len() > keep {
                self.pre_roll.pop_front();
            }
            if self.voiced_run * FRAME_MS >= self.settings.min_speech_ms.max(FRAME_MS) {
                self.in_speech = true;
                self.silent_frames = 0;
                self.utterance = self.pre_roll.drain(..).collect();
                return Some(TurnEvent::SpeechStarted);
            }
            return None;
        }
        self.utterance.extend_from_slice(frame);
        self.silent_frames = if voiced { 0 } else { self.silent_frames + 1 };
        let too_long = self.utterance.len() * 1000 / self.rate >= self.settings.max_turn_ms;
        if self.silent_frames * FRAME_MS >= self.settings.end_silence_ms || too_long {
            self.in_speech = false;
            self.voiced_run = 0;
            return Some(TurnEvent::TurnEnded(std::mem::take(&mut self.utterance)));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> TurnSettings {
        TurnSettings {
            vad_mode: 3,
            min_speech_ms: 200,
            end_silence_ms: 500,
            max_turn_ms: 10_000,
        }
    }

    /// A vowel-like buzz: harmonics of 140 Hz, which the VAD takes for voice.
    fn buzz(ms: usize, rate: usize) -> Vec<i16> {
        (0..rate * ms / 1000)
            .map(|i| {
                let t = i as f32 / rate as f32;
                let s: f32 = (1..12)
                    .map(|h| (t * 140.0 * h as f32 * std::f32::consts::TAU).sin() / h as f32)
                    .sum();
                (s * 6000.0) as i16
            })
            .collect()
    }

    #[test]
    fn detects_a_turn_and_ignores_a_click() {
        let mut d = TurnDetector::new(16_000, settings());
        assert!(d.push(&vec![0; 16_000]).is_empty());
        assert!(
            d.push(&buzz(60, 16_000)).is_empty(),
            "a 60 ms click must not start speech"
        );
        assert!(d.push(&vec![0; 8000]).is_empty());
        let ev = d.push(&buzz(800, 16_000));
        assert_eq!(ev, vec![TurnEvent::SpeechStarted]);
        assert!(d.in_speech());
        let ev = d.push(&vec![0; 16_000]);
        let [TurnEvent::TurnEnded(utt)] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        // 800 ms of speech + the pre-roll + the 500 ms of silence that ended it.
        let ms = utt.len() * 1000 / 16_000;
        assert!((1300..=1900).contains(&ms), "{ms} ms");
        assert!(!d.in_speech());
    }

    #[test]
    fn long_turns_are_cut_and_thresholds_change() {
        let mut d = TurnDetector::new(
            8000,
            TurnSettings {
                max_turn_ms: 1000,
                ..settings()
            },
        );
        let ev = d.push(&buzz(1500, 8000));
        assert_eq!(ev[0], TurnEvent::SpeechStarted);
        assert!(
            matches!(&ev[1], TurnEvent::TurnEnded(u) if u.len() == 8000),
            "{ev:?}"
        );
        d.push(&vec![0; 8000]);
        assert!(!d.in_speech());
        d.set_min_speech_ms(1000);
        assert!(
            d.push(&buzz(600, 8000)).is_empty(),
            "600 ms is below the raised threshold"
        );
        let ev = d.push(&buzz(600, 8000));
        assert_eq!(
            ev.first(),
            Some(&TurnEvent::SpeechStarted),
            "{} events",
            ev.len()
        );
    }
}
