//! Generates one module per schema into `OUT_DIR`, offline: the real and synthetic fixtures of
//! `fixtures/schemas/`, the saved schemas of the fake's built-in models (`schemas/`, kept equal
//! to what the fake serves by `tests/schemas.rs`), and `replicate-codegen`'s hostile schema.

use std::error::Error;
use std::path::{Path, PathBuf};

use replicate_codegen::{Options, generate_file};

/// The fixtures: module, file in `fixtures/schemas/`, and version id (the trainer has one, so
/// that its train functions are generated).
const FIXTURES: &[(&str, &str, Option<&str>)] = &[
    ("cog_enums", "cog-enums.json", None),
    (
        "cog_output_concat_iter",
        "cog-output-concat-iter.json",
        None,
    ),
    ("cog_output_object", "cog-output-object.json", None),
    ("cog_paths", "cog-paths.json", None),
    ("cog_range", "cog-range.json", None),
    (
        "synthetic_flux_schnell",
        "synthetic-flux-schnell.json",
        None,
    ),
    (
        "synthetic_llama_3_instruct",
        "synthetic-llama-3-instruct.json",
        None,
    ),
    (
        "synthetic_lora_trainer",
        "synthetic-lora-trainer.json",
        Some("5a7e1c0d9b3f4e2a8c6d0f1b3a5c7e9d2f4b6a8c0e1d3f5a7b9c2e4d6f8a0b1c"),
    ),
    ("synthetic_whisper", "synthetic-whisper.json", None),
];

fn main() -> Result<(), Box<dyn Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let fixtures = manifest.join("../../fixtures/schemas");
    for (module, file, version) in FIXTURES {
        let stem = file.trim_end_matches(".json");
        let mut options = Options::new(format!("fixtures/{stem}"));
        if let Some(v) = version {
            options = options.version(*v);
        }
        generate(&fixtures.join(file), &out, module, &options)?;
    }

    let saved = manifest.join("schemas");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&saved)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    println!("cargo::rerun-if-changed={}", saved.display());
    for path in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let module = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or("a schema file name is not UTF-8")?;
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
        let owner = doc["owner"].as_str().ok_or("saved schema without owner")?;
        let name = doc["name"].as_str().ok_or("saved schema without name")?;
        generate(path, &out, module, &Options::new(format!("{owner}/{name}")))?;
    }

    let hostile = manifest.join("../../crates/codegen/tests/data/hostile.json");
    generate(&hostile, &out, "hostile", &Options::new("acme/hostile"))?;
    Ok(())
}

fn generate(
    schema: &Path,
    out: &Path,
    module: &str,
    options: &Options,
) -> Result<(), Box<dyn Error>> {
    println!("cargo::rerun-if-changed={}", schema.display());
    generate_file(schema, out.join(format!("{module}.rs")), options)?;
    Ok(())
}
