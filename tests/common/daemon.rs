//! A real `voxd serve` child process on the test models: found through its systemd READY
//! notification, its stdout (the logs) kept in a file, stopped with real signals.

use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    /// Where the daemon's stdout goes.
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `voxd serve` on a free loopback port with the test models and `env` on top;
    /// returns once it says it is ready.
    pub fn start(env: &[(&str, &str)]) -> Daemon {
        Self::start_with(env, |_| Vec::new())
    }

    /// Like [`Daemon::start`]; `more_env` sees the log file and adds variables naming it.
    pub fn start_with(
        env: &[(&str, &str)],
        more_env: impl FnOnce(&std::fs::File) -> Vec<(String, String)>,
    ) -> Daemon {
        Self::spawn(&[], env, more_env)
    }

    /// Like [`Daemon::start`], with `launcher` (a program and its arguments) running
    /// `voxd serve` as its last arguments, as a confining wrapper does.
    pub fn start_under(launcher: &[&str], env: &[(&str, &str)]) -> Daemon {
        Self::spawn(launcher, env, |_| Vec::new())
    }

    fn spawn(
        launcher: &[&str],
        env: &[(&str, &str)],
        more_env: impl FnOnce(&std::fs::File) -> Vec<(String, String)>,
    ) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let sock_path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&sock_path).unwrap();
        let log = dir.path().join("stdout.log");
        let out = std::fs::File::create(&log).unwrap();
        let voxd = env!("CARGO_BIN_EXE_voxd");
        let mut cmd = match launcher.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(voxd);
                cmd
            }
            None => Command::new(voxd),
        };
        cmd.current_dir(super::repo())
            .env_remove("VOXD_CONFIG")
            .env_remove("RUST_LOG")
            .env_remove("JOURNAL_STREAM")
            .env("VOXD_SERVER_BIND", "127.0.0.1:0")
            .env("VOXD_STT_LANGUAGE", "en")
            .env("VOXD_CALLS_MAX_LIVE", "16")
            .env("VOXD_TTS_DETERMINISTIC", "true")
            .env("VOXD_HISTORY_DATABASE", dir.path().join("history.db"))
            .env("NOTIFY_SOCKET", &sock_path)
            .envs(env.iter().copied())
            .envs(more_env(&out))
            .arg("serve")
            .stdout(Stdio::from(out));
        let mut child = cmd.spawn().unwrap();
        // READY=1 (its status names the address) within two minutes in all, however many
        // other notifications come first.
        let within = Duration::from_secs(120);
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 4096];
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let got = if left.is_zero() {
                // (A zero read timeout is refused: the time is simply up.)
                Err(std::io::Error::from(std::io::ErrorKind::TimedOut))
            } else {
                sock.set_read_timeout(Some(left)).unwrap();
                sock.recv(&mut buf)
            };
            let n = match got {
                Ok(n) => n,
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "no READY=1 from voxd serve within {within:?} ({e}); it logged:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            };
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if let Some(addr) = msg.split("serving on ").nth(1) {
                break addr.trim().parse().unwrap();
            }
        };
        Daemon {
            child,
            addr,
            log,
            _dir: dir,
        }
    }

    /// Sends a signal ("TERM", "INT") to the daemon.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// Waits for the daemon to exit (killing it after `within`, which fails the test).
    pub fn wait(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("voxd did not exit within {within:?}:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the daemon has logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
