//! `GET /health`: liveness, version, live calls and loaded models (no auth). While voxd
//! drains before it stops, it answers 503 with `"status":"draining"`, so that a load
//! balancer sends new calls elsewhere.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;

pub async fn handle(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    let (status, word) = if state.drain.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else {
        (StatusCode::OK, "ok")
    };
    let body = json!({
        "status": word,
        "version": env!("CARGO_PKG_VERSION"),
        "active_calls": state.calls.active(),
        "uptime_secs": state.started.elapsed().as_secs(),
        "models": state.models,
    });
    (status, Json(body))
}
