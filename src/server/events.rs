//! `POST /voximplant/events`: call lifecycle reported by the scenario (a new call gets the
//! greeting to play); `GET /voximplant/calls/{call_id}`: a live call's conversation so far.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::Instrument;

use super::error::ApiError;
use super::process_audio::check_call_id;
use super::AppState;
use crate::audio::{resample, wav};
use crate::calls::CallSession;
use crate::engines::llm::{ChatMessage, Role};
use crate::metrics::Transport;

#[derive(Debug, Deserialize)]
pub struct EventRequest {
    call_id: String,
    event: String,
    #[serde(default)]
    mode: Mode,
    /// Whatever else the scenario reports (reason, duration, code…), kept in the history.
    #[serde(flatten)]
    details: serde_json::Map<String, Value>,
}

/// How the scenario talks to voxd: a recording-mode call gets its greeting from the
/// `Connected` answer; a media-stream call is greeted on the stream.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Mode {
    #[default]
    Recording,
    Stream,
}

impl Mode {
    fn transport(&self) -> Transport {
        match self {
            Mode::Recording => Transport::Recording,
            Mode::Stream => Transport::Stream,
        }
    }
}

/// Handles the event in the call's span (its logs carry the call id).
pub async fn handle(
    state: State<Arc<AppState>>,
    body: Result<Json<EventRequest>, JsonRejection>,
) -> Response {
    let span = match &body {
        Ok(Json(req)) if check_call_id(&req.call_id).is_ok() => {
            tracing::info_span!("call", call_id = %req.call_id, transport = req.mode.transport().as_str())
        }
        _ => tracing::Span::none(),
    };
    async move { event(state, body).await.into_response() }
        .instrument(span)
        .await
}

async fn event(
    State(state): State<Arc<AppState>>,
    body: Result<Json<EventRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(req) = body?;
    check_call_id(&req.call_id)?;
    let mut greeting = None;
    match req.event.as_str() {
        "Connected" => {
            let new = state.calls.find(&req.call_id).is_none();
            if new {
                state.drain.admit_new_call()?;
            }
            let session = state.open_call(&req.call_id, req.mode.transport());
            state.record("the call start", |h| {
                h.add_event(
                    &req.call_id,
                    &req.event,
                    &Value::Object(req.details.clone()),
                )
            });
            if req.mode == Mode::Recording {
                let new_call = new.then_some(req.call_id.as_str());
                greeting = greet(&state, new_call, &mut *session.lock().await).await?;
            }
        }
        "Disconnected" | "Failed" => {
            let live = state.calls.end(&req.call_id, &req.event.to_lowercase());
            // The stream may have ended the live call already; the history still takes the
            // scenario's word on how it ended.
            let mut stored = false;
            state.record("the call end", |h| {
                stored = h.exists(&req.call_id)?;
                if stored {
                    h.add_event(
                        &req.call_id,
                        &req.event,
                        &Value::Object(req.details.clone()),
                    )?;
                    let (status, outcome) = end_outcome(&req.event, &req.details);
                    h.call_ended(&req.call_id, status, &outcome)?;
                }
                Ok(())
            });
            if !live && !stored {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "unknown_call",
                    format!("no live call with call_id {:?}", req.call_id),
                ));
            }
        }
        // How a transfer to the operator went (the scenario dials after voxd's handoff).
        "Transferred" | "TransferFailed" => state.record("a transfer event", |h| {
            if h.exists(&req.call_id)? {
                h.add_event(
                    &req.call_id,
                    &req.event,
                    &Value::Object(req.details.clone()),
                )?;
            }
            Ok(())
        }),
        other => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_event",
                format!(
                    "event {other:?} is not one of Connected, Disconnected, Failed, \
                     Transferred, TransferFailed"
                ),
            ))
        }
    }
    let mut body =
        json!({"call_id": req.call_id, "event": req.event, "active_calls": state.calls.active()});
    if let Some((text, url)) = greeting {
        body["greeting_text"] = json!(text);
        body["greeting_audio_url"] = json!(url);
    }
    Ok(Json(body))
}

/// The history's status and outcome for a `Disconnected` or `Failed` event: the reason the
/// scenario gave (and the SIP code of a failure).
fn end_outcome(event: &str, details: &serde_json::Map<String, Value>) -> (&'static str, String) {
    let field = |k: &str| match details.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let (status, outcome) = match event {
        "Failed" => ("failed", format!("{} {}", field("code"), field("reason"))),
        _ => ("ended", field("reason")),
    };
    match outcome.trim() {
        "" => (status, event.to_lowercase()),
        outcome => (status, outcome.to_string()),
    }
}

/// The configured greeting (`stream.greeting`) as text and a fresh audio URL; for a new call
/// (`new_call` names it) also added to its conversation and its stored turns. None when no
/// greeting is configured.
async fn greet(
    state: &Arc<AppState>,
    new_call: Option<&str>,
    session: &mut CallSession,
) -> Result<Option<(String, String)>, ApiError> {
    let text = state.cfg.stream.greeting.clone();
    if text.is_empty() {
        return Ok(None);
    }
    let wav = state
        .greeting_wav
        .get_or_try_init(|| async {
            let engines = state.engines.clone();
            let (t, rate) = (text.clone(), state.cfg.tts.reply_sample_rate);
            let pcm = tokio::task::spawn_blocking(move || {
                let pcm = engines.tts.synthesize(&t)?;
                if rate > 0 {
                    return resample::to_rate(pcm, rate);
                }
                Ok(pcm)
            })
            .await
            .map_err(|e| ApiError::internal(format!("greeting task failed: {e}")))?
            .map_err(|e| ApiError::internal(format!("greeting synthesis failed: {e:#}")))?;
            wav::encode(&pcm).map_err(|e| ApiError::internal(e.to_string()))
        })
        .await?;
    if let Some(call_id) = new_call {
        session.history.push(ChatMessage {
            role: Role::Assistant,
            content: text.clone(),
        });
        state.record("the greeting", |h| {
            h.add_turn(call_id, "assistant", &text, None, false)
        });
    }
    let id = state.audio.put(wav.clone());
    Ok(Some((text, format!("{}/audio/{id}.wav", state.public_url))))
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
