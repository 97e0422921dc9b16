//! What the console shows of voxd's work: `GET /console/api/latency` (each reply's latency
//! in recent calls, voice to voice on the media stream and processing time in recording
//! mode, with their p50 and p95) and `GET /console/api/kb?q=` (the passages a question
//! retrieves from the knowledge base, or that it would be handed off).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::calls::history::to_rfc3339;
use crate::http::error::ApiError;
use crate::metrics::percentile::percentile;
use crate::server::{call_history, AppState};

/// Most replies one latency view covers.
const MAX_REPLIES: u32 = 2000;
/// Longest question searched, in characters.
const MAX_QUESTION: usize = 500;

#[derive(Debug, Deserialize)]
pub struct LatencyQuery {
    since: Option<String>,
    limit: Option<u32>,
}

/// `GET /console/api/latency?since=&limit=`.
pub async fn latency(
    State(state): State<Arc<AppState>>,
    Query(q): Query<LatencyQuery>,
) -> Result<Json<Value>, ApiError> {
    let since = q
        .since
        .as_deref()
        .map(call_history::parse_since)
        .transpose()?
        .unwrap_or(0);
    let limit = q.limit.unwrap_or(500).clamp(1, MAX_REPLIES);
    let rows = call_history::query(&state, |h| h.timed_replies(since, limit))?;
    let (mut v2v, mut processing) = (Vec::new(), Vec::new());
    let turns: Vec<Value> = rows
        .into_iter()
        .map(|(call_id, at, transport, timings)| {
            let voice = timings.get("latency_ms").and_then(Value::as_f64);
            let total = timings.get("total").and_then(Value::as_f64);
            v2v.extend(voice);
            processing.extend(total);
            json!({
                "call_id": call_id,
                "at": to_rfc3339(at),
                "transport": transport,
                "voice_to_voice_ms": voice,
                "processing_ms": total,
            })
        })
        .collect();
    Ok(Json(json!({
        "turns": turns,
        "voice_to_voice": summary(&mut v2v),
        "processing": summary(&mut processing),
    })))
}

fn summary(values: &mut [f64]) -> Value {
    json!({
        "count": values.len(),
        "p50_ms": (!values.is_empty()).then(|| percentile(values, 50.0)),
        "p95_ms": (!values.is_empty()).then(|| percentile(values, 95.0)),
    })
}

#[derive(Debug, Deserialize)]
pub struct KbQuery {
    q: String,
}

/// `GET /console/api/kb?q=`: `{"enabled","passages":[{"source","heading","text","score"}],
/// "handoff"}`; `handoff` when no passage scores `kb.min_score` (a call would be handed off).
pub async fn kb(
    State(state): State<Arc<AppState>>,
    Query(q): Query<KbQuery>,
) -> Result<Json<Value>, ApiError> {
    let question = q.q.trim();
    if question.is_empty() || question.chars().count() > MAX_QUESTION {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            format!("q must be 1 to {MAX_QUESTION} characters"),
        ));
    }
    let Some(kb) = state.stream.assistant.kb() else {
        return Ok(Json(
            json!({"enabled": false, "passages": [], "handoff": false}),
        ));
    };
    let hits = kb
        .search(question)
        .map_err(|e| ApiError::internal(format!("knowledge base: {e:#}")))?;
    Ok(Json(json!({
        "enabled": true,
        "handoff": hits.is_empty(),
        "passages": hits,
    })))
}
