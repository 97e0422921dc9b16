//! `voxd bench turn-taking`: how well the end of a caller's turn is told from a pause inside
//! it, on a turn-taking set made from recordings of one sentence each (the Asterisk prompt
//! sets): the whole sentence with the short silence after it (complete), the sentence cut at
//! a gap between two words with that silence after the cut, the recording's own pauses
//! inside the sentence, and phone numbers read with a pause after the third digit
//! (incomplete). Each is judged at the short silence that makes voxd ask, as a call judges
//! it: by the words Whisper hears ([`end_of_turn::judge`]), by the end-of-turn model, and
//! by both; printed per set: accuracy on each kind, false cut-offs, the mean silence waited
//! after a finished sentence, and the model's time per decision.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::recordings::{read_set, Recording, Set};
use crate::audio::{decode, resample, Pcm, STT_RATE};
use crate::config::Config;
use crate::conversation::end_of_turn::{self, Ending};
use crate::conversation::turn_detector::{TurnDetector, TurnEvent, TurnSettings};
use crate::engines::smart_turn::SmartTurn;
use crate::engines::stt::Stt;
use crate::metrics::percentile::{median, percentile};

/// The rate of a phone call: the set is heard as a call hears it.
const RATE: u32 = 8000;
/// New speech between two cuts of one recording.
const CUT_EVERY_MS: usize = 400;
/// Cuts closer than this to the end of the sentence are not cuts inside it.
const CUT_MARGIN_MS: usize = 400;
/// Phone numbers read per set (from its `digits/` recordings).
const NUMBERS: usize = 12;
/// The pause after a number's third digit.
const NUMBER_PAUSE_MS: usize = 700;

/// What a sample is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A whole sentence: the caller has finished.
    Complete,
    /// Cut at a gap between two words.
    Cut,
    /// Cut where the sentence has a comma (a phrase may end there).
    Comma,
    /// A pause of the recording itself, inside its sentence.
    Pause,
    /// A phone number after its third digit.
    Number,
}

/// One decision to judge: the caller's audio up to the short silence, and the sentence
/// it is from.
struct Sample {
    kind: Kind,
    audio: Vec<i16>,
    sentence: String,
}

/// How one sample was judged.
struct Judged {
    kind: Kind,
    words: Ending,
    probability: f32,
    model_ms: f64,
}

/// Judges the turn-taking set of each folder of `dirs`.
pub fn run(cfg: &Config, dirs: &[PathBuf], limit: usize) -> Result<()> {
    if cfg.models.turn.as_os_str().is_empty() {
        bail!("bench turn-taking needs the end-of-turn model (models.turn)");
    }
    let model = SmartTurn::load(&cfg.models.turn, &cfg.models.onnxruntime, 1)?;
    let stt = Stt::configured(cfg)?;
    let c = &cfg.conversation;
    let turns = TurnSettings {
        partial_ms: CUT_EVERY_MS,
        ..crate::conversation::Settings::from_config(cfg).turns
    };
    println!(
        "model {}, threshold {}; STT {} (language {}); silence: {} ms asks, complete {} ms, \
         plain {} ms, unfinished {} ms",
        cfg.models.turn.display(),
        c.end_of_turn_threshold,
        cfg.models.stt.display(),
        cfg.stt.language,
        turns.speculate_ms,
        c.end_of_turn_complete_ms,
        c.end_of_turn_ms,
        c.end_of_turn_unfinished_ms,
    );
    for dir in dirs {
        let samples = set_samples(dir, turns, limit)?;
        let mut judged = Vec::with_capacity(samples.len());
        for s in &samples {
            let pcm = Pcm::from_i16(&s.audio, RATE);
            let t = Instant::now();
            let probability = model.finished(&pcm)?;
            let model_ms = t.elapsed().as_secs_f64() * 1000.0;
            let heard = stt.transcribe(&resample::to_rate(pcm, STT_RATE)?.samples)?;
            let kind = match s.kind {
                Kind::Cut if at_comma(&s.sentence, &heard.text) => Kind::Comma,
                kind => kind,
            };
            judged.push(Judged {
                kind,
                words: end_of_turn::judge(&heard.text),
                probability,
                model_ms,
            });
        }
        report(dir, cfg, &judged);
    }
    Ok(())
}

/// The samples of one folder: its one-sentence recordings (at most `limit`) and numbers.
fn set_samples(dir: &Path, turns: TurnSettings, limit: usize) -> Result<Vec<Sample>> {
    let file = dir.join("transcripts.txt");
    let text = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "cannot read {} (scripts/fetch-test-speech fetches the Asterisk sets)",
            file.display()
        )
    })?;
    let set = read_set(dir, &text);
    let mut samples = Vec::new();
    for r in one_sentence_recordings(&set).take(limit) {
        if let Some(audio) = load(&r.path) {
            samples.extend(recording_samples(&audio, &r.words, turns, false));
        }
    }
    let digits: Vec<Vec<i16>> = (0..10)
        .filter_map(|d| load(&dir.join(format!("digits/{d}.wav"))))
        .collect();
    if digits.len() == 10 {
        for n in 0..NUMBERS {
            samples.extend(recording_samples(&number(&digits, n), "", turns, true));
        }
    }
    if samples.is_empty() {
        bail!("{}: no one-sentence recording to cut", dir.display());
    }
    Ok(samples)
}

/// The audio (8 kHz) of the first `n` one-sentence recordings of `dir` (none when the set
/// is missing): real recorded speech for the latency benchmarks.
pub(super) fn sentences(dir: &Path, n: usize) -> Vec<Vec<i16>> {
    let Ok(text) = std::fs::read_to_string(dir.join("transcripts.txt")) else {
        return Vec::new();
    };
    one_sentence_recordings(&read_set(dir, &text))
        .filter_map(|r| load(&r.path))
        .take(n)
        .collect()
}

/// The recordings at the top of `set` (not its `digits/` and such) of one sentence each.
fn one_sentence_recordings(set: &Set) -> impl Iterator<Item = &Recording> {
    set.recordings
        .iter()
        .filter(|r| one_sentence(&r.words) && !r.name.contains('/'))
}

/// A transcript of one sentence of three words or more.
fn one_sentence(words: &str) -> bool {
    let inner = words.trim_end_matches(['.', '!', '?', '…', ' ']);
    words.split_whitespace().count() >= 3 && !inner.contains(['.', '!', '?', ';', '…'])
}

/// A recording as a call hears it (8 kHz); None when it cannot be read.
fn load(path: &Path) -> Option<Vec<i16>> {
    let bytes = std::fs::read(path).ok()?;
    let pcm = decode::decode(&bytes, 30.0).ok()?;
    Some(resample::to_rate(pcm, RATE).ok()?.to_i16())
}

/// A seven-digit number (the `n`th of a fixed sequence) read from `digits`, a short gap
/// between digits and a longer pause after the third.
fn number(digits: &[Vec<i16>], n: usize) -> Vec<i16> {
    let ms = |ms: usize| vec![0i16; ms * RATE as usize / 1000];
    let mut out = Vec::new();
    for i in 0..7 {
        let d = (n * 7919 + i * 104_729 + n * i * 31) % 10;
        out.extend_from_slice(&digits[d]);
        out.extend(ms(if i == 2 { NUMBER_PAUSE_MS } else { 120 }));
    }
    out
}

/// The samples of one sentence (or `number`): the detector's pauses (the last one after
/// the sentence, the others inside it) and, in a sentence, cuts at its gaps between words.
fn recording_samples(
    audio: &[i16],
    sentence: &str,
    turns: TurnSettings,
    number: bool,
) -> Vec<Sample> {
    let silence = vec![0i16; RATE as usize * 2];
    let mut detector = TurnDetector::new(RATE, turns);
    let (mut pauses, mut cuts) = (Vec::new(), Vec::new());
    for chunk in audio.chunks(160).chain(silence.chunks(160)) {
        for event in detector.push(chunk) {
            match event {
                TurnEvent::Paused(so_far) => pauses.push(so_far),
                TurnEvent::Partial(so_far) => cuts.push(so_far),
                TurnEvent::PartialVoid(len) => cuts.retain(|c| c.len() != len),
                _ => {}
            }
        }
    }
    let Some(whole) = pauses.pop() else {
        return Vec::new();
    };
    let margin = CUT_MARGIN_MS * RATE as usize / 1000;
    let pad = (turns.speculate_ms.saturating_sub(40)) * RATE as usize / 1000;
    let mut samples: Vec<Sample> = pauses
        .into_iter()
        .map(|audio| Sample {
            kind: if number { Kind::Number } else { Kind::Pause },
            audio,
            sentence: sentence.to_string(),
        })
        .collect();
    if !number {
        samples.extend(
            cuts.into_iter()
                .filter(|c| c.len() + margin < whole.len())
                .map(|mut audio| {
                    audio.extend(std::iter::repeat_n(0, pad));
                    Sample {
                        kind: Kind::Cut,
                        audio,
                        sentence: sentence.to_string(),
                    }
                }),
        );
    }
    samples.push(Sample {
        kind: Kind::Complete,
        audio: whole,
        sentence: sentence.to_string(),
    });
    samples
}

/// Whether the words `heard` before a cut end where `sentence` has a comma (or another mark
/// inside a sentence): the last word heard, found in the sentence from the word count on.
fn at_comma(sentence: &str, heard: &str) -> bool {
    let bare = |w: &str| {
        w.trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase()
    };
    let words: Vec<&str> = sentence.split_whitespace().collect();
    let said: Vec<String> = heard.split_whitespace().map(bare).collect();
    let Some(last) = said.last() else {
        return false;
    };
    let from = said.len().saturating_sub(2);
    words
        .iter()
        .skip(from)
        .find(|w| bare(w) == *last)
        .is_some_and(|w| w.ends_with([',', ';', ':', '-', '—']))
}

/// How a policy judges a sample: finished (answer after a short silence) or not.
type Policy = fn(&Judged, f32) -> Option<bool>;

/// The policies compared: None when the policy leaves it to the plain silence.
const POLICIES: [(&str, Policy); 3] = [
    ("words (before)", |j, _| match j.words {
        Ending::Complete => Some(true),
        Ending::Unfinished => Some(false),
        Ending::Plain => None,
    }),
    ("model", |j, t| Some(j.probability >= t)),
    ("model, then words", |j, t| {
        Some(j.probability >= t && j.words != Ending::Unfinished)
    }),
];

fn report(dir: &Path, cfg: &Config, judged: &[Judged]) {
    let c = &cfg.conversation;
    let count = |k: Kind| judged.iter().filter(|j| j.kind == k).count();
    println!(
        "\n{}: {} decisions: {} complete turns (sentences and numbers), {} cut between words ({} more at a \
         comma), {} pauses inside a sentence, {} pauses inside a number",
        dir.display(),
        judged.len(),
        count(Kind::Complete),
        count(Kind::Cut),
        count(Kind::Comma),
        count(Kind::Pause),
        count(Kind::Number),
    );
    println!(
        "  {:<18} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12}",
        "policy", "complete", "cut", "comma", "pause", "number", "accuracy", "silence (ms)"
    );
    for (name, policy) in POLICIES {
        let verdict = |j: &Judged| policy(j, c.end_of_turn_threshold);
        // A plain verdict ends the turn after end_of_turn_ms: finished, for a pause shorter
        // than the unfinished wait.
        let finished = |j: &Judged| verdict(j).unwrap_or(true);
        let right = |k: Kind| {
            let of: Vec<&Judged> = judged.iter().filter(|j| j.kind == k).collect();
            let ok = of
                .iter()
                .filter(|j| finished(j) == (k == Kind::Complete))
                .count();
            (ok, of.len())
        };
        let cell = |(ok, n): (usize, usize)| {
            if n == 0 {
                "-".to_string()
            } else {
                format!("{:.1} %", 100.0 * ok as f64 / n as f64)
            }
        };
        let all = [
            Kind::Complete,
            Kind::Cut,
            Kind::Comma,
            Kind::Pause,
            Kind::Number,
        ]
        .map(right);
        let total = all.iter().fold((0, 0), |(a, b), (ok, n)| (a + ok, b + n));
        let waited: Vec<f64> = judged
            .iter()
            .filter(|j| j.kind == Kind::Complete)
            .map(|j| match verdict(j) {
                Some(true) => c.end_of_turn_complete_ms,
                Some(false) => c.end_of_turn_unfinished_ms,
                None => c.end_of_turn_ms,
            } as f64)
            .collect();
        let mean = waited.iter().sum::<f64>() / waited.len().max(1) as f64;
        println!(
            "  {:<18} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12.0}",
            name,
            cell(all[0]),
            cell(all[1]),
            cell(all[2]),
            cell(all[3]),
            cell(all[4]),
            cell(total),
            mean
        );
    }
    let share = |of: &[&Judged], finished: bool, t: f32| {
        let n = of
            .iter()
            .filter(|j| (j.probability >= t) == finished)
            .count();
        100.0 * n as f64 / of.len().max(1) as f64
    };
    let complete: Vec<&Judged> = judged.iter().filter(|j| j.kind == Kind::Complete).collect();
    let incomplete: Vec<&Judged> = judged.iter().filter(|j| j.kind != Kind::Complete).collect();
    let sweep: Vec<String> = [0.3, 0.5, 0.7, 0.9]
        .iter()
        .map(|&t| {
            format!(
                "{t}: {:.0} % / {:.0} %",
                share(&complete, true, t),
                share(&incomplete, false, t)
            )
        })
        .collect();
    println!(
        "  model by threshold (complete heard finished / the others heard unfinished): {}",
        sweep.join(", ")
    );
    let cut_off = incomplete
        .iter()
        .filter(|j| j.probability >= c.end_of_turn_threshold)
        .count();
    let mut ms: Vec<f64> = judged.iter().map(|j| j.model_ms).collect();
    println!(
        "  false cut-offs (model): {cut_off} of {} pauses inside a sentence; model time per \
         decision p50 {:.0} ms, p95 {:.0} ms",
        incomplete.len(),
        median(&mut ms),
        percentile(&mut ms, 95.0)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_single_sentences_of_three_words_are_cut() {
        assert!(one_sentence("Please enter your extension."));
        assert!(one_sentence("Введите номер оператора и нажмите решетку."));
        assert!(!one_sentence("Goodbye."));
        assert!(!one_sentence(
            "Этот оператор уже зарегистрирован.  Введите номер оператора."
        ));
        assert!(!one_sentence("Is that right? Press one"));
    }

    #[test]
    fn a_cut_after_a_comma_is_told_from_one_inside_a_phrase() {
        let s = "Please enter a new extension, followed by pound.";
        assert!(at_comma(s, "Please enter a new extension."));
        assert!(!at_comma(s, "Please enter a new"));
        assert!(!at_comma(s, ""));
        assert!(at_comma("Введите номер, затем решетку.", "Введите номер"));
    }

    #[test]
    fn a_number_pauses_after_its_third_digit() {
        let digits: Vec<Vec<i16>> = (0..10).map(|d| vec![1000 + d as i16; 800]).collect();
        let n = number(&digits, 3);
        assert_eq!(n.len(), 7 * 800 + 6 * 960 + 5600);
        let third_end = 3 * 800 + 2 * 960;
        assert!(n[third_end..third_end + 5600].iter().all(|&s| s == 0));
        assert!(n[third_end + 5600] != 0);
    }
}
