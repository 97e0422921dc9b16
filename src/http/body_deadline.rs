//! A request's body must arrive in time and within bounds, as its head must: a client that
//! trickles a body, or promises one and sends nothing, is answered 408 `body_timeout` after
//! `server.header_timeout_secs` instead of holding its connection and a handler; a body over
//! [`MAX_BODY`] gets 413 `body_too_large` (at once when its `Content-Length` says so).
//! Requests without a body pass untouched (the media stream's upgrade among them). It runs
//! after the token check: a stranger's body is never read.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::error::ApiError;

/// The largest request body read (axum's own default limit for JSON).
pub const MAX_BODY: usize = 2 * 1024 * 1024;

/// How long a body may take to arrive.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub Duration);

/// Middleware: reads a request's whole body within the deadline, then hands it on.
pub async fn read_in_time(
    State(deadline): State<Arc<BodyDeadline>>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let headers = req.headers();
    if !headers.contains_key(header::CONTENT_LENGTH)
        && !headers.contains_key(header::TRANSFER_ENCODING)
    {
        return Ok(next.run(req).await);
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(deadline.0, axum::body::to_bytes(body, MAX_BODY)).await;
    let bytes = match read {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return Err(too_large()),
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the request body did not arrive within {} s",
                    deadline.0.as_secs()
                ),
            ))
        }
    };
    Ok(next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await)
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body is over {MAX_BODY} bytes, or broke off"),
    )
}
