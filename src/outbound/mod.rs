//! Outbound calls: the number check (E.164), the custom data `scenarios/outbound.js` starts
//! with, and starting that scenario through Voximplant's Management API
//! ([`management_api`]), signed in with a service account ([`service_account`]) or an API key.

pub mod management_api;
pub mod service_account;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use management_api::{ManagementApi, StartError, Started};

/// The most bytes VoxEngine.customData() holds (Voximplant's limit).
pub const MAX_CUSTOM_DATA_BYTES: usize = 200;

/// Voximplant's Management API, which `POST /calls` uses to start `scenarios/outbound.js`
/// (`[voximplant]`).
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VoximplantConfig {
    pub api_url: String,
    pub rule_id: u64,
    pub credentials: PathBuf,
    pub account_id: u64,
    pub api_key: String,
    pub timeout_secs: f64,
    pub pending_timeout_secs: u64,
    pub max_calls_per_minute: u32,
}

impl Default for VoximplantConfig {
    fn default() -> Self {
        Self {
            api_url: "https://api.voximplant.com/platform_api".into(),
            rule_id: 0,
            credentials: PathBuf::new(),
            account_id: 0,
            api_key: String::new(),
            timeout_secs: 10.0,
            pending_timeout_secs: 900,
            max_calls_per_minute: 30,
        }
    }
}

/// Without the API key: configurations are printed in error messages and logs.
impl std::fmt::Debug for VoximplantConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoximplantConfig")
            .field("api_url", &self.api_url)
            .field("rule_id", &self.rule_id)
            .field("credentials", &self.credentials)
            .field("account_id", &self.account_id)
            .field(
                "api_key",
                &if self.api_key.is_empty() { "" } else { "(set)" },
            )
            .field("timeout_secs", &self.timeout_secs)
            .field("pending_timeout_secs", &self.pending_timeout_secs)
            .field("max_calls_per_minute", &self.max_calls_per_minute)
            .finish()
    }
}

/// Checks an E.164 number: "+", then 8 to 15 digits, the first of them not 0. The error
/// says what is wrong with it.
pub fn check_phone(phone: &str) -> Result<(), String> {
    const EXAMPLE: &str = "E.164, like +79001234567";
    let Some(digits) = phone.strip_prefix('+') else {
        return Err(format!(
            "phone {phone:?} must start with + and the country code ({EXAMPLE})"
        ));
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "phone {phone:?} must be + and digits only, without spaces, dashes or brackets \
             ({EXAMPLE})"
        ));
    }
    if digits.starts_with('0') {
        return Err(format!(
            "phone {phone:?} cannot start with +0: country codes begin with 1 to 9 ({EXAMPLE})"
        ));
    }
    if !(8..=15).contains(&digits.len()) {
        return Err(format!(
            "phone {phone:?} has {} digits; E.164 numbers have 8 to 15 ({EXAMPLE})",
            digits.len()
        ));
    }
    Ok(())
}

/// The custom data `scenarios/outbound.js` reads: compact `{"call_id","phone"}`, at most
/// [`MAX_CUSTOM_DATA_BYTES`].
pub fn custom_data(call_id: &str, phone: &str) -> Result<String, String> {
    let data = serde_json::json!({"call_id": call_id, "phone": phone}).to_string();
    if data.len() > MAX_CUSTOM_DATA_BYTES {
        return Err(format!(
            "the scenario's custom data would be {} bytes; Voximplant takes at most \
             {MAX_CUSTOM_DATA_BYTES}",
            data.len()
        ));
    }
    Ok(data)
}

/// A fresh id for an outbound call.
pub fn new_call_id() -> String {
    format!("out-{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_numbers_pass_and_each_mistake_is_named() {
        for ok in [
            "+79001112233",
            "+12025550123",
            "+44207946095",
            "+123456789012345",
        ] {
            assert_eq!(check_phone(ok), Ok(()), "{ok}");
        }
        let err = |p: &str| check_phone(p).unwrap_err();
        assert!(err("79001112233").contains("must start with +"));
        assert!(err("").contains("must start with +"));
        assert!(err("+7 900 111 22 33").contains("digits only"));
        assert!(err("+7(900)1112233").contains("digits only"));
        assert!(err("+7900111223a").contains("digits only"));
        assert!(err("+079001112233").contains("cannot start with +0"));
        assert!(err("+1234567").contains("has 7 digits"));
        assert!(err("+1234567890123456").contains("has 16 digits"));
        assert!(err("+").contains("has 0 digits"));
        assert!(err("+٣٣٣٣٣٣٣٣٣").contains("digits only"));
    }

    #[test]
    fn custom_data_is_compact_json_within_200_bytes() {
        let id = new_call_id();
        assert!(id.starts_with("out-") && id.len() == 20, "{id}");
        let data = custom_data(&id, "+79001112233").unwrap();
        assert_eq!(
            data,
            format!("{{\"call_id\":\"{id}\",\"phone\":\"+79001112233\"}}")
        );
        let long = "x".repeat(180);
        assert!(custom_data(&long, "+79001112233")
            .unwrap_err()
            .contains("at most 200"));
    }
}
