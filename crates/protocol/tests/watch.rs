//! The watch flow, driven by hand: updates from polls, and from the event stream when it is
//! followed.
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, Response, StatusCode};
use replicate_protocol::{
    Config, Flow, Prediction, Progress, Status, Step, StreamOptions, Update, WaitOptions, Watch,
};
use serde_json::json;

const STREAM_URL: &str = "https://stream.replicate.com/v1/files/bcwr-abc";

fn prediction(value: serde_json::Value) -> Prediction {
    serde_json::from_value(value).unwrap()
}

fn starting() -> Prediction {
    prediction(json!({
        "id": "p1", "status": "starting",
        "urls": {"get": "https://api.replicate.com/v1/predictions/p1", "stream": STREAM_URL}
    }))
}

fn json_response(value: serde_json::Value) -> Response<Vec<u8>> {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&value).unwrap())
        .unwrap()
}

/// Everything the watch yields until it asks for I/O or ends.
fn updates(watch: &mut Watch, now: Instant) -> (Vec<Update>, Step<Update, ()>) {
    let mut got = Vec::new();
    loop {
        match watch.poll(now) {
            Step::Yield(u) => got.push(u),
            Step::Send(out) => return (got, Step::Send(out)),
            Step::Receive => return (got, Step::Receive),
            Step::Sleep { until, reason } => return (got, Step::Sleep { until, reason }),
            Step::Done(r) => {
                r.unwrap();
                return (got, Step::Done(()));
            }
        }
    }
}

fn progress(percentage: u32, current: u64, total: u64) -> Progress {
    Progress {
        percentage,
        current,
        total,
    }
}

#[test]
fn a_followed_stream_hands_out_output_and_logs_as_written_then_polls_once() {
    let t0 = Instant::now();
    let mut watch = Watch::new(Config::new("r8_secret"), starting(), WaitOptions::default())
        .follow_stream(StreamOptions::default());
    // A driver following a stream of its own would read it twice.
    assert_eq!(watch.stream_hint(), None);

    let (first, step) = updates(&mut watch, t0);
    assert_eq!(first, vec![Update::Status(Status::Starting)]);
    let Step::Send(out) = step else {
        panic!("the stream is opened at once: {step:?}")
    };
    assert_eq!(out.request.uri().to_string(), STREAM_URL);
    assert_eq!(out.request.headers()["accept"], "text/event-stream");

    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    watch.handle_head(StatusCode::OK, &headers, t0);
    watch.handle_chunk(
        "event: output\ndata: Hel\n\nevent: logs\ndata:  50%|#####     | 2/4\n\nevent: out"
            .as_bytes(),
        t0,
    );
    let (got, step) = updates(&mut watch, t0);
    assert_eq!(
        got,
        vec![
            Update::Status(Status::Processing),
            Update::OutputChunk("Hel".into()),
            Update::Logs(" 50%|#####     | 2/4\n".into()),
            Update::Progress(progress(50, 2, 4)),
        ]
    );
    assert!(matches!(step, Step::Receive), "{step:?}");

    // The rest of the split event, and `done`: the watch polls at once for the final state.
    watch.handle_chunk(b"put\ndata: lo r8_secret\n\nevent: done\ndata: {}\n\n", t0);
    let (got, step) = updates(&mut watch, t0);
    assert_eq!(got, vec![Update::OutputChunk("lo ***".into())]);
    let Step::Send(out) = step else {
        panic!("a poll follows `done`: {step:?}")
    };
    assert_eq!(
        out.request.uri().to_string(),
        "https://api.replicate.com/v1/predictions/p1"
    );
    watch.handle_response(
        json_response(json!({
            "id": "p1", "status": "succeeded", "output": ["Hel", "lo"],
            "logs": " 50%|#####     | 2/4\n100%|##########| 4/4\n"
        })),
        t0 + Duration::from_millis(5),
    );
    let (got, step) = updates(&mut watch, t0 + Duration::from_millis(5));
    assert!(matches!(step, Step::Done(())), "{step:?}");
    assert_eq!(got[0], Update::Status(Status::Succeeded));
    // Only the log text the stream did not carry.
    assert_eq!(got[1], Update::Logs("100%|##########| 4/4\n".into()));
    assert_eq!(got[2], Update::Output(json!(["Hel", "lo"])));
    assert_eq!(got[3], Update::Progress(progress(100, 4, 4)));
    assert!(matches!(&got[4], Update::Finished(p) if p.status == Status::Succeeded));
    assert_eq!(got.len(), 5, "{got:?}");
}

#[test]
fn a_stream_that_fails_falls_back_to_polling() {
    let t0 = Instant::now();
    let opts = StreamOptions {
        max_reconnects: 0,
        ..StreamOptions::default()
    };
    let mut watch = Watch::new(Config::new("r8_secret"), starting(), WaitOptions::default())
        .follow_stream(opts);
    let (_, step) = updates(&mut watch, t0);
    assert!(matches!(step, Step::Send(_)));
    watch.handle_head(StatusCode::NOT_FOUND, &HeaderMap::new(), t0);
    let (_, step) = updates(&mut watch, t0);
    let Step::Send(out) = step else {
        panic!("a poll replaces the stream: {step:?}")
    };
    assert!(out.request.uri().path().ends_with("/predictions/p1"));
}

#[test]
fn without_a_stream_the_watch_polls_and_reports_each_change() {
    let t0 = Instant::now();
    let mut running = starting();
    running.urls = None;
    let mut watch = Watch::new(Config::new("r8_secret"), running, WaitOptions::default())
        .follow_stream(StreamOptions::default());
    let (got, step) = updates(&mut watch, t0);
    assert_eq!(got, vec![Update::Status(Status::Starting)]);
    let Step::Sleep { until, .. } = step else {
        panic!("no stream: the first poll comes after an interval: {step:?}")
    };
    let (_, step) = updates(&mut watch, until);
    assert!(matches!(step, Step::Send(_)), "{step:?}");
    watch.handle_response(
        json_response(json!({"id": "p1", "status": "processing", "logs": "loading\n"})),
        until,
    );
    let (got, _) = updates(&mut watch, until);
    assert_eq!(
        got,
        vec![
            Update::Status(Status::Processing),
            Update::Logs("loading\n".into())
        ]
    );
}
