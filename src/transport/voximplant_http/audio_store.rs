//! Reply audio kept for the scenario to play: random unguessable ids (128 bits), served
//! without auth (VoxEngine's player cannot send headers), expiring after a TTL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngCore;

/// A stored file and when it was stored.
type Item = (Arc<Vec<u8>>, Instant);

/// 128 random bits as 32 hex digits.
fn random_id() -> String {
    let mut raw = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// In-memory store of WAV files by id.
pub struct AudioStore {
    items: Mutex<HashMap<String, Item>>,
    ttl: Duration,
}

impl AudioStore {
    pub fn new(ttl: Duration) -> Self {
        Self {
            items: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    /// Stores a file and returns its new id.
    pub fn put(&self, wav: Vec<u8>) -> String {
        let id = random_id();
        let mut items = self.lock();
        let ttl = self.ttl;
        items.retain(|_, (_, at)| at.elapsed() < ttl);
        items.insert(id.clone(), (Arc::new(wav), Instant::now()));
        id
    }

    /// The file, if it exists and has not expired.
    pub fn get(&self, id: &str) -> Option<Arc<Vec<u8>>> {
        self.get_at(id, Instant::now())
    }

    /// The file, if it exists and has not expired by `now`.
    fn get_at(&self, id: &str, now: Instant) -> Option<Arc<Vec<u8>>> {
        let items = self.lock();
        items
            .get(id)
            .filter(|(_, at)| now.saturating_duration_since(*at) < self.ttl)
            .map(|(b, _)| b.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Item>> {
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_and_expire() {
        let store = AudioStore::new(Duration::from_secs(600));
        let a = store.put(vec![1]);
        let b = store.put(vec![2]);
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert_eq!(store.get(&a).unwrap().as_slice(), &[1]);
        let later = Instant::now() + Duration::from_secs(599);
        assert!(store.get_at(&a, later).is_some());
        let expired = Instant::now() + Duration::from_secs(601);
        assert!(store.get_at(&a, expired).is_none());
    }
}
