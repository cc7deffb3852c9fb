//! `replicate model schema`: a model version's inputs and output; and the schema `replicate
//! run` checks its input against.

use replicate_protocol::ModelRef;
use replicate_protocol::api::{GetDeployment, GetModel, GetModelVersion, ModelVersion};
use replicate_protocol::schema::{
    FieldType, InputField, InputSchema, OutputSchema, OutputShape, ValueType, VersionSchema,
};
use replicate_ureq::{Client, Error};
use serde_json::{Value, json};

use super::Ctx;
use crate::args::{CodegenArgs, RunArgs, SchemaArgs};
use crate::exit::CliError;
use crate::output::{self, note};
use crate::text::safe_line;

/// The most characters of a description shown in the table (`--json` has all of it).
const MAX_DESCRIPTION_CHARS: usize = 200;

/// The most characters of a default value shown in the table.
const MAX_DEFAULT_CHARS: usize = 40;

/// Columns wider than this are not padded to: a longer cell runs into the next column of its
/// row only.
const MAX_COLUMN_CHARS: usize = 40;

/// The version a model reference names: that version, or the model's latest one (`None` when
/// the model has no version). A latest version given without its schema is read again by id.
fn version_of(client: &Client, model: &ModelRef) -> Result<Option<ModelVersion>, Error> {
    let get = |id: &str| client.execute(GetModelVersion::new(&model.owner, &model.name, id));
    if let Some(id) = &model.version {
        return get(id).map(Some);
    }
    let latest = client
        .execute(GetModel::new(&model.owner, &model.name))?
        .latest_version;
    match latest {
        Some(v) if v.openapi_schema.is_none() => get(&v.id).map(Some),
        other => Ok(other),
    }
}

/// The input schema `replicate run` checks its input against, and what it belongs to (for the
/// messages).
#[derive(Debug)]
pub struct RunSchema {
    /// `owner/name:version`.
    pub label: String,
    /// The version's inputs.
    pub input: InputSchema,
}

/// The input schema of what `run` runs: the model's latest version, the version given, or the
/// version of the deployment's current release. `None` (with a note on stderr) when there is
/// none to check against: `--no-validate`, a bare version id, a deployment whose release does
/// not name its model and version, a model without versions, a version without an input
/// schema. An error of the API (no such model, a network failure) is returned as a create's
/// would be.
pub fn for_run(client: &Client, args: &RunArgs) -> Result<Option<RunSchema>, CliError> {
    if args.no_validate {
        return Ok(None);
    }
    for_target(client, args.model.as_deref(), args.deployment.as_deref())
}

/// The input schema of `model` (`OWNER/NAME[:VERSION]` or a bare version id) or, when given,
/// of `deployment`'s current release, as [`for_run`] finds it (`None` with a note when there is
/// none to check against).
pub fn for_target(
    client: &Client,
    model: Option<&str>,
    deployment: Option<&str>,
) -> Result<Option<RunSchema>, CliError> {
    let model = match (deployment, model) {
        (Some(d), _) => {
            let r: ModelRef = d
                .parse()
                .map_err(|e: Error| CliError::usage(e.to_string()))?;
            let deployment = client.execute(GetDeployment::new(&r.owner, &r.name))?;
            let release = deployment.current_release.as_ref();
            let named = release.and_then(|rel| {
                let model: ModelRef = rel.model.as_deref()?.parse().ok()?;
                Some(ModelRef {
                    version: Some(rel.version.clone()?),
                    ..model
                })
            });
            match named {
                Some(m) => m,
                None => {
                    note(&format!(
                        "note: deployment {r} does not say which model version it runs: the input is not checked against a schema"
                    ));
                    return Ok(None);
                }
            }
        }
        (None, Some(m)) if m.contains('/') => m
            .parse()
            .map_err(|e: Error| CliError::usage(e.to_string()))?,
        _ => {
            note(
                "note: a bare version id names no model: the input is not checked against a schema (give OWNER/NAME:VERSION to check it)",
            );
            return Ok(None);
        }
    };
    let Some(version) = version_of(client, &model)? else {
        note(&format!(
            "note: {model} has no version: the input is not checked against a schema"
        ));
        return Ok(None);
    };
    let label = format!("{}/{}:{}", model.owner, model.name, safe_line(&version.id));
    match VersionSchema::of(&version).input {
        Some(input) => Ok(Some(RunSchema { label, input })),
        None => {
            note(&format!(
                "note: {label} publishes no input schema: the input is not checked"
            ));
            Ok(None)
        }
    }
}

/// `model schema`.
pub fn show(ctx: &Ctx, args: SchemaArgs) -> Result<(), CliError> {
    let model: ModelRef = args
        .model
        .parse()
        .map_err(|e: Error| CliError::usage(format!("model: {e}")))?;
    let client = ctx.client()?;
    let Some(version) = version_of(&client, &model)? else {
        return Err(CliError::runtime(format!(
            "{}/{} has no version yet: there is no schema to show",
            model.owner, model.name
        )));
    };
    let schema = VersionSchema::of(&version);
    let name = format!("{}/{}", model.owner, model.name);
    if args.json {
        return output::json(&describe(&name, &version.id, &schema));
    }
    output::out(&render(&name, &version.id, &schema))
}

/// The stable JSON description of a version's schema (its shape is documented in the README).
pub fn describe(model: &str, version: &str, schema: &VersionSchema) -> Value {
    json!({
        "model": model,
        "version": version,
        "input": schema.input.as_ref().map(input_json),
        "output": schema.output.as_ref().map(output_json),
        "training_input": schema.training_input.as_ref().map(input_json),
        "training_output": schema.training_output.as_ref().map(output_json),
    })
}

fn input_json(input: &InputSchema) -> Value {
    Value::Array(input.fields.iter().map(field_json).collect())
}

/// An enum's values, or `null`.
fn allowed_json(allowed: &[Value]) -> Value {
    if allowed.is_empty() {
        Value::Null
    } else {
        Value::Array(allowed.to_vec())
    }
}

/// The items of an array type, or `null`.
fn items_json(ty: &FieldType) -> Value {
    match ty {
        FieldType::Array(items) => value_type_json(items),
        _ => Value::Null,
    }
}

fn value_type_json(v: &ValueType) -> Value {
    json!({
        "type": v.ty.name(),
        "format": v.format,
        "file": v.is_file(),
        "enum": allowed_json(&v.allowed),
        "items": items_json(&v.ty),
    })
}

fn field_json(f: &InputField) -> Value {
    json!({
        "name": f.name,
        "type": f.ty.name(),
        "format": f.format,
        "file": f.is_file(),
        "items": items_json(&f.ty),
        "required": f.required,
        "nullable": f.nullable,
        "default": f.default,
        "minimum": f.minimum,
        "maximum": f.maximum,
        "exclusive_minimum": f.exclusive_minimum,
        "exclusive_maximum": f.exclusive_maximum,
        "enum": allowed_json(&f.allowed),
        "description": f.description,
        "title": f.title,
        "order": f.order,
    })
}

fn output_json(output: &OutputSchema) -> Value {
    let (shape, value, items, concatenate, properties) = match &output.shape {
        OutputShape::Single(v) => (
            "single",
            value_type_json(v),
            Value::Null,
            false,
            Value::Null,
        ),
        OutputShape::Array(v) => ("array", Value::Null, value_type_json(v), false, Value::Null),
        OutputShape::Iterator { items, concatenate } => (
            "iterator",
            Value::Null,
            value_type_json(items),
            *concatenate,
            Value::Null,
        ),
        OutputShape::Object(props) => (
            "object",
            Value::Null,
            Value::Null,
            false,
            props
                .iter()
                .map(|p| {
                    let mut v = value_type_json(&p.value);
                    if let Some(m) = v.as_object_mut() {
                        m.insert("name".into(), json!(p.name));
                        m.insert("required".into(), json!(p.required));
                        m.insert("title".into(), json!(p.title));
                    }
                    v
                })
                .collect(),
        ),
        // A shape this version does not know.
        _ => ("unknown", Value::Null, Value::Null, false, Value::Null),
    };
    json!({
        "shape": shape,
        "title": output.title,
        "value": value,
        "items": items,
        "concatenate": concatenate,
        "properties": properties,
    })
}

/// The human description: the model and version, the inputs as a table, the output's shape.
pub fn render(model: &str, version: &str, schema: &VersionSchema) -> String {
    let mut s = format!(
        "model    {}\nversion  {}\n",
        safe_line(model),
        safe_line(version)
    );
    render_io(
        &mut s,
        "inputs",
        "output",
        schema.input.as_ref(),
        schema.output.as_ref(),
    );
    if schema.training_input.is_some() || schema.training_output.is_some() {
        render_io(
            &mut s,
            "training inputs",
            "training output",
            schema.training_input.as_ref(),
            schema.training_output.as_ref(),
        );
    }
    s
}

fn render_io(
    s: &mut String,
    inputs: &str,
    outputs: &str,
    input: Option<&InputSchema>,
    output: Option<&OutputSchema>,
) {
    s.push('\n');
    match input {
        None => s.push_str(&format!("{inputs}: none published\n")),
        Some(i) if i.fields.is_empty() => s.push_str(&format!("{inputs}: none\n")),
        Some(i) => {
            s.push_str(&format!("{inputs} ({}, in order):\n", i.fields.len()));
            let mut rows = vec![
                ["NAME", "TYPE", "DEFAULT", "CONSTRAINTS", "DESCRIPTION"]
                    .map(str::to_owned)
                    .to_vec(),
            ];
            rows.extend(i.fields.iter().map(field_row));
            push_table(s, &rows);
        }
    }
    match output {
        None => s.push_str(&format!("{outputs}: not published\n")),
        Some(o) => {
            s.push_str(&format!("{outputs}: {}\n", shape_text(&o.shape)));
            if let OutputShape::Object(props) = &o.shape {
                let rows: Vec<Vec<String>> = props
                    .iter()
                    .map(|p| {
                        vec![
                            safe_line(&p.name),
                            safe_line(&p.value.to_string()),
                            if p.required { "required" } else { "" }.to_owned(),
                        ]
                    })
                    .collect();
                push_table(s, &rows);
            }
        }
    }
}

/// Appends `rows` as an aligned table, indented by two spaces.
fn push_table(s: &mut String, rows: &[Vec<String>]) {
    for line in output::aligned(rows, MAX_COLUMN_CHARS) {
        s.push_str("  ");
        s.push_str(&line);
        s.push('\n');
    }
}

/// A value as JSON text (`"1:1"`, `4`, `true`), made safe and at most `max` characters.
fn json_cell(v: &Value, max: usize) -> String {
    output::shorten(&safe_line(&v.to_string()), max)
}

/// One row of the inputs table.
fn field_row(f: &InputField) -> Vec<String> {
    let default = f
        .default
        .as_ref()
        .map_or_else(|| "-".to_owned(), |d| json_cell(d, MAX_DEFAULT_CHARS));
    vec![
        safe_line(&f.name),
        safe_line(&f.value_type().to_string()),
        default,
        constraints(f),
        output::shorten(
            &safe_line(f.description.as_deref().unwrap_or("")),
            MAX_DESCRIPTION_CHARS,
        ),
    ]
}

/// `required`, the range, the allowed values, how to give a file.
fn constraints(f: &InputField) -> String {
    let num = |x: f64| format!("{x}");
    let mut parts = Vec::new();
    if f.required {
        parts.push("required".to_owned());
    }
    match (f.minimum, f.maximum) {
        (Some(lo), Some(hi)) => parts.push(format!("{} to {}", num(lo), num(hi))),
        (Some(lo), None) => parts.push(format!(">= {}", num(lo))),
        (None, Some(hi)) => parts.push(format!("<= {}", num(hi))),
        (None, None) => {}
    }
    if let Some(x) = f.exclusive_minimum {
        parts.push(format!("> {}", num(x)));
    }
    if let Some(x) = f.exclusive_maximum {
        parts.push(format!("< {}", num(x)));
    }
    let one_of = |allowed: &[Value]| {
        allowed
            .iter()
            .map(|v| safe_line(&v.to_string()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !f.allowed.is_empty() {
        parts.push(format!("one of {}", one_of(&f.allowed)));
    }
    if let FieldType::Array(items) = &f.ty
        && !items.allowed.is_empty()
    {
        parts.push(format!("items one of {}", one_of(&items.allowed)));
    }
    if f.is_file() {
        parts.push("a URL or @path".to_owned());
    } else if f.is_file_list() {
        parts.push("URLs or @path".to_owned());
    }
    if f.extra.get("x-cog-secret").and_then(Value::as_bool) == Some(true) {
        parts.push("secret".to_owned());
    }
    parts.join(", ")
}

/// The output's shape, in words.
fn shape_text(shape: &OutputShape) -> String {
    let vt = |v: &ValueType| safe_line(&v.to_string());
    match shape {
        OutputShape::Single(v) => format!("a single {}", vt(v)),
        OutputShape::Array(v) => format!("an array of {}", vt(v)),
        OutputShape::Iterator {
            items,
            concatenate: true,
        } => format!(
            "an iterator of {} (streamed; concatenate the pieces into one text)",
            vt(items)
        ),
        OutputShape::Iterator { items, .. } => {
            format!("an iterator of {} (streamed, item by item)", vt(items))
        }
        OutputShape::Object(props) => format!("an object with {} properties:", props.len()),
        _ => "of a shape this version does not know (see --json)".to_owned(),
    }
}

/// `codegen`: the module for a saved schema (`--schema`) or the version the API names, on
/// standard output or into `-o FILE`.
pub fn codegen(ctx: &Ctx, args: CodegenArgs) -> Result<(), CliError> {
    let model: ModelRef = args
        .model
        .parse()
        .map_err(|e: Error| CliError::usage(format!("model: {e}")))?;
    let mut options = replicate_codegen::Options::new(format!("{}/{}", model.owner, model.name));
    if let Some(v) = &model.version {
        options = options.version(v.clone());
    }
    let code = match &args.schema {
        Some(path) => {
            let doc = read_schema_file(path)?;
            replicate_codegen::generate(&doc, &options)
                .map_err(|e| CliError::usage(format!("{}: {}", path.display(), e)))?
        }
        None => {
            let client = ctx.client()?;
            let Some(version) = version_of(&client, &model)? else {
                return Err(CliError::runtime(format!(
                    "{}/{} has no version yet: there is no schema to generate from",
                    model.owner, model.name
                )));
            };
            let doc = serde_json::to_value(&version)
                .map_err(|e| CliError::runtime(format!("the version: {e}")))?;
            replicate_codegen::generate(&doc, &options).map_err(|e| {
                CliError::runtime(format!(
                    "{}/{}:{}: {}",
                    model.owner,
                    model.name,
                    safe_line(&version.id),
                    safe_line(&e.to_string())
                ))
            })?
        }
    };
    match &args.output {
        None => {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            out.write_all(code.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| CliError::runtime(format!("standard output: {e}")))
        }
        Some(path) => write_if_changed(path, &code),
    }
}

/// A saved schema, read up to [`replicate_codegen::MAX_SCHEMA_BYTES`].
fn read_schema_file(path: &std::path::Path) -> Result<Value, CliError> {
    use std::io::Read as _;
    let fail = |what: String| CliError::usage(format!("--schema {}: {what}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(replicate_codegen::MAX_SCHEMA_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > replicate_codegen::MAX_SCHEMA_BYTES {
        return Err(fail(format!(
            "larger than {} bytes",
            replicate_codegen::MAX_SCHEMA_BYTES
        )));
    }
    serde_json::from_slice(&bytes).map_err(|e| fail(format!("not JSON: {e}")))
}

/// Writes `code` to `path` unless it already holds exactly that (so a build that includes it
/// is not redone), through a temporary file beside it: a reader never sees half a module.
fn write_if_changed(path: &std::path::Path, code: &str) -> Result<(), CliError> {
    let fail = |e: std::io::Error| CliError::runtime(format!("{}: {e}", path.display()));
    if std::fs::read(path).is_ok_and(|old| old == code.as_bytes()) {
        return Ok(());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    std::io::Write::write_all(&mut tmp, code.as_bytes()).map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        json!({"components": {"schemas": {
            "Input": {"type": "object", "required": ["prompt"], "properties": {
                "prompt": {"type": "string", "x-order": 0, "description": "What\nto draw\u{1b}[2J"},
                "size": {"allOf": [{"$ref": "#/components/schemas/size"}], "default": "small", "x-order": 1},
                "steps": {"type": "integer", "minimum": 1, "maximum": 4, "default": 4, "x-order": 2},
                "image": {"type": "string", "format": "uri", "x-order": 3},
                "scale": {"type": "number", "exclusiveMinimum": 0, "x-order": 4}
            }},
            "size": {"type": "string", "enum": ["small", "large"]},
            "Output": {"type": "array", "items": {"type": "string"},
                "x-cog-array-type": "iterator", "x-cog-array-display": "concatenate"}
        }}})
    }

    #[test]
    fn the_table_lists_the_inputs_in_order_with_their_constraints() {
        let text = render("a/b", "v1", &VersionSchema::parse(&doc()));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "model    a/b");
        assert_eq!(lines[1], "version  v1");
        assert_eq!(lines[3], "inputs (5, in order):");
        assert!(lines[4].trim_start().starts_with("NAME "), "{text}");
        let row = |name: &str| {
            lines
                .iter()
                .find(|l| l.trim_start().starts_with(&format!("{name} ")))
                .copied()
                .unwrap_or_else(|| panic!("no row for {name} in\n{text}"))
        };
        assert!(row("prompt").contains("required"), "{text}");
        // Server text cannot break the table nor drive the terminal.
        assert!(row("prompt").contains("What\\nto draw\\u{1b}[2J"), "{text}");
        assert!(
            row("size").contains("\"small\"")
                && row("size").contains("one of \"small\", \"large\""),
            "{text}"
        );
        assert!(row("steps").contains("1 to 4"), "{text}");
        assert!(row("image").contains("file (URI)"), "{text}");
        assert!(row("image").contains("a URL or @path"), "{text}");
        assert!(row("scale").contains("> 0"), "{text}");
        // The columns are aligned: every row's TYPE starts where the header's does.
        let at = lines[4].find("TYPE").expect("TYPE");
        assert_eq!(row("prompt").find("string"), Some(at), "{text}");
        assert!(
            text.contains("output: an iterator of string (streamed; concatenate"),
            "{text}"
        );
    }

    #[test]
    fn the_json_description_has_a_stable_shape() {
        let d = describe("a/b", "v1", &VersionSchema::parse(&doc()));
        assert_eq!(d["model"], "a/b");
        assert_eq!(d["version"], "v1");
        let names: Vec<&str> = d["input"]
            .as_array()
            .expect("inputs")
            .iter()
            .filter_map(|f| f["name"].as_str())
            .collect();
        assert_eq!(names, ["prompt", "size", "steps", "image", "scale"]);
        assert_eq!(d["input"][1]["enum"], json!(["small", "large"]));
        assert_eq!(d["input"][1]["default"], "small");
        assert_eq!(d["input"][2]["maximum"], 4.0);
        assert_eq!(d["input"][3]["file"], true);
        assert_eq!(d["input"][0]["required"], true);
        assert_eq!(d["output"]["shape"], "iterator");
        assert_eq!(d["output"]["concatenate"], true);
        assert_eq!(d["output"]["items"]["type"], "string");
        assert_eq!(d["training_input"], Value::Null);
        // Every field has every key.
        let keys = |v: &Value| v.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>());
        assert_eq!(keys(&d["input"][0]), keys(&d["input"][3]));
    }

    #[test]
    fn a_version_without_a_schema_says_so() {
        let text = render("a/b", "v1", &VersionSchema::default());
        assert!(text.contains("inputs: none published"), "{text}");
        assert!(text.contains("output: not published"), "{text}");
    }
}
