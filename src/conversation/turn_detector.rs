//! Turn detection on the caller's audio with webrtc-vad: when speech starts (after a
//! minimum voiced duration, so clicks are ignored), when the caller pauses long enough to
//! start answering speculatively, when they go on, and when a turn ends (after silence; the
//! silence can be changed while the caller is quiet, see [`TurnDetector::end_after`]). While
//! the caller speaks, the utterance so far is cut at word gaps for partial transcripts.

use webrtc_vad::{SampleRate, Vad, VadMode};

/// Milliseconds per VAD frame.
const FRAME_MS: usize = 20;
/// Unvoiced frames that end a voiced run (short gaps inside words do not).
const GAP_FRAMES: usize = 3;
/// Unvoiced frames after which the utterance so far is cut for a partial transcript: early,
/// so that the transcript of the caller's last words starts soon after they stop.
const PARTIAL_CUT_FRAMES: usize = 2;
/// Unvoiced frames that make a cut a word gap (longer than a stop consonant's closure
/// inside a word): voice before that makes the cut void ([`TurnEvent::PartialVoid`]).
const PARTIAL_GAP_FRAMES: usize = 4;
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
    /// The caller is speaking and went quiet, [`TurnSettings::partial_ms`] or more after the
    /// last cut: the utterance so far (with pre-roll), to transcribe while they go on.
    Partial(Vec<i16>),
    /// The caller spoke again too soon after the last [`TurnEvent::Partial`] (at that
    /// length) for its cut to be a word gap: it may be inside a word, forget its transcript.
    PartialVoid(usize),
    /// The caller has been quiet for [`TurnSettings::speculate_ms`]: the turn may be over.
    /// The utterance so far (with pre-roll) at the detector's rate.
    Paused(Vec<i16>),
    /// The caller spoke again after a [`TurnEvent::Paused`], before the turn ended.
    Resumed,
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
    /// Silence after which the turn may be over ([`TurnEvent::Paused`]; 0: never).
    pub speculate_ms: usize,
    /// New speech after which the utterance so far is offered at the next word gap
    /// ([`TurnEvent::Partial`]; 0: never).
    pub partial_ms: usize,
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
    /// Voiced frames in the current utterance.
    voiced_frames: usize,
    gap_run: usize,
    silent_frames: usize,
    /// The silence that ends the current turn (the setting, unless moved by `end_after`).
    end_silence_ms: usize,
    /// A [`TurnEvent::Paused`] was sent for the current silence.
    paused: bool,
    /// The utterance's length at the last [`TurnEvent::Partial`].
    partial_mark: usize,
    /// The mark before the last cut, while that cut may still turn out to be inside a word.
    unsure_cut: Option<usize>,
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
            voiced_frames: 0,
            gap_run: 0,
            silent_frames: 0,
            end_silence_ms: settings.end_silence_ms,
            paused: false,
            partial_mark: 0,
            unsure_cut: None,
        }
    }

    /// Changes the voiced time needed to count as speech (longer while voxd is talking,
    /// so that only a real interruption cuts it).
    pub fn set_min_speech_ms(&mut self, ms: usize) {
        self.settings.min_speech_ms = ms;
    }

    /// Makes the current turn end after `ms` of silence (until the caller speaks again); if
    /// the caller has already been quiet that long, the turn ends now.
    pub fn end_after(&mut self, ms: usize) -> Option<TurnEvent> {
        if !self.in_speech {
            return None;
        }
        self.end_silence_ms = ms;
        (self.silent_frames > 0 && self.silent_frames * FRAME_MS >= ms).then(|| self.end_turn())
    }

    fn end_turn(&mut self) -> TurnEvent {
        self.in_speech = false;
        self.voiced_run = 0;
        self.paused = false;
        self.unsure_cut = None;
        TurnEvent::TurnEnded(std::mem::take(&mut self.utterance))
    }

    /// Forgets the current utterance (it was a backchannel, not a turn): the caller is not
    /// speaking.
    pub fn forget(&mut self) {
        self.end_turn();
    }

    /// The voiced time of the current utterance (0 while the caller is not speaking).
    pub fn voiced_ms(&self) -> usize {
        if self.in_speech {
            self.voiced_frames * FRAME_MS
        } else {
            0
        }
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
            self.frame(&chunk, &mut events);
        }
        self.pending.drain(..offset);
        events
    }

    fn frame(&mut self, frame: &[i16], events: &mut Vec<TurnEvent>) {
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
                self.voiced_frames = self.voiced_run;
                self.silent_frames = 0;
                self.end_silence_ms = self.settings.end_silence_ms;
                self.partial_mark = 0;
                self.unsure_cut = None;
                self.utterance = self.pre_roll.drain(..).collect();
                events.push(TurnEvent::SpeechStarted);
            }
            return;
        }
        self.utterance.extend_from_slice(frame);
        if voiced {
            self.voiced_frames += 1;
            self.silent_frames = 0;
            // The caller goes on: the turn ends after the usual silence again.
            self.end_silence_ms = self.settings.end_silence_ms;
            if let Some(mark) = self.unsure_cut.take() {
                events.push(TurnEvent::PartialVoid(self.partial_mark));
                self.partial_mark = mark;
            }
            if std::mem::take(&mut self.paused) {
                events.push(TurnEvent::Resumed);
            }
        } else {
            self.silent_frames += 1;
            if self.gap_run >= PARTIAL_GAP_FRAMES {
                self.unsure_cut = None;
            }
        }
        let silence = self.silent_frames * FRAME_MS;
        let too_long = self.utterance.len() * 1000 / self.rate >= self.settings.max_turn_ms;
        if silence >= self.end_silence_ms || too_long {
            events.push(self.end_turn());
            return;
        }
        let speculate = self.settings.speculate_ms;
        if speculate > 0 && silence >= speculate && !self.paused {
            self.paused = true;
            events.push(TurnEvent::Paused(self.utterance.clone()));
        }
        let partial = self.settings.partial_ms;
        let new_ms = (self.utterance.len() - self.partial_mark) * 1000 / self.rate;
        if partial > 0 && self.gap_run == PARTIAL_CUT_FRAMES && new_ms >= partial {
            self.unsure_cut = Some(self.partial_mark);
            self.partial_mark = self.utterance.len();
            events.push(TurnEvent::Partial(self.utterance.clone()));
        }
    }
}

/// A vowel-like buzz: harmonics of 140 Hz, which the VAD takes for voice.
#[cfg(test)]
pub(crate) fn buzz(ms: usize, rate: usize) -> Vec<i16> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> TurnSettings {
        TurnSettings {
            vad_mode: 3,
            min_speech_ms: 200,
            end_silence_ms: 500,
            speculate_ms: 0,
            partial_ms: 0,
            max_turn_ms: 10_000,
        }
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

    /// Pushes `ms` of silence in frames: each event with the silence before it, in ms.
    fn quiet(d: &mut TurnDetector, ms: usize) -> Vec<(usize, TurnEvent)> {
        let frame = 16_000 * FRAME_MS / 1000;
        (1..=ms / FRAME_MS)
            .flat_map(|n| {
                d.push(&vec![0; frame])
                    .into_iter()
                    .map(move |e| (n * FRAME_MS, e))
            })
            .collect()
    }

    #[test]
    fn a_pause_may_end_the_turn_and_speech_after_it_resumes_the_turn() {
        let mut d = TurnDetector::new(
            16_000,
            TurnSettings {
                speculate_ms: 200,
                ..settings()
            },
        );
        assert_eq!(d.push(&buzz(600, 16_000)), vec![TurnEvent::SpeechStarted]);
        // Quiet for 200 ms (after the VAD's own hangover): the turn may be over.
        let events = quiet(&mut d, 400);
        let [(paused_at, TurnEvent::Paused(so_far))] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert!(so_far.len() >= 16_000 * 600 / 1000, "{}", so_far.len());
        // The caller goes on: no turn ended, and a second pause is announced again.
        assert_eq!(d.push(&buzz(400, 16_000)), vec![TurnEvent::Resumed]);
        assert!(d.in_speech());
        let events = quiet(&mut d, 1000);
        let [(again, TurnEvent::Paused(_)), (ended, TurnEvent::TurnEnded(whole))] =
            events.as_slice()
        else {
            panic!("{events:?}")
        };
        assert_eq!(again, paused_at);
        assert_eq!(ended - again, 300, "the turn ends 500 ms into the silence");
        // Both stretches of speech are in the one utterance.
        let ms = whole.len() * 1000 / 16_000;
        assert!(ms >= 600 + paused_at + 400 + ended, "{ms} ms");
    }

    #[test]
    fn the_end_of_a_turn_can_be_moved_while_the_caller_is_quiet() {
        let mut d = TurnDetector::new(16_000, settings());
        assert_eq!(
            d.end_after(100),
            None,
            "nothing to end before speech starts"
        );
        // The usual end, for comparison.
        d.push(&buzz(600, 16_000));
        let events = quiet(&mut d, 1000);
        let [(usual, TurnEvent::TurnEnded(_))] = events.as_slice() else {
            panic!("{events:?}")
        };
        // A complete question: 300 ms of silence are enough, and they have passed.
        d.push(&buzz(600, 16_000));
        assert!(quiet(&mut d, usual - 100).is_empty());
        assert!(matches!(d.end_after(300), Some(TurnEvent::TurnEnded(_))));
        assert!(!d.in_speech());

        // An unfinished one: the turn waits 500 ms longer than usual.
        d.push(&buzz(600, 16_000));
        assert!(quiet(&mut d, usual - 100).is_empty());
        assert_eq!(d.end_after(1000), None);
        let events = quiet(&mut d, 1000);
        let [(later, TurnEvent::TurnEnded(_))] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(usual - 100 + later, usual + 500);
        // The next turn ends after the usual silence again.
        d.push(&buzz(600, 16_000));
        let events = quiet(&mut d, 1000);
        assert!(
            matches!(events.as_slice(), [(at, TurnEvent::TurnEnded(_))] if at == usual),
            "{events:?}"
        );
    }

    #[test]
    fn a_long_utterance_is_offered_at_word_gaps_while_the_caller_speaks() {
        let mut d = TurnDetector::new(
            16_000,
            TurnSettings {
                partial_ms: 1000,
                ..settings()
            },
        );
        // Gaps between phrases: the VAD hears on for a few frames after a word.
        let gap = vec![0; 16_000 * 200 / 1000];
        let mut partials = Vec::new();
        for _ in 0..6 {
            for e in d.push(&buzz(400, 16_000)) {
                assert_eq!(e, TurnEvent::SpeechStarted);
            }
            for e in d.push(&gap) {
                match e {
                    TurnEvent::Partial(so_far) => partials.push(so_far),
                    other => panic!("{other:?}"),
                }
            }
        }
        // Six phrases of 400 ms with 200 ms gaps: a second of new speech every two.
        let lengths: Vec<usize> = partials.iter().map(Vec::len).collect();
        assert_eq!(lengths.len(), 3, "{lengths:?}");
        assert!(
            lengths.windows(2).all(|w| w[1] - w[0] >= 16_000),
            "{lengths:?}"
        );
        let ev = d.push(&vec![0; 16_000]);
        let [TurnEvent::TurnEnded(whole)] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        // Each partial is the start of the whole utterance.
        for p in &partials {
            assert!(whole.len() > p.len() && whole.starts_with(p));
        }
    }

    #[test]
    fn a_cut_is_void_if_the_caller_goes_on_before_it_is_a_word_gap() {
        let mut d = TurnDetector::new(
            16_000,
            TurnSettings {
                partial_ms: 1000,
                ..settings()
            },
        );
        d.push(&buzz(1200, 16_000));
        let frame = vec![0; 16_000 * FRAME_MS / 1000];
        // Quiet frames until the utterance is cut (after the VAD's own hangover), then
        // `more` quiet frames and voice: the events of that voice.
        let mut cut_then_voice = |more: usize| {
            let mut cut = None;
            for _ in 0..10 {
                match d.push(&frame).as_slice() {
                    [] => {}
                    [TurnEvent::Partial(so_far)] => {
                        cut = Some(so_far.len());
                        break;
                    }
                    other => panic!("{other:?}"),
                }
            }
            let cut = cut.expect("a cut");
            for _ in 0..more {
                assert!(d.push(&frame).is_empty());
            }
            (cut, d.push(&buzz(100, 16_000)))
        };
        // The caller goes on at once: the cut may be inside a word.
        let (first, voice) = cut_then_voice(0);
        assert_eq!(voice, [TurnEvent::PartialVoid(first)]);
        // The next quiet stretch is cut again (a second of speech since the last cut that
        // held); the caller goes on one frame before it would be a word gap.
        let (second, voice) = cut_then_voice(PARTIAL_GAP_FRAMES - PARTIAL_CUT_FRAMES - 1);
        assert!(second > first);
        assert_eq!(voice, [TurnEvent::PartialVoid(second)]);
        // Quiet long enough for a word gap: the cut holds when the caller goes on.
        let (_, voice) = cut_then_voice(PARTIAL_GAP_FRAMES - PARTIAL_CUT_FRAMES);
        assert!(voice.is_empty(), "{voice:?}");
        // Only new speech after a held cut is cut again.
        for _ in 0..10 {
            assert!(d
                .push(&frame)
                .iter()
                .all(|e| !matches!(e, TurnEvent::Partial(_))));
        }
    }
}
