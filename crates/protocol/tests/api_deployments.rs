//! Deployments: request snapshots, response fixtures and unit checks.
#![allow(clippy::unwrap_used)]

mod api_support;

use api_support::{build, cfg, check_pagination, fixture, parse_fixture, render, response};
use insta::{assert_json_snapshot, assert_snapshot};
use replicate_protocol::api::{
    CreateDeployment, DeleteDeployment, GetDeployment, ListDeployments, UpdateDeployment,
};
use replicate_protocol::{CreatePrediction, Endpoint, Error, RetryClass, Target};
use serde_json::json;

const VERSION: &str = "da77bc59ee60423279fd632efb4795ab731d9e3ca9705ef3341091fb989b7eaf";

#[test]
fn request_list_deployments() {
    assert_snapshot!(render(&build(&ListDeployments::new())));
}

#[test]
fn request_create_deployment() {
    let create = CreateDeployment::new(
        "my-app-image-generator",
        "stability-ai/sdxl",
        VERSION,
        "gpu-t4",
        0,
        3,
    );
    assert_snapshot!(render(&build(&create)));
    assert_eq!(create.retry_class(), RetryClass::CreateOnce);
}

#[test]
fn request_get_deployment() {
    assert_snapshot!(render(&build(&GetDeployment::new(
        "acme",
        "my-app-image-generator"
    ))));
}

#[test]
fn request_update_deployment() {
    let update = UpdateDeployment::new("acme", "my-app-image-generator")
        .min_instances(3)
        .max_instances(10);
    assert_snapshot!(render(&build(&update)));
    assert_eq!(update.retry_class(), RetryClass::Idempotent);
    let full = UpdateDeployment::new("acme", "my-app-image-generator")
        .version(VERSION)
        .hardware("gpu-a40-large");
    assert_snapshot!("request_update_deployment_version", render(&build(&full)));
}

#[test]
fn request_delete_deployment() {
    assert_snapshot!(render(&build(&DeleteDeployment::new(
        "acme",
        "my-app-image-generator"
    ))));
}

#[test]
fn deployment_predictions_use_the_existing_create() {
    let create = CreatePrediction::new(Target::deployment("acme/my-app-image-generator").unwrap())
        .input(json!({"prompt": "A photo of a bear riding a bicycle over the moon"}));
    let req = build(&create);
    assert_eq!(
        req.uri(),
        "https://proxy.example/replicate/v1/deployments/acme/my-app-image-generator/predictions"
    );
}

#[test]
fn parse_deployment() {
    let d = parse_fixture(
        &GetDeployment::new("acme", "my-app-image-generator"),
        "deployment.json",
    );
    let release = d.current_release.as_ref().unwrap();
    assert_eq!(release.number, Some(1));
    assert_eq!(release.created_by.as_ref().unwrap().username, "acme");
    assert_eq!(
        release.configuration.as_ref().unwrap().hardware.as_deref(),
        Some("gpu-t4")
    );
    assert_json_snapshot!(d);
    // Create and update answer with the same object.
    let create = CreateDeployment::new("n", "o/m", VERSION, "cpu", 0, 1);
    assert_eq!(
        create
            .parse(response(200, fixture("deployment.json")))
            .unwrap(),
        d
    );
    let update = UpdateDeployment::new("acme", "my-app-image-generator").min_instances(1);
    assert_eq!(
        update
            .parse(response(200, fixture("deployment.json")))
            .unwrap(),
        d
    );
}

#[test]
fn parse_list_deployments() {
    let page = parse_fixture(&ListDeployments::new(), "deployments_list.json");
    let config = page.results[0]
        .current_release
        .as_ref()
        .unwrap()
        .configuration
        .as_ref()
        .unwrap();
    // Unknown fields are kept at every level.
    assert_eq!(config.extra["scale_down_delay"], "60s");
    assert_eq!(
        page.next_cursor().as_deref(),
        Some("cD0yMDIzLTA2LTA2KzIzJTNBNDAlM0EwOC45NjMwMDAlMkIwMCUzQTAw")
    );
    assert_json_snapshot!(page);
}

#[test]
fn parse_delete_deployment() {
    DeleteDeployment::new("a", "b")
        .parse(response(204, Vec::new()))
        .unwrap();
}

#[test]
fn deployments_paginate_through_the_proxy() {
    check_pagination(ListDeployments::new());
}

#[test]
fn invalid_deployment_requests_are_rejected() {
    let err = UpdateDeployment::new("a", "b").request(&cfg()).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)));
    let err = UpdateDeployment::new("a", "b")
        .min_instances(4)
        .max_instances(2)
        .request(&cfg())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)));
    let err = CreateDeployment::new("n", "o/m", VERSION, "cpu", 3, 1)
        .request(&cfg())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)));
    let err = GetDeployment::new("..", "b").request(&cfg()).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)));
    let req = build(&DeleteDeployment::new("ac me", "x/y"));
    assert_eq!(
        req.uri(),
        "https://proxy.example/replicate/v1/deployments/ac%20me/x%2Fy"
    );
}
