//! systemd service notifications (`Type=notify`): READY=1 once the models are loaded and the
//! socket is bound, WATCHDOG=1 pings while serving, STOPPING=1 on shutdown. Speaks the
//! `NOTIFY_SOCKET` datagram protocol directly; does nothing when not run by systemd.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends one notification; false when there is no `NOTIFY_SOCKET` or the send failed.
pub fn notify(state: &str) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return false;
    };
    let path = path.to_string_lossy().into_owned();
    let sent = match path.strip_prefix('@') {
        Some(name) => send_abstract(&sock, name, state),
        None => sock.send_to(state.as_bytes(), &path).map(|_| ()),
    };
    if let Err(e) = &sent {
        tracing::warn!("systemd notification {state:?} to {path} failed: {e}");
    }
    sent.is_ok()
}

/// Sends to an abstract socket name (Linux only; systemd exists nowhere else).
#[cfg(target_os = "linux")]
fn send_abstract(sock: &UnixDatagram, name: &str, state: &str) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    sock.send_to_addr(state.as_bytes(), &addr).map(|_| ())
}

#[cfg(not(target_os = "linux"))]
fn send_abstract(_: &UnixDatagram, name: &str, _: &str) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        format!("abstract socket @{name} exists only on Linux"),
    ))
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, if it is meant for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Some(pid) = std::env::var("WATCHDOG_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
    {
        if pid != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}
