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

use super::error::ApiError;
use super::AppState;
use crate::audio::{decode, wav};
use crate::download::{self, DownloadError};
use crate::metrics::{Stage, Transport};
use crate::turn::{self, ms, Action, Timings};

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
) -> Response {
    let _busy = state.drain.busy();
    let started = Instant::now();
    let req = match body.map_err(ApiError::from).and_then(|Json(req)| {
        check_call_id(&req.call_id)?;
        Ok(req)
    }) {
        Ok(req) => req,
        Err(e) => return e.into_response(),
    };
    let span = tracing::info_span!("call", call_id = %req.call_id, transport = "recording");
    async move {
        match answer(&state, req, started).await {
            Ok(turn) => Json(turn).into_response(),
            Err(e) => e.into_response(),
        }
    }
    .instrument(span)
    .await
}

async fn answer(
    state: &Arc<AppState>,
    req: TurnRequest,
    started: Instant,
) -> Result<TurnResponse, ApiError> {
    if state.calls.find(&req.call_id).is_none() {
        state.drain.admit_new_call()?;
    }
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

    let session = state.open_call(&req.call_id, Transport::Recording);
    let mut session = session.lock().await;
    let outcome = turn::run(&state.engines, &state.cfg, &mut session, pcm, &mut timings)
        .await
        .map_err(|e| ApiError::internal(format!("turn failed: {e:#}")))?;
    drop(session);

    let wav = wav::encode(&outcome.reply_audio).map_err(|e| ApiError::internal(e.to_string()))?;
    let id = state.audio.put(wav);
    timings.total = ms(started);
    // Committed before the scenario gets the reply to play: a crash after this loses nothing.
    state.record("the turn", |h| {
        if !outcome.user_text.is_empty() {
            h.add_turn(&req.call_id, "user", &outcome.user_text, None, false)?;
        }
        let timings = serde_json::to_value(&timings)?;
        h.add_turn(
            &req.call_id,
            "assistant",
            &outcome.reply_text,
            Some(&timings),
            false,
        )
    });
    tracing::info!(
        user_text = %outcome.user_text,
        reply_text = %outcome.reply_text,
        total_ms = timings.total as u64,
        "turn done"
    );
    record(state, &timings);
    if let Some(tool) = &outcome.tool {
        super::tools::called(state, &req.call_id, tool);
    }
    let transfer_to =
        (outcome.action == Action::Transfer).then(|| state.cfg.tools.operator_phone.clone());
    Ok(TurnResponse {
        call_id: req.call_id,
        user_text: outcome.user_text,
        language: outcome.language,
        reply_text: outcome.reply_text,
        reply_audio_url: format!("{}/audio/{id}.wav", state.public_url),
        action: outcome.action,
        transfer_to,
        timings_ms: timings,
    })
}

/// Counts the turn and its stage times in the metrics.
fn record(state: &AppState, t: &Timings) {
    let m = &state.metrics;
    m.turn_answered(Transport::Recording);
    for (stage, took) in [
        (Stage::Download, t.download),
        (Stage::Decode, t.decode),
        (Stage::Stt, t.stt),
        (Stage::TtsFirstAudio, t.tts_first_audio),
        (Stage::TurnTotal, t.total),
    ] {
        m.stage_ms(Transport::Recording, stage, took);
    }
    if t.llm > 0.0 {
        m.stage_ms(
            Transport::Recording,
            Stage::LlmFirstToken,
            t.llm_first_token,
        );
        m.stage_ms(Transport::Recording, Stage::Llm, t.llm);
    }
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
