//! The API origin: router and handlers.
//!
//! To add an endpoint: add a [`Route`] variant, match it in [`route`], and handle it in
//! [`dispatch`].

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use hyper::Method;
use serde_json::{Map, Value, json};

use crate::http::Resp;
use crate::multipart;
use crate::script::{ModelScript, Outcome, Output};
use crate::server::Req;
use crate::state::{NewPred, Pred, Shared, Upload, WebhookCfg, lock, version_of};
use crate::util;
use crate::webhook;

/// An API endpoint, after `/v1` (and the prefix) were stripped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    CreateModelPrediction(String),
    CreateVersionPrediction,
    CreateDeploymentPrediction(String),
    ListPredictions,
    GetPrediction(&'a str),
    CancelPrediction(&'a str),
    GetModel(String),
    ListVersions(String),
    GetVersion(String, &'a str),
    Account,
    WebhookSecret,
    Hardware,
    ListFiles,
    CreateFile,
    GetFile(&'a str),
    DeleteFile(&'a str),
    DownloadFile(&'a str),
    MethodNotAllowed,
    NotFound,
}

/// Maps a method and a path below `/v1` to an endpoint.
pub(crate) fn route<'a>(method: &Method, rest: &'a str) -> Route<'a> {
    let trimmed = rest.trim_matches('/');
    let segs: Vec<&'a str> = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    };
    let get = method == Method::GET;
    let post = method == Method::POST;
    let delete = method == Method::DELETE;
    let pick = |ok: bool, r: Route<'a>| if ok { r } else { Route::MethodNotAllowed };
    match segs.as_slice() {
        ["predictions"] if post => Route::CreateVersionPrediction,
        ["predictions"] => pick(get, Route::ListPredictions),
        ["predictions", id] => pick(get, Route::GetPrediction(id)),
        ["predictions", id, "cancel"] => pick(post, Route::CancelPrediction(id)),
        ["models", o, n, "predictions"] => {
            pick(post, Route::CreateModelPrediction(format!("{o}/{n}")))
        }
        ["models", o, n] => pick(get, Route::GetModel(format!("{o}/{n}"))),
        ["models", o, n, "versions"] => pick(get, Route::ListVersions(format!("{o}/{n}"))),
        ["models", o, n, "versions", v] => pick(get, Route::GetVersion(format!("{o}/{n}"), v)),
        ["deployments", o, n, "predictions"] => {
            pick(post, Route::CreateDeploymentPrediction(format!("{o}/{n}")))
        }
        ["account"] => pick(get, Route::Account),
        ["webhooks", "default", "secret"] => pick(get, Route::WebhookSecret),
        ["hardware"] => pick(get, Route::Hardware),
        ["files"] if post => Route::CreateFile,
        ["files"] => pick(get, Route::ListFiles),
        ["files", id] if delete => Route::DeleteFile(id),
        ["files", id] => pick(get, Route::GetFile(id)),
        ["files", id, "download"] => pick(get, Route::DownloadFile(id)),
        _ => Route::NotFound,
    }
}

/// Handles a request on the API origin.
pub(crate) async fn handle(shared: &Arc<Shared>, req: &Req) -> Resp {
    let prefix = shared.opts.prefix.as_str();
    let path = match req.path.strip_prefix(prefix) {
        Some(rest) if !prefix.is_empty() && rest.starts_with('/') => rest,
        _ => req.path.as_str(),
    };
    let Some(rest) = path.strip_prefix("/v1") else {
        return Resp::not_found();
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return Resp::not_found();
    }
    if !authorized(shared, req) {
        return Resp::problem(
            401,
            "Unauthenticated",
            "You did not pass a valid authentication token",
        );
    }
    let r = route(&req.method, rest);
    dispatch(shared, req, r).await
}

fn authorized(shared: &Shared, req: &Req) -> bool {
    let Some(v) = req.header("authorization") else {
        return false;
    };
    let mut parts = v.trim().splitn(2, ' ');
    let scheme = parts.next().unwrap_or("");
    let token = parts.next().unwrap_or("").trim();
    scheme.eq_ignore_ascii_case("bearer") && token == shared.opts.token
}

async fn dispatch(shared: &Arc<Shared>, req: &Req, r: Route<'_>) -> Resp {
    match r {
        Route::CreateModelPrediction(name) => {
            create_prediction(shared, req, Target::Model(name)).await
        }
        Route::CreateVersionPrediction => create_prediction(shared, req, Target::Version).await,
        Route::CreateDeploymentPrediction(name) => {
            create_prediction(shared, req, Target::Deployment(name)).await
        }
        Route::ListPredictions => list_predictions(shared, req),
        Route::GetPrediction(id) => match shared.find_pred(id) {
            Some(p) => Resp::json(200, &p.to_json(&p.view(), shared, false)),
            None => Resp::not_found(),
        },
        Route::CancelPrediction(id) => match shared.find_pred(id) {
            Some(p) => {
                p.cancel();
                Resp::json(200, &p.to_json(&p.view(), shared, false))
            }
            None => Resp::not_found(),
        },
        Route::GetModel(name) => match shared.model_script(&name) {
            Some(s) => Resp::json(200, &model_json(&name, &s)),
            None => Resp::not_found(),
        },
        Route::ListVersions(name) => match shared.model_script(&name) {
            Some(s) => Resp::json(
                200,
                &json!({"next": null, "previous": null, "results": [version_json(&name, &s)]}),
            ),
            None => Resp::not_found(),
        },
        Route::GetVersion(name, v) => match shared.model_script(&name) {
            Some(s) if version_of(&name, &s) == v || s.extra_versions.iter().any(|x| x == v) => {
                let mut j = version_json(&name, &s);
                j["id"] = json!(v);
                Resp::json(200, &j)
            }
            _ => Resp::not_found(),
        },
        Route::Account => Resp::json(
            200,
            &json!({"type": "user", "username": "fake", "name": "Fake User", "github_url": null}),
        ),
        Route::WebhookSecret => Resp::json(200, &json!({"key": shared.opts.webhook_secret})),
        Route::Hardware => Resp::json(
            200,
            &json!([
                {"name": "CPU", "sku": "cpu"},
                {"name": "Nvidia T4 GPU", "sku": "gpu-t4"},
                {"name": "Nvidia A40 (Large) GPU", "sku": "gpu-a40-large"},
                {"name": "Nvidia A100 (80GB) GPU", "sku": "gpu-a100-large"}
            ]),
        ),
        Route::ListFiles => list_files(shared, req),
        Route::CreateFile => create_file(shared, req),
        Route::GetFile(id) => match find_file(shared, id) {
            Some(f) => Resp::json(200, &file_json(shared, &f)),
            None => Resp::problem(404, "Not found", "File not found"),
        },
        Route::DeleteFile(id) => {
            let mut st = lock(&shared.state);
            match st.files.remove(id) {
                Some(f) => {
                    st.file_order.retain(|x| x.seq != f.seq);
                    Resp::empty(204)
                }
                None => Resp::problem(404, "Not found", "File not found"),
            }
        }
        Route::DownloadFile(id) => match find_file(shared, id) {
            Some(f) => Resp::new(200, &f.content_type, f.data.clone()),
            None => Resp::problem(404, "Not found", "File not found"),
        },
        Route::MethodNotAllowed => Resp::problem(
            405,
            "Method not allowed",
            &format!("Method {} is not allowed on this endpoint", req.method),
        ),
        Route::NotFound => Resp::not_found(),
    }
}

fn find_file(shared: &Shared, id: &str) -> Option<Arc<Upload>> {
    lock(&shared.state).files.get(id).cloned()
}

enum Target {
    Model(String),
    Version,
    Deployment(String),
}

const EVENTS: [&str; 4] = ["start", "output", "logs", "completed"];

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

async fn create_prediction(shared: &Arc<Shared>, req: &Req, target: Target) -> Resp {
    let scale = shared.opts.header_time_scale;
    let wait = match req.header("prefer").map(util::parse_prefer_wait) {
        None | Some(Ok(None)) => None,
        Some(Ok(Some(secs))) => Some(Duration::from_secs(secs)),
        Some(Err(e)) => return Resp::problem(422, "Invalid Prefer header", &e),
    };
    let cancel_after = match req.header("cancel-after") {
        None => None,
        Some(v) => match util::parse_cancel_after(v) {
            Some(d) if d >= Duration::from_secs(5) => Some(d),
            Some(_) => {
                return Resp::problem(
                    422,
                    "Invalid Cancel-After header",
                    "Cancel-After must be at least 5 seconds",
                );
            }
            None => {
                return Resp::problem(
                    422,
                    "Invalid Cancel-After header",
                    &format!(
                        "Cannot parse Cancel-After value {v:?}: use e.g. 30s, 5m, 1h30m or a number of seconds"
                    ),
                );
            }
        },
    };

    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(e) => {
            return Resp::problem(
                400,
                "Invalid JSON",
                &format!("The request body is not valid JSON: {e}"),
            );
        }
    };
    let Value::Object(obj) = body else {
        return Resp::invalid(&[format!(
            "(root): Invalid type. Expected: object, given: {}",
            type_name(&body)
        )]);
    };
    let is_version = matches!(target, Target::Version);
    let mut errs = Vec::new();
    for k in obj.keys() {
        let allowed = matches!(
            k.as_str(),
            "input" | "webhook" | "webhook_events_filter" | "stream"
        ) || (is_version && k == "version");
        if !allowed {
            errs.push(format!("(root): Additional property {k} is not allowed"));
        }
    }
    match obj.get("input") {
        Some(Value::Object(_)) => {}
        None => errs.push("(root): input is required".to_owned()),
        Some(other) => errs.push(format!(
            "input: Invalid type. Expected: object, given: {}",
            type_name(other)
        )),
    }
    let version = if is_version {
        match obj.get("version") {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            None => {
                errs.push("(root): version is required".to_owned());
                None
            }
            Some(other) => {
                errs.push(format!(
                    "version: Invalid type. Expected: string, given: {}",
                    type_name(other)
                ));
                None
            }
        }
    } else {
        None
    };
    let webhook_url = match obj.get("webhook") {
        None | Some(Value::Null) => None,
        Some(Value::String(u)) if u.starts_with("http://") || u.starts_with("https://") => {
            Some(u.clone())
        }
        Some(Value::String(u)) => {
            errs.push(format!("webhook: {u:?} is not a valid HTTP(S) URL"));
            None
        }
        Some(other) => {
            errs.push(format!(
                "webhook: Invalid type. Expected: string, given: {}",
                type_name(other)
            ));
            None
        }
    };
    let events: Vec<String> = match obj.get("webhook_events_filter") {
        None | Some(Value::Null) => EVENTS.iter().map(|s| (*s).to_owned()).collect(),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for (i, it) in items.iter().enumerate() {
                match it.as_str() {
                    Some(s) if EVENTS.contains(&s) => out.push(s.to_owned()),
                    _ => errs.push(format!(
                        "webhook_events_filter.{i}: must be one of the following: \"start\", \"output\", \"logs\", \"completed\""
                    )),
                }
            }
            out
        }
        Some(other) => {
            errs.push(format!(
                "webhook_events_filter: Invalid type. Expected: array, given: {}",
                type_name(other)
            ));
            Vec::new()
        }
    };
    if let Some(v) = obj.get("stream")
        && !v.is_boolean()
    {
        errs.push(format!(
            "stream: Invalid type. Expected: boolean, given: {}",
            type_name(v)
        ));
    }
    if !errs.is_empty() {
        return Resp::invalid(&errs);
    }

    let (model, version, script, deployment) = match target {
        Target::Model(name) => match shared.model_script(&name) {
            Some(s) => {
                let v = version_of(&name, &s);
                (name, v, s, None)
            }
            None => return Resp::not_found(),
        },
        Target::Deployment(dep) => {
            let model_name = lock(&shared.state)
                .deployments
                .get(&dep)
                .cloned()
                .unwrap_or_else(|| dep.clone());
            match shared.model_script(&model_name) {
                Some(s) => {
                    let v = version_of(&model_name, &s);
                    (model_name, v, s, Some(dep))
                }
                None => return Resp::not_found(),
            }
        }
        Target::Version => match resolve_version(shared, version.as_deref().unwrap_or("")) {
            Some((m, v, s)) => (m, v, s, None),
            None => {
                return Resp::problem(
                    422,
                    "Invalid version or not permitted",
                    "The specified version does not exist (or perhaps you don't have permission to use it?)",
                );
            }
        },
    };

    let input = obj.get("input").cloned().unwrap_or_else(|| json!({}));
    let deadline = cancel_after.map(|d| d.mul_f64(scale));
    let pred = {
        let mut st = lock(&shared.state);
        let seq = st.order.len();
        let p = Arc::new(Pred::new(
            seq,
            NewPred {
                model,
                version,
                deployment,
                input,
                script,
                deadline,
                webhook: webhook_url.map(|url| WebhookCfg { url, events }),
            },
            &shared.opts,
        ));
        st.preds.insert(p.id.clone(), p.clone());
        st.order.push(p.clone());
        for (i, path) in p.output_paths.iter().enumerate() {
            st.outputs.insert(path.clone(), (p.clone(), i));
        }
        p
    };
    if pred.webhook.is_some() {
        webhook::spawn(shared.clone(), pred.clone());
    }
    if let Some(w) = wait {
        wait_terminal(&pred, w.mul_f64(scale)).await;
    }
    let v = pred.view();
    let body = pred.to_json(&v, shared, false);
    if wait.is_some() && v.terminal.is_none() {
        Resp::json(202, &body).header("location", pred.get_url(shared.body_host()))
    } else {
        Resp::json(201, &body)
    }
}

/// Waits until the prediction is terminal or `limit` has passed.
async fn wait_terminal(pred: &Pred, limit: Duration) {
    let until = Instant::now() + limit;
    loop {
        let notified = pred.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let end_at = pred.created + pred.end().0;
        let now = Instant::now();
        if now >= end_at || now >= until {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(end_at.min(until).into()) => {}
            _ = &mut notified => {}
        }
    }
}

/// Resolves the `version` of a create body to (model, reported version, script).
fn resolve_version(shared: &Shared, v: &str) -> Option<(String, String, Arc<ModelScript>)> {
    if let Some((model, id)) = v.rsplit_once(':') {
        if id.is_empty() || !model.contains('/') {
            return None;
        }
        let s = shared.model_script(model)?;
        return Some((model.to_owned(), id.to_owned(), s));
    }
    if v.contains('/') {
        let s = shared.model_script(v)?;
        let id = version_of(v, &s);
        return Some((v.to_owned(), id, s));
    }
    let st = lock(&shared.state);
    let model = st.versions.get(v)?.clone();
    let s = st.models.get(&model)?.clone();
    Some((model, v.to_owned(), s))
}

/// A page of a list, newest first.
struct Page<T> {
    items: Vec<T>,
    next: Option<String>,
    previous: Option<String>,
}

fn encode_cursor(kind: char, seq: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{kind}:{seq}"))
}

fn decode_cursor(c: &str) -> Option<(char, usize)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c.trim_end_matches('='))
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (k, n) = s.split_once(':')?;
    let kind = match k {
        "n" => 'n',
        "p" => 'p',
        _ => return None,
    };
    Some((kind, n.parse().ok()?))
}

/// Cursor pagination over `items` (ascending by `seq`), newest first.
fn paginate<T: Clone>(
    items: &[T],
    seq: impl Fn(&T) -> usize,
    cursor: Option<&str>,
    page_size: usize,
) -> Result<Page<T>, ()> {
    let page: Vec<T> = match cursor {
        None => items.iter().rev().take(page_size).cloned().collect(),
        Some(c) => match decode_cursor(c).ok_or(())? {
            ('n', x) => {
                let end = items.partition_point(|it| seq(it) < x);
                items[..end].iter().rev().take(page_size).cloned().collect()
            }
            (_, x) => {
                let start = items.partition_point(|it| seq(it) <= x);
                let mut v: Vec<T> = items[start..].iter().take(page_size).cloned().collect();
                v.reverse();
                v
            }
        },
    };
    let (next, previous) = match (page.first(), page.last()) {
        (Some(first), Some(last)) => {
            let (fs, ls) = (seq(first), seq(last));
            let older = items.first().is_some_and(|it| seq(it) < ls);
            let newer = items.last().is_some_and(|it| seq(it) > fs);
            (
                older.then(|| encode_cursor('n', ls)),
                newer.then(|| encode_cursor('p', fs)),
            )
        }
        _ => (None, None),
    };
    Ok(Page {
        items: page,
        next,
        previous,
    })
}

fn list_predictions(shared: &Arc<Shared>, req: &Req) -> Resp {
    let cursor = util::query_param(req.query.as_deref(), "cursor");
    let page = {
        let st = lock(&shared.state);
        paginate(
            &st.order,
            |p| p.seq,
            cursor.as_deref(),
            shared.opts.page_size,
        )
    };
    let Ok(page) = page else {
        return Resp::problem(400, "Invalid cursor", "The cursor is not valid");
    };
    let host = shared.body_host();
    let url = |c: String| format!("{host}/v1/predictions?cursor={c}");
    let results: Vec<Value> = page
        .items
        .iter()
        .map(|p| p.to_json(&p.view(), shared, true))
        .collect();
    Resp::json(
        200,
        &json!({
            "previous": page.previous.map(url),
            "next": page.next.map(url),
            "results": results,
        }),
    )
}

fn list_files(shared: &Arc<Shared>, req: &Req) -> Resp {
    let all: Vec<Arc<Upload>> = lock(&shared.state).file_order.clone();
    let cursor = util::query_param(req.query.as_deref(), "cursor");
    let Ok(page) = paginate(&all, |f| f.seq, cursor.as_deref(), shared.opts.page_size) else {
        return Resp::problem(400, "Invalid cursor", "The cursor is not valid");
    };
    let host = shared.body_host();
    let url = |c: String| format!("{host}/v1/files?cursor={c}");
    let results: Vec<Value> = page.items.iter().map(|f| file_json(shared, f)).collect();
    Resp::json(
        200,
        &json!({
            "previous": page.previous.map(url),
            "next": page.next.map(url),
            "results": results,
        }),
    )
}

fn file_json(shared: &Shared, f: &Upload) -> Value {
    json!({
        "id": f.id,
        "name": f.name,
        "content_type": f.content_type,
        "size": f.data.len(),
        "etag": format!("\"{}\"", &f.sha256[..32]),
        "checksums": {"sha256": f.sha256},
        "metadata": f.metadata,
        "created_at": util::rfc3339_ns(f.created),
        "expires_at": util::rfc3339_ns(f.created + Duration::from_secs(24 * 3600)),
        "urls": {"get": format!("{}/v1/files/{}", shared.body_host(), f.id)},
    })
}

fn create_file(shared: &Arc<Shared>, req: &Req) -> Resp {
    let Some(ct) = req.header("content-type") else {
        return Resp::problem(
            415,
            "Unsupported Media Type",
            "Expected a multipart/form-data body",
        );
    };
    let Some(boundary) = multipart::boundary(ct) else {
        return Resp::problem(
            415,
            "Unsupported Media Type",
            "Expected a multipart/form-data body with a boundary",
        );
    };
    let parts = match multipart::parse(&req.body, &boundary) {
        Ok(p) => p,
        Err(e) => return Resp::problem(400, "Invalid multipart body", &e),
    };
    let Some(content) = parts.iter().find(|p| p.name == "content") else {
        return Resp::invalid(&["content: content is required".to_owned()]);
    };
    if content.data.len() > 100 * 1024 * 1024 {
        return Resp::problem(
            413,
            "Content Too Large",
            "Files must be less than 100MB in size",
        );
    }
    let text_part = |name: &str| {
        parts
            .iter()
            .find(|p| p.name == name)
            .map(|p| String::from_utf8_lossy(&p.data).into_owned())
    };
    let name = text_part("filename")
        .or_else(|| content.filename.clone())
        .unwrap_or_else(|| "file".to_owned());
    if name.len() > 255 {
        return Resp::invalid(&["filename: must be at most 255 bytes".to_owned()]);
    }
    let content_type = text_part("type")
        .or_else(|| content.content_type.clone())
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let metadata = match text_part("metadata") {
        None => json!({}),
        Some(s) => match serde_json::from_str::<Value>(&s) {
            Ok(v) => v,
            Err(_) => return Resp::invalid(&["metadata: must be valid JSON".to_owned()]),
        },
    };
    let upload = {
        let mut st = lock(&shared.state);
        let seq = st.file_order.last().map_or(0, |f| f.seq + 1);
        let f = Arc::new(Upload {
            seq,
            id: util::new_id(),
            name,
            content_type,
            sha256: util::sha256_hex(&content.data),
            data: content.data.clone(),
            metadata,
            created: SystemTime::now(),
        });
        st.files.insert(f.id.clone(), f.clone());
        st.file_order.push(f.clone());
        f
    };
    Resp::json(201, &file_json(shared, &upload))
}

fn output_schema(script: &ModelScript) -> Value {
    match &script.outcome {
        Outcome::Succeed(Output::Url) | Outcome::Succeed(Output::DataUri) => {
            json!({"type": "string", "title": "Output", "format": "uri"})
        }
        Outcome::Succeed(Output::Urls(_)) => json!({
            "type": "array", "title": "Output", "items": {"type": "string", "format": "uri"}
        }),
        Outcome::Succeed(Output::Text(_)) => json!({
            "type": "array", "title": "Output", "items": {"type": "string"},
            "x-cog-array-type": "iterator", "x-cog-array-display": "concatenate"
        }),
        _ => json!({"title": "Output"}),
    }
}

fn version_json(name: &str, script: &ModelScript) -> Value {
    json!({
        "id": version_of(name, script),
        "created_at": "2025-01-01T00:00:00.000000Z",
        "cog_version": "0.13.7",
        "openapi_schema": {
            "openapi": "3.0.2",
            "info": {"title": "Cog", "version": "0.1.0"},
            "paths": {},
            "components": {"schemas": {
                "Input": {
                    "type": "object",
                    "title": "Input",
                    "required": ["prompt"],
                    "properties": {"prompt": {
                        "type": "string", "title": "Prompt", "x-order": 0,
                        "description": "Input prompt"
                    }}
                },
                "Output": output_schema(script),
            }}
        }
    })
}

fn model_json(name: &str, script: &ModelScript) -> Value {
    let (owner, model) = name.split_once('/').unwrap_or((name, ""));
    let mut m = Map::new();
    m.insert("url".into(), json!(format!("https://replicate.com/{name}")));
    m.insert("owner".into(), json!(owner));
    m.insert("name".into(), json!(model));
    m.insert(
        "description".into(),
        json!(format!(
            "A scripted model served by replicate-fake ({name})"
        )),
    );
    m.insert("visibility".into(), json!("public"));
    m.insert("github_url".into(), Value::Null);
    m.insert("paper_url".into(), Value::Null);
    m.insert("license_url".into(), Value::Null);
    m.insert("run_count".into(), json!(0));
    m.insert("cover_image_url".into(), Value::Null);
    m.insert("default_example".into(), Value::Null);
    m.insert("latest_version".into(), version_json(name, script));
    m.insert("is_official".into(), json!(script.official));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route(&Method::POST, "/predictions"),
            Route::CreateVersionPrediction
        );
        assert_eq!(route(&Method::GET, "/predictions/"), Route::ListPredictions);
        assert_eq!(
            route(&Method::GET, "/predictions/abc"),
            Route::GetPrediction("abc")
        );
        assert_eq!(
            route(&Method::GET, "/predictions/abc/cancel"),
            Route::MethodNotAllowed
        );
        assert_eq!(
            route(&Method::POST, "/models/a/b/predictions"),
            Route::CreateModelPrediction("a/b".into())
        );
        assert_eq!(
            route(&Method::GET, "/models/a/b/versions/x"),
            Route::GetVersion("a/b".into(), "x")
        );
        assert_eq!(route(&Method::GET, "/nope"), Route::NotFound);
        assert_eq!(route(&Method::DELETE, "/files/f1"), Route::DeleteFile("f1"));
    }

    #[test]
    fn pagination_walks_both_ways() {
        let items: Vec<usize> = (0..7).collect();
        let p1 = paginate(&items, |x| *x, None, 3).expect("page");
        assert_eq!(p1.items, vec![6, 5, 4]);
        assert!(p1.previous.is_none());
        let p2 = paginate(&items, |x| *x, p1.next.as_deref(), 3).expect("page");
        assert_eq!(p2.items, vec![3, 2, 1]);
        let p3 = paginate(&items, |x| *x, p2.next.as_deref(), 3).expect("page");
        assert_eq!(p3.items, vec![0]);
        assert!(p3.next.is_none());
        let back = paginate(&items, |x| *x, p3.previous.as_deref(), 3).expect("page");
        assert_eq!(back.items, vec![3, 2, 1]);
        assert!(paginate(&items, |x| *x, Some("!!"), 3).is_err());
    }
}
