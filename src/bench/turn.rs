//! `voxd bench turn`: latency of the recording-URL turn, measured through the real HTTP API
//! on loopback; prints per-engine figures, per-stage medians of the whole turn, and the
//! progressive mode's moments (words answered, first reply audio bytes, reply complete) for
//! MP3 and WAV replies, turn about, as Markdown tables.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::audio::{resample, wav, Pcm, STT_RATE};
use crate::config::{Config, ReplyFormat};
use crate::conversation::prompt;
use crate::engines::Engines;
use crate::engines::{ChatMessage, Role};

/// A typical reply, for the voice's own figure.
const REPLY: &str = "We open at nine in the morning. Is there anything else I can help you with?";

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
    let runs = runs.max(1);
    cfg.download.allow_private = true;
    // Every measured turn is a new call that is never ended: admission is not measured here.
    cfg.calls.max_live = 1024;
    let engines = super::load_engines(&mut cfg).await?;

    // The caller's utterance as Voximplant records it: 8 kHz mono.
    let e = engines.clone();
    let spoken = tokio::task::spawn_blocking(move || e.tts.synthesize(UTTERANCE)).await??;
    let spoken = resample::to_rate(spoken, 8000)?;
    println!("utterance: {:.2} s, {UTTERANCE:?}", spoken.duration_secs());
    engine_figures(&engines, cfg.llm.system_prompt.clone(), &spoken, runs).await?;
    let bytes = wav::encode(&spoken)?;

    let files = TcpListener::bind("127.0.0.1:0").await?;
    let files_addr = files.local_addr()?;
    let app = Router::new().route("/u.wav", get(move || async move { bytes.clone() }));
    tokio::spawn(async move { axum::serve(files, app).await });

    let api_addr = super::spawn_api(cfg, engines).await?;

    let client = reqwest::Client::new();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); STAGES.len()];
    // One warm-up turn, not counted.
    for i in 0..=runs {
        let t = Instant::now();
        let resp: Value = client
            .post(format!("http://{api_addr}/voximplant/process_audio"))
            .json(&serde_json::json!({"call_id": format!("bench-{}-{i}", super::run_tag()), "audio_url": format!("http://{files_addr}/u.wav")}))
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
    print_rows(STAGES.iter().copied().zip(samples.iter_mut()));
    let url = format!("http://{files_addr}/u.wav");
    let mut progressive = progressive_turns(&client, api_addr, &url, runs).await?;
    println!("\n| progressive turn (request →) | median ms | min ms | max ms |\n|---|---|---|---|");
    let names: Vec<String> = FORMATS
        .iter()
        .flat_map(|f| PROGRESSIVE_MOMENTS.map(|m| format!("{m} ({})", f.extension())))
        .collect();
    print_rows(
        names
            .iter()
            .map(String::as_str)
            .zip(progressive.iter_mut().flatten()),
    );
    Ok(())
}

/// One row per figure: median, min, max.
fn print_rows<'a>(rows: impl Iterator<Item = (&'a str, &'a mut Vec<f64>)>) {
    for (name, vals) in rows {
        vals.sort_by(f64::total_cmp);
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} |",
            super::median(vals),
            vals[0],
            vals[vals.len() - 1]
        );
    }
}

const PROGRESSIVE_MOMENTS: [&str; 3] = [
    "the words answered",
    "first reply audio bytes",
    "reply complete",
];

/// The formats a progressive reply is measured in, turn about.
const FORMATS: [ReplyFormat; 2] = [ReplyFormat::Mp3, ReplyFormat::Wav];

/// `runs` progressive turns in each of [`FORMATS`] (after a warm-up of each), one format
/// after the other: per format, when after the request the words were answered, the reply's
/// first audio bytes arrived (a WAV's after its header), and its audio ended.
async fn progressive_turns(
    client: &reqwest::Client,
    api: std::net::SocketAddr,
    audio_url: &str,
    runs: usize,
) -> Result<Vec<Vec<Vec<f64>>>> {
    let mut moments = vec![vec![Vec::new(); PROGRESSIVE_MOMENTS.len()]; FORMATS.len()];
    for i in 0..=runs {
        for (f, format) in FORMATS.iter().enumerate() {
            let t = Instant::now();
            let call_id = format!("bench-progressive-{}-{i}-{f}", super::run_tag());
            let resp: Value = client
                .post(format!("http://{api}/voximplant/process_audio"))
                .json(
                    &serde_json::json!({"call_id": call_id, "audio_url": audio_url,
                    "progressive": true, "format": format.extension()}),
                )
                .send()
                .await?
                .json()
                .await
                .context("progressive bench turn failed")?;
            let answered = t.elapsed();
            let reply = resp["reply_audio_url"]
                .as_str()
                .ok_or_else(|| anyhow!("progressive turn failed: {resp}"))?;
            let header = match format {
                ReplyFormat::Wav => wav::HEADER_BYTES,
                ReplyFormat::Mp3 => 0,
            };
            let mut audio = client.get(reply).send().await?;
            let (mut bytes, mut first) = (0, None);
            while let Some(chunk) = audio.chunk().await? {
                bytes += chunk.len();
                if first.is_none() && bytes > header {
                    first = Some(t.elapsed());
                }
            }
            let complete = t.elapsed();
            let first = first.ok_or_else(|| anyhow!("the progressive reply had no audio"))?;
            if i == 0 {
                continue;
            }
            for (k, d) in [answered, first, complete].iter().enumerate() {
                moments[f][k].push(d.as_secs_f64() * 1000.0);
            }
        }
    }
    Ok(moments)
}

/// Each engine on its own: Whisper and Piper real-time factors, LLM tokens per second.
async fn engine_figures(
    engines: &Arc<Engines>,
    system_prompt: String,
    spoken: &Pcm,
    runs: usize,
) -> Result<()> {
    let e = engines.clone();
    let audio = resample::to_rate(spoken.clone(), STT_RATE)?;
    let (stt_ms, tts_ms, tts_secs) = tokio::task::spawn_blocking(move || -> Result<_> {
        let mut stt = Vec::new();
        let mut tts = Vec::new();
        let mut secs = 0.0;
        for _ in 0..runs {
            let t = Instant::now();
            e.stt.transcribe(&audio.samples)?;
            stt.push(t.elapsed().as_secs_f64() * 1000.0);
            let t = Instant::now();
            secs = e.tts.synthesize(REPLY)?.duration_secs();
            tts.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        Ok((stt, tts, secs))
    })
    .await??;
    let mut gen_rates = Vec::new();
    let mut prompt_ms = Vec::new();
    for i in 0..runs {
        // A different question each time, so no run reuses the previous prompt's cache.
        let mut messages = prompt::head(&system_prompt, None, false);
        messages.push(ChatMessage::new(
            Role::User,
            format!("Question {i}: {UTTERANCE}"),
        ));
        let stream = engines.llm.reply(messages, None)?;
        let t = Instant::now();
        let r = super::read_reply(stream).await?;
        let first = r.first.unwrap_or(r.done);
        prompt_ms.push((first - t).as_secs_f64() * 1000.0);
        gen_rates.push(r.generated.saturating_sub(1) as f64 / (r.done - first).as_secs_f64());
    }
    let secs = spoken.duration_secs();
    println!("\n| engine | median | note |\n|---|---|---|");
    println!(
        "| whisper | {:.0} ms, RTF {:.2} | {secs:.2} s utterance |",
        super::median(&mut stt_ms.clone()),
        super::median(&mut stt_ms.clone()) / 1000.0 / secs
    );
    println!(
        "| llm prompt + first token | {:.0} ms | system prompt cached, new question |",
        super::median(&mut prompt_ms)
    );
    println!(
        "| llm generation | {:.1} tokens/s | up to llm.max_reply_tokens |",
        super::median(&mut gen_rates)
    );
    println!(
        "| piper | {:.0} ms, RTF {:.2} | {tts_secs:.2} s of speech |",
        super::median(&mut tts_ms.clone()),
        super::median(&mut tts_ms.clone()) / 1000.0 / tts_secs
    );
    Ok(())
}
