//! The live feed of call facts for the console: calls starting and ending, turns, tool
//! calls, barge-ins and a call's language changing, as they happen. A bounded broadcast: nothing waits for a slow
//! reader, and a reader that falls behind by more than [`FEED_CAPACITY`] facts is told to
//! start again from a snapshot.

use serde_json::Value;
use tokio::sync::broadcast;

/// Facts a reader may fall behind by before it must resync.
pub const FEED_CAPACITY: usize = 512;

/// One fact: its kind (`call_started`, `turn`, `tool`, `barge_in`, `language`,
/// `call_ended`) and data.
#[derive(Debug, Clone)]
pub struct Fact {
    pub kind: &'static str,
    pub data: Value,
}

/// The feed every call writes to.
pub struct Feed {
    tx: broadcast::Sender<Fact>,
}

impl Default for Feed {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(FEED_CAPACITY).0,
        }
    }
}

impl Feed {
    /// Tells the readers, if any.
    pub fn publish(&self, kind: &'static str, data: Value) {
        let _ = self.tx.send(Fact { kind, data });
    }

    /// A reader of the facts from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Fact> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_reader_that_falls_behind_is_told_how_far() {
        let feed = Feed::default();
        feed.publish("turn", json!({"n": 0}));
        let mut rx = feed.subscribe();
        for n in 0..FEED_CAPACITY + 3 {
            feed.publish("turn", json!({ "n": n }));
        }
        assert!(matches!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(3))
        ));
        assert_eq!(rx.try_recv().unwrap().data["n"], 3);
    }
}
