//! `POST /voximplant/process_audio` (one recording-URL turn) and `GET /audio/{id}.wav`
//! (the reply audio the scenario plays).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::AppState;
use crate::audio::{decode, wav};
use crate::download::{self, DownloadError};
use crate::turn::{self, Action, Timings};

#[derive(Debug, Deserialize)]
pub struct TurnRequest {
    call_id: String,
    audio_url: String,
    /// Length in seconds as the scenario saw it (`RecordStopped.duration`); checked early.
    duration: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct TurnResponse {
    call_id: String,
    user_text: String,
    language: String,
    reply_text: String,
    reply_audio_url: String,
    action: Action,
    timings_ms: Timings,
}

/// Call ids are what the scenario chose: non-empty, printable, at most 128 bytes.
pub fn check_call_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "call_id must be 1 to 128 printable characters",
        ));
    }
    Ok(())
}

pub async fn handle(
    State(state): State<Arc<AppState>>,
    body: Result<Json<TurnRequest>, JsonRejection>,
) -> Result<Json<TurnResponse>, ApiError> {
    let started = Instant::now();
    let Json(req) = body?;
    check_call_id(&req.call_id)?;
    let max_secs = state.cfg.calls.max_audio_secs;
    if let Some(d) = req.duration.filter(|d| *d > max_secs) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "audio_too_long",
            format!("the recording is {d:.1} s long, more than the {max_secs:.0} s allowed"),
        ));
    }
    let mut timings = Timings::default();

    let t = Instant::now();
    let bytes = download::fetch(&req.audio_url, &state.cfg.download)
        .await
        .map_err(download_error)?;
    timings.download = elapsed_ms(t);

    let t = Instant::now();
    let pcm = tokio::task::spawn_blocking(move || decode::decode(&bytes, max_secs))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "audio_decode",
                e.to_string(),
            )
        })?;
    timings.decode = elapsed_ms(t);

    let session = state.calls.session(&req.call_id);
    let mut session = session.lock().await;
    let outcome = turn::run(&state.engines, &state.cfg, &mut session, pcm, &mut timings)
        .await
        .map_err(|e| ApiError::internal(format!("turn failed: {e:#}")))?;
    drop(session);

    let wav = wav::encode(&outcome.reply_audio).map_err(|e| ApiError::internal(e.to_string()))?;
    let id = state.audio.put(wav);
    timings.total = elapsed_ms(started);
    tracing::info!(
        call_id = %req.call_id,
        user_text = %outcome.user_text,
        reply_text = %outcome.reply_text,
        total_ms = timings.total as u64,
        "turn done"
    );
    Ok(Json(TurnResponse {
        call_id: req.call_id,
        user_text: outcome.user_text,
        language: outcome.language,
        reply_text: outcome.reply_text,
        reply_audio_url: format!("{}/audio/{id}.wav", state.public_url),
        action: outcome.action,
        timings_ms: timings,
    }))
}

fn elapsed_ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn download_error(e: DownloadError) -> ApiError {
    let (status, code) = match &e {
        DownloadError::BadUrl(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_url"),
        DownloadError::Refused(_) => (StatusCode::FORBIDDEN, "url_refused"),
        DownloadError::Status(_) => (StatusCode::BAD_GATEWAY, "download_failed"),
        DownloadError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "audio_too_large"),
        DownloadError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "download_timeout"),
        DownloadError::TooManyRedirects(_) => (StatusCode::BAD_GATEWAY, "too_many_redirects"),
        DownloadError::Network(_) => (StatusCode::BAD_GATEWAY, "download_failed"),
    };
    ApiError::new(status, code, e.to_string())
}

/// Serves a stored reply as `audio/wav`; ids are unguessable, so no auth.
pub async fn serve_audio(
    State(state): State<Arc<AppState>>,
    Path(file): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "audio_not_found",
            "no such reply audio (expired?)",
        )
    };
    let id = file.strip_suffix(".wav").ok_or_else(not_found)?;
    let bytes = state.audio.get(id).ok_or_else(not_found)?;
    Ok((
        [
            (header::CONTENT_TYPE, "audio/wav"),
            (header::CACHE_CONTROL, "private, max-age=600"),
        ],
        bytes.as_ref().clone(),
    ))
}
