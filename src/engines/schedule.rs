//! Engine work by deadline: every STT, LLM and TTS job carries the moment a caller will
//! hear silence if it is not done ([`Deadline`]; a [`Due`] when the moment moves as a reply
//! plays). Transcriptions and syntheses pass one [`Gate`]: a fixed number run at once (the
//! CPU budget, [`Budget`]), and a freed place goes to the waiting job with the earliest
//! deadline. A job whose caller went away (barge-in, hang-up) leaves the queue when its
//! future is dropped. The LLM orders its own sequences by the same deadlines and steps
//! aside, between two of its small steps, for speech jobs more urgent than its replies
//! ([`super::llm`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::config::Config;

/// When a caller hears silence if a job is not done: an instant, or never (background or
/// speculative work, which waits for everything with a deadline). Earlier sorts first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline(u64);

/// The instant deadlines count from (microseconds since it).
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Deadline {
    /// Work nobody waits for yet.
    pub const NONE: Deadline = Deadline(u64::MAX);

    /// Someone is waiting now.
    pub fn now() -> Self {
        Self::at(Instant::now())
    }

    pub fn at(t: Instant) -> Self {
        let micros = t.saturating_duration_since(epoch()).as_micros();
        Self(
            u64::try_from(micros)
                .unwrap_or(u64::MAX - 1)
                .min(u64::MAX - 1),
        )
    }

    /// The instant, or None for [`Deadline::NONE`].
    pub fn instant(self) -> Option<Instant> {
        (self != Self::NONE).then(|| epoch() + Duration::from_micros(self.0))
    }

    /// Whether the job must run by `now + lead` to meet the deadline.
    pub fn within(self, now: Instant, lead: Duration) -> bool {
        self.instant().is_some_and(|t| t <= now + lead)
    }
}

/// A deadline the job's owner moves while the job runs (a reply's later sentences are due
/// when the audio already queued runs out). Clones share the value.
#[derive(Debug, Clone)]
pub struct Due(Arc<AtomicU64>);

impl Due {
    pub fn new(deadline: Deadline) -> Self {
        Self(Arc::new(AtomicU64::new(deadline.0)))
    }

    pub fn get(&self) -> Deadline {
        Deadline(self.0.load(Ordering::Relaxed))
    }

    pub fn set(&self, deadline: Deadline) {
        self.0.store(deadline.0, Ordering::Relaxed);
    }
}

/// How many speech jobs (transcriptions and syntheses) run at once: threads per job × jobs
/// ≤ cores, decided once at start-up from the core count and the configured threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub speech_jobs: usize,
}

impl Budget {
    /// The budget for `cores` cores: as many jobs as the hungrier engine's threads fit in.
    pub fn for_cores(cores: usize, cfg: &Config) -> Self {
        let threads = cfg.stt.threads.max(cfg.tts.threads).max(1) as usize;
        Self {
            speech_jobs: (cores / threads).max(1),
        }
    }

    /// The budget for this machine.
    pub fn of_machine(cfg: &Config) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::for_cores(cores, cfg)
    }
}

/// Which engine a job is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    Stt,
    Tts,
}

/// The places where speech jobs run (the CPU budget), handed out earliest deadline first.
/// The LLM, which works in small steps, reads [`Gate::earliest`] before each step and
/// lets these jobs have the cores while they are more urgent than its own replies.
pub struct Gate {
    state: Arc<Mutex<GateState>>,
}

struct GateState {
    places: usize,
    /// Jobs holding a place, by (deadline, arrival).
    running: BTreeMap<(Deadline, u64), Work>,
    /// Waiting jobs by (deadline, arrival).
    waiting: BTreeMap<(Deadline, u64), (Work, oneshot::Sender<()>)>,
    arrivals: u64,
}

impl GateState {
    /// Frees the place of job `key` and gives it to the earliest waiter still there.
    fn release(&mut self, key: (Deadline, u64)) {
        self.running.remove(&key);
        while let Some((next, (work, waiter))) = self.waiting.pop_first() {
            if waiter.send(()).is_ok() {
                self.running.insert(next, work);
                return;
            }
        }
    }

    fn lane(&self, work: Work) -> Lane {
        Lane {
            queued: self.waiting.values().filter(|(w, _)| *w == work).count(),
            running: self.running.values().filter(|w| **w == work).count(),
            places: self.places,
        }
    }
}

/// A place held by a job; it goes to the next job when dropped.
pub struct Pass {
    state: Arc<Mutex<GateState>>,
    key: (Deadline, u64),
}

impl Drop for Pass {
    fn drop(&mut self) {
        lock(&self.state).release(self.key);
    }
}

/// Removes a job from the queue when its caller stops waiting before it got a place; a
/// place handed to it in the meantime goes on to the next job.
struct Waiting {
    state: Arc<Mutex<GateState>>,
    key: (Deadline, u64),
    armed: bool,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.armed {
            let mut state = lock(&self.state);
            if state.waiting.remove(&self.key).is_none() {
                state.release(self.key);
            }
        }
    }
}

fn lock(state: &Mutex<GateState>) -> std::sync::MutexGuard<'_, GateState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl Gate {
    pub fn new(places: usize) -> Self {
        Self {
            state: Arc::new(Mutex::new(GateState {
                places: places.max(1),
                running: BTreeMap::new(),
                waiting: BTreeMap::new(),
                arrivals: 0,
            })),
        }
    }

    /// Waits for a place for `work`, served by `deadline` (earliest first, then by
    /// arrival).
    pub async fn enter(&self, work: Work, deadline: Deadline) -> Pass {
        let (rx, key) = {
            let mut state = lock(&self.state);
            state.arrivals += 1;
            let key = (deadline, state.arrivals);
            if state.running.len() < state.places && state.waiting.is_empty() {
                state.running.insert(key, work);
                return self.pass(key);
            }
            let (tx, rx) = oneshot::channel();
            state.waiting.insert(key, (work, tx));
            (rx, key)
        };
        let mut waiting = Waiting {
            state: self.state.clone(),
            key,
            armed: true,
        };
        // The sender lives in the queue until it is used, so this only ends with a place.
        let _ = rx.await;
        waiting.armed = false;
        self.pass(key)
    }

    fn pass(&self, key: (Deadline, u64)) -> Pass {
        Pass {
            state: self.state.clone(),
            key,
        }
    }

    /// `work`'s jobs waiting and running, and the places.
    pub fn lane(&self, work: Work) -> Lane {
        lock(&self.state).lane(work)
    }

    /// The earliest deadline of the jobs running or waiting here, if any.
    pub fn earliest(&self) -> Option<Deadline> {
        let state = lock(&self.state);
        let running = state.running.keys().next().map(|k| k.0);
        let waiting = state.waiting.keys().next().map(|k| k.0);
        running.into_iter().chain(waiting).min()
    }
}

/// One engine's work right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Lane {
    /// Jobs waiting for a place.
    pub queued: usize,
    /// Jobs running.
    pub running: usize,
    /// Jobs that may run at once.
    pub places: usize,
}

/// What every engine is doing right now (`/health`, `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct EngineLoad {
    pub stt: Lane,
    /// Replies waiting for a sequence, being written, and sequences.
    pub llm: Lane,
    pub tts: Lane,
}

impl EngineLoad {
    /// Whether work nobody waits for yet (a speculative reply) may start: a speech place
    /// is free with no job waiting for one, and no reply waits for an LLM sequence.
    pub fn has_room(&self) -> bool {
        self.stt.queued + self.tts.queued == 0
            && self.stt.running + self.tts.running < self.stt.places
            && self.llm.queued == 0
    }

    /// Each engine with its name, as the metrics label them.
    pub fn by_engine(&self) -> [(&'static str, Lane); 3] {
        [("stt", self.stt), ("llm", self.llm), ("tts", self.tts)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;

    fn later(ms: u64) -> Deadline {
        Deadline::at(Instant::now() + Duration::from_millis(ms))
    }

    /// Starts a job that waits at `gate` and notes `name` when it gets its place, holding
    /// it until `release` fires.
    fn job(
        gate: &Arc<Gate>,
        deadline: Deadline,
        name: &'static str,
        order: &Arc<StdMutex<Vec<&'static str>>>,
    ) -> (tokio::task::JoinHandle<()>, oneshot::Sender<()>) {
        let (release, done) = oneshot::channel::<()>();
        let (gate, order) = (gate.clone(), order.clone());
        let task = tokio::spawn(async move {
            let _pass = gate.enter(Work::Stt, deadline).await;
            order.lock().unwrap().push(name);
            let _ = done.await;
        });
        (task, release)
    }

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn places_go_to_the_earliest_deadline_first_then_by_arrival() {
        let gate = Arc::new(Gate::new(1));
        let order = Arc::new(StdMutex::new(Vec::new()));
        let (first, free_first) = job(&gate, Deadline::now(), "running", &order);
        settle().await;
        let (bg, free_bg) = job(&gate, Deadline::NONE, "background", &order);
        let (next_sentence, free_next) = job(&gate, later(3000), "next sentence", &order);
        let (first_words, free_words) = job(&gate, later(10), "first words", &order);
        let (also_now, free_also) = job(&gate, later(10), "same deadline, later", &order);
        settle().await;
        assert_eq!(gate.lane(Work::Stt).queued, 4);
        assert_eq!(gate.lane(Work::Stt).running, 1);
        for free in [free_first, free_words, free_also, free_next, free_bg] {
            let _ = free.send(());
            settle().await;
        }
        for t in [first, bg, next_sentence, first_words, also_now] {
            t.await.unwrap();
        }
        assert_eq!(
            *order.lock().unwrap(),
            [
                "running",
                "first words",
                "same deadline, later",
                "next sentence",
                "background"
            ]
        );
        assert_eq!(
            (gate.lane(Work::Stt).queued, gate.lane(Work::Stt).running),
            (0, 0)
        );
    }

    #[tokio::test]
    async fn no_more_jobs_run_than_the_budget_allows() {
        let gate = Arc::new(Gate::new(2));
        let order = Arc::new(StdMutex::new(Vec::new()));
        let jobs: Vec<_> = (0..5)
            .map(|_| job(&gate, Deadline::now(), "job", &order))
            .collect();
        settle().await;
        assert_eq!(
            (gate.lane(Work::Stt).running, gate.lane(Work::Stt).queued),
            (2, 3)
        );
        assert_eq!(order.lock().unwrap().len(), 2);
        let mut releases = Vec::new();
        let mut tasks = Vec::new();
        for (t, r) in jobs {
            tasks.push(t);
            releases.push(r);
        }
        let _ = releases.remove(0).send(());
        settle().await;
        assert_eq!(
            (gate.lane(Work::Stt).running, gate.lane(Work::Stt).queued),
            (2, 2)
        );
        for r in releases {
            let _ = r.send(());
            settle().await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(order.lock().unwrap().len(), 5);
        assert_eq!(gate.lane(Work::Stt).running, 0);
    }

    #[tokio::test]
    async fn a_job_whose_caller_left_frees_its_place_in_the_queue_at_once() {
        let gate = Arc::new(Gate::new(1));
        let order = Arc::new(StdMutex::new(Vec::new()));
        let (running, free_running) = job(&gate, Deadline::now(), "running", &order);
        settle().await;
        let (gone, _) = job(&gate, later(1), "hung up", &order);
        let (next, free_next) = job(&gate, later(5), "next caller", &order);
        settle().await;
        assert_eq!(gate.lane(Work::Stt).queued, 2);
        gone.abort();
        settle().await;
        assert_eq!(
            gate.lane(Work::Stt).queued,
            1,
            "the hung-up job left the queue"
        );
        let _ = free_running.send(());
        let _ = free_next.send(());
        running.await.unwrap();
        next.await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["running", "next caller"]);
        assert_eq!(
            (gate.lane(Work::Stt).queued, gate.lane(Work::Stt).running),
            (0, 0)
        );
    }

    #[test]
    fn deadlines_order_instants_before_none() {
        let now = Instant::now();
        let soon = Deadline::at(now + Duration::from_millis(5));
        assert!(Deadline::at(now) < soon && soon < Deadline::NONE);
        assert!(soon.within(now, Duration::from_millis(5)));
        assert!(!soon.within(now, Duration::from_millis(1)));
        assert!(!Deadline::NONE.within(now, Duration::from_secs(3600)));
        let due = Due::new(Deadline::NONE);
        due.clone().set(soon);
        assert_eq!(due.get(), soon);
    }

    #[test]
    fn the_budget_never_oversubscribes_the_cores() {
        let mut cfg = Config::default();
        cfg.stt.threads = 2;
        cfg.tts.threads = 1;
        assert_eq!(Budget::for_cores(8, &cfg).speech_jobs, 4);
        assert_eq!(Budget::for_cores(2, &cfg).speech_jobs, 1);
        cfg.stt.threads = 4;
        assert_eq!(Budget::for_cores(2, &cfg).speech_jobs, 1);
    }

    #[tokio::test]
    async fn the_gate_knows_its_most_urgent_job_and_each_engines_share() {
        let gate = Gate::new(1);
        assert_eq!(gate.earliest(), None);
        let later_deadline = later(3000);
        let running = gate.enter(Work::Tts, later_deadline).await;
        assert_eq!(gate.earliest(), Some(later_deadline));
        let urgent = Deadline::now();
        let gate = Arc::new(gate);
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { drop(gate.enter(Work::Stt, urgent).await) }
        });
        settle().await;
        assert_eq!(gate.earliest(), Some(urgent));
        let (stt, tts) = (gate.lane(Work::Stt), gate.lane(Work::Tts));
        assert_eq!(
            (stt.queued, stt.running, tts.queued, tts.running),
            (1, 0, 0, 1)
        );
        drop(running);
        waiting.await.unwrap();
        assert_eq!(gate.earliest(), None);
    }
}
