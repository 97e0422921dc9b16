//! The knowledge base end to end: a made-up bakery FAQ indexed with the real
//! `voxd kb index`, a real `voxd serve` that answers spoken questions (Piper speaks them, the
//! HTTP recording turn hears them) from it, the hand-off sentence for what the FAQ does not
//! say (over the recording turn and the media stream alike), and the command line's
//! answers and errors; Whisper's prompt holding the FAQ's headings.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::daemon::Daemon;
use common::{harness, post_json, Served};
use serde_json::{json, Value};
use voxd::bench::caller::{is_type, Caller};
use voxd::transport::voximplant_ws::protocol::Encoding;

const FAQ: &str = "# Sunny Bakery\n\n\
    Sunny Bakery is a family bakery. We bake bread, cakes and pastries every morning.\n\n\
    ## Opening hours\n\n\
    We open at 8 am and close at 7 pm, Monday to Saturday. On Sunday we are closed.\n\n\
    ## Prices\n\n\
    A loaf of rye bread costs 4 dollars. A chocolate cake costs 30 dollars.\n\n\
    ## Address\n\n\
    Our bakery is at 12 Maple Street, next to the central station.\n";

const HANDOFF: &str = "I don't know that, shall I connect you to a colleague?";

/// Runs the voxd binary with the built-in defaults and `env`.
fn voxd(args: &[&str], env: &[(&str, &Path)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_voxd"))
        .current_dir(common::repo())
        .env_remove("VOXD_CONFIG")
        .envs(env.iter().map(|(k, v)| (*k, v.as_os_str())))
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// The FAQ (and a file the index skips) in a temp folder, indexed by `voxd kb index`.
fn indexed_faq() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(docs.join("faq.md"), FAQ).unwrap();
    std::fs::write(docs.join("menu.pdf"), b"%PDF-1.4").unwrap();
    let index = dir.path().join("kb");
    let out = voxd(
        &["kb", "index", docs.to_str().unwrap()],
        &[("VOXD_KB_INDEX", &index)],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("indexed 4 passages from 1 files") && said.contains("1 other files skipped"),
        "{said}"
    );
    (dir, index)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoken_questions_are_answered_from_the_faq_or_handed_off() {
    let h = harness();
    let (_dir, index) = indexed_faq();
    let index = index.to_str().unwrap();
    let d = Daemon::start(&[
        ("VOXD_DOWNLOAD_ALLOW_PRIVATE", "true"),
        ("VOXD_KB_ENABLED", "true"),
        ("VOXD_KB_INDEX", index),
        // Whisper expects the FAQ's headings.
        ("VOXD_STT_PROMPT_KB_HEADINGS", "true"),
        // No greeting: with one in the history, the 135M test model tends to repeat it
        // rather than read the passage (real models do not).
        ("VOXD_CONVERSATION_GREETING", ""),
    ]);
    let cases = [
        ("When do you open?", Some("8")),
        ("What is your address?", Some("Maple Street")),
        ("Do you sell bicycles?", None),
    ];
    for (i, (question, fact)) in cases.into_iter().enumerate() {
        let name = format!("kb-{i}.mp3");
        let url = h.serve(
            &name,
            Served::Bytes(common::encode(&h.speak(question), "mp3")),
        );
        let (status, body) = post_json(
            format!("http://{}/voximplant/process_audio", d.addr),
            json!({"call_id": format!("kb-call-{i}"), "audio_url": url}),
            false,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let reply = body["reply_text"].as_str().unwrap();
        match fact {
            Some(fact) => assert!(
                reply.contains(fact),
                "asked {question:?} (heard {}), answered {reply:?}",
                body["user_text"]
            ),
            None => assert_eq!(reply, HANDOFF, "heard {}", body["user_text"]),
        }
        assert_eq!(body["action"], "continue");
    }

    // The media stream's replies come from the same prompt: a fact, then a hand-off.
    let mut caller = Caller::connect(d.addr, "", None).await.unwrap();
    caller.start(Encoding::Pcm16, "kb-stream").await.unwrap();
    let said = |v: &Value| is_type(v, "transcript") && v["role"] == "assistant";
    let wait = Duration::from_secs(60);
    for (question, fact) in [
        ("What is your address?", "Maple Street"),
        ("Do you sell bicycles?", HANDOFF),
    ] {
        let from = caller.messages().len();
        caller.stream(&h.speak(question)).await.unwrap();
        let i = caller.wait_for(from, "answer", wait, said).await.unwrap();
        let answer = caller.messages()[i].json["text"].to_string();
        assert!(
            answer.contains(fact),
            "asked {question:?}, answered {answer}"
        );
    }
    caller.close().await;
    let logs = d.logs();
    assert!(logs.contains("knowledge base loaded"), "{logs}");
}

#[test]
fn search_prints_scored_passages_and_ask_answers_from_them() {
    let (_dir, index) = indexed_faq();
    let env = [("VOXD_KB_INDEX", index.as_path())];
    let out = voxd(&["kb", "search", "How much is the rye bread?"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let first = shown.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("1. [") && first.ends_with("faq.md › Prices"),
        "{shown}"
    );
    assert!(
        shown.contains("A loaf of rye bread costs 4 dollars."),
        "{shown}"
    );
    assert!(text(&out.stderr).contains("of 4 passages in"));

    let out = voxd(&["kb", "ask", "Do you repair bicycles?"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), format!("answer: {HANDOFF}"));
    // Whisper's prompt holds the FAQ's headings when asked to.
    let on = [
        ("VOXD_KB_INDEX", index.as_path()),
        ("VOXD_KB_ENABLED", Path::new("true")),
        ("VOXD_STT_PROMPT_KB_HEADINGS", Path::new("true")),
    ];
    let out = voxd(&["check"], &on);
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{shown}{}", text(&out.stderr));
    assert!(
        shown.contains("tokens with 4 knowledge-base headings"),
        "{shown}"
    );
}

#[test]
fn command_line_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("kb");

    // Serving with the knowledge base on but no index: a clear error, before any model loads.
    let out = voxd(
        &["serve"],
        &[
            ("VOXD_KB_ENABLED", Path::new("true")),
            ("VOXD_KB_INDEX", &missing),
            ("VOXD_SERVER_BIND", Path::new("127.0.0.1:0")),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("knowledge base index") && err.contains("voxd kb index"),
        "{err}"
    );

    let out = voxd(&["kb", "search", "hours"], &[("VOXD_KB_INDEX", &missing)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("voxd kb index"));

    let nowhere = dir.path().join("nowhere");
    let out = voxd(
        &["kb", "index", nowhere.to_str().unwrap()],
        &[("VOXD_KB_INDEX", &missing)],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no such file or folder"));

    let pdf = dir.path().join("menu.pdf");
    std::fs::write(&pdf, b"%PDF-1.4").unwrap();
    let out = voxd(
        &["kb", "index", pdf.to_str().unwrap()],
        &[("VOXD_KB_INDEX", &missing)],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not a .txt, .md or .html file"));

    // An index path that holds something else is never overwritten.
    let md = dir.path().join("faq.md");
    std::fs::write(&md, FAQ).unwrap();
    let out = voxd(
        &["kb", "index", md.to_str().unwrap()],
        &[("VOXD_KB_INDEX", dir.path())],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not a knowledge base index"));
    assert!(pdf.is_file() && md.is_file());
    assert!(!missing.exists());
}
