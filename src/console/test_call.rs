//! Test calls from the console: `POST /console/api/test_call` hands out a one-time ticket
//! for a new call id, and the browser opens `/voximplant/stream?ticket=…` with it (a browser
//! cannot put the token in a WebSocket's headers, and the token never goes into a URL). A
//! ticket is good once, for [`TICKET_TTL`]; at most [`MAX_TICKETS`] are outstanding. The call
//! is stored with the direction `test`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use rand::RngCore;
use serde_json::{json, Value};

use crate::calls::CallId;
use crate::http::error::ApiError;
use crate::server::AppState;

/// How long a ticket is good for.
pub const TICKET_TTL: Duration = Duration::from_secs(30);
/// Most tickets outstanding at once.
pub const MAX_TICKETS: usize = 16;

/// The outstanding tickets: ticket → the call it opens, and until when.
#[derive(Default)]
pub struct Tickets(Mutex<HashMap<String, (CallId, Instant)>>);

impl Tickets {
    /// A new ticket for a new test call; None when too many are outstanding.
    pub fn issue(&self) -> Option<(String, CallId)> {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        t.retain(|_, (_, until)| *until > now);
        if t.len() >= MAX_TICKETS {
            return None;
        }
        let mut bytes = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut bytes);
        let ticket: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let call = CallId::random("test-");
        t.insert(ticket.clone(), (call.clone(), now + TICKET_TTL));
        Some((ticket, call))
    }

    /// The call a ticket opens, once; None for an unknown, used or expired ticket.
    pub fn redeem(&self, ticket: &str) -> Option<CallId> {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (call, until) = t.remove(ticket)?;
        (until > Instant::now()).then_some(call)
    }
}

/// `POST /console/api/test_call`: `{"call_id","ticket","expires_in_secs"}`.
pub async fn start(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    state.drain.admit_new_call()?;
    let (ticket, call_id) = state.stream.tickets.issue().ok_or_else(|| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_tickets",
            format!("{MAX_TICKETS} test calls are being started already; try again shortly"),
        )
    })?;
    Ok(Json(json!({
        "call_id": call_id.as_str(),
        "ticket": ticket,
        "expires_in_secs": TICKET_TTL.as_secs(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_opens_its_call_once_and_they_are_bounded() {
        let t = Tickets::default();
        let (ticket, call) = t.issue().unwrap();
        assert!(call.as_str().starts_with("test-"));
        assert_eq!(t.redeem(&ticket), Some(call));
        assert_eq!(t.redeem(&ticket), None, "used");
        assert_eq!(t.redeem("made-up"), None);
        let issued: Vec<_> = (0..MAX_TICKETS).map(|_| t.issue()).collect();
        assert!(issued.iter().all(Option::is_some));
        assert!(t.issue().is_none(), "bounded");
    }
}
