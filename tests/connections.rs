//! Connections from strangers, on a real voxd over loopback: a client that sends nothing,
//! or half a request head, and stalls is dropped after `server.header_timeout_secs`; beyond
//! `server.max_connections` open connections a new one is answered 503
//! `too_many_connections` at once, and beyond `server.max_connections_per_address` from one
//! address 429 `too_many_connections_from_address`; a media stream holds its connection's
//! place while it lives; either way voxd goes on answering everyone else. A voxd without a
//! token answers only loopback `Host` names (or `server.allowed_hosts`).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{harness, spawn_api, test_config, TOKEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use voxd::bench::caller::Caller;

/// Opens a connection and sends the start of a request head, never its end.
async fn half_a_request(api: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(api).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: voxd\r\nX-Slow: ")
        .await
        .unwrap();
    s
}

/// Reads until the peer closes (or `within` passes): what it sent, and whether it closed.
async fn read_to_close(s: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let closed = tokio::time::timeout(within, async {
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

async fn health(api: SocketAddr) -> u16 {
    reqwest::get(format!("http://{api}/health"))
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_dropped_after_the_header_timeout() {
    let mut cfg = test_config();
    cfg.server.header_timeout_secs = 1;
    let api = spawn_api(cfg, harness().engines.clone()).await;
    let started = Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..50 {
        stalled.push(half_a_request(api).await);
    }
    // voxd answers others meanwhile.
    assert_eq!(health(api).await, 200);
    for s in &mut stalled {
        let (_, closed) = read_to_close(s, Duration::from_secs(5)).await;
        assert!(closed, "a stalled connection is still open after 5 s");
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
    assert_eq!(health(api).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_connection_cap_a_new_connection_is_refused_at_once() {
    let mut cfg = test_config();
    cfg.server.max_connections = 4;
    cfg.server.header_timeout_secs = 60;
    let api = spawn_api(cfg, harness().engines.clone()).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(half_a_request(api).await);
    }
    // The fifth: a complete 503 with a JSON body, and the connection closed.
    let mut fifth = TcpStream::connect(api).await.unwrap();
    let (answer, closed) = read_to_close(&mut fifth, Duration::from_secs(5)).await;
    assert!(closed, "the refused connection was left open");
    assert!(
        answer.starts_with("HTTP/1.1 503") && answer.contains("\"too_many_connections\""),
        "{answer}"
    );
    // Once the held connections go, voxd serves again.
    drop(held);
    let served = common::wait_until(
        "a request served again",
        Duration::from_secs(10),
        || async {
            match reqwest::get(format!("http://{api}/health")).await {
                Ok(r) if r.status() == 200 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let () = served;
}

/// A connection from another loopback address than the tests' own 127.0.0.1 (a stranger's),
/// that sends nothing.
async fn silent_from(stranger: &str, api: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(format!("{stranger}:0").parse().unwrap())
        .unwrap();
    socket.connect(api).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_dropped_after_the_header_timeout() {
    let mut cfg = test_config();
    cfg.server.header_timeout_secs = 1;
    cfg.server.max_connections_per_address = 0;
    let api = spawn_api(cfg, harness().engines.clone()).await;
    let started = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..300 {
        silent.push(silent_from("127.0.0.2", api).await);
    }
    // voxd answers others meanwhile, at once.
    let t = Instant::now();
    assert_eq!(health(api).await, 200);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    for s in &mut silent {
        let (said, closed) = read_to_close(s, Duration::from_secs(5)).await;
        assert!(closed, "a silent connection is still open after 5 s");
        assert!(said.is_empty(), "{said}");
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_at_most_its_share_of_the_connections() {
    let mut cfg = test_config();
    cfg.server.max_connections_per_address = 8;
    cfg.server.header_timeout_secs = 60;
    let api = spawn_api(cfg, harness().engines.clone()).await;
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(silent_from("127.0.0.3", api).await);
    }
    let mut ninth = silent_from("127.0.0.3", api).await;
    let (answer, closed) = read_to_close(&mut ninth, Duration::from_secs(5)).await;
    assert!(closed, "the refused connection was left open");
    assert!(
        answer.starts_with("HTTP/1.1 429")
            && answer.contains("\"too_many_connections_from_address\""),
        "{answer}"
    );
    // Another address is served meanwhile; the stranger again once its connections go.
    assert_eq!(health(api).await, 200);
    drop(held);
    common::wait_until(
        "the address served again",
        Duration::from_secs(10),
        || async {
            let mut s = silent_from("127.0.0.3", api).await;
            s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .await
                .map_err(|e| e.to_string())?;
            let (answer, _) = read_to_close(&mut s, Duration::from_secs(5)).await;
            match answer.starts_with("HTTP/1.1 200") {
                true => Ok(()),
                false => Err(answer),
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_media_stream_keeps_its_connections_place_while_it_lives() {
    let mut cfg = test_config();
    cfg.server.max_connections = 2;
    cfg.server.header_timeout_secs = 60;
    let api = spawn_api(cfg, harness().engines.clone()).await;
    let caller = Caller::connect(api, "", Some(TOKEN)).await.unwrap();
    let _half = half_a_request(api).await;
    // The stream and the half request hold both places: a third is refused.
    let mut third = TcpStream::connect(api).await.unwrap();
    let (answer, _) = read_to_close(&mut third, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    caller.close().await;
    common::wait_until(
        "the stream's place freed",
        Duration::from_secs(10),
        || async {
            match reqwest::get(format!("http://{api}/health")).await {
                Ok(r) if r.status() == 200 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_only_loopback_host_names_are_answered() {
    let get = |api: SocketAddr, host: &'static str, token: Option<&'static str>| async move {
        let mut req = common::client()
            .get(format!("http://{api}/calls"))
            .header("Host", host);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    };
    let mut open = test_config();
    open.server.token = String::new();
    open.server.allowed_hosts = vec!["voxd.lan".into()];
    let api = spawn_api(open, harness().engines.clone()).await;
    for host in ["localhost", "127.0.0.1:8080", "voxd.lan"] {
        assert_eq!(get(api, host, None).await.0, 200, "{host}");
    }
    let (status, body) = get(api, "attacker.example", None).await;
    assert_eq!(status, 421, "{body}");
    assert!(body.contains("\"host_not_allowed\""), "{body}");
    // With a token, the token guards the API whatever the name.
    let guarded = spawn_api(test_config(), harness().engines.clone()).await;
    assert_eq!(get(guarded, "attacker.example", Some(TOKEN)).await.0, 200);
    assert_eq!(get(guarded, "attacker.example", None).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_arrives_whole_is_answered_408_and_one_too_big_413() {
    let mut cfg = test_config();
    cfg.server.header_timeout_secs = 1;
    let api = spawn_api(cfg, harness().engines.clone()).await;
    let mut slow = TcpStream::connect(api).await.unwrap();
    let head = format!(
        "POST /voximplant/events HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"call_id\""
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (answer, closed) = read_to_close(&mut slow, Duration::from_secs(5)).await;
    assert!(
        answer.starts_with("HTTP/1.1 408") && answer.contains("\"body_timeout\""),
        "{answer}"
    );
    assert!(closed, "the connection was left open");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // A body declared too big is refused from its head, before a byte of it is read.
    let mut big = TcpStream::connect(api).await.unwrap();
    let head = format!(
        "POST /voximplant/events HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 3145728\r\n\r\n"
    );
    big.write_all(head.as_bytes()).await.unwrap();
    let (answer, _) = read_to_close(&mut big, Duration::from_secs(5)).await;
    assert!(
        answer.starts_with("HTTP/1.1 413") && answer.contains("\"body_too_large\""),
        "{answer}"
    );
    // Without the token the body is not waited for: 401, not 408.
    let mut stranger = TcpStream::connect(api).await.unwrap();
    let head = "POST /voximplant/events HTTP/1.1\r\nHost: localhost\r\n\
                Content-Type: application/json\r\nContent-Length: 100\r\n\r\n";
    stranger.write_all(head.as_bytes()).await.unwrap();
    let (answer, _) = read_to_close(&mut stranger, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert_eq!(health(api).await, 200);
}
