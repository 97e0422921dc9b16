//! `POST /voximplant/events`: call lifecycle reported by the scenario (a new call gets the
//! greeting to play; an answering machine ends it as `voicemail`), and the keys a caller
//! presses (`ToneReceived`: a mapped key's action, or words for the next reply);
//! `GET /voximplant/calls/{call_id}`: a live call's conversation so far.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::Instrument;

use super::RecordingContext;
use crate::audio::wav;
use crate::calls::{CallId, CallRecorder};
use crate::config::KeyAction;
use crate::conversation::reply::{ReplyEvent, ReplyInput, ReplyRequest};
use crate::http::error::ApiError;
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
    state: State<Arc<RecordingContext>>,
    body: Result<Json<EventRequest>, JsonRejection>,
) -> Response {
    let span = match &body {
        Ok(Json(req)) if CallId::parse(&req.call_id).is_ok() => {
            tracing::info_span!("call", call_id = %req.call_id, transport = req.mode.transport().as_str())
        }
        _ => tracing::Span::none(),
    };
    async move { event(state, body).await.into_response() }
        .instrument(span)
        .await
}

async fn event(
    State(state): State<Arc<RecordingContext>>,
    body: Result<Json<EventRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(req) = body?;
    let id = CallId::parse(&req.call_id)?;
    let log = state.calls.log();
    let mut greeting = None;
    match req.event.as_str() {
        "Connected" => {
            let new = state.calls.find(&id).is_none();
            if new {
                state.drain.admit_new_call()?;
            }
            let call = state
                .calls
                .admit(&id, req.mode.transport(), false)
                .map_err(|refused| {
                    ApiError::refused(refused, state.retry_after_secs, &state.operator_phone)
                })?;
            log.record("the call start", |h| {
                h.add_event(
                    &req.call_id,
                    &req.event,
                    &Value::Object(req.details.clone()),
                )
            });
            if req.mode == Mode::Recording {
                greeting = greet(&state, new.then_some(&*call)).await?;
            }
        }
        "ToneReceived" => {
            let action = keys(&state, &id, &req)?;
            let mut body = json!({"call_id": req.call_id, "event": req.event, "action": action});
            if action == "transfer" {
                body["transfer_to"] = json!(state.operator_phone);
            }
            return Ok(Json(body));
        }
        "Disconnected" | "Failed" | "Voicemail" => {
            let live = state.calls.end(&id, &req.event.to_lowercase());
            // The stream may have ended the live call already; the history still takes the
            // scenario's word on how it ended.
            let mut stored = false;
            log.record("the call end", |h| {
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
        "Transferred" | "TransferFailed" => log.record("a transfer event", |h| {
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
                     Voicemail, Transferred, TransferFailed, ToneReceived"
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

/// A key the caller pressed (`digit`) on a live call: what the scenario does next
/// (`"transfer"`, `"hangup"` for a key mapped in `dtmf.actions`; else `"continue"`, and the
/// next reply reads that it was pressed).
fn keys(
    state: &RecordingContext,
    id: &CallId,
    req: &EventRequest,
) -> Result<&'static str, ApiError> {
    let digit = req
        .details
        .get("digit")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(key) = crate::conversation::keypad::key(digit) else {
        let digit: String = digit.chars().take(20).collect();
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_key",
            format!("digit {digit:?} is not a key (0-9, *, #, A-D)"),
        ));
    };
    let Some(call) = state.calls.find(id) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_call",
            format!("no live call with call_id {:?}", req.call_id),
        ));
    };
    tracing::info!(%key, "key pressed");
    state.calls.log().record("a key", |h| {
        h.add_event(&req.call_id, &req.event, &json!({"digit": key.to_string()}))
    });
    Ok(match state.key_actions.get(&key) {
        Some(KeyAction::Operator) => "transfer",
        Some(KeyAction::Hangup) => "hangup",
        None => {
            let language = call.language();
            call.keys_pressed(
                &state
                    .assistant
                    .keypad_text(language.as_deref(), &key.to_string()),
            );
            "continue"
        }
    })
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
        "Voicemail" => ("ended", "voicemail".to_string()),
        _ => ("ended", field("reason")),
    };
    match outcome.trim() {
        "" => (status, event.to_lowercase()),
        outcome => (status, outcome.to_string()),
    }
}

/// The configured greeting (`conversation.greeting`) as text and its audio URL, voiced once
/// through the reply pipeline and stored once for every call; for a new call (`new_call`)
/// also kept in its memory and its stored turns. None when no greeting is configured.
async fn greet(
    ctx: &RecordingContext,
    new_call: Option<&CallRecorder>,
) -> Result<Option<(String, String)>, ApiError> {
    let text = ctx.greeting.clone();
    if text.is_empty() {
        return Ok(None);
    }
    let id = ctx
        .greeting_audio
        .get_or_try_init(|| async {
            let request = ReplyRequest {
                memory: Vec::new(),
                input: ReplyInput::Fixed(text.clone()),
                rate: ctx.reply_rate,
                live: false,
                due: None,
            };
            let mut audio = None;
            ctx.assistant
                .reply(request, &mut |ev| {
                    if let ReplyEvent::Speech { audio: a, .. } = ev {
                        audio = Some(a);
                    }
                })
                .await
                .map_err(|e| ApiError::internal(format!("greeting synthesis failed: {e:#}")))?;
            let pcm = audio.ok_or_else(|| ApiError::internal("the greeting made no audio"))?;
            let wav = wav::encode(&pcm).map_err(|e| ApiError::internal(e.to_string()))?;
            Ok::<_, ApiError>(ctx.audio.put_lasting(wav))
        })
        .await?;
    if let Some(call) = new_call {
        call.answered(None, &text, None, false, None);
    }
    Ok(Some((text, ctx.audio_url(id.clone()))))
}

/// A live call's conversation so far, for scenario authors and operators debugging a call.
pub async fn show(
    State(ctx): State<Arc<RecordingContext>>,
    Path(call_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let live = CallId::parse(&call_id)
        .ok()
        .and_then(|id| ctx.calls.find(&id));
    let call = live.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_call",
            format!("no live call with call_id {call_id:?}"),
        )
    })?;
    Ok(Json(call.snapshot()))
}
