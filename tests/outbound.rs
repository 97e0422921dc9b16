//! Outbound calls against a stand-in of Voximplant's Management API on loopback: `POST /calls`
//! sends StartScenarios as Voximplant expects it (the method, path and form fields, the
//! custom data with voxd's call id, a JWT signed RS256 by the service account's key and
//! checked here with the public half that openssl derived, or the API-key fields), keeps the
//! call in the history as pending, then active and ended through the scenario's events; and
//! every failure (a bad request, Voximplant's error, 429, no answer, nobody listening, no
//! configuration) is a clear error with the call kept as failed, the daemon serving on.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{harness, post_json, spawn_api, test_config, wait_until, TOKEN};
use serde_json::{json, Value};
use voxd::config::Config;

const RULE_ID: u64 = 4242;
const ACCOUNT_ID: u64 = 5_550_001;
const KEY_ID: &str = "0b4d2c6e-test-key";
const API_KEY: &str = "a1b2c3d4-api-key-not-logged";
const MEDIA_URL: &str = "http://media.voximplant.test/request/session/1";

/// What the Management API stand-in does with StartScenarios.
#[derive(Clone)]
enum Answer {
    Started,
    /// HTTP 200 with `{"error": {"code", "msg"}}`, as Voximplant reports errors.
    Error(i64, &'static str),
    /// HTTP 429 with a Retry-After header.
    TooMany(u64),
    /// An HTTP status with a body that is not the API's JSON.
    Status(u16, &'static str),
    /// Never answers.
    Silent,
}

/// One request as the stand-in saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    content_type: String,
    authorization: Option<String>,
    form: Vec<(String, String)>,
}

impl Seen {
    fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone)]
struct StandIn {
    answer: Answer,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn management_api(State(s): State<StandIn>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let text = |h: header::HeaderName| {
        parts
            .headers
            .get(h)
            .map(|v| v.to_str().unwrap().to_string())
    };
    s.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        content_type: text(header::CONTENT_TYPE).unwrap_or_default(),
        authorization: text(header::AUTHORIZATION),
        form: url::form_urlencoded::parse(&body).into_owned().collect(),
    });
    match s.answer {
        Answer::Started => axum::Json(json!({
            "result": 1,
            "media_session_access_url": MEDIA_URL,
            "media_session_access_secure_url": MEDIA_URL.replace("http:", "https:"),
            "call_session_history_id": 987_654_321u64,
        }))
        .into_response(),
        Answer::Error(code, msg) => {
            axum::Json(json!({"error": {"code": code, "msg": msg}})).into_response()
        }
        Answer::TooMany(secs) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, secs.to_string())],
            "Too Many Requests",
        )
            .into_response(),
        Answer::Status(code, body) => (StatusCode::from_u16(code).unwrap(), body).into_response(),
        Answer::Silent => std::future::pending().await,
    }
}

/// Starts the stand-in on a free loopback port; returns its API URL and what it saw.
async fn start_standin(answer: Answer) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new().fallback(management_api).with_state(StandIn {
        answer,
        seen: seen.clone(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/platform_api"), seen)
}

/// A service account key made by openssl, in the file layout Voximplant hands out.
struct Key {
    dir: tempfile::TempDir,
    /// The public key (PKCS#1 DER), derived by openssl, that verifies the JWTs.
    public_der: Vec<u8>,
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (scripts/install-deps installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Key {
    /// `pkcs1`: the PEM is `BEGIN RSA PRIVATE KEY` rather than PKCS#8's `BEGIN PRIVATE KEY`.
    fn generate(pkcs1: bool) -> Key {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                "key.pem",
            ],
            d,
        );
        if pkcs1 {
            openssl(
                &["rsa", "-in", "key.pem", "-traditional", "-out", "key.pem"],
                d,
            );
        }
        openssl(
            &[
                "rsa",
                "-in",
                "key.pem",
                "-RSAPublicKey_out",
                "-outform",
                "DER",
                "-out",
                "public.der",
            ],
            d,
        );
        let pem = std::fs::read_to_string(d.join("key.pem")).unwrap();
        assert_eq!(
            pem.contains("BEGIN RSA PRIVATE KEY"),
            pkcs1,
            "{}",
            &pem[..40]
        );
        let file = json!({
            "account_email": "dev@example.com",
            "account_id": ACCOUNT_ID,
            "key_id": KEY_ID,
            "private_key": pem,
        });
        std::fs::write(d.join("credentials.json"), file.to_string()).unwrap();
        Key {
            public_der: std::fs::read(d.join("public.der")).unwrap(),
            dir,
        }
    }

    fn credentials(&self) -> PathBuf {
        self.dir.path().join("credentials.json")
    }

    /// Checks the JWT's RS256 signature; returns its header and claims.
    fn verify(&self, jwt: &str) -> (Value, Value) {
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3, "a JWT has three parts: {jwt}");
        let signed = format!("{}.{}", parts[0], parts[1]);
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            &self.public_der,
        )
        .verify(signed.as_bytes(), &signature)
        .expect("the JWT's signature verifies with the service account's public key");
        let decode = |p: &str| -> Value {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
        };
        (decode(parts[0]), decode(parts[1]))
    }
}

/// A voxd API with `[voximplant]` pointing at `api_url`, its own history database.
struct Voxd {
    addr: SocketAddr,
    _db: tempfile::TempDir,
}

async fn start_voxd(configure: impl FnOnce(&mut Config)) -> Voxd {
    let db = tempfile::tempdir().unwrap();
    let mut cfg = test_config();
    cfg.history.database = db.path().join("voxd.db");
    configure(&mut cfg);
    let addr = spawn_api(cfg, harness().engines.clone()).await;
    Voxd { addr, _db: db }
}

async fn with_key(api_url: &str, key: &Key) -> Voxd {
    let (api_url, credentials) = (api_url.to_string(), key.credentials());
    start_voxd(|cfg| {
        cfg.voximplant.api_url = api_url;
        cfg.voximplant.rule_id = RULE_ID;
        cfg.voximplant.credentials = credentials;
    })
    .await
}

async fn with_api_key(api_url: &str, timeout_secs: f64) -> Voxd {
    let api_url = api_url.to_string();
    start_voxd(|cfg| {
        cfg.voximplant.api_url = api_url;
        cfg.voximplant.rule_id = RULE_ID;
        cfg.voximplant.account_id = ACCOUNT_ID;
        cfg.voximplant.api_key = API_KEY.into();
        cfg.voximplant.timeout_secs = timeout_secs;
    })
    .await
}

impl Voxd {
    async fn place(&self, body: Value) -> (u16, Value) {
        post_json(format!("http://{}/calls", self.addr), body, true).await
    }

    async fn call(&self, call_id: &str) -> Value {
        let (status, call) = common::get_json(self.addr, &format!("/calls/{call_id}")).await;
        assert_eq!(status, 200, "{call}");
        call
    }

    async fn event(&self, call_id: &str, event: &str, details: Value) -> u16 {
        let mut body = json!({"call_id": call_id, "event": event, "mode": "stream"});
        body.as_object_mut()
            .unwrap()
            .extend(details.as_object().unwrap().clone());
        post_json(
            format!("http://{}/voximplant/events", self.addr),
            body,
            true,
        )
        .await
        .0
    }

    /// The call of a failed `POST /calls`: kept as failed, with `reason` in its outcome.
    async fn assert_failed(&self, answer: &Value, reason: &str) {
        let call_id = answer["error"]["call_id"]
            .as_str()
            .expect("call_id in the error");
        let call = self.call(call_id).await;
        assert_eq!(call["status"], "failed", "{call}");
        assert_eq!(call["direction"], "outbound");
        let outcome = call["outcome"].as_str().unwrap();
        assert!(outcome.contains(reason), "{outcome}");
        let events: Vec<&str> = call["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(events, ["ScenarioFailed"]);
    }
}

fn only_request(seen: &Arc<Mutex<Vec<Seen>>>) -> Seen {
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    seen[0].clone()
}

/// The method, path and form fields of StartScenarios; returns the custom data.
fn check_start_scenarios(req: &Seen, call_id: &str, phone: &str) {
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/platform_api/StartScenarios/");
    assert_eq!(req.content_type, "application/x-www-form-urlencoded");
    assert_eq!(req.field("rule_id"), Some(RULE_ID.to_string().as_str()));
    let data = req.field("script_custom_data").expect("script_custom_data");
    assert!(data.len() <= 200, "{} bytes: {data}", data.len());
    let data: Value = serde_json::from_str(data).unwrap();
    assert_eq!(data, json!({"call_id": call_id, "phone": phone}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_signs_start_scenarios_and_the_call_goes_pending_active_ended() {
    let key = Key::generate(false);
    let (api_url, seen) = start_standin(Answer::Started).await;
    let voxd = with_key(&api_url, &key).await;

    let context = json!({"customer": "Anna", "order": 1042});
    let (status, placed) = voxd
        .place(json!({"phone": "+79001112233", "context": context}))
        .await;
    assert_eq!(status, 201, "{placed}");
    let call_id = placed["call_id"].as_str().unwrap().to_string();
    assert_eq!(placed["phone"], "+79001112233");
    assert_eq!(placed["status"], "pending");
    assert_eq!(placed.as_object().unwrap().len(), 4, "{placed}");

    let req = only_request(&seen);
    check_start_scenarios(&req, &call_id, "+79001112233");
    assert_eq!(req.field("account_id"), None);
    assert_eq!(req.field("api_key"), None);
    let jwt = req
        .authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .expect("Authorization: Bearer <JWT>");
    let (head, claims) = key.verify(jwt);
    assert_eq!(head["alg"], "RS256");
    assert_eq!(head["kid"], KEY_ID);
    assert_eq!(claims["iss"], ACCOUNT_ID);
    let now = chrono::Utc::now().timestamp();
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert!(iat <= now && now < exp, "iat {iat}, now {now}, exp {exp}");
    assert!(
        exp - iat <= 3600,
        "Voximplant takes tokens of up to an hour"
    );

    // Pending in the history, with the number, the context and Voximplant's session.
    let call = voxd.call(&call_id).await;
    assert_eq!(call["status"], "pending", "{call}");
    assert_eq!(call["direction"], "outbound");
    assert_eq!(call["phone"], "+79001112233");
    assert_eq!(call["context"], context);
    assert_eq!(call["created_at"], placed["created_at"]);
    assert!(call["started_at"].is_null());
    assert_eq!(call["events"][0]["event"], "ScenarioStarted");
    assert_eq!(call["events"][0]["media_session_access_url"], MEDIA_URL);
    assert_eq!(call["events"][0]["call_session_history_id"], 987_654_321u64);

    // The scenario reports the callee answered, then hung up.
    assert_eq!(voxd.event(&call_id, "Connected", json!({})).await, 200);
    let call = voxd.call(&call_id).await;
    assert_eq!(
        (&call["status"], &call["direction"]),
        (&json!("active"), &json!("outbound"))
    );
    assert!(call["started_at"].is_string());
    assert_eq!(
        voxd.event(
            &call_id,
            "Disconnected",
            json!({"reason": "Normal call clearing", "duration": 12})
        )
        .await,
        200
    );
    let call = voxd.call(&call_id).await;
    assert_eq!(call["status"], "ended");
    assert_eq!(call["outcome"], "Normal call clearing");
    assert_eq!(call["direction"], "outbound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pkcs1_key_file_signs_too_and_a_busy_callee_fails_the_call() {
    let key = Key::generate(true);
    let (api_url, seen) = start_standin(Answer::Started).await;
    let voxd = with_key(&api_url, &key).await;
    let (status, placed) = voxd.place(json!({"phone": "+12025550123"})).await;
    assert_eq!(status, 201, "{placed}");
    let call_id = placed["call_id"].as_str().unwrap();
    let req = only_request(&seen);
    check_start_scenarios(&req, call_id, "+12025550123");
    let jwt = &req.authorization.unwrap()["Bearer ".len()..];
    assert_eq!(key.verify(jwt).0["kid"], KEY_ID);

    let failed = json!({"code": 486, "reason": "Busy Here"});
    assert_eq!(voxd.event(call_id, "Failed", failed).await, 200);
    let call = voxd.call(call_id).await;
    assert_eq!(call["status"], "failed");
    assert_eq!(call["outcome"], "486 Busy Here");
    assert_eq!(call["direction"], "outbound");
    assert!(call["context"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_goes_in_the_form_fields() {
    let (api_url, seen) = start_standin(Answer::Started).await;
    let voxd = with_api_key(&api_url, 10.0).await;
    let (status, placed) = voxd.place(json!({"phone": "+447911123456"})).await;
    assert_eq!(status, 201, "{placed}");
    let req = only_request(&seen);
    check_start_scenarios(&req, placed["call_id"].as_str().unwrap(), "+447911123456");
    assert_eq!(
        req.field("account_id"),
        Some(ACCOUNT_ID.to_string().as_str())
    );
    assert_eq!(req.field("api_key"), Some(API_KEY));
    assert_eq!(req.authorization, None);
}

/// A call whose scenario never reports (Voximplant did not run it, or it died) does not stay
/// pending for ever: after `voximplant.pending_timeout_secs` it is failed with `no_report`,
/// while an answered call is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_scenario_never_reports_expires_as_failed() {
    let (api_url, _seen) = start_standin(Answer::Started).await;
    let voxd = start_voxd(|cfg| {
        cfg.voximplant.api_url = api_url;
        cfg.voximplant.rule_id = RULE_ID;
        cfg.voximplant.account_id = ACCOUNT_ID;
        cfg.voximplant.api_key = API_KEY.into();
        cfg.voximplant.pending_timeout_secs = 1;
    })
    .await;
    let (status, silent) = voxd.place(json!({"phone": "+79001112233"})).await;
    assert_eq!(status, 201, "{silent}");
    let (status, answered) = voxd.place(json!({"phone": "+79001112234"})).await;
    assert_eq!(status, 201, "{answered}");
    let (silent, answered) = (
        silent["call_id"].as_str().unwrap(),
        answered["call_id"].as_str().unwrap(),
    );
    assert_eq!(voxd.event(answered, "Connected", json!({})).await, 200);
    let call = wait_until(
        "end of the pending state of the call whose scenario never reports",
        Duration::from_secs(10),
        || async {
            let call = voxd.call(silent).await;
            if call["status"] != "pending" {
                Ok(call)
            } else {
                Err(call)
            }
        },
    )
    .await;
    assert_eq!(call["status"], "failed", "{call}");
    assert_eq!(call["outcome"], "no_report", "{call}");
    assert!(call["ended_at"].is_string(), "{call}");
    assert_eq!(voxd.call(answered).await["status"], "active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voximplant_errors_are_bad_gateway_with_its_code_and_the_call_is_kept_failed() {
    let (api_url, _) = start_standin(Answer::Error(102, "Rule not found")).await;
    let voxd = with_api_key(&api_url, 10.0).await;
    let (status, answer) = voxd.place(json!({"phone": "+79001112233"})).await;
    assert_eq!(status, 502, "{answer}");
    assert_eq!(answer["error"]["code"], "voximplant_error");
    assert_eq!(
        answer["error"]["voximplant"],
        json!({"code": 102, "msg": "Rule not found"})
    );
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Rule not found"));
    voxd.assert_failed(&answer, "Rule not found").await;

    let (api_url, _) = start_standin(Answer::Status(500, "<html>oops</html>")).await;
    let voxd = with_api_key(&api_url, 10.0).await;
    let (status, answer) = voxd.place(json!({"phone": "+79001112233"})).await;
    assert_eq!(status, 502, "{answer}");
    assert_eq!(answer["error"]["code"], "voximplant_bad_response");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("HTTP 500") && message.contains("oops"),
        "{message}"
    );
    voxd.assert_failed(&answer, "HTTP 500").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_is_503_with_voximplants_retry_after() {
    let (api_url, _) = start_standin(Answer::TooMany(7)).await;
    let voxd = with_api_key(&api_url, 10.0).await;
    let resp = common::client()
        .post(format!("http://{}/calls", voxd.addr))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .json(&json!({"phone": "+79001112233"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "7");
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "voximplant_rate_limited");
    assert_eq!(answer["error"]["retry_after_secs"], 7);
    voxd.assert_failed(&answer, "429").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_and_nobody_listening_are_gateway_errors() {
    let (api_url, seen) = start_standin(Answer::Silent).await;
    let voxd = with_api_key(&api_url, 0.5).await;
    let (status, answer) = voxd.place(json!({"phone": "+79001112233"})).await;
    assert_eq!(status, 504, "{answer}");
    assert_eq!(answer["error"]["code"], "voximplant_timeout");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("within 0.5 s"));
    assert_eq!(seen.lock().unwrap().len(), 1, "the request reached the API");
    voxd.assert_failed(&answer, "did not answer").await;

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let voxd = with_api_key(&format!("http://127.0.0.1:{port}/platform_api"), 5.0).await;
    let (status, answer) = voxd.place(json!({"phone": "+79001112233"})).await;
    assert_eq!(status, 502, "{answer}");
    assert_eq!(answer["error"]["code"], "voximplant_unreachable");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("cannot reach"), "{message}");
    assert!(!message.contains(API_KEY), "{message}");
    voxd.assert_failed(&answer, "cannot reach").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_configuration_the_error_names_the_keys_to_set() {
    let voxd = start_voxd(|_| {}).await;
    let (status, answer) = voxd.place(json!({"phone": "+79001112233"})).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "outbound_not_configured");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("voximplant.rule_id") && message.contains("voximplant.credentials"),
        "{message}"
    );
    voxd.assert_failed(&answer, "outbound_not_configured").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_and_nothing_is_dialled() {
    let (api_url, seen) = start_standin(Answer::Started).await;
    let voxd = with_api_key(&api_url, 10.0).await;
    let cases = [
        (
            json!({"phone": "79001112233"}),
            422,
            "invalid_phone",
            "must start with +",
        ),
        (
            json!({"phone": "+7 900 111-22-33"}),
            422,
            "invalid_phone",
            "digits only",
        ),
        (
            json!({"phone": "+0790011122"}),
            422,
            "invalid_phone",
            "cannot start with +0",
        ),
        (
            json!({"phone": "+7900"}),
            422,
            "invalid_phone",
            "has 4 digits",
        ),
        (
            json!({"phone": "+7900111223344556"}),
            422,
            "invalid_phone",
            "has 16 digits",
        ),
        (
            json!({"phone": 79001112233u64}),
            422,
            "invalid_request",
            "phone",
        ),
        (
            json!({"number": "+79001112233"}),
            422,
            "invalid_request",
            "number",
        ),
        (json!({}), 422, "invalid_request", "phone"),
        (
            json!({"phone": "+79001112233", "context": "VIP"}),
            422,
            "invalid_context",
            "not a string",
        ),
        (
            json!({"phone": "+79001112233", "context": {"notes": "x".repeat(5000)}}),
            422,
            "invalid_context",
            "at most 4096",
        ),
    ];
    for (body, status, code, says) in cases {
        let (got, answer) = voxd.place(body.clone()).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{body} → {answer}"
        );
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body} → {message}");
        assert!(
            answer["error"]["call_id"].is_null(),
            "no call for a bad request"
        );
    }
    let raw = |body: &'static str, content_type: &'static str| {
        common::client()
            .post(format!("http://{}/calls", voxd.addr))
            .header("Authorization", format!("Bearer {TOKEN}"))
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };
    let resp = raw("{\"phone\": ", "application/json").await.unwrap();
    assert_eq!(resp.status(), 400);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "invalid_json");
    let resp = raw("phone=+79001112233", "application/x-www-form-urlencoded")
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    let (status, answer) = post_json(
        format!("http://{}/calls", voxd.addr),
        json!({"phone": "+79001112233"}),
        false,
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    assert!(seen.lock().unwrap().is_empty(), "nothing was dialled");
    let list = common::client()
        .get(format!("http://{}/calls", voxd.addr))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(list["calls"], json!([]), "no call records for bad requests");

    // The daemon still places calls.
    let (status, placed) = voxd.place(json!({"phone": "+79001112233"})).await;
    assert_eq!(status, 201, "{placed}");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn a_broken_key_file_stops_start_up_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credentials.json");
    std::fs::write(
        &path,
        r#"{"account_id": 1, "key_id": "k", "private_key": "nope"}"#,
    )
    .unwrap();
    let mut cfg = test_config();
    cfg.history.database = dir.path().join("voxd.db");
    cfg.voximplant.rule_id = RULE_ID;
    cfg.voximplant.credentials = path.clone();
    let engines = harness().engines.clone();
    let err = voxd::server::AppState::new(cfg, &engines, "127.0.0.1:0".parse().unwrap())
        .err()
        .expect("start-up refused");
    let err = format!("{err:#}");
    assert!(
        err.contains("voximplant.credentials") && err.contains(&path.display().to_string()),
        "{err}"
    );
    assert!(err.contains("no -----BEGIN line"), "{err}");
}
