//! Graceful shutdown of a real `voxd serve` process: a SIGTERM that arrives mid-turn lets
//! the live calls finish (an HTTP turn, a media-stream reply, a recording call's next turn)
//! while new calls are refused with 503 `draining`, then voxd exits 0; the grace period
//! ends calls that go on.

mod common;

use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::{client, harness, post_json, wait_until, Served};
use serde_json::{json, Value};
use voxd::bench::caller::{decode_media, is_type, Caller};
use voxd::transport::voximplant_ws::protocol::Encoding;

fn assistant(v: &Value) -> bool {
    is_type(v, "transcript") && v["role"] == "assistant"
}

async fn turn(d: &Daemon, call_id: &str, audio_url: &str) -> (u16, Value) {
    let url = format!("http://{}/voximplant/process_audio", d.addr);
    post_json(
        url,
        json!({"call_id": call_id, "audio_url": audio_url}),
        false,
    )
    .await
}

async fn event(d: &Daemon, call_id: &str, event: &str) -> (u16, Value) {
    let url = format!("http://{}/voximplant/events", d.addr);
    post_json(url, json!({"call_id": call_id, "event": event}), false).await
}

/// A media-stream caller that has heard the greeting.
async fn greeted_caller(d: &Daemon, call_id: &str) -> Caller {
    let mut c = Caller::connect(d.addr, "", None).await.unwrap();
    c.start(Encoding::Pcm16, call_id).await.unwrap();
    c.wait_for(0, "greeting", Duration::from_secs(30), assistant)
        .await
        .unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_turn_lets_live_calls_finish_and_refuses_new_ones() {
    let h = harness();
    let mut d = Daemon::start(&[
        ("VOXD_DOWNLOAD_ALLOW_PRIVATE", "true"),
        ("VOXD_SERVER_DRAIN_GRACE_SECS", "600"),
    ]);
    let question = h.speak("Hello, could you tell me when you are open tomorrow?");
    let wav = common::encode(&question, "wav");
    // The recording host is slow, so the turn is still downloading when SIGTERM comes.
    let slow = h.serve(
        "drain-slow.wav",
        Served::Slow(Duration::from_secs(3), wav.clone()),
    );
    let fast = h.serve("drain-fast.wav", Served::Bytes(wav));

    let mut caller = greeted_caller(&d, "drain-ws").await;
    let addr = d.addr;
    let recording = tokio::spawn(async move {
        let url = format!("http://{addr}/voximplant/process_audio");
        post_json(
            url,
            json!({"call_id": "drain-rec", "audio_url": slow}),
            false,
        )
        .await
    });
    let from = caller.messages().len();
    caller.stream(&question).await.unwrap();
    let user = caller
        .wait_for(from, "user transcript", Duration::from_secs(30), |v| {
            is_type(v, "transcript") && v["role"] == "user"
        })
        .await
        .unwrap();
    wait_until(
        "request for drain-slow.wav at the recording host",
        Duration::from_secs(30),
        || async {
            if h.hits("drain-slow.wav") > 0 {
                Ok(())
            } else {
                Err("not asked for yet")
            }
        },
    )
    .await;
    assert!(
        !recording.is_finished(),
        "the recording turn is in progress"
    );
    d.signal("TERM");

    // Draining (once voxd has taken the signal): health says so with a 503, new calls of
    // either kind are refused.
    let health = wait_until(
        "/health other than 200 after SIGTERM",
        Duration::from_secs(10),
        || async {
            let resp = client()
                .get(format!("http://{addr}/health"))
                .send()
                .await
                .unwrap();
            if resp.status() != 200 {
                Ok(resp)
            } else {
                Err("/health still answers 200")
            }
        },
    )
    .await;
    assert_eq!(health.status(), 503);
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["status"], "draining");
    let (status, body) = turn(&d, "drain-new", &fast).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("draining"))
    );
    let (status, body) = event(&d, "drain-new-2", "Connected").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("draining"))
    );
    let refused = Caller::connect(d.addr, "?call_id=drain-new-ws", None).await;
    let err = refused.err().expect("a new stream is refused").to_string();
    assert!(err.contains("503"), "{err}");

    // The turn in flight completes with a reply.
    let (status, body) = recording.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(!body["reply_text"].as_str().unwrap().is_empty(), "{body}");
    let audio = client()
        .get(body["reply_audio_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(audio.status(), 200);

    // The stream call gets its spoken answer, then hangs up cleanly.
    let said = caller
        .wait_for(user, "answer", Duration::from_secs(60), assistant)
        .await
        .unwrap();
    let reply = decode_media(&caller.messages()[user..said]).unwrap();
    assert!(reply.duration_secs() > 0.3, "{}", reply.duration_secs());
    assert_eq!(caller.closed(), None, "voxd kept the stream call open");
    caller.close().await;

    // The recording call is still live: its next turn is answered, then it ends.
    let (status, body) = turn(&d, "drain-rec", &fast).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(event(&d, "drain-rec", "Disconnected").await.0, 200);

    // No live calls are left: voxd exits 0 long before the 600 s grace period.
    let status = tokio::task::block_in_place(|| d.wait(Duration::from_secs(60)));
    assert!(status.success(), "{status}\n{}", d.logs());
    let logs = d.logs();
    assert!(logs.contains("all calls are over"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grace_period_ends_calls_that_go_on() {
    let mut d = Daemon::start(&[("VOXD_SERVER_DRAIN_GRACE_SECS", "2")]);
    assert_eq!(event(&d, "grace-rec", "Connected").await.0, 200);
    let mut caller = greeted_caller(&d, "grace-ws").await;
    d.signal("TERM");
    // The caller stays on the line; voxd closes the stream when the grace period is over.
    // (Not `wait_until`: the caller streams silence meanwhile, which needs it mutably.)
    let deadline = Instant::now() + Duration::from_secs(60);
    while caller.closed().is_none() {
        assert!(
            Instant::now() < deadline,
            "voxd did not close the stream within 60 s of SIGTERM (grace period 2 s)"
        );
        if caller.silence(100).await.is_err() {
            // voxd hung up; the caller's reader records the close code in a moment.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(caller.closed(), Some(Some(1001)), "going away");
    let status = tokio::task::block_in_place(|| d.wait(Duration::from_secs(30)));
    assert!(status.success(), "{status}\n{}", d.logs());
    let logs = d.logs();
    assert!(logs.contains("grace period over"), "{logs}");
}
