//! Streams, downloads and files against the fake server (and tiny hand-written servers).
#![allow(missing_docs, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use replicate_fake::{
    BlockingFakeServer, Fault, FaultRule, Matcher, ModelScript, Options, Origin, RecordedRequest,
};
use replicate_ureq::protocol::sse::DoneReason;
use replicate_ureq::protocol::stream::is_stream_gone;
use replicate_ureq::protocol::{CreatePrediction, PollPolicy, Target, TransportErrorKind};
use replicate_ureq::{Client, ClientBuilder, Error, FileInput, Prediction, ReplicateEvent};
use serde_json::json;

fn fast() -> Options {
    Options {
        tick: Duration::from_millis(10),
        ..Options::default()
    }
}

fn builder(s: &BlockingFakeServer) -> ClientBuilder {
    Client::builder()
        .token(s.token())
        .base_url(s.base_url())
        .poll_policy(PollPolicy::fixed(Duration::from_millis(10)))
        .sync_wait(None)
        .timeout(Duration::from_secs(10))
}

fn client(s: &BlockingFakeServer) -> Client {
    builder(s).build().unwrap()
}

fn create(c: &Client, model: &str) -> Prediction {
    c.create(CreatePrediction::new(Target::parse(model).unwrap()).input(json!({"prompt": "x"})))
        .unwrap()
}

fn run(c: &Client, model: &str) -> Prediction {
    let create = CreatePrediction::new(Target::parse(model).unwrap()).input(json!({}));
    c.run_with(create, c.wait_options(Some(Duration::from_secs(20))))
        .unwrap()
}

fn files_requests(s: &BlockingFakeServer) -> Vec<RecordedRequest> {
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

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        TempDir(std::env::temp_dir().join(format!(
            "replicate-ureq-{name}-{}-{nanos}",
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

#[test]
fn stream_tokens_to_done() {
    let s = BlockingFakeServer::start_with(fast()).unwrap();
    s.set_model(
        "acme/story",
        ModelScript::text(["Hello", " world", "!"])
            .starting_ticks(1)
            .processing_time(Duration::from_millis(200))
            .logs(["warming up"]),
    );
    let c = client(&s);
    let p = create(&c, "acme/story");
    let events: Vec<ReplicateEvent> = c.stream(&p).unwrap().map(Result::unwrap).collect();
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
    let p = create(&c, "fake/text-multiline");
    let text = c.stream_text(&p).unwrap();
    assert_eq!(text, replicate_fake::MULTILINE_TOKENS.concat());
}

#[test]
fn dropped_stream_resumes_with_last_event_id() {
    let s = BlockingFakeServer::start_with(fast()).unwrap();
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
    let p = create(&c, "acme/story");
    let opts = replicate_ureq::StreamOptions {
        initial_backoff: Duration::from_millis(20),
        ..Default::default()
    };
    let mut stream = c.stream_with(&p, opts).unwrap();
    let events: Vec<ReplicateEvent> = stream.by_ref().map(Result::unwrap).collect();
    // Every token exactly once, in order.
    assert_eq!(outputs(&events), ["a", "b", "c", "d"]);
    assert_eq!(events.last(), Some(&ReplicateEvent::Done(None)));
    assert_eq!(stream.session().reconnects(), 1);

    let reqs = files_requests(&s);
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    assert_eq!(reqs[0].header("last-event-id"), None);
    let resumed_from = reqs[1].header("last-event-id").unwrap();
    assert!(resumed_from.ends_with(":1"), "{resumed_from}");
    assert_eq!(reqs[1].header("authorization"), None);
}

#[test]
fn stream_error_event_and_gone_stream() {
    let s = BlockingFakeServer::start_with(fast()).unwrap();
    s.set_model(
        "acme/broken",
        ModelScript::fail("CUDA out of memory").streams(true),
    );
    let c = client(&s);
    let p = create(&c, "acme/broken");
    let items: Vec<_> = c.stream(&p).unwrap().collect();
    let last = items.last().unwrap();
    assert_eq!(
        last,
        &Err(Error::PredictionStreamError("CUDA out of memory".into()))
    );
    assert!(items[..items.len() - 1].iter().all(Result::is_ok));
    let e = c.stream_text(&p).unwrap_err();
    assert!(matches!(e, Error::PredictionStreamError(_)));

    // A stream that does not exist.
    let url = format!("{}/v1/streams/nope", s.stream_base_url());
    let e = c.stream_url(&url, Default::default()).unwrap_err();
    assert!(is_stream_gone(&e), "{e}");

    // A prediction of a model that does not stream.
    let p = create(&c, "fake/json");
    let e = c.stream(&p).unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e}");
}

#[test]
fn canceled_stream_reports_its_reason() {
    let s = BlockingFakeServer::start_with(fast()).unwrap();
    s.set_model(
        "acme/endless",
        ModelScript::text(["a", "b"])
            .starting_ticks(0)
            .processing_time(Duration::from_secs(30)),
    );
    let c = client(&s);
    let p = create(&c, "acme/endless");
    let mut stream = c.stream(&p).unwrap();
    let canceler = {
        let c = c.clone();
        let id = p.id.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            c.cancel(&id).unwrap()
        })
    };
    let events: Vec<ReplicateEvent> = stream.by_ref().map(Result::unwrap).collect();
    canceler.join().unwrap();
    assert_eq!(
        events.last(),
        Some(&ReplicateEvent::Done(Some(DoneReason::Canceled)))
    );
    assert!(stream.next().is_none());
}

#[test]
fn stream_retries_server_errors_then_reads() {
    let sse = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n\
               : hi\n\nid: 9:0\nevent: output\ndata: one\n\nid: 9:1\nevent: done\ndata: {}\n\n";
    let (base, heads) = tiny_server(vec![
        "HTTP/1.1 503 Service Unavailable\r\nretry-after: 0\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            .to_owned(),
        sse.to_owned(),
    ]);
    let c = Client::builder().token("r8_secret").build().unwrap();
    let url = format!("{base}/v1/streams/abc");
    let opts = replicate_ureq::StreamOptions {
        initial_backoff: Duration::from_millis(10),
        ..Default::default()
    };
    let events: Vec<_> = c
        .stream_url(&url, opts)
        .unwrap()
        .map(Result::unwrap)
        .collect();
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
        .unwrap_err();
    assert!(
        matches!(e, Error::Stream(ref m) if m.message.contains("text/html")),
        "{e}"
    );
}

#[test]
fn idle_streams_are_reopened_and_each_reopening_counts() {
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
    let opts = replicate_ureq::StreamOptions {
        max_reconnects: 2,
        initial_backoff: Duration::from_millis(10),
        ..Default::default()
    };
    let events: Vec<_> = c
        .stream_url(&format!("{base}/s"), opts)
        .unwrap()
        .map(Result::unwrap)
        .collect();
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

#[test]
fn stream_sends_the_token_only_to_the_api_origin() {
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
        .unwrap()
        .count();
    assert_eq!(n, 1);
    assert_eq!(
        header(&heads.recv().unwrap(), "authorization"),
        Some("Bearer r8_secret")
    );
    // Unless told never to.
    let opts = replicate_ureq::StreamOptions {
        auth: replicate_ureq::StreamAuth::Never,
        ..Default::default()
    };
    c.stream_url(&format!("{base}/streams/x"), opts)
        .unwrap()
        .for_each(drop);
    assert_eq!(header(&heads.recv().unwrap(), "authorization"), None);
}

#[test]
fn download_outputs_to_a_directory_without_authorization() {
    let s = BlockingFakeServer::start_with(fast()).unwrap();
    let c = client(&s);
    let p = run(&c, "fake/urls");
    let urls: Vec<String> = p.output_urls().into_iter().map(str::to_owned).collect();
    assert_eq!(urls.len(), 3);
    s.clear_requests();

    let tmp = TempDir::new("outputs");
    let dir = tmp.0.join("nested/out");
    let paths = c.download_outputs(&p, &dir).unwrap();
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
    let in_memory = c.download(&urls[0]).unwrap();
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
    let again = c.download_outputs(&p, &dir).unwrap();
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
        .unwrap();
    assert_eq!(replaced, paths);
    assert_eq!(list_dir(&dir).len(), 6);
}

#[test]
fn data_uri_outputs_need_no_request() {
    let s = BlockingFakeServer::start_with(fast()).unwrap();
    let c = client(&s);
    let p = run(&c, "fake/data-uri");
    let uri = p.output_url().unwrap().to_owned();
    assert!(uri.starts_with("data:image/png;base64,"));
    s.clear_requests();
    let bytes = c.download(&uri).unwrap();
    assert!(bytes.starts_with(b"\x89PNG"));
    let tmp = TempDir::new("datauri");
    let paths = c.download_outputs(&p, &tmp.0).unwrap();
    assert_eq!(paths, [tmp.0.join("output-0.png")]);
    assert_eq!(std::fs::read(&paths[0]).unwrap(), bytes);
    assert!(s.requests().is_empty());

    // A text output has no files.
    let p = run(&c, "fake/text");
    assert!(c.download_outputs(&p, &tmp.0).unwrap().is_empty());
}

#[test]
fn size_cap_is_enforced() {
    let s = BlockingFakeServer::start_with(fast()).unwrap();
    let c = builder(&s).max_download_bytes(16).build().unwrap();
    assert_eq!(c.download_limits().max_bytes, 16);
    let p = run(&c, "fake/urls");
    let url = p.output_url().unwrap().to_owned();
    let e = c.download(&url).unwrap_err();
    assert!(
        matches!(e, Error::Transport(ref t) if t.kind == TransportErrorKind::BodyTooLarge),
        "{e:?}"
    );
    let tmp = TempDir::new("cap");
    let e = c.download_outputs(&p, &tmp.0).unwrap_err();
    assert!(matches!(e, Error::Transport(ref t) if t.kind == TransportErrorKind::BodyTooLarge));
    assert!(list_dir(&tmp.0).is_empty(), "{:?}", list_dir(&tmp.0));

    // Data URIs are capped too.
    let p = run(&c, "fake/data-uri");
    let e = c.download(p.output_url().unwrap()).unwrap_err();
    assert!(matches!(e, Error::Transport(ref t) if t.kind == TransportErrorKind::BodyTooLarge));
}

#[test]
fn size_cap_without_content_length() {
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
    let e = c.download(&format!("{base}/big.bin")).unwrap_err();
    assert!(matches!(e, Error::Transport(ref t) if t.kind == TransportErrorKind::BodyTooLarge));
    let c = Client::builder()
        .token("r8_secret")
        .max_download_bytes(100)
        .build()
        .unwrap();
    assert_eq!(c.download(&format!("{base}/big.bin")).unwrap().len(), 100);
}

#[test]
fn expired_links_are_explained() {
    let s = BlockingFakeServer::start_with(Options {
        output_ttl: Duration::from_millis(300),
        ..fast()
    })
    .unwrap();
    let c = client(&s);
    let p = run(&c, "fake/urls");
    assert!(!p.data_removed);
    let url = p.output_url().unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(600));

    let e = c.download(&url).unwrap_err();
    let Error::Output(msg) = &e else {
        panic!("{e:?}")
    };
    assert!(msg.message.contains("expired"), "{msg}");
    assert!(msg.message.contains("one hour"), "{msg}");

    // The prediction fetched before the removal: the link's answer says why.
    let tmp = TempDir::new("expired");
    let e = c.download_outputs(&p, &tmp.0).unwrap_err();
    assert!(e.to_string().contains(&p.id), "{e}");
    assert!(list_dir(&tmp.0).is_empty());

    // Fetched again, it says data_removed: nothing is requested.
    let fresh = c.get(&p.id).unwrap();
    assert!(fresh.data_removed);
    s.clear_requests();
    let e = c.download_outputs(&fresh, &tmp.0).unwrap_err();
    assert!(e.to_string().contains("data_removed"), "{e}");
    assert!(s.requests().is_empty());
}

#[test]
fn redirects_never_carry_authorization() {
    let s = BlockingFakeServer::start_with(fast()).unwrap();
    let c = client(&s);
    let p = run(&c, "fake/urls");
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
    assert_eq!(c.download(&moved).unwrap(), bytes);
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
        .unwrap_err();
    assert!(e.to_string().contains("too many redirects"), "{e}");
}

#[test]
fn files_roundtrip() {
    let s = BlockingFakeServer::start_with(fast()).unwrap();
    let c = client(&s);
    let f = c
        .upload_file(
            b"hello".to_vec(),
            "hello.txt",
            None,
            Some(json!({"purpose": "test"})),
        )
        .unwrap();
    assert_eq!(f.name.as_deref(), Some("hello.txt"));
    assert_eq!(f.content_type.as_deref(), Some("text/plain"));
    assert_eq!(f.size, Some(5));
    assert_eq!(f.metadata, json!({"purpose": "test"}));
    assert_eq!(c.get_file(&f.id).unwrap().id, f.id);
    let listed: Vec<String> = c.list_files().map(|r| r.unwrap().id).collect();
    assert!(listed.contains(&f.id));
    c.delete_file(&f.id).unwrap();
    assert_eq!(c.get_file(&f.id).unwrap_err().status(), Some(404));
}

#[test]
fn prepare_input_files_by_threshold() {
    let s = BlockingFakeServer::start_with(fast()).unwrap();
    let tmp = TempDir::new("inputs");
    std::fs::create_dir_all(&tmp.0).unwrap();
    let path = tmp.0.join("mask.png");
    std::fs::write(&path, [1u8, 2, 3, 4, 5, 6, 7, 8]).unwrap();

    // Small: inline, no request.
    let c = client(&s);
    let v = c.prepare_input_file(&path).unwrap();
    assert_eq!(v, json!("data:image/png;base64,AQIDBAUGBwg="));
    assert!(s.requests().is_empty());

    // Over the threshold: uploaded, and the file's URL is the input.
    let c = builder(&s).upload_threshold(4).build().unwrap();
    let v = c.prepare_input_file(&path).unwrap();
    let url = v.as_str().unwrap();
    let uploads: Vec<_> = s
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/v1/files"))
        .collect();
    assert_eq!(uploads.len(), 1);
    let files: Vec<_> = c.list_files().map(Result::unwrap).collect();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].urls.get.as_deref(), Some(url));
    assert_eq!(files[0].content_type.as_deref(), Some("image/png"));
    assert_eq!(files[0].name.as_deref(), Some("mask.png"));

    // Bytes in memory, and a missing file.
    let v = c
        .prepare_input(FileInput::from_bytes("a.txt", "text/plain", b"hi".to_vec()))
        .unwrap();
    assert_eq!(v, json!("data:text/plain;base64,aGk="));
    let e = c
        .prepare_input_file(&tmp.0.join("missing.png"))
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)));
}
