//! Trainings: request snapshots, response fixtures, the create-once rule and the shared wait
//! machine.
#![allow(clippy::unwrap_used)]

mod api_support;

use std::time::Instant;

use api_support::{build, cfg, check_pagination, fixture, parse_fixture, render, response};
use insta::{assert_json_snapshot, assert_snapshot};
use replicate_protocol::api::{
    CancelTraining, CreateTraining, GetTraining, ListTrainings, Training, TrainingOutput,
};
use replicate_protocol::{
    Call, Endpoint, Error, Flow, ModelRef, RetryClass, Status, Step, TransportError,
    TransportErrorKind, Wait, WaitOptions, WebhookEvent,
};
use serde_json::json;

const VERSION: &str = "da77bc59ee60423279fd632efb4795ab731d9e3ca9705ef3341091fb989b7eaf";
const ID: &str = "zz4ibbonubfz7carwiefibzgga";

fn create() -> CreateTraining {
    CreateTraining::new("stability-ai", "sdxl", VERSION, "acme/sdxl-fine-tuned")
        .input(json!({"input_images": "https://example.com/my-input-images.zip"}))
        .input_field("max_train_steps", 1000)
        .webhook(
            "https://example.com/my-webhook",
            &[WebhookEvent::Start, WebhookEvent::Completed],
        )
}

#[test]
fn request_create_training() {
    assert_snapshot!(render(&build(&create())));
}

#[test]
fn request_create_training_minimal() {
    let minimal = CreateTraining::new("stability-ai", "sdxl", VERSION, "acme/sdxl-fine-tuned");
    assert_snapshot!(render(&build(&minimal)));
}

#[test]
fn request_get_cancel_list() {
    assert_snapshot!(
        "request_get_training",
        render(&build(&GetTraining::new(ID)))
    );
    assert_snapshot!(
        "request_cancel_training",
        render(&build(&CancelTraining::new(ID)))
    );
    assert_snapshot!(
        "request_list_trainings",
        render(&build(&ListTrainings::new()))
    );
}

#[test]
fn create_training_is_create_once_others_idempotent() {
    assert_eq!(create().retry_class(), RetryClass::CreateOnce);
    assert_eq!(GetTraining::new(ID).retry_class(), RetryClass::Idempotent);
    assert_eq!(
        CancelTraining::new(ID).retry_class(),
        RetryClass::Idempotent
    );
    assert_eq!(ListTrainings::new().retry_class(), RetryClass::Idempotent);
}

#[test]
fn a_lost_create_answer_is_never_resent() {
    let now = Instant::now();
    let mut call = Call::new(create(), cfg());
    let Step::Send(out) = call.poll(now) else {
        panic!("expected a request")
    };
    assert_eq!(out.request.method(), "POST");
    call.handle_error(
        TransportError::new(TransportErrorKind::Io, "connection reset"),
        now,
    );
    match call.poll(now) {
        Step::Done(Err(Error::CreateOutcomeUnknown(_))) => {}
        other => panic!("expected CreateOutcomeUnknown, got {other:?}"),
    }
}

#[test]
fn create_training_checks_its_arguments() {
    let bad_input = create().input(json!([1, 2]));
    assert!(matches!(
        bad_input.request(&cfg()).unwrap_err(),
        Error::InvalidInput(_)
    ));
    for destination in ["no-slash", "acme/x:version", "/x", ""] {
        let c = CreateTraining::new("o", "n", "v", destination);
        assert!(
            matches!(c.request(&cfg()).unwrap_err(), Error::InvalidInput(_)),
            "{destination:?}"
        );
    }
    let model: ModelRef = format!("stability-ai/sdxl:{VERSION}").parse().unwrap();
    let c = CreateTraining::for_version(&model, "acme/sdxl-fine-tuned").unwrap();
    assert_eq!(
        build(&c).uri(),
        format!(
            "https://proxy.example/replicate/v1/models/stability-ai/sdxl/versions/{VERSION}/trainings"
        )
        .as_str()
    );
    let unpinned: ModelRef = "stability-ai/sdxl".parse().unwrap();
    assert!(CreateTraining::for_version(&unpinned, "acme/x").is_err());
}

#[test]
fn parse_create_training() {
    let training: Training = create()
        .parse(response(201, fixture("training_create.json")))
        .unwrap();
    assert_eq!(training.status, Status::Starting);
    assert_eq!(training.extra["destination"], "acme/sdxl-fine-tuned");
    assert_json_snapshot!(training);
}

#[test]
fn parse_get_training() {
    let training = parse_fixture(&GetTraining::new(ID), "training_get.json");
    assert_eq!(training.status, Status::Succeeded);
    let output: TrainingOutput = training.output_as().unwrap();
    assert_eq!(
        output.weights.as_deref(),
        Some("https://replicate.delivery/xezq/trained_model.tar")
    );
    assert!(output.version.unwrap().starts_with("acme/sdxl-fine-tuned:"));
    assert_eq!(
        training.metrics.as_ref().unwrap().predict_time,
        Some(502.713876)
    );
    assert_json_snapshot!(training);
}

#[test]
fn parse_cancel_training() {
    let training = parse_fixture(&CancelTraining::new(ID), "training_canceled.json");
    assert_eq!(training.status, Status::Canceled);
    assert!(matches!(
        training.into_result(),
        Err(Error::PredictionCanceled(_))
    ));
}

#[test]
fn parse_list_trainings() {
    let page = parse_fixture(&ListTrainings::new(), "trainings_list.json");
    assert_eq!(page.results.len(), 2);
    assert_eq!(page.results[1].status, Status::Failed);
    assert_eq!(page.results[1].error_message(), Some("CUDA out of memory"));
    assert!(page.results[1].data_removed);
    assert_eq!(
        page.next_cursor().as_deref(),
        Some("cD0yMDIzLTA5LTA4KzE2JTNBMzI")
    );
    assert_json_snapshot!(page);
}

#[test]
fn trainings_paginate_through_the_proxy() {
    check_pagination(ListTrainings::new());
}

#[test]
fn the_prediction_wait_machine_polls_trainings() {
    let now = Instant::now();
    let mut wait = Wait::new(cfg(), ID, WaitOptions::default()).for_training();
    let Step::Send(out) = wait.poll(now) else {
        panic!("expected a poll")
    };
    assert_eq!(out.request.method(), "GET");
    assert_eq!(
        out.request.uri(),
        "https://proxy.example/replicate/v1/trainings/zz4ibbonubfz7carwiefibzgga"
    );
    // The same request as the GetTraining endpoint.
    assert_eq!(out.request.uri(), build(&GetTraining::new(ID)).uri());
    wait.handle_response(response(200, fixture("training_get.json")), now);
    match wait.poll(now) {
        Step::Done(Ok(training)) => assert_eq!(training.status, Status::Succeeded),
        other => panic!("expected the finished training, got {other:?}"),
    }
}

#[test]
fn training_ids_are_path_segments() {
    let req = build(&GetTraining::new("a/b"));
    assert_eq!(
        req.uri(),
        "https://proxy.example/replicate/v1/trainings/a%2Fb"
    );
    assert!(GetTraining::new("").request(&cfg()).is_err());
    assert!(CancelTraining::new("..").request(&cfg()).is_err());
}
