//! A generation worker: one llama.cpp context per thread, the tokens in its KV cache (so a
//! conversation that grows turn by turn only evaluates its new tokens), the sampler chain
//! (greedy or sampled, under an optional grammar) and the prompt trimmed to the context.

use std::num::NonZeroU32;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Mutex};

use anyhow::{anyhow, Context, Result};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;

use super::{backend, ChatMessage, Job, LlmEvent, Role};
use crate::config::LlmConfig;

pub(super) struct Shared {
    pub(super) model: LlamaModel,
    pub(super) template: LlamaChatTemplate,
    pub(super) cfg: LlmConfig,
}

/// One worker thread: creates its context, says it is ready, then serves jobs until the
/// queue closes.
pub(super) fn run(
    shared: &Shared,
    rx: &Mutex<mpsc::Receiver<Job>>,
    ready: &mpsc::Sender<Result<()>>,
) {
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

    let mut sampler = sampler(shared, job.grammar.as_ref().map(|g| g.gbnf.as_str()))?;
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
            if let Some(g) = job.grammar.as_ref().filter(|_| text.contains('<')) {
                limit = limit.max(generated + g.tail_tokens);
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
