//! The live calls, keyed by call id: admitted on first contact by any transport while there
//! is room (`calls.max_live`; beyond it a new call is refused, a call already live never
//! is), recorded as started in the history, ended by a Disconnected/Failed event, the end of
//! a media stream, or after idling too long. Each end and refusal is counted in the metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::history::History;
use super::{CallId, CallLog, CallRecorder};
use crate::metrics::Transport;

struct Entry {
    call: Arc<CallRecorder>,
    last_active: Instant,
}

/// The table of live calls.
pub struct Calls {
    table: Mutex<HashMap<CallId, Entry>>,
    idle_timeout: Duration,
    capacity: usize,
    log: Arc<CallLog>,
}

/// A new call was refused: `live` calls of `capacity` are in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("voxd is at capacity: {live} of {capacity} calls are live")]
pub struct AtCapacity {
    pub live: usize,
    pub capacity: usize,
}

impl Calls {
    /// A table that admits up to `capacity` calls at once.
    pub fn new(idle_timeout: Duration, capacity: usize, log: Arc<CallLog>) -> Self {
        Self {
            table: Mutex::new(HashMap::new()),
            idle_timeout,
            capacity: capacity.max(1),
            log,
        }
    }

    /// Most calls served at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether `id` may go on: a live call always may, a new one while there is room
    /// (counted as refused when there is none).
    pub fn check_room(&self, id: &CallId, transport: Transport) -> Result<(), AtCapacity> {
        let table = self.expire(Instant::now());
        if table.contains_key(id) || table.len() < self.capacity {
            return Ok(());
        }
        let live = table.len();
        drop(table);
        self.log.metrics.call_refused(transport);
        tracing::warn!(call_id = %id, live, capacity = self.capacity, "new call refused: at capacity");
        Err(AtCapacity {
            live,
            capacity: self.capacity,
        })
    }

    /// [`Self::open`] if there is room for the call ([`Self::check_room`]); `test`: a
    /// console test call (stored with the direction `test`).
    pub fn admit(
        &self,
        id: &CallId,
        transport: Transport,
        test: bool,
    ) -> Result<Arc<CallRecorder>, AtCapacity> {
        self.check_room(id, transport)?;
        Ok(self.open_as(id, transport, test))
    }

    /// Where the calls' facts are written.
    pub fn log(&self) -> &Arc<CallLog> {
        &self.log
    }

    /// The call's recorder, the call opened (reached over `transport`) if it is new; the
    /// history notes the call as live either way.
    pub fn open(&self, id: &CallId, transport: Transport) -> Arc<CallRecorder> {
        self.open_as(id, transport, false)
    }

    fn open_as(&self, id: &CallId, transport: Transport, test: bool) -> Arc<CallRecorder> {
        let mut new = false;
        let call = {
            let mut table = self.lock();
            let now = Instant::now();
            let entry = table.entry(id.clone()).or_insert_with(|| {
                tracing::info!(call_id = %id, transport = transport.as_str(), "call started");
                new = true;
                Entry {
                    call: Arc::new(CallRecorder::new(id.clone(), transport, self.log.clone())),
                    last_active: now,
                }
            });
            entry.last_active = now;
            entry.call.clone()
        };
        // A recording-mode call voxd does not hold may be one a restart interrupted: its
        // conversation goes on from the history, in the language it was answered in.
        if new && transport == Transport::Recording {
            let stored = |h: &History| -> anyhow::Result<_> {
                Ok((h.conversation(id.as_str())?, h.language(id.as_str())?))
            };
            match self.log.query(stored) {
                Some(Ok((turns, language))) if !turns.is_empty() => {
                    tracing::info!(call_id = %id, turns = turns.len(), "conversation taken up from the history");
                    call.take_up(turns, language);
                }
                Some(Err(e)) => {
                    tracing::error!("call history: cannot read the conversation: {e:#}")
                }
                _ => {}
            }
        }
        self.log
            .record("the call start", |h| h.call_started(id.as_str(), transport));
        if new && test {
            call.set_direction("test");
            self.log.record("a test call", |h| h.mark_test(id.as_str()));
        } else if new {
            // An outbound call was placed (and stored) before it started.
            if let Some(Ok(Some(direction))) = self.log.query(|h| h.direction(id.as_str())) {
                if direction == "outbound" {
                    call.set_direction("outbound");
                }
            }
        }
        if new {
            self.log.feed.publish("call_started", call.started_fact());
        }
        call
    }

    /// The live calls, as the console's live view shows them, oldest first.
    pub fn live_views(&self) -> Vec<serde_json::Value> {
        let mut calls: Vec<_> = self
            .expire(Instant::now())
            .values()
            .map(|e| e.call.clone())
            .collect();
        calls.sort_by_key(|c| c.started_at());
        calls.iter().map(|c| c.live_view()).collect()
    }

    /// A call left the table (`outcome` says how): counted, its recorder told, and the
    /// console told it is no longer live.
    fn ended(&self, id: &CallId, call: &CallRecorder, outcome: &str) {
        self.log.metrics.call_ended(call.transport(), outcome);
        call.mark_ended();
        let at = crate::calls::history::to_rfc3339(crate::calls::history::now_ms());
        self.log.feed.publish(
            "call_ended",
            serde_json::json!({"call_id": id.as_str(), "outcome": outcome, "at": at}),
        );
    }

    /// The call's recorder if it is live (does not open one).
    pub fn find(&self, id: &CallId) -> Option<Arc<CallRecorder>> {
        self.lock().get(id).map(|e| e.call.clone())
    }

    /// Ends a call (`outcome` says how, for the metrics); false when no such call is live.
    pub fn end(&self, id: &CallId, outcome: &str) -> bool {
        let removed = self.lock().remove(id);
        if let Some(e) = &removed {
            let turns = e.call.turns();
            tracing::info!(call_id = %id, turns, outcome, "call ended");
            self.ended(id, &e.call, outcome);
        }
        removed.is_some()
    }

    /// Live calls, after dropping those idle past the timeout (and not held by a transport).
    pub fn active(&self) -> usize {
        self.expire(Instant::now()).len()
    }

    /// Live calls of the server's transports (after expiry).
    pub fn active_by_transport(&self) -> [(Transport, usize); 2] {
        let table = self.expire(Instant::now());
        [Transport::Recording, Transport::Stream].map(|t| {
            (
                t,
                table.values().filter(|e| e.call.transport() == t).count(),
            )
        })
    }

    /// The table, after dropping the calls idle past the timeout at `now`.
    fn expire(&self, now: Instant) -> std::sync::MutexGuard<'_, HashMap<CallId, Entry>> {
        let mut table = self.lock();
        let timeout = self.idle_timeout;
        table.retain(|id, e| {
            // A call a transport still holds (an open media stream, a turn in progress) is
            // live however long since it was opened.
            let held = Arc::strong_count(&e.call) > 1;
            let keep = held || now.saturating_duration_since(e.last_active) < timeout;
            if !keep {
                tracing::info!(call_id = %id, "call expired after idling");
                self.ended(id, &e.call, "expired");
            }
            keep
        });
        table
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CallId, Entry>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn lifecycle_and_expiry() {
        let metrics = Arc::new(Metrics::default());
        let log = Arc::new(CallLog::new(None, metrics.clone(), Default::default()));
        let calls = Calls::new(Duration::from_secs(900), 8, log);
        let (a, b) = (CallId::parse("a").unwrap(), CallId::parse("b").unwrap());
        let first = calls.open(&a, Transport::Recording);
        assert!(Arc::ptr_eq(&first, &calls.open(&a, Transport::Recording)));
        drop(first);
        let held = calls.open(&b, Transport::Stream);
        assert_eq!(calls.active(), 2);
        assert_eq!(
            calls.active_by_transport(),
            [(Transport::Recording, 1), (Transport::Stream, 1)]
        );
        assert!(calls.end(&a, "disconnected"));
        assert!(!calls.end(&a, "disconnected"));
        let soon = Instant::now() + Duration::from_secs(899);
        assert_eq!(calls.expire(soon).len(), 1);
        let later = Instant::now() + Duration::from_secs(901);
        assert_eq!(
            calls.expire(later).len(),
            1,
            "an open stream does not idle out"
        );
        drop(held);
        assert_eq!(calls.expire(later).len(), 0);
        assert_eq!(calls.active(), 0);
        let text = metrics.render(
            &calls.active_by_transport(),
            calls.capacity(),
            false,
            &Default::default(),
        );
        for line in [
            "voxd_calls_total{transport=\"recording\",outcome=\"disconnected\"} 1",
            "voxd_calls_total{transport=\"stream\",outcome=\"expired\"} 1",
            "voxd_calls_active{transport=\"stream\"} 0",
            "voxd_calls_capacity 8",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in {text}");
        }
    }

    #[test]
    fn the_feed_tells_a_calls_life_and_nothing_after_its_end() {
        let log = Arc::new(CallLog::new(None, Default::default(), Default::default()));
        let mut feed = log.feed.subscribe();
        let calls = Calls::new(Duration::from_secs(900), 2, log);
        let id = CallId::parse("console-1").unwrap();
        let call = calls.admit(&id, Transport::Stream, true).unwrap();
        call.heard("hello");
        calls.end(&id, "caller_hangup");
        // A turn that was being answered when the call ended is history, not live.
        call.answered(Some("hello"), "hi", None, false, None);
        let facts: Vec<_> = std::iter::from_fn(|| feed.try_recv().ok())
            .map(|f| {
                (
                    f.kind,
                    f.data["call_id"].as_str().unwrap().to_string(),
                    f.data,
                )
            })
            .collect();
        assert_eq!(facts[1].2["seq"], 1, "a call's facts are numbered");
        let kinds: Vec<_> = facts.iter().map(|(k, _, _)| *k).collect();
        assert_eq!(kinds, ["call_started", "turn", "call_ended"]);
        assert!(facts.iter().all(|(_, c, _)| c == "console-1"));
        assert_eq!(call.direction(), "test");
        assert!(calls.live_views().is_empty());
    }

    #[test]
    fn a_new_call_beyond_capacity_is_refused_and_live_ones_go_on() {
        let metrics = Arc::new(Metrics::default());
        let log = Arc::new(CallLog::new(None, metrics.clone(), Default::default()));
        let calls = Calls::new(Duration::from_secs(900), 2, log);
        let id = |s: &str| CallId::parse(s).unwrap();
        calls.admit(&id("a"), Transport::Stream, false).unwrap();
        calls.admit(&id("b"), Transport::Recording, false).unwrap();
        let refused = calls
            .check_room(&id("c"), Transport::Recording)
            .unwrap_err();
        assert_eq!(
            refused,
            AtCapacity {
                live: 2,
                capacity: 2
            }
        );
        assert!(
            calls.admit(&id("b"), Transport::Recording, false).is_ok(),
            "a live call goes on"
        );
        calls.end(&id("a"), "caller_hangup");
        assert!(
            calls.admit(&id("c"), Transport::Recording, false).is_ok(),
            "room again"
        );
        let text = metrics.render(
            &calls.active_by_transport(),
            calls.capacity(),
            false,
            &Default::default(),
        );
        let line = "voxd_calls_refused_total{transport=\"recording\"} 1";
        assert!(text.lines().any(|l| l == line), "{line} not in {text}");
    }
}
