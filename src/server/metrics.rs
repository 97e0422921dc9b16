//! `GET /metrics`: the Prometheus text exposition, behind the API token unless
//! `metrics.require_token` is false.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;

use super::AppState;
use crate::http::auth;
use crate::http::error::ApiError;

pub async fn handle(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    if state.cfg.metrics.require_token {
        state
            .tokens
            .check(auth::Scope::Admin, auth::bearer(&headers))?;
    }
    let text = state.metrics().render(
        &state.calls.active_by_transport(),
        state.calls.capacity(),
        state.drain.is_draining(),
        &state.engine_load(),
    );
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}
