//! A call's life on a real voxd over loopback, as a stranger or a broken scenario would have
//! it: media streams that never send `start` hold no place; a recording-mode call whose
//! `Disconnected` never came ends as `lost` and frees its place; an ended call is never
//! opened again (409 `call_ended` for its events and turns, close 1008 for its stream), so
//! its turns cannot be read back through the scenario's `GET /voximplant/calls/{id}`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{harness, spawn_api, test_config, Served, TOKEN};
use serde_json::{json, Value};
use voxd::bench::caller::{is_type, Caller};
use voxd::transport::voximplant_ws::protocol::Encoding;

async fn post(api: SocketAddr, path: &str, body: Value) -> (u16, Value) {
    common::post_json(format!("http://{api}{path}"), body, true).await
}

async fn event(api: SocketAddr, call_id: &str, event: &str) -> (u16, Value) {
    post(
        api,
        "/voximplant/events",
        json!({"call_id": call_id, "event": event}),
    )
    .await
}

async fn health(api: SocketAddr) -> Value {
    reqwest::get(format!("http://{api}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_streams_that_never_start_hold_no_place() {
    let mut cfg = test_config();
    cfg.calls.max_live = 1;
    // The idle streams must outlive the greeting below, however slow the machine.
    cfg.voximplant_stream.start_timeout_secs = 600;
    let api = spawn_api(cfg, harness().engines.clone()).await;
    let mut idle = Vec::new();
    for i in 0..5 {
        let query = format!("?call_id=idle-{i}");
        idle.push(Caller::connect(api, &query, Some(TOKEN)).await.unwrap());
    }
    let h = health(api).await;
    assert_eq!(
        (h["status"].as_str(), h["active_calls"].as_u64()),
        (Some("ok"), Some(0)),
        "{h}"
    );
    // The one place goes to the call that starts.
    let mut c = Caller::connect(api, "?call_id=real-1", Some(TOKEN))
        .await
        .unwrap();
    c.start(Encoding::Pcm16, "real-1").await.unwrap();
    c.wait_for(0, "the greeting", Duration::from_secs(60), |v| {
        is_type(v, "transcript") && v["role"] == "assistant"
    })
    .await
    .unwrap();
    assert_eq!(health(api).await["active_calls"], 1);
    // One that starts now is refused: busy, the place is taken.
    let late = &mut idle[0];
    late.start(Encoding::Pcm16, "idle-0").await.unwrap();
    late.wait_for(0, "busy", Duration::from_secs(10), |v| is_type(v, "busy"))
        .await
        .unwrap();
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_call_whose_hang_up_never_came_is_lost_and_frees_its_place() {
    let mut cfg = test_config();
    cfg.calls.max_live = 1;
    cfg.calls.recording_idle_secs = 2;
    // No greeting to voice: the idle clock starts at the Connected, not after a synthesis.
    cfg.conversation.greeting = String::new();
    let api = spawn_api(cfg, harness().engines.clone()).await;
    assert_eq!(event(api, "lost-1", "Connected").await.0, 200);
    let (status, body) = event(api, "lost-2", "Connected").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("at_capacity")),
        "{body}"
    );
    // No Disconnected for lost-1: after recording_idle_secs its place is free.
    common::wait_until(
        "the lost call's place freed",
        Duration::from_secs(10),
        || async {
            match event(api, "lost-2", "Connected").await {
                (200, _) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let (status, body) = event(api, "lost-1", "Connected").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("call_ended")),
        "{body}"
    );
    // The history says so too (the table's sweep records it).
    common::wait_until(
        "the lost call ended in the history",
        Duration::from_secs(15),
        || async {
            let (_, stored) = common::get_json(api, "/calls/lost-1").await;
            match (stored["status"].as_str(), stored["outcome"].as_str()) {
                (Some("ended"), Some("lost")) => Ok(()),
                _ => Err(stored.to_string()),
            }
        },
    )
    .await;
    // lost-1, and lost-2 too by now (it idled while the history was awaited).
    let metrics = common::metrics_text(api).await;
    let lost = metrics
        .lines()
        .find_map(|l| l.strip_prefix("voxd_calls_total{transport=\"recording\",outcome=\"lost\"} "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(lost.is_some_and(|n| n >= 1), "no lost calls in {metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_call_is_never_opened_again() {
    let h = harness();
    let mut cfg = test_config();
    cfg.download.allow_private = true;
    let api = spawn_api(cfg, h.engines.clone()).await;
    let id = "ended-1";
    assert_eq!(event(api, id, "Connected").await.0, 200);
    let url = h.serve(
        "ended-1.mp3",
        Served::Bytes(common::encode(&h.speak("What time do you open?"), "mp3")),
    );
    let turn = json!({"call_id": id, "audio_url": url});
    let (status, body) = post(api, "/voximplant/process_audio", turn.clone()).await;
    assert_eq!(status, 200, "{body}");
    let (status, shown) = common::get_json(api, &format!("/voximplant/calls/{id}")).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(event(api, id, "Disconnected").await.0, 200);

    // The scenario token sees nothing of it any more, whatever it sends.
    let (status, body) = event(api, id, "Connected").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("call_ended")),
        "{body}"
    );
    let (status, body) = post(api, "/voximplant/process_audio", turn).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("call_ended")),
        "{body}"
    );
    let (status, body) = common::get_json(api, &format!("/voximplant/calls/{id}")).await;
    assert_eq!(status, 404, "{body}");
    let c = Caller::connect(api, &format!("?call_id={id}"), Some(TOKEN))
        .await
        .unwrap();
    let code = common::wait_until("the stream closed", Duration::from_secs(10), || async {
        c.closed().ok_or("still open")
    })
    .await;
    assert_eq!(code, Some(1008));
    // The history keeps it, for the admin.
    let (status, stored) = common::get_json(api, &format!("/calls/{id}")).await;
    assert_eq!(status, 200, "{stored}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_answering_machines_reach_a_recording_call_and_its_history() {
    let mut cfg = test_config();
    cfg.tools.operator_phone = "+74950000000".into();
    cfg.dtmf.actions = [
        ("0".to_string(), voxd::config::KeyAction::Operator),
        ("9".to_string(), voxd::config::KeyAction::Hangup),
    ]
    .into();
    let api = spawn_api(cfg, harness().engines.clone()).await;
    let id = "keys-1".to_string();
    assert_eq!(event(api, &id, "Connected").await.0, 200);
    let key = |digit: &str| {
        post(
            api,
            "/voximplant/events",
            json!({"call_id": id, "event": "ToneReceived", "digit": digit}),
        )
    };
    let (status, body) = key("5").await;
    assert_eq!(
        (status, body["action"].as_str()),
        (200, Some("continue")),
        "{body}"
    );
    let (status, body) = key("0").await;
    assert_eq!(
        (
            status,
            body["action"].as_str(),
            body["transfer_to"].as_str()
        ),
        (200, Some("transfer"), Some("+74950000000")),
        "{body}"
    );
    assert_eq!(key("9").await.1["action"], "hangup");
    for bad in ["55", "x", ""] {
        let (status, body) = key(bad).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("invalid_key")),
            "{body}"
        );
    }
    // The unmapped key is in the conversation the next reply reads.
    let info = common::get_json(api, &format!("/voximplant/calls/{id}"))
        .await
        .1;
    let turns = info["history"].as_array().unwrap();
    assert!(
        turns.iter().any(|t| t["role"] == "user"
            && t["content"] == "(The caller pressed 5 on the phone keypad.)"),
        "{info}"
    );
    assert_eq!(event(api, &id, "Disconnected").await.0, 200);
    let (status, body) = key("5").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("unknown_call")),
        "{body}"
    );

    // An outbound call that reached an answering machine ends as `voicemail`.
    let vm = "vm-1".to_string();
    assert_eq!(event(api, &vm, "Connected").await.0, 200);
    let (status, body) = post(
        api,
        "/voximplant/events",
        json!({"call_id": vm, "event": "Voicemail", "message_left": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(health(api).await["active_calls"], 0);
    let call = common::get_json(api, &format!("/calls/{vm}")).await.1;
    assert_eq!(
        (call["status"].as_str(), call["outcome"].as_str()),
        (Some("ended"), Some("voicemail")),
        "{call}"
    );
}
