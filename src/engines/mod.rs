//! The three engines, loaded once at startup and shared by every call.

pub mod llm;
pub mod phonemize;
pub mod stt;
pub mod tts;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;

use crate::audio::{resample, Pcm, STT_RATE};
use crate::config::Config;

/// Whisper, the LLM and the Piper voice, with what `/health` reports about them, and the
/// knowledge base the replies draw on (when `kb.enabled`).
pub struct Engines {
    pub stt: stt::Stt,
    pub llm: llm::Llm,
    pub tts: tts::Tts,
    pub kb: Option<crate::kb::KnowledgeBase>,
    pub names: ModelNames,
    /// Seconds each engine took to load, by engine name (`/metrics`).
    pub load_secs: [(&'static str, f64); 3],
}

/// Model file names, as `/health` shows them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelNames {
    pub stt: String,
    pub llm: String,
    pub tts: String,
}

impl Engines {
    /// Loads all three engines (a few seconds) and the knowledge base (first: a missing
    /// index fails at once); logs each load time.
    pub fn load(cfg: &Config) -> Result<Self> {
        let kb = crate::kb::KnowledgeBase::load(&cfg.kb)?;
        let (stt, stt_secs) = timed("STT", &cfg.models.stt, || {
            stt::Stt::load(&cfg.models.stt, &cfg.stt)
        })?;
        let (llm, llm_secs) = timed("LLM", &cfg.models.llm, || {
            llm::Llm::load(&cfg.models.llm, &cfg.llm, cfg.llm.workers as usize)?
                .with_tools(crate::tools::Tools::from_config(&cfg.tools))
        })?;
        let (tts, tts_secs) = timed("TTS", &cfg.models.voice, || {
            tts::Tts::load(&cfg.models, &cfg.tts)
        })?;
        let names = ModelNames {
            stt: file_name(&cfg.models.stt),
            llm: file_name(&cfg.models.llm),
            tts: file_name(&cfg.models.voice),
        };
        Ok(Self {
            stt,
            llm,
            tts,
            kb,
            names,
            load_secs: [("stt", stt_secs), ("llm", llm_secs), ("tts", tts_secs)],
        })
    }
}

/// Runs one engine's load, logging and returning how long it took.
fn timed<T>(what: &str, model: &Path, load: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let t = Instant::now();
    let engine = load()?;
    let secs = t.elapsed().as_secs_f64();
    tracing::info!(model = %model.display(), ms = (secs * 1000.0) as u64, "{what} loaded");
    Ok((engine, secs))
}

/// Transcribes audio at any rate off the async runtime (resampling to Whisper's 16 kHz),
/// logging in the caller's span.
pub async fn transcribe(engines: &Arc<Engines>, audio: Pcm) -> Result<stt::Transcript> {
    let e = engines.clone();
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        span.in_scope(|| {
            let pcm = resample::to_rate(audio, STT_RATE)?;
            e.stt.transcribe(&pcm.samples)
        })
    })
    .await?
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
