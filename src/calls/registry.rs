//! The live calls, keyed by call id: admitted on first contact by any transport while there
//! is room (`calls.max_live`; beyond it a new call is refused, a call already live never
//! is), the room checked and taken under one lock (a recording turn reserves its place
//! before its download: [`Reservation`]), recorded as started in the history, ended by a
//! Disconnected/Failed event, the end of a media stream, after idling too long (a
//! recording-mode call whose hang-up never came: `lost`), or past `calls.max_call_secs`.
//! An ended call is never opened again: its id is refused ([`Refused::Ended`]). Each end
//! and refusal is counted in the metrics.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::history::History;
use super::{CallId, CallLog, CallRecorder};
use crate::metrics::Transport;

struct Entry {
    call: Arc<CallRecorder>,
    opened: Instant,
    last_active: Instant,
}

/// The live calls and the places reserved for new ones, under one lock.
#[derive(Default)]
struct Table {
    live: HashMap<CallId, Entry>,
    /// New calls whose first request is under way, with how many requests hold each.
    reserved: HashMap<CallId, usize>,
    /// The calls ended lately, newest last (at most [`ENDED_KEPT`]).
    ended: VecDeque<CallId>,
    ended_set: HashSet<CallId>,
    /// Calls the table ended itself (idle, too long), with their outcomes, until
    /// [`Calls::sweep`] records them in the history (outside the lock).
    unrecorded: Vec<(CallId, &'static str)>,
}

/// How many ended call ids are remembered (besides the history's) to refuse reopening.
const ENDED_KEPT: usize = 4096;

impl Table {
    /// Calls that count against the capacity: the live ones and the reserved new ones.
    fn taken(&self) -> usize {
        let reserved = self
            .reserved
            .keys()
            .filter(|id| !self.live.contains_key(*id));
        self.live.len() + reserved.count()
    }

    fn remember_ended(&mut self, id: &CallId) {
        if self.ended_set.insert(id.clone()) {
            self.ended.push_back(id.clone());
        }
        while self.ended.len() > ENDED_KEPT {
            if let Some(old) = self.ended.pop_front() {
                self.ended_set.remove(&old);
            }
        }
    }
}

/// How long calls may last.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// A call no transport holds (a media stream not open yet) ends after this long without
    /// activity (`expired`).
    pub idle: Duration,
    /// A recording-mode call ends after this long without a request (`lost`: its hang-up
    /// never came).
    pub recording_idle: Duration,
    /// Every call ends this long after it started (`max_length`).
    pub max_call: Duration,
}

/// The table of live calls.
pub struct Calls {
    table: Mutex<Table>,
    lifetimes: Lifetimes,
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

/// Why a call was not opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error(transparent)]
    Full(#[from] AtCapacity),
    /// The call has ended; its id is not opened again.
    #[error("call {0} has ended")]
    Ended(CallId),
}

/// A place taken for a new call while its first request is under way (a recording's
/// download): counted against the capacity until it is [`Self::open`]ed or dropped.
pub struct Reservation {
    calls: Arc<Calls>,
    id: CallId,
    transport: Transport,
    /// Whether a place was taken (not for a call already live).
    held: bool,
}

impl Reservation {
    /// Opens the call on its reserved place (or finds it live); refused if the call ended
    /// meanwhile (its hang-up came during the first request).
    pub fn open(self) -> Result<Arc<CallRecorder>, Refused> {
        let mut table = self.calls.lock();
        if table.ended_set.contains(&self.id) {
            return Err(Refused::Ended(self.id.clone()));
        }
        let (call, new) = self.calls.insert(&mut table, &self.id, self.transport);
        drop(table);
        Ok(self
            .calls
            .opened(&self.id, call, new, self.transport, false))
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        let mut table = self.calls.lock();
        if let Some(n) = table.reserved.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                table.reserved.remove(&self.id);
            }
        }
    }
}

impl Calls {
    /// A table that admits up to `capacity` calls at once; calls no transport holds end
    /// after `idle_timeout` without activity, and no call has a length limit (see
    /// [`Self::with_lifetimes`]).
    pub fn new(idle_timeout: Duration, capacity: usize, log: Arc<CallLog>) -> Self {
        Self {
            table: Mutex::default(),
            lifetimes: Lifetimes {
                idle: idle_timeout,
                recording_idle: idle_timeout,
                max_call: Duration::MAX,
            },
            capacity: capacity.max(1),
            log,
        }
    }

    /// With these limits on how long calls last.
    pub fn with_lifetimes(mut self, lifetimes: Lifetimes) -> Self {
        self.lifetimes = lifetimes;
        self
    }

    /// The longest a call may last.
    pub fn max_call(&self) -> Duration {
        self.lifetimes.max_call
    }

    /// Most calls served at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether `id` may go on: a live call always may, an ended one never, a new one while
    /// there is room (counted as refused when there is none).
    pub fn check_room(&self, id: &CallId, transport: Transport) -> Result<(), Refused> {
        self.ended_in_history(id)?;
        let table = self.expire(Instant::now());
        self.room_in(&table, id, transport)
    }

    /// [`Self::check_room`] on the locked table (the history asked already).
    fn room_in(&self, table: &Table, id: &CallId, transport: Transport) -> Result<(), Refused> {
        if table.live.contains_key(id) || table.reserved.contains_key(id) {
            return Ok(());
        }
        if table.ended_set.contains(id) {
            tracing::warn!(call_id = %id, "call refused: it has ended");
            return Err(Refused::Ended(id.clone()));
        }
        let live = table.taken();
        if live < self.capacity {
            return Ok(());
        }
        self.log.metrics.call_refused(transport);
        tracing::warn!(call_id = %id, live, capacity = self.capacity, "new call refused: at capacity");
        Err(Refused::Full(AtCapacity {
            live,
            capacity: self.capacity,
        }))
    }

    /// Refuses a call that is not live and that the history holds as over (ended, or
    /// interrupted by a restart longer than `calls.max_call_secs` ago; a call a restart
    /// interrupted lately goes on): asked before the table is locked, since the history may
    /// wait on its disk.
    fn ended_in_history(&self, id: &CallId) -> Result<(), Refused> {
        if self.lock().live.contains_key(id) {
            return Ok(());
        }
        let longest = i64::try_from(self.lifetimes.max_call.as_millis()).unwrap_or(i64::MAX);
        match self.log.query(|h| h.has_ended(id.as_str(), longest)) {
            Some(Ok(true)) => {
                tracing::warn!(call_id = %id, "call refused: it has ended");
                Err(Refused::Ended(id.clone()))
            }
            _ => Ok(()),
        }
    }

    /// Takes a place for `id` if there is room ([`Self::check_room`]), until the
    /// reservation is opened or dropped.
    pub fn reserve(
        self: &Arc<Self>,
        id: &CallId,
        transport: Transport,
    ) -> Result<Reservation, Refused> {
        self.ended_in_history(id)?;
        let mut table = self.expire(Instant::now());
        self.room_in(&table, id, transport)?;
        let held = !table.live.contains_key(id);
        if held {
            *table.reserved.entry(id.clone()).or_default() += 1;
        }
        Ok(Reservation {
            calls: self.clone(),
            id: id.clone(),
            transport,
            held,
        })
    }

    /// [`Self::open`] if there is room for the call ([`Self::check_room`]), checked and
    /// taken at once; `test`: a console test call (stored with the direction `test`).
    pub fn admit(
        &self,
        id: &CallId,
        transport: Transport,
        test: bool,
    ) -> Result<Arc<CallRecorder>, Refused> {
        self.ended_in_history(id)?;
        let mut table = self.expire(Instant::now());
        self.room_in(&table, id, transport)?;
        let (call, new) = self.insert(&mut table, id, transport);
        drop(table);
        Ok(self.opened(id, call, new, transport, test))
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
        let (call, new) = self.insert(&mut self.lock(), id, transport);
        self.opened(id, call, new, transport, test)
    }

    /// The call's entry in the locked table, made if it is new (true then).
    fn insert(
        &self,
        table: &mut Table,
        id: &CallId,
        transport: Transport,
    ) -> (Arc<CallRecorder>, bool) {
        let mut new = false;
        let now = Instant::now();
        let entry = table.live.entry(id.clone()).or_insert_with(|| {
            tracing::info!(call_id = %id, transport = transport.as_str(), "call started");
            new = true;
            Entry {
                call: Arc::new(CallRecorder::new(id.clone(), transport, self.log.clone())),
                opened: now,
                last_active: now,
            }
        });
        entry.last_active = now;
        (entry.call.clone(), new)
    }

    /// What follows a call's opening, outside the lock: the history and the console told.
    fn opened(
        &self,
        id: &CallId,
        call: Arc<CallRecorder>,
        new: bool,
        transport: Transport,
        test: bool,
    ) -> Arc<CallRecorder> {
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
            .live
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
        self.lock().live.get(id).map(|e| e.call.clone())
    }

    /// Ends a call (`outcome` says how, for the metrics); false when no such call is live.
    pub fn end(&self, id: &CallId, outcome: &str) -> bool {
        let removed = {
            let mut table = self.lock();
            let removed = table.live.remove(id);
            // A call whose first request is still under way ends too (it is not opened).
            if removed.is_some() || table.reserved.contains_key(id) {
                table.remember_ended(id);
            }
            removed
        };
        if let Some(e) = &removed {
            let turns = e.call.turns();
            tracing::info!(call_id = %id, turns, outcome, "call ended");
            self.ended(id, &e.call, outcome);
        }
        removed.is_some()
    }

    /// Live calls, after dropping those idle past the timeout (and not held by a transport).
    pub fn active(&self) -> usize {
        self.expire(Instant::now()).live.len()
    }

    /// Live calls of the server's transports (after expiry).
    pub fn active_by_transport(&self) -> [(Transport, usize); 2] {
        let table = self.expire(Instant::now());
        [Transport::Recording, Transport::Stream].map(|t| {
            (
                t,
                table
                    .live
                    .values()
                    .filter(|e| e.call.transport() == t)
                    .count(),
            )
        })
    }

    /// The table, after ending the calls idle past their timeout at `now` (`expired`, or
    /// `lost` for a recording-mode call) and those past the longest a call may last
    /// (`max_length`; a media stream that holds its call ends it itself).
    fn expire(&self, now: Instant) -> std::sync::MutexGuard<'_, Table> {
        let mut table = self.lock();
        let lifetimes = self.lifetimes;
        let mut gone = Vec::new();
        table.live.retain(|id, e| {
            // A call a transport still holds (an open media stream, a turn in progress) is
            // live however long since it was last active.
            let held = Arc::strong_count(&e.call) > 1;
            let (idle, outcome) = match e.call.transport() {
                Transport::Recording => (lifetimes.recording_idle, "lost"),
                _ => (lifetimes.idle, "expired"),
            };
            let ended = if held {
                None
            } else if now.saturating_duration_since(e.opened) >= lifetimes.max_call {
                Some("max_length")
            } else if now.saturating_duration_since(e.last_active) >= idle {
                Some(outcome)
            } else {
                None
            };
            if let Some(outcome) = ended {
                tracing::info!(call_id = %id, outcome, "call ended: no request for too long, or too long a call");
                self.ended(id, &e.call, outcome);
                gone.push((id.clone(), outcome));
            }
            ended.is_none()
        });
        for (id, _) in &gone {
            table.remember_ended(id);
        }
        if self.log.has_history() {
            table.unrecorded.extend(gone);
        }
        table
    }

    /// Ends the calls idle or on too long, and records in the history how the table ended
    /// calls (outside the lock: the history may wait on its disk). Run now and then.
    pub fn sweep(&self) {
        let ended = std::mem::take(&mut self.expire(Instant::now()).unrecorded);
        for (id, outcome) in ended {
            self.log.record("a call's end", |h| {
                h.call_ended(id.as_str(), "ended", outcome)
            });
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
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
        assert_eq!(calls.expire(soon).live.len(), 1);
        let later = Instant::now() + Duration::from_secs(901);
        assert_eq!(
            calls.expire(later).live.len(),
            1,
            "an open stream does not idle out"
        );
        drop(held);
        assert_eq!(calls.expire(later).live.len(), 0);
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
            Refused::Full(AtCapacity {
                live: 2,
                capacity: 2
            })
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

    fn table(capacity: usize) -> (Arc<Metrics>, Arc<Calls>) {
        let metrics = Arc::new(Metrics::default());
        let log = Arc::new(CallLog::new(None, metrics.clone(), Default::default()));
        let calls = Calls::new(Duration::from_secs(120), capacity, log).with_lifetimes(Lifetimes {
            idle: Duration::from_secs(120),
            recording_idle: Duration::from_secs(300),
            max_call: Duration::from_secs(3600),
        });
        (metrics, Arc::new(calls))
    }

    #[test]
    fn a_reservation_holds_a_place_until_it_opens_or_goes() {
        let (_, calls) = table(2);
        let id = |s: &str| CallId::parse(s).unwrap();
        let a = calls.reserve(&id("a"), Transport::Recording).unwrap();
        let again = calls.reserve(&id("a"), Transport::Recording).unwrap();
        let b = calls.reserve(&id("b"), Transport::Recording).unwrap();
        assert!(
            matches!(
                calls.reserve(&id("c"), Transport::Recording),
                Err(Refused::Full(_))
            ),
            "two places reserved, none left"
        );
        assert_eq!(calls.active(), 0, "a reservation is not a live call");
        drop(b);
        let c = calls.reserve(&id("c"), Transport::Recording).unwrap();
        let live = a.open().unwrap();
        drop(again);
        assert_eq!(calls.active(), 1);
        assert!(calls.reserve(&id("d"), Transport::Recording).is_err());
        assert!(
            calls.reserve(&id("a"), Transport::Recording).is_ok(),
            "a live call always goes on"
        );
        drop((c, live));
        assert!(calls.reserve(&id("d"), Transport::Recording).is_ok());
        // A call whose hang-up came while its first request was under way is not opened.
        let e = calls.reserve(&id("e"), Transport::Recording).unwrap();
        let live_e = calls.open(&id("e"), Transport::Recording);
        calls.end(&id("e"), "disconnected");
        drop(live_e);
        assert_eq!(e.open().err(), Some(Refused::Ended(id("e"))));
    }

    #[test]
    fn a_recording_call_whose_hang_up_never_came_is_lost_and_never_reopened() {
        let (metrics, calls) = table(1);
        let id = CallId::parse("rec-1").unwrap();
        drop(calls.admit(&id, Transport::Recording, false).unwrap());
        let soon = Instant::now() + Duration::from_secs(299);
        assert_eq!(calls.expire(soon).live.len(), 1);
        let later = Instant::now() + Duration::from_secs(301);
        assert_eq!(calls.expire(later).live.len(), 0);
        for refused in [
            calls.check_room(&id, Transport::Recording).err(),
            calls.reserve(&id, Transport::Recording).err(),
            calls.admit(&id, Transport::Stream, false).err(),
        ] {
            assert_eq!(refused, Some(Refused::Ended(id.clone())));
        }
        let other = CallId::parse("rec-2").unwrap();
        assert!(
            calls.admit(&other, Transport::Recording, false).is_ok(),
            "its place is free"
        );
        calls.end(&other, "disconnected");
        assert!(calls.check_room(&other, Transport::Recording).is_err());
        let text = metrics.render(&calls.active_by_transport(), 1, false, &Default::default());
        let line = "voxd_calls_total{transport=\"recording\",outcome=\"lost\"} 1";
        assert!(text.lines().any(|l| l == line), "{line} not in {text}");
    }

    #[test]
    fn a_call_past_its_longest_ends_unless_a_transport_holds_it() {
        let (_, calls) = table(4);
        let (a, b) = (CallId::parse("a").unwrap(), CallId::parse("b").unwrap());
        let held = calls.admit(&a, Transport::Stream, false).unwrap();
        drop(calls.admit(&b, Transport::Stream, false).unwrap());
        // Still active just before, because each was opened now.
        let past = Instant::now() + Duration::from_secs(3601);
        let left: Vec<_> = calls.expire(past).live.keys().cloned().collect();
        assert_eq!(
            left,
            std::slice::from_ref(&a),
            "the held stream ends the call itself"
        );
        drop(held);
        assert!(calls.expire(past).live.is_empty());
        assert!(calls.check_room(&b, Transport::Stream).is_err());
    }

    #[test]
    fn ended_ids_are_remembered_within_a_bound() {
        let mut table = Table::default();
        for i in 0..ENDED_KEPT + 10 {
            table.remember_ended(&CallId::parse(&format!("c{i}")).unwrap());
        }
        assert_eq!(table.ended.len(), ENDED_KEPT);
        assert_eq!(table.ended_set.len(), ENDED_KEPT);
        assert!(!table.ended_set.contains(&CallId::parse("c0").unwrap()));
    }
}
