//! Calls as facts: the live-call registry ([`Calls`]), one recorder per call
//! ([`CallRecorder`], the one writer of its memory, its history rows and its metrics), the
//! SQLite history ([`history`]), the live feed of call facts for the console ([`feed`]) and
//! what the assistant's tools do to a call ([`tool_effects`]). Every transport opens, records and ends its calls here.

pub mod call_id;
pub mod feed;
pub mod history;
mod recorder;
mod registry;
mod tool_call;
pub mod tool_effects;

use std::sync::Arc;

use anyhow::Result;

pub use call_id::{CallId, InvalidCallId};
pub use recorder::CallRecorder;
pub use registry::{AtCapacity, Calls, Lifetimes, Refused, Reservation};
pub use tool_call::{Lead, ToolCall, MAX_DIGITS};

use crate::config::ToolsConfig;
use crate::metrics::Metrics;
use history::History;

/// Where every fact about calls is written: the history database (if any), the metrics,
/// the live feed, and the tools' settings their effects need.
pub struct CallLog {
    history: Option<History>,
    pub metrics: Arc<Metrics>,
    pub feed: feed::Feed,
    pub tools: ToolsConfig,
}

impl CallLog {
    pub fn new(history: Option<History>, metrics: Arc<Metrics>, tools: ToolsConfig) -> Self {
        Self {
            history,
            metrics,
            feed: feed::Feed::default(),
            tools,
        }
    }

    /// Whether a history database is configured.
    pub fn has_history(&self) -> bool {
        self.history.is_some()
    }

    /// Reads (or writes and returns) from the history, if there is one, without stalling the
    /// async runtime ([`off_the_runtime`]).
    pub fn query<T>(&self, read: impl FnOnce(&History) -> T) -> Option<T> {
        self.history.as_ref().map(|h| off_the_runtime(|| read(h)))
    }

    /// Writes to the call history, if there is one. A failed write is logged and the call
    /// goes on: the caller must not be dropped because a disk is full.
    pub fn record(&self, what: &str, write: impl FnOnce(&History) -> Result<()>) {
        if let Some(Err(e)) = self.query(write) {
            tracing::error!("call history: cannot record {what}: {e:#}");
        }
    }
}

/// Runs blocking work (a SQLite write waiting on the disk or on the connection's lock) on an
/// async worker thread without stalling the other calls' tasks: on the multi-threaded
/// runtime the worker first hands its queued tasks to another thread (`block_in_place`).
/// Elsewhere (the CLI, a current-thread runtime) it simply runs.
pub fn off_the_runtime<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}
