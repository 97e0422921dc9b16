//! The recording flow's progressive mode (`"progressive": true` in `process_audio`): voxd
//! answers as soon as the caller's words are transcribed, with a link to reply audio that
//! grows while the LLM writes and Piper voices it (the scenario plays it with
//! `progressivePlayback`), and the turn's result (reply text, action, transfer) at
//! `GET /voximplant/replies/{id}` once the reply is complete.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tracing::Instrument;

use super::audio_store::{Growing, Stored};
use super::process_audio::finished;
use super::RecordingContext;
use crate::audio::{wav, Pcm};
use crate::calls::CallRecorder;
use crate::conversation::recording_turn::{self, Delivery};
use crate::conversation::reply::{ms, ReplyEvent, Timings};
use crate::http::error::ApiError;

/// The answer to a progressive turn, sent once the caller's words are known.
#[derive(Debug, Serialize)]
pub struct Started {
    call_id: String,
    user_text: String,
    language: String,
    /// The reply's audio, growing as it is made: play it with `progressivePlayback`.
    reply_audio_url: String,
    /// `GET` it (with the token) once the audio has played: the turn's result.
    reply_url: String,
    progressive: bool,
    /// Download, decode and transcription so far; `total`: request → this answer.
    timings_ms: Timings,
}

/// What the reply's first steps tell the waiting request: the words, or why not.
type Heard = Result<(String, String, f64), String>;

/// Starts the reply to `pcm` on `call` in the background; returns once the caller's words
/// are transcribed.
pub async fn start(
    ctx: Arc<RecordingContext>,
    call: Arc<CallRecorder>,
    pcm: Pcm,
    mut timings: Timings,
    started: Instant,
) -> Result<Started, ApiError> {
    let (id, growing) = ctx.audio.open();
    let (heard_tx, heard_rx) = oneshot::channel::<Heard>();
    let reply_audio_url = ctx.audio_url(id.clone());
    let reply_url = format!("{}/voximplant/replies/{id}", ctx.public_url);
    let task = {
        let (ctx, call, url) = (ctx.clone(), call.clone(), reply_audio_url.clone());
        let timings = timings.clone();
        async move {
            let _turn = call.turn_lock().await;
            make(&ctx, &call, pcm, &growing, heard_tx, timings, url, started).await;
        }
    };
    tokio::spawn(task.in_current_span());
    let (user_text, language, stt) = heard_rx
        .await
        .map_err(|_| ApiError::internal("the turn ended before its words were known"))?
        .map_err(|e| ApiError::internal(format!("turn failed: {e}")))?;
    timings.stt = stt;
    timings.total = ms(started);
    Ok(Started {
        call_id: call.id().to_string(),
        user_text,
        language,
        reply_audio_url,
        reply_url,
        progressive: true,
        timings_ms: timings,
    })
}

/// Writes the reply into `growing` piece by piece, then records the turn and leaves its
/// result there.
#[allow(clippy::too_many_arguments)]
async fn make(
    ctx: &RecordingContext,
    call: &CallRecorder,
    pcm: Pcm,
    growing: &Growing,
    heard_tx: oneshot::Sender<Heard>,
    mut timings: Timings,
    reply_audio_url: String,
    started: Instant,
) {
    let t = Instant::now();
    let mut heard_tx = Some(heard_tx);
    let mut pieces = 0;
    let pause_ms = ctx.assistant.settings.sentence_pause_ms;
    let mut watch = |ev: &ReplyEvent| match ev {
        ReplyEvent::Heard { text, language, .. } => {
            if let Some(tx) = heard_tx.take() {
                let _ = tx.send(Ok((text.clone(), language.clone(), ms(t))));
            }
        }
        ReplyEvent::Speech { audio, .. } => {
            if pieces == 0 {
                growing.append(&wav::stream_header(audio.rate));
            } else {
                let pause = crate::audio::pause_samples(audio.rate, pause_ms);
                growing.append(&vec![0; pause * 2]);
            }
            pieces += 1;
            growing.append(&wav::samples_le(audio));
        }
        _ => {}
    };
    let delivery = Delivery {
        rate: ctx.reply_rate,
        live: true,
        watch: &mut watch,
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
    .await;
    let result = match outcome {
        Ok(outcome) => {
            timings.total = ms(started);
            let turn = finished(ctx, call, outcome, reply_audio_url, timings);
            serde_json::to_value(turn).unwrap_or_default()
        }
        Err(e) => {
            tracing::error!("progressive turn failed: {e:#}");
            if let Some(tx) = heard_tx.take() {
                let _ = tx.send(Err(format!("{e:#}")));
            }
            serde_json::json!({"error": {"code": "turn_failed", "message": format!("{e:#}")}})
        }
    };
    growing.complete(|bytes| wav::finish_stream(bytes), result);
}

/// How long `GET /voximplant/replies/{id}` may wait for the reply to complete.
#[derive(Debug, Deserialize)]
pub struct Wait {
    /// Seconds (default 10, at most 30; 0: answer at once).
    wait_secs: Option<f64>,
}

/// `GET /voximplant/replies/{id}`: the turn's result (`done: true` and the fields a whole
/// turn answers with), or `done: false` if it is still being made after the wait.
pub async fn show(
    State(ctx): State<Arc<RecordingContext>>,
    Path(id): Path<String>,
    Query(wait): Query<Wait>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let secs = wait.wait_secs.unwrap_or(10.0);
    if !secs.is_finite() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "wait_secs must be a number of seconds (0 to 30)",
        ));
    }
    let Some(Stored::Growing(growing)) = ctx.audio.get(&id) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "reply_not_found",
            "no such progressive reply (expired?)",
        ));
    };
    let secs = secs.clamp(0.0, 30.0);
    let mut rx = growing.watch();
    let waited = tokio::time::timeout(
        Duration::from_secs_f64(secs),
        rx.wait_for(|s| s.result.is_some()),
    )
    .await;
    let result = match waited {
        Ok(Ok(state)) => state.result.clone(),
        _ => None,
    };
    Ok(Json(match result {
        Some(mut result) => {
            result["done"] = true.into();
            result
        }
        None => serde_json::json!({"done": false}),
    }))
}
