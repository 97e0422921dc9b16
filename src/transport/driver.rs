//! The one driver loop of every real-time transport: the [`Conversation`]'s effects run as
//! tasks, their results and the clock (when the conversation next needs it) go back to it,
//! and whatever the transport itself waits for (its socket, its devices) comes back to it,
//! in one `select!`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::conversation::{Assistant, Conversation, Output, Tasks};

/// The longest time between two [`Step::Tick`]s, however busy the input: the transport's
/// own clocks (a silent socket, the longest call, a stalled device) are read on them.
const MAX_WAIT: Duration = Duration::from_millis(250);

/// What happened next.
pub enum Step<T> {
    /// The conversation's clock was due (or [`MAX_WAIT`] passed): its outputs now due.
    Tick(Vec<Output>),
    /// Work the conversation asked for (a reply, the end-of-turn model) reported: the
    /// conversation's outputs.
    Update(Vec<Output>),
    /// The transport's own input arrived.
    Input(T),
}

/// A conversation and the tasks that do its work.
pub struct Driver {
    pub conversation: Conversation,
    tasks: Tasks,
    /// When the next tick is due at the latest.
    latest_tick: Instant,
}

impl Driver {
    pub fn new(conversation: Conversation, assistant: Arc<Assistant>) -> Self {
        Self {
            conversation,
            tasks: Tasks::new(assistant),
            latest_tick: Instant::now() + MAX_WAIT,
        }
    }

    /// Starts the work the conversation asked for, then waits for the conversation's next
    /// timeout (at most [`MAX_WAIT`]), a result of its work or `input`, whichever comes
    /// first.
    pub async fn next<T>(&mut self, input: impl Future<Output = T>) -> Step<T> {
        self.tasks.run_all(self.conversation.effects());
        let due = self
            .conversation
            .next_timeout(Instant::now())
            .map_or(self.latest_tick, |at| at.min(self.latest_tick));
        // A due tick goes first: audio must not reach a conversation whose clock is late
        // (a reply that has played out is ended before the caller's next words).
        tokio::select! {
            biased;
            _ = tokio::time::sleep_until(due.into()) => {
                let now = Instant::now();
                self.latest_tick = now + MAX_WAIT;
                Step::Tick(self.conversation.tick(now))
            }
            update = self.tasks.next() => {
                Step::Update(self.conversation.on_update(update, Instant::now()))
            }
            v = input => Step::Input(v),
        }
    }
}
