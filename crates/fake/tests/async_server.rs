//! The async `FakeServer` handle: runtimes, shutdown, load.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Conn, split_url};
use replicate_fake::{FakeServer, Options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A one-shot async GET with `Connection: close`.
async fn get(base: &str, path: &str, token: &str) -> (u16, String) {
    let (host, _) = split_url(base);
    let mut s = tokio::net::TcpStream::connect(&host).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn works_on_a_current_thread_runtime_and_shuts_down() {
    let server = FakeServer::start_with(Options {
        token: "t0k".into(),
        prefix: "proxy/".into(),
        ..Options::default()
    })
    .await
    .unwrap();
    assert_eq!(server.token(), "t0k");
    assert_eq!(
        server.prefixed_base_url(),
        format!("{}/proxy", server.base_url())
    );
    let (status, body) = get(&server.base_url(), "/proxy/v1/account", "t0k").await;
    assert_eq!(status, 200);
    assert!(body.contains("\"username\":\"fake\""));
    let base = server.base_url();
    server.shutdown().await;
    let (host, _) = split_url(&base);
    assert!(tokio::net::TcpStream::connect(&host).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_predictions_over_keep_alive() {
    let server = FakeServer::start_with(Options {
        tick: Duration::from_millis(5),
        record_requests: false,
        ..Options::default()
    })
    .await
    .unwrap();
    let handle = server.handle();
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let h = handle.clone();
            tokio::task::spawn_blocking(move || {
                let (host, _) = split_url(&h.base_url());
                let mut conn = Conn::open(&host).unwrap();
                let auth = format!("Bearer {}", h.token());
                let body = br#"{"input":{"prompt":"x"}}"#;
                let mut ids = Vec::new();
                for _ in 0..250 {
                    let r = conn
                        .send(
                            "POST",
                            "/v1/models/fake/json/predictions",
                            &[
                                ("Authorization", &auth),
                                ("Content-Type", "application/json"),
                            ],
                            body,
                        )
                        .unwrap();
                    assert_eq!(r.status, 201);
                    ids.push(r.json()["id"].as_str().unwrap().to_owned());
                }
                for id in &ids {
                    let r = conn
                        .send(
                            "GET",
                            &format!("/v1/predictions/{id}"),
                            &[("Authorization", &auth)],
                            b"",
                        )
                        .unwrap();
                    assert_eq!(r.status, 200);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(handle.prediction_count(), 2000);
    assert_eq!(handle.connections_accepted(), 8);
    assert!(handle.requests().is_empty());
    drop(server);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (host, _) = split_url(&handle.base_url());
    assert!(std::net::TcpStream::connect(&host).is_err());
}
