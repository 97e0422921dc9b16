//! The assistant's tools with the real test LLM under the real grammar: a spoken request
//! for a human gets `action: "transfer"` with the operator's number, a caller's details
//! become a lead in SQLite that reaches a webhook (which fails once and then accepts it), a
//! closing remark ends the call; and whatever the model writes under the grammar, the reply
//! ends in a tool call that parses. The 135M test model is steered by the configured
//! examples (`tools.examples`) and greedy decoding, never by a fixed answer.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use common::{harness, test_config, wait_until};
use serde_json::Value;
use voxd::calls::history::History;
use voxd::config::Config;
use voxd::conversation::prompt;
use voxd::conversation::tools::{self, Lead, Tools};
use voxd::engines::Engines;
use voxd::engines::{ChatMessage, LlmEvent, Role};
use voxd::metrics::Transport;

const OPERATOR: &str = "+74950000000";

/// A reply without a tool, so the model sees that most replies call none.
const PLAIN: (&str, &str) = ("Do you sell cakes?", "Yes, we sell cakes.");
const HANGUP: (&str, &str) = (
    "That is all, thank you.",
    r#"Thank you for calling, goodbye! <tool_call>{"name": "hangup"}</tool_call>"#,
);
const LEADS: [(&str, &str); 2] = [
    (
        "I'm Bob, my number is 555 000 1111, I need bread.",
        r#"Thank you, Bob, we will call you back. <tool_call>{"name": "save_lead", "arguments": {"name": "Bob", "phone": "5550001111", "request": "bread"}}</tool_call>"#,
    ),
    (
        "This is Kate, phone 555 987 6543, I want cookies.",
        r#"Thank you, Kate, we will call you back. <tool_call>{"name": "save_lead", "arguments": {"name": "Kate", "phone": "5559876543", "request": "cookies"}}</tool_call>"#,
    ),
];
const TRANSFER: (&str, &str) = (
    "Connect me to an operator.",
    r#"Connecting you to an operator. <tool_call>{"name": "transfer"}</tool_call>"#,
);

/// The exchanges that show the 135M model when and how to call a tool (it copies the
/// nearest one: each test shows the one it is about, after a plain reply).
fn examples(shown: &[(&str, &str)]) -> Vec<[String; 2]> {
    shown
        .iter()
        .map(|(a, b)| [a.to_string(), b.to_string()])
        .collect()
}

fn tools_config(webhook: &str, shown: &[(&str, &str)]) -> Config {
    let mut cfg = test_config();
    cfg.llm.system_prompt =
        "You are the phone assistant of Sunny Bakery. Reply in one short sentence.".into();
    cfg.calls.hangup_phrases = Vec::new(); // only the model ends calls here
    cfg.conversation.greeting = String::new();
    cfg.download.allow_private = true;
    cfg.tools.enabled = true;
    cfg.tools.operator_phone = OPERATOR.into();
    // An American bakery: numbers said without "+1" are completed with it.
    cfg.tools.phone_country = voxd::config::PhoneCountry::Us;
    cfg.tools.lead_webhook = webhook.into();
    cfg.tools.webhook_backoff_ms = 50;
    cfg.tools.webhook_timeout_secs = 5.0;
    cfg.tools.examples = examples(shown);
    // A history of its own: a voxd starting on another test's history would deliver that
    // test's pending leads again.
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    cfg.history.database = std::env::temp_dir().join(format!(
        "voxd-tools-history-{}-{}.db",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    cfg
}

/// The API with the tools on, on `cfg`.
async fn api(cfg: Config) -> SocketAddr {
    let engines = Arc::new(Engines::load(&cfg).expect("engines load"));
    common::spawn_api(cfg, engines).await
}

/// A lead webhook on loopback: answers 500 to the first `fail_first` requests, then 200,
/// and keeps every body it got.
#[derive(Clone, Default)]
struct Webhook {
    bodies: Arc<Mutex<Vec<Value>>>,
    fail_first: usize,
}

async fn hook(State(w): State<Webhook>, Json(body): Json<Value>) -> StatusCode {
    let mut bodies = w.bodies.lock().unwrap();
    bodies.push(body);
    if bodies.len() <= w.fail_first {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

async fn start_webhook(w: Webhook) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/leads", post(hook)).with_state(w);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// One recording turn: Piper says `words`, the API at `api` answers.
async fn turn(api: SocketAddr, call_id: &str, words: &str) -> Value {
    let h = harness();
    common::recording_turn(api, call_id, common::encode(&h.speak(words), "wav")).await
}

async fn stored_call(api: SocketAddr, call_id: &str) -> Value {
    common::get_json(api, &format!("/calls/{call_id}")).await.1
}

fn tool_events(call: &Value) -> Vec<String> {
    call["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["event"].as_str().map(String::from))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_for_a_human_is_answered_with_a_transfer_to_the_operator() {
    let api = api(tools_config("", &[PLAIN, TRANSFER])).await;
    let body = turn(api, "tools-transfer", "Please connect me to an operator.").await;
    assert_eq!(body["action"], "transfer", "{body}");
    assert_eq!(body["transfer_to"], OPERATOR);
    let said = body["reply_text"].as_str().unwrap();
    assert!(!said.is_empty() && !said.contains('<'), "{said:?}");
    assert!(tool_events(&stored_call(api, "tools-transfer").await).contains(&"transfer".into()));
    let metrics = common::metrics_text(api).await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "voxd_tool_calls_total{tool=\"transfer\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_details_become_a_stored_lead_delivered_after_a_failed_try() {
    let webhook = Webhook {
        fail_first: 1,
        ..Webhook::default()
    };
    let hook_addr = start_webhook(webhook.clone()).await;
    let cfg = tools_config(
        &format!("http://{hook_addr}/leads"),
        &[PLAIN, LEADS[0], LEADS[1]],
    );
    let db = cfg.history.database.clone();
    let api = api(cfg).await;
    let words = "My name is Ann. My phone number is 555 123 4567. I would like a birthday cake.";
    let body = turn(api, "tools-lead", words).await;
    assert_eq!(body["action"], "continue", "{body}");

    // Stored at once, with the call and the time.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (name, phone, request, at): (String, String, String, i64) = conn
        .query_row(
            "SELECT name, phone, request, at FROM leads WHERE call_id = 'tools-lead'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    // The caller's details as Whisper heard them ("Ann" or "Anne"), not the examples'.
    let heard = body["user_text"].as_str().unwrap();
    assert!(
        name.starts_with("Ann") && heard.contains(&name),
        "{name:?}, heard {heard:?}"
    );
    assert_eq!(phone, "+15551234567", "heard {heard:?}");
    assert!(request.contains("cake"), "{request:?}");
    assert!(at > 0);

    // The webhook refused the first try; the retry got the same lead as JSON.
    wait_until(
        "second request to the webhook (the retry)",
        Duration::from_secs(30),
        || async {
            let got = webhook.bodies.lock().unwrap().len();
            if got >= 2 {
                Ok(())
            } else {
                Err(format!("{got} request(s)"))
            }
        },
    )
    .await;
    let bodies = webhook.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[1]["call_id"], "tools-lead");
    assert_eq!(bodies[1]["name"], name.as_str());
    assert_eq!(bodies[1]["phone"], phone.as_str());
    assert_eq!(bodies[1]["request"], request.as_str());
    assert!(bodies[1]["lead_id"].as_i64().is_some());
    let delivery = wait_until(
        "delivered state of the lead in the history",
        Duration::from_secs(10),
        || async {
            let (d, attempts): (String, i64) = conn
                .query_row(
                    "SELECT delivery, attempts FROM leads WHERE call_id = 'tools-lead'",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            let delivery = format!("{d} after {attempts}");
            if d == "delivered" {
                Ok(delivery)
            } else {
                Err(delivery)
            }
        },
    )
    .await;
    assert_eq!(delivery, "delivered after 2");
    assert!(tool_events(&stored_call(api, "tools-lead").await).contains(&"save_lead".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closing_remark_is_answered_with_a_goodbye_and_a_hangup() {
    let api = api(tools_config("", &[PLAIN, HANGUP])).await;
    let body = turn(api, "tools-hangup", "That is all, thank you very much.").await;
    assert_eq!(body["action"], "hangup", "{body}");
    assert!(body.get("transfer_to").is_none());
    assert!(tool_events(&stored_call(api, "tools-hangup").await).contains(&"hangup".into()));
}

/// Whatever the model writes under the grammar (even cut short by a tiny length limit), the
/// text before the tail has no `<` and the tail, when there is one, parses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_constrained_reply_ends_in_a_parseable_tool_call_or_none() {
    let mut cfg = tools_config("", &[HANGUP, LEADS[0], PLAIN, TRANSFER]);
    cfg.llm.max_reply_tokens = 6;
    let llm = voxd::engines::llm::Llm::load(&cfg.models.llm, &cfg.llm, 1, None).unwrap();
    let offered = Tools::from_config(&cfg.tools).unwrap();
    let grammar = offered.llm_grammar();
    llm.check_grammar(&grammar.gbnf).unwrap();
    let mut calls = 0;
    for question in [
        "Connect me to an operator.",
        "I'm Tom, my number is 555 222 3333, I need rolls.",
        "Write <html> tags and JSON for me.",
    ] {
        let mut messages = prompt::head(&cfg.llm.system_prompt, Some(&offered), false);
        messages.push(ChatMessage {
            role: Role::User,
            content: question.into(),
        });
        let mut stream = llm.reply(messages, Some(&grammar)).unwrap();
        let mut raw = String::new();
        while let Some(ev) = stream.next().await {
            match ev {
                LlmEvent::Text(t) => raw.push_str(&t),
                LlmEvent::Done { .. } => break,
                LlmEvent::Error(e) => panic!("{e}"),
            }
        }
        match tools::tail_start(&raw) {
            Some(i) => {
                assert!(!raw[..i].contains('<'), "{raw:?}");
                assert!(!raw[..i].trim().is_empty(), "{raw:?}");
                tools::parse(&raw[i..], &offered)
                    .unwrap_or_else(|e| panic!("{question:?} → {raw:?}: {e}"));
                calls += 1;
            }
            None => assert!(!raw.contains('<'), "{raw:?}"),
        }
    }
    // The examples lead the model into calls even past the 6-token limit: they are finished.
    assert!(calls >= 1, "no reply called a tool");
}

fn lead(name: &str) -> Lead {
    Lead {
        name: name.into(),
        phone: "+79991234567".into(),
        request: format!("{name} wants a cake"),
    }
}

/// Webhook delivery across restarts: leads a previous run stored but the webhook never
/// took (voxd stopped between tries, or the tries ran out) reach it when voxd starts again;
/// delivered ones are not sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leads_left_undelivered_reach_the_webhook_when_voxd_starts_again() {
    let webhook = Webhook::default();
    let hook_addr = start_webhook(webhook.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db");
    {
        let h = History::open(&db).unwrap();
        h.call_started("earlier", Transport::Recording).unwrap();
        h.add_lead("earlier", &lead("Pending"), "pending").unwrap();
        let failed = h.add_lead("earlier", &lead("Failed"), "pending").unwrap();
        h.lead_attempt(failed, Some("the webhook answered 500"), true)
            .unwrap();
        let done = h
            .add_lead("earlier", &lead("Delivered"), "pending")
            .unwrap();
        h.lead_attempt(done, None, false).unwrap();
    }
    let url = format!("http://{hook_addr}/leads");
    let db_path = db.to_str().unwrap();
    let daemon = tokio::task::block_in_place(|| {
        common::daemon::Daemon::start(&[
            ("VOXD_HISTORY_DATABASE", db_path),
            ("VOXD_TOOLS_LEAD_WEBHOOK", &url),
        ])
    });
    let conn = rusqlite::Connection::open(&db).unwrap();
    let states = wait_until(
        "delivery of every stored lead",
        Duration::from_secs(30),
        || async {
            let mut stmt = conn
                .prepare("SELECT name, delivery FROM leads ORDER BY id")
                .unwrap();
            let states: Vec<String> = stmt
                .query_map([], |r| {
                    Ok(format!(
                        "{} {}",
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?
                    ))
                })
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            if states.iter().all(|s| s.ends_with(" delivered")) {
                Ok(states)
            } else {
                Err(format!("{states:?}; voxd logged:\n{}", daemon.logs()))
            }
        },
    )
    .await;
    assert_eq!(
        states,
        [
            "Pending delivered",
            "Failed delivered",
            "Delivered delivered"
        ],
        "{}",
        daemon.logs()
    );
    let mut names: Vec<String> = webhook
        .bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| {
            assert_eq!(b["call_id"], "earlier", "{b}");
            assert!(
                b["created_at"].as_str().is_some_and(|t| t.len() > 10),
                "{b}"
            );
            b["name"].as_str().unwrap().to_string()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["Failed", "Pending"]);
    assert!(daemon
        .logs()
        .contains("delivering the leads a previous run kept"));
}
