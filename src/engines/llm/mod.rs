//! The local language model: a GGUF model loaded once, one generation thread that writes
//! every live reply as a sequence of one batched llama.cpp context ([`batch`], decisions in
//! [`plan`]), chat-template prompts trimmed to fit, and replies streamed back as raw text,
//! served by deadline. What the text means (sentences, tool calls, prompts) is the
//! conversation's business ([`crate::conversation`]), not this engine's.

mod batch;
mod markers;
mod plan;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, Once, OnceLock, Weak};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use tokio::sync::mpsc as tmpsc;

use super::schedule::{Deadline, Due, Gate, Lane};
use crate::config::LlmConfig;
pub use batch::fit_prompt;

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// What a generation streams back.
#[derive(Debug)]
pub enum LlmEvent {
    /// A piece of reply text (whole UTF-8 characters).
    Text(String),
    /// Generation ended; `prompt_tokens` were fed (after cache reuse: `prompt_evaluated`).
    Done {
        prompt_tokens: usize,
        prompt_evaluated: usize,
        generated: usize,
    },
    Error(String),
}

/// A GBNF grammar a reply is decoded under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grammar {
    pub gbnf: String,
    /// Once the reply has written a `<` (the start of its tail under the grammar: a tool
    /// call), it may run this many tokens past its length limit, so the tail is never cut.
    pub tail_tokens: usize,
}

/// A reply being generated: its text as it comes; dropping it cancels the generation.
pub struct TextStream {
    events: tmpsc::UnboundedReceiver<LlmEvent>,
    cancel: Arc<AtomicBool>,
}

impl TextStream {
    /// A stream fed by `events`; `cancel` is set when the stream is dropped.
    pub fn new(events: tmpsc::UnboundedReceiver<LlmEvent>, cancel: Arc<AtomicBool>) -> Self {
        Self { events, cancel }
    }

    /// The next event; None when the generator went away.
    pub async fn next(&mut self) -> Option<LlmEvent> {
        self.events.recv().await
    }
}

impl Drop for TextStream {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// A reply to write.
struct Job {
    messages: Vec<crate::engines::llm::ChatMessage>,
    max_tokens: u32,
    grammar: Option<Grammar>,
    /// When its next words must be ready (moved by the reader as the reply plays).
    due: Due,
    cancel: Arc<AtomicBool>,
    out: tmpsc::UnboundedSender<LlmEvent>,
}

impl Job {
    /// Whether nobody waits for this reply any more.
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) || self.out.is_closed()
    }
}

/// Handle to the model and its generation thread.
pub struct Llm {
    queue: Arc<batch::Queue>,
    thread: Option<std::thread::JoinHandle<()>>,
    cfg: LlmConfig,
    shared: Arc<batch::Shared>,
    /// The GGUF carries no chat template: prompts are written as ChatML.
    template_missing: bool,
    /// The model's control-token strings ([`markers::of_model`]).
    markers: Vec<String>,
}

/// The warning for a GGUF without a chat template (a base model, or one converted without
/// its tokenizer's template).
const NO_TEMPLATE: &str = "the LLM carries no chat template (tokenizer.chat_template): voxd \
    falls back to ChatML (<|im_start|>), which a model not trained on it does not follow (it \
    echoes the conversation or writes the markers): use an instruction-tuned GGUF with its \
    template";

impl Drop for Llm {
    /// Closes the queue and waits for the thread: a reply whose stream was dropped stops at
    /// the next step. No thread may be inside llama.cpp when the process tears down (it
    /// crashed at exit before this).
    fn drop(&mut self) {
        self.queue.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The generation threads' queues, for [`stop_generation`].
static GENERATING: Mutex<Vec<Weak<batch::Queue>>> = Mutex::new(Vec::new());
/// How long an exit waits for a generation thread to leave llama.cpp.
const EXIT_WAIT: Duration = Duration::from_secs(3);

extern "C" {
    fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
}

/// Has `queue`'s thread stopped when the process exits (its [`Llm`] may never be dropped:
/// engines held for the whole process).
fn stop_at_exit(queue: &Arc<batch::Queue>) {
    static HOOK: Once = Once::new();
    // SAFETY: `stop_generation` is a plain function that lives as long as the process.
    HOOK.call_once(|| unsafe {
        atexit(stop_generation);
    });
    let mut queues = GENERATING.lock().unwrap_or_else(|p| p.into_inner());
    queues.retain(|q| q.strong_count() > 0);
    queues.push(Arc::downgrade(queue));
}

/// At exit, before the C++ libraries' static destructors tear ggml down: every generation
/// thread is told to stop and waited for (one still inside llama.cpp, e.g. caching the
/// prompt head at start, crashed the exit with SIGSEGV).
extern "C" fn stop_generation() {
    let queues: Vec<Arc<batch::Queue>> = GENERATING
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    queues.iter().for_each(|q| q.close());
    let deadline = std::time::Instant::now() + EXIT_WAIT;
    queues.iter().for_each(|q| q.wait_stopped(deadline));
}

/// llama.cpp's backend, initialised once per process (models loading on two threads at once
/// wait for the one initialisation).
fn backend() -> Result<&'static LlamaBackend> {
    static BACKEND: OnceLock<std::result::Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| format!("cannot initialise llama.cpp: {e}"))
        })
        .as_ref()
        .map_err(|e| anyhow!("{e}"))
}

impl Llm {
    /// Loads the model and starts the generation thread, writing up to `sequences`
    /// replies at once, and stepping aside for the jobs at `speech` that are more urgent.
    pub fn load(
        path: &Path,
        cfg: &LlmConfig,
        sequences: usize,
        speech: Option<Arc<Gate>>,
    ) -> Result<Self> {
        if !path.is_file() {
            return Err(anyhow!(
                "LLM model {} not found (run scripts/fetch-test-models, or set models.llm)",
                path.display()
            ));
        }
        let backend = backend()?;
        let params = LlamaModelParams::default().with_n_gpu_layers(cfg.gpu_layers);
        let model = LlamaModel::load_from_file(backend, path, &params)
            .map_err(|e| anyhow!("cannot load LLM {}: {e}", path.display()))?;
        let (template, template_missing) = match model.chat_template(None) {
            Ok(t) => (t, false),
            Err(_) => {
                tracing::warn!(model = %path.display(), "{NO_TEMPLATE}");
                (
                    LlamaChatTemplate::new("chatml").context("chat template")?,
                    true,
                )
            }
        };
        let markers = markers::of_model(&model);
        let shared = Arc::new(batch::Shared {
            model,
            template,
            cfg: cfg.clone(),
            sequences: sequences.max(1),
            speech,
        });
        let queue = Arc::new(batch::Queue::default());
        stop_at_exit(&queue);
        let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
        let thread = {
            let (shared, queue) = (shared.clone(), queue.clone());
            std::thread::Builder::new()
                .name("llm".into())
                .spawn(move || {
                    let _end = batch::OnThreadEnd(&queue);
                    batch::run(&shared, &queue, &ready_tx)
                })
                .context("cannot start the LLM thread")?
        };
        ready_rx
            .recv()
            .context("the LLM thread died while starting")??;
        Ok(Self {
            queue,
            thread: Some(thread),
            cfg: cfg.clone(),
            shared,
            template_missing,
            markers,
        })
    }

    /// Untrusted `text` made safe to render into a prompt: see [`markers`].
    pub fn plain(&self, text: &str) -> String {
        markers::broken(text, &self.markers)
    }

    /// Why the model's prompts may be wrong, when they may: it carries no chat template.
    pub fn template_warning(&self) -> Option<&'static str> {
        self.template_missing.then_some(NO_TEMPLATE)
    }

    /// Whether replies can still be written (false once the generation thread died).
    pub fn is_alive(&self) -> bool {
        !self.queue.failed()
    }

    /// Starts generating a reply to `messages` (system prompt first), under `grammar` when
    /// one is given, for a caller waiting now.
    pub fn reply(
        &self,
        messages: Vec<ChatMessage>,
        grammar: Option<&Grammar>,
    ) -> Result<TextStream> {
        self.reply_by(messages, grammar, Due::new(Deadline::now()))
    }

    /// Starts generating a reply whose next words are needed by `due`: replies are started
    /// and advanced earliest deadline first, and one due later waits (just in time).
    pub fn reply_by(
        &self,
        messages: Vec<ChatMessage>,
        grammar: Option<&Grammar>,
        due: Due,
    ) -> Result<TextStream> {
        let (out, events) = tmpsc::unbounded_channel();
        let cancel = Arc::new(AtomicBool::new(false));
        self.queue.push(Job {
            messages,
            max_tokens: self.cfg.max_reply_tokens,
            grammar: grammar.cloned(),
            due,
            cancel: cancel.clone(),
            out,
        })?;
        Ok(TextStream::new(events, cancel))
    }

    /// Replies waiting for a sequence, being written, and sequences.
    pub fn lane(&self) -> Lane {
        Lane {
            queued: self.queue.queued(),
            running: self.queue.active.load(Ordering::Relaxed),
            places: self.shared.sequences,
        }
    }

    /// Tokens generated since the model loaded.
    pub fn tokens_generated(&self) -> u64 {
        self.queue.tokens.load(Ordering::Relaxed)
    }

    /// Checks that `gbnf` loads against this model's vocabulary.
    pub fn check_grammar(&self, gbnf: &str) -> Result<()> {
        LlamaSampler::grammar(&self.shared.model, gbnf, "root")
            .map(drop)
            .map_err(|e| anyhow!("the grammar does not load: {e}"))
    }

    /// Whether the model's chat template mentions `marker` (e.g. it knows `<tool_call>`).
    pub fn template_mentions(&self, marker: &str) -> bool {
        self.shared
            .template
            .to_str()
            .is_ok_and(|t| t.contains(marker))
    }
}
