//! `voxd mic` against a real sound server: each test starts its own PulseAudio with two
//! virtual devices (a null sink whose monitor is the microphone, and a null sink that is the
//! speaker), reached by voxd through cpal and ALSA's "pulse" plugin. A Piper-spoken question
//! goes into the microphone; what voxd plays on the speaker is recorded and heard by Whisper.
//! Also: the device list, and clear errors for a missing device, a missing sound server and
//! a sound server that goes away mid-conversation.

mod common;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{repo, shared_words, test_config, wer};
use voxd::audio::{decode, resample, STT_RATE};
use voxd::engines::stt::Stt;

const QUESTION: &str = "Hello, can you tell me what time you open on Saturday?";

/// A private PulseAudio server, killed when dropped.
struct SoundServer {
    dir: tempfile::TempDir,
    child: Child,
}

impl SoundServer {
    /// Starts the server and waits until it answers; fails the test with the reason if it
    /// cannot start.
    fn start() -> SoundServer {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("native");
        let conf = dir.path().join("default.pa");
        std::fs::write(
            &conf,
            format!(
                "load-module module-native-protocol-unix socket={} auth-anonymous=1\n\
                 load-module module-null-sink sink_name=speaker rate=48000 channels=2\n\
                 load-module module-null-sink sink_name=micfeed rate=44100 channels=1\n\
                 set-default-sink speaker\n\
                 set-default-source micfeed.monitor\n",
                socket.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("pulseaudio.log")).unwrap();
        let mut cmd = Command::new("pulseaudio");
        cmd.args([
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--no-cpu-limit",
            "-n",
            "-F",
        ])
        .arg(&conf)
        .args([
            "--log-target=stderr",
            "--log-level=info",
            "--use-pid-file=no",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
        private_env(&mut cmd, dir.path());
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot run pulseaudio ({e}): install it with scripts/install-deps")
        });
        let mut server = SoundServer { dir, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!(
                    "pulseaudio exited ({status}) before it served:\n{}",
                    server.log()
                );
            }
            let info = server.command("pactl").arg("info").output().unwrap();
            if info.status.success() {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "pulseaudio did not answer within 30 s:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pulseaudio.log")).unwrap_or_default()
    }

    /// A command that talks to this server (and only to it).
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        private_env(&mut c, self.dir.path());
        c.env(
            "PULSE_SERVER",
            format!("unix:{}", self.dir.path().join("native").display()),
        );
        c
    }
}

impl Drop for SoundServer {
    /// Stops the server; when the test failed, shows what the server logged, since a
    /// server that went away mid-test is otherwise invisible.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let state = match self.child.try_wait() {
                Ok(Some(status)) => format!("had exited ({status})"),
                _ => "was still running".to_string(),
            };
            eprintln!("pulseaudio {state}; its log:\n{}", self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runtime and config directories of a private sound session, under `dir`.
fn private_env(c: &mut Command, dir: &Path) {
    c.env("HOME", dir)
        .env("XDG_RUNTIME_DIR", dir)
        .env("XDG_CONFIG_HOME", dir)
        .env("PULSE_RUNTIME_PATH", dir.join("runtime"))
        .env_remove("PULSE_SINK")
        .env_remove("PULSE_SOURCE");
}

fn voxd(c: &mut Command) -> &mut Command {
    c.current_dir(repo())
        .env_remove("VOXD_CONFIG")
        .env_remove("RUST_LOG")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Whisper (tiny.en) on a WAV file.
fn hear(stt: &Stt, path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let pcm = decode::decode(&bytes, f64::INFINITY).unwrap();
    let pcm = resample::to_rate(pcm, STT_RATE).unwrap();
    stt.transcribe(&pcm.samples).unwrap().text
}

/// Lines of a child's stdout, as they come.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads lines into `seen` until one satisfies `want`; a hang fails the test after `limit`.
fn wait_for_line(
    rx: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    what: &str,
    limit: Duration,
    want: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push(line.clone());
                if want(&line) {
                    return line;
                }
            }
            Err(e) => panic!(
                "no {what} from voxd mic ({e:?}); it printed:\n{}",
                seen.join("\n")
            ),
        }
    }
}

/// Starts `voxd mic` on the server's virtual devices (with `extra` arguments) and waits
/// until it has said its greeting and listens; returns it, its stdout lines and those seen.
fn start_listening(
    server: &SoundServer,
    extra: &[&OsStr],
    stderr: Stdio,
) -> (Child, mpsc::Receiver<String>, Vec<String>) {
    let mut mic = voxd(&mut server.command(env!("CARGO_BIN_EXE_voxd")))
        .args(["mic", "--input", "pulse", "--output", "pulse"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let lines = lines_of(&mut mic);
    let mut seen = Vec::new();
    let long = Duration::from_secs(180);
    wait_for_line(&lines, &mut seen, "greeting", long, |l| {
        l.starts_with("replying: ")
    });
    wait_for_line(&lines, &mut seen, "listening", long, |l| {
        l.starts_with("listening")
    });
    (mic, lines, seen)
}

fn interrupt(child: &Child) {
    let status = Command::new("sh")
        .args(["-c", &format!("kill -INT {}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn answers_a_spoken_question_through_the_sound_server() {
    let server = SoundServer::start();
    let work = tempfile::tempdir().unwrap();
    let question = work.path().join("question.wav");
    let out = voxd(&mut Command::new(env!("CARGO_BIN_EXE_voxd")))
        .args(["say", QUESTION, "-o"])
        .arg(&question)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));

    let saved = work.path().join("saved");
    let (mut mic, lines, mut seen) = start_listening(
        &server,
        &["--save".as_ref(), saved.as_os_str()],
        Stdio::inherit(),
    );
    let long = Duration::from_secs(180);

    // Record the speaker from now on: only the answer.
    let captured = work.path().join("speaker.wav");
    let mut recorder = server
        .command("parecord")
        .args(["-d", "speaker.monitor", "--file-format=wav"])
        .arg(&captured)
        .spawn()
        .unwrap();
    let played = server
        .command("paplay")
        .args(["-d", "micfeed"])
        .arg(&question)
        .status()
        .unwrap();
    assert!(played.success(), "paplay failed");

    let heard = wait_for_line(&lines, &mut seen, "heard:", long, |l| {
        l.starts_with("heard")
    });
    wait_for_line(&lines, &mut seen, "latency", long, |l| {
        l.starts_with("latency: ")
    });
    wait_for_line(&lines, &mut seen, "listening", long, |l| {
        l.starts_with("listening")
    });
    interrupt(&recorder);
    assert!(recorder.wait().unwrap().success(), "parecord failed");
    interrupt(&mic);
    let status = mic.wait().unwrap();
    let rest: Vec<String> = lines.iter().collect();
    seen.extend(rest);
    let printed = seen.join("\n");
    assert!(
        status.success(),
        "Ctrl-C must end voxd mic cleanly: {status}\n{printed}"
    );
    assert!(printed.contains("saved caller.wav"), "{printed}");

    // voxd heard the question…
    let heard = heard.trim_start_matches("heard: ");
    assert!(wer(QUESTION, heard) <= 0.35, "voxd heard {heard}");
    // …and what came out of the speaker is its answer, not an echo of the question.
    let replied: String = seen
        .iter()
        .skip_while(|l| !l.starts_with("heard: "))
        .filter_map(|l| l.strip_prefix("replying: "))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(!replied.is_empty(), "{printed}");
    let cfg = test_config();
    let stt = Stt::load(&cfg.models.stt, &cfg.stt).unwrap();
    let spoken = hear(&stt, &captured);
    eprintln!("voxd mic printed:\n{printed}\nWhisper on the speaker: {spoken}");
    assert!(
        spoken.split_whitespace().count() >= 3,
        "the speaker played no speech: {spoken:?}"
    );
    assert!(
        spoken.chars().filter(|c| c.is_ascii_alphabetic()).count() * 2 > spoken.len(),
        "not English text: {spoken:?}"
    );
    assert!(
        wer(QUESTION, &spoken) > 0.5,
        "the speaker played the question back: {spoken:?}"
    );
    assert!(
        shared_words(&spoken, &replied).len() >= 2,
        "the speaker's audio ({spoken:?}) is not the reply voxd printed ({replied:?})"
    );

    // --save: both sides and the transcript.
    let transcript = std::fs::read_to_string(saved.join("transcript.txt")).unwrap();
    assert!(transcript.contains("] caller: "), "{transcript}");
    assert!(transcript.contains("] voxd: "), "{transcript}");
    let caller = hear(&stt, &saved.join("caller.wav"));
    assert!(
        shared_words(&caller, QUESTION).len() >= 3,
        "caller.wav: {caller:?}"
    );
    let assistant = hear(&stt, &saved.join("assistant.wav"));
    assert!(
        shared_words(&assistant, &replied).len() >= 2,
        "assistant.wav: {assistant:?}"
    );
}

#[test]
fn lists_devices_with_and_without_the_sound_server() {
    let server = SoundServer::start();
    let out = voxd(&mut server.command(env!("CARGO_BIN_EXE_voxd")))
        .args(["mic", "--list-devices"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let usable = stdout
        .split("cannot be opened now:")
        .next()
        .unwrap_or_default();
    assert!(
        usable.contains("alsa:pulse") && usable.contains("record: 48000 Hz"),
        "{stdout}"
    );

    let dead = server.dir.path().join("no-server-here");
    let out = voxd(&mut server.command(env!("CARGO_BIN_EXE_voxd")))
        .env("PULSE_SERVER", format!("unix:{}", dead.display()))
        .args(["mic", "--list-devices"])
        .output()
        .unwrap();
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    let (usable, unusable) = stdout.split_once("cannot be opened now:").unwrap();
    assert!(!usable.contains("alsa:pulse"), "{stdout}");
    assert!(unusable.contains("alsa:pulse"), "{stdout}");
}

#[test]
fn missing_devices_and_sound_server_are_clear_errors() {
    let server = SoundServer::start();
    let dead = server.dir.path().join("no-server-here");
    let cases: [(&[&str], Option<&PathBuf>, &str); 3] = [
        (
            &["--input", "nonexistent"],
            None,
            "no audio device named \"nonexistent\"",
        ),
        (
            &["--output", "nonexistent"],
            None,
            "no audio device named \"nonexistent\"",
        ),
        (
            &["--input", "pulse", "--output", "pulse"],
            Some(&dead),
            "cannot use the microphone \"alsa:pulse\"",
        ),
    ];
    for (args, pulse_server, expected) in cases {
        let mut c = server.command(env!("CARGO_BIN_EXE_voxd"));
        voxd(&mut c).arg("mic").args(args);
        if let Some(p) = pulse_server {
            c.env("PULSE_SERVER", format!("unix:{}", p.display()));
        }
        let out = c.output().unwrap();
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(
            stderr.contains("voxd mic --list-devices"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stdout.contains("loading the models"), "{args:?}: {stdout}");
    }
}

#[test]
fn a_sound_server_that_goes_away_ends_voxd_with_a_clear_error() {
    let mut server = SoundServer::start();
    let (mut mic, _lines, _) = start_listening(&server, &[], Stdio::piped());
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    // voxd notices on its own (no Ctrl-C) and exits; a hang fails the test.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = mic.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = mic.kill();
            panic!("voxd mic still runs 60 s after its sound server died");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut mic.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stopped working"), "{stderr}");
    assert!(stderr.contains("restart the sound server"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
