//! The async client against tiny HTTP servers on loopback: what is specific to its transport
//! (reqwest's errors, timeouts and futures).
#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::StreamExt;
use replicate_protocol::Config;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use std::time::{Duration, Instant};

use futures_util::stream::Stream;
use replicate_protocol::{
    CreatePrediction, Flow, Outgoing, PollPolicy, RetryPolicy, Step, Target, TransportError,
    TransportErrorKind,
};

use replicate_reqwest::*;

/// A short-lived test server: answers every connection with what `respond` returns for the
/// request (head and body as text), or closes it without an answer when `respond` returns `None`.
/// Returns the base URL and a count of the requests read.
async fn serve<F>(respond: F) -> (String, Arc<AtomicUsize>)
where
    F: Fn(&str) -> Option<Vec<u8>> + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let count = Arc::new(AtomicUsize::new(0));
    let respond = Arc::new(respond);
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let respond = respond.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let Some(request) = read_request(&mut conn).await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                if let Some(answer) = respond(&request) {
                    let _ = conn.write_all(&answer).await;
                }
                let _ = conn.shutdown().await;
            });
        }
    });
    (base, count)
}

/// Reads one request: the head, then `Content-Length` bytes of body.
async fn read_request(conn: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let body_len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + body_len {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

fn json_response(status: u16, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn prediction(id: &str, status: &str, output: serde_json::Value) -> String {
    json!({"id": id, "status": status, "input": {}, "output": output}).to_string()
}

fn fast_retries(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(20),
        ..RetryPolicy::default()
    }
}

fn client(base: &str, retry: RetryPolicy) -> Client {
    Client::builder()
        .token("r8_test")
        .base_url(base)
        .retry_policy(retry)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

fn create_request() -> CreatePrediction {
    CreatePrediction::new(Target::parse("owner/model").expect("target")).input(json!({"a": 1}))
}

fn transport_kind(e: &Error) -> Option<TransportErrorKind> {
    match e {
        Error::Transport(t) | Error::CreateOutcomeUnknown(t) => Some(t.kind),
        _ => None,
    }
}

#[test]
fn client_is_clone_send_sync() {
    fn assert<T: Clone + Send + Sync>() {}
    assert::<Client>();
}

#[test]
fn futures_and_streams_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let c = Client::new("r8_test").expect("client");
    let f = c.run("owner/model", json!({}));
    assert_send(&f);
    let f = c.get("abc");
    assert_send(&f);
    let f = c.wait("abc", None);
    assert_send(&f);
    let f = c.create(create_request());
    assert_send(&f);
    let s = c.list();
    assert_send(&s);
    fn assert_unpin<T: Unpin>(_: &T) {}
    assert_unpin(&s);

    let p: Prediction =
        serde_json::from_value(json!({"id": "p", "status": "starting"})).expect("prediction");
    assert_send(&c.stream(&p));
    assert_send(&c.stream_text(&p));
    assert_send(&c.download("https://example.com/x"));
    assert_send(&c.download_outputs(&p, std::path::Path::new("out")));
    assert_send(&c.upload_file(b"x".to_vec(), "x.txt", None, None));
    assert_send(&c.upload_path(std::path::Path::new("x"), None));
    assert_send(&c.prepare_input_file(std::path::Path::new("x")));
    assert_send(&c.get_file("f"));
    assert_send(&c.delete_file("f"));
    let files = c.list_files();
    assert_send(&files);
    assert_unpin(&files);
    fn assert_event_stream<T: Stream<Item = Result<ReplicateEvent, Error>> + Send + Unpin>() {}
    assert_event_stream::<EventStream>();
}

#[test]
fn debug_hides_token() {
    let b = Client::builder().token("r8_supersecret");
    assert!(!format!("{b:?}").contains("supersecret"));
    let c = b.build().expect("client");
    assert!(!format!("{c:?}").contains("supersecret"));
}

#[test]
fn missing_token_is_an_error() {
    let e = Client::builder().build().expect_err("no token");
    assert!(e.is_missing_token(), "{e:?}");
}

#[test]
fn builder_settings_are_used() {
    let c = Client::builder()
        .token("hk-key")
        .base_url("https://proxy.example/replicate/v1/")
        .user_agent("my-app/1")
        .poll_policy(PollPolicy::fixed(Duration::from_secs(2)))
        .client(
            http_client_builder()
                .expect("builder")
                .build()
                .expect("http"),
        )
        .build()
        .expect("client");
    assert_eq!(
        c.config().base_url().as_str(),
        "https://proxy.example/replicate"
    );
    assert_eq!(c.config().user_agent(), "my-app/1");
    let opts = c.wait_options_within(Duration::from_secs(60));
    assert_eq!(opts.poll, PollPolicy::fixed(Duration::from_secs(2)));
    assert!(opts.deadline.is_some());
    assert!(c.wait_options().deadline.is_none());
}

#[tokio::test]
async fn response_keeps_status_headers_version_and_body() {
    let (base, _) = serve(|req| {
        assert!(req.starts_with("GET /v1/predictions/abc HTTP/1.1\r\n"));
        assert!(req.contains("authorization: Bearer r8_test\r\n"));
        Some(b"HTTP/1.1 418 I'm a teapot\r\nx-test: yes\r\ncontent-length: 5\r\n\r\nhello".to_vec())
    })
    .await;
    let c = client(&base, RetryPolicy::none());
    let request = Config::new("r8_test")
        .with_base_url(&base)
        .expect("base")
        .request(http::Method::GET, "/predictions/abc", None)
        .expect("request");
    /// Sends one request and keeps its answer whole.
    struct Capture {
        cfg: Config,
        request: Option<http::Request<Vec<u8>>>,
        response: Option<http::Response<Vec<u8>>>,
    }
    impl Flow for Capture {
        type Item = std::convert::Infallible;
        type Output = Option<http::Response<Vec<u8>>>;
        fn poll(&mut self, _: Instant) -> Step<Self::Item, Self::Output> {
            match self.request.take() {
                Some(r) => Step::Send(Outgoing::buffered(&self.cfg, r)),
                None => Step::Done(self.response.take()),
            }
        }
        fn handle_response(&mut self, response: http::Response<Vec<u8>>, _: Instant) {
            self.response = Some(response);
        }
        fn handle_error(&mut self, error: TransportError, _: Instant) {
            panic!("{error}");
        }
    }
    let response = c
        .drive(Capture {
            cfg: c.config().clone(),
            request: Some(request),
            response: None,
        })
        .await
        .expect("response");
    assert_eq!(response.status(), 418);
    assert_eq!(response.version(), http::Version::HTTP_11);
    assert_eq!(response.headers()["x-test"], "yes");
    assert_eq!(response.body(), b"hello");
}

#[tokio::test]
async fn body_larger_than_its_content_length_cap_is_rejected() {
    let body = prediction("abc", "succeeded", json!("x".repeat(10_000)));
    let (base, _) = serve(move |_| Some(json_response(200, &body))).await;
    let c = Client::builder()
        .token("r8_test")
        .base_url(&base)
        .retry_policy(RetryPolicy::none())
        .max_response_bytes(1000)
        .build()
        .expect("client");
    let e = c.get("abc").await.expect_err("too large");
    assert_eq!(
        transport_kind(&e),
        Some(TransportErrorKind::BodyTooLarge),
        "{e}"
    );
    // Under the cap it is read in full.
    let c = Client::builder()
        .token("r8_test")
        .base_url(&base)
        .max_response_bytes(20_000)
        .build()
        .expect("client");
    let p = c.get("abc").await.expect("prediction");
    assert_eq!(p.status, Status::Succeeded);
}

#[tokio::test]
async fn endless_chunked_body_stops_at_the_cap() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let written = Arc::new(AtomicUsize::new(0));
    let counter = written.clone();
    tokio::spawn(async move {
        let Ok((mut conn, _)) = listener.accept().await else {
            return;
        };
        read_request(&mut conn).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        if conn.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = format!("{:x}\r\n{}\r\n", 4096, "x".repeat(4096));
        // Without a cap this would never end (1 GiB).
        for _ in 0..(1 << 18) {
            if conn.write_all(chunk.as_bytes()).await.is_err() {
                return;
            }
            counter.fetch_add(4096, Ordering::SeqCst);
        }
    });
    let c = Client::builder()
        .token("r8_test")
        .base_url(&base)
        .retry_policy(RetryPolicy::none())
        .max_response_bytes(64 * 1024)
        .build()
        .expect("client");
    let e = tokio::time::timeout(Duration::from_secs(10), c.get("abc"))
        .await
        .expect("stopped reading")
        .expect_err("too large");
    assert_eq!(
        transport_kind(&e),
        Some(TransportErrorKind::BodyTooLarge),
        "{e}"
    );
    // The server got stuck on a closed connection long before the end.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(written.load(Ordering::SeqCst) < 64 * 1024 * 1024);
}

#[tokio::test]
async fn refused_connection_is_connect_and_a_create_is_retried() {
    // A port with nothing behind it.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let base = format!("http://{addr}");

    // Without retries the error is a plain connect error, not an unknown outcome.
    let e = client(&base, RetryPolicy::none())
        .create(create_request())
        .await
        .expect_err("refused");
    assert!(
        matches!(&e, Error::Transport(t) if t.kind == TransportErrorKind::Connect),
        "{e:?}"
    );
    assert!(!e.to_string().contains("r8_test"));

    // The server comes up after a few refused attempts: the create is sent again and succeeds.
    let created = Arc::new(AtomicUsize::new(0));
    let counter = created.clone();
    let server = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let listener = TcpListener::bind(addr).await.expect("rebind");
        let (mut conn, _) = listener.accept().await.expect("accept");
        let request = read_request(&mut conn).await.expect("request");
        assert!(request.starts_with("POST /v1/models/owner/model/predictions "));
        counter.fetch_add(1, Ordering::SeqCst);
        let body = prediction("p1", "starting", json!(null));
        conn.write_all(&json_response(201, &body))
            .await
            .expect("write");
    });
    let p = client(&base, fast_retries(50))
        .create(create_request())
        .await
        .expect("created after retries");
    assert_eq!(p.id, "p1");
    server.await.expect("server");
    assert_eq!(created.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn broken_connection_after_sending_is_io_and_a_create_is_not_retried() {
    let (base, requests) = serve(|_| None).await;
    let c = client(&base, fast_retries(3));

    let e = c.create(create_request()).await.expect_err("no answer");
    assert!(
        matches!(&e, Error::CreateOutcomeUnknown(t) if t.kind == TransportErrorKind::Io),
        "{e:?}"
    );
    assert_eq!(requests.load(Ordering::SeqCst), 1);

    // An idempotent request is retried.
    let e = c.get("abc").await.expect_err("no answer");
    assert!(
        matches!(&e, Error::Transport(t) if t.kind == TransportErrorKind::Io),
        "{e:?}"
    );
    assert_eq!(requests.load(Ordering::SeqCst), 1 + 4);
}

#[tokio::test]
async fn silent_server_is_a_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            open.push(conn);
        }
    });
    let c = Client::builder()
        .token("r8_test")
        .base_url(&base)
        .retry_policy(RetryPolicy::none())
        .timeout(Duration::from_millis(200))
        .build()
        .expect("client");
    let e = c.get("abc").await.expect_err("timeout");
    assert!(
        matches!(&e, Error::Transport(t) if t.kind == TransportErrorKind::Timeout),
        "{e:?}"
    );
    let e = c.create(create_request()).await.expect_err("timeout");
    assert!(
        matches!(&e, Error::CreateOutcomeUnknown(t) if t.kind == TransportErrorKind::Timeout),
        "{e:?}"
    );
}

#[tokio::test]
async fn failed_tls_handshake_is_connect() {
    // A plain-HTTP server behind an https URL: the handshake fails before any request is sent,
    // which also shows the preconfigured rustls backend is the one in use.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("https://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let _ = conn
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let e = client(&base, RetryPolicy::none())
        .create(create_request())
        .await
        .expect_err("handshake");
    assert!(
        matches!(&e, Error::Transport(t) if t.kind == TransportErrorKind::Connect),
        "{e:?}"
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let (base, requests) = serve(|_| {
        Some(b"HTTP/1.1 307 Temporary Redirect\r\nlocation: /v1/elsewhere\r\ncontent-length: 0\r\n\r\n".to_vec())
    })
    .await;
    let e = client(&base, RetryPolicy::none())
        .get("abc")
        .await
        .expect_err("3xx");
    assert_eq!(e.status(), Some(307), "{e:?}");
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn list_streams_every_page_from_the_base_url() {
    let (base, requests) = serve(|req| {
        let body = if req.starts_with("GET /v1/predictions?cursor=page2 ") {
            json!({"next": null, "results": [{"id": "c", "status": "failed"}]})
        } else {
            assert!(req.starts_with("GET /v1/predictions "), "{req}");
            json!({
                "next": "https://api.replicate.com/v1/predictions?cursor=page2",
                "results": [{"id": "a", "status": "succeeded"}, {"id": "b", "status": "processing"}],
            })
        };
        Some(json_response(200, &body.to_string()))
    })
    .await;
    let c = client(&base, RetryPolicy::none());
    let ids: Vec<String> = c.list().map(|p| p.expect("prediction").id).collect().await;
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn list_ends_after_an_error() {
    let (base, _) = serve(|_| Some(json_response(401, r#"{"title":"Unauthenticated"}"#))).await;
    let c = client(&base, RetryPolicy::none());
    let items: Vec<_> = c.list().collect().await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].as_ref().expect_err("401").status(), Some(401));
}

#[tokio::test]
async fn run_polls_until_the_prediction_is_terminal() {
    let polls = Arc::new(AtomicUsize::new(0));
    let counter = polls.clone();
    let (base, _) = serve(move |req| {
        if req.starts_with("POST /v1/models/owner/model/predictions ") {
            assert!(!req.contains("prefer:"), "sync mode is off");
            return Some(json_response(
                201,
                &prediction("p1", "starting", json!(null)),
            ));
        }
        assert!(req.starts_with("GET /v1/predictions/p1 "), "{req}");
        let body = if counter.fetch_add(1, Ordering::SeqCst) < 2 {
            prediction("p1", "processing", json!(null))
        } else {
            prediction("p1", "succeeded", json!("https://x/out.png"))
        };
        Some(json_response(200, &body))
    })
    .await;
    let c = Client::builder()
        .token("r8_test")
        .base_url(&base)
        .sync_wait(None)
        .poll_policy(PollPolicy::fixed(Duration::from_millis(10)))
        .build()
        .expect("client");
    let output = c
        .run("owner/model", json!({"prompt": "x"}))
        .await
        .expect("run");
    assert_eq!(output, json!("https://x/out.png"));
    assert_eq!(polls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn concurrent_runs_share_the_client() {
    let (base, _) = serve(|req| {
        let id = if req.contains(r#""n":1"#) {
            "one"
        } else {
            "two"
        };
        Some(json_response(201, &prediction(id, "succeeded", json!(id))))
    })
    .await;
    let c = client(&base, RetryPolicy::none());
    let mut set = tokio::task::JoinSet::new();
    for n in [1, 2] {
        let c = c.clone();
        set.spawn(async move { c.run("owner/model", json!({"n": n})).await });
    }
    let mut outputs = Vec::new();
    while let Some(result) = set.join_next().await {
        outputs.push(result.expect("task").expect("run"));
    }
    outputs.sort_by_key(|v| v.to_string());
    assert_eq!(outputs, [json!("one"), json!("two")]);
}

/// A connect timeout is both `is_connect` and `is_timeout` in reqwest: nothing was sent, so it
/// must be a connect error, which even a create may retry.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn connect_timeout_is_connect() {
    // A listener that never accepts, with its accept queue filled: Linux then drops further SYNs,
    // so the next connection attempt hangs until the connect timeout.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let addr = socket.local_addr().expect("addr");
    let _listener = socket.listen(0).expect("listen");
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(addr)).await
        {
            fillers.push(s);
        }
    }
    let c = Client::builder()
        .token("r8_test")
        .base_url(format!("http://{addr}"))
        .connect_timeout(Duration::from_millis(200))
        .retry_policy(RetryPolicy::none())
        .build()
        .expect("client");
    let e = c
        .create(create_request())
        .await
        .expect_err("connect timeout");
    assert!(
        matches!(&e, Error::Transport(t) if t.kind == TransportErrorKind::Connect),
        "{e:?}"
    );
}

/// `body`, gzip-encoded.
#[cfg(feature = "gzip")]
fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body).expect("gzip");
    encoder.finish().expect("gzip")
}

/// A `200` whose body is `json`, gzip-encoded, with `Content-Encoding: gzip`.
#[cfg(feature = "gzip")]
fn gzip_json_response(json: &str) -> Vec<u8> {
    let body = gzip(json.as_bytes());
    let mut answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    answer
}

/// The `accept-encoding` header of a request as read by [`serve`], if any.
#[cfg(feature = "gzip")]
fn accept_encoding(request: &str) -> Option<String> {
    request.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("accept-encoding")
            .then(|| value.trim().to_owned())
    })
}

#[cfg(feature = "gzip")]
#[tokio::test]
async fn asks_for_gzip_and_decodes_a_gzip_answer() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let body = prediction("abc", "succeeded", json!(["https://x/out-0.webp"]));
    let (base, _) = serve(move |req| {
        log.lock().expect("log").push(accept_encoding(req));
        Some(gzip_json_response(&body))
    })
    .await;
    let p = client(&base, RetryPolicy::none())
        .get("abc")
        .await
        .expect("decoded prediction");
    assert_eq!(p.id, "abc");
    assert_eq!(p.status, Status::Succeeded);
    assert_eq!(p.output_url(), Some("https://x/out-0.webp"));
    let seen = seen.lock().expect("log").clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].as_deref().is_some_and(|v| v.contains("gzip")),
        "Accept-Encoding: {seen:?}"
    );
}

#[cfg(feature = "gzip")]
#[tokio::test]
async fn a_gzip_answer_is_capped_by_its_decoded_size() {
    // 1 MiB of JSON that compresses to a few KiB: the cap counts what is decoded.
    let body = prediction("abc", "succeeded", json!(" ".repeat(1 << 20)));
    let answer = gzip_json_response(&body);
    assert!(answer.len() < 16 * 1024, "{}", answer.len());
    let (base, _) = serve(move |_| Some(answer.clone())).await;
    let c = Client::builder()
        .token("r8_test")
        .base_url(&base)
        .retry_policy(RetryPolicy::none())
        .max_response_bytes(64 * 1024)
        .build()
        .expect("client");
    let e = c.get("abc").await.expect_err("too large once decoded");
    assert_eq!(
        transport_kind(&e),
        Some(TransportErrorKind::BodyTooLarge),
        "{e}"
    );
}
