//! Bearer tokens for the API endpoints (not `/health`, not `/audio/…`), by scope: the
//! scenario token (pasted into VoxEngine scenarios) may use only the Voximplant endpoints,
//! the admin token everything (outbound calls, history, metrics). One `server.token` is
//! both, as before.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::error::ApiError;
use crate::config::Config;

/// What an endpoint needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `/voximplant/*`: what scenarios call.
    Scenario,
    /// Outbound calls, the history, the metrics.
    Admin,
}

/// The configured tokens (empty: none; both empty: the API is open, loopback only).
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    pub scenario: String,
    pub admin: String,
}

impl Tokens {
    /// The scoped tokens, or `server.token` for both.
    pub fn from_config(cfg: &Config) -> Self {
        let s = &cfg.server;
        if s.scenario_token.is_empty() {
            Self {
                scenario: s.token.clone(),
                admin: s.token.clone(),
            }
        } else {
            Self {
                scenario: s.scenario_token.clone(),
                admin: s.admin_token.clone(),
            }
        }
    }

    /// Whether one token opens every scope (the scenario's copy can place calls).
    pub fn unscoped(&self) -> bool {
        !self.admin.is_empty() && self.scenario == self.admin
    }

    /// Checks a presented token (from `Authorization: Bearer …`) for `scope`: 401 without
    /// a token or with an unknown one, 403 with the scenario token on an admin endpoint.
    pub fn check(&self, scope: Scope, given: Option<&str>) -> Result<(), ApiError> {
        let expected: &[&str] = match scope {
            Scope::Scenario => &[&self.scenario, &self.admin],
            Scope::Admin => &[&self.admin],
        };
        if expected.iter().all(|t| t.is_empty()) {
            return Ok(());
        }
        let Some(given) = given.map(str::trim) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing Authorization: Bearer token",
            ));
        };
        let eq = |t: &str| !t.is_empty() && constant_time_eq(given.as_bytes(), t.as_bytes());
        if expected.iter().any(|t| eq(t)) {
            Ok(())
        } else if eq(&self.scenario) {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "the scenario token cannot use this endpoint (it needs the admin token)",
            ))
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "wrong token",
            ))
        }
    }
}

/// Middleware: rejects requests without a token good for the route's scope.
pub async fn require(
    State((tokens, scope)): State<(Arc<Tokens>, Scope)>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    tokens.check(scope, bearer(req.headers()))?;
    Ok(next.run(req).await)
}

/// The token of an `Authorization: Bearer …` header, if there is one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
    }

    #[test]
    fn each_token_opens_its_scope() {
        let code = |r: Result<(), ApiError>| r.err().map(|e| e.status.as_u16());
        let scoped = Tokens {
            scenario: "s".into(),
            admin: "a".into(),
        };
        assert_eq!(code(scoped.check(Scope::Scenario, Some("s"))), None);
        assert_eq!(code(scoped.check(Scope::Scenario, Some("a"))), None);
        assert_eq!(code(scoped.check(Scope::Admin, Some("a"))), None);
        assert_eq!(code(scoped.check(Scope::Admin, Some("s"))), Some(403));
        assert_eq!(code(scoped.check(Scope::Admin, Some("x"))), Some(401));
        assert_eq!(code(scoped.check(Scope::Scenario, None)), Some(401));
        assert!(!scoped.unscoped());
        let one = Tokens {
            scenario: "t".into(),
            admin: "t".into(),
        };
        assert!(one.unscoped());
        assert_eq!(code(one.check(Scope::Admin, Some("t"))), None);
        let open = Tokens::default();
        assert_eq!(code(open.check(Scope::Admin, None)), None);
        assert!(!open.unscoped());
    }
}
