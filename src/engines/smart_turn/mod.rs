//! The semantic end of turn: Smart Turn v3 (Pipecat's open model, a Whisper-tiny encoder
//! with a classifier, int8 ONNX, BSD-2) hears the caller's last 8 s and says how likely it
//! is that they have finished their turn, from their words and their intonation. It runs on
//! the ONNX Runtime the voices already load, one thread per inference, from a small pool of
//! sessions so that calls pausing together do not queue behind one another.

mod log_mel;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{anyhow, Context, Result};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::Tensor;

use crate::audio::{resample, Pcm, STT_RATE};

/// One session: one thread, all graph optimisations.
fn session(path: &Path) -> ort::Result<Session> {
    Session::builder()?
        .with_optimization_level(GraphOptimizationLevel::Level3)?
        .with_intra_threads(1)?
        .with_inter_threads(1)?
        .commit_from_file(path)
}

/// Smart Turn's sessions.
pub struct SmartTurn {
    sessions: Vec<Mutex<Session>>,
    next: AtomicUsize,
}

impl SmartTurn {
    /// Loads the model at `path` into `sessions` sessions (at least one) on the ONNX Runtime
    /// library at `onnxruntime`.
    pub fn load(path: &Path, onnxruntime: &Path, sessions: usize) -> Result<Self> {
        if !path.is_file() {
            return Err(anyhow!(
                "end-of-turn model {} not found (run scripts/fetch-test-models or \
                 scripts/download-models, or set models.turn = \"\" to end turns on silence \
                 and words alone)",
                path.display()
            ));
        }
        super::tts::init_onnxruntime(onnxruntime)?;
        let sessions = (0..sessions.max(1))
            .map(|_| {
                session(path)
                    .map(Mutex::new)
                    .with_context(|| format!("cannot load end-of-turn model {}", path.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            sessions,
            next: AtomicUsize::new(0),
        })
    }

    /// The probability (0–1) that `audio`, the caller's turn so far with the short silence
    /// that made voxd ask, is a finished turn. Blocking (tens of milliseconds).
    pub fn finished(&self, audio: &Pcm) -> Result<f32> {
        let audio = if audio.rate == STT_RATE {
            std::borrow::Cow::Borrowed(&audio.samples)
        } else {
            // Only the last 8 s are heard: resample no more than that.
            let keep = log_mel::WINDOW * audio.rate as usize / STT_RATE as usize;
            let tail = &audio.samples[audio.samples.len().saturating_sub(keep)..];
            let pcm = Pcm {
                samples: tail.to_vec(),
                rate: audio.rate,
            };
            std::borrow::Cow::Owned(resample::to_rate(pcm, STT_RATE)?.samples)
        };
        let features = log_mel::features(&audio);
        let input = Tensor::from_array(([1usize, log_mel::MELS, log_mel::FRAMES], features))?;
        let mut session = self.session();
        let outputs = session.run(ort::inputs!["input_features" => input])?;
        let (_, probability) = outputs["logits"].try_extract_tensor::<f32>()?;
        probability
            .first()
            .copied()
            .ok_or_else(|| anyhow!("the end-of-turn model returned nothing"))
    }

    /// A free session, or the next one in turn when all are busy.
    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        for s in &self.sessions {
            if let Ok(guard) = s.try_lock() {
                return guard;
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.sessions.len();
        self.sessions[i].lock().unwrap_or_else(|p| p.into_inner())
    }
}
