//! Snapshots of the generated module for every schema fixture (`fixtures/schemas/`), for every
//! model the fake server serves (its latest version, as `GET /v1/models/{owner}/{name}` gives
//! it), and for a hostile schema (`tests/data/hostile.json`). `tests/typed` compiles the same
//! modules and runs them.
//!
//! Review changes with `cargo insta review` (or accept with `INSTA_UPDATE=always`).

use std::path::{Path, PathBuf};

use replicate_codegen::{Options, generate};
use replicate_fake::{BUILTIN_MODELS, BlockingFakeServer};
use replicate_protocol::api::GetModel;
use serde_json::{Value, json};

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn snapshot(name: &str, code: &str) {
    insta::with_settings!({prepend_module_to_snapshot => false, omit_expression => true}, {
        insta::assert_snapshot!(name, code);
    });
}

#[test]
fn fixtures() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/schemas");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures/schemas")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 9, "fixtures missing: {files:?}");
    for path in files {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("UTF-8 name");
        let code = generate(&read_json(&path), &Options::new(format!("fixtures/{stem}")))
            .unwrap_or_else(|e| panic!("{stem}: {e}"));
        snapshot(&format!("fixture_{stem}"), &code);
    }
}

#[test]
fn fake_models() {
    let fake = BlockingFakeServer::start().expect("fake server");
    let client = replicate_ureq::Client::builder()
        .token(fake.token())
        .base_url(fake.base_url())
        .build()
        .expect("client");
    for model in BUILTIN_MODELS {
        let (owner, name) = model.split_once('/').expect("owner/name");
        let latest = client
            .execute(GetModel::new(owner, name))
            .unwrap_or_else(|e| panic!("GET {model}: {e}"))
            .latest_version
            .unwrap_or_else(|| panic!("{model}: no version"));
        let version = json!({"id": latest.id, "openapi_schema": latest.openapi_schema});
        let code =
            generate(&version, &Options::new(*model)).unwrap_or_else(|e| panic!("{model}: {e}"));
        snapshot(&format!("served_{}", model.replace(['/', '-'], "_")), &code);
    }
}

#[test]
fn hostile() {
    let doc = read_json(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/hostile.json"));
    let code = generate(&doc, &Options::new("acme/hostile")).expect("generate");
    snapshot("hostile", &code);
}

#[test]
fn output_is_deterministic_and_parses() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let docs = [
        read_json(&dir.join("tests/data/hostile.json")),
        read_json(&dir.join("../../fixtures/schemas/synthetic-lora-trainer.json")),
    ];
    for doc in &docs {
        let options = Options::new("acme/m").version("v1");
        let first = generate(doc, &options).expect("generate");
        assert_eq!(generate(doc, &options).expect("again"), first);
        syn::parse_file(&first).expect("the output parses as Rust");
    }
}

#[test]
fn gates_and_training_options() {
    let doc = read_json(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/schemas/synthetic-lora-trainer.json"),
    );
    let guarded = generate(&doc, &Options::new("acme/lora:v1")).expect("generate");
    assert!(guarded.contains("#[cfg(feature = \"ureq\")]\npub fn run("));
    assert!(guarded.contains("#[cfg(feature = \"reqwest\")]\npub async fn run_async("));
    assert!(
        guarded.contains("pub fn train("),
        "a known version gets train functions"
    );
    assert!(guarded.contains("pub struct TrainingInput"));

    let unguarded = generate(&doc, &Options::new("acme/lora:v1").unguarded()).expect("generate");
    assert!(!unguarded.contains("#[cfg("));
    assert!(unguarded.contains("pub fn run("));

    let custom = Options::new("acme/lora")
        .blocking(replicate_codegen::Gate::Feature("sync-client".into()))
        .async_client(replicate_codegen::Gate::Omit)
        .training(false);
    let code = generate(&doc, &custom).expect("generate");
    assert!(code.contains("#[cfg(feature = \"sync-client\")]\npub fn run("));
    assert!(!code.contains("run_async"));
    assert!(!code.contains("TrainingInput"));

    let no_version = generate(&doc, &Options::new("acme/lora")).expect("generate");
    assert!(no_version.contains("pub struct TrainingInput"));
    assert!(
        !no_version.contains("pub fn train("),
        "a training needs a version"
    );
}

#[test]
fn module_doc_is_inner_doc() {
    let doc = read_json(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/schemas/cog-enums.json"),
    );
    let code = generate(
        &doc,
        &Options::new("acme/m").module_doc("Typed `acme/m`.\n\n<b>bold</b>"),
    )
    .expect("generate");
    assert!(
        code.contains("//! Typed \\`acme/m\\`.\n//!\n//! \\<b\\>bold\\</b\\>\n"),
        "{code}"
    );
}

#[test]
fn generate_file_writes_only_changes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let schema =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/schemas/cog-enums.json");
    let out = dir.path().join("m.rs");
    let options = Options::new("acme/m");
    assert!(replicate_codegen::generate_file(&schema, &out, &options).expect("first"));
    assert!(!replicate_codegen::generate_file(&schema, &out, &options).expect("same"));
    std::fs::write(&out, "stale").expect("write");
    assert!(replicate_codegen::generate_file(&schema, &out, &options).expect("changed"));
    assert_eq!(
        std::fs::read_to_string(&out).expect("read"),
        generate(&read_json(&schema), &options).expect("generate")
    );

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{not json").expect("write");
    let err = replicate_codegen::generate_file(&bad, &out, &options).expect_err("not JSON");
    assert!(
        matches!(err, replicate_codegen::CodegenError::Json { .. }),
        "{err}"
    );
    let err = replicate_codegen::generate_file(dir.path().join("missing.json"), &out, &options)
        .expect_err("missing");
    assert!(
        matches!(err, replicate_codegen::CodegenError::Io { .. }),
        "{err}"
    );
}
