//! Models, versions, examples, README and search: request snapshots, response fixtures and
//! unit checks.
#![allow(clippy::unwrap_used)]

mod api_support;

use api_support::{build, cfg, check_pagination, fixture, parse_fixture, render, response};
use insta::{assert_json_snapshot, assert_snapshot};
use replicate_protocol::api::{
    CreateModel, DeleteModel, DeleteModelVersion, GetModel, GetModelReadme, GetModelVersion,
    ListModelExamples, ListModelVersions, ListModels, ModelSort, Search, SearchModels,
    SortDirection, UpdateModel, Visibility,
};
use replicate_protocol::{Endpoint, Error, RetryClass, Status};
use serde_json::json;

const VERSION: &str = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa";

// ---------------------------------------------------------------------------
// Request snapshots
// ---------------------------------------------------------------------------

#[test]
fn request_get_model() {
    assert_snapshot!(render(&build(&GetModel::new("replicate", "hello-world"))));
}

#[test]
fn request_list_models() {
    assert_snapshot!("request_list_models", render(&build(&ListModels::new())));
    let sorted = ListModels::new().sort(ModelSort::ModelCreatedAt, SortDirection::Asc);
    assert_snapshot!("request_list_models_sorted", render(&build(&sorted)));
}

#[test]
fn request_create_model() {
    let create = CreateModel::new("alice", "hot-dog-detector", Visibility::Public, "cpu")
        .description("Detect hot dogs in images")
        .github_url("https://github.com/alice/hot-dog-detector")
        .paper_url("https://arxiv.org/abs/2504.17639");
    assert_snapshot!(render(&build(&create)));
    assert_eq!(create.retry_class(), RetryClass::CreateOnce);
}

#[test]
fn request_update_model() {
    let update = UpdateModel::new("alice", "hot-dog-detector")
        .description("Detect hot dogs in images")
        .readme("# Hot Dog Detector\n\n🌭 Ketchup, mustard, and onions...")
        .weights_url("https://huggingface.co/alice/hot-dog-detector")
        .license_url("https://choosealicense.com/licenses/mit/");
    assert_snapshot!(render(&build(&update)));
    assert_eq!(update.retry_class(), RetryClass::Idempotent);
}

#[test]
fn request_delete_model() {
    let delete = DeleteModel::new("alice", "hot-dog-detector");
    assert_snapshot!(render(&build(&delete)));
    assert_eq!(delete.retry_class(), RetryClass::Idempotent);
}

#[test]
fn request_versions() {
    assert_snapshot!(
        "request_list_model_versions",
        render(&build(&ListModelVersions::new("replicate", "hello-world")))
    );
    assert_snapshot!(
        "request_get_model_version",
        render(&build(&GetModelVersion::new(
            "replicate",
            "hello-world",
            VERSION
        )))
    );
    assert_snapshot!(
        "request_delete_model_version",
        render(&build(&DeleteModelVersion::new(
            "replicate",
            "hello-world",
            VERSION
        )))
    );
}

#[test]
fn request_examples_and_readme() {
    assert_snapshot!(
        "request_list_model_examples",
        render(&build(&ListModelExamples::new("replicate", "hello-world")))
    );
    assert_snapshot!(
        "request_get_model_readme",
        render(&build(&GetModelReadme::new("replicate", "hello-world")))
    );
}

#[test]
fn request_search_models() {
    assert_snapshot!(render(&build(&SearchModels::new(
        "super resolution upscaler"
    ))));
}

#[test]
fn request_search() {
    assert_snapshot!(render(&build(&Search::new("nano banana").limit(10))));
}

// ---------------------------------------------------------------------------
// Response fixtures
// ---------------------------------------------------------------------------

#[test]
fn parse_get_model() {
    let model = parse_fixture(&GetModel::new("replicate", "hello-world"), "model_get.json");
    assert_eq!(model.full_name(), "replicate/hello-world");
    let example = model.default_example.as_ref().unwrap();
    assert_eq!(example.status, Status::Succeeded);
    assert_eq!(example.output_text().as_deref(), Some("hello Alice"));
    let latest = model.latest_version.as_ref().unwrap();
    assert_eq!(latest.id, VERSION);
    assert_eq!(latest.input_schema().unwrap()["required"], json!(["text"]));
    assert_eq!(latest.output_schema().unwrap()["type"], "string");
    // Unknown fields are kept.
    assert_eq!(model.extra.get("weights_url"), Some(&json!(null)));
    assert_json_snapshot!(model);
}

#[test]
fn parse_list_models() {
    let page = parse_fixture(&ListModels::new(), "models_list.json");
    assert_eq!(page.results.len(), 2);
    assert_eq!(page.results[0].is_official, Some(true));
    assert!(page.results[1].latest_version.is_none());
    assert_eq!(page.next_cursor().as_deref(), Some("cD0yMDI1LTA5LTEy"));
    assert_json_snapshot!(page);
}

#[test]
fn parse_create_and_update_model() {
    let create = CreateModel::new("alice", "hot-dog-detector", Visibility::Public, "cpu");
    let created = create
        .parse(response(201, fixture("model_created.json")))
        .unwrap();
    assert_eq!(created.visibility.as_deref(), Some("public"));
    assert_eq!(created.run_count, Some(0));
    let update = UpdateModel::new("alice", "hot-dog-detector").description("x");
    let updated = update
        .parse(response(200, fixture("model_created.json")))
        .unwrap();
    assert_eq!(created, updated);
    assert_json_snapshot!(created);
}

#[test]
fn parse_versions() {
    let page = parse_fixture(
        &ListModelVersions::new("replicate", "hello-world"),
        "model_versions_list.json",
    );
    assert_eq!(page.results.len(), 2);
    assert!(page.results[1].openapi_schema.is_none());
    assert!(page.results[1].cog_version.is_none());
    assert_json_snapshot!("parse_list_model_versions", page);

    let version = parse_fixture(
        &GetModelVersion::new("replicate", "hello-world", VERSION),
        "model_version_get.json",
    );
    assert_eq!(
        version.input_schema().unwrap()["properties"]["text"]["type"],
        "string"
    );
    assert_json_snapshot!("parse_get_model_version", version);
}

#[test]
fn parse_examples() {
    let page = parse_fixture(
        &ListModelExamples::new("replicate", "hello-world"),
        "model_examples_list.json",
    );
    assert_eq!(page.results[0].source.as_deref(), Some("web"));
    assert!(page.next_cursor().is_none());
    assert_json_snapshot!(page);
}

#[test]
fn parse_readme() {
    let readme = GetModelReadme::new("replicate", "hello-world");
    let resp = http::Response::builder()
        .status(200)
        .header("content-type", "text/plain; charset=utf-8")
        .body(fixture("model_readme.md"))
        .unwrap();
    let text = readme.parse(resp).unwrap();
    assert!(text.starts_with("# Hello World Model\n"));
    assert!(text.contains("ünïcödé"));
    assert_snapshot!(text);

    // A README that is not UTF-8 is a decode error, a missing one an API error.
    let err = readme.parse(response(200, vec![0xff, 0xfe])).unwrap_err();
    assert!(matches!(err, Error::Decode { status: 200, .. }), "{err:?}");
    let err = readme
        .parse(response(404, r#"{"detail":"Not found.","status":404}"#))
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
}

#[test]
fn parse_deletes() {
    let empty = |status| response(status, Vec::new());
    DeleteModel::new("a", "b").parse(empty(204)).unwrap();
    DeleteModelVersion::new("a", "b", "v")
        .parse(empty(202))
        .unwrap();
    let err = DeleteModel::new("a", "b")
        .parse(response(
            409,
            r#"{"title":"Conflict","detail":"Model has versions","status":409}"#,
        ))
        .unwrap_err();
    assert_eq!(err.status(), Some(409));
}

#[test]
fn parse_search_models() {
    let page = parse_fixture(&SearchModels::new("upscaler"), "models_search.json");
    assert_eq!(page.results[0].full_name(), "nightmareai/real-esrgan");
    assert_json_snapshot!(page);
}

#[test]
fn parse_search() {
    let results = parse_fixture(&Search::new("nano banana"), "search.json");
    assert_eq!(results.query, "nano banana");
    assert_eq!(results.models[0].model.full_name(), "google/nano-banana");
    assert_eq!(results.models[0].metadata.tags.len(), 3);
    assert!(results.collections[1].models.is_none());
    assert_eq!(results.pages[0].href, "/docs/guides/image-editing");
    assert_eq!(results.extra["search_id"], "s_01k5");
    assert_json_snapshot!(results);
}

// ---------------------------------------------------------------------------
// Unit checks
// ---------------------------------------------------------------------------

#[test]
fn search_models_uses_query_with_a_text_body() {
    let req = build(&SearchModels::new("hot dog detector"));
    assert_eq!(req.method().as_str(), "QUERY");
    assert_eq!(req.uri(), "https://proxy.example/replicate/v1/models");
    assert_eq!(req.headers()["content-type"], "text/plain");
    assert_eq!(req.body(), b"hot dog detector");
    // A safe method: retried like a GET.
    assert_eq!(SearchModels::new("x").retry_class(), RetryClass::Idempotent);
    let err = SearchModels::new("  ").request(&cfg()).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)));
}

#[test]
fn search_encodes_query_and_checks_limit() {
    let req = build(&Search::new("a&b=c d/é"));
    assert_eq!(
        req.uri(),
        "https://proxy.example/replicate/v1/search?query=a%26b%3Dc%20d%2F%C3%A9"
    );
    for bad in [0, 51] {
        let err = Search::new("x").limit(bad).request(&cfg()).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{bad}");
    }
    for ok in [1, 50] {
        Search::new("x").limit(ok).request(&cfg()).unwrap();
    }
}

#[test]
fn every_model_list_paginates_through_the_proxy() {
    check_pagination(ListModels::new());
    check_pagination(
        ListModels::new().sort(ModelSort::LatestVersionCreatedAt, SortDirection::Desc),
    );
    check_pagination(ListModelVersions::new("replicate", "hello-world"));
    check_pagination(ListModelExamples::new("replicate", "hello-world"));
    check_pagination(SearchModels::new("upscaler"));
}

#[test]
fn path_segments_are_encoded_and_checked() {
    let req = build(&GetModel::new("we ird", "na/me?x"));
    assert_eq!(
        req.uri(),
        "https://proxy.example/replicate/v1/models/we%20ird/na%2Fme%3Fx"
    );
    for (owner, name) in [("", "x"), ("x", ""), ("..", "x"), ("x", ".")] {
        let err = GetModel::new(owner, name).request(&cfg()).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{owner:?}/{name:?}");
    }
    let err = GetModelVersion::new("a", "b", "..")
        .request(&cfg())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)));
}

#[test]
fn empty_update_is_rejected() {
    let err = UpdateModel::new("a", "b").request(&cfg()).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)));
}

#[test]
fn visibility_round_trips() {
    assert_eq!(
        "private".parse::<Visibility>().unwrap(),
        Visibility::Private
    );
    assert_eq!(Visibility::Public.to_string(), "public");
    assert!("secret".parse::<Visibility>().is_err());
}

#[test]
fn unknown_model_fields_survive_a_round_trip() {
    let body = json!({
        "owner": "a", "name": "b", "future_field": {"nested": [1, 2]},
        "latest_version": {"id": "v", "future_version_field": true}
    });
    let model = GetModel::new("a", "b")
        .parse(response(200, body.to_string()))
        .unwrap();
    assert_eq!(model.extra["future_field"], json!({"nested": [1, 2]}));
    assert_eq!(
        model.latest_version.as_ref().unwrap().extra["future_version_field"],
        json!(true)
    );
    let back = serde_json::to_value(&model).unwrap();
    assert_eq!(back["future_field"], body["future_field"]);
    assert_eq!(back["latest_version"]["future_version_field"], json!(true));
}
