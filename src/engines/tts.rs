//! Text to speech: one Piper voice (ONNX Runtime + espeak-ng), loaded once, run by a small
//! pool of ONNX sessions (the CPU budget's TTS jobs, [`super::schedule::Budget`]) so that several calls' sentences are voiced at
//! once; espeak-ng's phonemization, cheap and not thread-safe, stays serialized.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, OnceLock};

use anyhow::{anyhow, Context, Result};
use piper_rs::{ModelConfig, Piper};

use super::phonemize::phonemize;
use super::read_aloud;
use crate::audio::Pcm;
use crate::config::{ModelsConfig, TtsConfig};

/// A loaded Piper voice.
pub struct Tts {
    /// The sessions not in use right now; a synthesis waits on `returned` for one.
    free: Mutex<Vec<Piper>>,
    returned: Condvar,
    sessions: usize,
    espeak_voice: String,
    rate: u32,
    cfg: TtsConfig,
}

impl Tts {
    /// Loads the ONNX Runtime library, locates espeak-ng's data and loads the voice, in
    /// `sessions` copies that may run at once.
    pub fn load(models: &ModelsConfig, cfg: &TtsConfig, sessions: usize) -> Result<Self> {
        Self::load_voice(&models.voice, "models.voice", models, cfg, sessions)
    }

    /// [`Self::load`] with another voice than `models.voice`: `voice`, set by the config
    /// key `key`.
    pub fn load_voice(
        voice: &Path,
        key: &str,
        models: &ModelsConfig,
        cfg: &TtsConfig,
        sessions: usize,
    ) -> Result<Self> {
        init_onnxruntime(&models.onnxruntime)?;
        init_espeak_data(&models.espeak_data)?;
        let json = voice_config_path(voice);
        if !voice.is_file() || !json.is_file() {
            return Err(anyhow!(
                "Piper voice {} (and its {}) not found (run scripts/fetch-test-models, or set {key})",
                voice.display(),
                json.display()
            ));
        }
        let text = std::fs::read_to_string(&json)?;
        let read_config = || -> Result<ModelConfig> {
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not a Piper voice config", json.display()))
        };
        let config = read_config()?;
        let (espeak_voice, rate) = (config.espeak.voice.clone(), config.audio.sample_rate);
        let sessions = sessions.max(1);
        let mut free = Vec::with_capacity(sessions);
        for _ in 0..sessions {
            let config = read_config()?;
            // Built here rather than by piper-rs, to set the thread count.
            let session = ort::session::Session::builder()
                .and_then(|b| Ok(b.with_intra_threads(cfg.threads.max(1) as usize)?))
                .and_then(|mut b| b.commit_from_file(voice))
                .map_err(|e| anyhow!("cannot load Piper voice {}: {e}", voice.display()))?;
            free.push(Piper::from_session(session, config));
        }
        Ok(Self {
            free: Mutex::new(free),
            returned: Condvar::new(),
            sessions,
            espeak_voice,
            rate,
            cfg: cfg.clone(),
        })
    }

    /// How many syntheses can run at once.
    pub fn sessions(&self) -> usize {
        self.sessions
    }

    /// The voice's native sample rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// The espeak-ng voice (language) the Piper voice speaks.
    pub fn language(&self) -> &str {
        &self.espeak_voice
    }

    /// The code of the language the voice speaks ("en" for espeak-ng's "en-us").
    pub fn language_code(&self) -> String {
        read_aloud::primary_language(&self.espeak_voice)
    }

    /// Phonemes per sentence, as they are fed to the voice: numbers, dates, prices and
    /// abbreviations first written out as words (of the text's language: see
    /// [`read_aloud::language_of`]).
    pub fn phonemes(&self, text: &str) -> Result<Vec<String>> {
        let language = read_aloud::language_of(text, &self.espeak_voice);
        let spoken = read_aloud::for_speech(text, language);
        phonemize(&spoken, &self.espeak_voice)
    }

    /// Synthesizes `text` (sentences joined by the configured pause). Blocking.
    pub fn synthesize(&self, text: &str) -> Result<Pcm> {
        let sentences = self.phonemes(text)?;
        let mut session = self.take();
        let piper = session.as_mut();
        let noise = self.cfg.deterministic.then_some(0.0);
        let mut parts = Vec::with_capacity(sentences.len());
        for phonemes in &sentences {
            let (audio, _) = piper
                .create(
                    phonemes,
                    true,
                    Some(self.cfg.speaker),
                    Some(self.cfg.length_scale),
                    noise,
                    noise,
                )
                .map_err(|e| anyhow!("Piper synthesis failed: {e}"))?;
            parts.push(Pcm {
                samples: audio.iter().map(|s| s.clamp(-1.0, 1.0)).collect(),
                rate: self.rate,
            });
        }
        Ok(crate::audio::join(parts, self.cfg.sentence_silence_ms))
    }
}

impl Tts {
    /// A free session, waiting for one when all are busy. (A session is plain data between
    /// runs, so a lock poisoned by a panic elsewhere is safe to take over.)
    fn take(&self) -> Session<'_> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(piper) = free.pop() {
                return Session {
                    tts: self,
                    piper: Some(piper),
                };
            }
            free = self.returned.wait(free).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// A session borrowed from the pool; it goes back when dropped, even after a panic.
struct Session<'a> {
    tts: &'a Tts,
    piper: Option<Piper>,
}

impl Session<'_> {
    fn as_mut(&mut self) -> &mut Piper {
        self.piper
            .as_mut()
            .expect("a session is held until dropped")
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if let Some(piper) = self.piper.take() {
            let mut free = self.tts.free.lock().unwrap_or_else(|p| p.into_inner());
            free.push(piper);
            self.tts.returned.notify_one();
        }
    }
}

/// `voice.onnx` → `voice.onnx.json`.
pub fn voice_config_path(voice: &Path) -> PathBuf {
    let mut s = voice.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

/// Points `ort` at the ONNX Runtime shared library. The library path is checked here:
/// with `load-dynamic`, ort waits forever for a library that is missing.
pub(super) fn init_onnxruntime(path: &Path) -> Result<()> {
    static INIT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        if !path.is_file() {
            return Err(format!(
                "ONNX Runtime library {} not found (run scripts/fetch-test-models, or set models.onnxruntime)",
                path.display()
            ));
        }
        ort::init_from(path)
            .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", path.display()))?
            .commit();
        Ok(())
    })
    .clone()
    .map_err(|e| anyhow!(e))
}

/// Sets `PIPER_ESPEAKNG_DATA_DIRECTORY` to a directory holding `espeak-ng-data`: the
/// configured one, else next to the executable or one level up (cargo's `deps/`).
fn init_espeak_data(configured: &Path) -> Result<()> {
    const VAR: &str = "PIPER_ESPEAKNG_DATA_DIRECTORY";
    let holds = |d: &Path| d.join("espeak-ng-data").join("phontab").is_file();
    let mut candidates = Vec::new();
    if !configured.as_os_str().is_empty() {
        candidates.push(configured.to_path_buf());
        candidates.extend(configured.parent().map(Path::to_path_buf));
    } else {
        if let Some(dir) = std::env::var_os(VAR) {
            candidates.push(PathBuf::from(dir));
        }
        if let Some(exe_dir) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf))
        {
            candidates.extend(exe_dir.parent().map(Path::to_path_buf));
            candidates.insert(candidates.len().saturating_sub(1), exe_dir);
        }
    }
    let found = candidates.into_iter().find(|d| holds(d)).ok_or_else(|| {
        anyhow!(
            "espeak-ng data not found: set models.espeak_data to the espeak-ng-data directory \
             installed with voxd (it is built next to the voxd binary)"
        )
    })?;
    std::env::set_var(VAR, &found);
    Ok(())
}
