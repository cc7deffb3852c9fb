//! Batches (`Client::batch`) against the fake server, each row for both clients (`…::ureq` and
//! `…::reqwest`):
//!
//! - pacing under the server's rate limit: every input ends, none is created twice;
//! - lost create answers: adopted when the create was applied, resent when it was not, never
//!   created twice, each item's `CreateOutcome` saying which;
//! - a journal resumed after the batch was dropped mid-way (and after a torn last line): no
//!   input created twice, every input ends, the journal stays readable;
//! - a journal of another batch refused and left untouched;
//! - webhook deliveries fed to the batch end items without a single poll.
//!
//! Every test runs under a generous watchdog: a hang fails it instead of blocking the suite. No
//! test asserts an upper bound on wall-clock time.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use replicate_fake::{BlockingFakeServer, RecordedRequest};
use replicate_fake::{Fault, FaultRule, Matcher, ModelScript, Options, Origin, RateLimit, Span};
use replicate_protocol::settings::BatchError;
use replicate_protocol::{
    BatchOptions, Completion, CreateOutcome, Journal, JournalError, JournalRecord, PollPolicy,
    RetryPolicy, Status,
};
use replicate_tests::{
    BatchRequest, BatchRun, Env, WebhookReceiver, Which, fast_options, watchdog,
};
use serde_json::{Value, json};

/// A test that takes longer than this fails: it hung.
const WATCHDOG: Duration = Duration::from_secs(90);
/// The watchdog of the rate-limit row, which takes about 10 s by construction.
const SLOW_WATCHDOG: Duration = Duration::from_secs(240);

/// Declares a test per client, each under the watchdog.
macro_rules! both {
    ($name:ident, |$which:ident| $body:block) => {
        both!($name, WATCHDOG, |$which| $body);
    };
    ($name:ident, $limit:expr, |$which:ident| $body:block) => {
        mod $name {
            use super::*;
            fn body($which: Which) $body
            #[test]
            fn ureq() {
                watchdog(concat!(stringify!($name), "::ureq"), $limit, || {
                    body(Which::Ureq)
                })
            }
            #[test]
            fn reqwest() {
                watchdog(concat!(stringify!($name), "::reqwest"), $limit, || {
                    body(Which::Reqwest)
                })
            }
        }
    };
}

fn env(which: Which, tweak: impl FnOnce(&mut Options)) -> Env {
    let mut opts = fast_options();
    tweak(&mut opts);
    Env::with(which, opts, |_, _| {})
}

/// `n` distinct inputs.
fn inputs(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"prompt": format!("item {i}")}))
        .collect()
}

/// Fast options for tests: quick polls and retries, a short grace before looking up a lost
/// create, a fixed seed.
fn options() -> BatchOptions {
    BatchOptions {
        max_in_flight: 8,
        max_requests: 4,
        create_rate: 200.0,
        read_rate: 400.0,
        poll: PollPolicy::fixed(Duration::from_millis(20)),
        retry: RetryPolicy {
            max_retries: 8,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(5),
            ..RetryPolicy::default()
        },
        lost_grace: Duration::from_millis(200),
        seed: Some(7),
        ..BatchOptions::default()
    }
}

/// Whether a request is a create (`POST …/predictions`) on the API.
fn is_create(r: &RecordedRequest) -> bool {
    r.origin == Origin::Api && r.method == "POST" && r.path.ends_with("/predictions")
}

/// How many times each input was created for real: creates the server applied (not throttled,
/// not refused by a fault that answers alone), by input.
fn applied_creates(fake: &BlockingFakeServer) -> HashMap<String, usize> {
    let mut by_input = HashMap::new();
    for r in fake.requests() {
        let applied = r
            .fault
            .as_ref()
            .is_none_or(|f| matches!(f, Fault::ApplyThen { .. }));
        if is_create(&r) && !r.rate_limited && applied {
            let input = r.json().map(|b| b["input"].to_string()).unwrap_or_default();
            *by_input.entry(input).or_insert(0) += 1;
        }
    }
    by_input
}

/// Asserts that every input of `all` was created exactly once.
fn assert_each_created_once(fake: &BlockingFakeServer, all: &[Value], what: &str) {
    let applied = applied_creates(fake);
    for input in all {
        let n = applied.get(&input.to_string()).copied().unwrap_or(0);
        assert_eq!(n, 1, "{what}: input {input} created {n} times");
    }
    assert_eq!(
        applied.len(),
        all.len(),
        "{what}: creates of unknown inputs"
    );
    assert_eq!(fake.prediction_count(), all.len(), "{what}: predictions");
}

/// The indices of a run's items, checked unique.
fn indices(run: &BatchRun, what: &str) -> Vec<usize> {
    let mut seen: Vec<usize> = run.items.iter().map(|i| i.index).collect();
    seen.sort_unstable();
    let before = seen.len();
    seen.dedup();
    assert_eq!(seen.len(), before, "{what}: an item yielded twice");
    seen
}

fn temp_dir(name: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!(
        "replicate-batch-{name}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

// ---------------------------------------------------------------------------------------------
// 1. Pacing

/// Inputs of the rate-limit row.
const PACED: usize = 200;

both!(
    paced_under_the_rate_limit_without_duplicates,
    SLOW_WATCHDOG,
    |which| {
        // 40 requests a second, all routes together, while the batch would send 20 creates and 40
        // reads a second: it must follow the server's `ratelimit-remaining` / `ratelimit-reset`.
        let env = env(which, |o| o.rate_limit = Some(RateLimit::per_second(40)));
        let all = inputs(PACED);
        let mut request = BatchRequest::new("acme/model", all.clone());
        request.options = Some(BatchOptions {
            max_in_flight: 32,
            max_requests: 8,
            create_rate: 20.0,
            read_rate: 40.0,
            poll: PollPolicy::fixed(Duration::from_millis(100)),
            ..options()
        });
        let run = env.driver.batch(request).expect("batch");
        let summary = run.summary.clone().expect("over");
        let log = env.fake.requests();
        let throttled = log.iter().filter(|r| r.rate_limited).count();
        println!(
            "{which:?}: {} items, {} requests ({throttled} throttled), {} creates sent, {} polls, \
         {} create / {} read 429s, pool {:?}",
            run.items.len(),
            log.len(),
            summary.creates_sent,
            summary.polls_sent,
            summary.create_throttles,
            summary.read_throttles,
            run.pool
        );
        assert!(run.error.is_none(), "{:?}", run.error);
        assert_eq!(summary.succeeded, PACED, "{summary:?}");
        assert_eq!((summary.failed, summary.errors), (0, 0), "{summary:?}");
        assert_eq!(indices(&run, "paced"), (0..PACED).collect::<Vec<_>>());
        for item in &run.items {
            assert_eq!(item.outcome, Some(CreateOutcome::Created), "{item:?}");
            let p = item.result.as_ref().expect("a prediction");
            assert_eq!(p.status, Status::Succeeded);
            assert_eq!(
                p.input, all[item.index],
                "item {} got another's prediction",
                item.index
            );
        }
        assert_eq!(env.fake.dropped_requests(), 0, "the log kept every request");
        assert_each_created_once(&env.fake, &all, "paced");
        // Paced, not hammering: a 429 now and then at a window's edge, not one per request.
        assert!(
            throttled * 10 < log.len(),
            "{throttled} of {} requests throttled",
            log.len()
        );
        assert!(run.pool.0 <= run.pool.1, "pool {:?} over its cap", run.pool);
    }
);

// ---------------------------------------------------------------------------------------------
// 2. Lost creates

/// Inputs of the lost-create rows.
const LOST: usize = 20;

both!(lost_creates_that_were_applied_are_adopted, |which| {
    let env = env(which, |_| {});
    // The first three creates are applied, and their answers replaced by a proxy's 502.
    env.fake.push_fault(
        FaultRule::new(
            Matcher::new("POST", "/predictions").origin(Origin::Api),
            Fault::ApplyThen { status: 502 },
        )
        .times(3),
    );
    let all = inputs(LOST);
    let mut request = BatchRequest::new("acme/model", all.clone());
    request.options = Some(options());
    let run = env.driver.batch(request).expect("batch");
    let summary = run.summary.clone().expect("over");
    assert!(run.error.is_none(), "{:?}", run.error);
    assert_eq!(summary.succeeded, LOST, "{summary:?}");
    assert_eq!(
        (summary.created, summary.adopted, summary.resent),
        (LOST - 3, 3, 0)
    );
    // The items whose create was answered 502 adopted their prediction; the others created it.
    let faulted: Vec<Value> = env
        .fake
        .requests()
        .iter()
        .filter(|r| is_create(r) && r.fault.is_some())
        .filter_map(|r| r.json().map(|b| b["input"].clone()))
        .collect();
    assert_eq!(faulted.len(), 3);
    for item in &run.items {
        let expected = if faulted.contains(&all[item.index]) {
            CreateOutcome::Adopted
        } else {
            CreateOutcome::Created
        };
        assert_eq!(item.outcome, Some(expected), "item {}", item.index);
        let p = item.result.as_ref().expect("a prediction");
        assert_eq!(p.input, all[item.index]);
        assert_eq!(Some(&p.id), item.prediction_id.as_ref());
    }
    assert_each_created_once(&env.fake, &all, "adopted");
    assert!(summary.list_pages >= 1, "the lost creates were looked up");
});

both!(lost_creates_that_were_not_applied_are_resent, |which| {
    let env = env(which, |_| {});
    // The first two creates are cut (connection reset) before the server reads their body.
    env.fake.push_fault(
        FaultRule::new(
            Matcher::new("POST", "/predictions").origin(Origin::Api),
            Fault::ResetBeforeRead,
        )
        .times(2),
    );
    let all = inputs(LOST);
    let mut request = BatchRequest::new("acme/model", all.clone());
    request.options = Some(options());
    let run = env.driver.batch(request).expect("batch");
    let summary = run.summary.clone().expect("over");
    println!("{which:?}: {summary:?}");
    assert!(run.error.is_none(), "{:?}", run.error);
    assert_eq!(summary.succeeded, LOST, "{summary:?}");
    assert_eq!(
        (summary.created, summary.adopted, summary.resent),
        (LOST - 2, 0, 2)
    );
    let resent = run
        .items
        .iter()
        .filter(|i| i.outcome == Some(CreateOutcome::Resent))
        .count();
    assert_eq!(resent, 2);
    for item in &run.items {
        let p = item.result.as_ref().expect("a prediction");
        assert_eq!(p.input, all[item.index]);
    }
    assert_each_created_once(&env.fake, &all, "resent");
});

// ---------------------------------------------------------------------------------------------
// 3. Journals

/// Inputs of the resume row.
const RESUMED: usize = 30;

both!(a_resumed_journal_creates_nothing_twice, |which| {
    let env = env(which, |_| {});
    // 100 ms of processing: several items are in flight whenever the batch is dropped.
    env.fake.set_model(
        "acme/slow",
        ModelScript {
            starting: Span::Ticks(2),
            processing: Span::Ticks(20),
            ..ModelScript::default()
        },
    );
    let dir = temp_dir("resume");
    let path = dir.join("journal.jsonl");
    let all = inputs(RESUMED);
    let request = |take: Option<usize>| {
        let mut r = BatchRequest::new("acme/slow", all.clone());
        r.options = Some(options());
        r.journal = Some(path.clone());
        r.take = take;
        r
    };

    // Run 1: dropped after 10 items, as a process killed mid-batch.
    let first = env.driver.batch(request(Some(10))).expect("run 1");
    assert_eq!(first.items.len(), 10);
    assert!(first.summary.is_none(), "dropped before its end");
    // Killed again, mid-write: a torn record at the end of the journal.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("journal");
        f.write_all(br#"{"type":"done","item":"#)
            .expect("torn line");
    }
    // Run 2: resumes, dropped after 10 more items.
    let second = env.driver.batch(request(Some(10))).expect("run 2");
    assert_eq!(second.items.len(), 10);
    // Run 3: resumes to the end.
    let third = env.driver.batch(request(None)).expect("run 3");
    let summary = third.summary.clone().expect("over");
    println!("{which:?}: run 3: {summary:?}");
    assert!(third.error.is_none(), "{:?}", third.error);
    assert_eq!(summary.errors + summary.failed, 0, "{summary:?}");
    assert_eq!(
        summary.already_done + third.items.len(),
        RESUMED,
        "{summary:?}"
    );

    for (n, run) in [&first, &second, &third].iter().enumerate() {
        let outcomes: Vec<_> = run.items.iter().map(|i| i.outcome).collect();
        println!("{which:?}: run {}: {outcomes:?}", n + 1);
    }
    // Every input ended; an item is yielded again only when the run dropped right after it
    // (its `done` is written when the next item is asked for).
    let mut times: BTreeMap<usize, usize> = BTreeMap::new();
    for run in [&first, &second, &third] {
        for i in indices(run, "a run") {
            *times.entry(i).or_insert(0) += 1;
        }
    }
    assert_eq!(
        times.keys().copied().collect::<Vec<_>>(),
        (0..RESUMED).collect::<Vec<_>>()
    );
    let again: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        again.len() <= 2 && again.iter().all(|(_, n)| **n == 2),
        "{again:?}"
    );
    for run in [&first, &second, &third] {
        for item in &run.items {
            let p = item.result.as_ref().expect("a prediction");
            assert_eq!(p.status, Status::Succeeded);
            assert_eq!(p.input, all[item.index]);
        }
    }
    assert_each_created_once(&env.fake, &all, "resumed");

    // The journal is whole (the torn line was cut before appending) and says every item is done.
    let bytes = std::fs::read(&path).expect("journal");
    let journal = Journal::parse(&bytes).expect("a readable journal");
    assert!(!journal.torn);
    assert_eq!(journal.header.items, RESUMED);
    let mut done = [false; RESUMED];
    for record in &journal.records {
        if let JournalRecord::Done { item, .. } = record {
            done[*item] = true;
        }
    }
    assert!(done.iter().all(|d| *d), "items without a done record");

    // Run 4: nothing left, nothing sent.
    env.fake.clear_requests();
    let fourth = env.driver.batch(request(None)).expect("run 4");
    assert!(fourth.items.is_empty());
    assert_eq!(fourth.summary.expect("over").already_done, RESUMED);
    assert_eq!(env.fake.requests().len(), 0, "requests of a finished batch");
    let _ = std::fs::remove_dir_all(&dir);
});

both!(
    a_resumed_journal_looks_up_the_creates_it_did_not_see_answered,
    |which| {
        // Run 1 loses one create's answer (applied, then 502; or reset before it was read) and is
        // killed before looking it up: its journal has that item's intent and no `created`. Run 2
        // looks it up: adopted when it was applied, resent when it was not.
        for (fault, expected) in [
            (Fault::ApplyThen { status: 502 }, CreateOutcome::Adopted),
            (Fault::ResetBeforeRead, CreateOutcome::Resent),
        ] {
            let env = env(which, |_| {});
            let name = format!("{fault:?} [{which:?}]");
            env.fake.push_fault(FaultRule::new(
                Matcher::new("POST", "/predictions").origin(Origin::Api),
                fault,
            ));
            let dir = temp_dir("lookup");
            let path = dir.join("journal.jsonl");
            let all = inputs(5);
            let request = |grace: Duration, take: Option<usize>| {
                let mut r = BatchRequest::new("acme/model", all.clone());
                r.options = Some(BatchOptions {
                    lost_grace: grace,
                    ..options()
                });
                r.journal = Some(path.clone());
                r.take = take;
                r
            };
            // The lost item waits an hour before its lookup: the four others end, then the batch
            // is dropped.
            let first = env
                .driver
                .batch(request(Duration::from_secs(3600), Some(4)))
                .expect("run 1");
            let lost: Vec<usize> = (0..5)
                .filter(|i| first.items.iter().all(|item| item.index != *i))
                .collect();
            assert_eq!(lost.len(), 1, "{name}");
            let second = env
                .driver
                .batch(request(Duration::from_millis(100), None))
                .expect("run 2");
            let summary = second.summary.clone().expect("over");
            println!("{name}: run 2: {summary:?}");
            assert!(second.error.is_none(), "{name}: {:?}", second.error);
            let item = second
                .items
                .iter()
                .find(|item| item.index == lost[0])
                .expect("the lost item ends in run 2");
            assert_eq!(item.outcome, Some(expected), "{name}");
            let p = item.result.as_ref().expect("a prediction");
            assert_eq!(p.input, all[lost[0]], "{name}");
            assert_eq!(summary.list_pages, 1, "{name}: one lookup");
            assert_each_created_once(&env.fake, &all, &name);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
);

/// Runs a batch expected to be refused for its journal, and returns why.
fn refused(env: &Env, model: &str, all: Vec<Value>, path: &Path, id: Option<&str>) -> JournalError {
    let mut request = BatchRequest::new(model, all);
    request.options = Some(options());
    request.journal = Some(path.to_owned());
    request.inputs_id = id.map(str::to_owned);
    match env.driver.batch(request) {
        Err(BatchError::Journal { source, path: p }) => {
            assert_eq!(p, path);
            source
        }
        other => panic!("not refused: {other:?}"),
    }
}

both!(a_journal_of_another_batch_is_refused, |which| {
    let env = env(which, |_| {});
    let dir = temp_dir("refused");
    let path = dir.join("journal.jsonl");
    let all = inputs(3);
    let mut request = BatchRequest::new("acme/model", all.clone());
    request.options = Some(options());
    request.journal = Some(path.clone());
    let run = env.driver.batch(request).expect("batch");
    assert_eq!(run.items.len(), 3);
    let bytes = std::fs::read(&path).expect("journal");
    let creates = env.fake.requests().iter().filter(|r| is_create(r)).count();

    let field = |e: JournalError| match e {
        JournalError::Mismatch { field, .. } => field,
        e => panic!("not a mismatch: {e:?}"),
    };
    assert_eq!(
        field(refused(&env, "acme/other", all.clone(), &path, None)),
        "target"
    );
    assert_eq!(
        field(refused(
            &env,
            "acme/model",
            inputs(4)[1..].to_vec(),
            &path,
            None
        )),
        "inputs"
    );
    assert_eq!(
        field(refused(
            &env,
            "acme/model",
            all.clone(),
            &path,
            Some("file-v2")
        )),
        "inputs"
    );
    assert_eq!(
        field(refused(&env, "acme/model", inputs(4), &path, None)),
        "inputs"
    );
    assert_eq!(
        std::fs::read(&path).expect("journal"),
        bytes,
        "the journal was touched"
    );

    // A file that is not a journal is refused too, and left as it was.
    let other = dir.join("notes.txt");
    std::fs::write(&other, "my notes\nmore notes\n").expect("write");
    let e = refused(&env, "acme/model", all.clone(), &other, None);
    assert!(matches!(e, JournalError::Corrupt { line: 1, .. }), "{e:?}");
    assert_eq!(
        std::fs::read(&other).expect("notes"),
        b"my notes\nmore notes\n"
    );
    // A device is no journal: refused at once rather than read without end.
    let mut request = BatchRequest::new("acme/model", all.clone());
    request.options = Some(options());
    request.journal = Some(std::path::PathBuf::from("/dev/zero"));
    match env.driver.batch(request) {
        Err(BatchError::Io { .. }) => {}
        other => panic!("a device taken as a journal: {other:?}"),
    }
    let after = env.fake.requests().iter().filter(|r| is_create(r)).count();
    assert_eq!(after, creates, "a refused batch sent creates");
    let _ = std::fs::remove_dir_all(&dir);
});

// ---------------------------------------------------------------------------------------------
// 4. Webhooks

/// Inputs of the webhook row.
const HOOKED: usize = 12;

both!(webhook_deliveries_end_items_without_polls, |which| {
    let env = env(which, |_| {});
    let receiver = WebhookReceiver::start().expect("receiver");
    let secret = env.driver.webhook_secret().expect("secret");
    let (feed, deliveries) = mpsc::channel();
    let all = inputs(HOOKED);
    let mut request = BatchRequest::new("acme/model", all.clone());
    request.options = Some(BatchOptions {
        // A safety poll far away: only deliveries can end the items.
        completion: Completion::Webhook {
            safety_interval: Duration::from_secs(600),
        },
        ..options()
    });
    request.webhook = Some(receiver.url().to_owned());
    request.feed = Some(deliveries);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The webhook handler: verifies each delivery and feeds it to the batch.
    let handler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut fed = 0;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                let Some(hook) = receiver.recv_timeout(Duration::from_millis(20)) else {
                    continue;
                };
                let now = replicate_protocol::webhook::unix_timestamp(std::time::SystemTime::now());
                let prediction = replicate_protocol::webhook::verify_prediction(
                    &secret,
                    &hook.headers,
                    &hook.body,
                    now,
                )
                .expect("a verified delivery");
                if feed.send(prediction).is_ok() {
                    fed += 1;
                }
            }
            fed
        })
    };
    let run = env.driver.batch(request).expect("batch");
    stop.store(true, std::sync::atomic::Ordering::Release);
    let fed = handler.join().expect("handler");
    let summary = run.summary.clone().expect("over");
    assert!(run.error.is_none(), "{:?}", run.error);
    assert_eq!(summary.succeeded, HOOKED, "{summary:?}");
    assert!(fed >= HOOKED, "{fed} deliveries fed");
    assert_eq!(summary.polls_sent, 0, "{summary:?}");
    let log = env.fake.requests();
    for item in &run.items {
        let id = item.prediction_id.as_deref().expect("an id");
        let gets = log
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with(&format!("/predictions/{id}")))
            .count();
        assert_eq!(gets, 0, "prediction {id} polled {gets} times");
        let p = item.result.as_ref().expect("a prediction");
        assert_eq!(p.status, Status::Succeeded);
        assert_eq!(p.input, all[item.index]);
    }
    assert_each_created_once(&env.fake, &all, "webhooks");
});
