#![doc = include_str!("../README.md")]
//!
//! # The generated module in detail
//!
//! Every model version publishes the schema of its input and output
//! (`openapi_schema.components.schemas.Input` / `Output`). [`generate`] turns it into a Rust
//! module:
//!
//! - `MODEL` (`owner/name`) and `VERSION` (`Option<&str>`: `None` when the schema's version was
//!   not known, and then the run functions run the model's latest version);
//! - `Input`, a struct with serde, its fields in the schema's `x-order` and documented from
//!   the descriptions (with their defaults and ranges), enums (`allOf: [{"$ref": ...}]`, as Cog
//!   writes them) as Rust enums with `as_str` and `Display`, files (`format: uri`) as `String`
//!   URLs, lists as `Vec`, objects as `serde_json::Value`;
//! - `Input::builder(required...)`, which takes the required inputs and applies the schema's
//!   defaults (optional inputs without one stay unset and are left out of the JSON), and
//!   `InputBuilder::build`, which checks `minimum`, `maximum`, `exclusiveMinimum`,
//!   `exclusiveMaximum` and allowed numbers, returning an `InputError` that names the field
//!   and the bound;
//! - `Output`, from the output's shape: a string or file is `String`, a list `Vec<T>`, text
//!   streamed as an iterator a newtype over `Vec<String>` with `text()`, an object a struct,
//!   anything else `serde_json::Value`;
//! - `run(&replicate_ureq::Client, &Input)` and `run_async(&replicate_reqwest::Client, &Input)`,
//!   which validate, run (the version when known) and decode the output, each behind a cargo
//!   feature of your crate (`ureq` and `reqwest` by default, see [`Gate`]);
//! - for a trainable model, `TrainingInput` and `TrainingOutput` too, and, when the version is
//!   known, `train` / `train_async` (see [`Options::training`]).
//!
//! The output is formatted (`prettyplease`) and deterministic (the schema's order, no hash
//! maps), and compiles without warnings under `missing_docs` and `clippy -D warnings`.
//! Description text is made plain (no Markdown, HTML, doctests or control characters reach the
//! doc comments).
//!
//! In a binary crate, where unused items warn, put `#[allow(dead_code)]` on the `mod` that
//! includes the module; [`Options::unguarded`] emits the run functions without a `cfg`.

use std::io::Read;
use std::path::{Path, PathBuf};

use replicate_protocol::schema::{InputSchema, OutputSchema};
use serde_json::Value;

mod docs;
mod emit;
mod names;
mod plan;

/// The largest schema file [`generate_file`] reads: 16 MiB (real schemas are a few KiB).
pub const MAX_SCHEMA_BYTES: u64 = 16 << 20;

/// Whether, and under which cargo feature, the typed run functions of one client are emitted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Gate {
    /// Emitted behind `#[cfg(feature = "...")]`: the including crate declares the feature
    /// (which enables its dependency on the client crate).
    Feature(String),
    /// Emitted without a `cfg`: the including crate depends on the client crate.
    Always,
    /// Not emitted.
    Omit,
}

/// What to generate: the model, and the choices of the generated code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// The model, `owner/name`.
    pub model: String,
    /// The version id (`None`: the `id` of a version object given to [`generate`], if any;
    /// without one the run functions run the model's latest version).
    pub version: Option<String>,
    /// A doc comment for the module, emitted as inner doc (`//!`) lines: for a file used as a
    /// module of its own (`mod x;`), not for `include!`, which refuses inner attributes.
    pub module_doc: Option<String>,
    /// The blocking client's functions (`run`, `train`): behind the feature `ureq` by default.
    pub blocking: Gate,
    /// The async client's functions (`run_async`, `train_async`): behind the feature `reqwest`
    /// by default.
    pub async_client: Gate,
    /// Whether to emit `TrainingInput` and `TrainingOutput` (and the train functions) when the
    /// schema has them (default `true`).
    pub training: bool,
}

impl Options {
    /// Options for `model` (`owner/name`, or `owner/name:version` to set the version too), with
    /// the defaults: run functions behind the features `ureq` and `reqwest`, training types
    /// when the schema has them, no module doc.
    pub fn new(model: impl Into<String>) -> Self {
        let model = model.into();
        let (model, version) = match model.split_once(':') {
            Some((m, v)) => (m.to_owned(), Some(v.to_owned())),
            None => (model, None),
        };
        Options {
            model,
            version,
            module_doc: None,
            blocking: Gate::Feature("ureq".to_owned()),
            async_client: Gate::Feature("reqwest".to_owned()),
            training: true,
        }
    }

    /// Sets the version id.
    pub fn version(mut self, id: impl Into<String>) -> Self {
        self.version = Some(id.into());
        self
    }

    /// Sets the module's doc comment (see [`Options::module_doc`](Options#structfield.module_doc)).
    pub fn module_doc(mut self, doc: impl Into<String>) -> Self {
        self.module_doc = Some(doc.into());
        self
    }

    /// Sets the gate of the blocking client's functions.
    pub fn blocking(mut self, gate: Gate) -> Self {
        self.blocking = gate;
        self
    }

    /// Sets the gate of the async client's functions.
    pub fn async_client(mut self, gate: Gate) -> Self {
        self.async_client = gate;
        self
    }

    /// Emits both clients' functions without a `cfg` ([`Gate::Always`]).
    pub fn unguarded(self) -> Self {
        self.blocking(Gate::Always).async_client(Gate::Always)
    }

    /// Whether to emit the training types and functions when the schema has them.
    pub fn training(mut self, yes: bool) -> Self {
        self.training = yes;
        self
    }
}

/// Why no module could be generated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodegenError {
    /// The model is not `owner/name` (letters, digits, `-`, `_` and `.`).
    #[error("invalid model {0:?}: expected owner/name")]
    InvalidModel(String),
    /// The version id has characters other than letters, digits, `-`, `_` and `.`, or is
    /// longer than 128 characters.
    #[error("invalid version id {0:?}")]
    InvalidVersion(String),
    /// A feature name that cargo would refuse.
    #[error("invalid cargo feature name {0:?}")]
    InvalidFeature(String),
    /// The document has no `components.schemas.Input`: it is not a model version's schema
    /// (nor a version or model object holding one).
    #[error(
        "no input schema: expected a version's OpenAPI document (components.schemas.Input), a version object or a model object"
    )]
    NoInputSchema,
    /// The schema file could not be read, or the output file written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The schema file is larger than [`MAX_SCHEMA_BYTES`].
    #[error("{}: larger than {MAX_SCHEMA_BYTES} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The schema file is not JSON.
    #[error("{}: not JSON: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        source: serde_json::Error,
    },
    /// The generated tokens did not parse as Rust (a bug of this crate: please report it).
    #[error("generated code does not parse (a replicate-codegen bug): {0}")]
    Internal(String),
}

/// The Rust module for a model, as formatted source text.
///
/// `doc` is a version's OpenAPI document (`openapi_schema`), a version object holding one
/// (`{"id": ..., "openapi_schema": ...}`, whose `id` is the version unless
/// [`Options::version`](Options#structfield.version) is set), or a model object
/// (`{"latest_version": ...}`). The same input and options always give the same text.
///
/// ```
/// use serde_json::json;
/// let doc = json!({"components": {"schemas": {
///     "Input": {"type": "object", "required": ["prompt"], "properties": {
///         "prompt": {"type": "string", "x-order": 0, "description": "What to draw"},
///         "steps": {"type": "integer", "minimum": 1, "maximum": 50, "default": 4, "x-order": 1}
///     }},
///     "Output": {"type": "string", "format": "uri"}
/// }}});
/// let code = replicate_codegen::generate(&doc, &replicate_codegen::Options::new("acme/draw"))?;
/// assert!(code.contains("pub fn builder(prompt: impl Into<String>) -> InputBuilder"));
/// assert!(code.contains("pub steps: i64"));
/// assert!(code.contains("pub type Output = String;"));
/// # Ok::<(), replicate_codegen::CodegenError>(())
/// ```
pub fn generate(doc: &Value, options: &Options) -> Result<String, CodegenError> {
    check_model(&options.model)?;
    for gate in [&options.blocking, &options.async_client] {
        if let Gate::Feature(name) = gate {
            check_feature(name)?;
        }
    }
    let (schema, version_id) = unwrap_document(doc);
    let version = options.version.as_deref().or(version_id);
    if let Some(v) = version {
        check_version(v)?;
    }
    let input_schema = InputSchema::from_openapi(schema).ok_or(CodegenError::NoInputSchema)?;
    let output_schema = OutputSchema::from_openapi(schema);

    let mut planner = plan::Planner::new();
    let input = planner.input(&input_schema, "Input", false);
    let output = planner.output(output_schema.as_ref(), "Output", false);
    let training = match InputSchema::training_from_openapi(schema) {
        Some(training_input) if options.training => {
            let ti = planner.input(&training_input, "TrainingInput", true);
            let to = planner.output(
                OutputSchema::training_from_openapi(schema).as_ref(),
                "TrainingOutput",
                true,
            );
            Some((ti, to))
        }
        _ => None,
    };
    let module = planner.finish(input, output, training);
    let tokens = emit::module(
        &module,
        &emit::Target {
            options,
            model: &options.model,
            version,
        },
    );
    let file: syn::File = syn::parse2(tokens).map_err(|e| CodegenError::Internal(e.to_string()))?;
    let mut text = header(&options.model, version);
    text.push_str(&space_items(&prettyplease::unparse(&file)));
    Ok(text)
}

/// [`generate`] for `build.rs`: reads the schema file (JSON, at most [`MAX_SCHEMA_BYTES`]),
/// and writes the module to `out_path` unless the file already holds exactly that text (so
/// that its timestamp only moves when it changes). Returns whether it wrote. Prints nothing.
pub fn generate_file(
    schema_path: impl AsRef<Path>,
    out_path: impl AsRef<Path>,
    options: &Options,
) -> Result<bool, CodegenError> {
    let schema_path = schema_path.as_ref();
    let out_path = out_path.as_ref();
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| CodegenError::Io { path, source }
    };
    let file = std::fs::File::open(schema_path).map_err(io(schema_path))?;
    let mut bytes = Vec::new();
    file.take(MAX_SCHEMA_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io(schema_path))?;
    if bytes.len() as u64 > MAX_SCHEMA_BYTES {
        return Err(CodegenError::TooLarge {
            path: schema_path.to_owned(),
        });
    }
    let doc: Value = serde_json::from_slice(&bytes).map_err(|source| CodegenError::Json {
        path: schema_path.to_owned(),
        source,
    })?;
    let text = generate(&doc, options)?;
    if std::fs::read(out_path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(false);
    }
    std::fs::write(out_path, text).map_err(io(out_path))?;
    Ok(true)
}

/// The OpenAPI document inside `doc` (a model object, a version object or the document), and
/// the version id the object gives, if any.
fn unwrap_document(doc: &Value) -> (&Value, Option<&str>) {
    let version = match doc.get("latest_version") {
        Some(v) if v.is_object() => v,
        _ => doc,
    };
    match version.get("openapi_schema") {
        Some(schema) if schema.is_object() => (schema, version.get("id").and_then(Value::as_str)),
        _ => (doc, None),
    }
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn check_model(model: &str) -> Result<(), CodegenError> {
    match model.split_once('/') {
        Some((owner, name)) if is_slug(owner) && is_slug(name) => Ok(()),
        _ => Err(CodegenError::InvalidModel(model.to_owned())),
    }
}

fn check_version(version: &str) -> Result<(), CodegenError> {
    if is_slug(version) {
        Ok(())
    } else {
        Err(CodegenError::InvalidVersion(version.to_owned()))
    }
}

/// Cargo's rule: a letter, digit or `_` first, then also `-`, `+` and `.`.
fn check_feature(name: &str) -> Result<(), CodegenError> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '.'));
    if ok {
        Ok(())
    } else {
        Err(CodegenError::InvalidFeature(name.to_owned()))
    }
}

/// `code` (as `prettyplease` prints it, items back to back) with an empty line before each item
/// that follows another at the same indentation: a line starting an item (`///`, `#[`, `pub`,
/// `impl`, `fn`) after a line that ends one (code ending with `}` or `;`, not a comment, at the
/// same indentation).
fn space_items(code: &str) -> String {
    let mut out = String::with_capacity(code.len() + code.len() / 16);
    let mut previous: Option<&str> = None;
    for line in code.lines() {
        if let Some(prev) = previous {
            let indent = |l: &str| l.len() - l.trim_start().len();
            let body = line.trim_start();
            let starts_item = ["///", "#[", "pub ", "impl ", "impl<", "fn "]
                .iter()
                .any(|p| body.starts_with(p));
            let prev_body = prev.trim_start();
            let ends_item = (prev_body.ends_with('}') || prev_body.ends_with(';'))
                && !prev_body.starts_with("//");
            if starts_item && ends_item && indent(prev) == indent(line) {
                out.push('\n');
            }
        }
        out.push_str(line);
        out.push('\n');
        previous = Some(line);
    }
    out
}

/// The comment the file starts with (model and version are checked slugs: no line breaks).
fn header(model: &str, version: Option<&str>) -> String {
    let of = match version {
        Some(v) => format!("{model}, version {v}"),
        None => model.to_owned(),
    };
    format!(
        "// @generated by replicate-codegen {} from the OpenAPI schema of {of}.\n\
         // Do not edit: regenerate it from the schema.\n\n",
        env!("CARGO_PKG_VERSION")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({"components": {"schemas": {
            "Input": {"type": "object", "properties": {"a": {"type": "string"}}}
        }}})
    }

    #[test]
    fn items_are_spaced_but_not_docs() {
        let code = "const A: u8 = 1;\n/// Doc ending with a;\n/// second line {}\npub struct B {\n    x: u8,\n}\nimpl B {}\n";
        assert_eq!(
            space_items(code),
            "const A: u8 = 1;\n\n/// Doc ending with a;\n/// second line {}\npub struct B {\n    x: u8,\n}\n\nimpl B {}\n"
        );
    }

    #[test]
    fn options_split_a_version() {
        let o = Options::new("acme/m:abc");
        assert_eq!(o.model, "acme/m");
        assert_eq!(o.version.as_deref(), Some("abc"));
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(matches!(
            generate(&doc(), &Options::new("acme")),
            Err(CodegenError::InvalidModel(_))
        ));
        assert!(matches!(
            generate(&doc(), &Options::new("acme/m").version("a\nb")),
            Err(CodegenError::InvalidVersion(_))
        ));
        assert!(matches!(
            generate(
                &doc(),
                &Options::new("acme/m").blocking(Gate::Feature("\"x".into()))
            ),
            Err(CodegenError::InvalidFeature(_))
        ));
        assert!(matches!(
            generate(&json!({"openapi": "3.0.2"}), &Options::new("acme/m")),
            Err(CodegenError::NoInputSchema)
        ));
    }

    #[test]
    fn version_and_model_objects_are_unwrapped() {
        let version = json!({"id": "v1", "openapi_schema": doc()});
        let code = generate(&version, &Options::new("acme/m")).unwrap_or_default();
        assert!(
            code.contains("pub const VERSION: Option<&str> = Some(\"v1\");"),
            "{code}"
        );
        let model = json!({"owner": "acme", "name": "m", "latest_version": version});
        assert_eq!(
            generate(&model, &Options::new("acme/m")).unwrap_or_default(),
            code
        );
        let own = generate(&version, &Options::new("acme/m").version("v2")).unwrap_or_default();
        assert!(own.contains("Some(\"v2\")"), "{own}");
    }
}
