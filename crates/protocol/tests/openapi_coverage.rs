//! Every operation of Replicate's OpenAPI document (`fixtures/api/openapi.yaml`, a copy of the
//! contract) is implemented: for each one, a real endpoint builds a request under a proxy base,
//! and its method and path must match the document. An operation without a builder fails the
//! test, so coverage cannot regress.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use http::Request;
use replicate_protocol::api::{self, CreateFile, Visibility};
use replicate_protocol::{
    CancelPrediction, Config, CreatePrediction, Endpoint, GetPrediction, ListPredictions, Target,
};
use serde_json::json;

const BASE: &str = "https://proxy.example/replicate";
const VERSION: &str = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa";

/// An operation of the document: method, `/v1` path template and operationId.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct DocOp {
    method: String,
    path: String,
    operation_id: Option<String>,
}

/// Reads the `paths:` section with an indentation-based scan: path keys are 2-space-indented
/// keys starting with `/` (possibly quoted), methods 4-space-indented HTTP method keys, and
/// `operationId` a 6-space-indented key under a method.
fn openapi_operations() -> Vec<DocOp> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/api/openapi.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut ops: Vec<DocOp> = Vec::new();
    let mut in_paths = false;
    let mut current_path: Option<String> = None;
    for line in text.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() {
            in_paths = line.trim_end() == "paths:";
            current_path = None;
            continue;
        }
        if !in_paths {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let content = line.trim();
        match indent {
            2 => {
                let key = content
                    .strip_suffix(':')
                    .unwrap_or_else(|| panic!("unexpected path line {line:?}"));
                let key = key.trim_matches(|c| c == '\'' || c == '"');
                assert!(key.starts_with('/'), "unexpected path key {key:?}");
                current_path = Some(key.to_owned());
            }
            4 => {
                let key = content.trim_end_matches(':');
                if content.ends_with(':')
                    && [
                        "get", "post", "put", "patch", "delete", "query", "head", "options",
                    ]
                    .contains(&key)
                {
                    let path = current_path.as_ref().expect("a method under a path");
                    ops.push(DocOp {
                        method: key.to_ascii_uppercase(),
                        path: format!("/v1{path}"),
                        operation_id: None,
                    });
                }
            }
            6 => {
                if let Some(id) = content.strip_prefix("operationId:") {
                    let op = ops.last_mut().expect("an operationId under a method");
                    op.operation_id = Some(id.trim().trim_matches('\'').to_owned());
                }
            }
            _ => {}
        }
    }
    ops
}

fn cfg() -> Config {
    Config::new("hk-proxy-key").with_base_url(BASE).unwrap()
}

fn req<E: Endpoint>(endpoint: E) -> Request<Vec<u8>> {
    endpoint
        .request(&cfg())
        .unwrap_or_else(|e| panic!("building the request failed: {e}"))
}

type Builder = fn() -> Request<Vec<u8>>;

/// One real builder per operation, keyed by method and path template.
fn builders() -> BTreeMap<(&'static str, &'static str), Builder> {
    let table: Vec<(&str, &str, Builder)> = vec![
        ("GET", "/v1/account", || req(api::GetAccount::new())),
        (
            "GET",
            "/v1/collections",
            || req(api::ListCollections::new()),
        ),
        ("GET", "/v1/collections/{collection_slug}", || {
            req(api::GetCollection::new("super-resolution"))
        }),
        (
            "GET",
            "/v1/deployments",
            || req(api::ListDeployments::new()),
        ),
        ("POST", "/v1/deployments", || {
            req(api::CreateDeployment::new(
                "my-app",
                "stability-ai/sdxl",
                VERSION,
                "gpu-t4",
                0,
                3,
            ))
        }),
        (
            "GET",
            "/v1/deployments/{deployment_owner}/{deployment_name}",
            || req(api::GetDeployment::new("acme", "my-app")),
        ),
        (
            "PATCH",
            "/v1/deployments/{deployment_owner}/{deployment_name}",
            || req(api::UpdateDeployment::new("acme", "my-app").min_instances(1)),
        ),
        (
            "DELETE",
            "/v1/deployments/{deployment_owner}/{deployment_name}",
            || req(api::DeleteDeployment::new("acme", "my-app")),
        ),
        (
            "POST",
            "/v1/deployments/{deployment_owner}/{deployment_name}/predictions",
            || {
                req(CreatePrediction::new(
                    Target::deployment("acme/my-app").unwrap(),
                ))
            },
        ),
        ("GET", "/v1/files", || req(api::ListFiles::new())),
        ("POST", "/v1/files", || {
            req(CreateFile::new(b"hello".to_vec(), "hello.txt"))
        }),
        ("GET", "/v1/files/{file_id}", || {
            req(api::GetFile::new("cneqzikepnug6xezperrr4z55o"))
        }),
        ("DELETE", "/v1/files/{file_id}", || {
            req(api::DeleteFile::new("cneqzikepnug6xezperrr4z55o"))
        }),
        ("GET", "/v1/files/{file_id}/download", || {
            req(api::DownloadFile::new(
                "cneqzikepnug6xezperrr4z55o",
                "mattt",
                1708515345,
                "c2ln",
            ))
        }),
        ("GET", "/v1/hardware", || req(api::ListHardware::new())),
        ("GET", "/v1/models", || req(api::ListModels::new())),
        ("POST", "/v1/models", || {
            req(api::CreateModel::new(
                "alice",
                "hot-dog-detector",
                Visibility::Private,
                "cpu",
            ))
        }),
        ("QUERY", "/v1/models", || {
            req(api::SearchModels::new("upscaler"))
        }),
        ("GET", "/v1/models/{model_owner}/{model_name}", || {
            req(api::GetModel::new("replicate", "hello-world"))
        }),
        ("PATCH", "/v1/models/{model_owner}/{model_name}", || {
            req(api::UpdateModel::new("replicate", "hello-world").description("hi"))
        }),
        ("DELETE", "/v1/models/{model_owner}/{model_name}", || {
            req(api::DeleteModel::new("replicate", "hello-world"))
        }),
        (
            "GET",
            "/v1/models/{model_owner}/{model_name}/examples",
            || req(api::ListModelExamples::new("replicate", "hello-world")),
        ),
        (
            "POST",
            "/v1/models/{model_owner}/{model_name}/predictions",
            || {
                req(CreatePrediction::new(
                    "black-forest-labs/flux-schnell".parse().unwrap(),
                ))
            },
        ),
        (
            "GET",
            "/v1/models/{model_owner}/{model_name}/readme",
            || req(api::GetModelReadme::new("replicate", "hello-world")),
        ),
        (
            "GET",
            "/v1/models/{model_owner}/{model_name}/versions",
            || req(api::ListModelVersions::new("replicate", "hello-world")),
        ),
        (
            "GET",
            "/v1/models/{model_owner}/{model_name}/versions/{version_id}",
            || {
                req(api::GetModelVersion::new(
                    "replicate",
                    "hello-world",
                    VERSION,
                ))
            },
        ),
        (
            "DELETE",
            "/v1/models/{model_owner}/{model_name}/versions/{version_id}",
            || {
                req(api::DeleteModelVersion::new(
                    "replicate",
                    "hello-world",
                    VERSION,
                ))
            },
        ),
        (
            "POST",
            "/v1/models/{model_owner}/{model_name}/versions/{version_id}/trainings",
            || {
                req(api::CreateTraining::new(
                    "stability-ai",
                    "sdxl",
                    VERSION,
                    "acme/fine-tuned",
                ))
            },
        ),
        ("GET", "/v1/predictions", || req(ListPredictions::new())),
        ("POST", "/v1/predictions", || {
            req(CreatePrediction::new(Target::Version(VERSION.to_owned()))
                .input(json!({"text": "Alice"})))
        }),
        ("GET", "/v1/predictions/{prediction_id}", || {
            req(GetPrediction::new("gm3qorzdhgbfurvjtvhg6dckhu"))
        }),
        ("POST", "/v1/predictions/{prediction_id}/cancel", || {
            req(CancelPrediction::new("gm3qorzdhgbfurvjtvhg6dckhu"))
        }),
        ("GET", "/v1/search", || req(api::Search::new("nano banana"))),
        ("GET", "/v1/trainings", || req(api::ListTrainings::new())),
        ("GET", "/v1/trainings/{training_id}", || {
            req(api::GetTraining::new("zz4ibbonubfz7carwiefibzgga"))
        }),
        ("POST", "/v1/trainings/{training_id}/cancel", || {
            req(api::CancelTraining::new("zz4ibbonubfz7carwiefibzgga"))
        }),
        ("GET", "/v1/webhooks/default/secret", || {
            req(api::GetDefaultWebhookSecret::new())
        }),
    ];
    let mut map = BTreeMap::new();
    for (method, path, build) in table {
        assert!(
            map.insert((method, path), build).is_none(),
            "duplicate builder for {method} {path}"
        );
    }
    map
}

/// Whether a concrete path matches a template whose `{placeholders}` match any one non-empty
/// segment.
fn path_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter().zip(&p).all(|(t, p)| {
            if t.starts_with('{') && t.ends_with('}') {
                !p.is_empty()
            } else {
                t == p
            }
        })
}

/// Builds the request of an operation and checks it against the template.
fn check_built(method: &str, template: &str, build: Builder) {
    let request = build();
    assert_eq!(
        request.method().as_str(),
        method,
        "{method} {template}: wrong method"
    );
    let uri = request.uri();
    assert_eq!(uri.scheme_str(), Some("https"), "{method} {template}");
    assert_eq!(
        uri.authority().map(|a| a.as_str()),
        Some("proxy.example"),
        "{method} {template}: not sent to the configured base"
    );
    let path = uri
        .path()
        .strip_prefix("/replicate")
        .unwrap_or_else(|| panic!("{method} {template}: {uri} is not under the proxy prefix"));
    assert!(
        path_matches(template, path),
        "{method} {template}: built {path}"
    );
    assert!(
        request.headers().contains_key(http::header::AUTHORIZATION),
        "{method} {template}: no Authorization header"
    );
}

#[test]
fn the_document_scan_finds_the_operations() {
    let ops = openapi_operations();
    // A broken scan must not pass as "nothing to cover".
    assert!(ops.len() >= 35, "only {} operations found", ops.len());
    assert!(ops.iter().all(|o| o.operation_id.is_some()), "{ops:?}");
    let distinct: BTreeSet<_> = ops.iter().map(|o| (&o.method, &o.path)).collect();
    assert_eq!(distinct.len(), ops.len(), "duplicate operations");
}

#[test]
fn every_openapi_operation_builds_a_matching_request() {
    let builders = builders();
    let listed: BTreeMap<(&str, &str), &api::Operation> = api::operations()
        .iter()
        .map(|o| ((o.method, o.path), o))
        .collect();
    let mut missing = Vec::new();
    for op in openapi_operations() {
        let key = (op.method.as_str(), op.path.as_str());
        let Some(build) = builders.get(&key) else {
            missing.push(format!("{} {} ({:?})", op.method, op.path, op.operation_id));
            continue;
        };
        check_built(&op.method, &op.path, *build);
        let entry = listed.get(&key).unwrap_or_else(|| {
            panic!(
                "{} {} is missing from api::operations()",
                op.method, op.path
            )
        });
        assert_eq!(
            Some(entry.operation_id),
            op.operation_id.as_deref(),
            "{} {}: operationId",
            op.method,
            op.path
        );
    }
    assert!(
        missing.is_empty(),
        "OpenAPI operations without an endpoint:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_listed_operation_is_backed_by_a_builder() {
    let builders = builders();
    let listed: BTreeSet<(&str, &str)> = api::operations()
        .iter()
        .map(|o| (o.method, o.path))
        .collect();
    assert_eq!(
        listed.len(),
        api::operations().len(),
        "duplicate entries in api::operations()"
    );
    let table: BTreeSet<(&str, &str)> = builders.keys().copied().collect();
    assert_eq!(listed, table, "api::operations() and the builders differ");
    for ((method, path), build) in &builders {
        check_built(method, path, *build);
    }
    // Beyond the document: only model search with QUERY.
    let documented: BTreeSet<(String, String)> = openapi_operations()
        .into_iter()
        .map(|o| (o.method, o.path))
        .collect();
    let extra: Vec<_> = listed
        .iter()
        .filter(|(m, p)| !documented.contains(&((*m).to_owned(), (*p).to_owned())))
        .collect();
    assert_eq!(extra, vec![&("QUERY", "/v1/models")]);
}

#[test]
fn path_matching_is_strict() {
    assert!(path_matches("/v1/models/{a}/{b}", "/v1/models/x/y"));
    assert!(!path_matches("/v1/models/{a}/{b}", "/v1/models/x"));
    assert!(!path_matches("/v1/models/{a}/{b}", "/v1/models/x/y/z"));
    assert!(!path_matches("/v1/models/{a}", "/v1/models/"));
    assert!(!path_matches("/v1/files", "/v1/file"));
}
