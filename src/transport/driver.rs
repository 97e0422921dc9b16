//! The one driver loop of every real-time transport: a 10 ms clock and the replies'
//! progress go to the [`Conversation`], and whatever the transport itself waits for (its
//! socket, its devices) comes back to it, in one `select!`.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::time::{Interval, MissedTickBehavior};

use crate::conversation::{Conversation, Output, Updates};

/// What happened next.
pub enum Step<T> {
    /// The clock ticked: the conversation's outputs now due.
    Tick(Vec<Output>),
    /// Background work (a reply, the end-of-turn model) reported: the conversation's
    /// outputs.
    Update(Vec<Output>),
    /// The transport's own input arrived.
    Input(T),
}

/// A conversation, its reply updates and its clock.
pub struct Driver {
    pub conversation: Conversation,
    updates: Updates,
    ticker: Interval,
}

impl Driver {
    pub fn new(conversation: Conversation, updates: Updates) -> Self {
        let mut ticker = tokio::time::interval(Duration::from_millis(10));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        Self {
            conversation,
            updates,
            ticker,
        }
    }

    /// Waits for the next tick, reply update or `input`, whichever comes first.
    pub async fn next<T>(&mut self, input: impl Future<Output = T>) -> Step<T> {
        tokio::select! {
            _ = self.ticker.tick() => Step::Tick(self.conversation.tick(Instant::now())),
            Some(update) = self.updates.recv() => {
                Step::Update(self.conversation.on_update(update, Instant::now()))
            }
            v = input => Step::Input(v),
        }
    }
}
