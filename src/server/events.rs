//! `POST /voximplant/events`: call lifecycle reported by the scenario;
//! `GET /voximplant/calls/{call_id}`: a live call's conversation so far.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::process_audio::check_call_id;
use super::AppState;

#[derive(Debug, Deserialize)]
pub struct EventRequest {
    call_id: String,
    event: String,
}

pub async fn handle(
    State(state): State<Arc<AppState>>,
    body: Result<Json<EventRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(req) = body?;
    check_call_id(&req.call_id)?;
    match req.event.as_str() {
        "Connected" => {
            state.calls.session(&req.call_id);
        }
        "Disconnected" | "Failed" => {
            if !state.calls.end(&req.call_id) {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "unknown_call",
                    format!("no live call with call_id {:?}", req.call_id),
                ));
            }
        }
        other => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_event",
                format!("event {other:?} is not one of Connected, Disconnected, Failed"),
            ))
        }
    }
    Ok(Json(
        json!({"call_id": req.call_id, "event": req.event, "active_calls": state.calls.active()}),
    ))
}

/// A live call's history, for scenario authors and operators debugging a call.
pub async fn show(
    State(state): State<Arc<AppState>>,
    Path(call_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let session = state.calls.find(&call_id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_call",
            format!("no live call with call_id {call_id:?}"),
        )
    })?;
    let session = session.lock().await;
    Ok(Json(json!({
        "call_id": call_id,
        "turns": session.turns,
        "duration_secs": session.started.elapsed().as_secs_f64(),
        "history": session.history,
        "reply_latencies_ms": session.reply_latencies_ms,
    })))
}
