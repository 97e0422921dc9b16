//! Connections from strangers, on a real voxd over loopback: a client that sends half a
//! request head and stalls is dropped after `server.header_timeout_secs`; beyond
//! `server.max_connections` open connections a new one is answered 503
//! `too_many_connections` at once; either way voxd goes on answering everyone else.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{harness, spawn_api, test_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
