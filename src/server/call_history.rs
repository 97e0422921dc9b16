//! `GET /calls` and `GET /calls/{call_id}`: the stored call history (status, timestamps,
//! outcome, transcript), for operators and CRMs.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::AppState;
use crate::calls::history::History;
use crate::http::error::ApiError;

const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<u32>,
    since: Option<String>,
}

/// Runs `read` on the history ([`crate::calls::CallLog::query`]); 404 when there is none.
fn query<T>(
    state: &AppState,
    read: impl FnOnce(&History) -> anyhow::Result<T>,
) -> Result<T, ApiError> {
    match state.calls.log().query(read) {
        Some(found) => found.map_err(storage_error),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "history_disabled",
            "the call history is off (history.database is empty)",
        )),
    }
}

fn storage_error(e: anyhow::Error) -> ApiError {
    ApiError::internal(format!("call history: {e:#}"))
}

/// `GET /calls?limit=&since=`: newest first; `since` is an RFC 3339 time or Unix milliseconds.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            format!("limit must be 1 to {MAX_LIMIT}"),
        ));
    }
    let since = q
        .since
        .as_deref()
        .map(parse_since)
        .transpose()?
        .unwrap_or(0);
    let calls = query(&state, |h| h.list(limit, since))?;
    Ok(Json(json!({ "calls": calls })))
}

/// `GET /calls/{call_id}`: one call with its turns and events.
pub async fn show(
    State(state): State<Arc<AppState>>,
    Path(call_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let call = query(&state, |h| h.call(&call_id))?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_call",
            format!("no call {call_id:?} in the history"),
        )
    })?;
    Ok(Json(
        serde_json::to_value(call).map_err(|e| ApiError::internal(e.to_string()))?,
    ))
}

fn parse_since(s: &str) -> Result<i64, ApiError> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                format!("since must be an RFC 3339 time or Unix milliseconds, not {s:?}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_rfc3339_or_milliseconds() {
        assert_eq!(parse_since("1700000000000").unwrap(), 1_700_000_000_000);
        assert_eq!(
            parse_since("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_since("2023-11-15T01:13:20+03:00").unwrap(),
            1_700_000_000_000
        );
        assert!(parse_since("yesterday").is_err());
    }
}
