//! Calls as facts: the live-call registry ([`Calls`]), one recorder per call
//! ([`CallRecorder`], the one writer of its memory, its history rows and its metrics), the
//! SQLite history ([`history`]) and what the assistant's tools do to a call
//! ([`tool_effects`]). Every transport opens, records and ends its calls here.

pub mod call_id;
pub mod history;
mod recorder;
mod registry;
mod tool_call;
pub mod tool_effects;

use std::sync::Arc;

use anyhow::Result;

pub use call_id::{CallId, InvalidCallId};
pub use recorder::CallRecorder;
pub use registry::{AtCapacity, Calls};
pub use tool_call::{Lead, ToolCall};

use crate::config::ToolsConfig;
use crate::metrics::Metrics;
use history::History;

/// Where every fact about calls is written: the history database (if any), the metrics,
/// and the tools' settings their effects need.
pub struct CallLog {
    history: Option<History>,
    pub metrics: Arc<Metrics>,
    pub tools: ToolsConfig,
}

impl CallLog {
    pub fn new(history: Option<History>, metrics: Arc<Metrics>, tools: ToolsConfig) -> Self {
        Self {
            history,
            metrics,
            tools,
        }
    }

    /// The history database, when one is configured.
    pub fn history(&self) -> Option<&History> {
        self.history.as_ref()
    }

    /// Writes to the call history, if there is one. A failed write is logged and the call
    /// goes on: the caller must not be dropped because a disk is full.
    pub fn record(&self, what: &str, write: impl FnOnce(&History) -> Result<()>) {
        if let Some(h) = &self.history {
            if let Err(e) = write(h) {
                tracing::error!("call history: cannot record {what}: {e:#}");
            }
        }
    }
}
