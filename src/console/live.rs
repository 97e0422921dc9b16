//! The console's view of the calls in progress: `GET /console/api/live` (each live call with
//! its transcript so far, barge-ins and tool calls) and `GET /console/api/live/stream`, the
//! same as server-sent events: a `snapshot` first, then every fact of the calls' feed as it
//! happens (`call_started`, `turn`, `tool`, `barge_in`, `call_ended`), a fresh `snapshot`
//! when the reader fell behind, and a `ping` comment every 15 s. At most [`MAX_VIEWERS`]
//! streams are open at once; each ends after ten minutes (the console reconnects) and when
//! voxd stops.

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
/// How long one stream lasts (the console opens the next): a reader that vanished without
/// closing its connection frees its place by then.
const MAX_STREAM: Duration = Duration::from_secs(600);

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
    let stop = state.drain.stop_signal();
    let ends = tokio::time::Instant::now() + MAX_STREAM;
    let viewer = Viewer(state);
    let events = futures_util::stream::unfold(
        (Some(first), rx, viewer, stop),
        move |(first, mut rx, viewer, mut stop)| async move {
            if let Some(snapshot) = first {
                let event = Event::default()
                    .event("snapshot")
                    .data(snapshot.to_string());
                return Some((Ok(event), (None, rx, viewer, stop)));
            }
            let fact = tokio::select! {
                fact = rx.recv() => fact,
                // voxd stops, or the stream has run its time (the console reconnects).
                _ = stop.wait_for(|stop| *stop) => return None,
                _ = tokio::time::sleep_until(ends) => return None,
            };
            let event = match fact {
                Ok(fact) => Event::default()
                    .event(fact.kind)
                    .data(fact.data.to_string()),
                // Fell behind: a fresh snapshot replaces what the console shows.
                Err(RecvError::Lagged(_)) => {
                    rx = rx.resubscribe();
                    Event::default()
                        .event("snapshot")
                        .data(snapshot(&viewer.0).to_string())
                }
                Err(RecvError::Closed) => return None,
            };
            Some((Ok(event), (None, rx, viewer, stop)))
        },
    );
    Ok(Sse::new(events).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("ping"),
    ))
}
