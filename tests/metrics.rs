//! `GET /metrics`, scraped with a Prometheus text parser: after a real recording turn and a
//! real media-stream call the counters and latency histograms have moved; the token is
//! required unless `metrics.require_token` is false.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::{auth, client, harness, post_json, wait_until, Served};
use prometheus_parse::{Scrape, Value};
use serde_json::{json, Value as Json};
use voxd::bench::caller::{is_type, Caller};
use voxd::transport::voximplant_ws::protocol::Encoding;

/// Every series of a scrape: `name{k="v",…}` (labels sorted) → value; a histogram's value
/// is its observation count.
fn scrape(text: &str) -> HashMap<String, f64> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let parsed = Scrape::parse(lines).expect("valid Prometheus text");
    parsed
        .samples
        .into_iter()
        .filter_map(|s| {
            let value = match s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
                Value::Histogram(buckets) => buckets
                    .iter()
                    .find(|b| b.less_than.is_infinite())
                    .map(|b| b.count)?,
                Value::Summary(_) => return None,
            };
            let labels = s.labels.to_string();
            let key = if labels.is_empty() {
                s.metric
            } else {
                format!("{}{{{labels}}}", s.metric)
            };
            Some((key, value))
        })
        .collect()
}

async fn metrics(api: SocketAddr, token: bool) -> reqwest::Response {
    let mut req = client().get(format!("http://{api}/metrics"));
    if token {
        req = req.header("Authorization", auth());
    }
    req.send().await.unwrap()
}

async fn series(api: SocketAddr) -> HashMap<String, f64> {
    let resp = metrics(api, true).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    scrape(&resp.text().await.unwrap())
}

fn get(s: &HashMap<String, f64>, key: &str) -> f64 {
    s.get(key).copied().unwrap_or(0.0)
}

/// Asserts that each series grew between the two scrapes.
fn assert_moved(before: &HashMap<String, f64>, after: &HashMap<String, f64>, keys: &[&str]) {
    for key in keys {
        assert!(
            get(after, key) > get(before, key),
            "{key} did not move: {} → {}\n{after:#?}",
            get(before, key),
            get(after, key)
        );
    }
}

fn stage(transport: &str, stage: &str) -> String {
    format!("voxd_stage_seconds{{stage=\"{stage}\",transport=\"{transport}\"}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_turn_and_a_stream_call_move_the_metrics() {
    let h = harness();
    let before = series(h.api).await;
    for engine in ["stt", "llm", "tts"] {
        let load = get(
            &before,
            &format!("voxd_model_load_seconds{{engine=\"{engine}\"}}"),
        );
        assert!(load > 0.0, "{engine} load time {load}");
    }
    // The daemon's memory: the test process holds three engines, so well over 10 MB.
    let (rss, peak) = (
        get(&before, "process_resident_memory_bytes"),
        get(&before, "voxd_resident_memory_peak_bytes"),
    );
    assert!(rss > 10e6 && peak >= rss, "resident {rss}, peak {peak}");

    // A recording-mode call: one turn, a refused download, then the scenario hangs up.
    let spoken = h.speak("Hello, what time do you open on Monday?");
    let url = h.serve("metrics.wav", Served::Bytes(common::encode(&spoken, "wav")));
    let api = format!("http://{}/voximplant", h.api);
    for (path, body, status) in [
        (
            "process_audio",
            json!({"call_id": "metrics-rec", "audio_url": url}),
            200,
        ),
        (
            "process_audio",
            json!({"call_id": "metrics-rec", "audio_url": "ftp://example.org/x.mp3"}),
            422,
        ),
        (
            "events",
            json!({"call_id": "metrics-rec", "event": "Disconnected"}),
            200,
        ),
    ] {
        let (got, answer) = post_json(format!("{api}/{path}"), body, true).await;
        assert_eq!(got, status, "{answer}");
    }

    // A media-stream call: greeting, a question, the spoken answer, then the caller hangs up.
    let mut c = Caller::connect(h.api, "", Some(common::TOKEN))
        .await
        .unwrap();
    c.start(Encoding::Pcm16, "metrics-ws").await.unwrap();
    let assistant = |v: &Json| is_type(v, "transcript") && v["role"] == "assistant";
    let greeted = c
        .wait_for(0, "greeting", Duration::from_secs(30), assistant)
        .await
        .unwrap();
    c.stream(&h.speak("Can you tell me where your office is?"))
        .await
        .unwrap();
    c.wait_for(greeted + 1, "answer", Duration::from_secs(60), assistant)
        .await
        .unwrap();
    c.close().await;

    // The stream call is counted once voxd has seen the socket close.
    let hung_up = "voxd_calls_total{outcome=\"caller_hangup\",transport=\"stream\"}";
    let after = wait_until(
        "count of the stream call's hangup in /metrics",
        Duration::from_secs(30),
        || async {
            let after = series(h.api).await;
            let (was, now) = (get(&before, hung_up), get(&after, hung_up));
            if now > was {
                Ok(after)
            } else {
                Err(format!("{hung_up} still {now} (was {was})"))
            }
        },
    )
    .await;
    let mut keys = vec![
        "voxd_turns_total{transport=\"recording\"}".to_string(),
        "voxd_calls_total{outcome=\"disconnected\",transport=\"recording\"}".to_string(),
        "voxd_errors_total{kind=\"invalid_url\"}".to_string(),
        "voxd_turns_total{transport=\"stream\"}".to_string(),
        hung_up.to_string(),
        stage("stream", "end_of_turn_to_first_audio"),
    ];
    for s in ["stt", "llm_first_token", "llm_total", "tts_first_audio"] {
        keys.push(stage("stream", s));
    }
    for s in [
        "download",
        "decode",
        "stt",
        "llm_first_token",
        "llm_total",
        "tts_first_audio",
        "turn_total",
    ] {
        keys.push(stage("recording", s));
    }
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    assert_moved(&before, &after, &keys);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_token_unless_configured_otherwise() {
    let h = harness();
    let resp = metrics(h.api, false).await;
    assert_eq!(resp.status(), 401);
    let body: Json = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    // The refusal itself is counted.
    let s = series(h.api).await;
    assert!(get(&s, "voxd_errors_total{kind=\"unauthorized\"}") >= 1.0);

    let mut cfg = common::test_config();
    cfg.metrics.require_token = false;
    let open = common::spawn_api(cfg, h.engines.clone()).await;
    let resp = metrics(open, false).await;
    assert_eq!(resp.status(), 200);
    let s = scrape(&resp.text().await.unwrap());
    assert_eq!(get(&s, "voxd_calls_active{transport=\"stream\"}"), 0.0);
    assert!(s.contains_key("voxd_barge_ins_total"), "{s:#?}");
}
