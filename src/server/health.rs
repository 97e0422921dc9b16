//! `GET /health`: liveness, version, live calls and loaded models (no auth).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;

pub async fn handle(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "active_calls": state.calls.active(),
        "uptime_secs": state.started.elapsed().as_secs(),
        "models": state.engines.names,
    }))
}
