//! Security properties of the SDK, one test each (or one per client), against the fake server.
//! `SECURITY.md` at the top of the workspace lists what the SDK promises and which of these tests
//! proves each promise.
//!
//! Every client built here runs with the process-wide tracing subscriber of [`capture`]
//! installed (TRACE level, the transports' `log` records included), so that
//! [`tracing_output_has_the_events_and_never_the_token`] checks what every test of this file
//! logged.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use replicate_fake::{
    BlockingFakeServer, Fault, FaultRule, Matcher, ModelScript, Options, Origin, RetryAfter,
};
use replicate_protocol::sse::ReplicateEvent;
use replicate_protocol::webhook::{
    self, WebhookError, WebhookHeaders, WebhookSecret, verify, verify_http,
};
use replicate_protocol::{
    Call, ClientSettings, Config, CreatePrediction, Error, Flow, GetPrediction, Prediction,
    RetryPolicy, Step, StreamOptions, Target, TransportErrorKind, WaitOptions, WebhookEvent,
};
use replicate_tests::{Which, fast_options};
use serde_json::{Value, json};

/// The token of every fake server and client here: distinctive, so that any leak is found.
const TOKEN: &str = "r8_SeCrEt0123456789abcdefSecurityTestToken";
/// Another distinctive token, for the 401 case.
const WRONG_TOKEN: &str = "r8_WrOnG9876543210fedcbaOtherSecretToken";

// ---------------------------------------------------------------------------------------------
// Harness

/// The buffer every tracing event (and `log` record) of this test binary is written to.
fn capture() -> &'static Arc<Mutex<Vec<u8>>> {
    static CAPTURE: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        use tracing_subscriber::util::SubscriberInitExt;
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
            .without_time()
            .with_writer(move || Sink(sink.clone()))
            .finish()
            // Also routes the `log` records of ureq, ureq-proto and reqwest here.
            .try_init()
            .expect("the only subscriber of this test binary");
        buffer
    })
}

/// A writer appending to the capture buffer.
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        lock(&self.0).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn fake() -> BlockingFakeServer {
    BlockingFakeServer::start_with(Options {
        token: TOKEN.to_owned(),
        ..fast_options()
    })
    .expect("fake server")
}

/// How a client is built.
#[derive(Clone)]
struct Knobs {
    token: String,
    base_url: String,
    timeout: Duration,
    retry: RetryPolicy,
    max_response_bytes: Option<u64>,
    max_download_bytes: Option<u64>,
}

impl Knobs {
    fn for_fake(fake: &BlockingFakeServer) -> Knobs {
        Knobs {
            token: TOKEN.to_owned(),
            base_url: fake.base_url(),
            timeout: Duration::from_secs(2),
            retry: RetryPolicy {
                max_retries: 2,
                initial_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(50),
                max_retry_after: Duration::from_secs(5),
                ..RetryPolicy::default()
            },
            max_response_bytes: None,
            max_download_bytes: None,
        }
    }
}

/// Either client, blocking.
enum Sdk {
    Ureq(replicate_ureq::Client),
    Reqwest(replicate_reqwest::Client, tokio::runtime::Runtime),
}

fn ureq_builder(k: &Knobs) -> replicate_ureq::ClientBuilder {
    let mut b = replicate_ureq::Client::builder()
        .token(&k.token)
        .base_url(&k.base_url)
        .timeout(k.timeout)
        .retry_policy(k.retry.clone())
        .poll_policy(replicate_protocol::PollPolicy::fixed(
            Duration::from_millis(20),
        ))
        .sync_wait(None);
    if let Some(n) = k.max_response_bytes {
        b = b.max_response_bytes(n);
    }
    if let Some(n) = k.max_download_bytes {
        b = b.max_download_bytes(n);
    }
    b
}

fn reqwest_builder(k: &Knobs) -> replicate_reqwest::ClientBuilder {
    let mut b = replicate_reqwest::Client::builder()
        .token(&k.token)
        .base_url(&k.base_url)
        .timeout(k.timeout)
        .retry_policy(k.retry.clone())
        .poll_policy(replicate_protocol::PollPolicy::fixed(
            Duration::from_millis(20),
        ))
        .sync_wait(None);
    if let Some(n) = k.max_response_bytes {
        b = b.max_response_bytes(n);
    }
    if let Some(n) = k.max_download_bytes {
        b = b.max_download_bytes(n);
    }
    b
}

impl Sdk {
    fn try_new(which: Which, k: &Knobs) -> Result<Sdk, Error> {
        capture();
        Ok(match which {
            Which::Ureq => Sdk::Ureq(ureq_builder(k).build()?),
            Which::Reqwest => Sdk::Reqwest(
                reqwest_builder(k).build()?,
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime"),
            ),
        })
    }

    fn new(which: Which, k: &Knobs) -> Sdk {
        Sdk::try_new(which, k).expect("client")
    }

    fn create(&self, model: &str) -> Result<Prediction, Error> {
        let create = CreatePrediction::new(Target::parse(model)?);
        self.create_with(create)
    }

    fn create_with(&self, create: CreatePrediction) -> Result<Prediction, Error> {
        match self {
            Sdk::Ureq(c) => c.create(create),
            Sdk::Reqwest(c, rt) => rt.block_on(c.create(create)),
        }
    }

    fn get(&self, id: &str) -> Result<Prediction, Error> {
        match self {
            Sdk::Ureq(c) => c.get(id),
            Sdk::Reqwest(c, rt) => rt.block_on(c.get(id)),
        }
    }

    fn list(&self) -> Result<Vec<Prediction>, Error> {
        match self {
            Sdk::Ureq(c) => c.list().collect(),
            Sdk::Reqwest(c, rt) => {
                use futures_util::TryStreamExt;
                rt.block_on(c.list().try_collect())
            }
        }
    }

    fn run(&self, model: &str) -> Result<Value, Error> {
        match self {
            Sdk::Ureq(c) => c.run(model, json!({})),
            Sdk::Reqwest(c, rt) => rt.block_on(c.run(model, json!({}))),
        }
    }

    /// Runs to completion and returns the prediction (whatever its status).
    fn run_prediction(&self, model: &str) -> Prediction {
        let p = self.create(model).expect("create");
        match self {
            Sdk::Ureq(c) => c.wait_with(&p.id, c.wait_options()),
            Sdk::Reqwest(c, rt) => rt.block_on(c.wait_with(&p.id, c.wait_options())),
        }
        .expect("wait")
    }

    fn run_with(&self, create: CreatePrediction, opts: WaitOptions) -> Result<Prediction, Error> {
        match self {
            Sdk::Ureq(c) => c.run_with(create, opts),
            Sdk::Reqwest(c, rt) => rt.block_on(c.run_with(create, opts)),
        }
    }

    fn wait_options_within(&self, timeout: Duration) -> WaitOptions {
        match self {
            Sdk::Ureq(c) => c.wait_options_within(timeout),
            Sdk::Reqwest(c, _) => c.wait_options_within(timeout),
        }
    }

    /// The client's own `stream_text` (default options, capped at `max_response_bytes`).
    fn stream_text(&self, p: &Prediction) -> Result<String, Error> {
        match self {
            Sdk::Ureq(c) => c.stream_text(p),
            Sdk::Reqwest(c, rt) => rt.block_on(c.stream_text(p)),
        }
    }

    /// Every event of the stream at `url`, with fast reconnections.
    fn stream_url(&self, url: &str) -> Result<Vec<ReplicateEvent>, Error> {
        let opts = StreamOptions {
            max_reconnects: 2,
            initial_backoff: Duration::from_millis(10),
            ..StreamOptions::default()
        };
        match self {
            Sdk::Ureq(c) => c.stream_url(url, opts)?.collect(),
            Sdk::Reqwest(c, rt) => rt.block_on(async {
                use futures_util::TryStreamExt;
                c.stream_url(url, opts).await?.try_collect().await
            }),
        }
    }

    fn stream(&self, p: &Prediction) -> Result<Vec<ReplicateEvent>, Error> {
        self.stream_url(p.stream_url().expect("a stream URL"))
    }

    fn download(&self, url: &str) -> Result<Vec<u8>, Error> {
        match self {
            Sdk::Ureq(c) => c.download(url),
            Sdk::Reqwest(c, rt) => rt.block_on(c.download(url)),
        }
    }

    fn download_outputs(
        &self,
        p: &Prediction,
        dir: &Path,
    ) -> Result<Vec<std::path::PathBuf>, Error> {
        match self {
            Sdk::Ureq(c) => c.download_outputs(p, dir),
            Sdk::Reqwest(c, rt) => rt.block_on(c.download_outputs(p, dir)),
        }
    }

    fn debug(&self) -> String {
        match self {
            Sdk::Ureq(c) => format!("{c:?} {c:#?}"),
            Sdk::Reqwest(c, _) => format!("{c:?} {c:#?}"),
        }
    }
}

/// Declares a test per client.
macro_rules! both {
    ($name:ident, |$which:ident| $body:block) => {
        mod $name {
            use super::*;
            fn body($which: Which) $body
            #[test]
            fn ureq() {
                body(Which::Ureq)
            }
            #[test]
            fn reqwest() {
                body(Which::Reqwest)
            }
        }
    };
}

/// Fails when `text` shows a token, or any bearer credential.
#[track_caller]
fn assert_no_secret(what: &str, text: &str) {
    for secret in [TOKEN, WRONG_TOKEN, "SeCrEt0123456789", "WrOnG9876543210"] {
        assert!(!text.contains(secret), "{what} shows a token: {text}");
    }
    assert!(
        !text.contains("Bearer"),
        "{what} shows a bearer credential: {text}"
    );
}

/// Checks `Display`, `Debug` and pretty `Debug` of an error.
#[track_caller]
fn assert_error_clean(what: &str, e: &Error) {
    assert_no_secret(what, &format!("{e}"));
    assert_no_secret(what, &format!("{e:?}"));
    assert_no_secret(what, &format!("{e:#?}"));
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

fn first_url(output: &Value) -> String {
    output
        .as_array()
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .expect("a list of URLs")
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// The token never appears in Debug or Display

#[test]
fn token_is_absent_from_debug_and_display_of_config_token_and_settings() {
    let token = replicate_protocol::ApiToken::new(TOKEN);
    assert_no_secret("ApiToken", &format!("{token} {token:?} {token:#?}"));

    let cfg = Config::new(TOKEN)
        .with_base_url("https://proxy.example/replicate")
        .expect("base URL");
    assert_no_secret("Config", &format!("{cfg:?} {cfg:#?}"));
    assert_no_secret(
        "Config::token",
        &format!("{} {:?}", cfg.token(), cfg.token()),
    );

    let settings = ClientSettings {
        token: Some(token.clone()),
        ..ClientSettings::default()
    };
    assert_no_secret("ClientSettings", &format!("{settings:?} {settings:#?}"));
    let resolved = settings.resolve().expect("resolve");
    assert_no_secret("Resolved", &format!("{resolved:?} {resolved:#?}"));

    // A request built by the protocol marks Authorization sensitive: Debug hides its value.
    let request = cfg
        .request(http::Method::GET, "/predictions", None)
        .expect("request");
    assert!(request.headers()["authorization"].is_sensitive());
    assert_no_secret("Request", &format!("{request:?} {request:#?}"));
    let mut call = Call::new(GetPrediction::new("abc"), cfg.clone());
    let Step::Send(outgoing) = call.poll(Instant::now()) else {
        panic!("a request to send")
    };
    assert_no_secret("Outgoing", &format!("{outgoing:?} {outgoing:#?}"));
    assert_no_secret("Call", &format!("{call:?}"));

    // Sessions and plans that hold the configuration (and send the token to the API origin).
    let same_origin = "https://proxy.example/replicate/v1/files/abc/download";
    let plan = replicate_protocol::Download::new(&cfg, same_origin).expect("plan");
    assert!(
        plan.request()
            .expect("request")
            .headers()
            .contains_key("authorization")
    );
    assert_no_secret("Download", &format!("{plan:?} {plan:#?}"));
    let session = replicate_protocol::StreamSession::new(
        &cfg,
        "https://proxy.example/replicate/v1/streams/abc",
        StreamOptions::default(),
    )
    .expect("session");
    assert!(session.sends_token());
    assert_no_secret("StreamSession", &format!("{session:?} {session:#?}"));

    // A base URL with credentials is refused without echoing them.
    let e = Config::new("x")
        .with_base_url(&format!("https://user:{TOKEN}@proxy.example"))
        .expect_err("credentials in the URL");
    assert!(matches!(e, Error::InvalidBaseUrl(_)), "{e:?}");
    assert_error_clean("InvalidBaseUrl", &e);
}

#[test]
fn token_is_absent_from_debug_of_both_clients_and_builders() {
    let fake = fake();
    let k = Knobs::for_fake(&fake);
    let ub = ureq_builder(&k);
    assert_no_secret("ureq ClientBuilder", &format!("{ub:?} {ub:#?}"));
    let rb = reqwest_builder(&k);
    assert_no_secret("reqwest ClientBuilder", &format!("{rb:?} {rb:#?}"));
    for which in [Which::Ureq, Which::Reqwest] {
        let sdk = Sdk::new(which, &k);
        assert_no_secret("Client", &sdk.debug());
        // Streams and pages hold the client (and, on the API origin, send the token).
        let p = sdk.create("fake/text").expect("create");
        match &sdk {
            Sdk::Ureq(c) => {
                let events = c.stream(&p).expect("stream");
                assert_no_secret("EventStream", &format!("{events:?} {events:#?}"));
                let pages = c.list();
                assert_no_secret("Pages", &format!("{pages:?}"));
            }
            Sdk::Reqwest(c, rt) => {
                let events = rt.block_on(c.stream(&p)).expect("stream");
                assert_no_secret("EventStream", &format!("{events:?} {events:#?}"));
                let pages = c.list();
                assert_no_secret("Pages", &format!("{pages:?}"));
            }
        }
    }
}

both!(token_is_absent_from_every_error, |which| {
    let fake = fake();
    let k = Knobs::for_fake(&fake);
    let sdk = Sdk::new(which, &k);
    let no_retry = Sdk::new(
        which,
        &Knobs {
            retry: RetryPolicy::none(),
            timeout: Duration::from_millis(300),
            ..k.clone()
        },
    );
    let mut seen: Vec<(String, Error)> = Vec::new();
    let mut got = |what: &str, e: Error| seen.push((what.to_owned(), e));

    // 401 with a wrong token (neither token may show).
    let wrong = Sdk::new(
        which,
        &Knobs {
            token: WRONG_TOKEN.to_owned(),
            ..k.clone()
        },
    );
    got("401", wrong.get("x").expect_err("401"));
    got("404", sdk.get("doesnotexist").expect_err("404"));

    let p = sdk.create("acme/model").expect("create");
    let get = Matcher::new("GET", &format!("/v1/predictions/{}", p.id));
    fake.push_fault(FaultRule::new(get.clone(), Fault::GarbageJson));
    got("garbage JSON", sdk.get(&p.id).expect_err("decode"));
    fake.push_fault(FaultRule::new(get.clone(), Fault::TruncatedJson));
    got("truncated JSON", sdk.get(&p.id).expect_err("decode"));
    fake.push_fault(FaultRule::new(get.clone(), Fault::ResetAfterRead));
    got("reset", no_retry.get(&p.id).expect_err("reset"));
    fake.push_fault(FaultRule::new(
        get.clone(),
        Fault::Delay(Duration::from_secs(1)),
    ));
    got("timeout", no_retry.get(&p.id).expect_err("timeout"));
    fake.push_fault(FaultRule::new(get.clone(), Fault::HugeBody(40 << 20)));
    got("body too large", sdk.get(&p.id).expect_err("too large"));
    fake.push_fault(FaultRule::new(
        get.clone(),
        Fault::Redirect(format!("{}/elsewhere", fake.files_base_url())),
    ));
    got("redirect", sdk.get(&p.id).expect_err("302"));
    fake.push_fault(FaultRule::new(get, Fault::throttled(60)));
    got("429 past max_retry_after", sdk.get(&p.id).expect_err("429"));

    // Nothing listens on this port: a connection error.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    let refused = Sdk::new(
        which,
        &Knobs {
            base_url: closed,
            ..k.clone()
        },
    );
    got("connection refused", refused.get("x").expect_err("refused"));

    fake.push_fault(FaultRule::new(
        Matcher::new("POST", "/predictions"),
        Fault::ResetAfterRead,
    ));
    got(
        "create outcome unknown",
        sdk.create("acme/model").expect_err("lost"),
    );

    let slow = CreatePrediction::new(Target::parse("fake/slow").expect("target"));
    got(
        "deadline",
        sdk.run_with(slow, sdk.wait_options_within(Duration::from_millis(50)))
            .expect_err("deadline"),
    );
    got("failed", sdk.run("fake/fail").expect_err("failed"));
    got("canceled", sdk.run("fake/cancel").expect_err("canceled"));
    got("aborted", sdk.run("fake/abort").expect_err("aborted"));
    got(
        "not finished",
        sdk.create("fake/slow")
            .expect("create")
            .into_result()
            .expect_err("running"),
    );

    // Streams: an error event, a gone stream, a redirect.
    fake.set_model(
        "acme/stream-fail",
        ModelScript::fail("out of memory").streams(true),
    );
    let failing = sdk.create("acme/stream-fail").expect("create");
    got(
        "stream error event",
        sdk.stream(&failing).expect_err("error event"),
    );
    let gone = format!("{}/v1/streams/doesnotexist", fake.stream_base_url());
    got("stream gone", sdk.stream_url(&gone).expect_err("404"));
    let text = sdk.create("fake/text").expect("create");
    fake.push_fault(FaultRule::new(
        Matcher::new("GET", "/v1/streams/").origin(Origin::Files),
        Fault::Redirect(format!("{}/v1/elsewhere", fake.base_url())),
    ));
    got("stream redirect", sdk.stream(&text).expect_err("redirect"));

    // Outputs: an expired link; bad input.
    let expired = format!("{}/xezq/nothing/out-0.png", fake.files_base_url());
    got("expired output", sdk.download(&expired).expect_err("404"));
    got(
        "invalid input",
        sdk.create("not a model").expect_err("invalid"),
    );

    // A token that cannot be a header value is refused without being echoed.
    let bad = Sdk::try_new(
        which,
        &Knobs {
            token: format!("{TOKEN}\n"),
            ..k.clone()
        },
    )
    .err()
    .expect("invalid token");
    got("invalid token", bad);
    let bad_url = Sdk::try_new(
        which,
        &Knobs {
            base_url: format!("https://user:{TOKEN}@proxy.example"),
            ..k.clone()
        },
    )
    .err()
    .expect("invalid base URL");
    got("invalid base URL", bad_url);

    // Every kind of error was produced, and none shows the token.
    let variant = |e: &Error| -> String {
        match e {
            Error::Transport(t) => format!("Transport({:?})", t.kind),
            Error::CreateOutcomeUnknown(_) => "CreateOutcomeUnknown".into(),
            other => format!("{other:?}")
                .split(['(', ' ', '{'])
                .next()
                .unwrap_or_default()
                .to_owned(),
        }
    };
    let kinds: std::collections::BTreeSet<String> = seen.iter().map(|(_, e)| variant(e)).collect();
    for expected in [
        "Api",
        "Decode",
        "Transport(Io)",
        "Transport(Timeout)",
        "Transport(BodyTooLarge)",
        "Transport(Connect)",
        "CreateOutcomeUnknown",
        "DeadlineExceeded",
        "PredictionFailed",
        "PredictionCanceled",
        "PredictionAborted",
        "NotFinished",
        "PredictionStreamError",
        "Stream",
        "Output",
        "InvalidInput",
        "InvalidToken",
        "InvalidBaseUrl",
    ] {
        assert!(
            kinds.contains(expected),
            "no {expected} error among {kinds:?}"
        );
    }
    for (what, e) in &seen {
        assert_error_clean(what, e);
    }
});

// ---------------------------------------------------------------------------------------------
// Tracing

/// The lines of the capture buffer.
fn captured() -> String {
    String::from_utf8_lossy(&lock(capture())).into_owned()
}

/// The text of ureq-proto's TRACE hex dumps, reassembled: each line shows 16 bytes as hex, then
/// as characters (`.` for anything else than letters, digits and punctuation).
fn ureq_proto_dump(log: &str) -> String {
    log.lines()
        .filter_map(|l| l.split_once("ureq_proto::util: ").map(|(_, m)| m))
        .filter_map(|m| m.get(41..))
        .collect()
}

#[test]
fn tracing_output_has_the_events_and_never_the_token() {
    for which in [Which::Ureq, Which::Reqwest] {
        let fake = fake();
        let sdk = Sdk::new(which, &Knobs::for_fake(&fake));
        // A retried create, a retried get, a list.
        fake.push_fault(FaultRule::new(
            Matcher::new("POST", "/predictions"),
            Fault::Status {
                status: 429,
                retry_after: Some(RetryAfter::Seconds(0)),
                body: None,
            },
        ));
        let p = sdk.create("fake/text").expect("create after a 429");
        fake.push_fault(FaultRule::new(
            Matcher::new("GET", &p.id),
            Fault::ResetAfterRead,
        ));
        sdk.get(&p.id).expect("get after a reset");
        sdk.list().expect("list");
        // A stream, a download redirected off the API origin, a retried download.
        sdk.stream(&p).expect("stream");
        let url = first_url(&sdk.run("fake/urls").expect("run"));
        let path = url
            .strip_prefix(&fake.files_base_url())
            .expect("on the files origin");
        fake.push_fault(FaultRule::new(
            Matcher::new("GET", "/v1/files/abc/download"),
            Fault::Redirect(url.clone()),
        ));
        sdk.download(&format!("{}/v1/files/abc/download", fake.base_url()))
            .expect("redirected download");
        fake.push_fault(FaultRule::new(
            Matcher::new("GET", path),
            Fault::status(503),
        ));
        sdk.download(&url).expect("retried download");
        sdk.get("doesnotexist").expect_err("404");
    }

    let log = captured();
    for event in [
        "replicate_ureq: replicate: sending request",
        "replicate_reqwest: replicate: sending request",
        "replicate: response",
        "status=429",
        "replicate: request failed",
        "replicate: retrying after a failure",
        // Streams and downloads: the same loop, their heads logged, then read as they come.
        "replicate: response head",
        // Whether each request (API call, stream, download hop) carries the token.
        "authorized=true",
        "authorized=false",
        "status=404",
        // The transports' own `log` records are captured too.
        "ureq::",
    ] {
        assert!(log.contains(event), "no {event:?} in the tracing output");
    }

    // ureq-proto (ureq's HTTP/1.1 codec) hex-dumps every byte it writes at `log` TRACE level,
    // the request head included: the one known exposure, documented in SECURITY.md. Everything
    // else, at every level, is clean.
    let (proto, rest): (Vec<&str>, Vec<&str>) =
        log.lines().partition(|l| l.contains("ureq_proto::"));
    let rest = rest.join("\n");
    assert_no_secret("the tracing output", &rest);
    assert!(
        !rest.to_ascii_lowercase().contains("authorization:"),
        "a header was logged"
    );
    let dump = ureq_proto_dump(&proto.join("\n"));
    assert!(
        dump.contains(TOKEN),
        "ureq-proto no longer dumps the request head at TRACE: update SECURITY.md ({} lines)",
        proto.len()
    );
}

// ---------------------------------------------------------------------------------------------
// Where the token goes

both!(api_requests_never_follow_a_redirect, |which| {
    let fake = fake();
    let sdk = Sdk::new(which, &Knobs::for_fake(&fake));
    let p = sdk.create("acme/model").expect("create");
    for (method, path) in [
        ("GET", format!("/v1/predictions/{}", p.id)),
        ("POST", "/predictions".to_owned()),
    ] {
        fake.push_fault(FaultRule::new(
            Matcher::new(method, &path).origin(Origin::Api),
            Fault::Redirect(format!("{}/stolen{path}", fake.files_base_url())),
        ));
    }
    let e = sdk.get(&p.id).expect_err("302");
    assert_eq!(e.status(), Some(302), "{e}");
    let e = sdk.create("acme/model").expect_err("302");
    assert_eq!(e.status(), Some(302), "{e}");
    let elsewhere: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.origin == Origin::Files)
        .collect();
    assert!(
        elsewhere.is_empty(),
        "a redirect was followed: {elsewhere:#?}"
    );
});

both!(streams_never_follow_a_redirect, |which| {
    let fake = fake();
    let sdk = Sdk::new(which, &Knobs::for_fake(&fake));
    let p = sdk.create("fake/text").expect("create");
    fake.clear_requests();
    fake.push_fault(FaultRule::new(
        Matcher::new("GET", "/v1/streams/").origin(Origin::Files),
        Fault::Redirect(format!("{}/v1/stolen", fake.base_url())),
    ));
    let e = sdk.stream(&p).expect_err("redirect");
    assert!(matches!(e, Error::Stream(_)), "{e:?}");
    let log = fake.requests();
    assert_eq!(log.len(), 1, "only the stream request: {log:#?}");
    assert_eq!(log[0].origin, Origin::Files);
    assert_eq!(log[0].header("authorization"), None);
});

both!(
    download_redirected_off_the_api_origin_loses_the_token,
    |which| {
        let fake = fake();
        let sdk = Sdk::new(which, &Knobs::for_fake(&fake));
        let url = first_url(&sdk.run("fake/urls").expect("run"));
        let expected = sdk.download(&url).expect("download");
        fake.clear_requests();
        // A download on the API origin (which may have the token) redirected to the files origin.
        fake.push_fault(FaultRule::new(
            Matcher::new("GET", "/v1/files/abc/download").origin(Origin::Api),
            Fault::Redirect(url.clone()),
        ));
        let bytes = sdk
            .download(&format!("{}/v1/files/abc/download", fake.base_url()))
            .expect("redirected download");
        assert_eq!(bytes, expected);
        let log = fake.requests();
        assert_eq!(log.len(), 2, "{log:#?}");
        assert_eq!(log[0].origin, Origin::Api);
        assert_eq!(log[0].header("authorization"), Some(bearer().as_str()));
        assert_eq!(log[1].origin, Origin::Files);
        assert_eq!(
            log[1].header("authorization"),
            None,
            "the token followed the redirect"
        );
    }
);

both!(
    outputs_and_streams_on_another_host_never_get_the_token,
    |which| {
        let fake = fake();
        let sdk = Sdk::new(which, &Knobs::for_fake(&fake));
        // A stream, a download, a batch download to a directory.
        let p = sdk.create("fake/text").expect("create");
        sdk.stream_text(&p).expect("stream");
        let urls = sdk.run_prediction("fake/urls");
        sdk.download(&first_url(&urls.output)).expect("download");
        let dir = tempfile::tempdir().expect("temp dir");
        let files = sdk.download_outputs(&urls, dir.path()).expect("outputs");
        assert_eq!(files.len(), 3);
        let log = fake.requests();
        let (api, files): (Vec<_>, Vec<_>) = log.iter().partition(|r| r.origin == Origin::Api);
        assert!(files.len() >= 5, "a stream and four downloads: {files:#?}");
        for r in &files {
            assert_eq!(r.header("authorization"), None, "{r:?}");
        }
        // The API origin gets it on every request.
        for r in &api {
            assert_eq!(r.header("authorization"), Some(bearer().as_str()), "{r:?}");
        }
    }
);

// ---------------------------------------------------------------------------------------------
// Response bodies are capped

fn is_too_large(e: &Error) -> bool {
    matches!(e, Error::Transport(t) | Error::CreateOutcomeUnknown(t) if t.kind == TransportErrorKind::BodyTooLarge)
}

both!(api_response_bodies_are_capped, |which| {
    let fake = fake();
    let sdk = Sdk::new(which, &Knobs::for_fake(&fake));
    // 50 MiB against the default 32 MiB cap: refused, and not retried.
    let p = sdk.create("acme/model").expect("create");
    fake.clear_requests();
    fake.push_fault(FaultRule::new(Matcher::new("GET", &p.id), Fault::HugeBody(50 << 20)).times(5));
    let e = sdk.get(&p.id).expect_err("too large");
    assert!(is_too_large(&e), "{e:?}");
    assert_eq!(
        fake.requests().len(),
        1,
        "a body over the cap is not fetched again"
    );
    fake.clear_faults();
    // A small cap on a real answer.
    for _ in 0..5 {
        sdk.create("acme/model").expect("create");
    }
    let capped = Sdk::new(
        which,
        &Knobs {
            max_response_bytes: Some(1024),
            ..Knobs::for_fake(&fake)
        },
    );
    let e = capped.list().expect_err("a page over 1 KiB");
    assert!(is_too_large(&e), "{e:?}");
    assert_eq!(sdk.list().expect("uncapped").len(), 6);
});

both!(streamed_text_is_capped, |which| {
    let fake = fake();
    let text = replicate_fake::TEXT_TOKENS.concat();
    let capped = |bytes: u64| {
        Sdk::new(
            which,
            &Knobs {
                max_response_bytes: Some(bytes),
                ..Knobs::for_fake(&fake)
            },
        )
    };
    let p = Sdk::new(which, &Knobs::for_fake(&fake))
        .create("fake/text")
        .expect("create");
    let sdk = capped(text.len() as u64 - 1);
    let e = sdk.stream_text(&p).expect_err("over the cap");
    assert!(is_too_large(&e), "{e:?}");
    let sdk = capped(text.len() as u64);
    assert_eq!(sdk.stream_text(&p).expect("at the cap"), text);
});

both!(downloads_are_capped, |which| {
    let fake = fake();
    let sdk = Sdk::new(
        which,
        &Knobs {
            max_download_bytes: Some(1 << 20),
            ..Knobs::for_fake(&fake)
        },
    );
    let p = sdk.run_prediction("fake/urls");
    let url = first_url(&p.output);
    let path = url
        .strip_prefix(&fake.files_base_url())
        .expect("files origin")
        .to_owned();
    let rule = || FaultRule::new(Matcher::new("GET", &path), Fault::HugeBody(50 << 20));
    fake.push_fault(rule());
    let e = sdk.download(&url).expect_err("over the cap");
    assert!(is_too_large(&e), "{e:?}");
    // To a directory: the partial file is removed.
    fake.push_fault(rule());
    let dir = tempfile::tempdir().expect("temp dir");
    let e = sdk
        .download_outputs(&p, dir.path())
        .expect_err("over the cap");
    assert!(is_too_large(&e), "{e:?}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
});

// ---------------------------------------------------------------------------------------------
// Webhooks (the unit tests are in crates/protocol/tests/webhook.rs)

/// A `completed` webhook the fake signed (an implementation independent of the SDK's).
fn a_delivery() -> (String, replicate_fake::WebhookDelivery) {
    let fake = fake();
    let sdk = Sdk::new(Which::Ureq, &Knobs::for_fake(&fake));
    let create = CreatePrediction::new(Target::parse("acme/model").expect("target")).webhook(
        "https://hooks.example/replicate",
        &[WebhookEvent::Completed],
    );
    let p = sdk.create_with(create).expect("create");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = fake
            .webhook_deliveries()
            .into_iter()
            .find(|d| d.event == "completed");
        if let Some(d) = found {
            assert!(String::from_utf8_lossy(&d.body).contains(&p.id));
            return (fake.webhook_secret().to_owned(), d);
        }
        assert!(Instant::now() < deadline, "no completed webhook");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn webhook_verification_rejects_stale_wrong_tampered_and_malformed() {
    let (secret, d) = a_delivery();
    let secret = WebhookSecret::parse(&secret).expect("secret");
    let ts = d.timestamp.to_string();
    let now = i64::try_from(d.timestamp).expect("timestamp");
    let headers = WebhookHeaders::new(&d.webhook_id, &ts, &d.signature);
    verify(&secret, &headers, &d.body, now).expect("the fake's delivery verifies");

    // Stale and future timestamps (5 minutes of tolerance).
    assert_eq!(
        verify(&secret, &headers, &d.body, now + 301),
        Err(WebhookError::TimestampTooOld)
    );
    assert_eq!(
        verify(&secret, &headers, &d.body, now - 301),
        Err(WebhookError::TimestampTooNew)
    );
    // A replayed signature with a fresh timestamp does not verify.
    let fresh = (now + 1).to_string();
    assert_eq!(
        verify(
            &secret,
            &WebhookHeaders::new(&d.webhook_id, &fresh, &d.signature),
            &d.body,
            now
        ),
        Err(WebhookError::NoMatchingSignature)
    );
    // Wrong secret.
    let other = WebhookSecret::from_key_bytes(*b"another-secret-of-thirty-two-by!").expect("key");
    assert_eq!(
        verify(&other, &headers, &d.body, now),
        Err(WebhookError::NoMatchingSignature)
    );
    // Tampered body, id.
    let mut body = d.body.clone();
    body.push(b' ');
    assert_eq!(
        verify(&secret, &headers, &body, now),
        Err(WebhookError::NoMatchingSignature)
    );
    let tampered = String::from_utf8_lossy(&d.body).replace("succeeded", "failed");
    assert_eq!(
        verify(&secret, &headers, tampered.as_bytes(), now),
        Err(WebhookError::NoMatchingSignature)
    );
    assert_eq!(
        verify(
            &secret,
            &WebhookHeaders::new("msg_other", &ts, &d.signature),
            &d.body,
            now
        ),
        Err(WebhookError::NoMatchingSignature)
    );
    // Malformed headers.
    for (timestamp, signature, error) in [
        ("", d.signature.as_str(), WebhookError::InvalidTimestamp),
        ("-5", d.signature.as_str(), WebhookError::InvalidTimestamp),
        (
            "12abc",
            d.signature.as_str(),
            WebhookError::InvalidTimestamp,
        ),
        (ts.as_str(), "", WebhookError::MalformedSignatureHeader),
        (ts.as_str(), "v1,", WebhookError::MalformedSignatureHeader),
        (
            ts.as_str(),
            "v1,!!!not-base64!!!",
            WebhookError::MalformedSignatureHeader,
        ),
        (
            ts.as_str(),
            "v1,c2hvcnQ=",
            WebhookError::MalformedSignatureHeader,
        ),
        (
            ts.as_str(),
            &d.signature.replacen("v1,", "v2,", 1),
            WebhookError::MalformedSignatureHeader,
        ),
        (
            ts.as_str(),
            &d.signature.replacen("v1,", "v1 ", 1),
            WebhookError::MalformedSignatureHeader,
        ),
    ] {
        assert_eq!(
            verify(
                &secret,
                &WebhookHeaders::new(&d.webhook_id, timestamp, signature),
                &d.body,
                now
            ),
            Err(error),
            "timestamp {timestamp:?}, signature {signature:?}"
        );
    }
    // Missing headers.
    let mut map = http::HeaderMap::new();
    map.insert("webhook-id", d.webhook_id.parse().expect("value"));
    map.insert("webhook-timestamp", ts.parse().expect("value"));
    assert_eq!(
        verify_http(&secret, &map, &d.body, now),
        Err(WebhookError::MissingHeader("webhook-signature"))
    );
    map.insert("webhook-signature", d.signature.parse().expect("value"));
    verify_http(&secret, &map, &d.body, now).expect("complete headers verify");
}

#[test]
fn webhook_signature_differing_in_one_byte_is_rejected() {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    let (secret, d) = a_delivery();
    let secret = WebhookSecret::parse(&secret).expect("secret");
    let ts = d.timestamp.to_string();
    let now = i64::try_from(d.timestamp).expect("timestamp");
    let tag = STANDARD
        .decode(d.signature.strip_prefix("v1,").expect("a v1 signature"))
        .expect("base64");
    assert_eq!(tag.len(), 32);
    for index in [0, 15, 31] {
        for flip in [0x01u8, 0x80] {
            let mut forged = tag.clone();
            forged[index] ^= flip;
            let signature = format!("v1,{}", STANDARD.encode(&forged));
            assert_eq!(
                verify(
                    &secret,
                    &WebhookHeaders::new(&d.webhook_id, &ts, &signature),
                    &d.body,
                    now
                ),
                Err(WebhookError::NoMatchingSignature),
                "byte {index} ^ {flip:#x}"
            );
        }
    }
    // The real signature still verifies after forged ones around it.
    let several = format!("v1,{} {}", STANDARD.encode([0u8; 32]), d.signature);
    verify(
        &secret,
        &WebhookHeaders::new(&d.webhook_id, &ts, &several),
        &d.body,
        now,
    )
    .expect("one matching signature among several");
    // And what the SDK signs is what the fake signed.
    assert_eq!(
        webhook::sign(&secret, &d.webhook_id, now, &d.body),
        d.signature
    );
}

/// The source of `crates/...` relative to this crate.
fn workspace_file(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn webhook_signatures_are_compared_in_constant_time() {
    let source = workspace_file("crates/protocol/src/webhook.rs");
    assert!(source.contains("use subtle::ConstantTimeEq;"));
    let start = source
        .find("pub fn verify_with_tolerance(")
        .expect("the verification function");
    let end = start + source[start..].find("\n}\n").expect("its end");
    let body = &source[start..end];
    assert!(
        body.contains(".ct_eq("),
        "the tag is compared with subtle's ct_eq"
    );
    for op in ["==", "!=", ".eq(", "starts_with", "memcmp"] {
        assert!(
            !body.contains(op),
            "verify_with_tolerance compares with {op:?}: use ct_eq"
        );
    }
    let manifest = workspace_file("crates/protocol/Cargo.toml");
    assert!(manifest.contains("subtle"), "subtle is a dependency");
}

// ---------------------------------------------------------------------------------------------
// TLS

/// The `[[package]]` names of Cargo.lock.
fn locked_packages() -> Vec<String> {
    workspace_file("Cargo.lock")
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .map(|n| n.trim_end_matches('"').to_owned())
        .collect()
}

/// The `[features]` table of a manifest, up to the next table.
fn features_table(manifest: &str) -> String {
    manifest
        .split("\n[features]\n")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .unwrap_or_else(|| panic!("no [features] in {manifest}"))
        .to_owned()
}

#[test]
fn tls_is_rustls_with_webpki_or_platform_roots() {
    let packages = locked_packages();
    for needed in ["rustls", "webpki-roots", "rustls-platform-verifier"] {
        assert!(
            packages.iter().any(|p| p == needed),
            "{needed} is not in Cargo.lock"
        );
    }
    // The workspace asks ureq and reqwest for no TLS backend of their own: the clients' features
    // choose one, rustls by default.
    let workspace = workspace_file("Cargo.toml");
    let line = |name: &str| {
        workspace
            .lines()
            .find(|l| l.starts_with(&format!("{name} = ")))
            .unwrap_or_else(|| panic!("{name} in [workspace.dependencies]"))
            .to_owned()
    };
    let ureq = line("ureq");
    let reqwest = line("reqwest");
    for dep in [&ureq, &reqwest] {
        assert!(dep.contains("default-features = false"), "{dep}");
        for feature in ["tls", "rustls", "native-roots"] {
            assert!(!dep.contains(feature), "{feature} in {dep}");
        }
    }
    let default_line = |features: &str| {
        features
            .lines()
            .find(|l| l.starts_with("default = "))
            .unwrap_or_else(|| panic!("no default in {features}"))
            .to_owned()
    };
    let ureq_features = features_table(&workspace_file("crates/ureq/Cargo.toml"));
    let reqwest_features = features_table(&workspace_file("crates/reqwest/Cargo.toml"));
    for features in [&ureq_features, &reqwest_features] {
        let default = default_line(features);
        assert!(
            default.contains("\"rustls\"") && !default.contains("native-tls"),
            "{default}"
        );
    }
    assert!(ureq_features.contains("rustls = [\"ureq/rustls\""));
    assert!(reqwest_features.contains("rustls = [\"reqwest/rustls-no-provider\""));
    for features in [&ureq_features, &reqwest_features] {
        for feature in ["default-tls", "native-roots"] {
            assert!(!features.contains(feature), "{feature} in {features}");
        }
    }
    // Nothing in the workspace turns native-tls on: it is the user's choice alone. Every
    // manifest but the two clients' (which declare the feature) is read.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut manifests = vec![
        "Cargo.toml".to_owned(),
        "tests/Cargo.toml".to_owned(),
        "tests/typed/Cargo.toml".to_owned(),
    ];
    for entry in std::fs::read_dir(root.join("crates"))
        .expect("crates/")
        .filter_map(Result::ok)
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != "ureq" && name != "reqwest" && entry.path().join("Cargo.toml").is_file() {
            manifests.push(format!("crates/{name}/Cargo.toml"));
        }
    }
    assert!(manifests.len() >= 8, "{manifests:?}");
    for manifest in &manifests {
        assert!(
            !workspace_file(manifest).contains("native-tls"),
            "native-tls in {manifest}"
        );
    }
    // reqwest's TLS configuration uses the platform verifier.
    let source = workspace_file("crates/reqwest/src/lib.rs");
    assert!(source.contains("with_platform_verifier()"));
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(Result::ok)
    {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn nothing_disables_certificate_verification() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root.join("crates"))
        .expect("crates")
        .filter_map(Result::ok)
    {
        let src = entry.path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    rust_files(&root.join("tests/src"), &mut files);
    assert!(files.len() > 20, "found the sources: {files:?}");
    for file in &files {
        let source = std::fs::read_to_string(file).expect("read");
        for forbidden in [
            ".dangerous(",
            "danger_accept_invalid_certs",
            "danger_accept_invalid_hostnames",
            "with_custom_certificate_verifier",
            "set_certificate_verifier",
            "disable_verification",
            "NoCertificateVerification",
            "impl ServerCertVerifier",
            "tls_built_in_root_certs(false)",
            "add_root_certificate",
        ] {
            assert!(
                !source.contains(forbidden),
                "{} contains {forbidden:?}",
                file.display()
            );
        }
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost (valid until 2126), and its key: no
/// trust store has it.
const SELF_SIGNED_CERT: &str = "\
MIIBwDCCAWWgAwIBAgIUBRaSBXKV7X8M+EOsA316vZ9MYsgwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTEyNDEyMzIwNVoYDzIxMjYxMDMx
MTIzMjA1WjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAARnRjzoPgKIUBWzAqvbZkEP5ohCmE+jTrXO4lG6p77wCpHEVHJ0oREq
XtLO7nY8aX7hSyLQXJ9H9CcwS8iFp4ZFo4GSMIGPMB0GA1UdDgQWBBTgDKKmAOwZ
UeqW4vMz4Jb8DOo4vjAfBgNVHSMEGDAWgBTgDKKmAOwZUeqW4vMz4Jb8DOo4vjAa
BgNVHREEEzARhwR/AAABgglsb2NhbGhvc3QwDAYDVR0TAQH/BAIwADAOBgNVHQ8B
Af8EBAMCB4AwEwYDVR0lBAwwCgYIKwYBBQUHAwEwCgYIKoZIzj0EAwIDSQAwRgIh
APhmziXBP+wMMnLdbL5yvgx8MDYz0OAbyuq6ZiUQs8QHAiEA/cnUhsNRpsZbGkwZ
YRwf6zFbxZxuaIZ9a4rOEbq7mTM=";
/// Its PKCS#8 private key (test only).
const SELF_SIGNED_KEY: &str = "\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgZiwtrlhVjdg9yt2c
mh+xTmVk14aS9wmhq4lK/96xSU2hRANCAARnRjzoPgKIUBWzAqvbZkEP5ohCmE+j
TrXO4lG6p77wCpHEVHJ0oREqXtLO7nY8aX7hSyLQXJ9H9CcwS8iFp4ZF";

/// A TLS server with [`SELF_SIGNED_CERT`] on 127.0.0.1; reports whether any handshake
/// completed.
fn self_signed_server() -> (String, std::sync::mpsc::Receiver<bool>) {
    use base64::Engine as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let der = |b64: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(b64.replace('\n', ""))
            .expect("base64")
    };
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(der(SELF_SIGNED_CERT))],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der(SELF_SIGNED_KEY))),
    )
    .expect("server config");
    let config = Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("https://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut tcp) = stream else { return };
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
            let Ok(mut conn) = rustls::ServerConnection::new(config.clone()) else {
                return;
            };
            while conn.is_handshaking() {
                if conn.complete_io(&mut tcp).is_err() {
                    break;
                }
            }
            if tx.send(!conn.is_handshaking()).is_err() {
                return;
            }
        }
    });
    (base, rx)
}

both!(an_untrusted_certificate_is_refused, |which| {
    let (base, handshakes) = self_signed_server();
    let sdk = Sdk::new(
        which,
        &Knobs {
            token: TOKEN.to_owned(),
            base_url: base,
            timeout: Duration::from_secs(5),
            retry: RetryPolicy::none(),
            max_response_bytes: None,
            max_download_bytes: None,
        },
    );
    let e = sdk.get("abc").expect_err("untrusted certificate");
    let Error::Transport(t) = &e else {
        panic!("expected a transport error, got {e:?}")
    };
    assert_eq!(t.kind, TransportErrorKind::Connect, "{t}");
    assert!(
        t.message.to_ascii_lowercase().contains("certificate"),
        "{t}"
    );
    assert_eq!(
        handshakes.recv_timeout(Duration::from_secs(5)),
        Ok(false),
        "the handshake never completed: nothing was sent"
    );
    // Certificate failures mean nothing was sent: even a create may be retried.
    let e = sdk.create("acme/model").expect_err("untrusted certificate");
    assert!(
        matches!(&e, Error::Transport(t) if t.kind == TransportErrorKind::Connect),
        "{e:?}"
    );
});

// ---------------------------------------------------------------------------------------------
// SECURITY.md

/// `{a,b}` in a path, expanded.
fn expand_braces(path: &str) -> Vec<String> {
    match (path.find('{'), path.find('}')) {
        (Some(open), Some(close)) if open < close => path[open + 1..close]
            .split(',')
            .flat_map(|alt| expand_braces(&format!("{}{alt}{}", &path[..open], &path[close + 1..])))
            .collect(),
        _ => vec![path.to_owned()],
    }
}

/// Whether `ident` occurs in `text` as a whole identifier.
fn has_ident(text: &str, ident: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(ident).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + ident.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

#[test]
fn security_md_names_existing_tests() {
    let doc = workspace_file("SECURITY.md");
    let mut paths: Vec<String> = Vec::new();
    let mut checked = 0;
    for span in doc.split('`').skip(1).step_by(2) {
        let ident = if let Some((path, rest)) = span.split_once(".rs::") {
            paths = expand_braces(&format!("{path}.rs"));
            rest.rsplit("::").next().unwrap_or(rest)
        } else if let Some(rest) = span.strip_prefix("::") {
            rest
        } else {
            continue;
        };
        for path in &paths {
            let text = workspace_file(path);
            assert!(
                has_ident(&text, ident),
                "SECURITY.md names {path}::{ident}, which does not exist"
            );
            checked += 1;
        }
    }
    assert!(checked > 60, "only {checked} references found");
}
