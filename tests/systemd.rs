//! The systemd integration: the unit file passes `systemd-analyze verify`, and `voxd serve`
//! speaks the notify protocol (READY=1 after the models load, watchdog pings, STOPPING=1
//! and a clean exit on SIGTERM) to a socket standing in for systemd.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn unit_file_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(common::repo().join("systemd/voxd.service")).unwrap();
    assert!(unit.contains("Type=notify") && unit.contains("WatchdogSec="));
    // Point ExecStart at the binary just built (the installed path does not exist here).
    let unit = unit.replace("/opt/voxd/bin/voxd", env!("CARGO_BIN_EXE_voxd"));
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
