//! Streams, downloads and files against the fake server (and tiny hand-written servers).
#![allow(missing_docs, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use replicate_fake::{
    FakeServer, Fault, FaultRule, Matcher, ModelScript, Options, Origin, RecordedRequest,
};
use replicate_reqwest::protocol::sse::DoneReason;
use replicate_reqwest::protocol::stream::is_stream_gone;
use replicate_reqwest::protocol::{CreatePrediction, PollPolicy, Target, TransportErrorKind};
use replicate_reqwest::{
    Client, ClientBuilder, Error, EventStream, FileInput, Prediction, ReplicateEvent,
};
use serde_json::json;

fn fast() -> Options {
    Options {
        tick: Duration::from_millis(10),
        ..Options::default()
    }
}

fn builder(s: &FakeServer) -> ClientBuilder {
    Client::builder()
        .token(s.token())
        .base_url(s.base_url())
        .poll_policy(PollPolicy::fixed(Duration::from_millis(10)))
        .sync_wait(None)
        .timeout(Duration::from_secs(10))
}

fn client(s: &FakeServer) -> Client {
    builder(s).build().unwrap()
}

async fn create(c: &Client, model: &str) -> Prediction {
    c.create(CreatePrediction::new(Target::parse(model).unwrap()).input(json!({"prompt": "x"})))
        .await
        .unwrap()
}

async fn run(c: &Client, model: &str) -> Prediction {
    let create = CreatePrediction::new(Target::parse(model).unwrap()).input(json!({}));
    c.run_with(create, c.wait_options(Some(Duration::from_secs(20))))
        .await
        .unwrap()
}

fn files_requests(s: &FakeServer) -> Vec<RecordedRequest> {
    s.requests()
        .into_iter()
        .filter(|r| r.origin == Origin::Files)
        .collect()
}

fn outputs(events: &[ReplicateEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            ReplicateEvent::Output(s) => Some(s.as_str()),
            _ => None,
        })
        .collect()
}

/// Every event until the end, panicking on an error.
async fn all_ok(stream: &mut EventStream) -> Vec<ReplicateEvent> {
    stream.by_ref().map(Result::unwrap).collect().await
}

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        TempDir(std::env::temp_dir().join(format!(
            "replicate-reqwest-{name}-{}-{nanos}",
            std::process::id()
        )))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A tiny HTTP/1.1 server on 127.0.0.1 answering each connection with the next canned response
/// (then closing it), and reporting each request head it read.
fn tiny_server(responses: Vec<String>) -> (String, mpsc::Receiver<String>) {
    tiny_server_holding(responses.into_iter().map(|r| (r, Duration::ZERO)).collect())
}

/// [`tiny_server`], keeping each connection open for a while after its response.
fn tiny_server_holding(responses: Vec<(String, Duration)>) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (response, hold) in responses {
            let Ok((mut conn, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let _ = tx.send(head);
            let _ = conn.write_all(response.as_bytes());
            let _ = conn.flush();
            std::thread::spawn(move || {
                std::thread::sleep(hold);
                drop(conn);
            });
        }
    });
    (base, rx)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test]
async fn stream_tokens_to_done() {
    let s = FakeServer::start_with(fast()).await.unwrap();
    s.set_model(
        "acme/story",
        ModelScript::text(["Hello", " world", "!"])
            .starting_ticks(1)
            .processing_time(Duration::from_millis(200))
            .logs(["warming up"]),
    );
    let c = client(&s);
    let p = create(&c, "acme/story").await;
    let events = all_ok(&mut c.stream(&p).await.unwrap()).await;
    assert_eq!(outputs(&events), ["Hello", " world", "!"]);
    assert_eq!(
        events.first(),
        Some(&ReplicateEvent::Logs("warming up".into()))
    );
    assert_eq!(events.last(), Some(&ReplicateEvent::Done(None)));

    let reqs = files_requests(&s);
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert!(r.path.starts_with("/v1/streams/"), "{}", r.path);
    assert_eq!(r.header("authorization"), None);
    assert_eq!(r.header("accept"), Some("text/event-stream"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("last-event-id"), None);
    assert!(
        r.header("user-agent")
            .unwrap()
            .starts_with("replicate-rust/")
    );

    // The convenience: the text of the output events.
    let p = create(&c, "fake/text-multiline").await;
    let text = c.stream_text(&p).await.unwrap();
    assert_eq!(text, replicate_fake::MULTILINE_TOKENS.concat());
}

#[tokio::test]
async fn stream_text_is_capped() {
    let s = FakeServer::start_with(fast()).await.unwrap();
    let p = create(&client(&s), "fake/text").await;
    // "Hello" alone is over 4 bytes.
    let capped = builder(&s).max_response_bytes(4).build().unwrap();
    let e = capped.stream_text(&p).await.unwrap_err();
    assert!(
        matches!(e, Error::Transport(ref t) if t.kind == TransportErrorKind::BodyTooLarge),
        "{e:?}"
    );
}

#[tokio::test]
async fn dropped_stream_resumes_with_last_event_id() {
    let s = FakeServer::start_with(fast()).await.unwrap();
    s.set_model(
        "acme/story",
        ModelScript::text(["a", "b", "c", "d"])
            .starting_ticks(0)
            .processing_time(Duration::from_millis(200))
            .logs(Vec::<String>::new()),
    );
    s.push_fault(FaultRule::new(
        Matcher::any()
            .origin(Origin::Files)
            .path_contains("/v1/streams/"),
        Fault::DropStreamAfter(2),
    ));
    let c = client(&s);
    let p = create(&c, "acme/story").await;
    let opts = replicate_reqwest::StreamOptions {
        initial_backoff: Duration::from_millis(20),
        ..Default::default()
    };
    let mut stream = c.stream_with(&p, opts).await.unwrap();
    let events = all_ok(&mut stream).await;
    // Every token exactly once, in order.
    assert_eq!(outputs(&events), ["a", "b", "c", "d"]);
    assert_eq!(events.last(), Some(&ReplicateEvent::Done(None)));
    assert_eq!(stream.session().unwrap().reconnects(), 1);
    assert!(stream.last_event_id().is_some());

    let reqs = files_requests(&s);
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    assert_eq!(reqs[0].header("last-event-id"), None);
    let resumed_from = reqs[1].header("last-event-id").unwrap();
    assert!(resumed_from.ends_with(":1"), "{resumed_from}");
    assert_eq!(reqs[1].header("authorization"), None);
}

#[tokio::test]
async fn stream_error_event_and_gone_stream() {
    let s = FakeServer::start_with(fast()).await.unwrap();
    s.set_model(
        "acme/broken",
        ModelScript::fail("CUDA out of memory").streams(true),
    );
    let c = client(&s);
    let p = create(&c, "acme/broken").await;
    let mut stream = c.stream(&p).await.unwrap();
    let items: Vec<_> = stream.by_ref().collect().await;
    let last = items.last().unwrap();
    assert_eq!(
        last,
        &Err(Error::PredictionStreamError("CUDA out of memory".into()))
    );
    assert!(items[..items.len() - 1].iter().all(Result::is_ok));
    // Nothing after the error.
    assert!(stream.next().await.is_none());
    let e = c.stream_text(&p).await.unwrap_err();
    assert!(matches!(e, Error::PredictionStreamError(_)));

    // A stream that does not exist.
    let url = format!("{}/v1/streams/nope", s.stream_base_url());
    let e = c.stream_url(&url, Default::default()).await.unwrap_err();
    assert!(is_stream_gone(&e), "{e}");

    // A prediction of a model that does not stream.
    let p = create(&c, "fake/json").await;
    let e = c.stream(&p).await.unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e}");
}

#[tokio::test]
async fn canceled_stream_reports_its_reason() {
    let s = FakeServer::start_with(fast()).await.unwrap();
    s.set_model(
        "acme/endless",
        ModelScript::text(["a", "b"])
            .starting_ticks(0)
            .processing_time(Duration::from_secs(30)),
    );
    let c = client(&s);
    let p = create(&c, "acme/endless").await;
    let mut stream = c.stream(&p).await.unwrap();
    let canceler = {
        let c = c.clone();
        let id = p.id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            c.cancel(&id).await.unwrap()
        })
    };
    let events = all_ok(&mut stream).await;
    canceler.await.unwrap();
    assert_eq!(
        events.last(),
        Some(&ReplicateEvent::Done(Some(DoneReason::Canceled)))
    );
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn stream_retries_server_errors_then_reads() {
    let sse = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n\
               : hi\n\nid: 9:0\nevent: output\ndata: one\n\nid: 9:1\nevent: done\ndata: {}\n\n";
    let (base, heads) = tiny_server(vec![
        "HTTP/1.1 503 Service Unavailable\r\nretry-after: 0\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            .to_owned(),
        sse.to_owned(),
    ]);
    let c = Client::builder().token("r8_secret").build().unwrap();
    let url = format!("{base}/v1/streams/abc");
    let opts = replicate_reqwest::StreamOptions {
        initial_backoff: Duration::from_millis(10),
        ..Default::default()
    };
    let events = all_ok(&mut c.stream_url(&url, opts).await.unwrap()).await;
    assert_eq!(
        events,
        [
            ReplicateEvent::Output("one".into()),
            ReplicateEvent::Done(None)
        ]
    );
    for _ in 0..2 {
        let head = heads.recv().unwrap();
        assert!(head.starts_with("GET /v1/streams/abc "), "{head}");
        assert_eq!(header(&head, "authorization"), None, "{head}");
        assert_eq!(header(&head, "accept"), Some("text/event-stream"));
    }

    // A non-SSE answer is an error at once.
    let (base, _heads) = tiny_server(vec![
        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi"
            .to_owned(),
    ]);
    let e = c
        .stream_url(&format!("{base}/s"), Default::default())
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Stream(ref m) if m.message.contains("text/html")),
        "{e}"
    );
}

#[tokio::test]
async fn idle_streams_are_reopened_and_each_reopening_counts() {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
    let (base, heads) = tiny_server_holding(vec![
        // One event, then silence past the read timeout.
        (
            format!("{head}id: 1:0\nevent: output\ndata: a\n\n"),
            Duration::from_secs(3),
        ),
        // Silence from the start.
        (head.to_owned(), Duration::from_secs(3)),
        (
            format!("{head}id: 1:1\nevent: output\ndata: b\n\nevent: done\ndata: {{}}\n\n"),
            Duration::ZERO,
        ),
    ]);
    let c = Client::builder()
        .token("r8_secret")
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    // Two silent reopenings allowed (the count starts again at each event).
    let opts = replicate_reqwest::StreamOptions {
        max_reconnects: 2,
        initial_backoff: Duration::from_millis(10),
        ..Default::default()
    };
    let events = all_ok(&mut c.stream_url(&format!("{base}/s"), opts).await.unwrap()).await;
    assert_eq!(
        events,
        [
            ReplicateEvent::Output("a".into()),
            ReplicateEvent::Output("b".into()),
            ReplicateEvent::Done(None)
        ]
    );
    let heads: Vec<String> = heads.try_iter().collect();
    assert_eq!(heads.len(), 3);
    assert_eq!(header(&heads[0], "last-event-id"), None);
    assert_eq!(header(&heads[1], "last-event-id"), Some("1:0"));
    assert_eq!(header(&heads[2], "last-event-id"), Some("1:0"));
}

#[tokio::test]
async fn stream_sends_the_token_only_to_the_api_origin() {
    let sse = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n\
               event: done\ndata: {}\n\n";
    let (base, heads) = tiny_server(vec![sse.to_owned(), sse.to_owned()]);
    // The stream is on the API's origin (a proxy serving streams itself): the token goes.
    let c = Client::builder()
        .token("r8_secret")
        .base_url(format!("{base}/replicate"))
        .build()
        .unwrap();
    let n = c
        .stream_url(&format!("{base}/streams/x"), Default::default())
        .await
        .unwrap()
        .count()
        .await;
    assert_eq!(n, 1);
    assert_eq!(
        header(&heads.recv().unwrap(), "authorization"),
        Some("Bearer r8_secret")
    );
    // Unless told never to.
    let opts = replicate_reqwest::StreamOptions {
        auth: replicate_reqwest::StreamAuth::Never,
        ..Default::default()
    };
    c.stream_url(&format!("{base}/streams/x"), opts)
        .await
        .unwrap()
        .for_each(|_| async {})
        .await;
    assert_eq!(header(&heads.recv().unwrap(), "authorization"), None);
}

#[tokio::test]
async fn download_outputs_to_a_directory_without_authorization() {
    let s = FakeServer::start_with(fast()).await.unwrap();
    let c = client(&s);
    let p = run(&c, "fake/urls").await;
    let urls: Vec<String> = p.output_urls().into_iter().map(str::to_owned).collect();
    assert_eq!(urls.len(), 3);
    s.clear_requests();

    let tmp = TempDir::new("outputs");
    let dir = tmp.0.join("nested/out");
    let paths = c.download_outputs(&p, &dir).await.unwrap();
    let names: Vec<String> = paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["out-0.png", "out-1.png", "out-2.png"]);
    assert_eq!(list_dir(&dir), names, "no temporary file left");
    for path in &paths {
        let bytes = std::fs::read(path).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{}", path.display());
        assert!(path.starts_with(&dir));
    }
    let in_memory = c.download(&urls[0]).await.unwrap();
    assert_eq!(in_memory, std::fs::read(&paths[0]).unwrap());

    let reqs = files_requests(&s);
    assert_eq!(reqs.len(), 4);
    for r in &reqs {
        assert_eq!(r.header("authorization"), None, "{}", r.path);
        assert!(
            r.header("user-agent")
                .unwrap()
                .starts_with("replicate-rust/")
        );
    }
    // Downloading again never replaces the files: the new ones get free names.
    let before: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let again = c.download_outputs(&p, &dir).await.unwrap();
    let again_names: Vec<String> = again
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(again_names, ["out-0-1.png", "out-1-1.png", "out-2-1.png"]);
    let after: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert_eq!(before, after);
    assert_eq!(list_dir(&dir).len(), 6, "no temporary file left");
    // Unless asked to.
    let replaced = c
        .download_outputs_with(
            &p,
            &dir,
            replicate_protocol::output::SaveOptions {
                overwrite: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(replaced, paths);
    assert_eq!(list_dir(&dir).len(), 6);
}

#[tokio::test]
async fn data_uri_outputs_need_no_request() {
    let s = FakeServer::start_with(fast()).await.unwrap();
    let c = client(&s);
    let p = run(&c, "fake/data-uri").await;
    let uri = p.output_url().unwrap().to_owned();
    assert!(uri.starts_with("data:image/png;base64,"));
    s.clear_requests();
    let bytes = c.download(&uri).await.unwrap();
    assert!(bytes.starts_with(b"\x89PNG"));
    let tmp = TempDir::new("datauri");
    let paths = c.download_outputs(&p, &tmp.0).await.unwrap();
    assert_eq!(paths, [tmp.0.join("output-0.png")]);
    assert_eq!(std::fs::read(&paths[0]).unwrap(), bytes);
    assert!(s.requests().is_empty());

    // A text output has no files.
    let p = run(&c, "fake/text").await;
    assert!(c.download_outputs(&p, &tmp.0).await.unwrap().is_empty());
}

#[tokio::test]
async fn size_cap_is_enforced() {
    let s = FakeServer::start_with(fast()).await.unwrap();
    let c = builder(&s).max_download_bytes(16).build().unwrap();
    assert_eq!(c.download_limits().max_bytes, 16);
    let p = run(&c, "fake/urls").await;
    let url = p.output_url().unwrap().to_owned();
    s.clear_requests();
    let e = c.download(&url).await.unwrap_err();
    assert!(
        matches!(e, Error::Transport(ref t) if t.kind == TransportErrorKind::BodyTooLarge),
        "{e:?}"
    );
    // Never retried.
    assert_eq!(files_requests(&s).len(), 1);
    let tmp = TempDir::new("cap");
    let e = c.download_outputs(&p, &tmp.0).await.unwrap_err();
    assert!(matches!(e, Error::Transport(ref t) if t.kind == TransportErrorKind::BodyTooLarge));
    assert!(list_dir(&tmp.0).is_empty(), "{:?}", list_dir(&tmp.0));

    // Data URIs are capped too.
    let p = run(&c, "fake/data-uri").await;
    let e = c.download(p.output_url().unwrap()).await.unwrap_err();
    assert!(matches!(e, Error::Transport(ref t) if t.kind == TransportErrorKind::BodyTooLarge));
}

#[tokio::test]
async fn size_cap_without_content_length() {
    // A chunked body with no Content-Length: the cap is enforced while reading.
    let body = "x".repeat(100);
    let chunked = format!(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let (base, _heads) = tiny_server(vec![chunked.clone(), chunked]);
    let c = Client::builder()
        .token("r8_secret")
        .max_download_bytes(50)
        .build()
        .unwrap();
    let e = c.download(&format!("{base}/big.bin")).await.unwrap_err();
    assert!(matches!(e, Error::Transport(ref t) if t.kind == TransportErrorKind::BodyTooLarge));
    let c = Client::builder()
        .token("r8_secret")
        .max_download_bytes(100)
        .build()
        .unwrap();
    assert_eq!(
        c.download(&format!("{base}/big.bin")).await.unwrap().len(),
        100
    );
}

#[tokio::test]
async fn server_errors_are_retried() {
    let s = FakeServer::start_with(fast()).await.unwrap();
    let c = builder(&s)
        .retry_policy(replicate_reqwest::protocol::RetryPolicy {
            initial_backoff: Duration::from_millis(10),
            ..Default::default()
        })
        .build()
        .unwrap();
    let p = run(&c, "fake/urls").await;
    let url = p.output_url().unwrap().to_owned();
    s.clear_requests();
    s.push_fault(
        FaultRule::new(
            Matcher::any().origin(Origin::Files).path_contains("/out-0"),
            Fault::status(502),
        )
        .times(2),
    );
    let tmp = TempDir::new("retry");
    let paths = c.download_outputs(&p, &tmp.0).await.unwrap();
    assert!(std::fs::read(&paths[0]).unwrap().starts_with(b"\x89PNG"));
    let first: Vec<_> = files_requests(&s)
        .into_iter()
        .filter(|r| url.ends_with(&r.path))
        .collect();
    assert_eq!(first.len(), 3, "{first:#?}");
    assert_eq!(list_dir(&tmp.0).len(), 3);
}

#[tokio::test]
async fn expired_links_are_explained() {
    let s = FakeServer::start_with(Options {
        output_ttl: Duration::from_millis(300),
        ..fast()
    })
    .await
    .unwrap();
    let c = client(&s);
    let p = run(&c, "fake/urls").await;
    assert!(!p.data_removed);
    let url = p.output_url().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(600)).await;

    let e = c.download(&url).await.unwrap_err();
    let Error::Output(msg) = &e else {
        panic!("{e:?}")
    };
    assert!(msg.message.contains("expired"), "{msg}");
    assert!(msg.message.contains("one hour"), "{msg}");

    // The prediction fetched before the removal: the link's answer says why.
    let tmp = TempDir::new("expired");
    let e = c.download_outputs(&p, &tmp.0).await.unwrap_err();
    assert!(e.to_string().contains(&p.id), "{e}");
    assert!(list_dir(&tmp.0).is_empty());

    // Fetched again, it says data_removed: nothing is requested.
    let fresh = c.get(&p.id).await.unwrap();
    assert!(fresh.data_removed);
    s.clear_requests();
    let e = c.download_outputs(&fresh, &tmp.0).await.unwrap_err();
    assert!(e.to_string().contains("data_removed"), "{e}");
    assert!(s.requests().is_empty());
}

#[tokio::test]
async fn redirects_never_carry_authorization() {
    let s = FakeServer::start_with(fast()).await.unwrap();
    let c = client(&s);
    let p = run(&c, "fake/urls").await;
    let url = p.output_url().unwrap().to_owned();

    // The API origin (a proxy serving outputs) redirects to the file host: the first hop gets
    // the token, the file host does not.
    let (api, heads) = tiny_server(vec![format!(
        "HTTP/1.1 302 Found\r\nlocation: {url}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )]);
    let proxied = Client::builder()
        .token("hk-proxy-token")
        .base_url(format!("{api}/replicate"))
        .build()
        .unwrap();
    s.clear_requests();
    let bytes = proxied
        .download(&format!("{api}/outputs/out-0.png"))
        .await
        .unwrap();
    assert!(bytes.starts_with(b"\x89PNG"));
    let head = heads.recv().unwrap();
    assert_eq!(
        header(&head, "authorization"),
        Some("Bearer hk-proxy-token")
    );
    let reqs = files_requests(&s);
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].header("authorization"), None);

    // A redirect on the file host itself is followed, still without a token.
    s.clear_requests();
    s.push_fault(FaultRule::new(
        Matcher::any().origin(Origin::Files).path_contains("/moved"),
        Fault::Redirect(url.clone()),
    ));
    let moved = format!("{}/moved/x.png", s.files_base_url());
    assert_eq!(c.download(&moved).await.unwrap(), bytes);
    let reqs = files_requests(&s);
    assert_eq!(reqs.len(), 2);
    assert!(reqs.iter().all(|r| r.header("authorization").is_none()));

    // Redirect loops end.
    s.push_fault(
        FaultRule::new(
            Matcher::any().origin(Origin::Files).path_contains("/loop"),
            Fault::Redirect(format!("{}/loop", s.files_base_url())),
        )
        .times(100),
    );
    let e = c
        .download(&format!("{}/loop", s.files_base_url()))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("too many redirects"), "{e}");
}

#[tokio::test]
async fn files_roundtrip() {
    let s = FakeServer::start_with(fast()).await.unwrap();
    let c = client(&s);
    let f = c
        .upload_file(
            b"hello".to_vec(),
            "hello.txt",
            None,
            Some(json!({"purpose": "test"})),
        )
        .await
        .unwrap();
    assert_eq!(f.name.as_deref(), Some("hello.txt"));
    assert_eq!(f.content_type.as_deref(), Some("text/plain"));
    assert_eq!(f.size, Some(5));
    assert_eq!(f.metadata, json!({"purpose": "test"}));
    assert_eq!(c.get_file(&f.id).await.unwrap().id, f.id);
    let listed: Vec<String> = c.list_files().map_ok(|f| f.id).try_collect().await.unwrap();
    assert!(listed.contains(&f.id));
    c.delete_file(&f.id).await.unwrap();
    assert_eq!(c.get_file(&f.id).await.unwrap_err().status(), Some(404));

    // A body of several pieces, from a path.
    let tmp = TempDir::new("upload");
    std::fs::create_dir_all(&tmp.0).unwrap();
    let path = tmp.0.join("big.bin");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    let f = c.upload_path(&path, None).await.unwrap();
    assert_eq!(f.name.as_deref(), Some("big.bin"));
    assert_eq!(f.size, Some(content.len() as u64));
    assert_eq!(f.content_type.as_deref(), Some("application/octet-stream"));
    let uploads: Vec<_> = s
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/v1/files"))
        .collect();
    assert_eq!(uploads.len(), 2);
    assert!(
        uploads
            .iter()
            .all(|r| r.header("transfer-encoding").is_none())
    );
}

#[tokio::test]
async fn prepare_input_files_by_threshold() {
    let s = FakeServer::start_with(fast()).await.unwrap();
    let tmp = TempDir::new("inputs");
    std::fs::create_dir_all(&tmp.0).unwrap();
    let path = tmp.0.join("mask.png");
    std::fs::write(&path, [1u8, 2, 3, 4, 5, 6, 7, 8]).unwrap();

    // Small: inline, no request.
    let c = client(&s);
    let v = c.prepare_input_file(&path).await.unwrap();
    assert_eq!(v, json!("data:image/png;base64,AQIDBAUGBwg="));
    assert!(s.requests().is_empty());

    // Over the threshold: uploaded, and the file's URL is the input.
    let c = builder(&s).upload_threshold(4).build().unwrap();
    let v = c.prepare_input_file(&path).await.unwrap();
    let url = v.as_str().unwrap();
    let uploads: Vec<_> = s
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/v1/files"))
        .collect();
    assert_eq!(uploads.len(), 1);
    let files: Vec<_> = c.list_files().try_collect().await.unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].urls.get.as_deref(), Some(url));
    assert_eq!(files[0].content_type.as_deref(), Some("image/png"));
    assert_eq!(files[0].name.as_deref(), Some("mask.png"));

    // Bytes in memory, and a missing file.
    let v = c
        .prepare_input(FileInput::from_bytes("a.txt", "text/plain", b"hi".to_vec()))
        .await
        .unwrap();
    assert_eq!(v, json!("data:text/plain;base64,aGk="));
    let e = c
        .prepare_input_file(&tmp.0.join("missing.png"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)));
}

#[tokio::test]
async fn stalled_upload_is_a_timeout_and_not_repeated() {
    // A server that reads the request head and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(conn);
        }
    });
    let c = Client::builder()
        .token("r8_secret")
        .base_url(&base)
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    // Larger than the socket buffers: the connection stops taking the body.
    let e = c
        .upload_file(vec![7u8; 32 * 1024 * 1024], "big.bin", None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::CreateOutcomeUnknown(ref t) if t.kind == TransportErrorKind::Timeout),
        "{e:?}"
    );
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn slow_uploads_that_progress_have_no_total_timeout() {
    // A server that reads the body slowly (over a second in all, more than the client's
    // timeout, never silent for long), then answers.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let Ok((mut conn, _)) = listener.accept().await else {
            return;
        };
        let mut buf = vec![0u8; 2 * 1024 * 1024];
        let mut seen = Vec::new();
        let (head_end, len) = loop {
            let n = conn.read(&mut buf).await.unwrap();
            seen.extend_from_slice(&buf[..n]);
            if let Some(pos) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&seen[..pos]).to_ascii_lowercase();
                let len: usize = header(&head, "content-length").unwrap().parse().unwrap();
                break (pos + 4, len);
            }
        };
        // About 16 MiB/s: a pause of 50 ms after each MiB.
        let mut read = seen.len() - head_end;
        let mut paused_at = 0;
        while read < len {
            read += conn.read(&mut buf).await.unwrap();
            if read - paused_at >= 1024 * 1024 {
                paused_at = read;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let body = r#"{"id":"f1","name":"big.bin","size":1,"urls":{"get":"https://x/f1"}}"#;
        let answer = format!(
            "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(answer.as_bytes()).await.unwrap();
    });
    let c = Client::builder()
        .token("r8_secret")
        .base_url(&base)
        .timeout(Duration::from_millis(600))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let f = c
        .upload_file(vec![7u8; 24 * 1024 * 1024], "big.bin", None, None)
        .await
        .unwrap();
    assert_eq!(f.id, "f1");
    let elapsed = started.elapsed();
    assert!(elapsed > Duration::from_millis(600), "{elapsed:?}");
}

#[tokio::test]
async fn runs_finish_on_the_stream_done_event() {
    let s = FakeServer::start_with(fast()).await.unwrap();
    s.set_model(
        "acme/story",
        ModelScript::text(["a", "b"])
            .starting_ticks(0)
            .processing_time(Duration::from_millis(200)),
    );
    let interval = Duration::from_millis(1500);
    let slow_polls = |follow| {
        builder(&s)
            .poll_policy(PollPolicy::fixed(interval))
            .follow_stream(follow)
            .build()
            .unwrap()
    };

    let p = run(&slow_polls(true), "acme/story").await;
    assert_eq!(p.output, json!(["a", "b"]));
    let streams = files_requests(&s);
    assert_eq!(streams.len(), 1, "{streams:#?}");
    assert!(streams[0].path.starts_with("/v1/streams/"));
    assert_eq!(streams[0].header("authorization"), None);

    // Without: the poll interval.
    s.clear_requests();
    let started = std::time::Instant::now();
    run(&slow_polls(false), "acme/story").await;
    assert!(started.elapsed() >= interval);
    assert!(files_requests(&s).is_empty());
}
