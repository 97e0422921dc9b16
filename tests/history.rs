//! The call history on a real daemon: a recording turn and a media-stream call are stored as
//! they happen, with the language each is answered in (`conversation.language = "auto"`); `kill -9` in the middle of a reply loses no finished turn; a restarted voxd
//! serves them at `GET /calls` and `GET /calls/{id}`, with clear errors for bad queries.

mod common;

use std::time::Duration;

use common::daemon::Daemon;
use common::{encode, get_json, harness, post_json, shared_words, Served, TOKEN};
use serde_json::{json, Value};
use voxd::bench::caller::{is_type, Caller};
use voxd::calls::history::History;
use voxd::transport::voximplant_ws::protocol::Encoding;

const QUESTION: &str = "What time do you open tomorrow morning?";

fn texts(call: &Value) -> Vec<(String, String)> {
    call["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let s = |k: &str| t[k].as_str().unwrap().to_string();
            (s("role"), s("text"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_call_loses_no_finished_turn_and_a_restart_serves_the_history() {
    let h = harness();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("voxd.db");
    let db_env = db.to_str().unwrap();
    let env = [
        ("VOXD_HISTORY_DATABASE", db_env),
        ("VOXD_SERVER_TOKEN", TOKEN),
        ("VOXD_DOWNLOAD_ALLOWED_NETWORKS", "[\"127.0.0.2/32\"]"),
        ("VOXD_CONVERSATION_LANGUAGE", "auto"),
    ];
    let mut d = Daemon::start(&env);

    // A recording-mode call: greeting and one full turn.
    let (s, _) = post_json(
        format!("http://{}/voximplant/events", d.addr),
        json!({"call_id": "hist-rec", "event": "Connected"}),
        true,
    )
    .await;
    assert_eq!(s, 200);
    let url = h.serve("hist.mp3", Served::Bytes(encode(&h.speak(QUESTION), "mp3")));
    let (s, turn) = post_json(
        format!("http://{}/voximplant/process_audio", d.addr),
        json!({"call_id": "hist-rec", "audio_url": url}),
        true,
    )
    .await;
    assert_eq!(s, 200, "{turn}\n{}", d.logs());

    // A media-stream call, killed while voxd works on the answer to its first question.
    let mut c = Caller::connect(d.addr, "?call_id=hist-ws", Some(TOKEN))
        .await
        .unwrap();
    c.start(Encoding::Pcm16, "hist-ws").await.unwrap();
    let greeted = c
        .wait_for(0, "greeting", Duration::from_secs(30), |v| {
            is_type(v, "transcript")
        })
        .await
        .unwrap();
    c.stream(&h.speak(QUESTION)).await.unwrap();
    let heard = c
        .wait_for(
            greeted + 1,
            "user transcript",
            Duration::from_secs(30),
            |v| is_type(v, "transcript") && v["role"] == "user",
        )
        .await
        .unwrap();
    // SIGKILL: no shutdown code runs.
    d.child.kill().unwrap();
    d.child.wait().unwrap();
    let said = c.messages()[heard].json["text"]
        .as_str()
        .unwrap()
        .to_string();

    // Straight from the file, as a crash left it.
    let history = History::open(&db).unwrap();
    let rec = serde_json::to_value(history.call("hist-rec").unwrap().unwrap()).unwrap();
    let greeting = common::test_config().conversation.greeting;
    assert_eq!(
        texts(&rec),
        [
            ("assistant".to_string(), greeting.clone()),
            (
                "user".to_string(),
                turn["user_text"].as_str().unwrap().to_string()
            ),
            (
                "assistant".to_string(),
                turn["reply_text"].as_str().unwrap().to_string()
            ),
        ]
    );
    assert!(
        rec["turns"][2]["timings"]["stt"].as_f64().unwrap() > 0.0,
        "{rec}"
    );
    // The reply's audio, by the path the console plays it from.
    let audio = rec["turns"][2]["audio_url"].as_str().unwrap();
    let reply_url = turn["reply_audio_url"].as_str().unwrap();
    assert!(
        audio.starts_with("/audio/") && reply_url.ends_with(audio),
        "{rec}"
    );
    assert_eq!(
        rec["language"], "en",
        "the English caller's language: {rec}"
    );
    let ws = serde_json::to_value(history.call("hist-ws").unwrap().unwrap()).unwrap();
    assert_eq!(ws["language"], "en", "{ws}");
    let ws_turns = texts(&ws);
    assert_eq!(ws_turns[0], ("assistant".to_string(), greeting), "{ws}");
    assert_eq!(ws_turns[1], ("user".to_string(), said.clone()), "{ws}");
    assert!(shared_words(&said, QUESTION).len() >= 3, "{said:?}");
    assert_eq!(ws["status"], "active", "a killed call never ended");
    drop(history);

    // A restarted voxd serves what the killed one stored.
    let d2 = Daemon::start(&env);
    let (s, list) = get_json(d2.addr, "/calls?limit=10").await;
    assert_eq!(s, 200, "{list}");
    let ids: Vec<&str> = list["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["call_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["hist-ws", "hist-rec"], "newest first");
    assert_eq!(list["calls"][1]["language"], "en", "{list}");
    let (s, call) = get_json(d2.addr, "/calls/hist-ws").await;
    assert_eq!(s, 200);
    assert_eq!(call["transport"], "stream");
    assert!(
        call["created_at"].as_str().unwrap().ends_with('Z'),
        "{call}"
    );
    assert_eq!(texts(&call)[1].1, said);
    let (s, only_new) = get_json(d2.addr, "/calls?since=2999-01-01T00:00:00Z").await;
    assert_eq!((s, only_new["calls"].as_array().unwrap().len()), (200, 0));

    // The calls the killed daemon held are interrupted, not left live for ever.
    let (_, ws) = get_json(d2.addr, "/calls/hist-ws").await;
    assert_eq!(
        (ws["status"].as_str(), ws["outcome"].as_str()),
        (Some("interrupted"), Some("voxd_restarted")),
        "{ws}"
    );
    let (_, rec) = get_json(d2.addr, "/calls/hist-rec").await;
    assert_eq!(rec["status"], "interrupted", "{rec}");

    // The recording-mode call goes on: its next turn remembers the conversation.
    let url = h.serve(
        "hist2.mp3",
        Served::Bytes(encode(&h.speak("And on Sunday?"), "mp3")),
    );
    let (s, next) = post_json(
        format!("http://{}/voximplant/process_audio", d2.addr),
        json!({"call_id": "hist-rec", "audio_url": url}),
        true,
    )
    .await;
    assert_eq!(s, 200, "{next}\n{}", d2.logs());
    let (s, live) = get_json(d2.addr, "/voximplant/calls/hist-rec").await;
    assert_eq!(s, 200, "{live}");
    assert_eq!(live["turns"], 2, "{live}");
    let memory: Vec<&str> = live["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(memory.len(), 5, "{live}");
    assert_eq!(memory[1], turn["user_text"].as_str().unwrap());
    assert_eq!(memory[3], next["user_text"].as_str().unwrap());
    let (_, rec) = get_json(d2.addr, "/calls/hist-rec").await;
    assert_eq!(rec["status"], "active", "going on again: {rec}");
    assert_eq!(rec["language"], "en", "{rec}");

    // The scenario's end of the call reaches the history even though the daemon that held the
    // live call is gone.
    let (s, body) = post_json(
        format!("http://{}/voximplant/events", d2.addr),
        json!({"call_id": "hist-rec", "event": "Disconnected", "reason": "Normal call clearing"}),
        true,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let (_, rec) = get_json(d2.addr, "/calls/hist-rec").await;
    assert_eq!(
        (rec["status"].as_str(), rec["outcome"].as_str()),
        (Some("ended"), Some("Normal call clearing"))
    );
    assert_eq!(rec["events"][1]["event"], "Disconnected", "{rec}");

    for (path, status, code) in [
        ("/calls/no-such-call", 404, "unknown_call"),
        ("/calls?limit=0", 422, "invalid_request"),
        ("/calls?limit=5000", 422, "invalid_request"),
        ("/calls?since=yesterday", 422, "invalid_request"),
    ] {
        let (s, body) = get_json(d2.addr, path).await;
        assert_eq!(
            (s, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}: {body}"
        );
    }
    let resp = common::client()
        .get(format!("http://{}/calls", d2.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "the history needs the token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_stalls_its_writers_but_not_the_server() {
    let h = harness();
    let db = common::test_config().history.database;
    // Another process's write transaction: voxd's writes wait for it (busy_timeout).
    let blocker = rusqlite::Connection::open(&db).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    // More waiting writes than the server's runtime has worker threads (2).
    let writes: Vec<_> = (0..4)
        .map(|i| {
            tokio::spawn(post_json(
                format!("http://{}/voximplant/events", h.api),
                json!({"call_id": format!("db-locked-{i}"), "event": "Connected", "mode": "stream"}),
                true,
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let asked = std::time::Instant::now();
    let health = common::client()
        .get(format!("http://{}/health", h.api))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    let waited = asked.elapsed();
    assert_eq!(health.status(), 200);
    assert!(
        !writes.iter().any(|w| w.is_finished()),
        "the writes wait for the lock"
    );
    assert!(
        waited < Duration::from_millis(1500),
        "/health waited {waited:?} behind the database"
    );
    blocker.execute_batch("COMMIT").unwrap();
    for (i, w) in writes.into_iter().enumerate() {
        assert_eq!(w.await.unwrap().0, 200);
        let id = format!("db-locked-{i}");
        let (s, call) = get_json(h.api, &format!("/calls/{id}")).await;
        assert_eq!(
            (s, call["status"].as_str()),
            (200, Some("active")),
            "{call}"
        );
        let (s, _) = post_json(
            format!("http://{}/voximplant/events", h.api),
            json!({"call_id": id, "event": "Disconnected"}),
            true,
        )
        .await;
        assert_eq!(s, 200);
    }
}
