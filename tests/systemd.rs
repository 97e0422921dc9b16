//! The systemd integration: the unit file (and the GPU drop-in) pass `systemd-analyze verify`
//! and the unit is rated "OK" (exposure at most 2.0) by `systemd-analyze security`,
//! the engines run without writable+executable memory (MemoryDenyWriteExecute), and `voxd serve`
//! speaks the notify protocol (READY=1 after the models load, watchdog pings, STOPPING=1
//! and a clean exit on SIGTERM) to a socket standing in for systemd.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

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
