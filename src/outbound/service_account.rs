//! A Voximplant service account: its key file (JSON with `account_id`, `key_id` and the RSA
//! `private_key` in PEM) and the short-lived RS256 JWT that signs a Management API request
//! (header `kid` = key id; claims `iss` = account id, `iat`, `exp`).

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde::Deserialize;
use serde_json::{json, Value};

/// How long a token is valid, in seconds (Voximplant allows up to an hour).
const TOKEN_SECS: i64 = 60;
/// `iat` is set this far in the past, for servers whose clock runs a little behind ours.
const CLOCK_SKEW_SECS: i64 = 5;

/// The key file's fields voxd uses (it has others, such as `account_email`).
#[derive(Deserialize)]
struct KeyFile {
    account_id: Value,
    key_id: String,
    private_key: String,
}

/// A service account's identity and private key.
pub struct ServiceAccount {
    account_id: Value,
    key_id: String,
    key: RsaKeyPair,
    rng: SystemRandom,
}

impl ServiceAccount {
    /// Reads the key file Voximplant gives when a service account's key is generated.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the key file {}", path.display()))?;
        Self::from_json(&text).with_context(|| {
            format!(
                "{} is not a Voximplant service account key file",
                path.display()
            )
        })
    }

    /// Parses the key file's JSON. Errors never include the key.
    pub fn from_json(text: &str) -> Result<Self> {
        let file: KeyFile = serde_json::from_str(text).map_err(|e| {
            anyhow!(
                "expected JSON with account_id, key_id and private_key (line {}, column {}: \
                 {})",
                e.line(),
                e.column(),
                match e.classify() {
                    serde_json::error::Category::Data => "a field is missing or of the wrong type",
                    _ => "not valid JSON",
                }
            )
        })?;
        if !(file.account_id.is_u64() || file.account_id.is_string()) {
            bail!("account_id must be a number");
        }
        if file.key_id.is_empty() {
            bail!("key_id is empty");
        }
        Ok(Self {
            account_id: file.account_id,
            key_id: file.key_id,
            key: parse_private_key(&file.private_key)?,
            rng: SystemRandom::new(),
        })
    }

    /// A signed JWT valid from `now` (Unix seconds) for [`TOKEN_SECS`].
    pub fn token(&self, now: i64) -> Result<String> {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.key_id});
        let claims = json!({
            "iss": self.account_id,
            "iat": now - CLOCK_SKEW_SECS,
            "exp": now + TOKEN_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &self.rng,
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| anyhow!("RSA signing failed"))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// An RSA private key in PEM: PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`).
fn parse_private_key(pem: &str) -> Result<RsaKeyPair> {
    let mut lines = pem.lines().map(str::trim).filter(|l| !l.is_empty());
    let label = lines
        .next()
        .and_then(|l| l.strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
        .ok_or_else(|| anyhow!("private_key is not a PEM key (no -----BEGIN line)"))?
        .to_string();
    let body: String = lines.take_while(|l| !l.starts_with("-----END ")).collect();
    let der = STANDARD
        .decode(body)
        .map_err(|_| anyhow!("private_key's PEM body is not base64"))?;
    let key = match label.as_str() {
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
        other => bail!("private_key is a {other:?}, not an RSA private key"),
    };
    key.map_err(|e| anyhow!("private_key is not a usable RSA key ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_key_files_are_named_without_echoing_the_key() {
        let err = |text: &str| format!("{:#}", ServiceAccount::from_json(text).err().unwrap());
        assert!(err("{").contains("not valid JSON"));
        assert!(err(r#"{"account_id": 1, "key_id": "k"}"#).contains("field is missing"));
        assert!(
            err(r#"{"account_id": 1, "key_id": "", "private_key": "x"}"#)
                .contains("key_id is empty")
        );
        assert!(
            err(r#"{"account_id": [], "key_id": "k", "private_key": "x"}"#)
                .contains("account_id must be a number")
        );
        assert!(
            err(r#"{"account_id": 1, "key_id": "k", "private_key": "secret-stuff"}"#)
                .contains("no -----BEGIN line")
        );
        let not_rsa = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----";
        let e = err(&json!({"account_id": 1, "key_id": "k", "private_key": not_rsa}).to_string());
        assert!(e.contains("not an RSA private key"), "{e}");
        let garbage = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXN0dWZm\n-----END PRIVATE KEY-----";
        let e = err(&json!({"account_id": 1, "key_id": "k", "private_key": garbage}).to_string());
        assert!(
            e.contains("not a usable RSA key") && !e.contains("c2VjcmV0"),
            "{e}"
        );
    }
}
