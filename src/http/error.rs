//! The API's error type: an HTTP status plus `{"error":{"code","message"}}` (and `Retry-After`
//! when it carries `retry_after_secs`); every error answered is counted in the metrics by
//! its code, and logged (clients' mistakes within a [`super::warn_budget`]).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::metrics::Metrics;

/// An error answered to an API client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// More fields of the `error` object, beside `code` and `message`.
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Default::default(),
        }
    }

    /// Adds a field to the `error` object.
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// Why a call was not opened: [`Self::at_capacity`], or 409 `call_ended` for a call
    /// that has ended (its id is not opened again).
    pub fn refused(
        refused: crate::calls::Refused,
        retry_after_secs: u32,
        transfer_to: &str,
    ) -> Self {
        match refused {
            crate::calls::Refused::Full(full) => {
                Self::at_capacity(full, retry_after_secs, transfer_to)
            }
            ended @ crate::calls::Refused::Ended(_) => Self::new(
                StatusCode::CONFLICT,
                "call_ended",
                format!("{ended}: a call id is not used again"),
            ),
        }
    }

    /// 503 `at_capacity`: a new call beyond `calls.max_live`; `Retry-After` says when to
    /// try again, `transfer_to` (when set) whom the scenario may hand the caller to.
    pub fn at_capacity(
        full: crate::calls::AtCapacity,
        retry_after_secs: u32,
        transfer_to: &str,
    ) -> Self {
        let e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "at_capacity",
            full.to_string(),
        )
        .with("live_calls", full.live)
        .with("capacity", full.capacity)
        .with("retry_after_secs", retry_after_secs);
        match transfer_to {
            "" => e,
            to => e.with("transfer_to", to),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.code,
            self.status.as_u16(),
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // voxd's own failures are errors; a refusal (full, draining) or a recording store's
        // failure is what clients cause or see: rationed warnings, which a flood cannot
        // turn into a flood of lines.
        let theirs = matches!(self.code, "at_capacity" | "draining" | "download_failed");
        if self.status.is_server_error() && !theirs {
            tracing::error!(code = self.code, "{}", self.message);
        } else {
            super::warn_budget::warn(self.code, &self.message);
        }
        let retry = self
            .details
            .get("retry_after_secs")
            .and_then(serde_json::Value::as_u64);
        let mut error = self.details;
        error.insert("code".into(), json!(self.code));
        error.insert("message".into(), json!(self.message));
        let body = json!({ "error": error });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = retry {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response.extensions_mut().insert(ErrorCode(self.code));
        response
    }
}

/// The code of an error response, left for [`count`] to see.
#[derive(Clone, Copy)]
struct ErrorCode(&'static str);

/// Middleware: counts each error response in `voxd_errors_total` by its code.
pub async fn count(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    if let Some(ErrorCode(code)) = response.extensions().get::<ErrorCode>() {
        metrics.error(code);
    }
    response
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        use axum::extract::rejection::JsonRejection as J;
        let code = match r {
            J::JsonDataError(_) => "invalid_request",
            J::JsonSyntaxError(_) => "invalid_json",
            J::MissingJsonContentType(_) => "unsupported_media_type",
            _ => "invalid_json",
        };
        let status = match code {
            "invalid_request" => StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported_media_type" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, code, r.body_text())
    }
}

impl From<crate::calls::InvalidCallId> for ApiError {
    fn from(e: crate::calls::InvalidCallId) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            e.to_string(),
        )
    }
}
