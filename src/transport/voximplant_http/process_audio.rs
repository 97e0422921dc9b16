//! `POST /voximplant/process_audio` (one recording-URL turn, logged in the call's span and
//! timed in the metrics; answered whole, or at once with audio that grows, see
//! [`super::progressive`]) and `GET /audio/{id}.wav` (the reply audio the scenario plays).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use super::audio_store::{Growing, ReplyFormat, Stored};
use super::{progressive, RecordingContext};
use crate::audio::{decode, wav};
use crate::calls::{CallId, CallRecorder};
use crate::conversation::recording_turn::{self, Delivery, TurnOutcome};
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
    /// Answer once the words are transcribed, with audio that grows as the reply is made.
    #[serde(default)]
    progressive: bool,
    /// What that audio is: "mp3" or "wav" (default `calls.progressive_format`).
    format: Option<ReplyFormat>,
}

/// A finished turn: the answer of a whole turn, and the result of a progressive one.
#[derive(Debug, Serialize)]
pub struct TurnResponse {
    pub call_id: String,
    pub user_text: String,
    pub language: String,
    pub reply_text: String,
    pub reply_audio_url: String,
    pub action: Action,
    /// With `action: "transfer"`: the operator's number to connect the caller to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_to: Option<String>,
    pub timings_ms: Timings,
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
            Ok(Answer::Whole(turn)) => Json(turn).into_response(),
            Ok(Answer::Progressive(turn)) => Json(turn).into_response(),
            Err(e) => e.into_response(),
        }
    }
    .instrument(span)
    .await
}

/// What a turn request gets.
enum Answer {
    Whole(TurnResponse),
    Progressive(progressive::Started),
}

async fn answer(
    ctx: &Arc<RecordingContext>,
    id: CallId,
    req: TurnRequest,
    started: Instant,
) -> Result<Answer, ApiError> {
    if ctx.calls.find(&id).is_none() {
        ctx.drain.admit_new_call()?;
    }
    // The place is taken now, before the download, and kept until the call opens.
    let place = ctx
        .calls
        .reserve(&id, Transport::Recording)
        .map_err(|refused| ApiError::refused(refused, ctx.retry_after_secs, &ctx.operator_phone))?;
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

    let call = place
        .open()
        .map_err(|refused| ApiError::refused(refused, ctx.retry_after_secs, &ctx.operator_phone))?;
    if req.progressive {
        let format = req.format.unwrap_or(ctx.progressive_format);
        return progressive::start(ctx.clone(), call, pcm, format, timings, started)
            .await
            .map(Answer::Progressive);
    }
    let _turn = call.turn_lock().await;
    let delivery = Delivery {
        rate: ctx.reply_rate,
        live: false,
        watch: &mut |_| {},
    };
    let (memory, language) = (call.memory(), call.language());
    let outcome = recording_turn::run(
        &ctx.assistant,
        memory,
        language,
        pcm,
        delivery,
        &mut timings,
    )
    .await
    .map_err(|e| ApiError::internal(format!("turn failed: {e:#}")))?;
    let wav = wav::encode(&outcome.reply_audio).map_err(|e| ApiError::internal(e.to_string()))?;
    let reply_audio_url = ctx.audio_url(ctx.audio.put(wav));
    timings.total = ms(started);
    let turn = finished(ctx, &call, outcome, reply_audio_url, timings);
    Ok(Answer::Whole(turn))
}

/// Records a finished turn in the call (its history, memory, metrics and tools) and says
/// what the scenario is to do.
pub fn finished(
    ctx: &RecordingContext,
    call: &CallRecorder,
    outcome: TurnOutcome,
    reply_audio_url: String,
    timings: Timings,
) -> TurnResponse {
    call.heard(&outcome.user_text);
    call.speaks(outcome.call_language.as_deref());
    let stored = serde_json::to_value(&timings).ok();
    // The history keeps the reply audio's path: the console plays it from the same origin.
    let audio_path = reply_audio_url
        .find("/audio/")
        .map(|i| &reply_audio_url[i..]);
    call.answered(
        Some(&outcome.user_text),
        &outcome.reply_text,
        stored,
        false,
        audio_path,
    );
    tracing::info!(
        user_words = outcome.user_text.split_whitespace().count(),
        reply_words = outcome.reply_text.split_whitespace().count(),
        total_ms = timings.total as u64,
        "turn done"
    );
    tracing::debug!(user_text = %outcome.user_text, reply_text = %outcome.reply_text, "the turn's words");
    call.replied(&timings);
    if let Some(tool) = &outcome.tool {
        call.tool_called(tool);
    }
    let transfer_to = (outcome.action == Action::Transfer).then(|| ctx.operator_phone.clone());
    TurnResponse {
        call_id: call.id().to_string(),
        user_text: outcome.user_text,
        language: outcome.language,
        reply_text: outcome.reply_text,
        reply_audio_url,
        action: outcome.action,
        transfer_to,
        timings_ms: timings,
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

/// A growing file's stream ends when nothing has been added for this long (its reply
/// cannot take longer between two pieces).
const GROWING_STALL: Duration = Duration::from_secs(60);

/// Serves a stored reply (`{id}.wav`, or `{id}.mp3` for a progressive MP3 reply); ids are
/// unguessable, so no auth. A reply still being made is sent as it grows (chunked), to its
/// end.
pub async fn serve_audio(
    State(ctx): State<Arc<RecordingContext>>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "audio_not_found",
            "no such reply audio (expired?)",
        )
    };
    let (id, asked) = match file.rsplit_once('.') {
        Some((id, "wav")) => (id, ReplyFormat::Wav),
        Some((id, "mp3")) => (id, ReplyFormat::Mp3),
        _ => return Err(not_found()),
    };
    let (bytes, format) = match ctx.audio.get(id).ok_or_else(not_found)? {
        Stored::Whole(bytes) => (bytes.as_ref().clone(), ReplyFormat::Wav),
        // A reply that is complete is a whole file.
        Stored::Growing(growing) => match growing.finished() {
            Some(bytes) => (bytes, growing.format()),
            None if growing.format() == asked => return Ok(growing_response(&growing)),
            None => return Err(not_found()),
        },
    };
    if format != asked {
        return Err(not_found());
    }
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type()),
            (header::CACHE_CONTROL, "private, max-age=600"),
        ],
        bytes,
    )
        .into_response())
}

/// A reply still being made, sent as it grows (chunked) to its end.
fn growing_response(growing: &Growing) -> Response {
    let rx = growing.watch();
    let chunks = futures_util::stream::unfold((rx, 0, false), |(mut rx, sent, over)| async move {
        if over {
            return None;
        }
        loop {
            let (chunk, complete) = {
                let s = rx.borrow_and_update();
                (
                    s.bytes.get(sent..).unwrap_or_default().to_vec(),
                    s.result.is_some(),
                )
            };
            if !chunk.is_empty() || complete {
                let sent = sent + chunk.len();
                return Some((Ok::<_, std::io::Error>(chunk), (rx, sent, complete)));
            }
            match tokio::time::timeout(GROWING_STALL, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return None,
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, growing.format().content_type()),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(chunks),
    )
        .into_response()
}
