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

/// Whisper, the LLM and the Piper voice, with what `/health` reports about them.
pub struct Engines {
    pub stt: stt::Stt,
    pub llm: llm::Llm,
    pub tts: tts::Tts,
    pub names: ModelNames,
}

/// Model file names, as `/health` shows them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelNames {
    pub stt: String,
    pub llm: String,
    pub tts: String,
}

impl Engines {
    /// Loads all three engines (a few seconds); logs each load time.
    pub fn load(cfg: &Config) -> Result<Self> {
        let t = Instant::now();
        let stt = stt::Stt::load(&cfg.models.stt, &cfg.stt)?;
        tracing::info!(model = %cfg.models.stt.display(), ms = t.elapsed().as_millis() as u64, "STT loaded");
        let t = Instant::now();
        let llm = llm::Llm::load(&cfg.models.llm, &cfg.llm, 1)?;
        tracing::info!(model = %cfg.models.llm.display(), ms = t.elapsed().as_millis() as u64, "LLM loaded");
        let t = Instant::now();
        let tts = tts::Tts::load(&cfg.models, &cfg.tts)?;
        tracing::info!(model = %cfg.models.voice.display(), ms = t.elapsed().as_millis() as u64, "TTS loaded");
        let names = ModelNames {
            stt: file_name(&cfg.models.stt),
            llm: file_name(&cfg.models.llm),
            tts: file_name(&cfg.models.voice),
        };
        Ok(Self {
            stt,
            llm,
            tts,
            names,
        })
    }
}

/// Transcribes audio at any rate off the async runtime (resampling to Whisper's 16 kHz).
pub async fn transcribe(engines: &Arc<Engines>, audio: Pcm) -> Result<stt::Transcript> {
    let e = engines.clone();
    tokio::task::spawn_blocking(move || {
        let pcm = resample::to_rate(audio, STT_RATE)?;
        e.stt.transcribe(&pcm.samples)
    })
    .await?
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
