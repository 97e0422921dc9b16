//! Engine work by deadline: every STT, LLM and TTS job carries the moment a caller will
//! hear silence if it is not done ([`Deadline`]; a [`Due`] when the moment moves as a reply
//! plays). STT and TTS jobs pass a [`Gate`]: a fixed number run at once (the CPU budget,
//! [`Budget`]), and a freed place goes to the waiting job with the earliest deadline. A job
//! whose caller went away (barge-in, hang-up) leaves the queue when its future is dropped.
//! The LLM orders its own sequences by the same deadlines ([`super::llm`]).

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

/// How many jobs of each engine run at once: threads per job × jobs ≤ cores, decided once
/// at start-up from the core count and the configured threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub stt_jobs: usize,
    pub tts_jobs: usize,
}

impl Budget {
    /// The budget for `cores` cores: each engine gets the jobs its threads fit in.
    pub fn for_cores(cores: usize, cfg: &Config) -> Self {
        let fit = |threads: u32| (cores / threads.max(1) as usize).max(1);
        let tts_jobs = match cfg.tts.sessions {
            0 => fit(cfg.tts.threads),
            n => n as usize,
        };
        Self {
            stt_jobs: fit(cfg.stt.threads),
            tts_jobs,
        }
    }

    /// The budget for this machine.
    pub fn of_machine(cfg: &Config) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::for_cores(cores, cfg)
    }
}

/// A fixed number of places for one engine's jobs, handed out earliest deadline first.
pub struct Gate {
    state: Arc<Mutex<GateState>>,
}

struct GateState {
    free: usize,
    places: usize,
    /// Waiting jobs by (deadline, arrival).
    waiting: BTreeMap<(Deadline, u64), oneshot::Sender<()>>,
    arrivals: u64,
}

impl GateState {
    /// Gives a freed place to the earliest waiter still there, else keeps it.
    fn release(&mut self) {
        while let Some((_, waiter)) = self.waiting.pop_first() {
            if waiter.send(()).is_ok() {
                return;
            }
        }
        self.free += 1;
    }
}

/// A place held by a job; it goes to the next job when dropped.
pub struct Pass {
    state: Arc<Mutex<GateState>>,
}

impl Drop for Pass {
    fn drop(&mut self) {
        lock(&self.state).release();
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
                state.release();
            }
        }
    }
}

fn lock(state: &Mutex<GateState>) -> std::sync::MutexGuard<'_, GateState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl Gate {
    pub fn new(places: usize) -> Self {
        let places = places.max(1);
        Self {
            state: Arc::new(Mutex::new(GateState {
                free: places,
                places,
                waiting: BTreeMap::new(),
                arrivals: 0,
            })),
        }
    }

    /// Waits for a place, served by `deadline` (earliest first, then by arrival).
    pub async fn enter(&self, deadline: Deadline) -> Pass {
        let rx = {
            let mut state = lock(&self.state);
            if state.free > 0 && state.waiting.is_empty() {
                state.free -= 1;
                return self.pass();
            }
            state.arrivals += 1;
            let key = (deadline, state.arrivals);
            let (tx, rx) = oneshot::channel();
            state.waiting.insert(key, tx);
            (rx, key)
        };
        let (rx, key) = rx;
        let mut waiting = Waiting {
            state: self.state.clone(),
            key,
            armed: true,
        };
        // The sender lives in the queue until it is used, so this only ends with a place.
        let _ = rx.await;
        waiting.armed = false;
        self.pass()
    }

    fn pass(&self) -> Pass {
        Pass {
            state: self.state.clone(),
        }
    }

    /// Jobs waiting, running, and places.
    pub fn lane(&self) -> Lane {
        let state = lock(&self.state);
        Lane {
            queued: state.waiting.len(),
            running: state.places - state.free,
            places: state.places,
        }
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
    /// Each engine with its name, as the metrics label them.
    pub fn by_engine(&self) -> [(&'static str, Lane); 3] {
        [("stt", self.stt), ("llm", self.llm), ("tts", self.tts)]
    }
}

/// The gates of the engines that run one job per place (the LLM batches its own).
pub struct Gates {
    pub stt: Gate,
    pub tts: Gate,
}

impl Gates {
    pub fn new(budget: Budget) -> Self {
        Self {
            stt: Gate::new(budget.stt_jobs),
            tts: Gate::new(budget.tts_jobs),
        }
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
            let _pass = gate.enter(deadline).await;
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
        assert_eq!(gate.lane().queued, 4);
        assert_eq!(gate.lane().running, 1);
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
        assert_eq!((gate.lane().queued, gate.lane().running), (0, 0));
    }

    #[tokio::test]
    async fn no_more_jobs_run_than_the_budget_allows() {
        let gate = Arc::new(Gate::new(2));
        let order = Arc::new(StdMutex::new(Vec::new()));
        let jobs: Vec<_> = (0..5)
            .map(|_| job(&gate, Deadline::now(), "job", &order))
            .collect();
        settle().await;
        assert_eq!((gate.lane().running, gate.lane().queued), (2, 3));
        assert_eq!(order.lock().unwrap().len(), 2);
        let mut releases = Vec::new();
        let mut tasks = Vec::new();
        for (t, r) in jobs {
            tasks.push(t);
            releases.push(r);
        }
        let _ = releases.remove(0).send(());
        settle().await;
        assert_eq!((gate.lane().running, gate.lane().queued), (2, 2));
        for r in releases {
            let _ = r.send(());
            settle().await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(order.lock().unwrap().len(), 5);
        assert_eq!(gate.lane().running, 0);
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
        assert_eq!(gate.lane().queued, 2);
        gone.abort();
        settle().await;
        assert_eq!(gate.lane().queued, 1, "the hung-up job left the queue");
        let _ = free_running.send(());
        let _ = free_next.send(());
        running.await.unwrap();
        next.await.unwrap();
        assert_eq!(*order.lock().unwrap(), ["running", "next caller"]);
        assert_eq!((gate.lane().queued, gate.lane().running), (0, 0));
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
        cfg.tts.sessions = 0;
        let b = Budget::for_cores(8, &cfg);
        assert_eq!((b.stt_jobs, b.tts_jobs), (4, 8));
        let b = Budget::for_cores(2, &cfg);
        assert_eq!((b.stt_jobs, b.tts_jobs), (1, 2));
        cfg.stt.threads = 4;
        assert_eq!(Budget::for_cores(2, &cfg).stt_jobs, 1);
    }
}
