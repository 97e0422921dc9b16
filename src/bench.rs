//! `voxd bench`: latency of the recording-URL turn on the configured models, measured
//! through the real HTTP API on loopback; prints per-stage medians as a Markdown table.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::audio::{resample, wav};
use crate::config::Config;
use crate::engines::Engines;
use crate::server::{router, AppState};

/// The spoken question, about 3 s long with the test voice.
pub const UTTERANCE: &str = "Hello, can you tell me when your office opens tomorrow?";

const STAGES: [&str; 8] = [
    "download",
    "decode",
    "stt",
    "llm_first_token",
    "llm",
    "tts",
    "total",
    "client",
];

/// Runs `runs` turns (each on a fresh call) and prints the median of each stage.
pub async fn run(mut cfg: Config, runs: usize) -> Result<()> {
    cfg.download.allow_private = true;
    // The same utterance every run, so runs and settings compare.
    cfg.tts.deterministic = true;
    let t = Instant::now();
    let engines = Arc::new(
        tokio::task::spawn_blocking({
            let cfg = cfg.clone();
            move || Engines::load(&cfg)
        })
        .await??,
    );
    println!(
        "models loaded in {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );

    // The caller's utterance as Voximplant records it: 8 kHz mono.
    let e = engines.clone();
    let spoken = tokio::task::spawn_blocking(move || e.tts.synthesize(UTTERANCE)).await??;
    let spoken = resample::to_rate(spoken, 8000)?;
    println!("utterance: {:.2} s, {UTTERANCE:?}", spoken.duration_secs());
    let bytes = wav::encode(&spoken)?;

    let files = TcpListener::bind("127.0.0.1:0").await?;
    let files_addr = files.local_addr()?;
    let app = Router::new().route("/u.wav", get(move || async move { bytes.clone() }));
    tokio::spawn(async move { axum::serve(files, app).await });

    let api = TcpListener::bind("127.0.0.1:0").await?;
    let api_addr = api.local_addr()?;
    let state = Arc::new(AppState::new(cfg, engines, api_addr));
    tokio::spawn(async move { axum::serve(api, router(state)).await });

    let client = reqwest::Client::new();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); STAGES.len()];
    // One warm-up turn, not counted.
    for i in 0..=runs {
        let t = Instant::now();
        let resp: Value = client
            .post(format!("http://{api_addr}/voximplant/process_audio"))
            .json(&serde_json::json!({"call_id": format!("bench-{i}"), "audio_url": format!("http://{files_addr}/u.wav")}))
            .send()
            .await?
            .json()
            .await
            .context("bench turn failed")?;
        let client_ms = t.elapsed().as_secs_f64() * 1000.0;
        let timings = resp
            .get("timings_ms")
            .ok_or_else(|| anyhow!("turn failed: {resp}"))?;
        if i == 0 {
            println!(
                "heard: {:?}; replied: {:?}",
                resp["user_text"], resp["reply_text"]
            );
            continue;
        }
        for (k, stage) in STAGES.iter().enumerate() {
            let v = if *stage == "client" {
                client_ms
            } else {
                timings[stage].as_f64().unwrap_or(0.0)
            };
            samples[k].push(v);
        }
    }
    println!("\n| stage | median ms | min ms | max ms |\n|---|---|---|---|");
    for (stage, vals) in STAGES.iter().zip(samples.iter_mut()) {
        vals.sort_by(f64::total_cmp);
        println!(
            "| {stage} | {:.0} | {:.0} | {:.0} |",
            median(vals),
            vals[0],
            vals[vals.len() - 1]
        );
    }
    Ok(())
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}
