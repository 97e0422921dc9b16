//! Graceful shutdown. After SIGTERM or Ctrl-C voxd refuses new calls (503 `draining`) while
//! the live ones go on: HTTP turns in progress, open media streams, and recording-mode
//! calls not yet ended. When they are all over, or `server.drain_grace_secs` has passed (or
//! a second signal came), the media streams still open are closed and the server stops.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use axum::http::StatusCode;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;

use super::error::ApiError;
use crate::calls::Calls;

/// How often the drain looks whether the live calls are over.
const POLL: Duration = Duration::from_millis(100);
/// How long closing media streams and open connections may take once the calls are ended.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The shutdown state shared by the handlers; cheap to clone.
#[derive(Clone)]
pub struct Drain(Arc<Inner>);

struct Inner {
    draining: AtomicBool,
    busy: AtomicUsize,
    stop: watch::Sender<bool>,
}

impl Default for Drain {
    fn default() -> Self {
        Self(Arc::new(Inner {
            draining: AtomicBool::new(false),
            busy: AtomicUsize::new(0),
            stop: watch::channel(false).0,
        }))
    }
}

/// Work in progress (an HTTP turn, an open media stream) that the drain waits for.
pub struct Busy(Drain);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0 .0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drain {
    pub fn is_draining(&self) -> bool {
        self.0.draining.load(Ordering::SeqCst)
    }

    /// Refuses a new call (503 `draining`) once shutdown has begun.
    pub fn admit_new_call(&self) -> Result<(), ApiError> {
        if self.is_draining() {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "draining",
                "voxd is shutting down and takes no new calls",
            ));
        }
        Ok(())
    }

    /// Marks work in progress until the guard is dropped.
    pub fn busy(&self) -> Busy {
        self.0.busy.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    fn busy_count(&self) -> usize {
        self.0.busy.load(Ordering::SeqCst)
    }

    /// A receiver that turns true when the calls still live must end now.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.0.stop.subscribe()
    }

    /// Resolves once the calls still live have been told to end.
    pub async fn stopped(self) {
        let mut rx = self.stop_signal();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// SIGTERM and SIGINT (Ctrl-C), installed before voxd says it is ready so that no signal
/// finds the default handler.
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    pub fn install() -> Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// The next signal's name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Refuses new calls, waits for the live ones up to the grace period (or another signal),
/// ends what is left, and waits briefly for the streams and the server to close.
pub async fn run(
    drain: &Drain,
    calls: &Calls,
    grace: Duration,
    signals: &mut Signals,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
) {
    drain.0.draining.store(true, Ordering::SeqCst);
    crate::notify::notify("STOPPING=1\nSTATUS=draining: finishing the live calls");
    let live = || calls.active() + drain.busy_count();
    tracing::info!(
        calls = calls.active(),
        in_progress = drain.busy_count(),
        grace_secs = grace.as_secs(),
        "draining: new calls are refused, live calls go on"
    );
    let over = async {
        while live() > 0 {
            tokio::time::sleep(POLL).await;
        }
    };
    tokio::select! {
        () = over => tracing::info!("all calls are over"),
        () = tokio::time::sleep(grace) => {
            tracing::warn!(left = live(), "grace period over: ending the calls still live");
        }
        sig = signals.recv() => tracing::warn!(left = live(), "{sig} again: ending the calls still live"),
    }
    drain.0.stop.send_replace(true);
    let closed = async {
        let _ = server.await;
        while drain.busy_count() > 0 {
            tokio::time::sleep(POLL).await;
        }
    };
    if tokio::time::timeout(CLOSE_WAIT, closed).await.is_err() {
        tracing::warn!(
            left = drain.busy_count(),
            "requests still running at exit are dropped"
        );
    }
}
