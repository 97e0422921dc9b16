//! Voximplant's Management API, the one method voxd needs: `StartScenarios`, which runs the
//! routing rule of `scenarios/outbound.js` with voxd's custom data. A form POST to
//! `<api_url>/StartScenarios/`, signed with a service account's JWT (`Authorization: Bearer`)
//! or with `account_id` + `api_key` form fields. Voximplant answers JSON: `{"result": 1,
//! "media_session_access_url", "media_session_access_secure_url", "call_session_history_id"}`
//! or `{"error": {"code", "msg"}}`.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use reqwest::header::{AUTHORIZATION, RETRY_AFTER};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::service_account::ServiceAccount;
use super::VoximplantConfig;

/// Wait suggested after a 429 that names no Retry-After, in seconds.
const DEFAULT_RETRY_AFTER_SECS: u64 = 5;

/// How voxd signs in.
enum Auth {
    ServiceAccount(Box<ServiceAccount>),
    ApiKey { account_id: u64, api_key: String },
}

/// A configured Management API client.
pub struct ManagementApi {
    http: reqwest::Client,
    url: String,
    rule_id: u64,
    auth: Auth,
    timeout_secs: f64,
}

/// What Voximplant says about a started scenario (kept in the call's events).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Started {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_session_access_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_session_access_secure_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_session_history_id: Option<Value>,
}

/// Why a scenario did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("Voximplant refused StartScenarios: {msg} (error {code})")]
    Refused { code: i64, msg: String },
    #[error(
        "Voximplant is rate-limiting StartScenarios (HTTP 429); retry in {retry_after_secs} s"
    )]
    RateLimited { retry_after_secs: u64 },
    #[error(
        "Voximplant's Management API did not answer within {0} s (voximplant.timeout_secs); \
         the call may still start"
    )]
    Timeout(f64),
    #[error("cannot reach Voximplant's Management API: {0}")]
    Unreachable(String),
    #[error("Voximplant's Management API answered HTTP {status} with no result: {body}")]
    BadResponse { status: u16, body: String },
    #[error("cannot sign the Management API request: {0}")]
    Signing(String),
}

#[derive(Deserialize)]
struct ApiError {
    code: i64,
    msg: String,
}

#[derive(Deserialize)]
struct Answer {
    error: Option<ApiError>,
    result: Option<Value>,
    #[serde(flatten)]
    started: Started,
}

/// The message for `POST /calls` while outbound calls are not configured: which keys to set.
pub fn not_configured(cfg: &VoximplantConfig) -> String {
    let mut missing = Vec::new();
    if cfg.rule_id == 0 {
        missing.push("voximplant.rule_id (the routing rule that runs scenarios/outbound.js)");
    }
    if cfg.credentials.as_os_str().is_empty() && (cfg.account_id == 0 || cfg.api_key.is_empty()) {
        missing.push(
            "voximplant.credentials (a service account's key file), or voximplant.account_id \
             and voximplant.api_key",
        );
    }
    format!(
        "outbound calls are not configured: set {} in voxd.toml (or VOXD_VOXIMPLANT_* in the \
         environment) and restart voxd",
        missing.join(" and ")
    )
}

impl ManagementApi {
    /// The client, or None while outbound calls are not configured (see [`not_configured`]).
    /// A configuration that is set but unusable (an unreadable key file, both ways of
    /// signing in at once, a bad URL) is an error.
    pub fn from_config(cfg: &VoximplantConfig) -> Result<Option<Self>> {
        let has_key_file = !cfg.credentials.as_os_str().is_empty();
        let has_api_key = cfg.account_id != 0 || !cfg.api_key.is_empty();
        if has_key_file && has_api_key {
            bail!(
                "voximplant: set either credentials (a service account) or account_id and \
                 api_key, not both"
            );
        }
        let url = cfg.api_url.trim_end_matches('/').to_string();
        let parsed = url::Url::parse(&url)
            .with_context(|| format!("voximplant.api_url {:?} is not a URL", cfg.api_url))?;
        if !["http", "https"].contains(&parsed.scheme()) {
            bail!("voximplant.api_url must be an http(s) URL");
        }
        let auth = if has_key_file {
            Auth::ServiceAccount(Box::new(
                ServiceAccount::load(&cfg.credentials).context("voximplant.credentials")?,
            ))
        } else if cfg.account_id != 0 && !cfg.api_key.is_empty() {
            Auth::ApiKey {
                account_id: cfg.account_id,
                api_key: cfg.api_key.clone(),
            }
        } else {
            return Ok(None);
        };
        if cfg.rule_id == 0 {
            return Ok(None);
        }
        let timeout = Duration::from_secs_f64(cfg.timeout_secs);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot build the Management API client")?;
        Ok(Some(Self {
            http,
            url,
            rule_id: cfg.rule_id,
            auth,
            timeout_secs: cfg.timeout_secs,
        }))
    }

    /// How voxd signs in, for the start-up log (no secrets).
    pub fn describe(&self) -> String {
        let how = match self.auth {
            Auth::ServiceAccount(_) => "a service account",
            Auth::ApiKey { .. } => "an API key",
        };
        format!(
            "rule {} at {}, signed in with {how}",
            self.rule_id, self.url
        )
    }

    /// Runs the rule with `custom_data` (VoxEngine.customData() in the scenario).
    pub async fn start_scenarios(&self, custom_data: &str) -> Result<Started, StartError> {
        let mut form = vec![
            ("rule_id", self.rule_id.to_string()),
            ("script_custom_data", custom_data.to_string()),
        ];
        let mut req = self.http.post(format!("{}/StartScenarios/", self.url));
        match &self.auth {
            Auth::ServiceAccount(account) => {
                let token = account
                    .token(chrono::Utc::now().timestamp())
                    .map_err(|e| StartError::Signing(e.to_string()))?;
                req = req.header(AUTHORIZATION, format!("Bearer {token}"));
            }
            Auth::ApiKey {
                account_id,
                api_key,
            } => {
                form.push(("account_id", account_id.to_string()));
                form.push(("api_key", api_key.clone()));
            }
        }
        let resp = req
            .form(&form)
            .send()
            .await
            .map_err(|e| self.send_error(e))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body = resp.text().await.map_err(|e| self.send_error(e))?;
        let answer = serde_json::from_str::<Answer>(&body).ok();
        let rate_limited = |code: Option<i64>| {
            (status == StatusCode::TOO_MANY_REQUESTS || code == Some(429)).then_some(
                StartError::RateLimited {
                    retry_after_secs: retry_after.unwrap_or(DEFAULT_RETRY_AFTER_SECS),
                },
            )
        };
        match answer {
            Some(Answer { error: Some(e), .. }) => {
                Err(rate_limited(Some(e.code)).unwrap_or(StartError::Refused {
                    code: e.code,
                    msg: e.msg,
                }))
            }
            Some(Answer {
                result: Some(_),
                started,
                ..
            }) if status.is_success() => Ok(started),
            _ => Err(rate_limited(None).unwrap_or(StartError::BadResponse {
                status: status.as_u16(),
                body: body.chars().take(200).collect(),
            })),
        }
    }

    fn send_error(&self, e: reqwest::Error) -> StartError {
        if e.is_timeout() {
            return StartError::Timeout(self.timeout_secs);
        }
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            reason.push_str(": ");
            reason.push_str(&s.to_string());
            source = s.source();
        }
        StartError::Unreachable(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_configured_names_the_missing_keys() {
        let mut cfg = VoximplantConfig::default();
        assert!(ManagementApi::from_config(&cfg).unwrap().is_none());
        let msg = not_configured(&cfg);
        assert!(msg.contains("voximplant.rule_id") && msg.contains("voximplant.credentials"));
        cfg.rule_id = 7;
        let msg = not_configured(&cfg);
        assert!(
            !msg.contains("rule_id") && msg.contains("voximplant.api_key"),
            "{msg}"
        );
        cfg.account_id = 1;
        cfg.api_key = "k".into();
        let api = ManagementApi::from_config(&cfg).unwrap().unwrap();
        assert_eq!(
            api.describe(),
            "rule 7 at https://api.voximplant.com/platform_api, signed in with an API key"
        );
        cfg.credentials = "/nonexistent/key.json".into();
        let err = format!("{:#}", ManagementApi::from_config(&cfg).err().unwrap());
        assert!(err.contains("not both"), "{err}");
        cfg.account_id = 0;
        cfg.api_key.clear();
        let err = format!("{:#}", ManagementApi::from_config(&cfg).err().unwrap());
        assert!(
            err.contains("cannot read the key file /nonexistent/key.json"),
            "{err}"
        );
    }
}
