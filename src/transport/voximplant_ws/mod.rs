//! Voximplant's media stream (`GET /voximplant/stream`): the WebSocket upgrade (token,
//! call id, draining), the wire [`protocol`], caller audio put in chunk order
//! ([`sequencer`]) and one [`session`] per socket that carries a [`Conversation`].
//!
//! [`Conversation`]: crate::conversation::Conversation

pub mod protocol;
mod sequencer;
mod session;

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;
use tracing::Instrument;

use crate::audio::Encoding;
use crate::calls::{CallId, Calls};
use crate::conversation::{Assistant, Settings};
use crate::http::auth;
use crate::http::drain::Drain;
use crate::http::error::ApiError;
use crate::server::connections::ConnectionSlot;

/// What a media-stream call needs from the daemon, and nothing more.
pub struct StreamContext {
    pub assistant: Arc<Assistant>,
    pub settings: Settings,
    pub calls: Arc<Calls>,
    pub drain: Drain,
    /// The API's tokens (the stream needs the scenario scope).
    pub tokens: Arc<crate::http::auth::Tokens>,
    /// What voxd speaks in (None: the caller's encoding).
    pub output: Option<Encoding>,
    /// The tag on voxd's outgoing frames (None: untagged, Voximplant's default stream). It
    /// must match the tag the scenario gives `ws.sendMediaTo(call, {tag})`.
    pub tag: Option<String>,
    /// The operator a transfer hands the caller to.
    pub operator_phone: String,
    /// Largest frame accepted from the scenario.
    pub max_frame_bytes: usize,
    /// How long a stream may go without `start`, and without any frame.
    pub start_timeout: std::time::Duration,
    pub idle_timeout: std::time::Duration,
    /// What a refusal at capacity asks the scenario to wait, in seconds.
    pub retry_after_secs: u32,
    /// The console's test-call tickets (a stream may present one instead of a token).
    pub tickets: Arc<crate::console::test_call::Tickets>,
}

#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    call_id: Option<String>,
    token: Option<String>,
    /// A console test call's one-time ticket (instead of a token; it names the call).
    ticket: Option<String>,
}

/// `GET /voximplant/stream`: checks the token (header or `token` query) and the call id,
/// refuses new calls while voxd drains, then upgrades; the socket holds its connection's
/// place ([`ConnectionSlot`]) while it lives.
pub async fn handle(
    State(ctx): State<Arc<StreamContext>>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
    slot: Option<Extension<ConnectionSlot>>,
    ws: axum::extract::WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let (call_id, test) = match query.ticket.as_deref() {
        Some(ticket) => {
            let id = ctx.tickets.redeem(ticket).ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "unknown, used or expired test-call ticket",
                )
            })?;
            (Some(id), true)
        }
        None => {
            let given = auth::bearer(&headers).or(query.token.as_deref());
            ctx.tokens.check(auth::Scope::Scenario, given)?;
            let id = query.call_id.as_deref().map(CallId::parse).transpose()?;
            (id, false)
        }
    };
    ctx.drain.admit_new_call()?;
    let busy = ctx.drain.busy();
    let span = tracing::info_span!(
        "call",
        call_id = tracing::field::Empty,
        transport = "stream"
    );
    if let Some(id) = &call_id {
        span.record("call_id", id.as_str());
    }
    let max = ctx.max_frame_bytes;
    // VoxEngine's createWebSocket offers the subprotocol "chat" unless the scenario names
    // another; a client that offers one and gets none back fails the handshake.
    Ok(ws
        .protocols(["chat"])
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| {
            async move {
                // The socket keeps its connection's place until it closes.
                let _slot = slot;
                session::run(socket, ctx, call_id, test, busy).await
            }
            .instrument(span)
        }))
}
