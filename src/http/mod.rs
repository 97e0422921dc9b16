//! HTTP plumbing shared by the server and the transports that speak HTTP: the JSON error
//! every endpoint answers with (its warnings rationed), the bearer-token check, the `Host`
//! check of a voxd without tokens, the request body's deadline, and graceful draining.

pub mod auth;
pub mod body_deadline;
pub mod drain;
pub mod error;
pub mod host_guard;
pub mod warn_budget;
