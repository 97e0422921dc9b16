//! The generation thread: ONE llama.cpp context whose sequences are the replies being
//! written, as llama.cpp's server runs its parallel slots. Each decoding step advances
//! every reply that is due by one token and evaluates new prompts, in chunks, in the same
//! batch ([`super::plan`]). Each sequence keeps its tokens in the KV cache between replies,
//! so a call's next turn only evaluates what is new, and a new call's prompt head is copied
//! from another sequence's cache. A reply whose stream was dropped (barge-in, hang-up)
//! leaves at the next step, even in the middle of its prompt.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;

use super::plan::{self, choose_sequence, Active, Cached, Seat, LEAD};
use super::{backend, ChatMessage, Job, LlmEvent, Role};
use crate::config::LlmConfig;
use crate::engines::schedule::Gate;

/// Prompt tokens evaluated per step, shared by the prompts due.
const PROMPT_STEP: usize = 128;

pub(super) struct Shared {
    pub(super) model: LlamaModel,
    pub(super) template: LlamaChatTemplate,
    pub(super) cfg: LlmConfig,
    /// Sequences (replies written at once).
    pub(super) sequences: usize,
    /// Speech jobs more urgent than a reply go first: its step waits.
    pub(super) speech: Option<Arc<Gate>>,
}

/// Replies waiting for a sequence, and what `/metrics` reads.
#[derive(Default)]
pub(super) struct Queue {
    pub(super) state: Mutex<Waiting>,
    pub(super) wake: Condvar,
    pub(super) active: AtomicUsize,
    pub(super) tokens: AtomicU64,
}

#[derive(Default)]
pub(super) struct Waiting {
    pub(super) jobs: Vec<Job>,
    pub(super) closed: bool,
    /// The generation thread died (a panic): no reply will be written again.
    pub(super) failed: bool,
    /// The generation thread has ended (it is no longer inside llama.cpp).
    pub(super) stopped: bool,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replies waiting for a sequence (whose caller still waits).
    pub(super) fn queued(&self) -> usize {
        self.lock().jobs.iter().filter(|j| !j.cancelled()).count()
    }

    pub(super) fn push(&self, job: Job) -> Result<()> {
        let mut state = self.lock();
        if state.failed {
            return Err(anyhow!(
                "the LLM engine has stopped (see the log); voxd must restart"
            ));
        }
        if state.closed {
            return Err(anyhow!("LLM is shutting down"));
        }
        state.jobs.push(job);
        self.wake.notify_all();
        Ok(())
    }

    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_all();
    }

    /// The generation thread died: refuse new replies, and end the waiting ones (their
    /// readers see their streams end).
    pub(super) fn fail(&self) {
        let mut state = self.lock();
        (state.closed, state.failed) = (true, true);
        state.jobs.clear();
        self.wake.notify_all();
    }

    pub(super) fn failed(&self) -> bool {
        self.lock().failed
    }

    /// Waits until the generation thread has ended, at most until `deadline`.
    pub(super) fn wait_stopped(&self, deadline: std::time::Instant) {
        let mut state = self.lock();
        while !state.stopped {
            let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) else {
                return;
            };
            state = self
                .wake
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// Marks the queue stopped when the generation thread ends, and failed if it ends in a
/// panic.
pub(super) struct OnThreadEnd<'a>(pub(super) &'a Queue);

impl Drop for OnThreadEnd<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!(
                "the LLM generation thread panicked: no reply can be written until voxd restarts"
            );
            self.0.fail();
        }
        self.0.lock().stopped = true;
        self.0.wake.notify_all();
    }
}

/// A sequence of the context: the tokens in its KV cache, and the reply it writes.
#[derive(Default)]
struct Sequence {
    cached: Vec<LlamaToken>,
    used: u64,
    reply: Option<Reply>,
}

struct Reply {
    job: Job,
    sampler: LlamaSampler,
    prompt: Vec<LlamaToken>,
    /// Prompt tokens that were already cached.
    kept: usize,
    /// Prompt tokens in the cache so far.
    fed: usize,
    /// The token sampled last, fed at the next step.
    next: Option<LlamaToken>,
    generated: usize,
    limit: usize,
    /// Bytes of a character split across tokens.
    pending: Vec<u8>,
}

/// The thread: creates the context, says it is ready, then writes replies until the queue
/// closes.
pub(super) fn run(shared: &Shared, queue: &Queue, ready: &mpsc::Sender<Result<()>>) {
    let mut ctx = match context(shared) {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let mut engine = Engine {
        shared,
        queue,
        seqs: (0..shared.sequences).map(|_| Sequence::default()).collect(),
        clock: 0,
        batch: LlamaBatch::new(PROMPT_STEP + shared.sequences, 1),
    };
    while engine.take_jobs(&mut ctx) {
        engine.drop_cancelled();
        let urgent_speech = shared.speech.as_ref().and_then(|g| g.earliest());
        let planned = engine.planned();
        let step = plan::plan(&planned, Instant::now(), LEAD, urgent_speech, PROMPT_STEP);
        if step.is_empty() {
            engine.wait_until_due(&planned);
            continue;
        }
        engine.step(&mut ctx, &step);
    }
}

fn context(shared: &Shared) -> Result<LlamaContext<'_>> {
    let per_seq = shared.cfg.context_tokens;
    let n = shared.sequences as u32;
    let threads = shared.cfg.threads.max(1) as i32;
    let batch = (PROMPT_STEP + shared.sequences) as u32;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(per_seq * n))
        .with_n_seq_max(n)
        .with_kv_unified(false)
        .with_n_batch(batch)
        .with_n_ubatch(batch)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    shared
        .model
        .new_context(backend()?, params)
        .map_err(|e| anyhow!("cannot create LLM context: {e}"))
}

struct Engine<'a> {
    shared: &'a Shared,
    queue: &'a Queue,
    seqs: Vec<Sequence>,
    clock: u64,
    batch: LlamaBatch<'static>,
}

impl Engine<'_> {
    /// Starts waiting replies on idle sequences, earliest deadline first; blocks while
    /// there is nothing to do. False once the queue is closed.
    fn take_jobs(&mut self, ctx: &mut LlamaContext) -> bool {
        let mut state = self.queue.lock();
        loop {
            state.jobs.retain(|j| !j.cancelled());
            let idle = self.seqs.iter().any(|s| s.reply.is_none());
            if idle && !state.jobs.is_empty() {
                let first = (0..state.jobs.len())
                    .min_by_key(|&i| (state.jobs[i].due.get(), i))
                    .unwrap_or(0);
                let job = state.jobs.remove(first);
                drop(state);
                self.start(ctx, job);
                state = self.queue.lock();
                continue;
            }
            if state.closed {
                // Shutting down: replies still being written end here (their readers see
                // the stream end), so the thread never outlives the model.
                return false;
            }
            if self.seqs.iter().any(|s| s.reply.is_some()) {
                return true;
            }
            state = self
                .queue
                .wake
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Sleeps until the earliest reply falls due or a new one arrives ([`plan::idle_wait`];
    /// a waiting job has no idle sequence here: `take_jobs` started the others).
    fn wait_until_due(&self, planned: &[Option<Active>]) {
        let left = plan::idle_wait(planned, Instant::now(), LEAD);
        let state = self.queue.lock();
        let _ = self.queue.wake.wait_timeout(state, left);
    }

    fn planned(&self) -> Vec<Option<Active>> {
        self.seqs
            .iter()
            .map(|s| {
                s.reply.as_ref().map(|r| Active {
                    due: r.job.due.get(),
                    prompt_left: r.prompt.len() - r.fed,
                })
            })
            .collect()
    }

    /// Tokenizes the job's prompt (trimmed to fit a sequence) and puts it on the idle
    /// sequence that wastes least of the cache, with another sequence's cache copied there
    /// first when that holds a longer start of the prompt.
    fn start(&mut self, ctx: &mut LlamaContext, job: Job) {
        let out = job.out.clone();
        if let Err(e) = self.try_start(ctx, job) {
            let _ = out.send(LlmEvent::Error(e.to_string()));
        }
    }

    fn try_start(&mut self, ctx: &mut LlamaContext, job: Job) -> Result<()> {
        let shared = self.shared;
        let budget =
            (shared.cfg.context_tokens as usize).saturating_sub(job.max_tokens as usize + 8);
        let prompt = fit_prompt(&job.messages, budget, |msgs| {
            let text = render(&shared.model, &shared.template, msgs)?;
            Ok(shared.model.vocab().tokenize(text.as_bytes(), false, true))
        })?;
        if prompt.is_empty() {
            return Err(anyhow!("the prompt is empty"));
        }
        let sequences = self.seqs.iter().enumerate().map(|(index, s)| Cached {
            index,
            cached: s.cached.as_slice(),
            used: s.used,
            busy: s.reply.is_some(),
        });
        let Seat {
            index,
            kept,
            copy_from,
        } = choose_sequence(sequences, &prompt).ok_or_else(|| anyhow!("no idle sequence"))?;
        let sampler = sampler(shared, job.grammar.as_ref().map(|g| g.gbnf.as_str()))?;
        if let Some(from) = copy_from {
            // The whole cache (llama.cpp copies whole sequences; the buffer moves before the
            // next decode), cut to the shared start below.
            ctx.copy_kv_cache_seq(from as i32, index as i32, None, None)?;
            self.seqs[index].cached = self.seqs[from].cached[..kept].to_vec();
        }
        self.clock += 1;
        let seq = &mut self.seqs[index];
        seq.used = self.clock;
        let kept = match ctx.clear_kv_cache_seq(Some(index as u32), Some(kept as u32), None) {
            Ok(true) => kept,
            _ => {
                ctx.clear_kv_cache_seq(Some(index as u32), None, None)?;
                0
            }
        };
        seq.cached.truncate(kept);
        seq.reply = Some(Reply {
            limit: job.max_tokens as usize,
            job,
            sampler,
            prompt,
            kept,
            fed: kept,
            next: None,
            generated: 0,
            pending: Vec::new(),
        });
        self.queue.active.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Ends the replies whose stream was dropped; their sequences keep what is cached.
    fn drop_cancelled(&mut self) {
        for i in 0..self.seqs.len() {
            if self.seqs[i]
                .reply
                .as_ref()
                .is_some_and(|r| r.job.cancelled())
            {
                self.finish(i, false);
            }
        }
    }

    /// One decoding step: the planned tokens of every sequence in one batch.
    fn step(&mut self, ctx: &mut LlamaContext, step: &plan::Step) {
        let mut logits = Vec::new();
        if let Err(e) = self.fill(step, &mut logits) {
            self.fail(ctx, step, &e);
            return;
        }
        if let Err(e) = ctx.decode(&mut self.batch) {
            self.fail(ctx, step, &anyhow!("LLM decoding failed: {e}"));
            return;
        }
        for (i, at) in logits {
            self.sampled(ctx, i, at);
        }
    }

    /// Puts the step's tokens in the batch; notes which sequences get logits, and where.
    fn fill(&mut self, step: &plan::Step, logits: &mut Vec<(usize, i32)>) -> Result<()> {
        self.batch.clear();
        for &i in &step.generate {
            let seq = &mut self.seqs[i];
            let reply = seq.reply.as_mut().context("a planned sequence is idle")?;
            let token = reply
                .next
                .take()
                .context("a generating sequence has no token")?;
            self.batch
                .add(token, seq.cached.len() as i32, &[i as i32], true)?;
            seq.cached.push(token);
            logits.push((i, self.batch.n_tokens() - 1));
        }
        for &(i, n) in &step.prompt {
            let seq = &mut self.seqs[i];
            let reply = seq.reply.as_mut().context("a planned sequence is idle")?;
            let end = reply.fed + n;
            for pos in reply.fed..end {
                let last = pos == reply.prompt.len() - 1;
                self.batch
                    .add(reply.prompt[pos], pos as i32, &[i as i32], last)?;
            }
            seq.cached.extend_from_slice(&reply.prompt[reply.fed..end]);
            reply.fed = end;
            if end == reply.prompt.len() {
                logits.push((i, self.batch.n_tokens() - 1));
            }
        }
        Ok(())
    }

    /// Samples sequence `i`'s next token from the logits at `at` and streams its text;
    /// ends the reply at its end, its limit, or when nobody reads it any more.
    fn sampled(&mut self, ctx: &mut LlamaContext, i: usize, at: i32) {
        let shared = self.shared;
        let Some(reply) = self.seqs[i].reply.as_mut() else {
            return;
        };
        let end = match advance(shared, reply, ctx, at) {
            Sampled::Token(token) => {
                self.queue.tokens.fetch_add(1, Ordering::Relaxed);
                if reply.generated >= reply.limit {
                    Some(true)
                } else {
                    reply.next = Some(token);
                    None
                }
            }
            Sampled::End => Some(true),
            Sampled::Unread => Some(false),
        };
        if let Some(done) = end {
            self.finish(i, done);
        }
    }

    /// Ends sequence `i`'s reply (saying so when `done`); the sequence keeps its cache
    /// (after every decoded step the KV cache holds exactly `cached`).
    fn finish(&mut self, i: usize, done: bool) {
        let Some(reply) = self.seqs[i].reply.take() else {
            return;
        };
        self.queue.active.fetch_sub(1, Ordering::Relaxed);
        if done {
            let _ = reply.job.out.send(LlmEvent::Done {
                prompt_tokens: reply.prompt.len(),
                prompt_evaluated: reply.prompt.len() - reply.kept,
                generated: reply.generated,
            });
        }
    }

    /// A failed step ends the replies in it with the error; their caches are dropped.
    fn fail(&mut self, ctx: &mut LlamaContext, step: &plan::Step, e: &anyhow::Error) {
        let involved = step
            .generate
            .iter()
            .chain(step.prompt.iter().map(|(i, _)| i));
        for &i in involved {
            if let Some(reply) = self.seqs[i].reply.as_ref() {
                let _ = reply.job.out.send(LlmEvent::Error(e.to_string()));
            }
            self.finish(i, false);
            self.seqs[i].cached.clear();
            let _ = ctx.clear_kv_cache_seq(Some(i as u32), None, None);
        }
    }
}

/// What sampling gave.
enum Sampled {
    /// A token of the reply, its text sent.
    Token(LlamaToken),
    /// The model ended the reply.
    End,
    /// Nobody reads the reply any more.
    Unread,
}

/// Samples the reply's next token and sends its text.
fn advance(shared: &Shared, reply: &mut Reply, ctx: &LlamaContext, at: i32) -> Sampled {
    let vocab = shared.model.vocab();
    // `sample` also accepts the token (a second accept would break the grammar).
    let token = reply.sampler.sample(ctx, at);
    if vocab.is_eog(token) {
        return Sampled::End;
    }
    reply.generated += 1;
    reply
        .pending
        .extend_from_slice(&vocab.token_to_piece(token, false, None));
    let valid = match std::str::from_utf8(&reply.pending) {
        Ok(s) => s.len(),
        Err(e) => e.valid_up_to(),
    };
    if valid > 0 {
        let text = String::from_utf8_lossy(&reply.pending[..valid]).into_owned();
        reply.pending.drain(..valid);
        // A tool call that has begun may run past the length limit: the grammar bounds
        // it, and it must not be cut off.
        if let Some(g) = reply.job.grammar.as_ref().filter(|_| text.contains('<')) {
            reply.limit = reply.limit.max(reply.generated + g.tail_tokens);
        }
        if reply.job.out.send(LlmEvent::Text(text)).is_err() {
            return Sampled::Unread;
        }
    }
    Sampled::Token(token)
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
    let prompt = model
        .apply_chat_template(template, &chat, true)
        .map_err(|e| anyhow!("chat template failed: {e}"))?;
    Ok(without_thinking(prompt, template.to_str().unwrap_or("")))
}

/// A template that can think aloud first (Qwen3: `enable_thinking`) is told not to, as its
/// own `enable_thinking=false` branch does: an empty `<think></think>` opens the reply.
/// (llama.cpp's built-in template engine renders such a template as plain ChatML and never
/// takes that branch; a caller must not wait for, or hear, the model's thinking.)
fn without_thinking(prompt: String, template: &str) -> String {
    if template.contains("enable_thinking") {
        prompt + "<think>\n\n</think>\n\n"
    } else {
        prompt
    }
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
    fn a_template_that_thinks_is_told_not_to() {
        let qwen3 = "{%- if enable_thinking is defined and enable_thinking is false %}";
        let prompt = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n".to_string();
        assert_eq!(
            without_thinking(prompt.clone(), qwen3),
            format!("{prompt}<think>\n\n</think>\n\n")
        );
        assert_eq!(without_thinking(prompt.clone(), "{{ messages }}"), prompt);
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
