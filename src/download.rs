//! Fetching recordings from URLs the API is handed, safely: http(s) only, no private,
//! loopback, link-local or metadata addresses (unless allowed), every redirect re-checked,
//! the connection pinned to the checked address, bounded size and time.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use url::Url;

/// Where and how much voxd may download (`[download]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DownloadConfig {
    pub max_bytes: u64,
    pub timeout_secs: f64,
    /// How long a recording the store answers 404 or 403 for is asked for again: right
    /// after `RecordStopped` it may not be published yet (at most half of `timeout_secs`).
    pub not_ready_retry_secs: f64,
    pub max_redirects: u32,
    pub allow_private: bool,
    pub allowed_networks: Vec<String>,
}

impl Default for DownloadConfig {
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            timeout_secs: 15.0,
            not_ready_retry_secs: 5.0,
            max_redirects: 5,
            allow_private: false,
            allowed_networks: Vec::new(),
        }
    }
}

/// Why a download failed; each maps to a distinct API error.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("invalid URL: {0}")]
    BadUrl(String),
    #[error("refused address: {0}")]
    Refused(String),
    #[error("the recording server answered HTTP {0}")]
    Status(u16),
    #[error("the recording is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the download did not finish within {0:.1} s")]
    Timeout(f64),
    #[error("too many redirects (more than {0})")]
    TooManyRedirects(u32),
    #[error("cannot fetch the recording: {0}")]
    Network(String),
}

/// First wait before asking again for a recording that is not there yet; it doubles.
const NOT_READY_FIRST_WAIT: Duration = Duration::from_millis(250);
/// Longest wait between two asks.
const NOT_READY_MAX_WAIT: Duration = Duration::from_secs(1);

/// Downloads `url` under the limits of `cfg`. A 404 or 403 is asked again with backoff for
/// `not_ready_retry_secs` (a fresh recording may not be downloadable yet), then reported.
pub async fn fetch(url: &str, cfg: &DownloadConfig) -> Result<Vec<u8>, DownloadError> {
    let limit = Duration::from_secs_f64(cfg.timeout_secs);
    let started = Instant::now();
    let deadline = started + limit;
    let give_up =
        started + Duration::from_secs_f64(cfg.not_ready_retry_secs.max(0.0)).min(limit / 2);
    let attempts = async {
        let mut wait = NOT_READY_FIRST_WAIT;
        loop {
            match fetch_inner(url, cfg, deadline).await {
                Err(DownloadError::Status(status @ (403 | 404)))
                    if Instant::now() + wait <= give_up =>
                {
                    tracing::debug!(
                        status,
                        ?wait,
                        "the recording is not there yet; asking again"
                    );
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(NOT_READY_MAX_WAIT);
                }
                result => return result,
            }
        }
    };
    match tokio::time::timeout(limit, attempts).await {
        Ok(r) => r,
        Err(_) => Err(DownloadError::Timeout(cfg.timeout_secs)),
    }
}

async fn fetch_inner(
    url: &str,
    cfg: &DownloadConfig,
    deadline: Instant,
) -> Result<Vec<u8>, DownloadError> {
    let mut url = Url::parse(url).map_err(|e| DownloadError::BadUrl(format!("{url:?}: {e}")))?;
    for _ in 0..=cfg.max_redirects {
        let addr = resolve_checked(&url, cfg).await?;
        let host = url.host_str().unwrap_or_default().to_string();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&host, addr)
            .connect_timeout(
                Duration::from_secs(6).min(deadline.saturating_duration_since(Instant::now())),
            )
            .user_agent(concat!("voxd/", env!("CARGO_PKG_VERSION")))
            // A proxy from HTTP(S)_PROXY would connect wherever it likes, not to the address
            // checked above.
            .no_proxy()
            .build()
            .map_err(|e| DownloadError::Network(e.without_url().to_string()))?;
        let resp = client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| DownloadError::Network(e.without_url().to_string()))?;
        let status = resp.status();
        if status.is_redirection() {
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    DownloadError::Network(format!("HTTP {status} without a Location"))
                })?;
            url = url
                .join(location)
                .map_err(|e| DownloadError::BadUrl(format!("redirect to {location:?}: {e}")))?;
            continue;
        }
        if !status.is_success() {
            return Err(DownloadError::Status(status.as_u16()));
        }
        if resp.content_length().is_some_and(|n| n > cfg.max_bytes) {
            return Err(DownloadError::TooLarge(cfg.max_bytes));
        }
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| DownloadError::Network(e.without_url().to_string()))?;
            if body.len() as u64 + chunk.len() as u64 > cfg.max_bytes {
                return Err(DownloadError::TooLarge(cfg.max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        return Ok(body);
    }
    Err(DownloadError::TooManyRedirects(cfg.max_redirects))
}

/// Resolves the URL's host and returns an address that passes the policy.
async fn resolve_checked(url: &Url, cfg: &DownloadConfig) -> Result<SocketAddr, DownloadError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(DownloadError::BadUrl(format!(
            "scheme {:?} is not http or https",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DownloadError::BadUrl(
            "credentials in the URL are not allowed".into(),
        ));
    }
    let host = url
        .host_str()
        .ok_or_else(|| DownloadError::BadUrl("the URL has no host".into()))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| DownloadError::Network(format!("cannot resolve {host}: {e}")))?
            .collect(),
    };
    let first = *addrs
        .first()
        .ok_or_else(|| DownloadError::Network(format!("{host} has no address")))?;
    let allowed: Vec<Network> = cfg
        .allowed_networks
        .iter()
        .filter_map(|n| Network::parse(n).ok())
        .collect();
    let ok = |ip: IpAddr| {
        is_public(ip)
            || allowed.iter().any(|n| n.contains(ip))
            || (cfg.allow_private && is_private_use(ip))
    };
    if let Some(bad) = addrs.iter().find(|a| !ok(a.ip())) {
        let what = if is_private_use(bad.ip()) {
            "a private or loopback address (download.allow_private or allowed_networks admit it)"
        } else {
            "a link-local, metadata, tunnel or reserved address (only download.allowed_networks admits it)"
        };
        return Err(DownloadError::Refused(format!(
            "{host} resolves to {}, {what}",
            bad.ip()
        )));
    }
    Ok(first)
}

/// An address range in CIDR notation ("10.0.0.0/8", "fd00::/8", or a bare address).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Network {
    base: IpAddr,
    prefix: u32,
}

impl Network {
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let (addr, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let base: IpAddr = addr.trim().parse()?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u32>()?,
            None => max,
        };
        anyhow::ensure!(prefix <= max, "prefix /{prefix} is longer than {max} bits");
        Ok(Self { base, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| -> (u128, u32) {
            match ip {
                IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
                IpAddr::V6(v6) => (u128::from(v6), 128),
            }
        };
        let ((net, width), (addr, w2)) = (bits(self.base), bits(ip));
        if width != w2 {
            return false;
        }
        let shift = width - self.prefix;
        shift >= width || (net >> shift) == (addr >> shift)
    }
}

/// Whether an address belongs to a network of one's own: loopback, private (RFC 1918),
/// carrier-grade NAT or unique local IPv6 — what `download.allow_private` admits. Link-local
/// addresses (the cloud metadata service among them), tunnels and reserved ranges are not.
pub fn is_private_use(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback() || v4.is_private() || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_private_use(IpAddr::V4(v4)),
            None => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
        },
    }
}

/// Whether an address is a public unicast address: neither one's own network
/// ([`is_private_use`]) nor [`is_reserved`].
pub fn is_public(ip: IpAddr) -> bool {
    !is_private_use(ip) && !is_reserved(ip)
}

/// Addresses no download may reach unless `download.allowed_networks` names them:
/// link-local (the cloud metadata service among them), unspecified, broadcast, multicast,
/// documentation, benchmarking and reserved ranges, 6to4 and Teredo tunnels (they carry any
/// IPv4 address), site-local, NAT64 and IPv4-compatible IPv6.
fn is_reserved(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (18..20).contains(&o[1]))
                || o[0] >= 240
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_reserved(IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                v6.is_unspecified()
                    || v6.is_multicast()
                    || (s[0] & 0xffc0) == 0xfe80
                    || (s[0] & 0xffc0) == 0xfec0
                    || s[0] == 0x2002
                    || (s[0] == 0x2001 && s[1] == 0)
                    || (s[0] == 0x2001 && s[1] == 0x0db8)
                    || (s[0] == 0x64 && s[1] == 0xff9b)
                    || s[..6].iter().all(|&w| w == 0)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_policy() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!is_public(bad.parse().unwrap()), "{bad} should be refused");
        }
        for good in ["8.8.8.8", "93.184.216.34", "2606:4700::1111"] {
            assert!(is_public(good.parse().unwrap()), "{good} should be allowed");
        }
        // Tunnels and old forms that can carry any IPv4 address: never public.
        for tunnel in [
            "2002:7f00:1::1",
            "2001:0:4136:e378::1",
            "fec0::1",
            "::127.0.0.1",
        ] {
            assert!(
                !is_public(tunnel.parse().unwrap()),
                "{tunnel} should be refused"
            );
        }
        // What allow_private admits: one's own networks, not link-local or metadata.
        for own in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
        ] {
            assert!(is_private_use(own.parse().unwrap()), "{own}");
        }
        for never in [
            "169.254.169.254",
            "fe80::1",
            "0.0.0.0",
            "224.0.0.1",
            "2002:a9fe:a9fe::1",
            "fec0::1",
        ] {
            assert!(!is_private_use(never.parse().unwrap()), "{never}");
        }
    }

    #[test]
    fn networks() {
        let n = Network::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.200.1.1".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(!n.contains("::1".parse().unwrap()));
        assert!(Network::parse("127.0.0.2")
            .unwrap()
            .contains("127.0.0.2".parse().unwrap()));
        assert!(!Network::parse("127.0.0.2")
            .unwrap()
            .contains("127.0.0.1".parse().unwrap()));
        assert!(Network::parse("0.0.0.0/0")
            .unwrap()
            .contains("1.2.3.4".parse().unwrap()));
        assert!(Network::parse("fd00::/8")
            .unwrap()
            .contains("fd12::1".parse().unwrap()));
        assert!(Network::parse("10.0.0.0/33").is_err());
        assert!(Network::parse("nonsense").is_err());
    }

    #[tokio::test]
    async fn refuses_bad_schemes_and_private_hosts() {
        let cfg = DownloadConfig::default();
        for (url, want) in [
            ("file:///etc/passwd", "scheme"),
            ("ftp://example.org/a.mp3", "scheme"),
            ("http://user:pw@example.org/a.mp3", "credentials"),
            ("http://127.0.0.1/a.mp3", "refused"),
            ("http://[::1]:8080/a.mp3", "refused"),
            ("http://169.254.169.254/latest/meta-data", "refused"),
            ("not a url", "invalid URL"),
        ] {
            let err = fetch(url, &cfg).await.unwrap_err().to_string();
            assert!(err.contains(want), "{url}: {err}");
        }
    }
}
