//! What the assistant can ask of a call: the tool calls a reply may end with, and the
//! lead it takes down. The conversation parses them ([`crate::conversation::tools`]); the
//! call's recorder acts on them ([`super::tool_effects`]).

use serde::{Deserialize, Serialize};

/// What the model asked for at the end of its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolCall {
    /// Say goodbye and end the call.
    Hangup,
    /// Connect the caller to the operator (`tools.operator_phone`).
    Transfer,
    /// Keep the caller's details for the company.
    SaveLead(Lead),
    /// Press these keys on the call (0-9, *, #; at most [`MAX_DIGITS`]).
    SendDigits(String),
}

/// Most keys one `send_digits` call presses.
pub const MAX_DIGITS: usize = 20;

impl ToolCall {
    /// The tool's name, as the model writes it and the metrics label it.
    pub fn name(&self) -> &'static str {
        match self {
            ToolCall::Hangup => "hangup",
            ToolCall::Transfer => "transfer",
            ToolCall::SaveLead(_) => "save_lead",
            ToolCall::SendDigits(_) => "send_digits",
        }
    }
}

/// A prospective customer's details, as the model heard them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lead {
    pub name: String,
    /// Normalized: digits, with a leading `+` when the caller gave one.
    pub phone: String,
    pub request: String,
}
