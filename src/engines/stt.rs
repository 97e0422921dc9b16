//! Speech to text: one Whisper model loaded once, a fresh decoding state per utterance, the
//! encoder's context fitted to the audio (with timestamps, and a logits filter that stops a
//! decoding as it starts the transcript over).

use std::ffi::{c_int, c_void};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{anyhow, Context, Result};
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

use crate::config::{Config, SttConfig};
use crate::kb::KnowledgeBase;

/// What Whisper heard.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub text: String,
    /// ISO code of the spoken language (detected, or the configured one).
    pub language: String,
}

/// A loaded Whisper model, shareable between calls.
pub struct Stt {
    ctx: WhisperContext,
    cfg: SttConfig,
    multilingual: bool,
    /// Whisper's prompt (`stt.prompt`, the knowledge base's headings) as tokens, made once.
    prompt_tokens: Vec<i32>,
    /// How many knowledge-base headings the prompt holds.
    prompt_headings: usize,
}

/// Most tokens of `stt.prompt` Whisper reads (it keeps at most half its 448-token text
/// context for the prompt).
const MAX_PROMPT_TOKENS: usize = 224;

/// Whisper's prompt as tokens, and how many headings it holds: `headings` as sentences, as many as fit beside `prompt`, then
/// `prompt` (its last [`MAX_PROMPT_TOKENS`] when it is longer alone), nearest the audio.
fn build_prompt(
    ctx: &WhisperContext,
    prompt: &str,
    headings: &[String],
) -> Result<(Vec<i32>, usize)> {
    // Whisper's prompts start with a space, as the words in its transcripts do.
    let tokens = |words: &str| {
        ctx.tokenize(&format!(" {words}"), words.len() + 2)
            .map_err(|e| anyhow!("stt.prompt: {e}"))
    };
    let own = match prompt.trim() {
        "" => Vec::new(),
        words => tokens(words)?,
    };
    let own = &own[own.len().saturating_sub(MAX_PROMPT_TOKENS)..];
    let (mut out, mut fitted) = (Vec::new(), 0);
    for heading in headings {
        let heading = heading.trim();
        let sentence = match heading.ends_with(['.', '!', '?', ':']) {
            true => heading.to_string(),
            false => format!("{heading}."),
        };
        let t = tokens(&sentence)?;
        if out.len() + t.len() + own.len() > MAX_PROMPT_TOKENS {
            tracing::warn!(
                kept = fitted,
                headings = headings.len(),
                "Whisper's prompt holds only the first knowledge-base headings (224 tokens \
                 with stt.prompt)"
            );
            break;
        }
        out.extend(t);
        fitted += 1;
    }
    out.extend_from_slice(own);
    Ok((out, fitted))
}

/// Below this RMS the audio is treated as silence and Whisper is not run (it hallucinates
/// on silence).
const SILENCE_RMS: f32 = 0.002;

impl Stt {
    /// Loads a whisper.cpp (ggml) model file.
    pub fn load(path: &Path, cfg: &SttConfig) -> Result<Self> {
        Self::load_expecting(path, cfg, &[])
    }

    /// The Whisper a configured voxd runs: `models.stt` with `[stt]`, expecting the
    /// knowledge base's headings too when `stt.prompt_kb_headings` is on.
    pub fn configured(cfg: &Config) -> Result<Self> {
        let headings = match cfg.stt.prompt_kb_headings && cfg.kb.enabled {
            true => KnowledgeBase::open(&cfg.kb.index, &cfg.kb)?.headings()?,
            false => Vec::new(),
        };
        Self::load_expecting(&cfg.models.stt, &cfg.stt, &headings)
    }

    /// [`Self::load`], with `headings` (a knowledge base's) in Whisper's prompt before
    /// `stt.prompt`: as many as fit beside it, the first ones first.
    pub fn load_expecting(path: &Path, cfg: &SttConfig, headings: &[String]) -> Result<Self> {
        whisper_rs::install_logging_hooks();
        if !path.is_file() {
            return Err(anyhow!(
                "Whisper model {} not found (run scripts/fetch-test-models, or set models.stt)",
                path.display()
            ));
        }
        let mut params = WhisperContextParameters::default();
        params.use_gpu(cfg.use_gpu);
        let ctx = WhisperContext::new_with_params(path, params)
            .map_err(|e| anyhow!("cannot load Whisper model {}: {e}", path.display()))?;
        let multilingual = ctx.is_multilingual();
        if !multilingual && !matches!(cfg.language.as_str(), "auto" | "en") {
            return Err(anyhow!(
                "stt.language is '{}' but {} is an English-only model: use a multilingual model",
                cfg.language,
                path.display()
            ));
        }
        let (prompt_tokens, prompt_headings) = build_prompt(&ctx, &cfg.prompt, headings)?;
        Ok(Self {
            ctx,
            cfg: cfg.clone(),
            multilingual,
            prompt_tokens,
            prompt_headings,
        })
    }

    /// Whisper's prompt: its length in tokens, and how many knowledge-base headings it holds.
    pub fn prompt_size(&self) -> (usize, usize) {
        (self.prompt_tokens.len(), self.prompt_headings)
    }

    /// Whether the model understands languages other than English.
    pub fn multilingual(&self) -> bool {
        self.multilingual
    }

    /// Transcribes 16 kHz mono audio. Blocking: run it off the async runtime.
    pub fn transcribe(&self, samples: &[f32]) -> Result<Transcript> {
        self.transcribe_unless(samples, &AtomicBool::new(false))
    }

    /// [`Self::transcribe`], stopped with an error soon after `stop` is set (Whisper checks
    /// it after its encoder and after each decoding step).
    pub fn transcribe_unless(&self, samples: &[f32], stop: &AtomicBool) -> Result<Transcript> {
        let language = match (self.cfg.language.as_str(), self.multilingual) {
            (_, false) => "en",
            (lang, true) => lang,
        };
        if rms(samples) < SILENCE_RMS {
            let language = if language == "auto" { "" } else { language };
            return Ok(Transcript {
                text: String::new(),
                language: language.into(),
            });
        }
        let secs = samples.len() as f32 / WHISPER_RATE;
        let fitted = if self.cfg.fit_audio_context {
            fitted_audio_ctx(secs)
        } else {
            None
        };
        // A loop under a fitted context that was not stopped as it began runs to the token
        // limit: the audio is decoded again with a wider context, then on the full window.
        let mut tries = [fitted, fitted.and_then(widened), None].into_iter();
        let (text, lang_id) = loop {
            let ctx = tries.next().flatten();
            let (text, lang_id) = self.decode(samples, language, ctx, stop)?;
            if ctx.is_none() || !is_degenerate(&text, secs) {
                break (text, lang_id);
            }
            tracing::debug!(%text, ?ctx, "a decoding loop with a fitted audio context; decoding again");
        };
        let language = if language == "auto" {
            whisper_rs::get_lang_str(lang_id).unwrap_or("").to_string()
        } else {
            language.to_string()
        };
        Ok(Transcript {
            text: once(&clean(&text)),
            language,
        })
    }

    /// One Whisper pass; `audio_ctx` limits the encoder to that many frames (None: all
    /// 1500, i.e. 30 s); it fails soon after `stop` is set. Returns the raw text and the
    /// language id.
    fn decode(
        &self,
        samples: &[f32],
        language: &str,
        audio_ctx: Option<i32>,
        stop: &AtomicBool,
    ) -> Result<(String, i32)> {
        let mut loops = LoopStop {
            eot: self.ctx.token_eot(),
            n_vocab: self.ctx.n_vocab().max(0) as usize,
            text: Vec::new(),
            stopped: false,
        };
        let strategy = if self.cfg.beam_size > 1 {
            SamplingStrategy::BeamSearch {
                beam_size: self.cfg.beam_size as i32,
                patience: -1.0,
            }
        } else {
            SamplingStrategy::Greedy { best_of: 1 }
        };
        let mut params = FullParams::new(strategy);
        params.set_n_threads(self.cfg.threads.max(1) as i32);
        params.set_language(Some(language));
        params.set_translate(false);
        params.set_no_context(true);
        // With a fitted context, timestamps tell the decoder where the speech ends: without
        // them it often starts the transcript over (`voxd bench wer`: 51 of 548 recordings).
        params.set_no_timestamps(audio_ctx.is_none());
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_suppress_blank(true);
        // By tokens: whisper-rs' text setter leaks its copy of the prompt on every call.
        params.set_tokens(&self.prompt_tokens);
        if !self.cfg.temperature_fallback {
            params.set_temperature_inc(0.0);
        }
        if let Some(ctx) = audio_ctx {
            params.set_audio_ctx(ctx);
            // A fitted context can make Whisper repeat itself: stop a loop as it starts, and
            // bound what one that is not caught costs.
            params.set_single_segment(true);
            params.set_max_tokens(max_plausible_tokens(samples.len() as f32 / WHISPER_RATE));
            // SAFETY: `loops` outlives `full`, the one call that reads the pointer; the
            // callback writes only within the `n_vocab` logits Whisper hands it.
            unsafe {
                params.set_filter_logits_callback(Some(stop_loops));
                params.set_filter_logits_callback_user_data(
                    &mut loops as *mut LoopStop as *mut c_void,
                );
            }
        }
        // SAFETY: the callback only reads the flag, which outlives `full`, the one call that
        // reads the pointer. (whisper-rs' closure-taking setter casts its box to the wrong
        // type and leaks it, so it is not used.)
        unsafe {
            params.set_abort_callback(Some(stop_requested));
            params.set_abort_callback_user_data(stop as *const AtomicBool as *mut c_void);
        }
        let mut state = self
            .ctx
            .create_state()
            .context("cannot create Whisper state")?;
        state.full(params, samples).map_err(|e| {
            if stop.load(Ordering::Relaxed) {
                anyhow!("transcription stopped")
            } else {
                anyhow!("Whisper failed: {e}")
            }
        })?;
        // Join bytes first: a multibyte character may be split across segments.
        let mut bytes = Vec::new();
        for segment in state.as_iter() {
            bytes.extend_from_slice(
                segment
                    .to_bytes()
                    .map_err(|e| anyhow!("Whisper segment: {e}"))?,
            );
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let text = if loops.stopped {
            tracing::debug!(%text, "a decoding loop stopped as it started");
            without_restart(&text)
        } else {
            text
        };
        Ok((text, state.full_lang_id_from_state()))
    }
}

/// What the loop stop needs: end-of-text (tokens from it on are not text: timestamps and
/// the like), the vocabulary's size, room for the text tokens decoded so far; and whether
/// it stopped a decoding that had started over.
struct LoopStop {
    eot: i32,
    n_vocab: usize,
    text: Vec<i32>,
    stopped: bool,
}

/// Tokens of the transcript's beginning that, decoded again at its end, mean the decoder
/// has started over (a loop under a fitted context: the same sentence again and again).
const RESTART_TOKENS: usize = 5;

/// Whisper's logits filter: once the text tokens decoded so far end with the transcript's
/// first [`RESTART_TOKENS`], only end-of-text may follow.
unsafe extern "C" fn stop_loops(
    _ctx: *mut whisper_rs_sys::whisper_context,
    _state: *mut whisper_rs_sys::whisper_state,
    tokens: *const whisper_rs_sys::whisper_token_data,
    n_tokens: c_int,
    logits: *mut f32,
    user_data: *mut c_void,
) {
    let n = usize::try_from(n_tokens).unwrap_or(0);
    if n < 2 * RESTART_TOKENS || tokens.is_null() || logits.is_null() || user_data.is_null() {
        return;
    }
    // SAFETY: `decode` passes its `LoopStop`, alive through the run; Whisper passes `n`
    // tokens and a logit per vocabulary entry.
    let (stop, tokens) = unsafe {
        (
            &mut *(user_data as *mut LoopStop),
            std::slice::from_raw_parts(tokens, n),
        )
    };
    stop.text.clear();
    stop.text
        .extend(tokens.iter().map(|t| t.id).filter(|&id| id < stop.eot));
    let text = &stop.text;
    let m = text.len();
    if m < 2 * RESTART_TOKENS || text[..RESTART_TOKENS] != text[m - RESTART_TOKENS..] {
        return;
    }
    // SAFETY: as above.
    let logits = unsafe { std::slice::from_raw_parts_mut(logits, stop.n_vocab) };
    for (id, logit) in logits.iter_mut().enumerate() {
        if id as i32 != stop.eot {
            *logit = f32::NEG_INFINITY;
        }
    }
    stop.stopped = true;
}

/// A transcript whose decoding was stopped as it started over, without the start of the
/// next copy (the words at its end that repeat its beginning; the last may be cut short).
fn without_restart(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let n = words.len();
    let repeats = |i: usize, p: usize| {
        let (word, first) = (key(words[i]), key(words[i - p]));
        word == first || (i == n - 1 && !word.is_empty() && first.starts_with(&word))
    };
    (1..n)
        .find(|&p| (p..n).all(|i| repeats(i, p)))
        .map_or_else(|| text.to_string(), |p| words[..p].join(" "))
}

/// A word as it is compared for repetition: letters and digits, lower case.
fn key(word: &str) -> String {
    word.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whisper's abort callback: whether the [`AtomicBool`] at `flag` is set.
unsafe extern "C" fn stop_requested(flag: *mut c_void) -> bool {
    // SAFETY: `decode` passes a pointer to an `AtomicBool` that lives through the whole run.
    unsafe { (*(flag as *const AtomicBool)).load(Ordering::Relaxed) }
}

const WHISPER_RATE: f32 = 16_000.0;
/// Encoder frames per second of audio (1500 frames for 30 s).
const FRAMES_PER_SEC: f32 = 50.0;
/// Frames added to the audio's own. With 64, and sometimes 128, Whisper repeats itself.
const CTX_MARGIN: f32 = 192.0;
/// The smallest fitted context. Below it, short answers ("Yes.", "No.", "Hi.", about 1 s)
/// come out repeated ("No. No. No. …") and are decoded again on the full 30 s: 600–800 ms
/// instead of about 85 ms with tiny.en on 2 cores (BENCHMARKS.md, "Short answers").
const MIN_CTX: f32 = 384.0;

/// The encoder context that covers `secs` of audio, or None when that is the full 30 s.
fn fitted_audio_ctx(secs: f32) -> Option<i32> {
    let frames = (secs * FRAMES_PER_SEC + CTX_MARGIN).max(MIN_CTX).ceil() as i32;
    (frames < 1500).then_some(frames)
}

/// Frames added to a fitted context that looped, to decode the audio again.
const WIDER_BY: i32 = 256;

/// A wider context for audio that looped under `ctx` (None: the full one).
fn widened(ctx: i32) -> Option<i32> {
    let wider = ctx + WIDER_BY;
    (wider < 1500).then_some(wider)
}

/// Most words anyone says in `secs` (fast speech is about 4 words/s).
fn max_plausible_words(secs: f32) -> f32 {
    6.0 * secs + 4.0
}

/// Decoder tokens allowed with a fitted context: twice the plausible words, as tokens.
fn max_plausible_tokens(secs: f32) -> i32 {
    (max_plausible_words(secs) * 2.0 * 1.5).ceil() as i32
}

/// A transcript with far more words than anyone says in that time: a decoding loop.
fn is_degenerate(text: &str, secs: f32) -> bool {
    text.split_whitespace().count() as f32 > max_plausible_words(secs)
}

fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt()
}

/// Drops Whisper's non-speech annotations ("[BLANK_AUDIO]", "(music)") and collapses spaces.
fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Fewest words a repeated sentence has for [`once`] to keep one copy: shorter repeats
/// ("bye bye", "no, no") are said that way.
const MIN_REPEATED_WORDS: usize = 3;

/// The transcript without a repetition of itself: an utterance whose padded context Whisper
/// decoded twice comes out as the same sentence two or more times ("Press 6 to play the next
/// message. Press 6 to play the next message.").
fn once(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    for copies in 2..=4 {
        let n = words.len() / copies;
        if n < MIN_REPEATED_WORDS || n * copies != words.len() {
            continue;
        }
        let repeated = (n..words.len()).all(|i| key(words[i]) == key(words[i % n]));
        if repeated {
            return words[..n].join(" ");
        }
    }
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_drops_annotations() {
        assert_eq!(
            clean(" [BLANK_AUDIO] Hello,  world (music)"),
            "Hello, world"
        );
        assert_eq!(clean("(silence)"), "");
    }

    #[test]
    fn fitted_context_covers_the_audio_and_detects_loops() {
        assert_eq!(fitted_audio_ctx(1.0), Some(384));
        assert_eq!(fitted_audio_ctx(5.0), Some(442));
        assert_eq!(fitted_audio_ctx(28.0), None);
        assert!(!is_degenerate(
            "Hello, can you tell me when your office opens tomorrow?",
            3.3
        ));
        assert!(is_degenerate(&"Hello? ".repeat(40), 3.3));
    }

    #[test]
    fn a_decoding_stopped_as_it_started_over_keeps_one_copy() {
        for (stopped, kept) in [
            (
                "Press 5 to repeat the current message. Press 5 to",
                "Press 5 to repeat the current message.",
            ),
            ("Four. Four. Four. Four", "Four."),
            (
                "No Directory Entries Manture Search. No Directory Entries Mant",
                "No Directory Entries Manture Search.",
            ),
            (
                "Press 3 to re-record your message. Press 3 to re-",
                "Press 3 to re-record your message.",
            ),
            // Nothing repeated: kept as it is.
            ("Call forward on.", "Call forward on."),
        ] {
            assert_eq!(without_restart(stopped), kept);
        }
    }

    #[test]
    fn a_sentence_decoded_twice_is_kept_once() {
        assert_eq!(
            once("Press 6 to play the next message. Press 6 to play the next message."),
            "Press 6 to play the next message."
        );
        assert_eq!(
            once("Thank you, goodbye. thank you goodbye Thank you, goodbye."),
            "Thank you, goodbye."
        );
        for kept in [
            "bye bye",
            "No, no.",
            "Hello, hello, hello.",
            "One two three. One two four.",
            "",
        ] {
            assert_eq!(once(kept), kept);
        }
    }

    #[test]
    fn rms_of_silence_is_zero() {
        assert_eq!(rms(&[]), 0.0);
        assert!(rms(&[0.5, -0.5]) > 0.49);
    }
}
