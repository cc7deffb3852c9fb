//! Account, hardware, collections and the webhook secret: request snapshots, response fixtures
//! and unit checks.
#![allow(clippy::unwrap_used)]

mod api_support;

use api_support::{build, check_pagination, parse_fixture, render, response};
use insta::{assert_json_snapshot, assert_snapshot};
use replicate_protocol::api::{
    GetAccount, GetCollection, GetDefaultWebhookSecret, ListCollections, ListHardware,
};
use replicate_protocol::webhook::{self, Verifier};
use replicate_protocol::{Endpoint, Error};
use serde_json::json;

#[test]
fn request_account_hardware_collections_secret() {
    assert_snapshot!("request_get_account", render(&build(&GetAccount::new())));
    assert_snapshot!(
        "request_list_hardware",
        render(&build(&ListHardware::new()))
    );
    assert_snapshot!(
        "request_list_collections",
        render(&build(&ListCollections::new()))
    );
    assert_snapshot!(
        "request_get_collection",
        render(&build(&GetCollection::new("super-resolution")))
    );
    assert_snapshot!(
        "request_get_default_webhook_secret",
        render(&build(&GetDefaultWebhookSecret::new()))
    );
}

#[test]
fn parse_account() {
    let account = parse_fixture(&GetAccount::new(), "account.json");
    assert!(account.is_organization());
    assert_eq!(account.username, "acme");
    assert_eq!(account.extra["billing_plan"], "team");
    assert_json_snapshot!(account);
}

#[test]
fn hardware_is_a_bare_array() {
    let hardware = parse_fixture(&ListHardware::new(), "hardware_list.json");
    assert_eq!(hardware.len(), 5);
    assert_eq!(hardware[1].sku, "gpu-t4");
    assert_eq!(hardware[1].name.as_deref(), Some("Nvidia T4 GPU"));
    assert_eq!(hardware[4].extra["memory_gb"], 80);
    assert_json_snapshot!(hardware);
    // A page is not what this endpoint answers.
    let err = ListHardware::new()
        .parse(response(200, r#"{"results": [], "next": null}"#))
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }));
    assert!(
        ListHardware::new()
            .parse(response(200, "[]"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn parse_collections() {
    let page = parse_fixture(&ListCollections::new(), "collections_list.json");
    assert_eq!(page.results[0].slug, "super-resolution");
    assert_eq!(page.results[1].extra["models_count"], 12);
    assert_json_snapshot!("parse_list_collections", page);

    let collection = parse_fixture(
        &GetCollection::new("super-resolution"),
        "collection_get.json",
    );
    assert_eq!(collection.models.len(), 1);
    assert_eq!(collection.models[0].full_name(), "nightmareai/real-esrgan");
    assert!(
        collection
            .full_description
            .as_deref()
            .unwrap()
            .starts_with("## Overview")
    );
    assert_json_snapshot!("parse_get_collection", collection);
}

#[test]
fn collections_paginate_through_the_proxy() {
    check_pagination(ListCollections::new());
}

#[test]
fn webhook_secret_parses_into_a_verifier_key() {
    let secret = parse_fixture(&GetDefaultWebhookSecret::new(), "webhook_secret.json");
    assert_eq!(
        secret.expose_whsec(),
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
    );
    // It signs and verifies like the webhook module's own secrets.
    let body = br#"{"id":"abc","status":"succeeded"}"#;
    let signature = webhook::sign(&secret, "msg_1", 1_700_000_000, body);
    let verifier = Verifier::new(secret);
    let headers = webhook::WebhookHeaders::new("msg_1", "1700000000", &signature);
    verifier.verify(&headers, body, 1_700_000_010).unwrap();
}

#[test]
fn a_bad_webhook_secret_body_never_leaks_into_the_error() {
    let endpoint = GetDefaultWebhookSecret::new();
    for body in [
        json!({"key": "whsec_!!!not-base64-secretish"}).to_string(),
        json!({"secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"}).to_string(),
        "not json at all whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".to_owned(),
    ] {
        let err = endpoint.parse(response(200, body)).unwrap_err();
        let Error::Decode {
            status, excerpt, ..
        } = &err
        else {
            panic!("expected a decode error, got {err:?}")
        };
        assert_eq!(*status, 200);
        assert!(excerpt.is_empty());
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains("C2FVsBQ"), "{text}");
            assert!(!text.contains("secretish"), "{text}");
        }
    }
    let err = endpoint
        .parse(response(
            401,
            r#"{"title":"Unauthenticated","detail":"You did not pass a valid authentication token","status":401}"#,
        ))
        .unwrap_err();
    assert_eq!(err.status(), Some(401));
}

#[test]
fn the_prediction_list_shares_the_pagination_rules() {
    check_pagination(replicate_protocol::ListPredictions::new());
}
