//! The console's server side on the real daemon (the browser side is tests/node/console.test.js):
//! its files with their Content-Security-Policy, the admin token on its API, the live feed
//! over server-sent events while a real media-stream call is answered, a test call opened
//! with a one-time ticket and stored as `test`, the history's filters and paging, the
//! latency view and the knowledge-base search's errors.

mod common;

use std::time::Duration;

use common::{get_json, harness, post_json, wait_until, TOKEN};
use futures_util::StreamExt;
use serde_json::Value;
use voxd::bench::caller::{is_type, Caller};
use voxd::transport::voximplant_ws::protocol::Encoding;

const QUESTION: &str = "Hello, when do you open on Saturday?";

/// A server-sent-events reader: `(event, data)` pairs as they come.
struct Feed {
    events: tokio::sync::mpsc::UnboundedReceiver<(String, Value)>,
}

impl Feed {
    async fn open() -> Feed {
        let resp = common::client()
            .get(format!("http://{}/console/api/live/stream", harness().api))
            .header("Authorization", common::auth())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut body = resp.bytes_stream();
            let mut text = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                text.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = text.find("\n\n") {
                    let block: String = text.drain(..end + 2).collect();
                    let field = |name: &str| {
                        block
                            .lines()
                            .find_map(|l| l.strip_prefix(name))
                            .map(|v| v.trim().to_string())
                    };
                    if let (Some(event), Some(data)) = (field("event:"), field("data:")) {
                        let _ = tx.send((event, serde_json::from_str(&data).unwrap()));
                    }
                }
            }
        });
        Feed { events }
    }

    /// The next event named `name` about `call_id` (others are skipped).
    async fn next(&mut self, name: &str, call_id: &str) -> Value {
        let wait = async {
            loop {
                let (event, data) = self.events.recv().await.expect("the feed ended");
                if event == name && data["call_id"] == call_id {
                    return data;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .unwrap_or_else(|_| panic!("no {name} for {call_id}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_with_a_strict_policy_and_its_api_needs_the_admin_token() {
    let api = harness().api;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = no_redirects
        .get(format!("http://{api}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 308);
    assert_eq!(root.headers()["location"], "/console/");
    for (path, kind) in [
        ("/console/", "text/html"),
        ("/console/app.js", "text/javascript"),
        ("/console/style.css", "text/css"),
        ("/console/capture-worklet.js", "text/javascript"),
    ] {
        let r = reqwest::get(format!("http://{api}{path}")).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert!(h["content-type"].to_str().unwrap().starts_with(kind));
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
        assert_eq!(h["x-content-type-options"], "nosniff");
    }
    let page = reqwest::get(format!("http://{api}/console/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("<script>"), "no inline script");
    let (s, v) = get_json(api, "/console/nothing.js").await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")));
    for path in [
        "/console/api/live",
        "/console/api/live/stream",
        "/console/api/latency",
        "/console/api/kb?q=x",
    ] {
        let r = reqwest::get(format!("http://{api}{path}")).await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    let (s, _) = post_json(
        format!("http://{api}/console/api/test_call"),
        Value::Null,
        false,
    )
    .await;
    assert_eq!(s, 401);
    let (s, v) = get_json(api, "/console/api/kb?q=").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("invalid_request"))
    );
    let (s, v) = get_json(api, "/console/api/kb?q=opening%20hours").await;
    assert_eq!((s, v["enabled"].as_bool()), (200, Some(false)), "{v}");
    let (s, v) = get_json(api, "/health").await;
    assert_eq!(s, 200);
    assert_eq!(v["languages"]["tts"], "en-us", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_feed_follows_a_call_and_a_ticketed_test_call_is_stored_as_test() {
    let h = harness();
    let question = h.speak(QUESTION);
    let mut feed = Feed::open().await;
    let (event, snapshot) = feed.events.recv().await.unwrap();
    assert_eq!(event, "snapshot");
    assert!(snapshot["calls"].is_array());

    // A console test call: a ticket, not the token, opens the stream, once.
    let (s, started) = post_json(
        format!("http://{}/console/api/test_call", h.api),
        Value::Null,
        true,
    )
    .await;
    assert_eq!(s, 200, "{started}");
    let call_id = started["call_id"].as_str().unwrap().to_string();
    let ticket = started["ticket"].as_str().unwrap();
    assert!(!ticket.contains(TOKEN));
    let mut c = Caller::connect(h.api, &format!("?ticket={ticket}"), None)
        .await
        .unwrap();
    // The call starts with the stream's `start` (a socket that never starts holds no place).
    c.start(Encoding::Pcm16, &call_id).await.unwrap();
    let live = feed.next("call_started", &call_id).await;
    assert_eq!(live["direction"], "test");
    assert_eq!(live["transport"], "stream");
    c.wait_for(0, "greeting", Duration::from_secs(30), |v| {
        is_type(v, "transcript") && v["role"] == "assistant"
    })
    .await
    .unwrap();
    assert!(
        Caller::connect(h.api, &format!("?ticket={ticket}"), None)
            .await
            .is_err(),
        "a ticket opens one stream"
    );

    // Now shows the call with its transcript as it grows.
    let from = c.messages().len();
    c.stream(&question).await.unwrap();
    // The caller's silence ends the turn: the answer comes, and the feed has told of both.
    c.wait_for(from, "the answer", Duration::from_secs(40), |v| {
        is_type(v, "transcript") && v["role"] == "assistant"
    })
    .await
    .unwrap();
    let heard = feed.next("turn", &call_id).await;
    let heard = if heard["role"] == "user" {
        heard
    } else {
        feed.next("turn", &call_id).await
    };
    assert_eq!(heard["role"], "user", "{heard}");
    assert!(common::wer(QUESTION, heard["text"].as_str().unwrap()) <= 0.35);
    let answer = feed.next("turn", &call_id).await;
    assert_eq!(answer["role"], "assistant");
    assert!(answer["latency_ms"].as_f64().unwrap() > 0.0, "{answer}");
    let (_, live) = get_json(h.api, "/console/api/live").await;
    let shown = live["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["call_id"] == call_id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{call_id} not live: {live}"));
    let roles: Vec<_> = shown["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["role"].as_str().unwrap().to_string())
        .collect();
    assert!(
        roles.ends_with(&["user".into(), "assistant".into()]),
        "{roles:?}"
    );
    c.close().await;
    let ended = feed.next("call_ended", &call_id).await;
    assert!(ended["outcome"].is_string());
    wait_until("the call leaves Now", Duration::from_secs(10), || async {
        let (_, live) = get_json(h.api, "/console/api/live").await;
        let gone = !live.to_string().contains(&call_id);
        gone.then_some(()).ok_or("still live")
    })
    .await;

    // History: filtered by direction, paged; the latency view has the reply.
    let (s, listed) = get_json(h.api, "/calls?direction=test&limit=1").await;
    assert_eq!(s, 200);
    assert_eq!(listed["calls"][0]["call_id"], call_id.as_str(), "{listed}");
    assert!(listed["total"].as_u64().unwrap() >= 1);
    let (s, v) = get_json(h.api, "/calls?since=yesterday").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("invalid_request"))
    );
    let (s, latency) = get_json(h.api, "/console/api/latency?limit=50").await;
    assert_eq!(s, 200);
    assert!(
        latency["turns"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["call_id"] == call_id.as_str() && t["voice_to_voice_ms"].is_number()),
        "{latency}"
    );
    assert!(latency["voice_to_voice"]["p95_ms"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_or_expired_tickets_open_nothing() {
    let api = harness().api;
    for query in ["?ticket=0123456789abcdef", "?ticket=&call_id=x"] {
        let refused = Caller::connect(api, query, None)
            .await
            .err()
            .map(|e| e.to_string());
        assert!(
            refused.as_deref().is_some_and(|e| e.contains("401")),
            "{query}: {refused:?}"
        );
    }
}
