//! `POST /voximplant/process_audio` (one recording-URL turn, logged in the call's span and
//! timed in the metrics) and `GET /audio/{id}.wav` (the reply audio the scenario plays).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use super::RecordingContext;
use crate::audio::{decode, wav};
use crate::calls::CallId;
use crate::conversation::recording_turn;
use crate::conversation::reply::{ms, Action, Timings};
use crate::download::{self, DownloadError};
use crate::http::error::ApiError;
use crate::metrics::Transport;

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
    /// With `action: "transfer"`: the operator's number to connect the caller to.
    #[serde(skip_serializing_if = "Option::is_none")]
    transfer_to: Option<String>,
    timings_ms: Timings,
}

pub async fn handle(
    State(ctx): State<Arc<RecordingContext>>,
    body: Result<Json<TurnRequest>, JsonRejection>,
) -> Response {
    let _busy = ctx.drain.busy();
    let started = Instant::now();
    let parsed = body
        .map_err(ApiError::from)
        .and_then(|Json(req)| Ok((CallId::parse(&req.call_id)?, req)));
    let (id, req) = match parsed {
        Ok(ok) => ok,
        Err(e) => return e.into_response(),
    };
    let span = tracing::info_span!("call", call_id = %id, transport = "recording");
    async move {
        match answer(&ctx, id, req, started).await {
            Ok(turn) => Json(turn).into_response(),
            Err(e) => e.into_response(),
        }
    }
    .instrument(span)
    .await
}

async fn answer(
    ctx: &RecordingContext,
    id: CallId,
    req: TurnRequest,
    started: Instant,
) -> Result<TurnResponse, ApiError> {
    if ctx.calls.find(&id).is_none() {
        ctx.drain.admit_new_call()?;
    }
    ctx.calls
        .check_room(&id, Transport::Recording)
        .map_err(|full| ApiError::at_capacity(full, ctx.retry_after_secs, &ctx.operator_phone))?;
    let max_secs = ctx.max_audio_secs;
    if let Some(d) = req.duration.filter(|d| *d > max_secs) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "audio_too_long",
            format!("the recording is {d:.1} s long, more than the {max_secs:.0} s allowed"),
        ));
    }
    let mut timings = Timings::default();

    let t = Instant::now();
    let bytes = download::fetch(&req.audio_url, &ctx.download)
        .await
        .map_err(download_error)?;
    timings.download = ms(t);

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
    timings.decode = ms(t);

    let call = ctx.calls.open(&id, Transport::Recording);
    let turn = call.turn_lock().await;
    let outcome = recording_turn::run(
        &ctx.assistant,
        call.memory(),
        pcm,
        ctx.reply_rate,
        &mut timings,
    )
    .await
    .map_err(|e| ApiError::internal(format!("turn failed: {e:#}")))?;
    let wav = wav::encode(&outcome.reply_audio).map_err(|e| ApiError::internal(e.to_string()))?;
    let reply_audio_url = ctx.audio_url(wav);
    timings.total = ms(started);
    // Recorded before the scenario gets the reply to play: a crash after this loses nothing.
    call.heard(&outcome.user_text);
    let stored = serde_json::to_value(&timings).ok();
    call.answered(Some(&outcome.user_text), &outcome.reply_text, stored, false);
    drop(turn);
    tracing::info!(
        user_text = %outcome.user_text,
        reply_text = %outcome.reply_text,
        total_ms = timings.total as u64,
        "turn done"
    );
    call.replied(&timings);
    if let Some(tool) = &outcome.tool {
        call.tool_called(tool);
    }
    let transfer_to = (outcome.action == Action::Transfer).then(|| ctx.operator_phone.clone());
    Ok(TurnResponse {
        call_id: id.to_string(),
        user_text: outcome.user_text,
        language: outcome.language,
        reply_text: outcome.reply_text,
        reply_audio_url,
        action: outcome.action,
        transfer_to,
        timings_ms: timings,
    })
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
    State(ctx): State<Arc<RecordingContext>>,
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
    let bytes = ctx.audio.get(id).ok_or_else(not_found)?;
    Ok((
        [
            (header::CONTENT_TYPE, "audio/wav"),
            (header::CACHE_CONTROL, "private, max-age=600"),
        ],
        bytes.as_ref().clone(),
    ))
}
