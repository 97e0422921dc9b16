//! The one driver loop of every real-time transport: a 10 ms clock and the replies'
//! progress go to the [`Conversation`], and whatever the transport itself waits for (its
//! socket, its devices) comes back to it, in one `select!`.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::time::{Interval, MissedTickBehavior};

use crate::conversation::{Conversation, Output, ReplyUpdates};

/// What happened next.
pub enum Step<T> {
    /// The clock ticked: the conversation's outputs now due.
    Tick(Vec<Output>),
    /// A reply made progress: the conversation's outputs.
    Reply(Vec<Output>),
    /// The transport's own input arrived.
    Input(T),
}

/// A conversation, its reply updates and its clock.
pub struct Driver {
    pub conversation: Conversation,
    replies: ReplyUpdates,
    ticker: Interval,
}

impl Driver {
    pub fn new(conversation: Conversation, replies: ReplyUpdates) -> Self {
        let mut ticker = tokio::time::interval(Duration::from_millis(10));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        Self {
            conversation,
            replies,
            ticker,
        }
    }

    /// Waits for the next tick, reply update or `input`, whichever comes first.
    pub async fn next<T>(&mut self, input: impl Future<Output = T>) -> Step<T> {
        tokio::select! {
            _ = self.ticker.tick() => Step::Tick(self.conversation.tick(Instant::now())),
            Some((id, ev)) = self.replies.recv() => {
                Step::Reply(self.conversation.on_reply(id, ev, Instant::now()))
            }
            v = input => Step::Input(v),
        }
    }
}
