//! `voxd bench wer`: word error rate and real-time factor of the configured Whisper settings
//! over a folder of recordings with a transcript file. Each recording is decoded and
//! resampled as a recording-flow call's audio is (symphonia, then rubato to 16 kHz) and
//! transcribed once; the words are scored with [`super::wer`]'s normalisation (case, ё/е,
//! punctuation, numbers as digits).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::wer;
use crate::audio::decode::{self, DecodeError};
use crate::audio::{resample, STT_RATE};
use crate::config::Config;
use crate::engines::stt::Stt;

/// Audio files a transcript's name may point to, tried in this order.
const EXTENSIONS: [&str; 5] = ["wav", "mp3", "ogg", "flac", "m4a"];
/// Longest recording scored: Whisper hears 30 s at once, and a call's turn is cut there
/// (`conversation.max_turn_secs`); the decoder stops at longer ones, which are counted.
const MAX_SECS: f64 = 30.0;

/// One recording of the set and what was said in it.
#[derive(Debug, PartialEq)]
pub struct Recording {
    pub name: String,
    pub path: PathBuf,
    pub words: String,
}

/// A transcript file read against its folder.
#[derive(Debug, Default, PartialEq)]
pub struct Set {
    pub recordings: Vec<Recording>,
    /// Names whose transcript is a sound description ("[beep]", "(1 second of silence)"):
    /// not speech, not scored.
    pub not_speech: usize,
    /// Names with no audio file in the folder.
    pub missing: Vec<String>,
}

/// Reads a transcript file: one `name: words` or `name<TAB>words` line per recording
/// (Asterisk's format; lines starting with `;` or `#` are comments). `name` is the audio
/// file's path under `dir`, with or without its extension. Notes in brackets or parentheses
/// ("at [@]") are not scored (Whisper writes none: [`crate::engines::stt`] drops its own); a
/// transcript that is only a note describes a sound.
pub fn read_set(dir: &Path, transcripts: &str) -> Set {
    let mut set = Set::default();
    for line in transcripts.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        let Some((name, words)) = line.split_once('\t').or_else(|| line.split_once(':')) else {
            continue;
        };
        let (name, words) = (name.trim(), spoken(words));
        if words.is_empty() {
            set.not_speech += 1;
            continue;
        }
        match audio_file(dir, name) {
            Some(path) => set.recordings.push(Recording {
                name: name.to_string(),
                path,
                words,
            }),
            None => set.missing.push(name.to_string()),
        }
    }
    set
}

/// The spoken words of a transcript, without its notes in brackets ("at [@]", "(simple tone
/// sound plays)", "<beep ascending>"): nothing when it is only a note.
fn spoken(words: &str) -> String {
    let mut out = String::with_capacity(words.len());
    let mut depth = 0usize;
    for c in words.chars() {
        match c {
            '[' | '(' | '<' => depth += 1,
            ']' | ')' | '>' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The audio file `name` names under `dir` (never outside it).
fn audio_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let relative = Path::new(name);
    if relative.is_absolute()
        || relative
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return None;
    }
    let exact = dir.join(relative);
    if exact.is_file() {
        return Some(exact);
    }
    EXTENSIONS
        .iter()
        .map(|ext| dir.join(format!("{name}.{ext}")))
        .find(|p| p.is_file())
}

/// One recording, transcribed.
struct Scored {
    name: String,
    reference: String,
    heard: String,
    edits: usize,
    reference_words: usize,
    secs: f64,
    stt_secs: f64,
}

/// Transcribes every recording of `dir` (at most `limit`) with the configured STT and
/// prints each utterance with errors, then the summary.
pub fn run(cfg: &Config, dir: &Path, transcripts: Option<&Path>, limit: usize) -> Result<()> {
    let file = transcripts.map_or_else(|| dir.join("transcripts.txt"), Path::to_path_buf);
    let text = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "cannot read the transcript file {} (scripts/fetch-test-speech fetches the Asterisk sets)",
            file.display()
        )
    })?;
    let set = read_set(dir, &text);
    if set.recordings.is_empty() {
        bail!(
            "{}: no recording of {} found",
            file.display(),
            dir.display()
        );
    }
    let stt = Stt::configured(cfg)?;
    println!(
        "{}: {} recordings ({} sound descriptions skipped, {} without audio); model {}, {}",
        dir.display(),
        set.recordings.len().min(limit),
        set.not_speech,
        set.missing.len(),
        cfg.models.stt.display(),
        settings(cfg)
    );
    let (mut scored, mut too_long, mut unreadable) = (Vec::new(), 0, Vec::new());
    for r in set.recordings.iter().take(limit) {
        let bytes = match std::fs::read(&r.path) {
            Ok(bytes) => bytes,
            Err(e) => {
                unreadable.push(format!("{}: {e}", r.path.display()));
                continue;
            }
        };
        let pcm = match decode::decode(&bytes, MAX_SECS) {
            Ok(pcm) => pcm,
            Err(DecodeError::TooLong { .. }) => {
                too_long += 1;
                continue;
            }
            Err(e) => {
                unreadable.push(format!("{}: {e}", r.path.display()));
                continue;
            }
        };
        let pcm = resample::to_rate(pcm, STT_RATE)?;
        let t = Instant::now();
        let heard = stt.transcribe(&pcm.samples)?.text;
        let stt_secs = t.elapsed().as_secs_f64();
        let (edits, reference_words) = wer::errors(&r.words, &heard);
        scored.push(Scored {
            name: r.name.clone(),
            reference: r.words.clone(),
            heard,
            edits,
            reference_words,
            secs: pcm.duration_secs(),
            stt_secs,
        });
    }
    if too_long > 0 {
        println!("{too_long} recordings longer than {MAX_SECS} s skipped");
    }
    for e in &unreadable {
        println!("not scored: {e}");
    }
    if scored.is_empty() {
        bail!("no recording of {} could be decoded", dir.display());
    }
    report(&mut scored);
    Ok(())
}

/// The STT settings that change what is heard, as one line.
fn settings(cfg: &Config) -> String {
    let s = &cfg.stt;
    format!(
        "language {}, beam_size {}, fit_audio_context {}, temperature_fallback {}, prompt {:?}, \
         prompt_kb_headings {}, threads {}",
        s.language,
        s.beam_size,
        s.fit_audio_context,
        s.temperature_fallback,
        s.prompt,
        s.prompt_kb_headings,
        s.threads
    )
}

fn report(scored: &mut [Scored]) {
    scored.sort_by(|a, b| b.edits.cmp(&a.edits).then(a.name.cmp(&b.name)));
    println!("\n| recording | errors/words | reference | heard |\n|---|---|---|---|");
    for s in scored.iter().filter(|s| s.edits > 0) {
        println!(
            "| {} | {}/{} | {} | {} |",
            s.name, s.edits, s.reference_words, s.reference, s.heard
        );
    }
    let (edits, words) = totals(scored.iter());
    let audio: f64 = scored.iter().map(|s| s.secs).sum();
    let stt: f64 = scored.iter().map(|s| s.stt_secs).sum();
    let mut rtf: Vec<f64> = scored.iter().map(|s| s.stt_secs / s.secs).collect();
    let exact = scored.iter().filter(|s| s.edits == 0).count();
    println!(
        "\nWER {:.1} % ({edits} errors / {words} words), {exact} of {} recordings exact; \
         RTF {:.3} ({stt:.1} s of STT for {audio:.1} s of audio), per recording p50 {:.3}, p95 {:.3}, max {:.3}",
        100.0 * edits as f64 / words.max(1) as f64,
        scored.len(),
        stt / audio.max(f64::EPSILON),
        super::median(&mut rtf),
        super::percentile(&mut rtf, 95.0),
        super::percentile(&mut rtf, 100.0),
    );
    let mut slowest: Vec<&Scored> = scored.iter().collect();
    slowest.sort_by(|a, b| (b.stt_secs / b.secs).total_cmp(&(a.stt_secs / a.secs)));
    let over = slowest
        .iter()
        .filter(|s| s.stt_secs / s.secs > RTF_TARGET)
        .count();
    println!("  over {RTF_TARGET} s of STT per second of audio: {over}; the slowest:");
    for s in slowest.iter().take(5) {
        println!(
            "    {} ({:.2} s of audio): {:.3} s, RTF {:.3}",
            s.name,
            s.secs,
            s.stt_secs,
            s.stt_secs / s.secs
        );
    }
    let (long, short): (Vec<&Scored>, Vec<&Scored>) = scored
        .iter()
        .partition(|s| s.reference_words >= SENTENCE_WORDS);
    let sentences = format!("sentences ({SENTENCE_WORDS} words or more)");
    for (what, part) in [(sentences.as_str(), long), ("shorter", short)] {
        let (edits, words) = totals(part.iter().copied());
        println!(
            "  {what}: {} recordings, WER {:.1} %",
            part.len(),
            100.0 * edits as f64 / words.max(1) as f64
        );
    }
}

/// The most STT time per second of audio any utterance may take on 2 cores (issue #28).
const RTF_TARGET: f64 = 0.15;

/// Recordings of this many reference words or more are scored apart from isolated words
/// (letter names, digits), which a caller's turn rarely is.
const SENTENCE_WORDS: usize = 3;

/// Errors and reference words of `scored`, summed.
fn totals<'a>(scored: impl Iterator<Item = &'a Scored>) -> (usize, usize) {
    scored.fold((0, 0), |(e, w), s| (e + s.edits, w + s.reference_words))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transcript_file_names_recordings_under_its_folder_and_skips_sound_descriptions() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::create_dir_all(dir.join("digits")).unwrap();
        for f in ["hello.wav", "digits/1.wav", "tab.mp3"] {
            std::fs::write(dir.join(f), b"").unwrap();
        }
        let set = read_set(
            dir,
            "; Core sounds\n\nhello: Здравствуйте.\ndigits/1: один [1]\nbeep: [a beep tone]\n\
             tab.mp3\tOne: two\ngone: Нет файла.\n../hello: outside\nno separator\n\
             silence/1: (1 second of silence)\nbeep2: <beep>\n",
        );
        let names: Vec<_> = set.recordings.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["hello", "digits/1", "tab.mp3"]);
        assert_eq!(set.recordings[1].path, dir.join("digits/1.wav"));
        assert_eq!(set.recordings[1].words, "один");
        assert_eq!(set.recordings[2].words, "One: two");
        assert_eq!(set.not_speech, 3);
        assert_eq!(set.missing, ["gone", "../hello"]);
    }
}
