//! The console's view of the calls in progress: `GET /console/api/live` (each live call with
//! its transcript so far, barge-ins and tool calls) and `GET /console/api/live/stream`, the
//! same as server-sent events: a `snapshot` first, then every fact of the calls' feed as it
//! happens (`call_started`, `turn`, `tool`, `barge_in`, `call_ended`), `resync` when the
//! reader fell behind, and a `ping` comment every 15 s. At most [`MAX_VIEWERS`] streams are
//! open at once.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures_util::Stream;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use crate::http::error::ApiError;
use crate::server::AppState;

/// Most live-feed streams open at once (console tabs).
pub const MAX_VIEWERS: usize = 16;

/// `GET /console/api/live`.
pub async fn list(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(snapshot(&state))
}

fn snapshot(state: &AppState) -> Value {
    json!({ "calls": state.calls.live_views() })
}

/// Counts an open stream; the count drops with it.
struct Viewer(Arc<AppState>);

impl Drop for Viewer {
    fn drop(&mut self) {
        self.0.console_viewers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `GET /console/api/live/stream`.
pub async fn stream(
    State(state): State<Arc<AppState>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let viewers: &AtomicUsize = &state.console_viewers;
    if viewers.fetch_add(1, Ordering::SeqCst) >= MAX_VIEWERS {
        viewers.fetch_sub(1, Ordering::SeqCst);
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_viewers",
            format!("{MAX_VIEWERS} consoles follow the calls already"),
        ));
    }
    // Subscribed before the snapshot is taken: no fact falls between the two.
    let rx = state.calls.log().feed.subscribe();
    let first = snapshot(&state);
    let viewer = Viewer(state);
    let events = futures_util::stream::unfold(
        (Some(first), rx, viewer),
        |(first, mut rx, viewer)| async move {
            if let Some(snapshot) = first {
                let event = Event::default()
                    .event("snapshot")
                    .data(snapshot.to_string());
                return Some((Ok(event), (None, rx, viewer)));
            }
            let event = match rx.recv().await {
                Ok(fact) => Event::default()
                    .event(fact.kind)
                    .data(fact.data.to_string()),
                Err(RecvError::Lagged(_)) => Event::default().event("resync").data("{}"),
                Err(RecvError::Closed) => return None,
            };
            Some((Ok(event), (None, rx, viewer)))
        },
    );
    Ok(Sse::new(events).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("ping"),
    ))
}
