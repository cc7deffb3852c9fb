//! Streams, downloads and files, continued: rows of the cross-client scenario table that need a
//! script of their own, a hand-written server ([`tiny_server`]) or a second client, run against
//! both clients. (They were the twin `stream_download.rs` files of `replicate-ureq` and
//! `replicate-reqwest`.) Each row asserts on what the client returned and on what the server
//! received.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use replicate_fake::{
    Fault, FaultRule, MULTILINE_TOKENS, Matcher, ModelScript, Origin, RecordedRequest,
};
use replicate_protocol::sse::{DoneReason, ReplicateEvent};
use replicate_protocol::stream::is_stream_gone;
use replicate_protocol::{
    CreatePrediction, Error, FileInput, Prediction, SaveOptions, StreamAuth, StreamOptions, Target,
    TransportErrorKind,
};
use replicate_tests::{
    Env, Settings, driver, head_header, outputs, scenario, tiny_server, tiny_server_holding,
};
use serde_json::json;

/// How long a row waits for a request head from [`tiny_server`] that must already be there.
const HEAD_WAIT: Duration = Duration::from_secs(5);

fn create(env: &Env, model: &str) -> Prediction {
    env.driver
        .create(
            CreatePrediction::new(Target::parse(model).expect("target"))
                .input(json!({"prompt": "x"})),
        )
        .expect("create")
}

fn run(env: &Env, model: &str) -> Prediction {
    let create = CreatePrediction::new(Target::parse(model).expect("target")).input(json!({}));
    env.driver
        .run_with(
            create,
            env.driver.wait_options_within(Duration::from_secs(20)),
        )
        .expect("run")
}

/// The requests of the log on the files origin (streams and outputs).
fn files_requests(env: &Env) -> Vec<RecordedRequest> {
    env.fake
        .requests()
        .into_iter()
        .filter(|r| r.origin == Origin::Files)
        .collect()
}

/// The uploads of the log (`POST …/v1/files`).
fn uploads(env: &Env) -> Vec<RecordedRequest> {
    env.fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/v1/files"))
        .collect()
}

/// The names in `dir`, sorted (none when it does not exist).
fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn file_names(paths: &[std::path::PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect()
}

fn is_too_large(e: &Error) -> bool {
    matches!(e, Error::Transport(t) if t.kind == TransportErrorKind::BodyTooLarge)
}

/// The next request head [`tiny_server`] read.
fn next_head(heads: &std::sync::mpsc::Receiver<String>) -> String {
    heads.recv_timeout(HEAD_WAIT).expect("a request")
}

// ----------------------------------------------------------------------------------------------
// Streams
// ----------------------------------------------------------------------------------------------

scenario!(stream_tokens_to_done, |env| {
    env.fake.set_model(
        "acme/story",
        ModelScript::text(["Hello", " world", "!"])
            .starting_ticks(1)
            .processing_time(Duration::from_millis(200))
            .logs(["warming up"]),
    );
    let p = create(&env, "acme/story");
    let run = env.driver.stream_run(&p, None).expect("stream");
    let events = run.events();
    assert_eq!(outputs(&events), ["Hello", " world", "!"]);
    assert_eq!(
        events.first(),
        Some(&ReplicateEvent::Logs("warming up".into()))
    );
    assert_eq!(events.last(), Some(&ReplicateEvent::Done(None)));
    assert!(run.fused, "nothing after done");

    let reqs = files_requests(&env);
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert!(r.path.starts_with("/v1/streams/"), "{}", r.path);
    assert_eq!(r.header("authorization"), None);
    assert_eq!(r.header("accept"), Some("text/event-stream"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("last-event-id"), None);
    assert!(
        r.header("user-agent")
            .expect("a user agent")
            .starts_with("replicate-rust/")
    );

    // The convenience: the text of the output events.
    let p = create(&env, "fake/text-multiline");
    let text = env.driver.stream_text(&p).expect("stream_text");
    assert_eq!(text, MULTILINE_TOKENS.concat());
});

scenario!(stream_error_event_ends_the_stream, |env| {
    env.fake.set_model(
        "acme/broken",
        ModelScript::fail("CUDA out of memory").streams(true),
    );
    let p = create(&env, "acme/broken");
    let run = env.driver.stream_run(&p, None).expect("the stream opens");
    let (last, before) = run.items.split_last().expect("items");
    assert_eq!(
        last,
        &Err(Error::PredictionStreamError("CUDA out of memory".into()))
    );
    assert!(before.iter().all(Result::is_ok), "{before:?}");
    assert!(run.fused, "nothing after the error");
    let e = env.driver.stream_text(&p).expect_err("error event");
    assert!(matches!(e, Error::PredictionStreamError(_)), "{e:?}");
});

scenario!(missing_stream_is_gone, |env| {
    let url = format!("{}/v1/streams/nope", env.fake.stream_base_url());
    let e = env
        .driver
        .stream_url_run(&url, StreamOptions::default())
        .expect_err("no such stream");
    assert!(is_stream_gone(&e), "{e}");
});

scenario!(
    stream_of_a_model_that_does_not_stream_is_invalid_input,
    |env| {
        let p = create(&env, "fake/json");
        let e = env.driver.stream_run(&p, None).expect_err("no stream URL");
        assert!(matches!(e, Error::InvalidInput(_)), "{e}");
    }
);

scenario!(canceled_stream_reports_its_reason, |env| {
    env.fake.set_model(
        "acme/endless",
        ModelScript::text(["a", "b"])
            .starting_ticks(0)
            .processing_time(Duration::from_secs(30)),
    );
    let p = create(&env, "acme/endless");
    // Another client of the same kind cancels it while this one reads the stream.
    let canceler = {
        let (which, settings, id) = (env.which(), env.settings.clone(), p.id.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            driver(which, &settings).cancel(&id).expect("cancel")
        })
    };
    let run = env.driver.stream_run(&p, None).expect("stream");
    canceler.join().expect("canceler");
    let events = run.events();
    assert_eq!(
        events.last(),
        Some(&ReplicateEvent::Done(Some(DoneReason::Canceled)))
    );
    assert!(run.fused, "nothing after done");
});

scenario!(stream_retries_server_errors_then_reads, |env| {
    let sse = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n\
               : hi\n\nid: 9:0\nevent: output\ndata: one\n\nid: 9:1\nevent: done\ndata: {}\n\n";
    let (base, heads) = tiny_server(vec![
        "HTTP/1.1 503 Service Unavailable\r\nretry-after: 0\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            .to_owned(),
        sse.to_owned(),
    ]);
    let url = format!("{base}/v1/streams/abc");
    let opts = StreamOptions {
        initial_backoff: Duration::from_millis(10),
        ..StreamOptions::default()
    };
    let run = env.driver.stream_url_run(&url, opts).expect("stream");
    assert_eq!(
        run.events(),
        [
            ReplicateEvent::Output("one".into()),
            ReplicateEvent::Done(None)
        ]
    );
    for _ in 0..2 {
        let head = next_head(&heads);
        assert!(head.starts_with("GET /v1/streams/abc "), "{head}");
        assert_eq!(head_header(&head, "authorization"), None, "{head}");
        assert_eq!(head_header(&head, "accept"), Some("text/event-stream"));
    }
});

scenario!(non_event_stream_answer_is_refused_at_once, |env| {
    let (base, _heads) = tiny_server(vec![
        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi"
            .to_owned(),
    ]);
    let e = env
        .driver
        .stream_url_run(&format!("{base}/s"), StreamOptions::default())
        .expect_err("not an event stream");
    assert!(
        matches!(e, Error::Stream(ref m) if m.message.contains("text/html")),
        "{e}"
    );
});

scenario!(idle_streams_are_reopened_and_each_reopening_counts, |env| {
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
    env.rebuild(|s| s.timeout = Duration::from_millis(300));
    // Two silent reopenings allowed (the count starts again at each event).
    let opts = StreamOptions {
        max_reconnects: 2,
        initial_backoff: Duration::from_millis(10),
        ..StreamOptions::default()
    };
    let run = env
        .driver
        .stream_url_run(&format!("{base}/s"), opts)
        .expect("stream");
    assert_eq!(
        run.events(),
        [
            ReplicateEvent::Output("a".into()),
            ReplicateEvent::Output("b".into()),
            ReplicateEvent::Done(None)
        ]
    );
    let heads: Vec<String> = heads.try_iter().collect();
    assert_eq!(heads.len(), 3);
    assert_eq!(head_header(&heads[0], "last-event-id"), None);
    assert_eq!(head_header(&heads[1], "last-event-id"), Some("1:0"));
    assert_eq!(head_header(&heads[2], "last-event-id"), Some("1:0"));
});

scenario!(stream_sends_the_token_only_to_the_api_origin, |env| {
    let sse = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n\
               event: done\ndata: {}\n\n";
    let (base, heads) = tiny_server(vec![sse.to_owned(), sse.to_owned()]);
    // The stream is on the API's origin (a proxy serving streams itself): the token goes.
    env.rebuild(|s| s.base_url = format!("{base}/replicate"));
    let bearer = format!("Bearer {}", env.settings.token);
    let run = env
        .driver
        .stream_url_run(&format!("{base}/streams/x"), StreamOptions::default())
        .expect("stream");
    assert_eq!(run.items.len(), 1);
    assert_eq!(
        head_header(&next_head(&heads), "authorization"),
        Some(bearer.as_str())
    );
    // Unless told never to.
    let opts = StreamOptions {
        auth: StreamAuth::Never,
        ..StreamOptions::default()
    };
    env.driver
        .stream_url_run(&format!("{base}/streams/x"), opts)
        .expect("stream");
    assert_eq!(head_header(&next_head(&heads), "authorization"), None);
});

// ----------------------------------------------------------------------------------------------
// Downloads
// ----------------------------------------------------------------------------------------------

scenario!(
    download_outputs_to_a_directory_without_authorization,
    |env| {
        let p = run(&env, "fake/urls");
        let urls: Vec<String> = p.output_urls().into_iter().map(str::to_owned).collect();
        assert_eq!(urls.len(), 3);
        env.fake.clear_requests();

        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("nested/out");
        let paths = env
            .driver
            .download_outputs(&p, &dir)
            .expect("download_outputs");
        let names = file_names(&paths);
        assert_eq!(names, ["out-0.png", "out-1.png", "out-2.png"]);
        assert_eq!(list_dir(&dir), names, "no temporary file left");
        for path in &paths {
            let bytes = std::fs::read(path).expect("read");
            assert!(bytes.starts_with(b"\x89PNG"), "{}", path.display());
            assert!(path.starts_with(&dir));
        }
        let in_memory = env.driver.download(&urls[0]).expect("download");
        assert_eq!(in_memory, std::fs::read(&paths[0]).expect("read"));

        let reqs = files_requests(&env);
        assert_eq!(reqs.len(), 4);
        for r in &reqs {
            assert_eq!(r.header("authorization"), None, "{}", r.path);
            assert!(
                r.header("user-agent")
                    .expect("a user agent")
                    .starts_with("replicate-rust/")
            );
        }
        // Downloading again never replaces the files: the new ones get free names.
        let read_all = || -> Vec<Vec<u8>> {
            paths
                .iter()
                .map(|p| std::fs::read(p).expect("read"))
                .collect()
        };
        let before = read_all();
        let again = env.driver.download_outputs(&p, &dir).expect("again");
        assert_eq!(
            file_names(&again),
            ["out-0-1.png", "out-1-1.png", "out-2-1.png"]
        );
        assert_eq!(before, read_all());
        assert_eq!(list_dir(&dir).len(), 6, "no temporary file left");
        // Unless asked to.
        let replaced = env
            .driver
            .download_outputs_with(
                &p,
                &dir,
                SaveOptions {
                    overwrite: true,
                    ..SaveOptions::default()
                },
            )
            .expect("overwrite");
        assert_eq!(replaced, paths);
        assert_eq!(list_dir(&dir).len(), 6);
    }
);

scenario!(size_cap_without_content_length, |env| {
    // A chunked body with no Content-Length: the cap is enforced while reading.
    let body = "x".repeat(100);
    let chunked = format!(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let (base, _heads) = tiny_server(vec![chunked.clone(), chunked]);
    env.rebuild(|s| s.max_download_bytes = Some(50));
    let e = env
        .driver
        .download(&format!("{base}/big.bin"))
        .expect_err("over the cap");
    assert!(is_too_large(&e), "{e:?}");
    env.rebuild(|s| s.max_download_bytes = Some(100));
    let bytes = env
        .driver
        .download(&format!("{base}/big.bin"))
        .expect("at the cap");
    assert_eq!(bytes.len(), 100);
});

scenario!(download_outputs_retries_server_errors, |env| {
    let p = run(&env, "fake/urls");
    let url = p.output_url().expect("an output").to_owned();
    env.fake.clear_requests();
    env.fake.push_fault(
        FaultRule::new(
            Matcher::any().origin(Origin::Files).path_contains("/out-0"),
            Fault::status(502),
        )
        .times(2),
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let paths = env
        .driver
        .download_outputs(&p, tmp.path())
        .expect("retried to success");
    assert!(
        std::fs::read(&paths[0])
            .expect("read")
            .starts_with(b"\x89PNG")
    );
    let first: Vec<_> = files_requests(&env)
        .into_iter()
        .filter(|r| url.ends_with(&r.path))
        .collect();
    assert_eq!(first.len(), 3, "{first:#?}");
    assert_eq!(list_dir(tmp.path()).len(), 3);
});

scenario!(redirects_never_carry_authorization, |env| {
    let p = run(&env, "fake/urls");
    let url = p.output_url().expect("an output").to_owned();

    // The API origin (a proxy serving outputs) redirects to the file host: the first hop gets
    // the token, the file host does not.
    let (api, heads) = tiny_server(vec![format!(
        "HTTP/1.1 302 Found\r\nlocation: {url}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )]);
    let proxied = driver(
        env.which(),
        &Settings {
            token: "hk-proxy-token".to_owned(),
            base_url: format!("{api}/replicate"),
            ..env.settings.clone()
        },
    );
    env.fake.clear_requests();
    let bytes = proxied
        .download(&format!("{api}/outputs/out-0.png"))
        .expect("redirected download");
    assert!(bytes.starts_with(b"\x89PNG"));
    assert_eq!(
        head_header(&next_head(&heads), "authorization"),
        Some("Bearer hk-proxy-token")
    );
    let reqs = files_requests(&env);
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].header("authorization"), None);

    // A redirect on the file host itself is followed, still without a token.
    env.fake.clear_requests();
    env.fake.push_fault(FaultRule::new(
        Matcher::any().origin(Origin::Files).path_contains("/moved"),
        Fault::Redirect(url.clone()),
    ));
    let moved = format!("{}/moved/x.png", env.fake.files_base_url());
    assert_eq!(env.driver.download(&moved).expect("moved"), bytes);
    let reqs = files_requests(&env);
    assert_eq!(reqs.len(), 2);
    assert!(reqs.iter().all(|r| r.header("authorization").is_none()));
});

scenario!(download_redirect_loops_end, |env| {
    let files = env.fake.files_base_url();
    env.fake.push_fault(
        FaultRule::new(
            Matcher::any().origin(Origin::Files).path_contains("/loop"),
            Fault::Redirect(format!("{files}/loop")),
        )
        .times(100),
    );
    let e = env
        .driver
        .download(&format!("{files}/loop"))
        .expect_err("a loop");
    assert!(e.to_string().contains("too many redirects"), "{e}");
});

// ----------------------------------------------------------------------------------------------
// Files
// ----------------------------------------------------------------------------------------------

scenario!(files_roundtrip, |env| {
    let f = env
        .driver
        .upload_file(
            b"hello".to_vec(),
            "hello.txt",
            None,
            Some(json!({"purpose": "test"})),
        )
        .expect("upload");
    assert_eq!(f.name.as_deref(), Some("hello.txt"));
    assert_eq!(
        f.content_type.as_deref(),
        Some("text/plain"),
        "guessed from the name"
    );
    assert_eq!(f.size, Some(5));
    assert_eq!(f.metadata, json!({"purpose": "test"}));
    assert_eq!(env.driver.get_file(&f.id).expect("get").id, f.id);
    let listed: Vec<String> = env
        .driver
        .list_files_all()
        .expect("list")
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert!(listed.contains(&f.id));
    env.driver.delete_file(&f.id).expect("delete");
    assert_eq!(
        env.driver.get_file(&f.id).expect_err("deleted").status(),
        Some(404)
    );
    let uploads = uploads(&env);
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].header("transfer-encoding"), None);
});

scenario!(
    upload_path_sends_a_body_of_several_pieces_with_its_length,
    |env| {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("big.bin");
        let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).expect("write");
        let f = env.driver.upload_path(&path, None).expect("upload");
        assert_eq!(f.name.as_deref(), Some("big.bin"));
        assert_eq!(f.size, Some(content.len() as u64));
        assert_eq!(f.content_type.as_deref(), Some("application/octet-stream"));
        let uploads = uploads(&env);
        assert_eq!(uploads.len(), 1);
        assert!(
            uploads
                .iter()
                .all(|r| r.header("transfer-encoding").is_none()),
            "{:?}",
            uploads[0].headers
        );
    }
);

scenario!(prepare_input_files_by_threshold, |env| {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("mask.png");
    std::fs::write(&path, [1u8, 2, 3, 4, 5, 6, 7, 8]).expect("write");

    // Small: inline, no request.
    let v = env.driver.prepare_input_file(&path).expect("prepare");
    assert_eq!(v, json!("data:image/png;base64,AQIDBAUGBwg="));
    assert!(env.fake.requests().is_empty());

    // Over the threshold: uploaded, and the file's URL is the input.
    env.rebuild(|s| s.upload_threshold = Some(4));
    let v = env.driver.prepare_input_file(&path).expect("prepare");
    let url = v.as_str().expect("a URL");
    assert_eq!(uploads(&env).len(), 1);
    let files = env.driver.list_files_all().expect("list");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].urls.get.as_deref(), Some(url));
    assert_eq!(files[0].content_type.as_deref(), Some("image/png"));
    assert_eq!(files[0].name.as_deref(), Some("mask.png"));

    // Bytes in memory, and a missing file.
    let v = env
        .driver
        .prepare_input(FileInput::from_bytes("a.txt", "text/plain", b"hi".to_vec()))
        .expect("prepare");
    assert_eq!(v, json!("data:text/plain;base64,aGk="));
    let e = env
        .driver
        .prepare_input_file(&tmp.path().join("missing.png"))
        .expect_err("missing");
    assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
});

/// A server on 127.0.0.1 that accepts connections and holds them, reading nothing; the
/// connections it accepted are counted. Its thread ends when it is dropped.
struct HoldingServer {
    base: String,
    addr: std::net::SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl HoldingServer {
    fn start() -> HoldingServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counter, stopping) = (accepted.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                if stopping.load(Ordering::Acquire) {
                    return;
                }
                if let Ok(conn) = conn {
                    counter.fetch_add(1, Ordering::SeqCst);
                    held.push(conn);
                }
            }
        });
        HoldingServer {
            base: format!("http://{addr}"),
            addr,
            accepted,
            stop,
        }
    }
}

impl Drop for HoldingServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the accepting thread so it sees the flag and ends.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

scenario!(stalled_upload_is_a_timeout_and_not_repeated, |env| {
    // A server that never reads the request.
    let server = HoldingServer::start();
    env.rebuild(|s| {
        s.base_url = server.base.clone();
        s.timeout = Duration::from_millis(300);
    });
    // Larger than the socket buffers: the connection stops taking the body.
    let e = env
        .driver
        .upload_file(vec![7u8; 32 * 1024 * 1024], "big.bin", None, None)
        .expect_err("stalled");
    assert!(
        matches!(e, Error::CreateOutcomeUnknown(ref t) if t.kind == TransportErrorKind::Timeout),
        "{e:?}"
    );
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1);
});

/// A server on 127.0.0.1 that reads one request's body slowly (a pause of 50 ms after each MiB,
/// about 16 MiB/s, never silent for long), then answers 201 with a file object.
fn slow_reader() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        let Ok((conn, _)) = listener.accept() else {
            return;
        };
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut reader = BufReader::new(conn.try_clone().expect("clone"));
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).expect("head") == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let len: usize = head_header(&head, "content-length")
            .expect("a Content-Length")
            .parse()
            .expect("a length");
        let mut buf = vec![0u8; 256 * 1024];
        let (mut read, mut paused_at) = (0, 0);
        while read < len {
            let n = reader.read(&mut buf).expect("body");
            assert!(n > 0, "the body ended early");
            read += n;
            if read - paused_at >= 1024 * 1024 {
                paused_at = read;
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let body = r#"{"id":"f1","name":"big.bin","size":1,"urls":{"get":"https://x/f1"}}"#;
        let answer = format!(
            "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut conn = conn;
        conn.write_all(answer.as_bytes()).expect("answer");
    });
    base
}

scenario!(slow_uploads_that_progress_have_no_total_timeout, |env| {
    let base = slow_reader();
    env.rebuild(|s| {
        s.base_url = base;
        s.timeout = Duration::from_millis(600);
    });
    let started = Instant::now();
    // 24 MiB: over a second in all at the server's pace, more than the client's timeout.
    let f = env
        .driver
        .upload_file(vec![7u8; 24 * 1024 * 1024], "big.bin", None, None)
        .expect("a slow upload that progresses");
    assert_eq!(f.id, "f1");
    let elapsed = started.elapsed();
    assert!(elapsed > Duration::from_millis(600), "{elapsed:?}");
});
