//! Without tokens the API is open to whoever reaches it, which voxd allows on a loopback
//! address only; a web page the operator opens could still reach it through DNS rebinding
//! (its own name resolved to 127.0.0.1). So a voxd with no token answers only requests whose
//! `Host` is a loopback name (`localhost`, `*.localhost`, `127.x.x.x`, `[::1]`) or one of
//! `server.allowed_hosts`; others get 421 `host_not_allowed`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::error::ApiError;

/// The names a tokenless voxd answers to, besides the loopback ones; None when voxd has a
/// token (every name is answered: the token guards the API).
#[derive(Debug, Clone)]
pub struct AllowedHosts(Option<Vec<String>>);

impl AllowedHosts {
    /// For a voxd with (`open` false) or without tokens, and `server.allowed_hosts`.
    pub fn new(open: bool, allowed: &[String]) -> Self {
        Self(open.then(|| allowed.iter().map(|h| h.to_ascii_lowercase()).collect()))
    }

    /// Whether a request with this `Host` header (None: without one) is answered.
    pub fn allows(&self, host: Option<&str>) -> bool {
        let Some(allowed) = &self.0 else {
            return true;
        };
        let Some(name) = host.map(host_name) else {
            return false;
        };
        is_loopback_name(&name) || allowed.contains(&name)
    }
}

/// `Host`'s name: lowercase, without its port or an IPv6 address's brackets.
fn host_name(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default().to_string();
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name.to_string(),
        _ => host,
    }
    .trim_end_matches('.')
    .to_string()
}

fn is_loopback_name(name: &str) -> bool {
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Middleware: refuses a request whose `Host` a tokenless voxd does not answer to.
pub async fn check(
    State(hosts): State<Arc<AllowedHosts>>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    if !hosts.allows(host) {
        return Err(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
            "voxd has no token and answers only loopback host names or server.allowed_hosts",
        ));
    }
    Ok(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tokenless_voxd_answers_loopback_names_and_the_allowed_ones() {
        let open = AllowedHosts::new(true, &["Voxd.Internal".into()]);
        for host in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.:8080",
            "console.localhost",
            "127.0.0.1:8080",
            "127.3.4.5",
            "[::1]:8080",
            "voxd.internal:8080",
        ] {
            assert!(open.allows(Some(host)), "{host}");
        }
        for host in [
            "attacker.example",
            "attacker.example:8080",
            "localhost.attacker.example",
            "127.0.0.1.attacker.example",
            "10.0.0.5:8080",
            "[2001:db8::1]:8080",
            "",
        ] {
            assert!(!open.allows(Some(host)), "{host}");
        }
        assert!(!open.allows(None), "no Host at all");
        let guarded = AllowedHosts::new(false, &[]);
        assert!(guarded.allows(Some("attacker.example")) && guarded.allows(None));
    }
}
