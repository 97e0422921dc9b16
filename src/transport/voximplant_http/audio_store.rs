//! Reply audio kept for the scenario to play: random unguessable ids (128 bits), served
//! without auth (VoxEngine's player cannot send headers), expiring after a TTL, and at most
//! so many files and bytes (beyond either, the oldest go first). A file is stored whole, or
//! grows while its reply is made ([`Growing`]: progressive playback), with the turn's
//! result once it is complete. A lasting file (the greeting, the same for every call) does
//! not expire.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngCore;
use tokio::sync::watch;

pub use crate::config::ReplyFormat;

/// A stored file: whole, or growing.
#[derive(Clone)]
pub enum Stored {
    Whole(Arc<Vec<u8>>),
    Growing(Arc<Growing>),
}

/// A file (WAV or MP3) written while its reply is made, and the turn's result once it is
/// complete.
pub struct Growing {
    state: watch::Sender<GrowingState>,
    format: ReplyFormat,
}

/// What a [`Growing`] file holds now.
#[derive(Debug, Default)]
pub struct GrowingState {
    /// The bytes so far (a stream header, then samples as they come).
    pub bytes: Vec<u8>,
    /// Set when the reply is complete: the turn's result (its JSON).
    pub result: Option<serde_json::Value>,
}

impl Growing {
    fn new(format: ReplyFormat) -> Self {
        Self {
            state: watch::Sender::new(GrowingState::default()),
            format,
        }
    }

    pub fn format(&self) -> ReplyFormat {
        self.format
    }

    /// Adds bytes at the end.
    pub fn append(&self, bytes: &[u8]) {
        self.state.send_modify(|s| s.bytes.extend_from_slice(bytes));
    }

    /// The reply is complete: `finish` fixes up the bytes (the real sizes), `result` is
    /// what the scenario reads.
    pub fn complete(&self, finish: impl FnOnce(&mut Vec<u8>), result: serde_json::Value) {
        self.state.send_modify(|s| {
            finish(&mut s.bytes);
            s.result = Some(result);
        });
    }

    /// Its bytes, once the reply is complete (None while it grows).
    pub fn finished(&self) -> Option<Vec<u8>> {
        let s = self.state.borrow();
        s.result.is_some().then(|| s.bytes.clone())
    }

    /// A view that wakes up on every change.
    pub fn watch(&self) -> watch::Receiver<GrowingState> {
        self.state.subscribe()
    }
}

/// A stored file and when it was stored.
type Item = (Stored, Instant);

/// 128 random bits as 32 hex digits.
fn random_id() -> String {
    let mut raw = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

impl Stored {
    /// Bytes it holds now.
    fn len(&self) -> usize {
        match self {
            Stored::Whole(b) => b.len(),
            Stored::Growing(g) => g.state.borrow().bytes.len(),
        }
    }
}

/// How much the store keeps.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub ttl: Duration,
    pub max_files: usize,
    pub max_bytes: usize,
}

/// In-memory store of WAV files by id.
pub struct AudioStore {
    items: Mutex<HashMap<String, Item>>,
    lasting: Mutex<HashMap<String, Arc<Vec<u8>>>>,
    bounds: Bounds,
}

impl AudioStore {
    pub fn new(bounds: Bounds) -> Self {
        Self {
            items: Mutex::new(HashMap::new()),
            lasting: Mutex::default(),
            bounds,
        }
    }

    /// Stores a file that never expires (the greeting); returns its id.
    pub fn put_lasting(&self, wav: Vec<u8>) -> String {
        let id = random_id();
        let mut lasting = self.lasting.lock().unwrap_or_else(|p| p.into_inner());
        lasting.insert(id.clone(), Arc::new(wav));
        id
    }

    /// Stores a file and returns its new id.
    pub fn put(&self, wav: Vec<u8>) -> String {
        self.insert(Stored::Whole(Arc::new(wav)))
    }

    /// Stores an empty file in `format` that grows as its reply is made; returns its id.
    pub fn open(&self, format: ReplyFormat) -> (String, Arc<Growing>) {
        let growing = Arc::new(Growing::new(format));
        (self.insert(Stored::Growing(growing.clone())), growing)
    }

    fn insert(&self, item: Stored) -> String {
        let id = random_id();
        let mut items = self.lock();
        let Bounds {
            ttl,
            max_files,
            max_bytes,
        } = self.bounds;
        items.retain(|_, (_, at)| at.elapsed() < ttl);
        let mut bytes: usize = items.values().map(|(s, _)| s.len()).sum::<usize>() + item.len();
        while !items.is_empty() && (items.len() >= max_files.max(1) || bytes > max_bytes) {
            let oldest = items
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(id, _)| id.clone());
            if let Some((gone, _)) = oldest.and_then(|id| items.remove(&id)) {
                bytes -= gone.len().min(bytes);
            }
        }
        items.insert(id.clone(), (item, Instant::now()));
        id
    }

    /// The file, if it exists and has not expired.
    pub fn get(&self, id: &str) -> Option<Stored> {
        self.get_at(id, Instant::now())
    }

    /// The file, if it exists and has not expired by `now`.
    fn get_at(&self, id: &str, now: Instant) -> Option<Stored> {
        let lasting = self.lasting.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(wav) = lasting.get(id) {
            return Some(Stored::Whole(wav.clone()));
        }
        drop(lasting);
        let items = self.lock();
        items
            .get(id)
            .filter(|(_, at)| now.saturating_duration_since(*at) < self.bounds.ttl)
            .map(|(b, _)| b.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Item>> {
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(s: Option<Stored>) -> Vec<u8> {
        match s {
            Some(Stored::Whole(b)) => b.as_ref().clone(),
            _ => panic!("not a whole file"),
        }
    }

    fn store(max_files: usize, max_bytes: usize) -> AudioStore {
        AudioStore::new(Bounds {
            ttl: Duration::from_secs(600),
            max_files,
            max_bytes,
        })
    }

    #[test]
    fn ids_are_random_and_expire() {
        let store = store(100, 1000);
        let a = store.put(vec![1]);
        let b = store.put(vec![2]);
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert_eq!(whole(store.get(&a)), [1]);
        let later = Instant::now() + Duration::from_secs(599);
        assert!(store.get_at(&a, later).is_some());
        let expired = Instant::now() + Duration::from_secs(601);
        assert!(store.get_at(&a, expired).is_none());
    }

    #[tokio::test]
    async fn a_growing_file_wakes_its_readers_until_it_is_complete() {
        let store = store(100, 1000);
        let (id, growing) = store.open(ReplyFormat::Wav);
        let Some(Stored::Growing(g)) = store.get(&id) else {
            panic!("not growing")
        };
        let mut rx = g.watch();
        growing.append(&[1, 2]);
        rx.changed().await.unwrap();
        assert_eq!(rx.borrow_and_update().bytes, [1, 2]);
        growing.complete(|b| b.push(3), serde_json::json!({"reply_text": "Hi."}));
        rx.changed().await.unwrap();
        let s = rx.borrow_and_update();
        assert_eq!(s.bytes, [1, 2, 3]);
        assert_eq!(s.result.as_ref().unwrap()["reply_text"], "Hi.");
    }

    #[test]
    fn beyond_its_bounds_the_oldest_files_go_and_lasting_ones_stay() {
        let store = store(3, 10);
        let greeting = store.put_lasting(vec![0; 8]);
        let ids: Vec<String> = (0..4).map(|i| store.put(vec![i; 2])).collect();
        assert!(store.get(&ids[0]).is_none(), "four files, three kept");
        assert!(ids[1..].iter().all(|id| store.get(id).is_some()));
        // A large file pushes out as many as its bytes need.
        let big = store.put(vec![9; 7]);
        assert!(store.get(&ids[1]).is_none() && store.get(&ids[2]).is_none());
        assert!(store.get(&ids[3]).is_some() && store.get(&big).is_some());
        // The lasting one neither expires nor counts.
        let later = Instant::now() + Duration::from_secs(601);
        assert!(store.get_at(&greeting, later).is_some());
        assert!(store.get_at(&big, later).is_none());
    }
}
