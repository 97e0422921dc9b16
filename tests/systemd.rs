//! The systemd integration: the unit file (and the GPU drop-in) pass `systemd-analyze verify`
//! and the unit is rated "OK" (exposure at most 2.0) by `systemd-analyze security`,
//! the engines run without writable+executable memory (MemoryDenyWriteExecute), `voxd serve`
//! answers calls confined as the unit confines it (its system call filter, no W+X memory, the
//! tokens as credentials), and it speaks the notify protocol (READY=1 after the models load,
//! watchdog pings, STOPPING=1 and a clean exit on SIGTERM) to a socket standing in for systemd.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::{encode, harness, Served};
use serde_json::json;
use voxd::bench::caller::{is_type, Caller};
use voxd::transport::voximplant_ws::protocol::Encoding;

/// `systemd-analyze verify` on the unit, with ExecStart pointed at the binary just built (the
/// installed path does not exist here) and `extra` appended (a drop-in's sections).
fn verify_unit(extra: &str) {
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(common::repo().join("systemd/voxd.service")).unwrap();
    let unit = unit.replace("/opt/voxd/bin/voxd", env!("CARGO_BIN_EXE_voxd")) + extra;
    let path = dir.path().join("voxd.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let problems: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("voxd.service"))
        .collect();
    assert!(out.status.success() && problems.is_empty(), "{stderr}");
}

#[test]
fn unit_file_verifies() {
    let unit = std::fs::read_to_string(common::repo().join("systemd/voxd.service")).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=always",
        "StartLimitIntervalSec=0\n",
        "SystemCallFilter=@system-service\n",
        "ProtectProc=invisible\n",
        "UMask=0077\n",
        "LoadCredential=voxd:/etc/voxd/credentials\n",
        "MemoryDenyWriteExecute=yes",
        "CapabilityBoundingSet=\n",
        "ReadWritePaths=/var/lib/voxd\n",
    ] {
        assert!(unit.contains(line), "the unit lacks {line:?}");
    }
    // Stopping waits for the drain: well above the default grace for live calls (30 s).
    let stop: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .and_then(|v| v.parse().ok())
        .expect("TimeoutStopSec in seconds");
    assert!(
        stop >= 45,
        "TimeoutStopSec={stop} leaves no time to drain calls"
    );
    // Open files: the default connection cap, with room for the models and the database.
    let files: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("LimitNOFILE="))
        .and_then(|v| v.parse().ok())
        .expect("LimitNOFILE");
    let connections = u64::from(voxd::config::Config::default().server.max_connections);
    assert!(
        files >= 2 * connections,
        "LimitNOFILE={files} for {connections} connections"
    );
    verify_unit("");
}

#[test]
fn the_unit_is_rated_ok_by_systemd_analyze_security() {
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(common::repo().join("systemd/voxd.service")).unwrap();
    let path = dir.path().join("voxd.service");
    std::fs::write(
        &path,
        unit.replace("/opt/voxd/bin/voxd", env!("CARGO_BIN_EXE_voxd")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    let text = String::from_utf8_lossy(&out.stdout);
    let exposure: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for voxd.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in {text}"));
    assert!(exposure <= 2.0, "exposure {exposure}: {text}");
}

#[test]
fn gpu_drop_in_verifies() {
    let drop_in = std::fs::read_to_string(common::repo().join("systemd/voxd-gpu.conf")).unwrap();
    assert!(drop_in.contains("PrivateDevices=no") && drop_in.contains("DeviceAllow="));
    verify_unit(&format!("\n{drop_in}"));
}

/// Runs `voxd ARGS` with the kernel's memory-deny-write-execute (PR_SET_MDWE, kept across exec),
/// which forbids what systemd's MemoryDenyWriteExecute= forbids: memory both writable and
/// executable, or made executable later.
fn voxd_without_wx_memory(args: &[&str]) -> std::process::Output {
    Command::new("python3")
        .current_dir(common::repo())
        .env_remove("VOXD_CONFIG")
        .args(["-c", MDWE_EXEC, env!("CARGO_BIN_EXE_voxd")])
        .args(args)
        .output()
        .unwrap()
}

const MDWE_EXEC: &str = "import ctypes, os, sys
assert ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) == 0, 'kernel without PR_SET_MDWE (Linux >= 6.3)'
os.execv(sys.argv[1], sys.argv[1:])";

#[test]
fn engines_run_without_writable_executable_memory() {
    // The mode is real: under it, asking for writable + executable memory fails.
    let probe = Command::new("python3")
        .args(["-c", MDWE_EXEC, "/usr/bin/python3", "-c"])
        .arg(
            "import ctypes; libc = ctypes.CDLL(None); libc.mmap.restype = ctypes.c_void_p; \
             p = libc.mmap(None, 4096, 7, 0x22, -1, 0); print('refused' if p in (None, 2**64 - 1) else 'granted')",
        )
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&probe.stdout).trim(), "refused");

    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("q.wav");
    let text = "Good afternoon, when are you open tomorrow?";
    let out = voxd_without_wx_memory(&["say", text, "-o", wav.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = voxd_without_wx_memory(&["transcribe", wav.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let heard = String::from_utf8_lossy(&out.stdout);
    assert!(common::wer(text, heard.trim()) <= 0.35, "heard {heard:?}");
    let out = voxd_without_wx_memory(&["check"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs its arguments' last part confined as the unit's `SystemCallFilter=` lines confine
/// voxd: argv[1] the allowed groups and calls, argv[2] the denied ones, both expanded by
/// `systemd-analyze syscall-filter` (this systemd's own lists) and loaded as a seccomp filter
/// that fails every other call with EPERM (`SystemCallErrorNumber=EPERM`), after
/// `NoNewPrivileges=` and the kernel's memory-deny-write-execute; then execs argv[3...].
const CONFINE_EXEC: &str = "import ctypes, os, subprocess, sys
def expand(names):
    calls = set()
    for name in names:
        if not name.startswith('@'):
            calls.add(name)
            continue
        out = subprocess.run(['systemd-analyze', 'syscall-filter', name], capture_output=True, text=True, check=True).stdout
        calls |= expand([l.strip() for l in out.splitlines()[1:] if l.strip() and not l.strip().startswith('#')])
    return calls
calls = expand(sys.argv[1].split()) - expand(sys.argv[2].split())
assert len(calls) > 300, calls
lib = ctypes.CDLL('libseccomp.so.2')
lib.seccomp_init.restype = ctypes.c_void_p
lib.seccomp_init.argtypes = [ctypes.c_uint32]
lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
lib.seccomp_load.argtypes = [ctypes.c_void_p]
ctx = lib.seccomp_init(0x00050000 | 1)
for name in sorted(calls):
    nr = lib.seccomp_syscall_resolve_name(name.encode())
    if nr != -1:
        assert lib.seccomp_rule_add(ctx, 0x7fff0000, nr, 0) == 0, name
libc = ctypes.CDLL(None)
assert libc.prctl(38, 1, 0, 0, 0) == 0
assert libc.prctl(65, 1, 0, 0, 0) == 0, 'kernel without PR_SET_MDWE (Linux >= 6.3)'
assert lib.seccomp_load(ctx) == 0
os.execv(sys.argv[3], sys.argv[3:])";

/// The unit's `SystemCallFilter=` lines: the allowed groups and calls, then the denied ones.
fn unit_syscall_filter() -> (String, String) {
    let unit = std::fs::read_to_string(common::repo().join("systemd/voxd.service")).unwrap();
    let (mut allow, mut deny) = (Vec::new(), Vec::new());
    for value in unit
        .lines()
        .filter_map(|l| l.strip_prefix("SystemCallFilter="))
    {
        match value.strip_prefix('~') {
            Some(denied) => deny.push(denied),
            None => allow.push(value),
        }
    }
    assert!(!allow.is_empty(), "the unit has no allow list");
    (allow.join(" "), deny.join(" "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_calls_confined_as_the_unit_confines_it() {
    let (allow, deny) = unit_syscall_filter();
    let launcher = ["python3", "-c", CONFINE_EXEC, &allow, &deny];
    // The confinement is real: root itself cannot chroot under it.
    let probe = Command::new(launcher[0])
        .args(&launcher[1..])
        .args(["/usr/bin/python3", "-c", "import os; os.chroot('/')"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&probe.stderr);
    assert!(
        stderr.contains("PermissionError: [Errno 1] Operation not permitted"),
        "{stderr}"
    );

    // The tokens come as systemd passes them (LoadCredential=voxd:/etc/voxd/credentials).
    let creds = tempfile::tempdir().unwrap();
    std::fs::write(
        creds.path().join("voxd_server.scenario_token"),
        "scen-tok\n",
    )
    .unwrap();
    std::fs::write(creds.path().join("voxd_server.admin_token"), "admin-tok\n").unwrap();
    let d = Daemon::start_under(
        &launcher,
        &[
            ("CREDENTIALS_DIRECTORY", creds.path().to_str().unwrap()),
            ("VOXD_DOWNLOAD_ALLOWED_NETWORKS", "[\"127.0.0.2/32\"]"),
        ],
    );
    let h = harness();
    let api = |path: &str| format!("http://{}{path}", d.addr);
    let client = common::client();

    // A recording turn with the scenario's token: download, decode, Whisper, the LLM, Piper.
    let question = "What time do you open tomorrow morning?";
    let url = h.serve(
        "confined.mp3",
        Served::Bytes(encode(&h.speak(question), "mp3")),
    );
    let body = json!({"call_id": "confined-rec", "audio_url": url});
    let refused = client
        .post(api("/voximplant/process_audio"))
        .bearer_auth("test-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        401,
        "the file's token is not the credential's"
    );
    let turn: serde_json::Value = client
        .post(api("/voximplant/process_audio"))
        .bearer_auth("scen-tok")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !common::shared_words(question, turn["user_text"].as_str().unwrap_or("")).is_empty(),
        "{turn}\n{}",
        d.logs()
    );
    let audio = client
        .get(turn["reply_audio_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(audio.status(), 200);
    assert!(audio.bytes().await.unwrap().len() > 8000);

    // A media stream: VAD, the turn, the streamed reply.
    let mut c = Caller::connect(d.addr, "?call_id=confined-ws", Some("scen-tok"))
        .await
        .unwrap();
    c.start(Encoding::Pcm16, "confined-ws").await.unwrap();
    let said = |role: &'static str| {
        move |v: &serde_json::Value| is_type(v, "transcript") && v["role"] == role
    };
    let greeted = c
        .wait_for(
            0,
            "the greeting",
            Duration::from_secs(30),
            said("assistant"),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", d.logs()));
    c.stream(&h.speak(question)).await.unwrap();
    c.silence(1500).await.unwrap();
    let heard = c
        .wait_for(
            greeted + 1,
            "the question",
            Duration::from_secs(60),
            said("user"),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", d.logs()));
    c.wait_for(
        heard + 1,
        "a reply",
        Duration::from_secs(60),
        said("assistant"),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", d.logs()));
    c.close().await;
    let calls = client
        .get(api("/calls"))
        .bearer_auth("admin-tok")
        .send()
        .await
        .unwrap();
    assert_eq!(calls.status(), 200);
    let logs = d.logs();
    assert!(!logs.contains("not permitted"), "{logs}");
}

fn recv(sock: &UnixDatagram, want: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no {want:?} notification within {within:?}"
        );
        sock.set_read_timeout(Some(left)).unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.contains(want) {
                return msg;
            }
        }
    }
}

#[test]
fn serve_notifies_systemd_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .current_dir(common::repo())
        .env_remove("VOXD_CONFIG")
        .env("VOXD_SERVER_BIND", "127.0.0.1:0")
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .arg("serve")
        .spawn()
        .unwrap();
    let ready = recv(&sock, "READY=1", Duration::from_secs(120));
    let addr = ready
        .split("serving on ")
        .nth(1)
        .expect("status names the address")
        .trim()
        .to_string();
    // Ready means ready: the models are loaded and the API answers at once.
    let health: serde_json::Value = reqwest::blocking::get(format!("http://{addr}/health"))
        .and_then(|r| r.json())
        .expect("health right after READY");
    assert_eq!(health["status"], "ok");
    assert!(
        started.elapsed() > Duration::from_millis(200),
        "READY before the models could load"
    );
    recv(&sock, "WATCHDOG=1", Duration::from_secs(2));
    recv(&sock, "WATCHDOG=1", Duration::from_secs(2));
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    recv(&sock, "STOPPING=1", Duration::from_secs(10));
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}
