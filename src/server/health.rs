//! `GET /health`: liveness, version, live calls, capacity and loaded models (no auth). While
//! voxd drains before it stops it answers 503 with `"status":"draining"`, once an engine
//! died (`failed_engines`) 503 with `"status":"engine_failed"`, and while every
//! place is taken 503 with `"status":"at_capacity"`, so that a load balancer's health check
//! sends new calls elsewhere; `room` says how many more calls it takes, and `engines` how
//! much work waits for each engine (queue depth); `languages` what the models listen for
//! (`stt.language`, `auto`: detected) and speak (the voice's espeak-ng language, and that of
//! each language's own voice under `voices`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;

pub async fn handle(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    let (live, capacity) = (state.calls.active(), state.calls.capacity());
    let dead = state.stream.assistant.dead_engines();
    let (status, word) = if !dead.is_empty() {
        (StatusCode::SERVICE_UNAVAILABLE, "engine_failed")
    } else if state.drain.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else if live >= capacity {
        (StatusCode::SERVICE_UNAVAILABLE, "at_capacity")
    } else {
        (StatusCode::OK, "ok")
    };
    let body = json!({
        "status": word,
        "version": env!("CARGO_PKG_VERSION"),
        "active_calls": live,
        "capacity": capacity,
        "room": capacity.saturating_sub(live),
        "engines": state.engine_load(),
        "uptime_secs": state.started.elapsed().as_secs(),
        "failed_engines": dead,
        "models": state.models,
        "languages": {
            "stt": state.cfg.stt.language,
            "tts": state.models.voice_language,
            "voices": state.models.voice_languages,
        },
    });
    (status, Json(body))
}
