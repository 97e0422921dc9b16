//! `voxd bench stream`: real-time calls measured like a caller would. Each turn plays a
//! question (twenty different spoken ones and recorded English and Russian speech, in
//! turn) at real-time pace over the media stream and measures voice-to-voice twice: from
//! the caller's last voiced frame and from the end of their audio (its trailing silence
//! sent) to the first reply frame received; the daemon's own processing latency (end of
//! turn detected → first reply frame sent) is read from the call.
//! Runs the `streaming` pipeline, then `sequential`, and compares them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use serde_json::Value;

use super::caller::{is_event, Caller};
use super::Question;
use crate::audio::Encoding;
use crate::config::{Config, Pipeline};
use crate::engines::Engines;

/// Runs `turns` turns with each pipeline and prints p50/p95 tables.
pub async fn run(mut cfg: Config, turns: usize) -> Result<()> {
    let turns = turns.max(1);
    cfg.conversation.greeting.clear();
    cfg.server.token.clear();
    // Each turn is a new call, the last one maybe still closing: admission is not measured.
    cfg.calls.max_live = 1024;
    let engines = super::load_engines(&mut cfg).await?;
    let questions = super::questions(engines.tts.clone()).await?;
    println!("{turns} turns per pipeline, {} questions of {:.1}–{:.1} s, PCM16 at 16 kHz, end of turn after {} ms of silence",
        questions.len(),
        questions.iter().map(|q| q.audio.duration_secs()).fold(f64::MAX, f64::min),
        questions.iter().map(|q| q.audio.duration_secs()).fold(0.0, f64::max),
        cfg.conversation.end_of_turn_ms);
    let mut results = Vec::new();
    for (pipeline, name) in [
        (Pipeline::Streaming, "streaming"),
        (Pipeline::Sequential, "sequential"),
    ] {
        let mut c = cfg.clone();
        c.conversation.pipeline = pipeline;
        results.push((
            name,
            measure(c, engines.clone(), &questions, turns, name).await?,
        ));
    }
    println!(
        "\n| pipeline | from the last voiced frame p50 | p95 | from the end of the audio p50 | p95 | processing p50 | p95 |\n|---|---|---|---|---|---|---|"
    );
    for (pipeline, m) in &mut results {
        println!(
            "| {pipeline} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms |",
            super::median(&mut m.from_voice),
            super::percentile(&mut m.from_voice, 95.0),
            super::median(&mut m.from_end),
            super::percentile(&mut m.from_end, 95.0),
            super::median(&mut m.processing),
            super::percentile(&mut m.processing, 95.0)
        );
    }
    let (s, q) = (
        super::median(&mut results[0].1.processing),
        super::median(&mut results[1].1.processing),
    );
    println!(
        "\ntime to first audio, streaming / sequential (processing p50): {:.2}",
        s / q
    );
    Ok(())
}

/// Latencies (ms) of one pipeline's turns.
#[derive(Default)]
struct Measured {
    /// Voice to voice, from the caller's last voiced frame.
    from_voice: Vec<f64>,
    /// Voice to voice, from the end of the caller's audio.
    from_end: Vec<f64>,
    /// voxd's own: end of turn detected → first reply frame sent.
    processing: Vec<f64>,
}

/// The latencies of `turns` turns of `pipeline`, each on a fresh call.
async fn measure(
    cfg: Config,
    engines: Arc<Engines>,
    questions: &[Question],
    turns: usize,
    pipeline: &str,
) -> Result<Measured> {
    let api = super::spawn_api(cfg, engines).await?;
    let http = reqwest::Client::new();
    let mut m = Measured::default();
    // One warm-up turn, not counted.
    for i in 0..=turns {
        let call_id = format!("bench-{pipeline}-{}-{i}", super::run_tag());
        let mut caller = Caller::connect(api, "", None).await?;
        caller.start(Encoding::Pcm16, &call_id).await?;
        let question = &questions[i % questions.len()];
        caller.stream(&question.audio).await?;
        let spoken = Instant::now();
        let first = caller
            .wait_for(0, "reply audio", Duration::from_secs(60), |v| {
                is_event(v, "media")
            })
            .await?;
        let heard_at = caller.messages()[first].at;
        let call: Value = http
            .get(format!("http://{api}/voximplant/calls/{call_id}"))
            .send()
            .await?
            .json()
            .await?;
        let ms = call["reply_latencies_ms"]
            .as_array()
            .and_then(|a| a.last())
            .and_then(Value::as_f64);
        caller.close().await;
        if i == 0 {
            continue;
        }
        let from_end = (heard_at - spoken).as_secs_f64() * 1000.0;
        m.from_end.push(from_end);
        m.from_voice
            .push(from_end + question.tail.as_secs_f64() * 1000.0);
        m.processing
            .push(ms.ok_or_else(|| anyhow!("the call reported no reply latency: {call}"))?);
    }
    Ok(m)
}
