//! Speech to text: one Whisper model loaded once, a fresh decoding state per utterance.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

use crate::config::SttConfig;

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
}

/// Below this RMS the audio is treated as silence and Whisper is not run (it hallucinates
/// on silence).
const SILENCE_RMS: f32 = 0.002;

impl Stt {
    /// Loads a whisper.cpp (ggml) model file.
    pub fn load(path: &Path, cfg: &SttConfig) -> Result<Self> {
        whisper_rs::install_logging_hooks();
        if !path.is_file() {
            return Err(anyhow!(
                "Whisper model {} not found (run scripts/fetch-test-models, or set models.stt)",
                path.display()
            ));
        }
        let ctx = WhisperContext::new_with_params(path, WhisperContextParameters::default())
            .map_err(|e| anyhow!("cannot load Whisper model {}: {e}", path.display()))?;
        let multilingual = ctx.is_multilingual();
        if !multilingual && !matches!(cfg.language.as_str(), "auto" | "en") {
            return Err(anyhow!(
                "stt.language is '{}' but {} is an English-only model: use a multilingual model",
                cfg.language,
                path.display()
            ));
        }
        Ok(Self {
            ctx,
            cfg: cfg.clone(),
            multilingual,
        })
    }

    /// Whether the model understands languages other than English.
    pub fn multilingual(&self) -> bool {
        self.multilingual
    }

    /// Transcribes 16 kHz mono audio. Blocking: run it off the async runtime.
    pub fn transcribe(&self, samples: &[f32]) -> Result<Transcript> {
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
        params.set_no_timestamps(true);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_suppress_blank(true);
        if !self.cfg.temperature_fallback {
            params.set_temperature_inc(0.0);
        }
        let mut state = self
            .ctx
            .create_state()
            .context("cannot create Whisper state")?;
        state
            .full(params, samples)
            .map_err(|e| anyhow!("Whisper failed: {e}"))?;
        // Join bytes first: a multibyte character may be split across segments.
        let mut bytes = Vec::new();
        for segment in state.as_iter() {
            bytes.extend_from_slice(
                segment
                    .to_bytes()
                    .map_err(|e| anyhow!("Whisper segment: {e}"))?,
            );
        }
        let text = String::from_utf8_lossy(&bytes);
        let language = if language == "auto" {
            whisper_rs::get_lang_str(state.full_lang_id_from_state())
                .unwrap_or("")
                .to_string()
        } else {
            language.to_string()
        };
        Ok(Transcript {
            text: clean(&text),
            language,
        })
    }
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
    fn rms_of_silence_is_zero() {
        assert_eq!(rms(&[]), 0.0);
        assert!(rms(&[0.5, -0.5]) > 0.49);
    }
}
