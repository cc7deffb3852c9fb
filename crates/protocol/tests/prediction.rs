//! Predictions: the status machine, outcomes and output helpers, on the fixtures.
#![allow(clippy::unwrap_used)]

mod common;

use common::{fixture, resp};
use replicate_protocol::{Error, Prediction, Status, parse_prediction};
use serde::Deserialize;
use serde_json::json;

fn load(rel: &str) -> Prediction {
    parse_prediction(&resp(200, fixture(rel))).unwrap()
}

const ALL: [Status; 6] = [
    Status::Starting,
    Status::Processing,
    Status::Succeeded,
    Status::Failed,
    Status::Canceled,
    Status::Aborted,
];

#[test]
fn status_wire_forms() {
    for s in ALL {
        assert_eq!(Status::parse(s.as_str()), s);
        assert_eq!(s.to_string(), s.as_str());
        assert_eq!(serde_json::to_value(&s).unwrap(), json!(s.as_str()));
        assert_eq!(
            serde_json::from_value::<Status>(json!(s.as_str())).unwrap(),
            s
        );
    }
    assert_eq!(Status::parse("cancelled"), Status::Canceled);
    assert_eq!(Status::parse("quantum"), Status::Unknown("quantum".into()));
    assert_eq!(
        Status::parse("Succeeded"),
        Status::Unknown("Succeeded".into())
    );
    assert_eq!(Status::Unknown("quantum".into()).as_str(), "quantum");
}

#[test]
fn terminal_set() {
    let terminal: Vec<_> = ALL.iter().filter(|s| s.is_terminal()).cloned().collect();
    assert_eq!(
        terminal,
        [
            Status::Succeeded,
            Status::Failed,
            Status::Canceled,
            Status::Aborted
        ]
    );
    assert!(!Status::Unknown("queued".into()).is_terminal());
}

#[test]
fn status_transitions() {
    use Status::*;
    let allowed = |a: &Status, b: &Status| a.can_transition_to(b);
    // From starting: anywhere.
    for next in ALL {
        assert!(allowed(&Starting, &next), "starting -> {next}");
    }
    // From processing: not back to starting, never aborted.
    for (next, ok) in [
        (Starting, false),
        (Processing, true),
        (Succeeded, true),
        (Failed, true),
        (Canceled, true),
        (Aborted, false),
    ] {
        assert_eq!(allowed(&Processing, &next), ok, "processing -> {next}");
    }
    // Terminal statuses never change, except to themselves.
    for from in [Succeeded, Failed, Canceled, Aborted] {
        for next in ALL {
            assert_eq!(allowed(&from, &next), from == next, "{from} -> {next}");
        }
        assert!(!allowed(&from, &Unknown("x".into())));
    }
    // Unknown statuses go anywhere and come from anywhere non-terminal.
    let q = Unknown("quantum".into());
    for s in ALL {
        assert!(allowed(&q, &s), "quantum -> {s}");
        assert_eq!(allowed(&s, &q), !s.is_terminal(), "{s} -> quantum");
    }
}

#[test]
fn into_result_per_status() {
    let ok = load("seed/get_response.json").into_result().unwrap();
    assert_eq!(ok.id, "ctdwaehfz1rm80cmd5nsjd8114");

    match load("predictions/failed.json").into_result() {
        Err(Error::PredictionFailed(p)) => {
            assert!(p.error_message().unwrap().starts_with("CUDA out of memory"));
            assert!(p.logs.as_deref().unwrap().contains("Traceback"));
        }
        other => panic!("{other:?}"),
    }
    match load("predictions/canceled.json").into_result() {
        Err(e @ Error::PredictionCanceled(_)) => {
            assert_eq!(e.prediction().unwrap().id, "v0vd5c0zcnrme0cmd6f8qm1f6w");
            assert_eq!(
                e.to_string(),
                "prediction v0vd5c0zcnrme0cmd6f8qm1f6w was canceled"
            );
        }
        other => panic!("{other:?}"),
    }
    match load("predictions/aborted.json").into_result() {
        Err(Error::PredictionAborted(p)) => {
            assert!(p.started_at.is_none());
            assert!(p.deadline.is_some());
        }
        other => panic!("{other:?}"),
    }
    for (rel, status) in [
        ("seed/create_response.json", Status::Starting),
        (
            "predictions/processing_partial_logs.json",
            Status::Processing,
        ),
        (
            "predictions/unknown_status_and_fields.json",
            Status::Unknown("quantum".into()),
        ),
    ] {
        let p = load(rel);
        let id = p.id.clone();
        assert_eq!(
            p.into_result().unwrap_err(),
            Error::NotFinished { id, status },
            "{rel}"
        );
    }
}

#[test]
fn seed_documented_responses() {
    let created = load("seed/create_response.json");
    assert_eq!(created.id, "qpt5jq1fssrmc0cmd5hvy31mdg");
    assert_eq!(created.status, Status::Starting);
    assert_eq!(
        created.version.as_deref(),
        Some("dp-4d0bcc010b3049749a251855f12800be")
    );
    assert_eq!(created.output, json!(null));
    assert_eq!(created.logs.as_deref(), Some(""));
    assert_eq!(
        created.stream_url(),
        Some(
            "https://stream.replicate.com/v1/files/bcwr-gvuc2rokjozhlaxh6dcvk6tvhh2ymt4egnnpxvmtqql57angyfsq"
        )
    );
    assert_eq!(created.created_at.unwrap().millisecond(), 566);

    let got = load("seed/get_response.json");
    assert_eq!(got.status, Status::Succeeded);
    assert_eq!(
        got.output_url(),
        Some(
            "https://replicate.delivery/xezq/RoEhEdyl8PoIGFFPg46TU4Svj24i1NDVYmzehJfqLuX9nTFUA/out-0.jpg"
        )
    );
    assert_eq!(got.started_at.unwrap().nanosecond(), 584_470_194);
    let metrics = got.metrics.as_ref().unwrap();
    assert_eq!(metrics.predict_time, Some(0.557916184));
    assert_eq!(metrics.other["image_count"], json!(1));
    assert!(got.logs.unwrap().contains("Total safe images: 1 out of 1"));
}

#[test]
fn output_helpers() {
    let image = load("seed/get_response.json");
    assert_eq!(image.output_urls().len(), 1);
    assert_eq!(image.output_text().unwrap(), image.output_url().unwrap());

    let audio = load("predictions/output_string.json");
    assert_eq!(
        audio.output_url(),
        Some(
            "https://replicate.delivery/xezq/Ue8BfqFC5FRfnkpdesEbXRqdeeAyjqxzYjwHbGnO5o0FuqoKA/output.mp3"
        )
    );
    assert_eq!(audio.output_urls(), vec![audio.output_url().unwrap()]);
    assert_eq!(
        audio.output_as::<String>().unwrap(),
        audio.output_url().unwrap()
    );

    let tokens = load("predictions/output_text_tokens.json");
    assert_eq!(
        tokens.output_text().unwrap(),
        "Soft wool on the hills,\nGentle eyes watch the clouds,\nLlamas hum at dusk."
    );
    assert_eq!(tokens.output_urls().len(), 18);
    assert_eq!(tokens.output_as::<Vec<String>>().unwrap().len(), 18);

    let transcript = load("predictions/output_json.json");
    assert_eq!(transcript.output_url(), None);
    assert!(transcript.output_urls().is_empty());
    assert_eq!(transcript.output_text(), None);
    #[derive(Deserialize)]
    struct Segment {
        start: f64,
        end: f64,
        text: String,
    }
    #[derive(Deserialize)]
    struct Whisper {
        transcription: String,
        segments: Vec<Segment>,
    }
    let w: Whisper = transcript.output_as().unwrap();
    assert_eq!(
        w.transcription,
        "Thanks for having me. It is a pleasure to be here."
    );
    assert_eq!(w.segments.len(), 2);
    assert_eq!((w.segments[1].start, w.segments[1].end), (2.48, 5.02));
    assert_eq!(w.segments[0].text, " Thanks for having me.");
    assert!(matches!(
        transcript.output_as::<Vec<String>>(),
        Err(Error::Output(_))
    ));

    let removed = load("predictions/data_removed.json");
    assert!(removed.data_removed);
    assert_eq!(removed.input, json!({}));
    assert_eq!(removed.output_url(), None);
    assert_eq!(removed.output_text(), None);
    assert_eq!(removed.output_as::<Option<String>>().unwrap(), None);

    // Mixed lists: url skips non-strings, text refuses them.
    let mut mixed = image.clone();
    mixed.output = json!([1, "https://x/a.png", null, "https://x/b.png"]);
    assert_eq!(mixed.output_url(), Some("https://x/a.png"));
    assert_eq!(mixed.output_urls(), ["https://x/a.png", "https://x/b.png"]);
    assert_eq!(mixed.output_text(), None);
}

#[test]
fn unknown_status_and_fields_are_kept() {
    let p = load("predictions/unknown_status_and_fields.json");
    assert_eq!(p.status, Status::Unknown("quantum".into()));
    assert!(!p.status.is_terminal());
    assert_eq!(p.extra["priority"], json!(7));
    assert_eq!(
        p.extra["hardware"]["features"]["regions"][1],
        json!("eu-west-3")
    );
    assert_eq!(p.extra["tags"][1]["experiment"], json!("qx-42"));
    assert_eq!(
        p.urls.as_ref().unwrap().extra["observe"],
        json!("https://api.replicate.com/v1/predictions/q8jz3kh2e1rmc0cmd6mf0h4g1m/observe")
    );
    assert_eq!(
        p.metrics.as_ref().unwrap().other["coherence"]["t1_us"],
        json!(120.5)
    );
    assert_eq!(p.source.as_deref(), Some("web"));
    // Re-serialising keeps the unknown status and fields.
    let back = serde_json::to_value(&p).unwrap();
    assert_eq!(back["status"], json!("quantum"));
    assert_eq!(back["hardware"]["count"], json!(2));
    let again: Prediction = serde_json::from_value(back).unwrap();
    assert_eq!(again, p);
}

#[test]
fn other_fixtures() {
    let hidden = load("predictions/hidden_version.json");
    assert_eq!(hidden.version.as_deref(), Some("hidden"));
    assert_eq!(hidden.deployment.as_deref(), Some("acme/upscaler-prod"));

    let deadline = load("predictions/deadline.json");
    assert_eq!(deadline.status, Status::Starting);
    let d = deadline.deadline.unwrap();
    assert_eq!((d - deadline.created_at.unwrap()).whole_seconds(), 300);

    let partial = load("predictions/processing_partial_logs.json");
    assert_eq!(partial.status, Status::Processing);
    assert_eq!(partial.output_text().as_deref(), Some("Soft wool on the"));
    assert!(partial.completed_at.is_none());

    let structured = Prediction {
        error: json!({"type": "oom"}),
        ..partial
    };
    assert!(structured.error_message().unwrap().contains("structured"));
}

#[test]
fn minimal_and_odd_bodies() {
    let p: Prediction = serde_json::from_value(json!({"id": "x", "status": "starting"})).unwrap();
    assert_eq!(p.input, json!(null));
    assert_eq!(p.logs, None);
    assert!(!p.data_removed);
    // A missing status or id is a decode error, not a panic.
    for body in [
        r#"{"id":"x"}"#,
        r#"{"status":"starting"}"#,
        "[]",
        "",
        "null",
    ] {
        match parse_prediction(&resp(200, body)) {
            Err(Error::Decode {
                status: 200,
                excerpt,
                ..
            }) => assert_eq!(excerpt, body),
            other => panic!("{body:?}: {other:?}"),
        }
    }
}

#[test]
fn seed_responses_reserialise_to_the_same_json() {
    for rel in ["seed/create_response.json", "seed/get_response.json"] {
        let original: serde_json::Value = serde_json::from_slice(&fixture(rel)).unwrap();
        let back = serde_json::to_value(load(rel)).unwrap();
        assert_eq!(back, original, "{rel}");
    }
}
