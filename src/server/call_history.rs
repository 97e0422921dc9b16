//! `GET /calls` and `GET /calls/{call_id}`: the stored call history (status, timestamps,
//! outcome, transcript, events, leads), for operators, CRMs and the console; the list is
//! filtered (time, direction, outcome, status, phone) and paged.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::AppState;
use crate::calls::history::{CallFilter, History};
use crate::http::error::ApiError;

const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<u32>,
    offset: Option<u32>,
    since: Option<String>,
    until: Option<String>,
    direction: Option<String>,
    outcome: Option<String>,
    status: Option<String>,
    phone: Option<String>,
}

/// Runs `read` on the history ([`crate::calls::CallLog::query`]); 404 when there is none.
pub(crate) fn query<T>(
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

/// `GET /calls?limit=&offset=&since=&until=&direction=&outcome=&status=&phone=`: newest
/// first, with the `total` the filter picks; times are RFC 3339 or Unix milliseconds, `phone`
/// matches part of the number.
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
    let time = |t: &Option<String>| t.as_deref().map(parse_since).transpose();
    let text = |t: Option<String>| t.filter(|t| !t.is_empty());
    let filter = CallFilter {
        since: time(&q.since)?.unwrap_or(0),
        until: time(&q.until)?,
        direction: text(q.direction),
        outcome: text(q.outcome),
        status: text(q.status),
        phone: text(q.phone),
        limit,
        offset: q.offset.unwrap_or(0),
    };
    let (calls, total) = query(&state, |h| h.list(&filter))?;
    Ok(Json(json!({ "calls": calls, "total": total })))
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

/// A time given as RFC 3339 or Unix milliseconds.
pub(crate) fn parse_since(s: &str) -> Result<i64, ApiError> {
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
