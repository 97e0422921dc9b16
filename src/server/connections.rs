//! Accepting connections from strangers: hyper's HTTP/1.1 server (with upgrades, for the
//! media stream's WebSocket) with a deadline for every request head
//! (`server.header_timeout_secs`, counted from the moment a connection is accepted or falls
//! idle: a client that sends nothing, or half a header, is dropped), at most
//! `server.max_connections` connections at once (one more is answered 503
//! `too_many_connections` and closed at once) and at most
//! `server.max_connections_per_address` from one client address (an IPv4 address or an
//! IPv6 /64; one more is answered 429 `too_many_connections_from_address`). A connection's
//! place ([`ConnectionSlot`]) rides on each of its requests, so that a WebSocket keeps it
//! until the socket closes. On shutdown the connections finish what they are doing and
//! close, as axum's own graceful shutdown does.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use crate::http::warn_budget;

/// The bounds of accepting connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    /// 0: no bound per address.
    pub max_per_address: usize,
    pub header_timeout: Duration,
}

/// What a connection over the cap is told before it is closed.
const TOO_MANY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 89\r\n\r\n{\"error\":{\"code\":\"too_many_connections\",\"message\":\"voxd has too many open connections\"}}\n";

/// What a connection over its address's cap is told before it is closed.
const TOO_MANY_FROM_ADDRESS: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 111\r\n\r\n{\"error\":{\"code\":\"too_many_connections_from_address\",\"message\":\"too many open connections from your address\"}}\n";

/// A connection's place among the open ones, in total and for its client's address: held
/// by the connection and by each of its requests (a request's extension), so that a
/// WebSocket it was upgraded to keeps it until the socket closes.
#[derive(Clone)]
pub struct ConnectionSlot(#[expect(dead_code, reason = "held, never read")] Arc<Held>);

struct Held {
    _total: OwnedSemaphorePermit,
    _address: Option<AddressPlace>,
}

/// How many connections each client address has open.
struct PerAddress {
    most: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection of an address; it leaves the count when dropped.
struct AddressPlace {
    table: Arc<PerAddress>,
    key: IpAddr,
}

impl PerAddress {
    /// A place for one more connection from `ip`, unless it has `most` open already (None
    /// then); `Ok(None)` when addresses are not bounded.
    fn take(self: &Arc<Self>, ip: IpAddr) -> Result<Option<AddressPlace>, ()> {
        if self.most == 0 {
            return Ok(None);
        }
        let key = address_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(key).or_default();
        if *n >= self.most {
            return Err(());
        }
        *n += 1;
        Ok(Some(AddressPlace {
            table: self.clone(),
            key,
        }))
    }
}

impl Drop for AddressPlace {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// The key a client's connections are counted under: its IPv4 address (an IPv4-mapped IPv6
/// one too), or the /64 network of an IPv6 address (one host usually holds a whole /64).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// A place for a connection from `peer`, or the answer it is refused with (over its
/// address's cap, or over the total).
fn admit(
    permits: &Arc<Semaphore>,
    addresses: &Arc<PerAddress>,
    peer: SocketAddr,
) -> Result<ConnectionSlot, &'static [u8]> {
    let Ok(address) = addresses.take(peer.ip()) else {
        let why = format!("connection from {peer} refused: too many open from its address");
        warn_budget::warn("too_many_connections_from_address", &why);
        return Err(TOO_MANY_FROM_ADDRESS);
    };
    let Ok(total) = permits.clone().try_acquire_owned() else {
        let why = format!("connection from {peer} refused: too many open");
        warn_budget::warn("too_many_connections", &why);
        return Err(TOO_MANY);
    };
    Ok(ConnectionSlot(Arc::new(Held {
        _total: total,
        _address: address,
    })))
}

/// Serves `app` on `listener` within `limits` until `shutdown` resolves, then lets the open
/// connections finish and returns when they have.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let addresses = Arc::new(PerAddress {
        most: limits.max_per_address,
        open: Mutex::default(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let (open_tx, open_rx) = watch::channel(());
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(ok) => ok,
                // Out of file descriptors or a connection reset before it was accepted:
                // wait a moment rather than spin.
                Err(e) => {
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = match admit(&permits, &addresses, peer) {
            Ok(slot) => slot,
            Err(answer) => {
                tokio::spawn(refuse(stream, answer));
                continue;
            }
        };
        let service =
            TowerToHyperService::new(app.clone().map_request(move |mut req: Request<_>| {
                req.extensions_mut().insert(slot.clone());
                req
            }));
        let (http, mut stop, open) = (http.clone(), stop_rx.clone(), open_rx.clone());
        tokio::spawn(async move {
            let conn = http
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            let stopping = tokio::select! {
                result = conn.as_mut() => Some(result),
                _ = stop.wait_for(|stop| *stop) => None,
            };
            // On shutdown: told once to finish, then awaited.
            let result = match stopping {
                Some(result) => result,
                None => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, "connection ended: {e}");
            }
            drop(open);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(open_rx);
    open_tx.closed().await;
    Ok(())
}

/// Tells a refused connection why (`answer`), and closes it.
async fn refuse(mut stream: TcpStream, answer: &'static [u8]) {
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(answer)).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusals_are_complete_http_responses() {
        for (answer, code) in [
            (TOO_MANY, "too_many_connections"),
            (TOO_MANY_FROM_ADDRESS, "too_many_connections_from_address"),
        ] {
            let text = std::str::from_utf8(answer).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(body.len(), length, "{text}");
            let json: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(json["error"]["code"], code);
        }
    }

    #[test]
    fn an_address_is_bounded_by_itself_and_an_ipv6_host_by_its_64() {
        let table = Arc::new(PerAddress {
            most: 2,
            open: Mutex::default(),
        });
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let a = table.take(ip("203.0.113.7")).unwrap();
        let b = table.take(ip("::ffff:203.0.113.7")).unwrap();
        assert!(table.take(ip("203.0.113.7")).is_err(), "a third is refused");
        assert!(
            table.take(ip("203.0.113.8")).unwrap().is_some(),
            "others are not"
        );
        drop(a);
        let c = table.take(ip("203.0.113.7")).unwrap();
        let six = [ip("2001:db8:1:2::1"), ip("2001:db8:1:2:ffff::9")];
        let held: Vec<_> = six.iter().map(|&i| table.take(i).unwrap()).collect();
        assert!(table.take(ip("2001:db8:1:2::77")).is_err(), "the same /64");
        assert!(table.take(ip("2001:db8:1:3::1")).is_ok());
        drop((b, c, held));
        assert!(
            table.open.lock().unwrap().is_empty(),
            "nothing left counted"
        );
        let unbounded = Arc::new(PerAddress {
            most: 0,
            open: Mutex::default(),
        });
        assert!(unbounded.take(ip("203.0.113.7")).unwrap().is_none());
    }
}
