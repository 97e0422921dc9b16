//! Every malformed request, hostile URL and broken recording gets a precise JSON error,
//! and the daemon keeps serving (`/health` stays ok, a good turn still works).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{auth, client, harness, Served};
use serde_json::{json, Value};

async fn post(
    api: SocketAddr,
    path: &str,
    body: reqwest::Body,
    token: Option<&str>,
    content_type: &str,
) -> (u16, Value) {
    let mut req = client()
        .post(format!("http://{api}{path}"))
        .header("Content-Type", content_type)
        .body(body);
    if let Some(t) = token {
        req = req.header("Authorization", t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("error body is not JSON: {text:?}"));
    (status, body)
}

/// POSTs a JSON body with the test token.
async fn post_json(api: SocketAddr, path: &str, body: String) -> (u16, Value) {
    post(api, path, body.into(), Some(&auth()), "application/json").await
}

/// (path, Authorization, Content-Type, body, status, error code, part of the message)
type Case<'a> = (
    &'a str,
    Option<&'a str>,
    &'a str,
    String,
    u16,
    &'a str,
    &'a str,
);

async fn turn_on(api: SocketAddr, url: &str) -> (u16, Value) {
    let body = json!({"call_id": "bad-input", "audio_url": url}).to_string();
    post_json(api, "/voximplant/process_audio", body).await
}

fn assert_error(got: (u16, Value), status: u16, code: &str, message_part: &str) {
    let (s, body) = got;
    assert_eq!(s, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains(message_part),
        "message {msg:?} should mention {message_part:?}"
    );
}

async fn assert_healthy() {
    let h = harness();
    let body: Value = reqwest::get(format!("http://{}/health", h.api))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "ok");
}

fn spoken_mp3() -> Vec<u8> {
    let h = harness();
    common::encode(&h.speak("Please call me back in the morning."), "mp3")
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_recordings() {
    let h = harness();
    let mp3 = spoken_mp3();

    let url = h.serve("missing.mp3", Served::Status(404));
    let url = url.replace("missing.mp3", "never-published.mp3");
    assert_error(
        turn_on(h.api, &url).await,
        502,
        "download_failed",
        "HTTP 404",
    );
    // A network error names no URL (a recording's URL is a capability: it stays out of
    // the answer and the logs).
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let secret = format!("http://{closed}/rec.mp3?signature=s3cr3t");
    let (status, body) = turn_on(h.api, &secret).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("download_failed")),
        "{body}"
    );
    assert!(!body.to_string().contains("s3cr3t"), "{body}");
    // It was asked again before voxd gave up (a fresh recording may take a moment).
    assert!(
        h.hits("never-published.mp3") >= 3,
        "{}",
        h.hits("never-published.mp3")
    );

    // A recording published a moment after RecordStopped is fetched once it is there.
    let url = h.serve("late.mp3", Served::NotYet(2, mp3.clone()));
    let body = turn_on(h.api, &url).await;
    assert_eq!(body.0, 200, "{:?}", body.1);
    assert_eq!(h.hits("late.mp3"), 3);

    let url = h.serve(
        "page.mp3",
        Served::Bytes(b"<html><body>Not found</body></html>".to_vec()),
    );
    assert_error(
        turn_on(h.api, &url).await,
        422,
        "audio_decode",
        "not a supported audio file",
    );

    let url = h.serve("truncated.mp3", Served::Bytes(mp3[..150].to_vec()));
    assert_error(turn_on(h.api, &url).await, 422, "audio_decode", "");

    let wav = common::encode(&h.speak("One two three."), "wav");
    let url = h.serve(
        "truncated.wav",
        Served::Bytes(wav[..wav.len() / 3].to_vec()),
    );
    assert_error(turn_on(h.api, &url).await, 422, "audio_decode", "truncated");

    // A header that claims a 1 Hz or a 4 GHz sample rate: refused, not "answered".
    for (name, rate) in [("slow.wav", 1u32), ("fast.wav", 4_000_000_000)] {
        let mut claimed = wav.clone();
        claimed[24..28].copy_from_slice(&rate.to_le_bytes());
        let url = h.serve(name, Served::Bytes(claimed));
        assert_error(
            turn_on(h.api, &url).await,
            422,
            "audio_decode",
            "sample rate",
        );
    }

    let url = h.serve("huge.mp3", Served::Bytes(vec![0xFF; 3 * 1024 * 1024]));
    assert_error(
        turn_on(h.api, &url).await,
        413,
        "audio_too_large",
        "larger than",
    );

    let url = h.serve(
        "slow.mp3",
        Served::Slow(Duration::from_secs(8), mp3.clone()),
    );
    let started = std::time::Instant::now();
    assert_error(
        turn_on(h.api, &url).await,
        504,
        "download_timeout",
        "did not finish",
    );
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "the timeout was not enforced"
    );

    let body = json!({"call_id": "c", "audio_url": "http://example.org/a.mp3", "duration": 3600})
        .to_string();
    let got = post_json(h.api, "/voximplant/process_audio", body).await;
    assert_error(got, 422, "audio_too_long", "3600");

    assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_urls_are_refused_by_the_production_policy() {
    let h = harness();
    let good = h.serve("allowed.mp3", Served::Bytes(spoken_mp3()));
    // The strict instance allows only the recording host's own address...
    let (status, body) = turn_on(h.strict_api, &good).await;
    assert_eq!(status, 200, "{body}");

    // ...and refuses loopback, private, link-local and metadata addresses, directly or via redirect.
    let api_loopback = format!("http://127.0.0.1:{}/health", h.api.port());
    for url in [
        api_loopback.as_str(),
        "http://localhost:9/x.mp3",
        "http://10.0.0.1/x.mp3",
        "http://192.168.1.10/x.mp3",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:80/x.mp3",
    ] {
        assert_error(
            turn_on(h.strict_api, url).await,
            403,
            "url_refused",
            "address",
        );
    }
    let redirect = h.serve("redirect.mp3", Served::Redirect(api_loopback.clone()));
    assert_error(
        turn_on(h.strict_api, &redirect).await,
        403,
        "url_refused",
        "127.0.0.1",
    );

    for url in [
        "file:///etc/passwd",
        "gopher://example.org/",
        "http://user:pw@example.org/a.mp3",
        "::not a url::",
    ] {
        assert_error(turn_on(h.strict_api, url).await, 422, "invalid_url", "");
    }
    let loop_a = h.serve(
        "loop-a",
        Served::Redirect(format!("http://{}/f/loop-b", h.files)),
    );
    h.serve(
        "loop-b",
        Served::Redirect(format!("http://{}/f/loop-a", h.files)),
    );
    assert_error(
        turn_on(h.strict_api, &loop_a).await,
        502,
        "too_many_redirects",
        "redirects",
    );
    assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_private_never_reaches_link_local_metadata_or_tunnels() {
    let h = harness();
    let mut cfg = common::test_config();
    cfg.download.allow_private = true;
    cfg.download.allowed_networks.clear();
    let api = common::spawn_api(cfg, h.engines.clone()).await;
    // A private address is what allow_private is for: reached (here the recording host).
    let good = h.serve("private-ok.mp3", Served::Bytes(spoken_mp3()));
    let (status, body) = turn_on(api, &good).await;
    assert_eq!(status, 200, "{body}");
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/x.mp3",
        "http://[2002:a9fe:a9fe::1]/x.mp3",
        "http://[2001:0:4136:e378::1]/x.mp3",
        "http://[fec0::1]/x.mp3",
        "http://0.0.0.0/x.mp3",
    ] {
        assert_error(turn_on(api, url).await, 403, "url_refused", "link-local");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn scoped_tokens_open_only_their_endpoints_and_outbound_calls_are_rate_limited() {
    let h = harness();
    let mut cfg = common::test_config();
    cfg.server.token.clear();
    cfg.server.scenario_token = "scenario-secret".into();
    cfg.server.admin_token = "admin-secret".into();
    cfg.voximplant.max_calls_per_minute = 2;
    let api = common::spawn_api(cfg, h.engines.clone()).await;
    let send = |method: reqwest::Method, path: &str, token: Option<&str>| {
        let mut req = client().request(method, format!("http://{api}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap() }
    };
    let events = |token| {
        let req = client()
            .post(format!("http://{api}/voximplant/events"))
            .json(&json!({"call_id": "scoped-1", "event": "Connected", "mode": "stream"}))
            .bearer_auth(token);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    // The scenario token: the Voximplant endpoints, and the media stream.
    assert_eq!(events("scenario-secret").await, 200);
    let mut c = voxd::bench::caller::Caller::connect(api, "", Some("scenario-secret"))
        .await
        .unwrap();
    c.start(voxd::audio::Encoding::Pcm16, "scoped-ws")
        .await
        .unwrap();
    c.close().await;
    // ...and nothing else: 403, with the code that says why.
    for (method, path) in [
        (reqwest::Method::GET, "/calls"),
        (reqwest::Method::GET, "/calls/scoped-1"),
        (reqwest::Method::POST, "/calls"),
        (reqwest::Method::GET, "/metrics"),
    ] {
        let resp = send(method.clone(), path, Some("scenario-secret")).await;
        assert_eq!(resp.status(), 403, "{method} {path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden", "{method} {path}");
    }
    // The admin token opens everything; no token or a wrong one is 401.
    assert_eq!(
        send(reqwest::Method::GET, "/calls", Some("admin-secret"))
            .await
            .status(),
        200
    );
    assert_eq!(
        send(reqwest::Method::GET, "/metrics", Some("admin-secret"))
            .await
            .status(),
        200
    );
    assert_eq!(events("admin-secret").await, 200);
    assert_eq!(
        send(reqwest::Method::GET, "/calls", None).await.status(),
        401
    );
    assert_eq!(
        send(reqwest::Method::GET, "/calls", Some("guess"))
            .await
            .status(),
        401
    );
    assert_eq!(events("guess").await, 401);

    // Outbound calls: two a minute here, the third is 429 with Retry-After.
    let place = || {
        let req = client()
            .post(format!("http://{api}/calls"))
            .bearer_auth("admin-secret")
            .json(&json!({"phone": "+79001234567"}));
        async move { req.send().await.unwrap() }
    };
    for _ in 0..2 {
        // Not configured for Voximplant here: refused for that, but counted.
        assert_eq!(place().await.status(), 503);
    }
    let limited = place().await;
    assert_eq!(limited.status(), 429);
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_requests_and_auth() {
    let h = harness();
    let turn = "/voximplant/process_audio";
    let events = "/voximplant/events";
    let good = json!({"call_id": "x", "audio_url": "http://example.org/a.mp3"}).to_string();
    let token = auth();
    let json_type = "application/json";
    let cases: Vec<Case> = vec![
        (
            turn,
            None,
            json_type,
            good.clone(),
            401,
            "unauthorized",
            "missing",
        ),
        (
            turn,
            Some("Bearer nope"),
            json_type,
            good.clone(),
            401,
            "unauthorized",
            "wrong",
        ),
        (
            turn,
            Some("Basic dGVzdA=="),
            json_type,
            good.clone(),
            401,
            "unauthorized",
            "",
        ),
        (
            turn,
            Some(&token),
            json_type,
            "{not json".into(),
            400,
            "invalid_json",
            "",
        ),
        (
            turn,
            Some(&token),
            "text/plain",
            good.clone(),
            415,
            "unsupported_media_type",
            "",
        ),
        (
            turn,
            Some(&token),
            json_type,
            json!({"call_id": "x"}).to_string(),
            422,
            "invalid_request",
            "audio_url",
        ),
        (
            turn,
            Some(&token),
            json_type,
            json!({"call_id": "", "audio_url": "http://example.org/a.mp3"}).to_string(),
            422,
            "invalid_request",
            "call_id",
        ),
        (
            events,
            Some(&token),
            json_type,
            json!({"call_id": "never-seen", "event": "Disconnected"}).to_string(),
            404,
            "unknown_call",
            "never-seen",
        ),
        (
            events,
            Some(&token),
            json_type,
            json!({"call_id": "x", "event": "Exploded"}).to_string(),
            422,
            "unknown_event",
            "Exploded",
        ),
        (
            events,
            None,
            json_type,
            json!({"call_id": "x", "event": "Connected"}).to_string(),
            401,
            "unauthorized",
            "",
        ),
    ];
    for (path, authz, content_type, body, status, code, part) in cases {
        assert_error(
            post(h.api, path, body.into(), authz, content_type).await,
            status,
            code,
            part,
        );
    }

    // GETs that match no route, the wrong method, an unknown reply audio.
    for (path, status, code) in [
        ("/no/such/path", 404, "not_found"),
        (turn, 405, "method_not_allowed"),
        (
            "/audio/0123456789abcdef0123456789abcdef.wav",
            404,
            "audio_not_found",
        ),
    ] {
        let resp = client()
            .get(format!("http://{}{path}", h.api))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{path}");
        assert_eq!(
            resp.json::<Value>().await.unwrap()["error"]["code"],
            code,
            "{path}"
        );
    }
    // A progressive reply's wait that is not a number of seconds (it once panicked).
    for wait in ["NaN", "inf", "-inf"] {
        let resp = client()
            .get(format!(
                "http://{}/voximplant/replies/0123456789abcdef?wait_secs={wait}",
                h.api
            ))
            .header("Authorization", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 422, "{wait}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_request", "{wait}: {body}");
    }
    assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn call_events_track_active_calls() {
    let h = harness();
    let health = || async {
        let v: Value = reqwest::get(format!("http://{}/health", h.api))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v
    };
    let before = health().await;
    assert_eq!(before["status"], "ok");
    assert!(before["models"]["stt"].as_str().unwrap().contains("tiny"));
    assert!(before["models"]["llm"]
        .as_str()
        .unwrap()
        .contains("SmolLM2"));
    assert!(before["models"]["tts"].as_str().unwrap().contains("joe"));
    assert_eq!(before["version"], env!("CARGO_PKG_VERSION"));

    let ev = |id: &str, event: &str| {
        json!({"call_id": id, "event": event, "reason": "test"}).to_string()
    };
    for id in ["ev-1", "ev-2"] {
        let (s, _) = post_json(h.api, "/voximplant/events", ev(id, "Connected")).await;
        assert_eq!(s, 200);
    }
    let during = health().await["active_calls"].as_u64().unwrap();
    let (s, _) = post_json(h.api, "/voximplant/events", ev("ev-1", "Disconnected")).await;
    assert_eq!(s, 200);
    let (s, _) = post_json(h.api, "/voximplant/events", ev("ev-2", "Failed")).await;
    assert_eq!(s, 200);
    let after = health().await["active_calls"].as_u64().unwrap();
    // Other tests of this binary may hold calls too, so compare the two we control.
    assert!(
        during >= 2 && after <= during - 2,
        "during {during}, after {after}"
    );
    // A repeated end is recorded (the history knows the call); a call voxd never saw is not.
    let (s, body) = post_json(h.api, "/voximplant/events", ev("ev-1", "Disconnected")).await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = post_json(h.api, "/voximplant/events", ev("ev-never", "Disconnected")).await;
    assert_eq!(s, 404, "{body}");
    assert_eq!(body["error"]["code"], "unknown_call");
}
