//! Bearer-token check for the API endpoints (not `/health`, not `/audio/…`).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::error::ApiError;

/// Middleware: rejects requests without `Authorization: Bearer <token>` when a token is set.
pub async fn require_token(
    State(token): State<Arc<str>>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    check(&token, bearer(req.headers()))?;
    Ok(next.run(req).await)
}

/// The token of an `Authorization: Bearer …` header, if there is one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Compares a presented token with `expected` (in constant time); no token configured
/// means no check.
pub fn check(expected: &str, given: Option<&str>) -> Result<(), ApiError> {
    if expected.is_empty() {
        return Ok(());
    }
    match given.map(str::trim) {
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing Authorization: Bearer token",
        )),
        Some(t) if constant_time_eq(t.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "wrong token",
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn constant_time_eq_compares() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"ab", b"abc"));
    }
}
