//! What a caller reads off a prediction and an error: progress from real log shapes, and the
//! error predicates.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use common::{fixture_json, resp};
use proptest::prelude::*;
use replicate_protocol::{
    ClientSettings, Endpoint, Error, GetPrediction, Prediction, Progress, check_status,
};

#[test]
fn progress_is_read_from_real_logs() {
    // The seed guide's flux-schnell answer: its last bar is the finished one.
    let p: Prediction = serde_json::from_value(fixture_json("seed/get_response.json")).unwrap();
    assert_eq!(
        p.progress(),
        Some(Progress {
            percentage: 100,
            current: 4,
            total: 4
        })
    );
    // A canceled SDXL run stopped at step 6 of 50.
    let canceled: Prediction =
        serde_json::from_value(fixture_json("predictions/canceled.json")).unwrap();
    let progress = canceled.progress().unwrap();
    assert_eq!((progress.current, progress.total), (6, 50));
    assert!((progress.fraction() - 0.12).abs() < 1e-9);
    // A prediction without logs has no progress.
    let bare: Prediction = serde_json::from_str(r#"{"id":"x","status":"starting"}"#).unwrap();
    assert_eq!(bare.progress(), None);
}

#[test]
fn errors_answer_the_questions_callers_ask() {
    let status = |code: u16| check_status(&resp(code, r#"{"detail":"x","status":0}"#)).unwrap_err();
    assert!(status(401).is_unauthorized());
    assert!(status(404).is_not_found());
    assert!(status(429).is_rate_limited());
    assert!(!status(500).is_unauthorized());
    assert!(!status(404).is_rate_limited());
    // A missing token has its own variant, before anything is sent.
    let missing = ClientSettings::default().config().unwrap_err();
    assert!(
        missing.is_missing_token() && missing.is_unauthorized(),
        "{missing:?}"
    );
    assert!(!Error::InvalidToken.is_missing_token());
    // The same question through a failure after the create.
    let after = Error::AfterCreate {
        prediction: Box::new(Prediction::with_id("p1")),
        source: Box::new(status(429)),
    };
    assert!(after.is_rate_limited());
    assert_eq!(after.prediction_id(), Some("p1"));
    // An unrelated endpoint's 404 reads the same.
    let e = GetPrediction::new("nope")
        .parse(resp(404, r#"{"detail":"Not found.","status":404}"#))
        .unwrap_err();
    assert!(e.is_not_found());
}

proptest! {
    #[test]
    fn progress_parsing_never_panics(logs in "\\PC{0,120}", bar in "[0-9]{0,4}%\\|[ █▏▎▍▌▋▊▉]{0,10}\\| ?[0-9]{0,6}/[0-9]{0,6}.{0,10}") {
        let _ = Progress::from_logs(&logs);
        let joined = format!("{logs}\n{bar}");
        if let Some(p) = Progress::from_logs(&joined) {
            prop_assert!(p.percentage <= 100);
            prop_assert!((0.0..=1.0).contains(&p.fraction()));
        }
    }
}
