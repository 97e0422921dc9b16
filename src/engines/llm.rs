//! The local language model: a GGUF model loaded once, worker threads that each own a
//! llama.cpp context, chat-template prompts, streamed replies, history trimmed to fit. With
//! tools on, replies are decoded under the tools' grammar and their tail (a tool call) is
//! kept apart from the spoken text.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc as tmpsc;

use crate::config::LlmConfig;
use crate::tools::{self, ToolCall, Tools};

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
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

/// A request handed to a worker.
struct Job {
    messages: Vec<ChatMessage>,
    max_tokens: u32,
    /// GBNF the reply is decoded under (the tools' grammar).
    grammar: Option<String>,
    cancel: Arc<AtomicBool>,
    out: tmpsc::UnboundedSender<LlmEvent>,
}

/// Handle to the model and its worker pool.
pub struct Llm {
    /// None once the handle is being dropped.
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    workers: Vec<std::thread::JoinHandle<()>>,
    cfg: LlmConfig,
    shared: Arc<Shared>,
    /// The tools replies may call (None: plain replies, only the `<hangup>` marker).
    tools: Option<Tools>,
}

impl Drop for Llm {
    /// Closes the queue and waits for the workers: a reply whose stream was dropped stops at
    /// its next token. No thread may be inside llama.cpp when the process tears down (it
    /// crashed at exit before this).
    fn drop(&mut self) {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// A reply being generated; dropping it cancels the generation.
pub struct ReplyStream {
    pub events: tmpsc::UnboundedReceiver<LlmEvent>,
    cancel: Arc<AtomicBool>,
    pending: String,
    /// The reply's tail once it has begun: a tool call or the hangup marker, never spoken.
    tail: Option<String>,
    tools: Option<Tools>,
    done: bool,
    started: Instant,
    first_text: Option<std::time::Duration>,
}

impl Drop for ReplyStream {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

fn backend() -> Result<&'static LlamaBackend> {
    static BACKEND: OnceLock<LlamaBackend> = OnceLock::new();
    if let Some(b) = BACKEND.get() {
        return Ok(b);
    }
    llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
    let b = LlamaBackend::init().map_err(|e| anyhow!("cannot initialise llama.cpp: {e}"))?;
    Ok(BACKEND.get_or_init(|| b))
}

impl Llm {
    /// Loads the model and starts `workers` generation threads.
    pub fn load(path: &Path, cfg: &LlmConfig, workers: usize) -> Result<Self> {
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
        let template = match model.chat_template(None) {
            Ok(t) => t,
            Err(_) => LlamaChatTemplate::new("chatml").context("chat template")?,
        };
        let shared = Arc::new(Shared {
            model,
            template,
            cfg: cfg.clone(),
        });
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
        let mut handles = Vec::new();
        for i in 0..workers.max(1) {
            let shared = shared.clone();
            let rx = rx.clone();
            let ready = ready_tx.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("llm-{i}"))
                    .spawn(move || worker(&shared, &rx, &ready))
                    .context("cannot start LLM worker")?,
            );
        }
        drop(ready_tx);
        for _ in 0..workers.max(1) {
            ready_rx
                .recv()
                .context("LLM worker died while starting")??;
        }
        Ok(Self {
            jobs: Mutex::new(Some(tx)),
            workers: handles,
            cfg: cfg.clone(),
            shared,
            tools: None,
        })
    }

    /// Lets replies call `tools` (None: none): their grammar is checked here, once.
    pub fn with_tools(mut self, tools: Option<Tools>) -> Result<Self> {
        if let Some(t) = &tools {
            LlamaSampler::grammar(&self.shared.model, &t.grammar(), "root")
                .map_err(|e| anyhow!("the tools' grammar does not load: {e}"))?;
        }
        self.tools = tools;
        Ok(self)
    }

    /// Starts generating a reply to `messages` (system prompt first).
    pub fn reply(&self, messages: Vec<ChatMessage>) -> Result<ReplyStream> {
        let (out, events) = tmpsc::unbounded_channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let job = Job {
            messages,
            max_tokens: self.cfg.max_reply_tokens,
            grammar: self.tools.as_ref().map(Tools::grammar),
            cancel: cancel.clone(),
            out,
        };
        self.jobs
            .lock()
            .map_err(|_| anyhow!("LLM queue poisoned"))?
            .as_ref()
            .ok_or_else(|| anyhow!("LLM is shutting down"))?
            .send(job)
            .map_err(|_| anyhow!("LLM workers have stopped"))?;
        Ok(ReplyStream {
            events,
            cancel,
            pending: String::new(),
            tail: None,
            tools: self.tools.clone(),
            done: false,
            started: Instant::now(),
            first_text: None,
        })
    }

    /// What every call's prompt starts with: the system message, then the tools' examples
    /// as earlier exchanges.
    pub fn prompt_head(&self) -> Vec<ChatMessage> {
        let mut head = vec![self.system_message()];
        for [caller, assistant] in self.tools.iter().flat_map(|t| &t.examples) {
            head.push(ChatMessage {
                role: Role::User,
                content: caller.clone(),
            });
            head.push(ChatMessage {
                role: Role::Assistant,
                content: assistant.clone(),
            });
        }
        head
    }

    /// The system message from the configuration, with the tools' description when
    /// replies may call tools (in the chat template's own words when it knows tool calls).
    pub fn system_message(&self) -> ChatMessage {
        let mut content = self.cfg.system_prompt.clone();
        if let Some(t) = &self.tools {
            let hermes = self
                .shared
                .template
                .to_str()
                .is_ok_and(|t| t.contains(tools::CALL_OPEN));
            content.push_str("\n\n");
            content.push_str(&t.describe(hermes));
        }
        ChatMessage {
            role: Role::System,
            content,
        }
    }

    /// The configured reply length limit in sentences (0: none).
    pub fn max_sentences(&self) -> usize {
        self.cfg.max_sentences as usize
    }
}

impl ReplyStream {
    /// The next complete sentence of the reply (the last one may lack its end mark), as
    /// soon as the model has written it; None at the end of the reply.
    pub async fn next_sentence(&mut self) -> Result<Option<String>> {
        self.next_piece(0).await
    }

    /// Like [`Self::next_sentence`], but with `clause_words > 0` a clause of at least that
    /// many words (ending in a comma, semicolon, colon or dash) is returned as soon as it
    /// is written, without waiting for the end of its sentence.
    pub async fn next_piece(&mut self, clause_words: usize) -> Result<Option<String>> {
        loop {
            // What may be spoken: not a tail that is still being written.
            let speakable =
                &self.pending[..self.pending.len() - tools::partial_tail(&self.pending)];
            let sentence = crate::sentences::ends(speakable).first().copied();
            let clause = (clause_words > 0)
                .then(|| crate::sentences::first_long_clause(speakable, clause_words))
                .flatten();
            if let Some(end) = [sentence, clause].into_iter().flatten().min() {
                let rest = self.pending.split_off(end);
                let sentence = std::mem::replace(&mut self.pending, rest.trim_start().to_string());
                return Ok(Some(sentence.trim().to_string()));
            }
            if self.done {
                let mut last = std::mem::take(&mut self.pending);
                last.truncate(last.len() - tools::partial_tail(&last));
                return Ok((!last.trim().is_empty()).then(|| last.trim().to_string()));
            }
            self.receive().await?;
        }
    }

    /// Takes in the next event: text goes to what is spoken until a tail begins, then to
    /// the tail.
    async fn receive(&mut self) -> Result<()> {
        match self.events.recv().await {
            Some(LlmEvent::Text(t)) => {
                self.first_text
                    .get_or_insert_with(|| self.started.elapsed());
                match self.tail.as_mut() {
                    Some(tail) => tail.push_str(&t),
                    None => {
                        self.pending.push_str(&t);
                        if let Some(i) = tools::tail_start(&self.pending) {
                            self.tail = Some(self.pending.split_off(i));
                        }
                    }
                }
            }
            Some(LlmEvent::Done { .. }) => self.done = true,
            Some(LlmEvent::Error(e)) => return Err(anyhow!(e)),
            None => return Err(anyhow!("LLM worker stopped mid-reply")),
        }
        Ok(())
    }

    /// Whether the tail is whole: the marker, or a call with its closing tag.
    fn tail_complete(&self) -> bool {
        self.tail
            .as_deref()
            .is_some_and(|t| t.starts_with(tools::HANGUP_MARKER) || t.contains(tools::CALL_CLOSE))
    }

    /// Lets the generation run to its end without speaking more of it, and returns the
    /// tool the reply called, if any. Without tools only the hangup marker counts; an
    /// unusable call is logged and ignored.
    pub async fn finish(&mut self) -> Result<Option<ToolCall>> {
        // Without tools a reply is not read past what was spoken (as before tools).
        while !self.done && (self.tools.is_some() || self.tail.is_some()) && !self.tail_complete() {
            self.receive().await?;
        }
        let Some(tail) = &self.tail else {
            return Ok(None);
        };
        let Some(available) = &self.tools else {
            return Ok(tail
                .starts_with(tools::HANGUP_MARKER)
                .then_some(ToolCall::Hangup));
        };
        match tools::parse(tail, available) {
            Ok(call) => Ok(Some(call)),
            Err(e) => {
                tracing::warn!("tool call ignored: {e}");
                Ok(None)
            }
        }
    }

    /// Time from the request to the first piece of text, once there is one.
    pub fn first_text(&self) -> Option<std::time::Duration> {
        self.first_text
    }

    /// Collects up to `max_sentences` sentences (0: the whole reply), then stops the
    /// generation. Returns the text and the time to its first piece.
    pub async fn collect(
        mut self,
        max_sentences: usize,
    ) -> Result<(String, Option<std::time::Duration>)> {
        let mut sentences: Vec<String> = Vec::new();
        while let Some(s) = self.next_sentence().await? {
            sentences.push(s);
            if sentences.len() == max_sentences {
                break;
            }
        }
        Ok((sentences.join(" "), self.first_text))
    }
}

struct Shared {
    model: LlamaModel,
    template: LlamaChatTemplate,
    cfg: LlmConfig,
}

/// One worker: owns a context and the tokens currently in its KV cache, so a conversation
/// that grows turn by turn only evaluates its new tokens.
fn worker(shared: &Shared, rx: &Mutex<mpsc::Receiver<Job>>, ready: &mpsc::Sender<Result<()>>) {
    let n_ctx = shared.cfg.context_tokens;
    let threads = shared.cfg.threads.max(1) as i32;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(n_ctx)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let backend = match backend() {
        Ok(b) => b,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut ctx = match shared.model.new_context(backend, params) {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(anyhow!("cannot create LLM context: {e}")));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let mut cached: Vec<LlamaToken> = Vec::new();
    loop {
        let job = match rx.lock() {
            Ok(guard) => match guard.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Err(_) => return,
        };
        let out = job.out.clone();
        if let Err(e) = generate(shared, &mut ctx, &mut cached, job) {
            cached.clear();
            ctx.clear_kv_cache();
            let _ = out.send(LlmEvent::Error(e.to_string()));
        }
    }
}

fn generate(
    shared: &Shared,
    ctx: &mut LlamaContext,
    cached: &mut Vec<LlamaToken>,
    job: Job,
) -> Result<()> {
    let model = &shared.model;
    let vocab = model.vocab();
    let budget = (ctx.n_ctx() as usize).saturating_sub(job.max_tokens as usize + 8);
    let tokens = fit_prompt(&job.messages, budget, |msgs| {
        let prompt = render(model, &shared.template, msgs)?;
        Ok(vocab.tokenize(prompt.as_bytes(), false, true))
    })?;

    // Reuse the KV cache for the longest common prefix; evaluate at least one token.
    let keep = common_prefix(cached, &tokens).min(tokens.len() - 1);
    if !ctx.clear_kv_cache_seq(Some(0), Some(keep as u32), None)? {
        ctx.clear_kv_cache();
        cached.clear();
        return generate_from(shared, ctx, cached, &tokens, 0, job);
    }
    cached.truncate(keep);
    generate_from(shared, ctx, cached, &tokens, keep, job)
}

fn generate_from(
    shared: &Shared,
    ctx: &mut LlamaContext,
    cached: &mut Vec<LlamaToken>,
    tokens: &[LlamaToken],
    keep: usize,
    job: Job,
) -> Result<()> {
    let vocab = shared.model.vocab();
    let n_batch = ctx.n_batch() as usize;
    let mut batch = LlamaBatch::new(n_batch.max(1), 1);
    let mut pos = keep;
    for chunk in tokens[keep..].chunks(n_batch) {
        batch.clear();
        for (i, &t) in chunk.iter().enumerate() {
            let last = pos + i == tokens.len() - 1;
            batch.add(t, (pos + i) as i32, &[0], last)?;
        }
        ctx.decode(&mut batch)
            .context("LLM prompt evaluation failed")?;
        pos += chunk.len();
    }
    cached.extend_from_slice(&tokens[keep..]);

    let mut sampler = sampler(shared, job.grammar.as_deref())?;
    let mut pending: Vec<u8> = Vec::new();
    let mut generated = 0usize;
    let mut logits_idx = batch.n_tokens() - 1;
    // A tool call that has begun may run past the length limit: it is bounded by the
    // grammar and must not be cut off.
    let mut limit = job.max_tokens as usize;
    while generated < limit && !job.cancel.load(Ordering::Relaxed) {
        // `sample` also accepts the token (a second accept would break the grammar).
        let token = sampler.sample(ctx, logits_idx);
        if vocab.is_eog(token) {
            break;
        }
        generated += 1;
        pending.extend_from_slice(&vocab.token_to_piece(token, false, None));
        let valid = match std::str::from_utf8(&pending) {
            Ok(s) => s.len(),
            Err(e) => e.valid_up_to(),
        };
        if valid > 0 {
            let text = String::from_utf8_lossy(&pending[..valid]).into_owned();
            pending.drain(..valid);
            if job.grammar.is_some() && text.contains('<') {
                limit = limit.max(generated + tools::MAX_CALL_BYTES);
            }
            if job.out.send(LlmEvent::Text(text)).is_err() {
                break;
            }
        }
        batch.clear();
        batch.add(token, pos as i32, &[0], true)?;
        ctx.decode(&mut batch).context("LLM generation failed")?;
        cached.push(token);
        pos += 1;
        logits_idx = 0;
    }
    let _ = job.out.send(LlmEvent::Done {
        prompt_tokens: tokens.len(),
        prompt_evaluated: tokens.len() - keep,
        generated,
    });
    Ok(())
}

/// Greedy or sampled per the config; under `grammar` (GBNF), only tokens it allows.
fn sampler(shared: &Shared, grammar: Option<&str>) -> Result<LlamaSampler> {
    let cfg = &shared.cfg;
    let mut chain = Vec::new();
    if let Some(g) = grammar {
        chain.push(
            LlamaSampler::grammar(&shared.model, g, "root")
                .map_err(|e| anyhow!("grammar does not load: {e}"))?,
        );
    }
    if cfg.temperature <= 0.0 {
        chain.push(LlamaSampler::greedy());
    } else {
        chain.extend([
            LlamaSampler::top_k(40),
            LlamaSampler::top_p(0.95, 1),
            LlamaSampler::temp(cfg.temperature),
            LlamaSampler::dist(cfg.seed),
        ]);
    }
    Ok(LlamaSampler::chain_simple(chain))
}

fn render(
    model: &LlamaModel,
    template: &LlamaChatTemplate,
    msgs: &[ChatMessage],
) -> Result<String> {
    let chat = msgs
        .iter()
        .map(|m| LlamaChatMessage::new(m.role.as_str().into(), m.content.clone()))
        .collect::<Result<Vec<_>, _>>()
        .context("message contains a NUL byte")?;
    model
        .apply_chat_template(template, &chat, true)
        .map_err(|e| anyhow!("chat template failed: {e}"))
}

/// Drops the oldest exchanges (never the system message nor the last user message) until
/// the rendered prompt fits in `budget` tokens.
pub fn fit_prompt<T>(
    messages: &[ChatMessage],
    budget: usize,
    mut tokenize: impl FnMut(&[ChatMessage]) -> Result<Vec<T>>,
) -> Result<Vec<T>> {
    let mut msgs = messages.to_vec();
    loop {
        let tokens = tokenize(&msgs)?;
        if tokens.len() <= budget {
            return Ok(tokens);
        }
        let first = usize::from(msgs.first().is_some_and(|m| m.role == Role::System));
        if msgs.len() <= first + 1 {
            return Err(anyhow!(
                "the prompt needs {} tokens, more than the {budget} the context allows",
                tokens.len()
            ));
        }
        msgs.remove(first);
    }
}

fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: Role, s: &str) -> ChatMessage {
        ChatMessage {
            role,
            content: s.into(),
        }
    }

    #[test]
    fn fit_prompt_drops_oldest_turns_keeps_system_and_last() {
        let msgs = vec![
            msg(Role::System, "sys"),
            msg(Role::User, "aaaa"),
            msg(Role::Assistant, "bbbb"),
            msg(Role::User, "cc"),
        ];
        let words = |m: &[ChatMessage]| -> Result<Vec<char>> {
            Ok(m.iter().flat_map(|m| m.content.chars()).collect())
        };
        assert_eq!(fit_prompt(&msgs, 100, words).unwrap().len(), 13);
        let fitted: String = fit_prompt(&msgs, 6, words).unwrap().into_iter().collect();
        assert_eq!(fitted, "syscc");
        assert!(fit_prompt(&msgs, 4, words).is_err());
    }
}
