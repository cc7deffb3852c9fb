//! Hostile servers: what each client does when the server (or something in front of it) works
//! against it. Each row is named after what it protects and runs against both clients (`…::ureq`
//! and `…::reqwest`), except the watcher-thread row, which is about `replicate-ureq` only:
//!
//! - a server whose list cursors form a cycle, or whose list never ends;
//! - a server echoing the request's headers (the token) into its error pages;
//! - bodies dripped slower than any useful rate, and streams that stay silent;
//! - a redirect chain that starts on an output host and lands on the API origin;
//! - throttled polls after a create, and creates whose answer is lost after they took effect;
//! - a server-wide rate limit hit by 200 runs at once;
//! - stream watcher threads outliving their waits; file inputs that are not files;
//! - a sync-mode create outliving its deadline; outputs saved over existing files.
//!
//! `SECURITY.md` (section "Hostile servers") maps each promise to these tests. Every test runs
//! under a generous watchdog: a hang fails it instead of blocking the suite. No test asserts an
//! upper bound on wall-clock time.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use replicate_fake::{
    BlockingFakeServer, EchoFormat, Fault, FaultRule, Matcher, ModelScript, Options, Origin,
    RateLimit, RecordedRequest,
};
use replicate_protocol::output::SaveOptions;
use replicate_protocol::sse::ReplicateEvent;
use replicate_protocol::{
    CreatePrediction, Error, PaginationError, PollPolicy, Prediction, RetryPolicy, Status,
    StreamOptions, SyncWait, Target, TransportErrorKind, WaitOptions,
};
use replicate_tests::{Which, fast_options, watchdog};
use serde_json::{Value, json};

/// The token of every fake server and client here: distinctive, so that any leak is found.
const TOKEN: &str = "r8_HoStIlE0123456789abcdefServerTestToken";
/// A test that takes longer than this fails: it hung.
const WATCHDOG: Duration = Duration::from_secs(60);
/// The watchdog of the rate-limit rows, which take at least 10 s each by construction.
const SLOW_WATCHDOG: Duration = Duration::from_secs(180);

// ---------------------------------------------------------------------------------------------
// Harness

/// Declares a test per client, each under the watchdog.
macro_rules! both {
    ($(#[$attr:meta])* $name:ident, |$which:ident| $body:block) => {
        both!($(#[$attr])* $name, WATCHDOG, |$which| $body);
    };
    ($(#[$attr:meta])* $name:ident, $limit:expr, |$which:ident| $body:block) => {
        mod $name {
            use super::*;
            fn body($which: Which) $body
            #[test]
            $(#[$attr])*
            fn ureq() {
                watchdog(concat!(stringify!($name), "::ureq"), $limit, || {
                    body(Which::Ureq)
                })
            }
            #[test]
            $(#[$attr])*
            fn reqwest() {
                watchdog(concat!(stringify!($name), "::reqwest"), $limit, || {
                    body(Which::Reqwest)
                })
            }
        }
    };
}

/// A fake server with [`TOKEN`], 5 ms ticks and these changes.
fn fake_with(tweak: impl FnOnce(&mut Options)) -> BlockingFakeServer {
    let mut opts = Options {
        token: TOKEN.to_owned(),
        ..fast_options()
    };
    tweak(&mut opts);
    BlockingFakeServer::start_with(opts).expect("fake server")
}

fn fake() -> BlockingFakeServer {
    fake_with(|_| {})
}

/// How a client is built.
#[derive(Clone, Debug)]
struct Knobs {
    base_url: String,
    timeout: Duration,
    retry: RetryPolicy,
    sync_wait: Option<SyncWait>,
    max_pages: Option<usize>,
    stream: Option<StreamOptions>,
    min_download_progress: Option<Option<(u64, Duration)>>,
}

impl Knobs {
    /// 2 s timeout, 20 ms polls, 3 retries with 10 ms backoffs, sync mode off.
    fn for_fake(fake: &BlockingFakeServer) -> Knobs {
        Knobs {
            base_url: fake.base_url(),
            timeout: Duration::from_secs(2),
            retry: RetryPolicy {
                max_retries: 3,
                initial_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(100),
                max_retry_after: Duration::from_secs(5),
                ..RetryPolicy::default()
            },
            sync_wait: None,
            max_pages: None,
            stream: None,
            min_download_progress: None,
        }
    }
}

/// Applies [`Knobs`] to either client's builder (both have the same setters).
macro_rules! configure {
    ($builder:expr, $knobs:expr) => {{
        let k: &Knobs = $knobs;
        let mut b = $builder
            .token(TOKEN)
            .base_url(&k.base_url)
            .timeout(k.timeout)
            .poll_policy(PollPolicy::fixed(Duration::from_millis(20)))
            .retry_policy(k.retry.clone())
            .sync_wait(k.sync_wait);
        if let Some(pages) = k.max_pages {
            b = b.max_pages(pages);
        }
        if let Some(stream) = &k.stream {
            b = b.stream_options(stream.clone());
        }
        if let Some(progress) = k.min_download_progress {
            b = b.min_download_progress(progress);
        }
        b
    }};
}

fn ureq_client(k: &Knobs) -> replicate_ureq::Client {
    configure!(replicate_ureq::Client::builder(), k)
        .build()
        .expect("ureq client")
}

fn reqwest_client(k: &Knobs) -> replicate_reqwest::Client {
    configure!(replicate_reqwest::Client::builder(), k)
        .build()
        .expect("reqwest client")
}

/// Either client, blocking.
enum Sdk {
    Ureq(replicate_ureq::Client),
    Reqwest(replicate_reqwest::Client, tokio::runtime::Runtime),
}

impl Sdk {
    fn new(which: Which, k: &Knobs) -> Sdk {
        match which {
            Which::Ureq => Sdk::Ureq(ureq_client(k)),
            Which::Reqwest => Sdk::Reqwest(
                reqwest_client(k),
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime"),
            ),
        }
    }

    fn create(&self, model: &str) -> Result<Prediction, Error> {
        let create = CreatePrediction::new(Target::parse(model)?).input(json!({}));
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

    fn run(&self, model: &str) -> Result<Value, Error> {
        match self {
            Sdk::Ureq(c) => c.run(model, json!({})),
            Sdk::Reqwest(c, rt) => rt.block_on(c.run(model, json!({}))),
        }
    }

    fn run_with(&self, create: CreatePrediction, opts: WaitOptions) -> Result<Prediction, Error> {
        match self {
            Sdk::Ureq(c) => c.run_with(create, opts),
            Sdk::Reqwest(c, rt) => rt.block_on(c.run_with(create, opts)),
        }
    }

    /// Runs `model` to success (sync mode as configured) and returns the prediction.
    fn run_prediction(&self, model: &str) -> Prediction {
        let create = CreatePrediction::new(Target::parse(model).expect("model")).input(json!({}));
        self.run_with(create, self.wait_options())
            .expect("setup: run")
    }

    fn wait_options(&self) -> WaitOptions {
        match self {
            Sdk::Ureq(c) => c.wait_options(),
            Sdk::Reqwest(c, _) => c.wait_options(),
        }
    }

    fn wait_options_within(&self, timeout: Duration) -> WaitOptions {
        match self {
            Sdk::Ureq(c) => c.wait_options_within(timeout),
            Sdk::Reqwest(c, _) => c.wait_options_within(timeout),
        }
    }

    /// Lists predictions until the listing ends: the items delivered, the error that ended it
    /// if any, and whether the listing then yielded anything more.
    fn list_until_error(&self) -> (Vec<Prediction>, Option<Error>, bool) {
        match self {
            Sdk::Ureq(c) => {
                let mut pages = c.list();
                let mut items = Vec::new();
                for item in pages.by_ref() {
                    match item {
                        Ok(p) => items.push(p),
                        Err(e) => {
                            let more = pages.next().is_some();
                            return (items, Some(e), more);
                        }
                    }
                }
                (items, None, false)
            }
            Sdk::Reqwest(c, rt) => rt.block_on(async {
                use futures_util::StreamExt;
                let mut pages = c.list();
                let mut items = Vec::new();
                while let Some(item) = pages.next().await {
                    match item {
                        Ok(p) => items.push(p),
                        Err(e) => {
                            let more = pages.next().await.is_some();
                            return (items, Some(e), more);
                        }
                    }
                }
                (items, None, false)
            }),
        }
    }

    fn stream_with(
        &self,
        p: &Prediction,
        opts: StreamOptions,
    ) -> Result<Vec<ReplicateEvent>, Error> {
        match self {
            Sdk::Ureq(c) => c.stream_with(p, opts)?.collect(),
            Sdk::Reqwest(c, rt) => rt.block_on(async {
                use futures_util::TryStreamExt;
                c.stream_with(p, opts).await?.try_collect().await
            }),
        }
    }

    fn download(&self, url: &str) -> Result<Vec<u8>, Error> {
        match self {
            Sdk::Ureq(c) => c.download(url),
            Sdk::Reqwest(c, rt) => rt.block_on(c.download(url)),
        }
    }

    fn download_outputs(&self, p: &Prediction, dir: &Path) -> Result<Vec<PathBuf>, Error> {
        match self {
            Sdk::Ureq(c) => c.download_outputs(p, dir),
            Sdk::Reqwest(c, rt) => rt.block_on(c.download_outputs(p, dir)),
        }
    }

    fn download_outputs_with(
        &self,
        p: &Prediction,
        dir: &Path,
        options: SaveOptions,
    ) -> Result<Vec<PathBuf>, Error> {
        match self {
            Sdk::Ureq(c) => c.download_outputs_with(p, dir, options),
            Sdk::Reqwest(c, rt) => rt.block_on(c.download_outputs_with(p, dir, options)),
        }
    }

    fn upload_path(&self, path: &Path) -> Result<replicate_protocol::api::FileObject, Error> {
        match self {
            Sdk::Ureq(c) => c.upload_path(path, None),
            Sdk::Reqwest(c, rt) => rt.block_on(c.upload_path(path, None)),
        }
    }

    fn prepare_input_file(&self, path: &Path) -> Result<Value, Error> {
        match self {
            Sdk::Ureq(c) => c.prepare_input_file(path),
            Sdk::Reqwest(c, rt) => rt.block_on(c.prepare_input_file(path)),
        }
    }
}

/// Whether a request is a create (`POST …/predictions`).
fn is_create(r: &RecordedRequest) -> bool {
    r.origin == Origin::Api && r.method == "POST" && r.path.ends_with("/predictions")
}

/// The creates the fake received (throttled ones included).
fn creates(fake: &BlockingFakeServer) -> usize {
    fake.requests().iter().filter(|r| is_create(r)).count()
}

/// The requests the fake received on `origin` with this method and a path starting like this.
fn count(fake: &BlockingFakeServer, origin: Origin, method: &str, path_prefix: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.origin == origin && r.method == method && r.path.starts_with(path_prefix))
        .count()
}

/// The URLs of a `fake/urls`-style output (a list of URLs).
fn urls(output: &Value) -> Vec<String> {
    output
        .as_array()
        .expect("a list of URLs")
        .iter()
        .map(|u| u.as_str().expect("a URL").to_owned())
        .collect()
}

/// The path of an output URL on the fake's files origin.
fn files_path(fake: &BlockingFakeServer, url: &str) -> String {
    url.strip_prefix(&fake.files_base_url())
        .expect("an output on the files origin")
        .to_owned()
}

/// What `text` shows of the token, ignoring ASCII case: the token, or any 10 consecutive
/// characters of its secret part (a token cut by an excerpt is still a leak).
fn token_shown(text: &str) -> Option<String> {
    let hay = text.to_ascii_lowercase();
    let token = TOKEN.to_ascii_lowercase();
    if hay.contains(&token) {
        return Some("the token".to_owned());
    }
    let secret = token.trim_start_matches("r8_").as_bytes();
    secret
        .windows(10)
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .find(|piece| hay.contains(piece.as_str()))
        .map(|piece| format!("part of the token ({piece:?})"))
}

/// Fails when `text` shows the token or part of it ([`token_shown`]).
#[track_caller]
fn assert_no_token(what: &str, text: &str) {
    if let Some(shown) = token_shown(text) {
        panic!("{what} shows {shown}: {text}");
    }
}

/// Checks `Display`, `Debug` and pretty `Debug` of an error.
#[track_caller]
fn assert_error_clean(what: &str, e: &Error) {
    assert_no_token(&format!("{what} (Display)"), &format!("{e}"));
    assert_no_token(&format!("{what} (Debug)"), &format!("{e:?}"));
    assert_no_token(&format!("{what} (pretty Debug)"), &format!("{e:#?}"));
}

// ---------------------------------------------------------------------------------------------
// 1. Pagination: cycles and caps

both!(cursor_cycles_end_the_listing, |which| {
    let fake = fake_with(|o| o.page_size = 2);
    let sdk = Sdk::new(which, &Knobs::for_fake(&fake));
    let mut ids: Vec<String> = (0..3)
        .map(|_| sdk.create("acme/model").expect("setup: create").id)
        .collect();
    ids.sort();
    fake.clear_requests();
    // First page → cursor A; A → B; B → A: a cycle. Each page serves the first page's items.
    let list = |path: &str| Matcher::new("GET", path).origin(Origin::Api);
    fake.push_fault(FaultRule::new(list("cursor=A"), Fault::NextCursor("B".into())).times(50));
    fake.push_fault(FaultRule::new(list("cursor=B"), Fault::NextCursor("A".into())).times(50));
    fake.push_fault(FaultRule::new(
        list("/v1/predictions"),
        Fault::NextCursor("A".into()),
    ));

    let (items, error, more) = sdk.list_until_error();
    let pages = count(&fake, Origin::Api, "GET", "/v1/predictions");
    println!(
        "{which:?}: {} items, {pages} pages, then {error:?}",
        items.len()
    );
    match &error {
        Some(Error::Pagination(PaginationError::CursorCycle { cursor, page })) => {
            assert_eq!(cursor, "A", "the repeated cursor");
            assert_eq!(*page, 3, "pages read");
        }
        other => panic!("expected a cursor cycle, got {other:?}"),
    }
    assert!(!more, "the listing ends after the error");
    // Three requests (first page, A, B); B's answer names A again and is not fetched.
    assert_eq!(pages, 3, "{:#?}", fake.requests());
    // The items of every page read were delivered before the error.
    assert_eq!(items.len(), 6, "2 items × 3 pages");
    for p in &items {
        assert!(
            ids.binary_search(&p.id).is_ok(),
            "a real prediction: {}",
            p.id
        );
    }
    assert_error_clean("cursor cycle", error.as_ref().expect("error"));
});

both!(page_caps_end_the_listing, |which| {
    let fake = fake_with(|o| o.page_size = 1);
    let mut knobs = Knobs::for_fake(&fake);
    let sdk = Sdk::new(which, &knobs);
    for _ in 0..5 {
        sdk.create("acme/model").expect("setup: create");
    }

    // Five pages of one item, at most two read.
    knobs.max_pages = Some(2);
    let capped = Sdk::new(which, &knobs);
    fake.clear_requests();
    let (items, error, more) = capped.list_until_error();
    assert!(
        matches!(
            error,
            Some(Error::Pagination(PaginationError::TooManyPages {
                max_pages: 2
            }))
        ),
        "{error:?}"
    );
    assert!(!more, "the listing ends after the error");
    assert_eq!(items.len(), 2, "the items of the pages read");
    assert_eq!(count(&fake, Origin::Api, "GET", "/v1/predictions"), 2);

    // A cap equal to the number of pages reads them all, without an error.
    knobs.max_pages = Some(5);
    let exact = Sdk::new(which, &knobs);
    let (items, error, _) = exact.list_until_error();
    assert!(error.is_none(), "{error:?}");
    assert_eq!(items.len(), 5);
});

// ---------------------------------------------------------------------------------------------
// 2. Servers echoing the token into their answers

/// The operations an echoing server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EchoOp {
    Get,
    Create,
    List,
    Cancel,
    /// `run` with the create echoed.
    RunCreate,
    /// `run` with its polls echoed (after a successful create).
    RunPolls,
}

both!(echoed_tokens_never_reach_errors, |which| {
    let fake = fake();
    let sdk = Sdk::new(which, &Knobs::for_fake(&fake));
    let existing = sdk.create("acme/model").expect("setup: create");
    let faults = [
        (401, EchoFormat::ProblemJson),
        (502, EchoFormat::Html),
        (200, EchoFormat::Text),
    ];
    let ops = [
        EchoOp::Get,
        EchoOp::Create,
        EchoOp::List,
        EchoOp::Cancel,
        EchoOp::RunCreate,
        EchoOp::RunPolls,
    ];
    for (status, format) in faults {
        for op in ops {
            let name = format!("{op:?} echoed as {status} {format:?} [{which:?}]");
            fake.clear_faults();
            fake.clear_requests();
            let before = fake.prediction_count();
            let matcher = match op {
                EchoOp::Get => Matcher::new("GET", &format!("/v1/predictions/{}", existing.id)),
                EchoOp::Create | EchoOp::RunCreate => Matcher::new("POST", "/predictions"),
                EchoOp::List => Matcher::new("GET", "/v1/predictions"),
                EchoOp::Cancel => Matcher::new("POST", "/cancel"),
                EchoOp::RunPolls => Matcher::new("GET", "/v1/predictions/"),
            };
            fake.push_fault(
                FaultRule::new(matcher.origin(Origin::Api), Fault::Echo { status, format })
                    .times(1000),
            );
            let result: Result<(), Error> = match op {
                EchoOp::Get => sdk.get(&existing.id).map(drop),
                EchoOp::Create => sdk.create("acme/model").map(drop),
                EchoOp::List => sdk.list_until_error().1.map_or(Ok(()), Err),
                EchoOp::Cancel => sdk.cancel(&existing.id).map(drop),
                EchoOp::RunCreate | EchoOp::RunPolls => sdk.run("acme/model").map(drop),
            };
            let error = result.expect_err(&name);
            println!("{name}: {error}");
            assert_error_clean(&name, &error);

            // The echoed request itself carried the token: the fake really echoed it.
            let echoed: Vec<_> = fake
                .requests()
                .into_iter()
                .filter(|r| r.fault.is_some())
                .collect();
            assert!(!echoed.is_empty(), "{name}: nothing was echoed");
            assert!(
                echoed
                    .iter()
                    .all(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}"))),
                "{name}"
            );

            // What the error is.
            let source = match (&error, op) {
                (Error::AfterCreate { prediction, source }, EchoOp::RunPolls) => {
                    assert!(!prediction.id.is_empty(), "{name}");
                    assert_eq!(
                        error.prediction_id(),
                        Some(prediction.id.as_str()),
                        "{name}"
                    );
                    source.as_ref()
                }
                (_, EchoOp::RunPolls) => panic!("{name}: expected AfterCreate, got {error:?}"),
                (e, _) => e,
            };
            let creating = matches!(op, EchoOp::Create | EchoOp::RunCreate);
            match (status, source) {
                (401, Error::Api(api)) => assert_eq!(api.status, 401, "{name}"),
                (502 | 200, Error::CreateOutcomeUnknown(_)) if creating => {}
                (502, Error::Api(api)) if !creating => assert_eq!(api.status, 502, "{name}"),
                (200, Error::Decode { status: 200, .. }) if !creating => {}
                (_, e) => panic!("{name}: unexpected {e:?}"),
            }

            // Creates are sent once: an echo answers alone, so nothing was created either.
            let sent = creates(&fake);
            match op {
                EchoOp::Create | EchoOp::RunCreate => {
                    assert_eq!(sent, 1, "{name}: creates sent");
                    assert_eq!(fake.prediction_count(), before, "{name}");
                }
                EchoOp::RunPolls => {
                    assert_eq!(sent, 1, "{name}: creates sent");
                    assert_eq!(fake.prediction_count(), before + 1, "{name}");
                }
                _ => assert_eq!(sent, 0, "{name}"),
            }
        }
    }
});

both!(tokens_cut_by_excerpts_never_show, |which| {
    // Errors keep an excerpt of a body that is not problem details (its first 200 bytes). A
    // server echoing the token wherever it likes may place it across the excerpt's end: what is
    // kept of it must not show either.
    let fake = fake();
    let mut knobs = Knobs::for_fake(&fake);
    knobs.retry = RetryPolicy::none();
    let sdk = Sdk::new(which, &knobs);
    let p = sdk.create("acme/model").expect("setup: create");
    let mut leaks = Vec::new();
    for status in [502, 200] {
        for offset in 150..=200 {
            let name = format!("HTTP {status}, token at byte {offset} [{which:?}]");
            fake.clear_faults();
            let body = format!("{}Bearer {TOKEN}\n", "x".repeat(offset - 7));
            fake.push_fault(FaultRule::new(
                Matcher::new("GET", &format!("/v1/predictions/{}", p.id)),
                Fault::Status {
                    status,
                    retry_after: None,
                    body: Some(body),
                },
            ));
            let error = sdk.get(&p.id).expect_err(&name);
            if let Some(shown) = token_shown(&format!("{error} {error:?} {error:#?}")) {
                leaks.push(format!("{name}: {shown}: {error}"));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{} errors show part of the token:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
});

// ---------------------------------------------------------------------------------------------
// 3. Dripped bodies

both!(dripped_api_bodies_time_out, |which| {
    let fake = fake();
    let mut knobs = Knobs::for_fake(&fake);
    knobs.timeout = Duration::from_millis(300);
    let sdk = Sdk::new(which, &knobs);
    let p = sdk.create("acme/model").expect("setup: create");
    fake.clear_requests();
    // One byte every 200 ms: the ~1 KB answer would take minutes.
    fake.push_fault(
        FaultRule::new(
            Matcher::new("GET", &format!("/v1/predictions/{}", p.id)),
            Fault::Drip {
                interval: Duration::from_millis(200),
                chunk: 1,
            },
        )
        .times(1000),
    );
    let started = Instant::now();
    let error = sdk.get(&p.id).expect_err("a dripped answer");
    let elapsed = started.elapsed();
    println!("{which:?}: {error} after {elapsed:?}");
    assert!(
        matches!(&error, Error::Transport(t) if t.kind == TransportErrorKind::Timeout),
        "{error:?}"
    );
    // Retried per the policy (a GET is idempotent), then the error.
    let attempts = count(&fake, Origin::Api, "GET", "/v1/predictions/");
    assert_eq!(attempts, knobs.retry.max_retries as usize + 1, "attempts");
    assert!(elapsed >= knobs.timeout, "{elapsed:?}");
});

both!(dripped_downloads_fail_the_minimum_progress, |which| {
    let fake = fake();
    let mut knobs = Knobs::for_fake(&fake);
    // The idle timeout (2 s) never fires: a byte comes every 100 ms. The progress rule does.
    knobs.min_download_progress = Some(Some((1024, Duration::from_millis(500))));
    knobs.retry.max_retries = 2;
    let sdk = Sdk::new(which, &knobs);
    let url = urls(&sdk.run("fake/urls").expect("setup: run"))[0].clone();
    let size = sdk.download(&url).expect("setup: download").len();
    assert!(
        size > 10,
        "the file ({size} bytes) outlasts a 500 ms window at 10 bytes/s"
    );
    let path = files_path(&fake, &url);
    fake.clear_requests();
    fake.push_fault(
        FaultRule::new(
            Matcher::new("GET", &path).origin(Origin::Files),
            Fault::Drip {
                interval: Duration::from_millis(100),
                chunk: 1,
            },
        )
        .times(1000),
    );
    let started = Instant::now();
    let error = sdk.download(&url).expect_err("a dripped download");
    let elapsed = started.elapsed();
    println!("{which:?}: {error} after {elapsed:?}");
    assert!(
        matches!(&error, Error::Transport(t) if t.kind == TransportErrorKind::Timeout),
        "{error:?}"
    );
    let attempts = count(&fake, Origin::Files, "GET", &path);
    assert_eq!(attempts, knobs.retry.max_retries as usize + 1, "attempts");
    assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}");
});

// ---------------------------------------------------------------------------------------------
// 4. Silent streams

both!(silent_streams_end_after_max_reconnects, |which| {
    let fake = fake();
    let mut knobs = Knobs::for_fake(&fake);
    knobs.timeout = Duration::from_millis(300);
    let sdk = Sdk::new(which, &knobs);
    let p = sdk.create("fake/text").expect("setup: create");
    assert!(p.stream_url().is_some(), "fake/text streams");
    fake.clear_requests();
    fake.push_fault(
        FaultRule::new(
            Matcher::new("GET", "/v1/streams/").origin(Origin::Files),
            Fault::SilentStream,
        )
        .times(1000),
    );
    let opts = StreamOptions {
        max_reconnects: 2,
        initial_backoff: Duration::from_millis(10),
        ..StreamOptions::default()
    };
    let started = Instant::now();
    let error = sdk.stream_with(&p, opts).expect_err("a silent stream");
    let elapsed = started.elapsed();
    println!("{which:?}: {error} after {elapsed:?}");
    assert!(
        matches!(&error, Error::Stream(m) if m.message.contains("silent")),
        "{error:?}"
    );
    // The first opening and two reopenings, each silent for a whole read timeout.
    let opens = count(&fake, Origin::Files, "GET", "/v1/streams/");
    assert_eq!(opens, 3, "{:#?}", fake.requests());
    assert!(elapsed >= knobs.timeout * 3, "{elapsed:?}");
});

// ---------------------------------------------------------------------------------------------
// 5. Redirects into the API origin

both!(redirects_into_the_api_origin_carry_no_token, |which| {
    let fake = fake();
    let sdk = Sdk::new(which, &Knobs::for_fake(&fake));
    let p = sdk.run_prediction("fake/urls");
    let url = urls(&p.output)[0].clone();
    let path = files_path(&fake, &url);
    let account = format!("{}/v1/account", fake.base_url());
    let hop = format!("{}/hop/two", fake.files_base_url());
    let on_files = |path: &str| Matcher::new("GET", path).origin(Origin::Files);

    // One hop (files → API), two hops (files → files → API), and a batch download.
    for case in [
        "download, one hop",
        "download, two hops",
        "download_outputs",
    ] {
        fake.clear_faults();
        fake.clear_requests();
        if case.contains("two hops") {
            fake.push_fault(FaultRule::new(
                on_files(&path),
                Fault::Redirect(hop.clone()),
            ));
            fake.push_fault(FaultRule::new(
                on_files("/hop/two"),
                Fault::Redirect(account.clone()),
            ));
        } else {
            fake.push_fault(FaultRule::new(
                on_files(&path),
                Fault::Redirect(account.clone()),
            ));
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let result = if case == "download_outputs" {
            sdk.download_outputs(&p, dir.path()).map(drop)
        } else {
            sdk.download(&url).map(drop)
        };
        println!("{which:?} {case}: {result:?}");
        let log = fake.requests();
        let reached: Vec<_> = log
            .iter()
            .filter(|r| r.origin == Origin::Api && r.path == "/v1/account")
            .collect();
        assert_eq!(
            reached.len(),
            1,
            "{case}: the chain reached the API: {log:#?}"
        );
        for r in &log {
            assert_eq!(r.header("authorization"), None, "{case}: {r:#?}");
        }
        // Without the token the API refuses: the download fails, without the token in it.
        let error = result.expect_err(case);
        assert_error_clean(case, &error);
    }
});

// ---------------------------------------------------------------------------------------------
// 6. Throttled polls after a create

both!(throttled_polls_after_a_create_say_it_exists, |which| {
    let fake = fake();
    let mut knobs = Knobs::for_fake(&fake);
    knobs.retry.max_throttled_retries = 3;
    let sdk = Sdk::new(which, &knobs);
    fake.push_fault(
        FaultRule::new(
            Matcher::new("GET", "/v1/predictions/").origin(Origin::Api),
            Fault::throttled(0),
        )
        .times(1000),
    );
    let error = sdk.run("acme/model").expect_err("throttled polls");
    println!("{which:?}: {error}");
    fake.clear_faults();
    let Error::AfterCreate { prediction, source } = &error else {
        panic!("expected AfterCreate, got {error:?}")
    };
    assert!(
        matches!(source.as_ref(), Error::Api(api) if api.status == 429),
        "{source:?}"
    );
    // The one prediction the fake holds is the one the error names.
    assert_eq!(creates(&fake), 1, "creates sent");
    assert_eq!(fake.prediction_count(), 1);
    let (all, listing_error, _) = sdk.list_until_error();
    assert!(listing_error.is_none(), "{listing_error:?}");
    assert_eq!(error.prediction_id(), Some(all[0].id.as_str()));
    assert_eq!(prediction.id, all[0].id);
    // The throttled polls had their own budget: the first poll and 3 retries.
    let polls = count(
        &fake,
        Origin::Api,
        "GET",
        &format!("/v1/predictions/{}", all[0].id),
    );
    assert_eq!(
        polls,
        knobs.retry.max_throttled_retries as usize + 1,
        "polls"
    );
});

// ---------------------------------------------------------------------------------------------
// 7. Lost creates

both!(lost_creates_are_never_resent, |which| {
    let fake = fake();
    let sdk = Sdk::new(which, &Knobs::for_fake(&fake));
    let faults = [
        Fault::ApplyThen { status: 502 },
        Fault::ApplyThen { status: 504 },
        Fault::CutAfter(10),
    ];
    for fault in faults {
        for via_run in [false, true] {
            let name = format!(
                "{fault:?} on {} [{which:?}]",
                if via_run { "run" } else { "create" }
            );
            fake.clear_faults();
            fake.clear_requests();
            let before = fake.prediction_count();
            fake.push_fault(FaultRule::new(
                Matcher::new("POST", "/predictions").origin(Origin::Api),
                fault.clone(),
            ));
            let error = if via_run {
                sdk.run("acme/model").map(drop)
            } else {
                sdk.create("acme/model").map(drop)
            }
            .expect_err(&name);
            println!("{name}: {error}");
            assert!(
                matches!(&error, Error::CreateOutcomeUnknown(_)),
                "{name}: {error:?}"
            );
            assert!(
                error.to_string().contains("may have been created"),
                "{name}"
            );
            assert_eq!(creates(&fake), 1, "{name}: creates sent");
            assert_eq!(fake.prediction_count(), before + 1, "{name}: it exists");
            assert_error_clean(&name, &error);
        }
    }
});

// ---------------------------------------------------------------------------------------------
// 8. The rate-limit target: 200 runs at once against 20 requests a second

/// How many runs are started at once.
const BURST: usize = 200;

both!(
    rate_limited_bursts_create_each_prediction_once,
    SLOW_WATCHDOG,
    |which| {
        let fake = fake_with(|o| o.rate_limit = Some(RateLimit::per_second(20)));
        let mut knobs = Knobs::for_fake(&fake);
        // Sync mode: one request per run when the server is not throttling it (the model takes
        // 25 ms), so the 200 runs need 200 served requests: 10 windows of 1 s.
        knobs.sync_wait = Some(SyncWait::Max);
        knobs.retry = RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(5),
            ..RetryPolicy::default()
        };
        let started = Instant::now();
        let results: Vec<Result<Value, Error>> = match which {
            Which::Ureq => {
                let client = ureq_client(&knobs);
                std::thread::scope(|s| {
                    let handles: Vec<_> = (0..BURST)
                        .map(|_| {
                            let c = client.clone();
                            s.spawn(move || c.run("acme/model", json!({})))
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().expect("run thread"))
                        .collect()
                })
            }
            Which::Reqwest => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("runtime");
                let client = reqwest_client(&knobs);
                rt.block_on(async {
                    let handles: Vec<_> = (0..BURST)
                        .map(|_| {
                            let c = client.clone();
                            tokio::spawn(async move { c.run("acme/model", json!({})).await })
                        })
                        .collect();
                    let mut results = Vec::with_capacity(BURST);
                    for h in handles {
                        results.push(h.await.expect("run task"));
                    }
                    results
                })
            }
        };
        let elapsed = started.elapsed();
        let log = fake.requests();
        let served = log
            .iter()
            .filter(|r| is_create(r) && !r.rate_limited)
            .count();
        let throttled = log
            .iter()
            .filter(|r| is_create(r) && r.rate_limited)
            .count();
        let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        println!(
            "{which:?}: {} runs in {elapsed:?}: {} failed, {served} creates served, {throttled} throttled, {} requests",
            BURST,
            failed.len(),
            log.len()
        );
        assert!(
            failed.is_empty(),
            "{} runs failed: {failed:#?}",
            failed.len()
        );
        assert_eq!(fake.dropped_requests(), 0, "the log kept every request");
        // No create was applied twice: one served create and one prediction per run.
        assert_eq!(served, BURST, "creates served");
        assert_eq!(fake.prediction_count(), BURST, "predictions");
        // 200 served requests at 20 a window need 10 windows of 1 s from the server's start
        // (a little before `started`): the last one opens 9 s after it.
        assert!(elapsed >= Duration::from_secs(8), "{elapsed:?}");
    }
);

// ---------------------------------------------------------------------------------------------
// 9. replicate-ureq: stream watchers stop with their waits

/// The name of the thread running [`watcher_threads_stop_when_their_waits_return`]. Threads it
/// starts without a name (the stream watchers) carry the same OS name, so they can be counted
/// while other tests run in the same process.
const WATCH_THREAD: &str = "hs-watchers";

/// Threads of this process whose OS name is `name`.
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(Result::ok)
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|comm| comm.trim_end() == name)
        })
        .count()
}

#[test]
fn watcher_threads_stop_when_their_waits_return() {
    if !Path::new("/proc/self/task").is_dir() {
        eprintln!("skipped: no /proc/self/task");
        return;
    }
    watchdog(WATCH_THREAD, WATCHDOG, || {
        let fake = fake();
        // A streaming model that runs for a minute and whose stream stays silent meanwhile.
        fake.set_model(
            "acme/slow-text",
            ModelScript::text(["a", "b", "c"]).processing_time(Duration::from_secs(60)),
        );
        let mut knobs = Knobs::for_fake(&fake);
        knobs.timeout = Duration::from_millis(300);
        // Watchers that would go on reopening the silent stream for minutes if not stopped.
        knobs.stream = Some(StreamOptions {
            max_reconnects: 100_000,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            ..StreamOptions::default()
        });
        let client = ureq_client(&knobs);
        let p = client
            .create(CreatePrediction::new(
                Target::parse("acme/slow-text").expect("model"),
            ))
            .expect("setup: create");
        assert!(p.stream_url().is_some(), "it streams");

        let baseline = threads_named(WATCH_THREAD);
        assert_eq!(baseline, 1, "only this thread carries its name");
        for i in 0..10 {
            // Not canceled at the deadline: the prediction (and its stream) goes on.
            let opts = WaitOptions {
                cancel_at_deadline: false,
                ..client.wait_options_within(Duration::from_millis(400))
            };
            let error = client.wait_with(&p.id, opts).expect_err("deadline");
            assert!(
                matches!(
                    &error,
                    Error::DeadlineExceeded {
                        cancel_sent: false,
                        ..
                    }
                ),
                "wait {i}: {error:?}"
            );
        }
        let during = count(&fake, Origin::Files, "GET", "/v1/streams/");
        assert!(
            during >= 10,
            "every wait watched the stream: {during} stream requests"
        );

        // Gone at most one read timeout after their wait returned; polled with a generous bound.
        let bound = Instant::now() + Duration::from_secs(30);
        let mut left = threads_named(WATCH_THREAD);
        while left != baseline && Instant::now() < bound {
            std::thread::sleep(Duration::from_millis(50));
            left = threads_named(WATCH_THREAD);
        }
        assert_eq!(left, baseline, "watcher threads still alive");
        // And nobody reopens the stream any more.
        let after = count(&fake, Origin::Files, "GET", "/v1/streams/");
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(
            count(&fake, Origin::Files, "GET", "/v1/streams/"),
            after,
            "stream requests after the watchers stopped"
        );
        println!("{during} stream requests during the waits");
    });
}

// ---------------------------------------------------------------------------------------------
// 10. File inputs that are not regular files

both!(uploads_of_devices_and_fifos_fail_fast, |which| {
    let fake = fake();
    let sdk = Sdk::new(which, &Knobs::for_fake(&fake));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut inputs: Vec<PathBuf> = vec![dir.path().to_owned()];
    let zero = Path::new("/dev/zero");
    if zero.exists() {
        inputs.push(zero.to_owned());
    } else {
        eprintln!("no /dev/zero: that case is skipped");
    }
    // A FIFO without a writer: opening it for reading would block forever.
    let fifo = dir.path().join("input.fifo");
    match std::process::Command::new("mkfifo").arg(&fifo).status() {
        Ok(status) if status.success() => inputs.push(fifo),
        other => eprintln!("mkfifo unavailable ({other:?}): the FIFO case is skipped"),
    }
    for path in &inputs {
        let upload = sdk.upload_path(path).expect_err("not a regular file");
        let prepared = sdk
            .prepare_input_file(path)
            .expect_err("not a regular file");
        println!("{which:?} {}: {upload}", path.display());
        for e in [&upload, &prepared] {
            assert!(
                matches!(e, Error::InvalidInput(_)),
                "{}: {e:?}",
                path.display()
            );
        }
    }
    assert!(
        fake.requests().is_empty(),
        "nothing was sent: {:#?}",
        fake.requests()
    );
});

// ---------------------------------------------------------------------------------------------
// 11. A deadline bounds a sync-mode create

both!(deadlines_bound_sync_mode_creates, |which| {
    let fake = fake();
    fake.set_model(
        "acme/slow",
        ModelScript::default().processing_time(Duration::from_secs(60)),
    );
    let mut knobs = Knobs::for_fake(&fake);
    knobs.sync_wait = Some(SyncWait::Max);
    let sdk = Sdk::new(which, &knobs);
    let deadline = Duration::from_secs(2);
    let started = Instant::now();
    let opts = sdk.wait_options_within(deadline);
    let create = CreatePrediction::new(Target::parse("acme/slow").expect("model"))
        .input(json!({}))
        .sync(SyncWait::Max);
    let error = sdk.run_with(create, opts).expect_err("deadline");
    let elapsed = started.elapsed();
    println!("{which:?}: {error} after {elapsed:?}");
    let Error::DeadlineExceeded {
        id, cancel_sent, ..
    } = &error
    else {
        panic!("expected DeadlineExceeded, got {error:?}")
    };
    assert!(*cancel_sent, "a cancel was sent at the deadline");
    assert!(elapsed >= deadline, "{elapsed:?}");
    // The server was asked to hold the create no longer than the time left.
    let log = fake.requests();
    let create = log.iter().find(|r| is_create(r)).expect("a create");
    let prefer = create.header("prefer").expect("sync mode");
    let held: u64 = prefer
        .strip_prefix("wait=")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a clamped hold, not {prefer:?}"));
    assert!(held <= deadline.as_secs(), "{prefer}");
    assert_eq!(creates(&fake), 1);
    assert_eq!(
        count(
            &fake,
            Origin::Api,
            "POST",
            &format!("/v1/predictions/{id}/cancel")
        ),
        1
    );
    assert_eq!(sdk.get(id).expect("get").status, Status::Canceled);
});

// ---------------------------------------------------------------------------------------------
// 12. Saved outputs never replace existing files

both!(saved_outputs_never_overwrite, |which| {
    let fake = fake();
    let sdk = Sdk::new(which, &Knobs::for_fake(&fake));
    let p = sdk.run_prediction("fake/urls");
    let real: Vec<Vec<u8>> = urls(&p.output)
        .iter()
        .map(|u| sdk.download(u).expect("setup: download"))
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let files_in_dir = || std::fs::read_dir(dir.path()).expect("dir").count();

    let first = sdk.download_outputs(&p, dir.path()).expect("first save");
    assert_eq!(first.len(), real.len());
    // Mark the originals, to see whether anything writes over them.
    for (i, path) in first.iter().enumerate() {
        std::fs::write(path, format!("original {i}")).expect("mark");
    }

    let second = sdk.download_outputs(&p, dir.path()).expect("second save");
    assert_eq!(second.len(), real.len());
    for (i, (old, new)) in first.iter().zip(&second).enumerate() {
        let stem = old.file_stem().and_then(|s| s.to_str()).expect("stem");
        let name = match old.extension().and_then(|e| e.to_str()) {
            Some(ext) => format!("{stem}-1.{ext}"),
            None => format!("{stem}-1"),
        };
        assert_eq!(new, &dir.path().join(&name), "the second copy is {name}");
        assert_eq!(std::fs::read(new).expect("read"), real[i], "{name}");
        assert_eq!(
            std::fs::read_to_string(old).expect("read"),
            format!("original {i}"),
            "{} untouched",
            old.display()
        );
    }
    assert_eq!(files_in_dir(), 2 * real.len());

    // Over the file cap: nothing is written.
    let capped = SaveOptions {
        max_files: real.len() - 1,
        ..SaveOptions::default()
    };
    let error = sdk
        .download_outputs_with(&p, dir.path(), capped)
        .expect_err("over the cap");
    assert!(matches!(error, Error::Output(_)), "{error:?}");
    assert_eq!(files_in_dir(), 2 * real.len(), "nothing written");

    // Replacing is asked for explicitly.
    let replace = SaveOptions {
        overwrite: true,
        ..SaveOptions::default()
    };
    let third = sdk
        .download_outputs_with(&p, dir.path(), replace)
        .expect("overwrite");
    assert_eq!(third, first);
    for (path, bytes) in third.iter().zip(&real) {
        assert_eq!(&std::fs::read(path).expect("read"), bytes);
    }
    assert_eq!(files_in_dir(), 2 * real.len());
});
