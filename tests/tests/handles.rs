//! Watching and steering a running prediction, both clients: `start`, `updates`, `cancel`,
//! progress, and `stream_run`.
#![allow(missing_docs)]

use std::time::Duration;

use replicate_fake::{Options, TEXT_TOKENS};
use replicate_protocol::sse::ReplicateEvent;
use replicate_protocol::{CreatePrediction, Progress, Status, Target, Update};
use replicate_tests::{fast_options, scenario};
use serde_json::json;

/// A model that stays long enough in each state for a poll to see it.
fn slow_ticks() -> Options {
    Options {
        tick: Duration::from_millis(60),
        ..fast_options()
    }
}

fn flux() -> CreatePrediction {
    CreatePrediction::new(Target::parse("black-forest-labs/flux-schnell").expect("target"))
        .input(json!({"prompt": "a lighthouse", "num_outputs": 1}))
}

scenario!(
    start_returns_while_starting_with_the_id,
    slow_ticks(),
    |env| {
        let (first, updates) = env.driver.start_and_watch(flux()).expect("start");
        assert_eq!(first.status, Status::Starting, "{first:?}");
        assert!(!first.id.is_empty());
        // The handle's id names the prediction the server holds.
        assert_eq!(env.fake.prediction_count(), 1);
        let Some(Update::Finished(done)) = updates.last() else {
            panic!("the last update is the terminal prediction: {updates:?}");
        };
        assert_eq!(done.id, first.id);
        assert_eq!(done.status, Status::Succeeded);
    }
);

scenario!(
    updates_yield_statuses_logs_and_progress_in_order,
    slow_ticks(),
    |env| {
        let (_, updates) = env.driver.start_and_watch(flux()).expect("start");
        let statuses: Vec<&Status> = updates
            .iter()
            .filter_map(|u| match u {
                Update::Status(s) => Some(s),
                _ => None,
            })
            .collect();
        assert_eq!(
            statuses,
            [&Status::Starting, &Status::Processing, &Status::Succeeded],
            "{updates:#?}"
        );
        // The log text, update after update, is the final logs exactly, in order.
        let logs: String = updates
            .iter()
            .filter_map(|u| match u {
                Update::Logs(l) => Some(l.as_str()),
                _ => None,
            })
            .collect();
        let Some(Update::Finished(done)) = updates.last() else {
            panic!("{updates:?}")
        };
        assert_eq!(Some(logs.as_str()), done.logs.as_deref());
        // Progress moves forward and ends at the last bar of the logs.
        let progress: Vec<Progress> = updates
            .iter()
            .filter_map(|u| match u {
                Update::Progress(p) => Some(*p),
                _ => None,
            })
            .collect();
        assert!(!progress.is_empty(), "{updates:#?}");
        assert!(progress.windows(2).all(|w| w[0].current <= w[1].current));
        assert_eq!(progress.last().copied(), done.progress());
        assert_eq!(done.progress().map(|p| p.percentage), Some(100));
    }
);

scenario!(
    cancel_on_a_running_handle_ends_canceled,
    slow_ticks(),
    |env| {
        let create = CreatePrediction::new(Target::parse("fake/slow").expect("target"));
        let done = env.driver.start_and_cancel(create).expect("canceled");
        assert_eq!(done.status, Status::Canceled);
        assert_eq!(env.count("POST", "/cancel"), 1);
    }
);

scenario!(
    run_within_cancels_the_prediction_at_its_timeout,
    slow_ticks(),
    |env| {
        let err = env
            .driver
            .run_within("fake/slow", json!({}), Duration::from_millis(300))
            .expect_err("fake/slow outlasts 300 ms");
        let replicate_protocol::Error::DeadlineExceeded {
            id, cancel_sent, ..
        } = &err
        else {
            panic!("expected DeadlineExceeded, got {err:?}");
        };
        assert!(cancel_sent, "{err}");
        assert_eq!(
            env.count("POST", &format!("/v1/predictions/{id}/cancel")),
            1
        );
        assert_eq!(env.driver.get(id).expect("get").status, Status::Canceled);
    }
);

scenario!(stream_run_yields_the_tokens_and_ends_on_done, |env| {
    let events = env
        .driver
        .create_and_stream("fake/text", json!({"prompt": "hi"}))
        .expect("stream_run");
    let tokens: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            ReplicateEvent::Output(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(tokens, TEXT_TOKENS);
    assert!(matches!(events.last(), Some(ReplicateEvent::Done(_))));
    assert_eq!(env.count("POST", "/predictions"), 1);
});

/// Async only: a dropped guard cancels its prediction, once.
#[test]
fn dropping_a_cancel_on_drop_handle_sends_exactly_one_cancel() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let fake = replicate_fake::FakeServer::start_with(slow_ticks())
            .await
            .expect("fake");
        let client = replicate_reqwest::Client::builder()
            .token(fake.token())
            .base_url(fake.base_url())
            .build()
            .expect("client");
        let create = CreatePrediction::new(Target::parse("fake/slow").expect("target"));
        let mut guard = client.start(create).await.expect("start").cancel_on_drop();
        let id = guard.handle().id().to_owned();
        // The caller gives up on waiting (a timeout, an aborted task): the guard is dropped.
        let gave_up = tokio::time::timeout(Duration::from_millis(50), guard.output()).await;
        assert!(gave_up.is_err(), "fake/slow finished within 50 ms");
        drop(guard);
        // The cancel runs on a spawned task: wait for the prediction to be canceled.
        let mut status = Status::Starting;
        for _ in 0..200 {
            status = client.get(&id).await.expect("get").status;
            if status.is_terminal() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(status, Status::Canceled);
        let cancels = fake
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/cancel"))
            .count();
        assert_eq!(cancels, 1);
        // A guard that saw the end sends nothing.
        let create = CreatePrediction::new(Target::parse("fake/text").expect("target"));
        let mut guard = client.start(create).await.expect("start").cancel_on_drop();
        guard.output().await.expect("output");
        drop(guard);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let cancels = fake
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/cancel"))
            .count();
        assert_eq!(cancels, 1, "no cancel for a finished prediction");
        fake.shutdown().await;
    });
}
