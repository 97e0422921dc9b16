//! `voxd bench llm`: what batched generation buys. For each N, N replies are written one
//! after the other, then N at once (sequences of the one batched context), to their full
//! length (`llm.max_reply_tokens`); it prints tokens per second both ways and each reply's
//! time to its first token when they run together.

use std::time::Instant;

use anyhow::Result;
use futures_util::future::join_all;

use crate::config::Config;
use crate::engines::llm::Llm;
use crate::engines::{ChatMessage, Role};

/// What writing replies took.
struct Written {
    tokens: usize,
    secs: f64,
    first_token_ms: Vec<f64>,
}

/// Measures each number of simultaneous replies in `parallel`, `runs` times each.
pub async fn run(cfg: Config, parallel: &[usize], runs: usize) -> Result<()> {
    let most = parallel.iter().copied().max().unwrap_or(1).max(1);
    let llm = {
        let cfg = cfg.clone();
        tokio::task::spawn_blocking(move || Llm::load(&cfg.models.llm, &cfg.llm, most, None))
            .await??
    };
    println!(
        "{} sequences, {} threads, replies of up to {} tokens",
        most, cfg.llm.threads, cfg.llm.max_reply_tokens
    );
    let mut nonce = 0usize;
    let mut prompts = |n: usize| -> Vec<Vec<ChatMessage>> {
        (0..n)
            .map(|_| {
                nonce += 1;
                story(&cfg, nonce)
            })
            .collect()
    };
    // Warm-up: the first evaluation of the system prompt.
    write(&llm, prompts(1), false).await?;
    println!(
        "\n| replies | one at a time | together | speed-up | first token p50 / max, together |\n|---|---|---|---|---|"
    );
    for &n in parallel {
        let n = n.max(1);
        let (mut alone, mut together) = (Vec::new(), Vec::new());
        for _ in 0..runs.max(1) {
            alone.push(write(&llm, prompts(n), false).await?);
            together.push(write(&llm, prompts(n), true).await?);
        }
        let rate = |w: &[Written]| {
            let tokens: usize = w.iter().map(|w| w.tokens).sum();
            tokens as f64 / w.iter().map(|w| w.secs).sum::<f64>()
        };
        let (a, t) = (rate(&alone), rate(&together));
        let mut first: Vec<f64> = together
            .into_iter()
            .flat_map(|w| w.first_token_ms)
            .collect();
        let max = first.iter().copied().fold(0.0, f64::max);
        println!(
            "| {n} | {a:.1} tokens/s | {t:.1} tokens/s | {:.2}× | {:.0} / {max:.0} ms |",
            t / a,
            super::median(&mut first),
        );
    }
    Ok(())
}

/// A first turn asking for a long story (numbered, so no two prompts share a cache).
fn story(cfg: &Config, n: usize) -> Vec<ChatMessage> {
    vec![
        ChatMessage::new(Role::System, cfg.llm.system_prompt.clone()),
        ChatMessage::new(
            Role::User,
            format!("Caller {n} here. Please tell me a long story about your company."),
        ),
    ]
}

/// Writes a reply to each prompt, one after the other or all at once.
async fn write(llm: &Llm, prompts: Vec<Vec<ChatMessage>>, together: bool) -> Result<Written> {
    let t = Instant::now();
    let replies: Vec<(usize, f64)> = if together {
        let streams = prompts
            .into_iter()
            .map(|p| llm.reply(p, None))
            .collect::<Result<Vec<_>>>()?;
        join_all(streams.into_iter().map(|s| read(s, t)))
            .await
            .into_iter()
            .collect::<Result<_>>()?
    } else {
        let mut out = Vec::new();
        for p in prompts {
            let stream = llm.reply(p, None)?;
            out.push(read(stream, Instant::now()).await?);
        }
        out
    };
    Ok(Written {
        tokens: replies.iter().map(|r| r.0).sum(),
        secs: t.elapsed().as_secs_f64(),
        first_token_ms: replies.iter().map(|r| r.1).collect(),
    })
}

/// Reads a reply to its end: its tokens and its first token's time since `from` (0 when
/// it wrote no text).
async fn read(stream: crate::engines::TextStream, from: Instant) -> Result<(usize, f64)> {
    let r = super::read_reply(stream).await?;
    let first_ms = r.first.map_or(0.0, |f| (f - from).as_secs_f64() * 1000.0);
    Ok((r.generated, first_ms))
}
