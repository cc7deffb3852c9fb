//! Every flow runs in a `replicate` span carrying its operation, its model and the prediction
//! id as soon as it is known (`replicate_protocol::trace`), for both clients.
#![allow(missing_docs)]

use replicate_protocol::{CreatePrediction, Target};
use replicate_tests::scenario;
use serde_json::json;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::FmtSpan;

mod capture;

/// Runs `f` with a subscriber of debug events and span closes for this thread only (see
/// [`capture::traced`]).
fn traced<T>(f: impl FnOnce() -> T) -> (String, T) {
    capture::traced(LevelFilter::DEBUG, FmtSpan::CLOSE, f)
}

fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

scenario!(a_run_is_traced_with_its_model_and_prediction_id, |env| {
    let create = CreatePrediction::new(Target::parse("stability-ai/sdxl").expect("target"))
        .input(json!({"prompt": "a lighthouse"}));
    let (text, result) = traced(|| env.driver.run_with(create, env.driver.wait_options()));
    let prediction = result.expect("run");
    let id = prediction.id.as_str();

    let sends = lines_with(&text, "sending request");
    assert!(sends.len() >= 2, "a create and at least one poll:\n{text}");
    // Every request of the run is inside its span, with the operation and the model.
    for line in &sends {
        assert!(
            line.contains("replicate{"),
            "outside the span: {line}\n{text}"
        );
        assert!(line.contains("operation=\"run\""), "{line}");
        assert!(line.contains("model=\"stability-ai/sdxl\""), "{line}");
    }
    // The create is sent before the id exists; every later request carries it.
    assert!(!sends[0].contains("prediction_id"), "{}", sends[0]);
    for line in &sends[1..] {
        assert!(
            line.contains(&format!("prediction_id=\"{id}\"")),
            "{line}\n{text}"
        );
    }
    // The span closes once, with the id recorded.
    let closes: Vec<_> = lines_with(&text, "close")
        .into_iter()
        .filter(|l| l.contains("operation=\"run\""))
        .collect();
    assert_eq!(closes.len(), 1, "{text}");
    assert!(closes[0].contains(id), "{}", closes[0]);
});

scenario!(gets_cancels_and_watches_name_their_prediction, |env| {
    let create = CreatePrediction::new(Target::parse("stability-ai/sdxl").expect("target"))
        .input(json!({"prompt": "a lighthouse"}));
    let (text, result) = traced(|| {
        let p = env.driver.create(create)?;
        env.driver.get(&p.id)?;
        env.driver.cancel(&p.id)?;
        Ok::<_, replicate_protocol::Error>(p)
    });
    let id = result.expect("create, get, cancel").id;
    let sends = lines_with(&text, "sending request");
    assert_eq!(sends.len(), 3, "{text}");
    assert!(sends[0].contains("operation=\"create\""), "{}", sends[0]);
    assert!(
        sends[0].contains("model=\"stability-ai/sdxl\""),
        "{}",
        sends[0]
    );
    assert!(sends[1].contains("operation=\"get\""), "{}", sends[1]);
    assert!(sends[2].contains("operation=\"cancel\""), "{}", sends[2]);
    for line in &sends[1..] {
        assert!(line.contains(&format!("prediction_id=\"{id}\"")), "{line}");
    }
    // A handle's updates are a `watch` of the prediction it started.
    let create = CreatePrediction::new(Target::parse("stability-ai/sdxl").expect("target"))
        .input(json!({"prompt": "a lighthouse"}));
    let (watched, result) = traced(|| env.driver.start_and_watch(create));
    let (first, _) = result.expect("start and watch");
    let polls = lines_with(&watched, "operation=\"watch\"");
    assert!(
        polls.iter().any(|l| l.contains("sending request")
            && l.contains(&format!("prediction_id=\"{}\"", first.id))),
        "{watched}"
    );
    // Nothing secret or bulky is a field: no token, no input.
    assert!(!text.contains("a lighthouse"), "{text}");
    assert!(!text.contains(env.fake.token()), "{text}");
});
