//! The fault matrix: every operation (create, get, cancel, list, stream, download) under every
//! fault the fake server can inject, against both clients. Each cell is its own test,
//! `{operation}::{fault}::{client}` (e.g. `create::reset_after_read::ureq`), and its expected
//! outcome is written down in [`expected`], one line per cell.
//!
//! Every cell checks:
//!
//! - the outcome: success (after the retries the policy allows) or the typed error expected;
//! - the server's log: how many times the operation's request was sent (a create is never sent
//!   twice unless the server certainly did not act on it: only after a 429), and for creates how
//!   many predictions the fake holds afterwards;
//! - that nothing hangs: each cell runs under a 20 s watchdog, with a 300 ms client timeout, a
//!   1 s `Delay` fault, small backoffs and at most 3 retries;
//! - bounded memory: a 50 MiB body against the default 32 MiB cap ends in `BodyTooLarge`
//!   (decided from `Content-Length`, before reading the body), never retried;
//! - no redirect is followed by API requests or streams, and a download that follows one to
//!   another origin sends no `Authorization` there.
//!
//! Run one row with e.g. `cargo test -p replicate-tests --test fault_matrix create::`.

use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use replicate_fake::{
    BlockingFakeServer, Fault, FaultRule, Matcher, ModelScript, Origin, RecordedRequest,
    RetryAfter, TEXT_TOKENS,
};
use replicate_protocol::{
    CreatePrediction, Error, Prediction, StreamOptions, Target, TransportErrorKind,
};
use replicate_tests::{Settings, Which, fast_options};
use serde_json::Value;

/// The client timeout of every cell (one exchange; for streams and downloads, the response head
/// and each read).
const TIMEOUT: Duration = Duration::from_millis(300);
/// How long the `Delay` fault holds the response headers: longer than [`TIMEOUT`].
const SLOW: Duration = Duration::from_secs(1);
/// The clients' default `max_response_bytes` (32 MiB); downloads are given the same cap.
const CAP: u64 = replicate_ureq::DEFAULT_MAX_RESPONSE_BYTES;
/// The size of the `HugeBody` fault: 50 MiB.
const HUGE: usize = 50 << 20;
/// A cell that takes longer than this fails.
const WATCHDOG: Duration = Duration::from_secs(20);

/// The operations of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// `Client::create` (POST, sent at most once unless the server certainly did not act).
    Create,
    /// `Client::get` (idempotent).
    Get,
    /// `Client::cancel` (idempotent).
    Cancel,
    /// `Client::list`, collected (idempotent).
    List,
    /// `Client::stream_with` on the files origin, collected to text.
    Stream,
    /// `Client::download` of an output URL on the files origin.
    Download,
}

/// The faults of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum F {
    /// 429 with `Retry-After: 1`.
    RetryAfterSeconds,
    /// 429 with `Retry-After: <HTTP-date one second ahead>`.
    RetryAfterDate,
    /// 500 with problem details.
    Status500,
    /// 502 with an nginx HTML page.
    Status502Html,
    /// 503 with problem details.
    Status503,
    /// The connection is reset once the request head arrived, before the request is applied.
    ResetBeforeRead,
    /// The request is applied, then the connection is reset without an answer.
    ResetAfterRead,
    /// The response headers come after [`SLOW`], past the client's [`TIMEOUT`]; the request is
    /// applied.
    SlowHeaders,
    /// The real answer with its body cut in half (and a matching `Content-Length`). For streams,
    /// whose body is not one JSON document, the stream is dropped after its first event instead
    /// (`DropStreamAfter(1)`).
    Truncated,
    /// The real status with a body that is not JSON, as `application/json`.
    Garbage,
    /// 200 `application/json` with a 50 MiB body, instead of the real answer.
    Huge,
    /// 302 to another origin, instead of the real answer.
    RedirectOffOrigin,
}

/// What a cell returns when it succeeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    /// The real result: the prediction, the list, the streamed text, the file.
    Real,
    /// Downloads: the first half of the file. The server sent a well-formed, shorter body; HTTP
    /// cannot tell it from the real one (the API gives no checksum to compare with).
    FirstHalf,
    /// Downloads: the garbage bytes the server sent. Downloads are bytes, not parsed.
    Garbage,
    /// Downloads: the file at the redirect's target, on another origin.
    RedirectTarget,
}

/// The outcome of a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Success, returning this body.
    Ok(Body),
    /// [`Error::Api`] with this status.
    Api(u16),
    /// [`Error::Decode`] of a success status.
    Decode,
    /// [`Error::Transport`] of this kind.
    Transport(TransportErrorKind),
    /// [`Error::CreateOutcomeUnknown`]: of this kind, or with `None` of any kind that means "the
    /// request may have been sent" (never `Connect`).
    CreateOutcomeUnknown(Option<TransportErrorKind>),
    /// [`Error::Stream`]: the stream was refused (wrong content type, a redirect).
    Stream,
}

/// How many predictions the fake holds after a create cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Predictions {
    /// Exactly this many.
    Exactly(usize),
    /// At most this many (a delayed create may still be applied by the server after the client
    /// gave up on it).
    AtMost(usize),
}

/// The expectation of one cell.
#[derive(Clone, Copy, Debug)]
struct Expect {
    outcome: Outcome,
    /// How many times the operation's request reached the server.
    attempts: usize,
    /// Create cells: the predictions the fake holds afterwards.
    predictions: Option<Predictions>,
}

const fn exp(outcome: Outcome, attempts: usize) -> Expect {
    Expect {
        outcome,
        attempts,
        predictions: None,
    }
}

const fn created(outcome: Outcome, attempts: usize, predictions: Predictions) -> Expect {
    Expect {
        outcome,
        attempts,
        predictions: Some(predictions),
    }
}

/// The expected outcome of every cell, the same for both clients.
#[rustfmt::skip]
fn expected(op: Op, fault: F) -> Expect {
    use F::*;
    use Op::*;
    use Outcome::{Api, CreateOutcomeUnknown as Unknown, Decode, Ok, Stream as Refused, Transport};
    use Predictions::{AtMost, Exactly};
    use TransportErrorKind::{BodyTooLarge, Io, Other, Timeout};
    match (op, fault) {
        // A create is re-sent only after a 429: the server says it did nothing. Any answer lost
        // after the request left is CreateOutcomeUnknown, and the create is not re-sent.
        (Create, RetryAfterSeconds) => created(Ok(Body::Real), 2, Exactly(1)),
        (Create, RetryAfterDate) =>    created(Ok(Body::Real), 2, Exactly(1)),
        // A 5xx may come after the server acted (a proxy's page in place of the real answer): the
        // client cannot tell, so the outcome is unknown. This fake answered before acting.
        (Create, Status500) =>         created(Unknown(Some(Other)), 1, Exactly(0)),
        (Create, Status502Html) =>     created(Unknown(Some(Other)), 1, Exactly(0)),
        (Create, Status503) =>         created(Unknown(Some(Other)), 1, Exactly(0)),
        // The request was sent (the server read its head) and its answer lost: from the client's
        // side this is indistinguishable from a reset after the create was applied, so it is
        // reported as possibly created rather than re-sent. The fake did not create it.
        (Create, ResetBeforeRead) =>   created(Unknown(Some(Io)), 1, Exactly(0)),
        (Create, ResetAfterRead) =>    created(Unknown(Some(Io)), 1, Exactly(1)),
        (Create, SlowHeaders) =>       created(Unknown(Some(Timeout)), 1, AtMost(1)),
        // A success whose body cannot be read: it was created, but its id is unknown.
        (Create, Truncated) =>         created(Unknown(Some(Io)), 1, Exactly(1)),
        (Create, Garbage) =>           created(Unknown(Some(Io)), 1, Exactly(1)),
        (Create, Huge) =>              created(Unknown(Some(BodyTooLarge)), 1, Exactly(0)),
        (Create, RedirectOffOrigin) => created(Api(302), 1, Exactly(0)),

        // Idempotent requests are retried after 429, 5xx, resets and timeouts.
        (Get, RetryAfterSeconds) =>    exp(Ok(Body::Real), 2),
        (Get, RetryAfterDate) =>       exp(Ok(Body::Real), 2),
        (Get, Status500) =>            exp(Ok(Body::Real), 2),
        (Get, Status502Html) =>        exp(Ok(Body::Real), 2),
        (Get, Status503) =>            exp(Ok(Body::Real), 2),
        (Get, ResetBeforeRead) =>      exp(Ok(Body::Real), 2),
        (Get, ResetAfterRead) =>       exp(Ok(Body::Real), 2),
        (Get, SlowHeaders) =>          exp(Ok(Body::Real), 2),
        (Get, Truncated) =>            exp(Decode, 1),
        (Get, Garbage) =>              exp(Decode, 1),
        (Get, Huge) =>                 exp(Transport(BodyTooLarge), 1),
        (Get, RedirectOffOrigin) =>    exp(Api(302), 1),

        (Cancel, RetryAfterSeconds) => exp(Ok(Body::Real), 2),
        (Cancel, RetryAfterDate) =>    exp(Ok(Body::Real), 2),
        (Cancel, Status500) =>         exp(Ok(Body::Real), 2),
        (Cancel, Status502Html) =>     exp(Ok(Body::Real), 2),
        (Cancel, Status503) =>         exp(Ok(Body::Real), 2),
        (Cancel, ResetBeforeRead) =>   exp(Ok(Body::Real), 2),
        (Cancel, ResetAfterRead) =>    exp(Ok(Body::Real), 2),
        (Cancel, SlowHeaders) =>       exp(Ok(Body::Real), 2),
        (Cancel, Truncated) =>         exp(Decode, 1),
        (Cancel, Garbage) =>           exp(Decode, 1),
        (Cancel, Huge) =>              exp(Transport(BodyTooLarge), 1),
        (Cancel, RedirectOffOrigin) => exp(Api(302), 1),

        (List, RetryAfterSeconds) =>   exp(Ok(Body::Real), 2),
        (List, RetryAfterDate) =>      exp(Ok(Body::Real), 2),
        (List, Status500) =>           exp(Ok(Body::Real), 2),
        (List, Status502Html) =>       exp(Ok(Body::Real), 2),
        (List, Status503) =>           exp(Ok(Body::Real), 2),
        (List, ResetBeforeRead) =>     exp(Ok(Body::Real), 2),
        (List, ResetAfterRead) =>      exp(Ok(Body::Real), 2),
        (List, SlowHeaders) =>         exp(Ok(Body::Real), 2),
        (List, Truncated) =>           exp(Decode, 1),
        (List, Garbage) =>             exp(Decode, 1),
        (List, Huge) =>                exp(Transport(BodyTooLarge), 1),
        (List, RedirectOffOrigin) =>   exp(Api(302), 1),

        // A stream reconnects after 429/5xx/resets/timeouts (Last-Event-ID resumes a dropped
        // one) and refuses what is not an event stream or is a redirect.
        (Stream, RetryAfterSeconds) => exp(Ok(Body::Real), 2),
        (Stream, RetryAfterDate) =>    exp(Ok(Body::Real), 2),
        (Stream, Status500) =>         exp(Ok(Body::Real), 2),
        (Stream, Status502Html) =>     exp(Ok(Body::Real), 2),
        (Stream, Status503) =>         exp(Ok(Body::Real), 2),
        (Stream, ResetBeforeRead) =>   exp(Ok(Body::Real), 2),
        (Stream, ResetAfterRead) =>    exp(Ok(Body::Real), 2),
        (Stream, SlowHeaders) =>       exp(Ok(Body::Real), 2),
        (Stream, Truncated) =>         exp(Ok(Body::Real), 2),
        (Stream, Garbage) =>           exp(Refused, 1),
        (Stream, Huge) =>              exp(Refused, 1),
        (Stream, RedirectOffOrigin) => exp(Refused, 1),

        // Downloads retry like idempotent requests, return bytes as served, and follow
        // redirects by hand (without the token off the API origin).
        (Download, RetryAfterSeconds) => exp(Ok(Body::Real), 2),
        (Download, RetryAfterDate) =>    exp(Ok(Body::Real), 2),
        (Download, Status500) =>         exp(Ok(Body::Real), 2),
        (Download, Status502Html) =>     exp(Ok(Body::Real), 2),
        (Download, Status503) =>         exp(Ok(Body::Real), 2),
        (Download, ResetBeforeRead) =>   exp(Ok(Body::Real), 2),
        (Download, ResetAfterRead) =>    exp(Ok(Body::Real), 2),
        (Download, SlowHeaders) =>       exp(Ok(Body::Real), 2),
        (Download, Truncated) =>         exp(Ok(Body::FirstHalf), 1),
        (Download, Garbage) =>           exp(Ok(Body::Garbage), 1),
        (Download, Huge) =>              exp(Transport(BodyTooLarge), 1),
        (Download, RedirectOffOrigin) => exp(Ok(Body::RedirectTarget), 1),
    }
}

/// The client under test, built from the harness's [`Settings`] with the matrix's timeout and
/// download cap.
enum Sdk {
    Ureq(replicate_ureq::Client),
    Reqwest(replicate_reqwest::Client, tokio::runtime::Runtime),
}

/// What an operation returned.
#[derive(Debug)]
enum Output {
    Prediction(Box<Prediction>),
    List(Vec<Prediction>),
    Text(String),
    Bytes(Vec<u8>),
}

impl Sdk {
    fn new(which: Which, s: &Settings) -> Sdk {
        match which {
            Which::Ureq => Sdk::Ureq(
                replicate_ureq::Client::builder()
                    .token(&s.token)
                    .base_url(&s.base_url)
                    .timeout(s.timeout)
                    .poll_policy(s.poll.clone())
                    .retry_policy(s.retry.clone())
                    .sync_wait(s.sync_wait)
                    .max_download_bytes(CAP)
                    .build()
                    .expect("ureq client"),
            ),
            Which::Reqwest => Sdk::Reqwest(
                replicate_reqwest::Client::builder()
                    .token(&s.token)
                    .base_url(&s.base_url)
                    .timeout(s.timeout)
                    .poll_policy(s.poll.clone())
                    .retry_policy(s.retry.clone())
                    .sync_wait(s.sync_wait)
                    .max_download_bytes(CAP)
                    .build()
                    .expect("reqwest client"),
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime"),
            ),
        }
    }

    fn create(&self, model: &str) -> Result<Prediction, Error> {
        let create = CreatePrediction::new(Target::parse(model)?);
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

    fn cancel(&self, id: &str) -> Result<Prediction, Error> {
        match self {
            Sdk::Ureq(c) => c.cancel(id),
            Sdk::Reqwest(c, rt) => rt.block_on(c.cancel(id)),
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
        let input = serde_json::json!({});
        match self {
            Sdk::Ureq(c) => c.run(model, input),
            Sdk::Reqwest(c, rt) => rt.block_on(c.run(model, input)),
        }
    }

    /// The text of the stream's `output` events, read with fast reconnections.
    fn stream_text(&self, prediction: &Prediction) -> Result<String, Error> {
        use replicate_protocol::sse::ReplicateEvent;
        let opts = StreamOptions {
            max_reconnects: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(100),
            ..StreamOptions::default()
        };
        let mut text = String::new();
        let mut push = |event: ReplicateEvent| {
            if let ReplicateEvent::Output(chunk) = event {
                text.push_str(&chunk);
            }
        };
        match self {
            Sdk::Ureq(c) => {
                for event in c.stream_with(prediction, opts)? {
                    push(event?);
                }
            }
            Sdk::Reqwest(c, rt) => rt.block_on(async {
                use futures_util::StreamExt;
                let mut events = c.stream_with(prediction, opts).await?;
                while let Some(event) = events.next().await {
                    push(event?);
                }
                Ok::<_, Error>(())
            })?,
        }
        Ok(text)
    }

    fn download(&self, url: &str) -> Result<Vec<u8>, Error> {
        match self {
            Sdk::Ureq(c) => c.download(url),
            Sdk::Reqwest(c, rt) => rt.block_on(c.download(url)),
        }
    }
}

/// Which recorded requests are the operation's.
struct OpRequests {
    origin: Origin,
    method: &'static str,
    path: String,
}

impl OpRequests {
    fn matcher(&self) -> Matcher {
        Matcher::new(self.method, &self.path).origin(self.origin)
    }

    fn matches(&self, r: &RecordedRequest) -> bool {
        r.origin == self.origin && r.method == self.method && r.target().contains(&self.path)
    }
}

/// What a cell prepared before the fault is pushed.
struct Prepared {
    target: OpRequests,
    /// The prediction the operation is about (get, cancel, stream).
    prediction: Option<Prediction>,
    /// The output URL (download) and its bytes fetched without a fault.
    file: Option<(String, Vec<u8>)>,
}

fn prepare(op: Op, fake: &BlockingFakeServer, sdk: &Sdk) -> Prepared {
    let api = |method, path: String| OpRequests {
        origin: Origin::Api,
        method,
        path,
    };
    match op {
        Op::Create => Prepared {
            target: api("POST", "/v1/models/acme/model/predictions".into()),
            prediction: None,
            file: None,
        },
        Op::Get => {
            let p = sdk.create("acme/model").expect("setup: create");
            Prepared {
                target: api("GET", format!("/v1/predictions/{}", p.id)),
                prediction: Some(p),
                file: None,
            }
        }
        Op::Cancel => {
            // Still running when the cancel gets through, even after a 1 s Retry-After.
            fake.set_model(
                "acme/slow",
                ModelScript::default().processing_time(Duration::from_secs(60)),
            );
            let p = sdk.create("acme/slow").expect("setup: create");
            Prepared {
                target: api("POST", format!("/v1/predictions/{}/cancel", p.id)),
                prediction: Some(p),
                file: None,
            }
        }
        Op::List => {
            sdk.create("acme/model").expect("setup: create");
            Prepared {
                target: api("GET", "/v1/predictions".into()),
                prediction: None,
                file: None,
            }
        }
        Op::Stream => {
            let p = sdk.create("fake/text").expect("setup: create");
            assert!(p.stream_url().is_some(), "fake/text streams");
            Prepared {
                target: OpRequests {
                    origin: Origin::Files,
                    method: "GET",
                    path: format!("/v1/streams/{}", p.id),
                },
                prediction: Some(p),
                file: None,
            }
        }
        Op::Download => {
            let (url, bytes) = an_output(sdk);
            let path = url
                .strip_prefix(&fake.files_base_url())
                .expect("an output on the files origin")
                .to_owned();
            Prepared {
                target: OpRequests {
                    origin: Origin::Files,
                    method: "GET",
                    path,
                },
                prediction: None,
                file: Some((url, bytes)),
            }
        }
    }
}

/// Runs `fake/urls` and downloads its first output without a fault.
fn an_output(sdk: &Sdk) -> (String, Vec<u8>) {
    let out = sdk.run("fake/urls").expect("setup: run");
    let url = out
        .as_array()
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .expect("a list of URLs")
        .to_owned();
    let bytes = sdk.download(&url).expect("setup: download");
    assert!(bytes.len() > 8, "a real file");
    (url, bytes)
}

/// Where the redirect of a cell points, and what serves it.
struct RedirectTarget {
    url: String,
    /// For downloads: the other origin serving the target, and the file it serves.
    other: Option<(BlockingFakeServer, Vec<u8>)>,
}

fn redirect_target(op: Op, fake: &BlockingFakeServer, which: Which) -> RedirectTarget {
    match op {
        // API requests are redirected to the files origin, streams (on the files origin) to the
        // API origin: another origin either way. Neither is followed.
        Op::Create | Op::Get | Op::Cancel | Op::List => RedirectTarget {
            url: format!("{}/redirected/here", fake.files_base_url()),
            other: None,
        },
        Op::Stream => RedirectTarget {
            url: format!("{}/v1/redirected/here", fake.base_url()),
            other: None,
        },
        // A download follows the redirect: to an output served by another server (another
        // origin), which must not receive the token.
        Op::Download => {
            let other = BlockingFakeServer::start_with(fast_options()).expect("second fake");
            let mut s = Settings::for_fake(&other);
            s.timeout = TIMEOUT;
            let (url, bytes) = an_output(&Sdk::new(which, &s));
            other.clear_requests();
            RedirectTarget {
                url,
                other: Some((other, bytes)),
            }
        }
    }
}

fn fault_of(op: Op, f: F, redirect: Option<&RedirectTarget>) -> Fault {
    match f {
        F::RetryAfterSeconds => Fault::throttled(1),
        F::RetryAfterDate => Fault::Status {
            status: 429,
            retry_after: Some(RetryAfter::HttpDate(
                SystemTime::now() + Duration::from_secs(1),
            )),
            body: None,
        },
        F::Status500 => Fault::status(500),
        F::Status502Html => Fault::status(502),
        F::Status503 => Fault::status(503),
        F::ResetBeforeRead => Fault::ResetBeforeRead,
        F::ResetAfterRead => Fault::ResetAfterRead,
        F::SlowHeaders => Fault::Delay(SLOW),
        F::Truncated if op == Op::Stream => Fault::DropStreamAfter(1),
        F::Truncated => Fault::TruncatedJson,
        F::Garbage => Fault::GarbageJson,
        F::Huge => Fault::HugeBody(HUGE),
        F::RedirectOffOrigin => {
            Fault::Redirect(redirect.map(|r| r.url.clone()).expect("a redirect target"))
        }
    }
}

fn execute(op: Op, sdk: &Sdk, prepared: &Prepared) -> Result<Output, Error> {
    let prediction = || prepared.prediction.as_ref().expect("prepared prediction");
    match op {
        Op::Create => sdk
            .create("acme/model")
            .map(|p| Output::Prediction(Box::new(p))),
        Op::Get => sdk
            .get(&prediction().id)
            .map(|p| Output::Prediction(Box::new(p))),
        Op::Cancel => sdk
            .cancel(&prediction().id)
            .map(|p| Output::Prediction(Box::new(p))),
        Op::List => sdk.list().map(Output::List),
        Op::Stream => sdk.stream_text(prediction()).map(Output::Text),
        Op::Download => {
            let (url, _) = prepared.file.as_ref().expect("prepared file");
            sdk.download(url).map(Output::Bytes)
        }
    }
}

/// Runs one cell under the watchdog.
fn cell(op: Op, f: F, which: Which) {
    let name = format!("{op:?} x {f:?} [{which:?}]");
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            run_cell(op, f, which);
            let _ = tx.send(());
        })
        .expect("spawn");
    match rx.recv_timeout(WATCHDOG) {
        Ok(()) => worker.join().expect("cell thread"),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{name}: still running after {WATCHDOG:?}: a hang past the timeouts")
        }
        // The cell panicked: report its panic.
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Ok(()) => panic!("{name}: ended without reporting"),
            Err(panic) => std::panic::resume_unwind(panic),
        },
    }
}

fn run_cell(op: Op, f: F, which: Which) {
    let name = format!("{op:?} x {f:?} [{which:?}]");
    let expect = expected(op, f);
    let fake = BlockingFakeServer::start_with(fast_options()).expect("fake server");
    let mut settings = Settings::for_fake(&fake);
    settings.timeout = TIMEOUT;
    let sdk = Sdk::new(which, &settings);
    let prepared = prepare(op, &fake, &sdk);
    let redirect = (f == F::RedirectOffOrigin).then(|| redirect_target(op, &fake, which));
    let predictions_before = fake.prediction_count();

    fake.clear_requests();
    fake.push_fault(FaultRule::new(
        prepared.target.matcher(),
        fault_of(op, f, redirect.as_ref()),
    ));
    let result = execute(op, &sdk, &prepared);

    let log = fake.requests();
    let attempts = log.iter().filter(|r| prepared.target.matches(r)).count();
    let summary = match &result {
        Ok(out) => format!("Ok({})", short(out)),
        Err(e) => format!("Err({e})"),
    };
    println!("{name}: {summary} after {attempts} attempt(s)");

    // The outcome.
    match (expect.outcome, &result) {
        (Outcome::Ok(body), Ok(out)) => check_output(&name, op, body, out, &prepared, &redirect),
        (Outcome::Api(status), Err(Error::Api(api))) => {
            assert_eq!(api.status, status, "{name}: {api}");
            if status == 502 {
                assert!(
                    api.body_excerpt
                        .as_deref()
                        .is_some_and(|b| b.contains("<html>")),
                    "{name}: the HTML page is kept as an excerpt: {api:?}"
                );
            }
        }
        (Outcome::Decode, Err(Error::Decode { status, .. })) => {
            assert!((200..300).contains(status), "{name}: {status}");
            if op == Op::Create {
                assert_eq!(*status, 201, "{name}: the status says it was created");
            }
        }
        (Outcome::Transport(kind), Err(Error::Transport(t))) => {
            assert_eq!(t.kind, kind, "{name}: {t}");
        }
        (Outcome::CreateOutcomeUnknown(kind), Err(Error::CreateOutcomeUnknown(t))) => {
            match kind {
                Some(kind) => assert_eq!(t.kind, kind, "{name}: {t}"),
                None => assert_ne!(t.kind, TransportErrorKind::Connect, "{name}: {t}"),
            }
            let message = result.as_ref().err().map(ToString::to_string);
            assert!(
                message
                    .as_deref()
                    .is_some_and(|m| m.contains("may have been created")),
                "{name}: {message:?}"
            );
        }
        (Outcome::Stream, Err(Error::Stream(_))) => {}
        (outcome, got) => panic!("{name}: expected {outcome:?}, got {got:?}"),
    }

    // How many times the request was sent.
    assert_eq!(
        attempts, expect.attempts,
        "{name}: the operation's requests: {log:#?}"
    );

    // Creates: never duplicated.
    if let Some(predictions) = expect.predictions {
        let made = fake.prediction_count() - predictions_before;
        match predictions {
            Predictions::Exactly(n) => assert_eq!(made, n, "{name}: predictions created"),
            Predictions::AtMost(n) => assert!(made <= n, "{name}: {made} predictions created"),
        }
    }

    // Redirects: never followed off the origin, except by downloads, without the token.
    if f == F::RedirectOffOrigin {
        let elsewhere: Vec<_> = log
            .iter()
            .filter(|r| r.origin != prepared.target.origin)
            .collect();
        assert!(
            elsewhere.is_empty(),
            "{name}: the redirect was followed: {elsewhere:#?}"
        );
        if let Some(RedirectTarget {
            other: Some((other, _)),
            ..
        }) = &redirect
        {
            let reached = other.requests();
            assert_eq!(reached.len(), 1, "{name}: {reached:#?}");
            assert_eq!(reached[0].header("authorization"), None, "{name}");
        }
    }

    // A resumed stream asks for what follows the last event it received.
    if op == Op::Stream && f == F::Truncated {
        let opens: Vec<_> = log.iter().filter(|r| prepared.target.matches(r)).collect();
        assert!(
            opens
                .last()
                .and_then(|r| r.header("last-event-id"))
                .is_some(),
            "{name}: resumed with Last-Event-ID: {opens:#?}"
        );
    }

    // Streams and downloads on the files origin never carry the token.
    for r in log.iter().filter(|r| r.origin == Origin::Files) {
        assert_eq!(r.header("authorization"), None, "{name}: {r:?}");
    }
}

fn check_output(
    name: &str,
    op: Op,
    body: Body,
    out: &Output,
    prepared: &Prepared,
    redirect: &Option<RedirectTarget>,
) {
    let same_prediction = |p: &Prediction| {
        assert_eq!(
            Some(p.id.as_str()),
            prepared.prediction.as_ref().map(|q| q.id.as_str()),
            "{name}"
        )
    };
    match (op, out) {
        (Op::Create, Output::Prediction(p)) => assert!(!p.id.is_empty(), "{name}"),
        (Op::Get, Output::Prediction(p)) => same_prediction(p),
        (Op::Cancel, Output::Prediction(p)) => {
            same_prediction(p);
            assert_eq!(p.status, replicate_protocol::Status::Canceled, "{name}");
        }
        (Op::List, Output::List(all)) => assert_eq!(all.len(), 1, "{name}"),
        (Op::Stream, Output::Text(text)) => {
            assert_eq!(text, &TEXT_TOKENS.concat(), "{name}: every token, once")
        }
        (Op::Download, Output::Bytes(bytes)) => {
            let (_, real) = prepared.file.as_ref().expect("file");
            match body {
                Body::Real => assert!(bytes == real, "{name}: the file"),
                Body::FirstHalf => {
                    assert!(
                        bytes[..] == real[..real.len() / 2],
                        "{name}: the first half"
                    )
                }
                Body::Garbage => assert!(
                    serde_json::from_slice::<Value>(bytes).is_err() && bytes != real,
                    "{name}: the bytes as served"
                ),
                Body::RedirectTarget => {
                    let Some(RedirectTarget {
                        other: Some((_, theirs)),
                        ..
                    }) = redirect
                    else {
                        panic!("{name}: no redirect target")
                    };
                    assert!(bytes == theirs, "{name}: the target's file");
                }
            }
        }
        (op, out) => panic!("{name}: {op:?} returned {}", short(out)),
    }
}

fn short(out: &Output) -> String {
    match out {
        Output::Prediction(p) => format!("prediction {} {}", p.id, p.status),
        Output::List(all) => format!("{} predictions", all.len()),
        Output::Text(t) => format!("text {t:?}"),
        Output::Bytes(b) => format!("{} bytes", b.len()),
    }
}

/// One row: an operation under every fault, each fault one module with a test per client.
macro_rules! row {
    ($op_mod:ident, $op:expr) => {
        mod $op_mod {
            use super::*;
            cells! { $op;
                retry_after_seconds = F::RetryAfterSeconds,
                retry_after_http_date = F::RetryAfterDate,
                status_500 = F::Status500,
                status_502_html = F::Status502Html,
                status_503 = F::Status503,
                reset_before_read = F::ResetBeforeRead,
                reset_after_read = F::ResetAfterRead,
                headers_slower_than_timeout = F::SlowHeaders,
                truncated = F::Truncated,
                garbage_json = F::Garbage,
                body_50_mib = F::Huge,
                redirect_off_origin = F::RedirectOffOrigin,
            }
        }
    };
}

macro_rules! cells {
    ($op:expr; $($fault_mod:ident = $fault:expr),* $(,)?) => {
        $(
            mod $fault_mod {
                use super::*;
                #[test]
                fn ureq() {
                    cell($op, $fault, Which::Ureq)
                }
                #[test]
                fn reqwest() {
                    cell($op, $fault, Which::Reqwest)
                }
            }
        )*
    };
}

row!(create, Op::Create);
row!(get, Op::Get);
row!(cancel, Op::Cancel);
row!(list, Op::List);
row!(stream, Op::Stream);
row!(download, Op::Download);
