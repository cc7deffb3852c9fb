//! The saved schemas of the fake's built-in models (`schemas/<module>.json`, which `build.rs`
//! generates modules from, so that builds need no server) are what the fake serves.
//!
//! When the fake's models change, regenerate them with
//! `REPLICATE_UPDATE_SCHEMAS=1 cargo test -p replicate-typed-tests --test schemas`, then update
//! `src/lib.rs` and `tests/run.rs` for new or changed models.

use std::collections::BTreeSet;
use std::path::PathBuf;

use replicate_fake::{BUILTIN_MODELS, BlockingFakeServer};
use replicate_protocol::api::GetModel;
use serde_json::{Value, json};

/// The module (and file) name of a model: `black-forest-labs/flux-schnell` is
/// `black_forest_labs_flux_schnell`.
fn module_name(model: &str) -> String {
    model.replace(['/', '-', '.'], "_")
}

/// What a saved file holds: the model object of `GET /v1/models/{owner}/{name}`, cut to the
/// model's name and its latest version's id and schema.
fn served(client: &replicate_ureq::Client, model: &str) -> Value {
    let (owner, name) = model.split_once('/').expect("owner/name");
    let m = client
        .execute(GetModel::new(owner, name))
        .unwrap_or_else(|e| panic!("GET model {model}: {e}"));
    let version = m
        .latest_version
        .unwrap_or_else(|| panic!("{model} has no latest version"));
    json!({
        "owner": owner,
        "name": name,
        "latest_version": {"id": version.id, "openapi_schema": version.openapi_schema},
    })
}

#[test]
fn saved_schemas_are_what_the_fake_serves() {
    let fake = BlockingFakeServer::start().expect("fake server");
    let client = replicate_ureq::Client::builder()
        .token(fake.token())
        .base_url(fake.base_url())
        .build()
        .expect("client");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let update = std::env::var_os("REPLICATE_UPDATE_SCHEMAS").is_some();

    let mut expected = BTreeSet::new();
    let mut drifted = Vec::new();
    for model in BUILTIN_MODELS {
        let file = format!("{}.json", module_name(model));
        let path = dir.join(&file);
        expected.insert(file);
        let now = served(&client, model);
        let saved: Option<Value> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if saved.as_ref() != Some(&now) {
            if update {
                let text = serde_json::to_string_pretty(&now).expect("JSON") + "\n";
                std::fs::write(&path, text).expect("write the saved schema");
            } else {
                drifted.push(model.to_string());
            }
        }
    }
    let mut stale = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("schemas/") {
        let path = entry.expect("entry").path();
        let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
        if file.ends_with(".json") && !expected.contains(file) {
            if update {
                std::fs::remove_file(&path).expect("remove a stale schema");
            } else {
                stale.push(file.to_owned());
            }
        }
    }
    assert!(
        drifted.is_empty() && stale.is_empty(),
        "the saved schemas differ from the fake's (changed: {drifted:?}; no longer served: \
         {stale:?}); run REPLICATE_UPDATE_SCHEMAS=1 cargo test -p replicate-typed-tests --test \
         schemas, then update src/lib.rs and tests/run.rs"
    );
}
