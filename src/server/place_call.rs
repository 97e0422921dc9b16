//! `POST /calls`: places an outbound call. Checks the number and the context, records the
//! call as pending in the history, and has Voximplant start `scenarios/outbound.js` for it
//! (StartScenarios); the scenario's events then make it active and ended, or failed. A call
//! that cannot be started is kept as failed, with the reason.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::Instrument;

use super::AppState;
use crate::calls::history::{now_ms, to_rfc3339};
use crate::calls::CallId;
use crate::http::error::ApiError;
use crate::metrics::Transport;
use crate::outbound::{self, management_api, StartError};

/// At most `voximplant.max_calls_per_minute` requests a minute (0: no limit); beyond it 429
/// `rate_limited` with `Retry-After`: until the oldest of the minute's requests is a minute
/// old.
fn rate_limit(state: &AppState) -> Result<(), ApiError> {
    let max = state.cfg.voximplant.max_calls_per_minute as usize;
    if max == 0 {
        return Ok(());
    }
    let now = std::time::Instant::now();
    let minute = std::time::Duration::from_secs(60);
    let mut placed = state.placed.lock().unwrap_or_else(|p| p.into_inner());
    while placed
        .front()
        .is_some_and(|t| now.duration_since(*t) >= minute)
    {
        placed.pop_front();
    }
    if placed.len() >= max {
        let wait = placed
            .front()
            .map_or(minute, |t| minute.saturating_sub(now.duration_since(*t)));
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("more than {max} outbound calls a minute (voximplant.max_calls_per_minute)"),
        )
        .with("retry_after_secs", wait.as_secs().max(1)));
    }
    placed.push_back(now);
    Ok(())
}

/// The largest `context` accepted, in bytes of compact JSON.
pub const MAX_CONTEXT_BYTES: usize = 4096;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceCall {
    phone: String,
    #[serde(default)]
    context: Option<Value>,
}

/// Answers 201 `{"call_id","phone","status":"pending","created_at"}`, or an error (with
/// `Retry-After` when Voximplant asks to slow down).
pub async fn handle(
    State(state): State<Arc<AppState>>,
    body: Result<Json<PlaceCall>, JsonRejection>,
) -> Response {
    match place(&state, body).await {
        Ok(placed) => (StatusCode::CREATED, Json(placed)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn place(
    state: &Arc<AppState>,
    body: Result<Json<PlaceCall>, JsonRejection>,
) -> Result<Value, ApiError> {
    rate_limit(state)?;
    let Json(req) = body?;
    state.drain.admit_new_call()?;
    outbound::check_phone(&req.phone)
        .map_err(|m| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_phone", m))?;
    let context = check_context(req.context)?;
    let call_id = outbound::new_call_id();
    // A call voxd has no room to serve is not placed.
    let id = CallId::parse(&call_id).map_err(ApiError::from)?;
    let cfg = &state.cfg;
    state
        .calls
        .check_room(&id, Transport::Stream)
        .map_err(|refused| {
            ApiError::refused(
                refused,
                cfg.calls.retry_after_secs,
                &cfg.tools.operator_phone,
            )
        })?;
    let custom_data = outbound::custom_data(&call_id, &req.phone).map_err(ApiError::internal)?;
    let created_at = match state
        .calls
        .log()
        .query(|h| h.call_placed(&call_id, &req.phone, context.as_ref()))
    {
        Some(placed) => placed.map_err(|e| ApiError::internal(format!("call history: {e:#}")))?,
        None => now_ms(),
    };
    let span = tracing::info_span!("call", call_id = %call_id, transport = "stream");
    async {
        let started = match &state.outbound {
            Some(api) => api.start_scenarios(&custom_data).await.map_err(start_error),
            None => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "outbound_not_configured",
                management_api::not_configured(&state.cfg.voximplant),
            )),
        };
        match started {
            Ok(started) => {
                tracing::info!(
                    call_session_history_id = ?started.call_session_history_id,
                    "outbound call: scenario started"
                );
                let details = serde_json::to_value(&started).unwrap_or_default();
                state.calls.log().record("the scenario start", |h| {
                    h.add_event(&call_id, "ScenarioStarted", &details)
                });
                Ok(json!({
                    "call_id": call_id,
                    "phone": req.phone,
                    "status": "pending",
                    "created_at": to_rfc3339(created_at),
                }))
            }
            Err(e) => {
                let reason = format!("{}: {}", e.code, e.message);
                state.calls.log().record("the failed start", |h| {
                    h.add_event(
                        &call_id,
                        "ScenarioFailed",
                        &json!({"code": e.code, "message": e.message}),
                    )?;
                    h.call_ended(&call_id, "failed", &reason)
                });
                Err(e.with("call_id", call_id.clone()))
            }
        }
    }
    .instrument(span)
    .await
}

/// `context` must be a JSON object of at most [`MAX_CONTEXT_BYTES`]; null is no context.
fn check_context(context: Option<Value>) -> Result<Option<Value>, ApiError> {
    let invalid = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_context", m);
    match context {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => {
            let len = Value::Object(o.clone()).to_string().len();
            if len > MAX_CONTEXT_BYTES {
                return Err(invalid(format!(
                    "context is {len} bytes of JSON; at most {MAX_CONTEXT_BYTES} are kept"
                )));
            }
            Ok(Some(Value::Object(o)))
        }
        Some(other) => Err(invalid(format!(
            "context must be a JSON object, not {}",
            kind(&other)
        ))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Voximplant's failures as API errors: a refusal or an unusable answer is a bad gateway, a
/// rate limit is a retry later, no answer in time is a gateway timeout.
fn start_error(e: StartError) -> ApiError {
    let message = e.to_string();
    match e {
        StartError::Refused { code, msg } => {
            ApiError::new(StatusCode::BAD_GATEWAY, "voximplant_error", message)
                .with("voximplant", json!({"code": code, "msg": msg}))
        }
        StartError::RateLimited { retry_after_secs } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "voximplant_rate_limited",
            message,
        )
        .with("retry_after_secs", retry_after_secs),
        StartError::Timeout(_) => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "voximplant_timeout", message)
        }
        StartError::Unreachable(_) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "voximplant_unreachable", message)
        }
        StartError::BadResponse { .. } => {
            ApiError::new(StatusCode::BAD_GATEWAY, "voximplant_bad_response", message)
        }
        StartError::Signing(_) => ApiError::internal(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_is_an_object_within_the_cap() {
        assert_eq!(check_context(None).unwrap(), None);
        assert_eq!(check_context(Some(Value::Null)).unwrap(), None);
        let o = json!({"name": "Anna", "order": 42});
        assert_eq!(check_context(Some(o.clone())).unwrap(), Some(o));
        let e = check_context(Some(json!(["a"]))).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                "invalid_context",
                "context must be a JSON object, not an array"
            )
        );
        let big = json!({"note": "x".repeat(MAX_CONTEXT_BYTES)});
        let e = check_context(Some(big)).unwrap_err();
        assert!(e.message.contains("at most 4096"), "{}", e.message);
    }
}
