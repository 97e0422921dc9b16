//! The daemon's logs on stdout: with `log_format = "json"` every line about a call carries
//! its call id (the `call` span), for recording turns, events and media-stream calls;
//! under systemd's journal, text lines have syslog priorities and no timestamps or colours.

mod common;

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use common::daemon::Daemon;
use common::{harness, post_json, Served};
use serde_json::{json, Value};
use voxd::bench::caller::{is_type, Caller};
use voxd::transport::voximplant_ws::protocol::Encoding;

/// The call id a JSON log line is about: its innermost span's, else its own field.
fn call_id(line: &Value) -> Option<&str> {
    line["span"]["call_id"]
        .as_str()
        .or(line["fields"]["call_id"].as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_about_a_call_carry_its_id() {
    let h = harness();
    let mut d = Daemon::start(&[
        ("VOXD_DOWNLOAD_ALLOW_PRIVATE", "true"),
        ("VOXD_SERVER_LOG_FORMAT", "json"),
    ]);
    let question = h.speak("Good morning, do you deliver on Sundays?");
    let url = h.serve("logs.wav", Served::Bytes(common::encode(&question, "wav")));
    let api = format!("http://{}/voximplant", d.addr);
    for (path, body) in [
        (
            "events",
            json!({"call_id": "log-rec", "event": "Connected"}),
        ),
        (
            "process_audio",
            json!({"call_id": "log-rec", "audio_url": url}),
        ),
        (
            "process_audio",
            json!({"call_id": "log-rec", "audio_url": "ftp://x/y.mp3"}),
        ),
        (
            "events",
            json!({"call_id": "log-rec", "event": "Disconnected"}),
        ),
    ] {
        post_json(format!("{api}/{path}"), body, false).await;
    }

    let mut c = Caller::connect(d.addr, "", None).await.unwrap();
    c.start(Encoding::Ulaw, "log-ws").await.unwrap();
    let assistant = |v: &Value| is_type(v, "transcript") && v["role"] == "assistant";
    let greeted = c
        .wait_for(0, "greeting", Duration::from_secs(30), assistant)
        .await
        .unwrap();
    c.stream(&question).await.unwrap();
    c.wait_for(greeted + 1, "answer", Duration::from_secs(60), assistant)
        .await
        .unwrap();
    c.close().await;
    d.signal("TERM");
    let status = tokio::task::block_in_place(|| d.wait(Duration::from_secs(60)));
    assert!(status.success(), "{status}");

    let logs = d.logs();
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    // Each call's lines: what happened, all under its id.
    let messages = |id: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| call_id(l) == Some(id))
            .map(|l| l["fields"]["message"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let rec = messages("log-rec");
    for want in ["call started", "turn done", "call ended"] {
        assert!(
            rec.iter().any(|m| m == want),
            "log-rec lacks {want:?}: {rec:?}"
        );
    }
    assert!(
        rec.iter().any(|m| m.starts_with("invalid URL")),
        "the refused turn is logged under the call: {rec:?}"
    );
    let ws = messages("log-ws");
    for want in ["media stream started", "media stream call ended"] {
        assert!(
            ws.iter().any(|m| m == want),
            "log-ws lacks {want:?}: {ws:?}"
        );
    }
    // No line inside a call's span lacks the id.
    for l in &lines {
        if l["span"]["name"] == "call" {
            assert!(call_id(l).is_some(), "call span without call_id: {l}");
        }
    }
}

#[test]
fn under_the_journal_text_lines_have_priorities_and_no_timestamps() {
    let d = Daemon::start_with(&[], |out| {
        let meta = out.metadata().unwrap();
        vec![(
            "JOURNAL_STREAM".to_string(),
            format!("{}:{}", meta.dev(), meta.ino()),
        )]
    });
    let health = reqwest::blocking::get(format!("http://{}/health", d.addr)).unwrap();
    assert_eq!(health.status(), 200);
    let logs = d.logs();
    let listening = logs
        .lines()
        .find(|l| l.contains("voxd listening"))
        .unwrap_or_else(|| panic!("no listening line in {logs}"));
    assert!(
        listening.starts_with("<6> INFO voxd::server: voxd listening"),
        "{listening}"
    );
    assert!(logs.lines().all(|l| l.starts_with('<')), "{logs}");
    assert!(!logs.contains('\x1b'), "colour codes in {logs}");
}

#[test]
fn text_logs_to_a_file_have_no_colours() {
    let d = Daemon::start(&[]);
    reqwest::blocking::get(format!("http://{}/health", d.addr)).unwrap();
    let logs = d.logs();
    assert!(logs.contains("voxd listening"), "{logs}");
    assert!(!logs.contains('\x1b'), "colour codes in {logs}");
    assert!(!logs.starts_with('<'), "{logs}");
}
