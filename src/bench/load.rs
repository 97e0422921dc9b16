//! `voxd bench load`: N simultaneous media-stream callers, as on a server with several
//! lines. Each caller asks questions at real-time pace (PCM16; twenty different spoken ones
//! and recorded English and Russian speech), the callers staggered so their turns overlap;
//! every turn's voice-to-voice latency (from the caller's last voiced frame, and from the end
//! of their audio, to the first reply frame received) is measured, with the turns left
//! unanswered, the calls voxd
//! refused as busy, the gaps inside replies (voxd's `reply_gap` metric: silence while a
//! reply's next piece was not ready) and the daemon's resident memory (its
//! `process_resident_memory_bytes`). Runs against an in-process voxd on the configured
//! models (whose memory then includes the callers'), or against a running one (`--url`, e.g.
//! an older build).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::caller::{is_event, is_type, Caller};
use super::Question;
use crate::audio::Encoding;
use crate::config::Config;
use crate::engines::tts::Tts;

/// A reply that has not started this long after the question is counted unanswered.
const UNANSWERED: Duration = Duration::from_secs(20);
/// How long a caller listens for a refusal after connecting.
const REFUSAL_WAIT: Duration = Duration::from_millis(500);

/// What one caller saw.
#[derive(Default)]
struct CallerResult {
    refused: bool,
    /// Voice to voice, from the end of the caller's audio and from their last voiced frame.
    latencies_ms: Vec<f64>,
    from_voice_ms: Vec<f64>,
    unanswered: usize,
}

/// One row of the table.
struct Row {
    calls: usize,
    latencies_ms: Vec<f64>,
    from_voice_ms: Vec<f64>,
    unanswered: usize,
    refused: usize,
    /// Gaps inside replies and their total seconds (None: the voxd does not count them).
    gaps: Option<(f64, f64)>,
    rss_mb: Option<(f64, f64, f64)>,
}

/// Measures each number of simultaneous callers in `calls`, `turns` turns per caller.
pub async fn run(
    mut cfg: Config,
    calls: &[usize],
    turns: usize,
    url: Option<SocketAddr>,
) -> Result<()> {
    let turns = turns.max(1);
    cfg.conversation.greeting.clear();
    cfg.server.token.clear();
    let (api, questions) = match url {
        Some(addr) => {
            // Only the voice is needed, to speak the questions.
            let tts = Tts::load(&cfg.models, &cfg.tts, 1).context("loading the voice")?;
            let questions = super::questions(Arc::new(tts)).await?;
            println!("voxd at {addr} (its own configuration; greeting and token must be off)");
            (addr, questions)
        }
        None => {
            let engines = super::load_engines(&mut cfg).await?;
            let questions = super::questions(engines.tts.clone()).await?;
            println!(
                "in-process voxd, capacity {} (calls.max_live = {})",
                engines.capacity, cfg.calls.max_live
            );
            (super::spawn_api(cfg, engines).await?, questions)
        }
    };
    let mut rows = Vec::new();
    for &n in calls {
        rows.push(measure(api, n.max(1), turns, &questions).await?);
    }
    println!(
        "\n| simultaneous calls | from the last voiced frame p50 | p95 | from the end of the audio p50 | p95 | max | unanswered turns | refused calls | gaps in replies | RSS before / peak / after |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for row in &mut rows {
        let rss = row
            .rss_mb
            .map_or("n/a (an older voxd)".into(), |(b, p, a)| {
                format!("{b:.0} / {p:.0} / {a:.0} MB")
            });
        let max = row.latencies_ms.iter().copied().fold(0.0, f64::max);
        let gaps = row.gaps.map_or("n/a".into(), |(n, secs)| {
            format!("{n:.0} ({:.0} ms in all)", secs * 1000.0)
        });
        println!(
            "| {} | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {} | {} | {gaps} | {rss} |",
            row.calls,
            super::median(&mut row.from_voice_ms) / 1000.0,
            super::percentile(&mut row.from_voice_ms, 95.0) / 1000.0,
            super::median(&mut row.latencies_ms) / 1000.0,
            super::percentile(&mut row.latencies_ms, 95.0) / 1000.0,
            max / 1000.0,
            row.unanswered,
            row.refused,
        );
    }
    Ok(())
}

/// `calls` callers at once, each starting 700 ms after the one before.
async fn measure(
    api: SocketAddr,
    calls: usize,
    turns: usize,
    questions: &[Question],
) -> Result<Row> {
    let gaps_before = reply_gaps(api).await;
    let before = resident_mb(api, None).await;
    let peak = Arc::new(AtomicU64::new(before.unwrap_or(0.0).to_bits()));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn({
        let (peak, done) = (peak.clone(), done.clone());
        async move {
            while !done.load(Ordering::Relaxed) {
                let now = resident_mb(api, None).await.unwrap_or(0.0);
                if now > f64::from_bits(peak.load(Ordering::Relaxed)) {
                    peak.store(now.to_bits(), Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
    let run: u32 = rand::random();
    let tasks: Vec<_> = (0..calls)
        .map(|i| {
            let questions = questions.to_vec();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(700 * i as u64)).await;
                one_caller(
                    api,
                    &format!("load-{}-{calls}-{run}-{i}", super::run_tag()),
                    turns,
                    i,
                    &questions,
                )
                .await
            })
        })
        .collect();
    let mut row = Row {
        calls,
        latencies_ms: Vec::new(),
        from_voice_ms: Vec::new(),
        unanswered: 0,
        refused: 0,
        gaps: None,
        rss_mb: None,
    };
    for task in tasks {
        let r = task.await??;
        row.refused += usize::from(r.refused);
        row.unanswered += r.unanswered;
        row.latencies_ms.extend(r.latencies_ms);
        row.from_voice_ms.extend(r.from_voice_ms);
    }
    done.store(true, Ordering::Relaxed);
    sampler.await?;
    row.gaps = gaps_before
        .zip(reply_gaps(api).await)
        .map(|((n0, s0), (n1, s1))| (n1 - n0, s1 - s0));
    let peak = f64::from_bits(peak.load(Ordering::Relaxed));
    row.rss_mb = before
        .zip(resident_mb(api, None).await)
        .map(|(before, after)| (before, peak.max(after), after));
    Ok(row)
}

/// One caller: connects, is refused or asks `turns` questions, then hangs up.
async fn one_caller(
    api: SocketAddr,
    call_id: &str,
    turns: usize,
    first: usize,
    questions: &[Question],
) -> Result<CallerResult> {
    let mut result = CallerResult::default();
    let mut caller = Caller::connect(api, &format!("?call_id={call_id}"), None).await?;
    tokio::time::sleep(REFUSAL_WAIT).await;
    let busy = caller.messages().iter().any(|m| is_type(&m.json, "busy"));
    if busy || caller.closed().is_some() {
        result.refused = true;
        return Ok(result);
    }
    caller.start(Encoding::Pcm16, call_id).await?;
    for t in 0..turns {
        let from = caller.messages().len();
        let question = &questions[(first + t) % questions.len()];
        caller.stream(&question.audio).await?;
        let spoken = Instant::now();
        let reply = caller
            .wait_for(from, "reply audio", UNANSWERED, |v| is_event(v, "media"))
            .await;
        let Ok(first_frame) = reply else {
            result.unanswered += 1;
            continue;
        };
        let at = caller.messages()[first_frame].at;
        let from_end = at.saturating_duration_since(spoken);
        result.latencies_ms.push(from_end.as_secs_f64() * 1000.0);
        result
            .from_voice_ms
            .push((from_end + question.tail).as_secs_f64() * 1000.0);
        // Listens to the reply to its end before the next question.
        caller
            .wait_for(
                first_frame,
                "end of the reply",
                Duration::from_secs(60),
                |v| is_event(v, "stop"),
            )
            .await?;
    }
    caller.close().await;
    Ok(result)
}

/// The voxd at `api`'s `/metrics` text (None when it does not answer).
/// The `/metrics` text of the voxd at `api` (with the admin `token` where it needs one).
async fn scrape(api: SocketAddr, token: Option<&str>) -> Option<String> {
    let mut req = reqwest::Client::new().get(format!("http://{api}/metrics"));
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        req = req.bearer_auth(t);
    }
    req.send().await.ok()?.text().await.ok()
}

/// The value of the series `name_and_labels` (as written before the value) in `text`.
fn series(text: &str, name_and_labels: &str) -> Option<f64> {
    let prefix = format!("{name_and_labels} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// How many gaps the voxd at `api` has counted inside real-time replies, and their total
/// seconds; None when it does not count them (an older build).
async fn reply_gaps(api: SocketAddr) -> Option<(f64, f64)> {
    let text = scrape(api, None).await?;
    let gap = |name: &str| {
        series(
            &text,
            &format!("{name}{{transport=\"stream\",stage=\"reply_gap\"}}"),
        )
    };
    gap("voxd_stage_seconds_count").zip(gap("voxd_stage_seconds_sum"))
}

/// The resident memory of the voxd at `api` in MB; None when it does not export it.
pub(super) async fn resident_mb(api: SocketAddr, token: Option<&str>) -> Option<f64> {
    let text = scrape(api, token).await?;
    series(&text, "process_resident_memory_bytes").map(|b| b / (1024.0 * 1024.0))
}
