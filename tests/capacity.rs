//! Admission on a real voxd with room for three calls: three simultaneous media-stream calls
//! are all answered, a fourth is refused with the busy message and close code 1013, a new
//! recording call gets 503 `at_capacity` with `Retry-After`, and the calls already admitted
//! (their next turns included) are never refused. A caller who hangs up while their reply
//! is queued or being written frees the engines at once, for the next caller.

mod common;

use std::time::Duration;

use common::{harness, spawn_api, test_config, wait_until, Served};
use serde_json::{json, Value};
use voxd::bench::caller::{is_event, is_type, Caller};
use voxd::engines::Engines;
use voxd::transport::voximplant_ws::protocol::Encoding;

const OPERATOR: &str = "+15550001111";
const QUESTION: &str = "Hello, can you tell me what time you open on Saturday?";

async fn stream_call(api: std::net::SocketAddr, call_id: &str) -> Caller {
    let mut c = Caller::connect(api, &format!("?call_id={call_id}"), Some(common::TOKEN))
        .await
        .unwrap();
    c.start(Encoding::Pcm16, call_id).await.unwrap();
    c
}

/// Posts a recording-mode event or turn; the status, the `Retry-After` header and the body.
async fn post(api: std::net::SocketAddr, path: &str, body: Value) -> (u16, Option<String>, Value) {
    let resp = common::client()
        .post(format!("http://{api}{path}"))
        .header("Authorization", common::auth())
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry, resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_max_live_new_calls_are_refused_and_admitted_ones_go_on() {
    let h = harness();
    let mut cfg = test_config();
    cfg.calls.max_live = 3;
    cfg.calls.retry_after_secs = 7;
    cfg.tools.operator_phone = OPERATOR.into();
    cfg.download.allowed_networks = vec!["127.0.0.0/8".into()];
    let api = spawn_api(cfg, h.engines.clone()).await;

    // Three calls at once: each is greeted, then all three ask at the same moment and each
    // gets its answer.
    let mut calls = Vec::new();
    for i in 0..3 {
        calls.push(stream_call(api, &format!("cap-{i}")).await);
    }
    let question = h.speak(QUESTION);
    let asked = calls.iter_mut().map(|c| {
        let question = question.clone();
        async move {
            c.wait_for(0, "greeting", Duration::from_secs(60), |v| {
                is_type(v, "transcript") && v["role"] == "assistant"
            })
            .await
            .unwrap();
            let from = c.messages().len();
            c.stream(&question).await.unwrap();
            let user = c
                .wait_for(from, "user transcript", Duration::from_secs(60), |v| {
                    is_type(v, "transcript") && v["role"] == "user"
                })
                .await
                .unwrap();
            c.wait_for(user, "answer", Duration::from_secs(90), |v| {
                is_type(v, "transcript") && v["role"] == "assistant"
            })
            .await
            .unwrap();
        }
    });
    futures_util::future::join_all(asked).await;

    // A fourth stream call: {"type":"busy"} (with the operator to hand the caller to), then
    // close code 1013.
    let mut fourth = Caller::connect(api, "?call_id=cap-3", Some(common::TOKEN))
        .await
        .unwrap();
    let busy = fourth
        .wait_for(0, "busy message", Duration::from_secs(10), |v| {
            is_type(v, "busy")
        })
        .await
        .unwrap();
    let busy = fourth.messages()[busy].json.clone();
    assert_eq!(busy["retry_after_secs"], 7, "{busy}");
    assert_eq!(busy["transfer_to"], OPERATOR, "{busy}");
    let code = wait_until(
        "close of the refused stream",
        Duration::from_secs(5),
        || async { fourth.closed().ok_or("still open") },
    )
    .await;
    assert_eq!(code, Some(1013));

    // A new recording-mode call, by its Connected event or its first turn: 503 at_capacity.
    let url = h.serve(
        "capacity.wav",
        Served::Bytes(common::encode(&question, "wav")),
    );
    let (status, retry, body) = post(
        api,
        "/voximplant/events",
        json!({"call_id": "rec-new", "event": "Connected"}),
    )
    .await;
    assert_eq!((status, retry.as_deref()), (503, Some("7")), "{body}");
    assert_eq!(body["error"]["code"], "at_capacity", "{body}");
    assert_eq!(body["error"]["transfer_to"], OPERATOR, "{body}");
    let turn = json!({"call_id": "rec-new", "audio_url": url});
    let (status, retry, body) = post(api, "/voximplant/process_audio", turn.clone()).await;
    assert_eq!((status, retry.as_deref()), (503, Some("7")), "{body}");
    assert_eq!(body["error"]["code"], "at_capacity", "{body}");

    // /health tells a load balancer there is no room; /metrics counts the refusals.
    let health: Value = reqwest::get(format!("http://{api}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "at_capacity", "{health}");
    assert_eq!(
        (health["capacity"].as_u64(), health["room"].as_u64()),
        (Some(3), Some(0))
    );
    let metrics = common::metrics_text(api).await;
    for line in [
        "voxd_calls_capacity 3",
        "voxd_calls_refused_total{transport=\"stream\"} 1",
        "voxd_calls_refused_total{transport=\"recording\"} 2",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }

    // One call ends: a recording call takes its place, and its turn is answered although
    // voxd is full again; another new one is still refused.
    calls.pop().unwrap().close().await;
    let (status, _, body) = wait_until("room for a new call", Duration::from_secs(10), || async {
        let answer = post(
            api,
            "/voximplant/events",
            json!({"call_id": "rec-1", "event": "Connected"}),
        )
        .await;
        match answer.0 {
            200 => Ok(answer),
            other => Err(format!("{other} {}", answer.2)),
        }
    })
    .await;
    assert_eq!(status, 200, "{body}");
    let turn = json!({"call_id": "rec-1", "audio_url": url});
    let (status, _, body) = post(api, "/voximplant/process_audio", turn).await;
    assert_eq!(status, 200, "an admitted call's turn is answered: {body}");
    assert!(!body["reply_text"].as_str().unwrap().is_empty(), "{body}");
    let (status, _, _) = post(
        api,
        "/voximplant/events",
        json!({"call_id": "rec-2", "event": "Connected"}),
    )
    .await;
    assert_eq!(status, 503);

    // The stream calls admitted at the start are still served.
    let c = &mut calls[0];
    let from = c.messages().len();
    c.stream(&question).await.unwrap();
    c.wait_for(from, "user transcript", Duration::from_secs(60), |v| {
        is_type(v, "transcript") && v["role"] == "user"
    })
    .await
    .unwrap();
}

/// The LLM's line of `/metrics` for `gauge` (voxd_engine_queued or voxd_engine_running).
async fn llm_gauge(api: std::net::SocketAddr, gauge: &str) -> String {
    let line = format!("{gauge}{{engine=\"llm\"}} ");
    let metrics = common::metrics_text(api).await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .unwrap_or_else(|| panic!("{line} not in\n{metrics}"))
        .to_string()
}

/// Waits until the LLM's `gauge` reads `value`.
async fn llm_reads(api: std::net::SocketAddr, gauge: &str, value: &str, what: &str) {
    wait_until(what, Duration::from_secs(5), || async {
        match llm_gauge(api, gauge).await {
            v if v == value => Ok(()),
            v => Err(format!("{gauge} = {v}")),
        }
    })
    .await;
}

/// Streams `question` and waits for the first frame of the reply.
async fn ask_until_reply_starts(c: &mut Caller, question: &voxd::audio::Pcm) {
    let from = c.messages().len();
    c.stream(question).await.unwrap();
    c.wait_for(from, "reply audio", Duration::from_secs(90), |v| {
        is_event(v, "media")
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_up_frees_queued_and_running_replies_at_once() {
    let h = harness();
    // One sequence, and replies with no sentence limit that run for hundreds of tokens: a
    // reply holds the LLM for as long as it plays unless its caller's hang-up frees it.
    let mut cfg = test_config();
    cfg.llm.parallel = 1;
    cfg.llm.max_sentences = 0;
    cfg.llm.max_reply_tokens = 400;
    cfg.conversation.greeting.clear();
    let engines = {
        let cfg = cfg.clone();
        std::sync::Arc::new(
            tokio::task::spawn_blocking(move || Engines::load(&cfg))
                .await
                .unwrap()
                .unwrap(),
        )
    };
    let api = spawn_api(cfg, engines).await;
    let story = h.speak("Please tell me a long story about your company and its history.");
    let question = h.speak(QUESTION);

    // A is being answered; B's reply waits for the one sequence.
    let mut a = stream_call(api, "free-a").await;
    ask_until_reply_starts(&mut a, &story).await;
    assert_eq!(llm_gauge(api, "voxd_engine_running").await, "1");
    let mut b = stream_call(api, "free-b").await;
    b.stream(&question).await.unwrap();
    b.wait_for(0, "B's words heard", Duration::from_secs(30), |v| {
        is_type(v, "transcript") && v["role"] == "user"
    })
    .await
    .unwrap();
    llm_reads(api, "voxd_engine_queued", "1", "B's reply queued").await;

    // B hangs up while queued: its reply leaves the queue; A's goes on.
    b.close().await;
    llm_reads(
        api,
        "voxd_engine_queued",
        "0",
        "B's reply gone from the queue",
    )
    .await;
    assert_eq!(llm_gauge(api, "voxd_engine_running").await, "1");

    // A hangs up mid-reply: the sequence is free at once.
    a.close().await;
    llm_reads(api, "voxd_engine_running", "0", "A's reply stopped").await;

    // The next caller is answered from the freed sequence.
    let mut c = stream_call(api, "free-c").await;
    ask_until_reply_starts(&mut c, &question).await;
    c.close().await;
}
