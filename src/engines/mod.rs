//! The three engines behind narrow interfaces: speech → text ([`SpeechToText`]), messages →
//! a text stream ([`TextGenerator`]), text → speech ([`TextToSpeech`]). The real ones
//! (Whisper, llama.cpp, Piper; and [`smart_turn`], which hears whether the caller has
//! finished: [`TurnEndModel`]) are loaded once at start-up ([`Engines::load`]) and shared by
//! every call; the conversation layer sees only the traits, so it runs on fakes in tests.
//! Their work is served by deadline within a CPU budget ([`schedule`]).

pub mod capacity;
pub mod llm;
pub mod phonemize;
mod read_aloud;
pub mod schedule;
pub mod smart_turn;
pub mod stt;
pub mod tts;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;

use crate::audio::Pcm;
use crate::config::Config;
pub use llm::{ChatMessage, Grammar, LlmEvent, Role, TextStream};
use schedule::{Budget, Due, Gate, Lane};
pub use stt::Transcript;

/// Speech to text. Blocking: callers run it off the async runtime.
pub trait SpeechToText: Send + Sync {
    /// Transcribes mono audio at 16 kHz ([`crate::audio::STT_RATE`]); fails soon after
    /// `stop` is set.
    fn transcribe(&self, samples: &[f32], stop: &AtomicBool) -> Result<Transcript>;
}

/// Chat messages to a stream of reply text.
pub trait TextGenerator: Send + Sync {
    /// Starts a reply to `messages` (system message first), under `grammar` if given, its
    /// next words needed by `due`.
    fn reply(
        &self,
        messages: Vec<ChatMessage>,
        grammar: Option<&Grammar>,
        due: Due,
    ) -> Result<TextStream>;
    /// Whether the model's chat template mentions `marker` (it knows that tool-call form).
    fn template_mentions(&self, marker: &str) -> bool;
    /// Replies waiting, being written, and how many may be written at once.
    fn lane(&self) -> Lane;
    /// Whether replies can still be written (the engine has not died).
    fn is_alive(&self) -> bool {
        true
    }
    /// Untrusted text (a caller's words, a document, an earlier reply) as it may go into a
    /// prompt: none of the model's control tokens can come out of it.
    fn plain(&self, text: &str) -> String {
        text.to_string()
    }
}

/// Text to speech. Blocking: callers run it off the async runtime.
pub trait TextToSpeech: Send + Sync {
    /// Speech for `text` at the voice's rate.
    fn synthesize(&self, text: &str) -> Result<Pcm>;
}

/// The end of a caller's turn heard in their voice. Blocking: callers run it off the async
/// runtime.
pub trait TurnEndModel: Send + Sync {
    /// The probability (0–1) that `audio`, the caller's turn so far and the short silence
    /// after it, is a finished turn.
    fn finished(&self, audio: &Pcm) -> Result<f32>;
}

impl TurnEndModel for smart_turn::SmartTurn {
    fn finished(&self, audio: &Pcm) -> Result<f32> {
        smart_turn::SmartTurn::finished(self, audio)
    }
}

impl SpeechToText for stt::Stt {
    fn transcribe(&self, samples: &[f32], stop: &AtomicBool) -> Result<Transcript> {
        self.transcribe_unless(samples, stop)
    }
}

impl TextGenerator for llm::Llm {
    fn reply(
        &self,
        messages: Vec<ChatMessage>,
        grammar: Option<&Grammar>,
        due: Due,
    ) -> Result<TextStream> {
        llm::Llm::reply_by(self, messages, grammar, due)
    }
    fn template_mentions(&self, marker: &str) -> bool {
        llm::Llm::template_mentions(self, marker)
    }
    fn lane(&self) -> Lane {
        llm::Llm::lane(self)
    }
    fn is_alive(&self) -> bool {
        llm::Llm::is_alive(self)
    }
    fn plain(&self, text: &str) -> String {
        llm::Llm::plain(self, text)
    }
}

impl TextToSpeech for tts::Tts {
    fn synthesize(&self, text: &str) -> Result<Pcm> {
        tts::Tts::synthesize(self, text)
    }
}

/// Whisper, the LLM and the Piper voice, with what `/health` and `/metrics` report about
/// them.
pub struct Engines {
    pub stt: Arc<stt::Stt>,
    pub llm: Arc<llm::Llm>,
    pub tts: Arc<tts::Tts>,
    /// The voices of the languages that have their own (`[languages.<code>] voice`).
    pub voices: BTreeMap<String, Arc<tts::Tts>>,
    /// The end-of-turn model (none when `models.turn` is empty).
    pub turn: Option<Arc<smart_turn::SmartTurn>>,
    pub names: ModelNames,
    /// Where transcriptions and syntheses wait for the cores (the LLM defers to it).
    pub speech: Arc<Gate>,
    /// Live calls served at once: `calls.max_live`, or measured at load ([`capacity`]).
    pub capacity: usize,
    /// Seconds each engine took to load, by engine name (`/metrics`).
    pub load_secs: [(&'static str, f64); 3],
}

/// Model file names, as `/health` shows them, and the languages the voices speak (their
/// espeak-ng voices; `/health` shows them under `languages`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelNames {
    pub stt: String,
    pub llm: String,
    pub tts: String,
    #[serde(skip)]
    pub voice_language: String,
    /// The voice of each language that has its own, by language code.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub voices: BTreeMap<String, String>,
    /// The espeak-ng language each of those voices speaks.
    #[serde(skip)]
    pub voice_languages: BTreeMap<String, String>,
}

impl Engines {
    /// Loads all three engines (a few seconds) within this machine's CPU budget; logs each
    /// load time.
    pub fn load(cfg: &Config) -> Result<Self> {
        let budget = Budget::of_machine(cfg);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // One sequence per live call, at most two per core (each holds a context's KV cache;
        // a measured capacity stays within them).
        let most = (2 * cores).max(2);
        let sequences = match (cfg.llm.parallel, cfg.calls.max_live) {
            (0, 0) => most,
            (0, n) => (n as usize).min(most),
            (n, _) => n as usize,
        };
        tracing::info!(
            speech_jobs = budget.speech_jobs,
            llm_sequences = sequences,
            "engine budget: transcriptions or syntheses at once, replies written together"
        );
        let speech = Arc::new(Gate::new(budget.speech_jobs));
        let (stt, stt_secs) = timed("STT", &cfg.models.stt, || stt::Stt::configured(cfg))?;
        let (llm, llm_secs) = timed("LLM", &cfg.models.llm, || {
            llm::Llm::load(&cfg.models.llm, &cfg.llm, sequences, Some(speech.clone()))
        })?;
        let sessions = match cfg.tts.sessions {
            0 => budget.speech_jobs,
            n => n as usize,
        };
        let (tts, mut tts_secs) = timed("TTS", &cfg.models.voice, || {
            tts::Tts::load(&cfg.models, &cfg.tts, sessions)
        })?;
        let mut voices = BTreeMap::new();
        for (code, voice) in cfg.language_voices() {
            let key = format!("languages.{code}.voice");
            let (loaded, secs) = timed(&format!("TTS ({code})"), &voice, || {
                tts::Tts::load_voice(&voice, &key, &cfg.models, &cfg.tts, sessions)
            })?;
            tts_secs += secs;
            if loaded.language_code() != code {
                tracing::warn!(
                    "{key} speaks {}, not {code}: callers heard in {code} get it",
                    loaded.language()
                );
            }
            voices.insert(code, (file_name(&voice), Arc::new(loaded)));
        }
        let turn = if cfg.models.turn.as_os_str().is_empty() {
            None
        } else {
            let (model, _) = timed("end-of-turn model", &cfg.models.turn, || {
                smart_turn::SmartTurn::load(
                    &cfg.models.turn,
                    &cfg.models.onnxruntime,
                    budget.speech_jobs,
                )
            })?;
            Some(Arc::new(model))
        };
        let capacity = match cfg.calls.max_live {
            0 => {
                let turn = capacity::measure(&stt, &llm, &tts, &cfg.llm.system_prompt)?;
                let calls = turn.calls(budget.speech_jobs).min(sequences);
                tracing::info!(
                    capacity = calls,
                    engine_ms = (turn.engine_secs * 1000.0) as u64,
                    turn_ms = (turn.turn_secs * 1000.0) as u64,
                    "call capacity measured: a turn keeps the engines busy engine_ms out of \
                     turn_ms (calls.max_live overrides it)"
                );
                calls
            }
            n => n as usize,
        };
        let names = ModelNames {
            stt: file_name(&cfg.models.stt),
            llm: file_name(&cfg.models.llm),
            tts: file_name(&cfg.models.voice),
            voice_language: tts.language().to_string(),
            voices: voices
                .iter()
                .map(|(code, (name, _))| (code.clone(), name.clone()))
                .collect(),
            voice_languages: voices
                .iter()
                .map(|(code, (_, v))| (code.clone(), v.language().to_string()))
                .collect(),
        };
        Ok(Self {
            stt: Arc::new(stt),
            llm: Arc::new(llm),
            tts: Arc::new(tts),
            voices: voices.into_iter().map(|(code, (_, v))| (code, v)).collect(),
            turn,
            names,
            speech,
            capacity,
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

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
