//! Live call sessions: per-call conversation history, keyed by the scenario's call id,
//! created on first contact, ended by a Disconnected/Failed event, the end of its media
//! stream, or after idling too long. Each end is counted in the metrics by its outcome.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::engines::llm::ChatMessage;
use crate::metrics::{Metrics, Transport};

/// One call's state. Locked for the length of a turn so a call's turns run in order.
#[derive(Debug)]
pub struct CallSession {
    pub history: Vec<ChatMessage>,
    pub turns: u32,
    pub started: Instant,
    /// Media-stream replies: end of the caller's turn → first reply frame sent, in ms.
    pub reply_latencies_ms: Vec<f64>,
}

impl Default for CallSession {
    /// A session starting now, with no history yet.
    fn default() -> Self {
        Self {
            history: Vec::new(),
            turns: 0,
            started: Instant::now(),
            reply_latencies_ms: Vec::new(),
        }
    }
}

struct Entry {
    session: Arc<tokio::sync::Mutex<CallSession>>,
    transport: Transport,
    last_active: Instant,
}

/// The table of live calls.
pub struct Calls {
    table: Mutex<HashMap<String, Entry>>,
    idle_timeout: Duration,
    metrics: Arc<Metrics>,
}

impl Calls {
    pub fn new(idle_timeout: Duration, metrics: Arc<Metrics>) -> Self {
        Self {
            table: Mutex::new(HashMap::new()),
            idle_timeout,
            metrics,
        }
    }

    /// The call's session, created (reached over `transport`) if it is new.
    pub fn session(
        &self,
        call_id: &str,
        transport: Transport,
    ) -> Arc<tokio::sync::Mutex<CallSession>> {
        let mut table = self.lock();
        let now = Instant::now();
        let entry = table.entry(call_id.to_string()).or_insert_with(|| {
            tracing::info!(call_id, transport = transport.as_str(), "call started");
            Entry {
                transport,
                session: Arc::new(tokio::sync::Mutex::new(CallSession::default())),
                last_active: now,
            }
        });
        entry.last_active = now;
        entry.session.clone()
    }

    /// The call's session if it is live (does not create one).
    pub fn find(&self, call_id: &str) -> Option<Arc<tokio::sync::Mutex<CallSession>>> {
        self.lock().get(call_id).map(|e| e.session.clone())
    }

    /// Ends a call (`outcome` says how, for the metrics); false when no such call is live.
    pub fn end(&self, call_id: &str, outcome: &str) -> bool {
        let removed = self.lock().remove(call_id);
        if let Some(e) = &removed {
            let turns = e.session.try_lock().map(|s| s.turns).unwrap_or_default();
            tracing::info!(call_id, turns, outcome, "call ended");
            self.metrics.call_ended(e.transport, outcome);
        }
        removed.is_some()
    }

    /// Live calls, after dropping those idle past the timeout.
    pub fn active(&self) -> usize {
        self.expire().len()
    }

    /// Live calls by transport (after expiry).
    pub fn active_by_transport(&self) -> [(Transport, usize); 2] {
        let table = self.expire();
        [Transport::Recording, Transport::Stream]
            .map(|t| (t, table.values().filter(|e| e.transport == t).count()))
    }

    /// The table, after dropping the calls idle past the timeout.
    fn expire(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        let mut table = self.lock();
        let timeout = self.idle_timeout;
        table.retain(|id, e| {
            let keep = e.last_active.elapsed() < timeout;
            if !keep {
                tracing::info!(call_id = %id, "call expired after idling");
                self.metrics.call_ended(e.transport, "expired");
            }
            keep
        });
        table
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_and_expiry() {
        let metrics = Arc::new(Metrics::default());
        let calls = Calls::new(Duration::from_millis(50), metrics.clone());
        let a = calls.session("a", Transport::Recording);
        assert!(Arc::ptr_eq(&a, &calls.session("a", Transport::Recording)));
        calls.session("b", Transport::Stream);
        assert_eq!(calls.active(), 2);
        assert_eq!(
            calls.active_by_transport(),
            [(Transport::Recording, 1), (Transport::Stream, 1)]
        );
        assert!(calls.end("a", "disconnected"));
        assert!(!calls.end("a", "disconnected"));
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(calls.active(), 0);
        let text = metrics.render(&calls.active_by_transport(), false);
        for line in [
            "voxd_calls_total{transport=\"recording\",outcome=\"disconnected\"} 1",
            "voxd_calls_total{transport=\"stream\",outcome=\"expired\"} 1",
            "voxd_calls_active{transport=\"stream\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in {text}");
        }
    }
}
