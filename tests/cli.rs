//! The `voxd` binary itself: help, `check`, `say` → `transcribe`, clear failures, and the
//! one-ggml link (both -sys crates share a single ggml).

mod common;

use std::process::Command;

use common::{repo, wer};

fn voxd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_voxd"));
    c.current_dir(repo()).env_remove("VOXD_CONFIG");
    c
}

fn run(c: &mut Command) -> (bool, String, String) {
    let out = c.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn help_lists_every_command() {
    let (ok, out, _) = run(voxd().arg("--help"));
    assert!(ok);
    for cmd in ["serve", "transcribe", "say", "chat", "check", "bench"] {
        assert!(out.contains(cmd), "--help lacks {cmd}: {out}");
    }
}

#[test]
fn check_say_transcribe_and_chat_with_the_test_models() {
    // A misspelled override is named, and the check still passes.
    let (ok, out, err) = run(voxd().arg("check").env("VOXD_SERVER_BIDN", "0.0.0.0:80"));
    assert!(ok, "{out}{err}");
    assert!(
        format!("{out}{err}").contains("VOXD_SERVER_BIDN names no config key and is ignored"),
        "{out}{err}"
    );
    for line in [
        "stt: ok",
        "llm: ok",
        "tts: ok",
        "English only",
        "voice language en-us",
        "models/test/ggml-tiny.en.bin: present, 77.7 MB, sha256 ok (models/test/SHA256SUMS)",
        "models/test/en_US-joe-medium.onnx.json: present, 4794 bytes, sha256 ok",
        "language: English only (stt.language = \"auto\")",
        "language: en (manifest.toml)",
        "language: en_US (espeak-ng voice en-us)",
    ] {
        assert!(out.contains(line), "check output lacks {line:?}: {out}");
    }

    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("hello.wav");
    let text = "Good afternoon, this is a test of the voice.";
    let (ok, _, err) = run(voxd().args(["say", text, "-o"]).arg(&wav));
    assert!(ok, "{err}");
    let (ok, out, err) = run(voxd().arg("transcribe").arg(&wav));
    assert!(ok, "{err}");
    assert!(wer(text, out.trim()) <= 0.35, "heard {out:?}");

    // Several times: chat stops reading the reply after its sentence limit while the LLM
    // thread is still generating, and exiting then once crashed the process.
    for _ in 0..5 {
        let mut child = voxd()
            .arg("chat")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"Tell me a long story about a dragon.\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "chat: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!String::from_utf8_lossy(&out.stdout).trim().is_empty());
    }
}

#[test]
fn missing_models_and_bad_config_fail_clearly() {
    let (ok, out, err) = run(voxd()
        .arg("check")
        .env("VOXD_MODELS_LLM", "/nonexistent/model.gguf")
        .env("VOXD_MODELS_ONNXRUNTIME", "/nonexistent/libonnxruntime.so"));
    assert!(!ok);
    assert!(
        out.contains("llm: FAILED") && out.contains("fetch-test-models"),
        "{out}"
    );
    assert!(
        out.contains("tts: FAILED") && out.contains("ONNX Runtime library"),
        "{out}"
    );
    assert!(err.contains("failed the check"), "{err}");

    let (ok, _, err) = run(voxd().arg("serve").env("VOXD_SERVER_BIND", "0.0.0.0:0"));
    assert!(!ok);
    assert!(err.contains("server.token"), "{err}");

    // A port already taken fails at once, before the models load.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (ok, out, err) = run(voxd().arg("serve").env("VOXD_SERVER_BIND", &addr));
    assert!(!ok);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    assert!(!out.contains("loaded"), "the models loaded first: {out}");

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[server]\nbnd = 1\n").unwrap();
    let (ok, _, err) = run(voxd().arg("--config").arg(&cfg).arg("check"));
    assert!(!ok);
    assert!(err.contains("bnd"), "{err}");
}

#[test]
fn check_reports_a_damaged_model_as_a_checksum_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("ggml-tiny.en.bin");
    let mut bytes = std::fs::read(repo().join("models/test/ggml-tiny.en.bin")).unwrap();
    std::fs::copy(
        repo().join("models/test/SHA256SUMS"),
        dir.path().join("SHA256SUMS"),
    )
    .unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&model, &bytes).unwrap();
    let (ok, out, err) = run(voxd().arg("check").env("VOXD_MODELS_STT", &model));
    assert!(!ok, "{out}");
    assert!(
        out.contains("stt: FAILED: not loaded: a file failed its checksum"),
        "{out}"
    );
    assert!(
        out.contains("sha256 MISMATCH") && out.contains("SHA256SUMS says"),
        "{out}"
    );
    assert!(out.contains("llm: ok") && out.contains("tts: ok"), "{out}");
    assert!(err.contains("1 engine(s) failed the check"), "{err}");

    // The intact file without a SHA256SUMS line: loads, reported as not pinned.
    bytes[middle] ^= 0x55;
    std::fs::write(&model, &bytes).unwrap();
    std::fs::write(dir.path().join("SHA256SUMS"), "").unwrap();
    let (ok, out, err) = run(voxd().arg("check").env("VOXD_MODELS_STT", &model));
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("stt: ok") && out.contains("sha256 not pinned"),
        "{out}"
    );
}

#[test]
fn bench_turn_taking_judges_whole_and_cut_sentences() {
    let dir = repo().join("models/speech/asterisk-en");
    let (ok, out, err) = run(voxd()
        .args(["bench", "turn-taking", "--limit", "3", "--dir"])
        .arg(&dir));
    assert!(ok, "{out}{err}");
    let decisions = out
        .lines()
        .find(|l| l.contains(" decisions: "))
        .unwrap_or_else(|| panic!("no summary: {out}"));
    // Three sentences, and the twelve numbers read from the digits.
    assert!(decisions.contains(" 15 complete turns"), "{decisions}");
    for policy in ["words (before)", "model, then words", "model by threshold"] {
        assert!(out.contains(policy), "{policy}: {out}");
    }
    assert!(out.contains("model time per decision p50"), "{out}");

    let empty = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(voxd()
        .args(["bench", "turn-taking", "--dir"])
        .arg(empty.path()));
    assert!(!ok && err.contains("scripts/fetch-test-speech"), "{err}");
    let (ok, _, err) = run(voxd()
        .args(["bench", "turn-taking", "--dir"])
        .arg(&dir)
        .env("VOXD_MODELS_TURN", ""));
    assert!(!ok && err.contains("needs the end-of-turn model"), "{err}");
}

#[test]
fn bench_wer_scores_recorded_speech_and_names_what_is_missing() {
    let dir = repo().join("models/speech/asterisk-en");
    assert!(
        dir.join("transcripts.txt").is_file(),
        "test speech missing: run scripts/fetch-test-speech (scripts/test does)"
    );
    let (ok, out, err) = run(voxd()
        .args(["bench", "wer", "--limit", "4", "--dir"])
        .arg(&dir));
    assert!(ok, "{out}{err}");
    assert!(out.contains(": 4 recordings ("), "{out}");
    let summary = out
        .lines()
        .find(|l| l.starts_with("WER "))
        .unwrap_or_else(|| panic!("no summary: {out}"));
    let percent: f64 = summary[4..].split(' ').next().unwrap().parse().unwrap();
    assert!(percent < 30.0, "{summary}");
    assert!(summary.contains("RTF "), "{summary}");

    let (ok, _, err) = run(voxd().args(["bench", "wer"]));
    assert!(!ok && err.contains("bench wer needs --dir"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(voxd().args(["bench", "wer", "--dir"]).arg(empty.path()));
    assert!(
        !ok && err.contains("cannot read the transcript file")
            && err.contains("scripts/fetch-test-speech"),
        "{err}"
    );
    std::fs::write(empty.path().join("transcripts.txt"), "gone: nothing here\n").unwrap();
    let (ok, _, err) = run(voxd().args(["bench", "wer", "--dir"]).arg(empty.path()));
    assert!(!ok && err.contains("no recording of"), "{err}");
}

#[test]
fn a_gguf_without_a_chat_template_is_named_by_check_and_at_start() {
    // The test LLM with its template's metadata key renamed (same length, so the GGUF stays
    // valid): llama.cpp finds no `tokenizer.chat_template`, as in a base model's GGUF.
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("no-template.gguf");
    let mut bytes =
        std::fs::read(repo().join("models/test/SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    let key = b"tokenizer.chat_template";
    let at = bytes
        .windows(key.len())
        .position(|w| w == key)
        .expect("the test LLM has a chat template");
    bytes[at + key.len() - 1] = b'X';
    std::fs::write(&model, &bytes).unwrap();
    let (ok, out, err) = run(voxd().arg("check").env("VOXD_MODELS_LLM", &model));
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("llm: warning: the LLM carries no chat template")
            && out.contains("falls back to ChatML"),
        "{out}"
    );
    // The intact model: no warning.
    let (_, out, _) = run(voxd().arg("check"));
    assert!(!out.contains("chat template"), "{out}");
    // At start, in the daemon's log.
    let d = common::daemon::Daemon::start(&[("VOXD_MODELS_LLM", model.to_str().unwrap())]);
    let logs = d.logs();
    assert!(
        logs.contains("WARN") && logs.contains("the LLM carries no chat template"),
        "{logs}"
    );
}

#[test]
fn check_loads_each_languages_own_voice_and_names_one_of_another_language() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("voxd.toml");
    let joe = repo().join("models/test/en_US-joe-medium.onnx");
    let missing = dir.path().join("de_DE-nobody.onnx");
    // The config file's folder is not the repository: the test models by their full paths.
    let models = repo().join("models/test");
    let model = |name: &str| format!("{:?}", models.join(name).to_str().unwrap());
    let toml = |voice: &std::path::Path| {
        format!(
            "[models]\nstt = {}\nllm = {}\nvoice = {}\nonnxruntime = {}\n\n\
             [conversation]\nlanguage = \"auto\"\n\n[languages.ru]\nvoice = {:?}\n",
            model("ggml-tiny.en.bin"),
            model("SmolLM2-135M-Instruct.Q4_1.gguf"),
            model("en_US-joe-medium.onnx"),
            model("libonnxruntime.so.1.24.4"),
            voice.to_str().unwrap()
        )
    };
    std::fs::write(&config, toml(&joe)).unwrap();
    let (ok, out, err) = run(voxd().arg("check").env("VOXD_CONFIG", &config));
    assert!(ok, "{out}{err}");
    assert!(out.contains("tts (ru): ok"), "{out}");
    assert!(
        out.contains("tts (ru): warning: languages.ru.voice speaks en-us, not ru"),
        "{out}"
    );
    std::fs::write(&config, toml(&missing)).unwrap();
    let (ok, out, _) = run(voxd().arg("check").env("VOXD_CONFIG", &config));
    assert!(!ok, "{out}");
    assert!(
        out.contains("tts (ru): FAILED") && out.contains("or set languages.ru.voice"),
        "{out}"
    );
}

#[test]
fn the_binary_links_exactly_one_ggml() {
    let out = Command::new("nm")
        .arg("--defined-only")
        .arg(env!("CARGO_BIN_EXE_voxd"))
        .output()
        .expect("nm (binutils)");
    assert!(out.status.success());
    let syms = String::from_utf8_lossy(&out.stdout);
    let count = |name: &str| {
        syms.lines()
            .filter(|l| l.split_whitespace().last() == Some(name))
            .count()
    };
    assert_eq!(count("ggml_init"), 1);
    // No ggml/gguf function is defined twice (two copies would duplicate all of them).
    let mut ggml: Vec<&str> = syms
        .lines()
        .filter(|l| l.contains(" T "))
        .filter_map(|l| l.split_whitespace().last())
        .filter(|n| n.starts_with("ggml_") || n.starts_with("gguf_"))
        .collect();
    let total = ggml.len();
    ggml.sort_unstable();
    ggml.dedup();
    assert!(total > 100, "only {total} ggml functions found");
    assert_eq!(ggml.len(), total, "some ggml functions are defined twice");
    assert_eq!(count("whisper_init_from_file_with_params_no_state"), 1);
    assert_eq!(count("llama_model_load_from_file"), 1);
}
