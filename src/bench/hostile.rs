//! `voxd bench hostile --url HOST:PORT`: what a hostile client does to a running voxd, at
//! the scale of the hostile-line acceptance: sockets that send nothing (from another
//! address than the bench's own when voxd is on loopback), half-open sockets (slow-loris),
//! authenticated streams that never start (named calls: do they take places?), a stream of
//! garbage frames, audio pushed far faster than real time, a flood of new-call events
//! (memory and refusals), recording calls whose hang-up never comes, an ended call opened
//! again, a foreign `Host`, the scenario token
//! on an admin endpoint, and a recording URL at the cloud metadata address. Run it with the daemon's own
//! configuration (`--config`): it takes the tokens and timeouts from there. Each line says
//! what was measured and whether voxd held; the command fails if one did not. Its calls
//! (`flood-…`, `garbage`, `too-fast`, …) stay in that voxd's history: measure a staging
//! instance, not the company's line.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::caller::Caller;
use crate::audio::{Encoding, Pcm};
use crate::config::Config;
use crate::http::auth::Tokens;

/// How long past its configured timeout voxd may take to close a socket.
const SLACK: Duration = Duration::from_secs(5);

/// One check's outcome.
struct Line {
    what: String,
    figure: String,
    held: bool,
}

/// Runs every check against the voxd at `url` with `sockets` hostile connections each.
pub async fn run(cfg: Config, url: Option<SocketAddr>, sockets: usize) -> Result<()> {
    let api = url.context("bench hostile measures a running voxd: give --url HOST:PORT")?;
    let tokens = Tokens::from_config(&cfg);
    let t = Timeouts {
        header: Duration::from_secs(cfg.server.header_timeout_secs.max(1)),
        start: Duration::from_secs(cfg.voximplant_stream.start_timeout_secs.max(1)),
    };
    println!("voxd at {api}: {sockets} sockets per check");
    let run = super::run_tag();
    let mut lines = vec![silent(api, sockets * 10, t.header).await?];
    lines.push(half_open(api, sockets, t.header).await?);
    lines.push(never_started(api, sockets, &tokens, t.start, run).await?);
    lines.push(garbage(api, &tokens, run).await?);
    lines.push(too_fast(api, &tokens, run).await?);
    lines.push(event_flood(api, &tokens, run).await?);
    lines.push(reopen(api, &tokens, run).await?);
    let idle = Duration::from_secs(cfg.calls.recording_idle_secs);
    lines.push(lost_hang_ups(api, &tokens, run, idle).await?);
    lines.push(foreign_host(api).await?);
    lines.push(scope(api, &tokens).await?);
    lines.push(metadata_url(api, &tokens).await?);
    println!("\n| check | measured | held |\n|---|---|---|");
    for l in &lines {
        println!(
            "| {} | {} | {} |",
            l.what,
            l.figure,
            if l.held { "yes" } else { "NO" }
        );
    }
    if lines.iter().any(|l| !l.held) {
        bail!("voxd did not hold on every check");
    }
    Ok(())
}

struct Timeouts {
    header: Duration,
    start: Duration,
}

/// `n` sockets that send nothing at all, from another loopback address than the bench's own
/// when voxd is on loopback (a stranger's): how many voxd closes (or refuses) within its
/// header timeout, and whether `/health` answers the bench at once meanwhile.
async fn silent(api: SocketAddr, n: usize, header_timeout: Duration) -> Result<Line> {
    let opened = Instant::now();
    let mut waits = Vec::new();
    for _ in 0..n {
        let socket = tokio::net::TcpSocket::new_v4()?;
        if api.ip().is_loopback() {
            socket.bind("127.0.0.2:0".parse()?)?;
        }
        let s = socket.connect(api).await?;
        waits.push(tokio::spawn(closed_after(s, opened, header_timeout)));
    }
    let (health, answered) = timed_health(api).await;
    let (closed, last) = gather(waits).await?;
    let quick = answered.is_some_and(|t| t < Duration::from_secs(1));
    Ok(Line {
        what: format!("{n} sockets that send nothing (header timeout {header_timeout:?})"),
        figure: format!(
            "{} closed or refused, the last after {:.1} s; /health meanwhile: {health}",
            closed.len(),
            last.as_secs_f64()
        ),
        held: closed.len() == n && last <= header_timeout + SLACK && quick,
    })
}

/// `n` sockets that send half a request header and stall: how many voxd closes within its
/// header timeout, and whether `/health` answers meanwhile.
async fn half_open(api: SocketAddr, n: usize, header_timeout: Duration) -> Result<Line> {
    let opened = Instant::now();
    let mut waits = Vec::new();
    for _ in 0..n {
        let mut s = tokio::net::TcpStream::connect(api).await?;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: voxd\r\nX-Slow: ")
            .await?;
        waits.push(tokio::spawn(closed_after(s, opened, header_timeout)));
    }
    let (health, answered) = timed_health(api).await;
    let (closed, last) = gather(waits).await?;
    Ok(Line {
        what: format!("{n} half-open sockets (header timeout {header_timeout:?})"),
        figure: format!(
            "{} closed, the last after {:.1} s; /health meanwhile: {health}",
            closed.len(),
            last.as_secs_f64()
        ),
        held: closed.len() == n && last <= header_timeout + SLACK && answered.is_some(),
    })
}

/// When voxd closed `s` (an answer, if any, is read through), counted from `opened`; None
/// if it was still open well past the header timeout.
async fn closed_after(
    mut s: tokio::net::TcpStream,
    opened: Instant,
    header_timeout: Duration,
) -> Option<Duration> {
    let mut buf = [0u8; 512];
    let closed = tokio::time::timeout(header_timeout + SLACK + SLACK, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    closed.ok().map(|_| opened.elapsed())
}

/// The sockets' closing times ([`closed_after`]) that came, and the last of them.
async fn gather(
    waits: Vec<tokio::task::JoinHandle<Option<Duration>>>,
) -> Result<(Vec<Duration>, Duration)> {
    let mut closed = Vec::new();
    for w in waits {
        closed.extend(w.await?);
    }
    let last = closed.iter().max().copied().unwrap_or_default();
    Ok((closed, last))
}

/// A client that is not the attacker: on loopback it comes from 127.0.0.4, another address
/// than the hostile sockets' (the bench's own, or 127.0.0.2), as a caller would.
fn bystander(api: SocketAddr) -> reqwest::Client {
    let local = api.ip().is_loopback().then(|| [127, 0, 0, 4].into());
    reqwest::Client::builder()
        .local_address(local)
        .build()
        .unwrap_or_default()
}

/// `GET /health`'s JSON, asked with `client`.
async fn health(client: &reqwest::Client, api: SocketAddr) -> Result<serde_json::Value> {
    Ok(client
        .get(format!("http://{api}/health"))
        .send()
        .await?
        .json()
        .await?)
}

/// `GET /health`'s status and time, as text, and how long it took when it answered 200.
async fn timed_health(api: SocketAddr) -> (String, Option<Duration>) {
    let asked = Instant::now();
    match bystander(api)
        .get(format!("http://{api}/health"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
    {
        Ok(r) => {
            let took = asked.elapsed();
            let status = r.status().as_u16();
            let text = format!("{status} in {} ms", took.as_millis());
            (text, (status == 200).then_some(took))
        }
        Err(e) => (format!("failed ({e})"), None),
    }
}

/// `n` authenticated media streams that never send `start`: closed with 4408 in time?
async fn never_started(
    api: SocketAddr,
    n: usize,
    tokens: &Tokens,
    start_timeout: Duration,
    run: &str,
) -> Result<Line> {
    let before = super::load::resident_mb(api, Some(&tokens.admin)).await;
    let (mut callers, mut refused) = (Vec::new(), 0);
    for i in 0..n {
        // Half name their call in the URL, half would name it in `start`.
        let query = match i % 2 {
            0 => format!("?call_id=prestart-{run}-{i}"),
            _ => String::new(),
        };
        match Caller::connect(api, &query, token(&tokens.scenario)).await {
            Ok(c) => callers.push(c),
            // Over the connections one address may hold: refused, as it should be.
            Err(e) if e.to_string().contains("429") => refused += 1,
            Err(e) => return Err(e.context(format!("stream {i}"))),
        }
    }
    let during = super::load::resident_mb(api, Some(&tokens.admin)).await;
    let health = health(&bystander(api), api).await?;
    let room = format!("{} with {} live", health["status"], health["active_calls"]);
    let opened = Instant::now();
    while opened.elapsed() < start_timeout + SLACK && callers.iter().any(|c| c.closed().is_none()) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let waited = opened.elapsed();
    let mut codes = std::collections::BTreeMap::<String, usize>::new();
    for c in &callers {
        let code = match c.closed() {
            None => "still open".to_string(),
            Some(None) => "no code".to_string(),
            Some(Some(code)) => code.to_string(),
        };
        *codes.entry(code).or_default() += 1;
    }
    let timed_out = codes.get("4408").copied().unwrap_or(0);
    Ok(Line {
        what: format!("{n} streams that never start (start timeout {start_timeout:?})"),
        figure: format!(
            "{refused} refused at connect (429, per address); the rest closed within {:.1} s: \
             {codes:?}; memory {} → {} MB and /health {room} while open",
            waited.as_secs_f64(),
            mb(before),
            mb(during)
        ),
        held: timed_out + refused == n && health["status"] == "ok",
    })
}

/// A started stream that then sends 10 000 binary frames.
async fn garbage(api: SocketAddr, tokens: &Tokens, run: &str) -> Result<Line> {
    let id = format!("garbage-{run}");
    let mut c = Caller::connect(api, &format!("?call_id={id}"), token(&tokens.scenario)).await?;
    c.start(Encoding::Pcm16, &id).await?;
    let mut sent = 0;
    while sent < 10_000 && c.send_binary(vec![0xA5; 320]).await.is_ok() {
        sent += 1;
    }
    let code = closed_within(&c, Duration::from_secs(5)).await;
    Ok(Line {
        what: "10 000 binary frames on a started stream".into(),
        figure: format!("{sent} sent before the socket went; close code {code:?}"),
        held: code == Some(1008),
    })
}

/// A started stream that pushes a minute of audio as fast as the socket takes it.
async fn too_fast(api: SocketAddr, tokens: &Tokens, run: &str) -> Result<Line> {
    let id = format!("too-fast-{run}");
    let mut c = Caller::connect(api, &format!("?call_id={id}"), token(&tokens.scenario)).await?;
    c.start(Encoding::Pcm16, &id).await?;
    let frame = Pcm {
        samples: vec![0.0; 320],
        rate: 16_000,
    };
    let started = Instant::now();
    let mut sent = Duration::ZERO;
    while sent < Duration::from_secs(60) && c.closed().is_none() && c.push(&frame).await.is_ok() {
        sent += Duration::from_millis(20);
    }
    let code = closed_within(&c, Duration::from_secs(5)).await;
    Ok(Line {
        what: "a minute of audio pushed at once".into(),
        figure: format!(
            "{:.1} s of audio in {:.2} s before the socket went; close code {code:?}",
            sent.as_secs_f64(),
            started.elapsed().as_secs_f64()
        ),
        held: code == Some(1008),
    })
}

/// 1000 `Connected` events with new call ids: how many voxd takes, how it refuses the rest,
/// and what they cost in memory. The calls taken are ended again.
async fn event_flood(api: SocketAddr, tokens: &Tokens, run: &str) -> Result<Line> {
    let client = reqwest::Client::new();
    let health = health(&client, api).await?;
    let capacity = health["capacity"].as_u64().unwrap_or(0) as usize;
    let before = super::load::resident_mb(api, Some(&tokens.admin)).await;
    let (mut taken, mut refused, mut other) = (Vec::new(), 0, Vec::new());
    for i in 0..1000 {
        let id = format!("flood-{run}-{i}");
        let status = event(&client, api, tokens, &id, "Connected").await?;
        match status {
            200 => taken.push(id),
            503 => refused += 1,
            s => other.push(s),
        }
    }
    let after = super::load::resident_mb(api, Some(&tokens.admin)).await;
    for id in &taken {
        event(&client, api, tokens, id, "Disconnected").await?;
    }
    Ok(Line {
        what: format!("1000 new-call events (capacity {capacity})"),
        figure: format!(
            "{} taken, {refused} refused with 503 at_capacity, other statuses {other:?}; \
             memory {} → {} MB",
            taken.len(),
            mb(before),
            mb(after)
        ),
        held: taken.len() <= capacity && other.is_empty(),
    })
}

/// A media-stream call's event; its status.
async fn event(
    client: &reqwest::Client,
    api: SocketAddr,
    tokens: &Tokens,
    call_id: &str,
    event: &str,
) -> Result<u16> {
    event_in("stream", client, api, tokens, call_id, event).await
}

/// A call's event in `mode` (`stream` or `recording`); its status.
async fn event_in(
    mode: &str,
    client: &reqwest::Client,
    api: SocketAddr,
    tokens: &Tokens,
    call_id: &str,
    event: &str,
) -> Result<u16> {
    let mut req = client
        .post(format!("http://{api}/voximplant/events"))
        .json(&json!({"call_id": call_id, "event": event, "mode": mode}));
    if let Some(t) = token(&tokens.scenario) {
        req = req.bearer_auth(t);
    }
    Ok(req.send().await?.status().as_u16())
}

/// Recording-mode calls whose `Disconnected` never comes, as many as voxd has room for: a
/// new call is refused while they hold their places, and served again once they end as
/// `lost` (after `calls.recording_idle_secs`, measured only when that is 60 s or less).
async fn lost_hang_ups(
    api: SocketAddr,
    tokens: &Tokens,
    run: &str,
    idle: Duration,
) -> Result<Line> {
    let what = format!(
        "recording calls whose hang-up never comes (recording_idle_secs {})",
        idle.as_secs()
    );
    if idle > Duration::from_secs(60) {
        return Ok(Line {
            what,
            figure: "not measured: run voxd with VOXD_CALLS_RECORDING_IDLE_SECS=5 for it".into(),
            held: true,
        });
    }
    let client = bystander(api);
    let health = health(&client, api).await?;
    let room = health["room"].as_u64().unwrap_or(0) as usize;
    for i in 0..room {
        event_in(
            "recording",
            &client,
            api,
            tokens,
            &format!("lost-{run}-{i}"),
            "Connected",
        )
        .await?;
    }
    let newcomer = format!("lost-{run}-new");
    let while_held = event_in("recording", &client, api, tokens, &newcomer, "Connected").await?;
    let waited = Instant::now();
    let served = loop {
        let status = event_in("recording", &client, api, tokens, &newcomer, "Connected").await?;
        if status == 200 || waited.elapsed() > idle + SLACK + SLACK {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    event_in("recording", &client, api, tokens, &newcomer, "Disconnected").await?;
    Ok(Line {
        what: format!("{room} {what}"),
        figure: format!(
            "a new call meanwhile: {while_held}; then {served} after {:.1} s",
            waited.elapsed().as_secs_f64()
        ),
        held: while_held == 503 && served == 200,
    })
}

/// A call ended by its `Disconnected`, then `Connected` again with the scenario's token:
/// refused, and its state not shown.
async fn reopen(api: SocketAddr, tokens: &Tokens, run: &str) -> Result<Line> {
    let client = reqwest::Client::new();
    let id = format!("reopen-{run}");
    let first = event(&client, api, tokens, &id, "Connected").await?;
    event(&client, api, tokens, &id, "Disconnected").await?;
    let again = event(&client, api, tokens, &id, "Connected").await?;
    let mut req = client.get(format!("http://{api}/voximplant/calls/{id}"));
    if let Some(t) = token(&tokens.scenario) {
        req = req.bearer_auth(t);
    }
    let shown = req.send().await?.status().as_u16();
    Ok(Line {
        what: "an ended call's Connected sent again".into(),
        figure: format!("{first}, then {again}; GET /voximplant/calls/{{id}}: {shown}"),
        held: first == 200 && again == 409 && shown == 404,
    })
}

/// `GET /calls` with `Host: attacker.example` and no token (DNS rebinding): refused
/// whether or not voxd has tokens.
async fn foreign_host(api: SocketAddr) -> Result<Line> {
    let status = reqwest::Client::new()
        .get(format!("http://{api}/calls"))
        .header("Host", "attacker.example")
        .send()
        .await?
        .status()
        .as_u16();
    Ok(Line {
        what: "GET /calls with Host: attacker.example, no token".into(),
        figure: format!("{status}"),
        held: matches!(status, 401 | 421),
    })
}

/// The scenario's token on `POST /calls` (an admin endpoint).
async fn scope(api: SocketAddr, tokens: &Tokens) -> Result<Line> {
    let held = !tokens.unscoped() && !tokens.scenario.is_empty();
    let mut req = reqwest::Client::new()
        .post(format!("http://{api}/calls"))
        .json(&json!({"phone": "+79990001122"}));
    if let Some(t) = token(&tokens.scenario) {
        req = req.bearer_auth(t);
    }
    let status = req.send().await?.status().as_u16();
    Ok(Line {
        what: "the scenario token on POST /calls".into(),
        figure: if held {
            format!("{status}")
        } else {
            format!("{status} (one unscoped server.token: set scenario_token and admin_token)")
        },
        held: held && status == 403,
    })
}

/// A recording URL at the cloud metadata address, refused before any connection.
async fn metadata_url(api: SocketAddr, tokens: &Tokens) -> Result<Line> {
    let mut req = reqwest::Client::new()
        .post(format!("http://{api}/voximplant/process_audio"))
        .json(&json!({"call_id": "metadata", "audio_url": "http://169.254.169.254/latest/meta-data/"}));
    if let Some(t) = token(&tokens.scenario) {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    let code = body["error"]["code"].as_str().unwrap_or("").to_string();
    Ok(Line {
        what: "audio_url http://169.254.169.254/…".into(),
        figure: format!("{status} {code}"),
        // Refused for where it points, not for a wrong token or a missing route.
        held: status == 403 && code == "url_refused",
    })
}

fn token(t: &str) -> Option<&str> {
    (!t.is_empty()).then_some(t)
}

fn mb(v: Option<f64>) -> String {
    v.map_or("?".into(), |m| format!("{m:.0}"))
}

/// Waits until voxd closed `c`; its close code.
async fn closed_within(c: &Caller, within: Duration) -> Option<u16> {
    let asked = Instant::now();
    while asked.elapsed() < within {
        if let Some(code) = c.closed() {
            return code;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}
