//! Models, versions, examples, READMEs, collections and search.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::account::known_sku;
use crate::body::{check_keys, json_object, optional_string, required_string, valid_slug};
use crate::cog::{cog_document, enum_field, field, input_object, title_of};
use crate::http::Resp;
use crate::pagination::page_resp;
use crate::request::Req;
use crate::script::{MAX_NUM_OUTPUTS, MAX_OUTPUT_BYTES, ModelScript, Outcome, Output};
use crate::state::{Shared, State, Terminal, VersionRec, lock};
use crate::util;

fn model_not_found() -> Resp {
    Resp::problem(404, "Not found", "Model not found")
}

fn version_not_found() -> Resp {
    Resp::problem(404, "Not found", "Version not found")
}

/// The `Output` schema derived from a script's outcome, as Cog writes it: a file URL, a list of
/// them, an iterator of text pieces (`x-cog-array-type: iterator`,
/// `x-cog-array-display: concatenate`), or the shape of a JSON output.
fn output_schema(script: &ModelScript) -> Value {
    let mut schema = match &script.outcome {
        Outcome::Succeed(Output::Url) | Outcome::Succeed(Output::DataUri) => {
            json!({"type": "string", "format": "uri"})
        }
        Outcome::Succeed(Output::Urls(_) | Output::Synthetic { .. }) => json!({
            "type": "array", "items": {"type": "string", "format": "uri"}
        }),
        Outcome::Succeed(Output::Text(_)) => json!({
            "type": "array", "items": {"type": "string"},
            "x-cog-array-type": "iterator", "x-cog-array-display": "concatenate"
        }),
        Outcome::Succeed(Output::Json(value)) => shape_of(value),
        _ => json!({}),
    };
    if let Some(map) = schema.as_object_mut() {
        map.insert("title".into(), json!("Output"));
    }
    schema
}

/// The schema of a JSON value's shape (an object's properties all required, an array's items
/// from its first item).
fn shape_of(value: &Value) -> Value {
    match value {
        Value::Null => json!({}),
        Value::Bool(_) => json!({"type": "boolean"}),
        Value::Number(n) if n.is_f64() => json!({"type": "number"}),
        Value::Number(_) => json!({"type": "integer"}),
        Value::String(_) => json!({"type": "string"}),
        Value::Array(items) => match items.first() {
            Some(first) => json!({"type": "array", "items": shape_of(first)}),
            None => json!({"type": "array", "items": {}}),
        },
        Value::Object(map) => {
            let props: Map<String, Value> = map
                .iter()
                .map(|(k, v)| {
                    let mut p = shape_of(v);
                    if let Some(p) = p.as_object_mut() {
                        p.insert("title".into(), json!(title_of(k)));
                    }
                    (k.clone(), p)
                })
                .collect();
            let required: Vec<&String> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, _)| k)
                .collect();
            json!({"type": "object", "properties": props, "required": required})
        }
    }
}

/// The `Input` schema derived from a script's outcome (see the crate documentation's "Input
/// schemas and validation"). Nothing is required: scripted models take any prompt, or none.
fn input_schema(script: &ModelScript, components: &mut Map<String, Value>) -> Value {
    let mut props = vec![field(
        "prompt",
        0,
        "Input prompt",
        json!({"type": "string"}),
    )];
    let num_outputs = |n: usize| {
        field(
            "num_outputs",
            1,
            "Number of outputs to generate",
            json!({"type": "integer", "minimum": 1, "maximum": MAX_NUM_OUTPUTS, "default": n}),
        )
    };
    match &script.outcome {
        Outcome::Succeed(Output::Url | Output::DataUri) => {
            props.push(field(
                "image",
                1,
                "An input image (a URL or a data: URI); optional",
                json!({"type": "string", "format": "uri"}),
            ));
        }
        Outcome::Succeed(Output::Urls(n)) => {
            props.push(num_outputs(*n));
            props.push(field(
                "guidance",
                2,
                "How closely the images follow the prompt",
                json!({"type": "number", "minimum": 0, "maximum": 10, "default": 3.5}),
            ));
            props.push(enum_field(
                "scheduler",
                3,
                "The sampler",
                &["DDIM", "K_EULER", "DPMSolverMultistep"],
                "K_EULER",
                components,
            ));
        }
        Outcome::Succeed(Output::Synthetic { files, bytes }) => {
            props.push(num_outputs(*files));
            props.push(field(
                "output_bytes",
                2,
                "Length of each output file, in bytes",
                json!({"type": "integer", "minimum": 0, "maximum": MAX_OUTPUT_BYTES, "default": bytes}),
            ));
            props.push(field(
                "seed",
                3,
                "Seed of the first file's contents (file i uses seed + i)",
                json!({"type": "integer", "minimum": 0, "maximum": u64::MAX, "default": 0}),
            ));
        }
        Outcome::Succeed(Output::Text(_)) => {
            props.push(field(
                "system_prompt",
                1,
                "System prompt to send to the model",
                json!({"type": "string", "default": "You are a helpful assistant"}),
            ));
            props.push(field(
                "max_tokens",
                2,
                "The maximum number of tokens the model should generate as output",
                json!({"type": "integer", "minimum": 1, "maximum": 4096, "default": 512}),
            ));
            props.push(field(
                "temperature",
                3,
                "The value used to modulate the next token probabilities",
                json!({"type": "number", "minimum": 0, "maximum": 2, "default": 0.6}),
            ));
            props.push(field(
                "top_p",
                4,
                "A probability threshold for generating the output",
                json!({"type": "number", "minimum": 0, "maximum": 1, "default": 0.9}),
            ));
        }
        _ => {}
    }
    input_object(props, &[])
}

/// The `openapi_schema` a script's versions publish: its own
/// ([`ModelScript::openapi_schema`]), or the one derived from its outcome. Creates are checked
/// against it ([`crate::validate`]).
pub(crate) fn openapi_schema(script: &ModelScript) -> Value {
    match &script.openapi_schema {
        Some(doc) => doc.clone(),
        None => {
            let mut c = Map::new();
            let input = input_schema(script, &mut c);
            c.insert("Input".into(), input);
            c.insert("Output".into(), output_schema(script));
            cog_document(c)
        }
    }
}

/// A version object.
pub(crate) fn version_json(script: &ModelScript, v: &VersionRec) -> Value {
    json!({
        "id": v.id,
        "created_at": v.created_at,
        "cog_version": "0.13.7",
        "openapi_schema": openapi_schema(script),
    })
}

/// The default description of a model.
fn default_description(name: &str) -> String {
    format!("A scripted model served by replicate-fake ({name})")
}

/// A model object, from its catalog entry and script (call [`State::settle_trainings`] first).
pub(crate) fn model_json(st: &State, name: &str, script: &ModelScript) -> Value {
    let (owner, model) = name.split_once('/').unwrap_or((name, ""));
    let meta = st.meta.get(name);
    let opt = |f: fn(&crate::state::ModelMeta) -> &Option<String>| {
        meta.and_then(|m| f(m).clone())
            .map_or(Value::Null, Value::String)
    };
    let run_count = st.order.iter().filter(|p| p.model == name).count();
    let latest = meta
        .and_then(|m| m.versions.last())
        .map_or(Value::Null, |v| version_json(script, v));
    let mut m = Map::new();
    m.insert("url".into(), json!(format!("https://replicate.com/{name}")));
    m.insert("owner".into(), json!(owner));
    m.insert("name".into(), json!(model));
    m.insert(
        "description".into(),
        json!(
            meta.and_then(|m| m.description.clone())
                .unwrap_or_else(|| default_description(name))
        ),
    );
    m.insert(
        "visibility".into(),
        json!(meta.map_or("public", |m| m.visibility.as_str())),
    );
    m.insert("github_url".into(), opt(|m| &m.github_url));
    m.insert("paper_url".into(), opt(|m| &m.paper_url));
    m.insert("license_url".into(), opt(|m| &m.license_url));
    m.insert("run_count".into(), json!(run_count));
    m.insert("cover_image_url".into(), opt(|m| &m.cover_image_url));
    m.insert("default_example".into(), Value::Null);
    m.insert("latest_version".into(), latest);
    m.insert("is_official".into(), json!(script.official));
    Value::Object(m)
}

/// `GET /v1/models/{owner}/{name}`.
pub(crate) fn get_model(shared: &Arc<Shared>, name: &str) -> Resp {
    let Some(script) = shared.model_script(name) else {
        return model_not_found();
    };
    let mut st = lock(&shared.state);
    st.settle_trainings();
    Resp::json(200, &model_json(&st, name, &script))
}

/// The public models of the catalog, oldest first, as (seq, name).
fn public_models(st: &State) -> Vec<(usize, String)> {
    let mut v: Vec<(usize, String)> = st
        .meta
        .iter()
        .filter(|(name, m)| m.visibility == "public" && st.models.contains_key(*name))
        .map(|(name, m)| (m.seq, name.clone()))
        .collect();
    v.sort();
    v
}

/// Renders a model of the catalog by name.
fn render_model(st: &State, name: &str) -> Value {
    match st.models.get(name) {
        Some(s) => model_json(st, name, s),
        None => model_json(st, name, &ModelScript::default()),
    }
}

/// `GET /v1/models?sort_by=&sort_direction=`: the public models, newest first by default.
///
/// Both sort keys order by when the model entered the catalog.
pub(crate) fn list_models(shared: &Arc<Shared>, req: &Req) -> Resp {
    let q = req.query.as_deref();
    let sort_by = util::query_value(q, "sort_by");
    let direction = util::query_value(q, "sort_direction");
    if let Some(by) = &sort_by
        && by != "model_created_at"
        && by != "latest_version_created_at"
    {
        return Resp::problem(
            400,
            "Invalid sort_by",
            "sort_by must be one of model_created_at, latest_version_created_at",
        );
    }
    let asc = match direction.as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(_) => {
            return Resp::problem(
                400,
                "Invalid sort_direction",
                "sort_direction must be asc or desc",
            );
        }
    };
    let mut keep = String::new();
    if let Some(by) = &sort_by {
        keep.push_str(&format!("&sort_by={by}"));
    }
    if let Some(d) = &direction {
        keep.push_str(&format!("&sort_direction={d}"));
    }
    let mut st = lock(&shared.state);
    st.settle_trainings();
    let mut items = public_models(&st);
    if asc {
        // Paginate newest first over keys that grow towards the oldest model.
        items.reverse();
        for it in &mut items {
            it.0 = usize::MAX - it.0;
        }
    }
    page_resp(
        shared,
        req,
        &items,
        |it| it.0,
        "/v1/models",
        &keep,
        |it| render_model(&st, &it.1),
    )
}

/// `POST /v1/models`.
pub(crate) fn create_model(shared: &Arc<Shared>, req: &Req) -> Resp {
    let obj = match json_object(req) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let mut errs = Vec::new();
    check_keys(
        &obj,
        &[
            "owner",
            "name",
            "visibility",
            "hardware",
            "description",
            "github_url",
            "paper_url",
            "license_url",
            "cover_image_url",
        ],
        &mut errs,
    );
    let owner = required_string(&obj, "owner", &mut errs);
    let name = required_string(&obj, "name", &mut errs);
    let visibility = required_string(&obj, "visibility", &mut errs);
    let hardware = required_string(&obj, "hardware", &mut errs);
    let description = optional_string(&obj, "description", &mut errs);
    let github_url = optional_string(&obj, "github_url", &mut errs);
    let paper_url = optional_string(&obj, "paper_url", &mut errs);
    let license_url = optional_string(&obj, "license_url", &mut errs);
    let cover_image_url = optional_string(&obj, "cover_image_url", &mut errs);
    for (key, v) in [("owner", &owner), ("name", &name)] {
        if let Some(v) = v
            && !valid_slug(v)
        {
            errs.push(format!(
                "{key}: {v:?} must be lowercase letters, digits, dashes, underscores and dots"
            ));
        }
    }
    if let Some(v) = &visibility
        && v != "public"
        && v != "private"
    {
        errs.push("visibility: must be one of the following: \"public\", \"private\"".to_owned());
    }
    if let Some(h) = &hardware
        && !known_sku(h)
    {
        errs.push(format!("hardware: {h:?} is not a valid hardware SKU"));
    }
    if !errs.is_empty() {
        return Resp::invalid(&errs);
    }
    let (Some(owner), Some(name), Some(visibility)) = (owner, name, visibility) else {
        return Resp::invalid(&["(root): invalid model".to_owned()]);
    };
    let full = format!("{owner}/{name}");
    let mut st = lock(&shared.state);
    if st.meta.contains_key(&full) {
        return Resp::problem(
            409,
            "Conflict",
            &format!("A model named {full} already exists"),
        );
    }
    st.deleted_models.remove(&full);
    st.ensure_meta(&full, true);
    if let Some(m) = st.meta.get_mut(&full) {
        m.visibility = visibility;
        m.description = description;
        m.github_url = github_url;
        m.paper_url = paper_url;
        m.license_url = license_url;
        m.cover_image_url = cover_image_url;
    }
    let script = Arc::new(ModelScript::default());
    st.register_model(&full, script.clone());
    Resp::json(201, &model_json(&st, &full, &script))
}

/// `PATCH /v1/models/{owner}/{name}`.
pub(crate) fn update_model(shared: &Arc<Shared>, req: &Req, name: &str) -> Resp {
    let Some(script) = shared.model_script(name) else {
        return model_not_found();
    };
    let obj = match json_object(req) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let fields = [
        "description",
        "readme",
        "github_url",
        "paper_url",
        "weights_url",
        "license_url",
    ];
    let mut errs = Vec::new();
    check_keys(&obj, &fields, &mut errs);
    let values: Vec<(&str, Option<String>)> = fields
        .iter()
        .map(|k| (*k, optional_string(&obj, k, &mut errs)))
        .collect();
    if !errs.is_empty() {
        return Resp::invalid(&errs);
    }
    let mut st = lock(&shared.state);
    st.settle_trainings();
    st.ensure_meta(name, false);
    if let Some(m) = st.meta.get_mut(name) {
        for (k, v) in values {
            let Some(v) = v else { continue };
            let slot = match k {
                "description" => &mut m.description,
                "readme" => &mut m.readme,
                "github_url" => &mut m.github_url,
                "paper_url" => &mut m.paper_url,
                "license_url" => &mut m.license_url,
                // The model object has no `weights_url`: accepted, not shown.
                _ => continue,
            };
            *slot = Some(v);
        }
    }
    Resp::json(200, &model_json(&st, name, &script))
}

/// `DELETE /v1/models/{owner}/{name}`: only private models without versions.
pub(crate) fn delete_model(shared: &Arc<Shared>, name: &str) -> Resp {
    if shared.model_script(name).is_none() {
        return model_not_found();
    }
    let mut st = lock(&shared.state);
    st.settle_trainings();
    let (public, versions) = st
        .meta
        .get(name)
        .map_or((true, 0), |m| (m.visibility == "public", m.versions.len()));
    if public {
        return Resp::problem(403, "Forbidden", "You can only delete private models");
    }
    if versions > 0 {
        return Resp::problem(
            409,
            "Conflict",
            &format!(
                "The model has {versions} version(s): delete its versions before deleting the model"
            ),
        );
    }
    st.remove_model(name);
    Resp::empty(204)
}

/// `GET /v1/models/{owner}/{name}/examples`: the model's succeeded predictions, newest first.
pub(crate) fn list_examples(shared: &Arc<Shared>, req: &Req, name: &str) -> Resp {
    if shared.model_script(name).is_none() {
        return model_not_found();
    }
    let st = lock(&shared.state);
    let examples: Vec<_> = st
        .order
        .iter()
        .filter(|p| p.model == name && p.view().terminal == Some(Terminal::Succeeded))
        .cloned()
        .collect();
    page_resp(
        shared,
        req,
        &examples,
        |p| p.seq,
        &format!("/v1/models/{name}/examples"),
        "",
        |p| p.to_json(&p.view(), shared, false),
    )
}

/// `GET /v1/models/{owner}/{name}/readme`: Markdown.
pub(crate) fn get_readme(shared: &Arc<Shared>, name: &str) -> Resp {
    if shared.model_script(name).is_none() {
        return model_not_found();
    }
    let st = lock(&shared.state);
    let meta = st.meta.get(name);
    match meta.and_then(|m| m.readme.clone()) {
        Some(r) => Resp::new(200, "text/markdown; charset=utf-8", r),
        None if meta.is_some_and(|m| m.created) => {
            Resp::problem(404, "Not found", "README not found")
        }
        None => {
            let description = meta
                .and_then(|m| m.description.clone())
                .unwrap_or_else(|| default_description(name));
            Resp::new(
                200,
                "text/markdown; charset=utf-8",
                format!("# {name}\n\n{description}\n"),
            )
        }
    }
}

/// `GET /v1/models/{owner}/{name}/versions`: newest first.
pub(crate) fn list_versions(shared: &Arc<Shared>, req: &Req, name: &str) -> Resp {
    let Some(script) = shared.model_script(name) else {
        return model_not_found();
    };
    let mut st = lock(&shared.state);
    st.settle_trainings();
    let versions: Vec<(usize, VersionRec)> = st
        .meta
        .get(name)
        .map(|m| m.versions.iter().cloned().enumerate().collect())
        .unwrap_or_default();
    page_resp(
        shared,
        req,
        &versions,
        |v| v.0,
        &format!("/v1/models/{name}/versions"),
        "",
        |v| version_json(&script, &v.1),
    )
}

/// `GET /v1/models/{owner}/{name}/versions/{id}`.
pub(crate) fn get_version(shared: &Arc<Shared>, name: &str, id: &str) -> Resp {
    let Some(script) = shared.model_script(name) else {
        return model_not_found();
    };
    let mut st = lock(&shared.state);
    st.settle_trainings();
    match st
        .meta
        .get(name)
        .and_then(|m| m.versions.iter().find(|v| v.id == id))
    {
        Some(v) => Resp::json(200, &version_json(&script, v)),
        None => version_not_found(),
    }
}

/// `DELETE /v1/models/{owner}/{name}/versions/{id}`: 202, unless a deployment uses it.
pub(crate) fn delete_version(shared: &Arc<Shared>, name: &str, id: &str) -> Resp {
    if shared.model_script(name).is_none() {
        return model_not_found();
    }
    let mut st = lock(&shared.state);
    st.settle_trainings();
    let exists = st
        .meta
        .get(name)
        .is_some_and(|m| m.versions.iter().any(|v| v.id == id));
    if !exists {
        return version_not_found();
    }
    let used = st
        .deployments
        .values()
        .any(|d| d.model == name && st.deployment_version(d) == id);
    if used {
        return Resp::problem(
            409,
            "Conflict",
            "The version is used by a deployment and cannot be deleted",
        );
    }
    if let Some(m) = st.meta.get_mut(name) {
        m.versions.retain(|v| v.id != id);
    }
    st.versions.remove(id);
    Resp::empty(202)
}

/// A collection of models.
struct CollectionDef {
    slug: &'static str,
    name: &'static str,
    description: &'static str,
    models: &'static [&'static str],
}

const COLLECTIONS: &[CollectionDef] = &[
    CollectionDef {
        slug: "text-to-image",
        name: "Text to image",
        description: "Models that generate images from text prompts.",
        models: &[
            "black-forest-labs/flux-schnell",
            "fake/urls",
            "fake/data-uri",
        ],
    },
    CollectionDef {
        slug: "language-models",
        name: "Language models",
        description: "Models that stream text, token by token.",
        models: &["fake/text", "fake/text-multiline"],
    },
    CollectionDef {
        slug: "fake-behaviours",
        name: "Fake behaviours",
        description: "Scripted models that fail, cancel, abort, run slowly or answer JSON.",
        models: &[
            "fake/fail",
            "fake/cancel",
            "fake/abort",
            "fake/slow",
            "fake/unknown-status",
            "fake/json",
        ],
    },
];

/// `GET /v1/collections`.
pub(crate) fn list_collections(shared: &Arc<Shared>, req: &Req) -> Resp {
    let items: Vec<usize> = (0..COLLECTIONS.len()).collect();
    page_resp(
        shared,
        req,
        &items,
        |i| *i,
        "/v1/collections",
        "",
        |i| {
            let c = &COLLECTIONS[*i];
            json!({"name": c.name, "slug": c.slug, "description": c.description})
        },
    )
}

/// `GET /v1/collections/{slug}`.
pub(crate) fn get_collection(shared: &Arc<Shared>, slug: &str) -> Resp {
    let Some(c) = COLLECTIONS.iter().find(|c| c.slug == slug) else {
        return Resp::problem(404, "Not found", "Collection not found");
    };
    let scripts: Vec<(&str, Arc<ModelScript>)> = c
        .models
        .iter()
        .filter_map(|m| shared.model_script(m).map(|s| (*m, s)))
        .collect();
    let mut st = lock(&shared.state);
    st.settle_trainings();
    let models: Vec<Value> = scripts.iter().map(|(m, s)| model_json(&st, m, s)).collect();
    Resp::json(
        200,
        &json!({
            "name": c.name,
            "slug": c.slug,
            "description": c.description,
            "full_description": format!(
                "## Overview\n\n{}\n\n### Models\n\n{}",
                c.description,
                c.models.iter().map(|m| format!("- `{m}`\n")).collect::<String>()
            ),
            "models": models,
        }),
    )
}

/// Whether every term of `query` occurs in `haystack` (case-insensitive).
fn matches(query: &str, haystack: &str) -> bool {
    let hay = haystack.to_lowercase();
    let mut terms = query.split_whitespace().peekable();
    terms.peek().is_some() && terms.all(|t| hay.contains(&t.to_lowercase()))
}

/// The text a model is searched by.
fn model_haystack(st: &State, name: &str) -> String {
    let description = st
        .meta
        .get(name)
        .and_then(|m| m.description.clone())
        .unwrap_or_else(|| default_description(name));
    format!("{name} {description}")
}

/// `QUERY /v1/models` with a `text/plain` body: the matching public models, newest first.
pub(crate) fn search_models(shared: &Arc<Shared>, req: &Req) -> Resp {
    let ct = req.header("content-type").unwrap_or("");
    if !ct
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("text/plain")
    {
        return Resp::problem(
            415,
            "Unsupported Media Type",
            "Send the search text as a text/plain body",
        );
    }
    let text = String::from_utf8_lossy(&req.body).trim().to_owned();
    if text.is_empty() {
        return Resp::problem(400, "Bad Request", "The search text must not be empty");
    }
    let mut st = lock(&shared.state);
    st.settle_trainings();
    let items: Vec<(usize, String)> = public_models(&st)
        .into_iter()
        .filter(|(_, name)| matches(&text, &model_haystack(&st, name)))
        .collect();
    page_resp(
        shared,
        req,
        &items,
        |it| it.0,
        "/v1/models",
        "",
        |it| render_model(&st, &it.1),
    )
}

/// Documentation pages `GET /v1/search` can find: (name, href).
const DOC_PAGES: &[(&str, &str)] = &[
    (
        "Create a prediction",
        "/docs/topics/predictions/create-a-prediction",
    ),
    (
        "Getting started with image generation",
        "/docs/guides/image-generation",
    ),
    (
        "Fine-tune a model with a training",
        "/docs/guides/fine-tune",
    ),
    (
        "Stream language model output",
        "/docs/topics/predictions/streaming",
    ),
    ("Deploy a model", "/docs/topics/deployments"),
    ("Receive webhooks", "/docs/topics/webhooks"),
];

fn tags(script: &ModelScript) -> Vec<&'static str> {
    match &script.outcome {
        Outcome::Succeed(Output::Url | Output::Urls(_) | Output::DataUri) => {
            vec!["text-to-image", "image-generation"]
        }
        Outcome::Succeed(Output::Text(_)) => vec!["text-generation", "streaming"],
        Outcome::Succeed(Output::Json(_)) => vec!["json"],
        Outcome::Succeed(Output::Synthetic { .. }) => vec!["files", "large-outputs"],
        _ => vec!["fake"],
    }
}

/// `GET /v1/search?query=&limit=`: models (with metadata), collections and documentation pages.
pub(crate) fn search(shared: &Arc<Shared>, req: &Req) -> Resp {
    let q = req.query.as_deref();
    let query = util::query_value(q, "query").unwrap_or_default();
    if query.trim().is_empty() {
        return Resp::problem(400, "Bad Request", "Query parameter \"query\" is required");
    }
    let limit = match util::query_value(q, "limit") {
        None => 20,
        Some(l) => match l.parse::<usize>() {
            Ok(n @ 1..=50) => n,
            _ => {
                return Resp::problem(
                    400,
                    "Bad Request",
                    "Query parameter \"limit\" must be an integer from 1 to 50",
                );
            }
        },
    };
    let mut st = lock(&shared.state);
    st.settle_trainings();
    let lower = query.to_lowercase();
    let mut found: Vec<(f64, usize, String)> = public_models(&st)
        .into_iter()
        .filter(|(_, name)| matches(&query, &model_haystack(&st, name)))
        .map(|(seq, name)| {
            let score = if name.to_lowercase() == lower {
                2.0
            } else if matches(&query, &name) {
                1.0 + 1.0 / (1.0 + name.len() as f64)
            } else {
                0.5
            };
            (score, seq, name)
        })
        .collect();
    found.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
    found.truncate(limit);
    let models: Vec<Value> = found
        .iter()
        .map(|(score, _, name)| {
            let script = st.models.get(name).cloned().unwrap_or_default();
            let description = st
                .meta
                .get(name)
                .and_then(|m| m.description.clone())
                .unwrap_or_else(|| default_description(name));
            json!({
                "model": model_json(&st, name, &script),
                "metadata": {
                    "generated_description": format!(
                        "{description}. It runs a scripted schedule on replicate-fake."
                    ),
                    "score": score,
                    "tags": tags(&script),
                }
            })
        })
        .collect();
    let collections: Vec<Value> = COLLECTIONS
        .iter()
        .filter(|c| matches(&query, &format!("{} {} {}", c.slug, c.name, c.description)))
        .map(|c| {
            json!({
                "slug": c.slug,
                "name": c.name,
                "description": c.description,
                "models": c.models,
            })
        })
        .collect();
    let pages: Vec<Value> = DOC_PAGES
        .iter()
        .filter(|(name, href)| matches(&query, &format!("{name} {href}")))
        .map(|(name, href)| json!({"name": name, "href": href}))
        .collect();
    Resp::json(
        200,
        &json!({
            "query": query,
            "models": models,
            "collections": collections,
            "pages": pages,
        }),
    )
}
