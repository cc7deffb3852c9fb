//! The API origin: router and handlers.
//!
//! To add an endpoint: add a [`Route`] variant, match it in [`route`], and handle it in
//! [`dispatch`].

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use hyper::{HeaderMap, Method};
use serde_json::{Map, Value, json};

use crate::http::Resp;
use crate::script::ModelScript;
use crate::server::Req;
use crate::state::{JobKind, NewPred, Pred, Shared, Upload, WebhookCfg, lock, version_of};
use crate::util;
use crate::webhook;
use crate::{catalog, deployments, multipart, trainings};

/// An API endpoint, after `/v1` (and the prefix) were stripped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    CreateModelPrediction(String),
    CreateVersionPrediction,
    CreateDeploymentPrediction(String),
    ListPredictions,
    GetPrediction(&'a str),
    CancelPrediction(&'a str),
    ListModels,
    CreateModel,
    SearchModels,
    GetModel(String),
    UpdateModel(String),
    DeleteModel(String),
    ListModelExamples(String),
    GetModelReadme(String),
    ListVersions(String),
    GetVersion(String, &'a str),
    DeleteVersion(String, &'a str),
    CreateTraining(String, &'a str),
    ListTrainings,
    GetTraining(&'a str),
    CancelTraining(&'a str),
    ListDeployments,
    CreateDeployment,
    GetDeployment(String),
    UpdateDeployment(String),
    DeleteDeployment(String),
    ListCollections,
    GetCollection(&'a str),
    Search,
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
    let m = method.as_str();
    let pick = |ok: bool, r: Route<'a>| if ok { r } else { Route::MethodNotAllowed };
    match segs.as_slice() {
        ["predictions"] if m == "POST" => Route::CreateVersionPrediction,
        ["predictions"] => pick(m == "GET", Route::ListPredictions),
        ["predictions", id] => pick(m == "GET", Route::GetPrediction(id)),
        ["predictions", id, "cancel"] => pick(m == "POST", Route::CancelPrediction(id)),
        ["models"] => match m {
            "GET" => Route::ListModels,
            "POST" => Route::CreateModel,
            "QUERY" => Route::SearchModels,
            _ => Route::MethodNotAllowed,
        },
        ["models", o, n] => {
            let name = format!("{o}/{n}");
            match m {
                "GET" => Route::GetModel(name),
                "PATCH" => Route::UpdateModel(name),
                "DELETE" => Route::DeleteModel(name),
                _ => Route::MethodNotAllowed,
            }
        }
        ["models", o, n, "predictions"] => pick(
            m == "POST",
            Route::CreateModelPrediction(format!("{o}/{n}")),
        ),
        ["models", o, n, "examples"] => {
            pick(m == "GET", Route::ListModelExamples(format!("{o}/{n}")))
        }
        ["models", o, n, "readme"] => pick(m == "GET", Route::GetModelReadme(format!("{o}/{n}"))),
        ["models", o, n, "versions"] => pick(m == "GET", Route::ListVersions(format!("{o}/{n}"))),
        ["models", o, n, "versions", v] => match m {
            "GET" => Route::GetVersion(format!("{o}/{n}"), v),
            "DELETE" => Route::DeleteVersion(format!("{o}/{n}"), v),
            _ => Route::MethodNotAllowed,
        },
        ["models", o, n, "versions", v, "trainings"] => {
            pick(m == "POST", Route::CreateTraining(format!("{o}/{n}"), v))
        }
        ["trainings"] => pick(m == "GET", Route::ListTrainings),
        ["trainings", id] => pick(m == "GET", Route::GetTraining(id)),
        ["trainings", id, "cancel"] => pick(m == "POST", Route::CancelTraining(id)),
        ["deployments"] => match m {
            "GET" => Route::ListDeployments,
            "POST" => Route::CreateDeployment,
            _ => Route::MethodNotAllowed,
        },
        ["deployments", o, n] => {
            let name = format!("{o}/{n}");
            match m {
                "GET" => Route::GetDeployment(name),
                "PATCH" => Route::UpdateDeployment(name),
                "DELETE" => Route::DeleteDeployment(name),
                _ => Route::MethodNotAllowed,
            }
        }
        ["deployments", o, n, "predictions"] => pick(
            m == "POST",
            Route::CreateDeploymentPrediction(format!("{o}/{n}")),
        ),
        ["collections"] => pick(m == "GET", Route::ListCollections),
        ["collections", slug] => pick(m == "GET", Route::GetCollection(slug)),
        ["search"] => pick(m == "GET", Route::Search),
        ["account"] => pick(m == "GET", Route::Account),
        ["webhooks", "default", "secret"] => pick(m == "GET", Route::WebhookSecret),
        ["hardware"] => pick(m == "GET", Route::Hardware),
        ["files"] if m == "POST" => Route::CreateFile,
        ["files"] => pick(m == "GET", Route::ListFiles),
        ["files", id] if m == "DELETE" => Route::DeleteFile(id),
        ["files", id] => pick(m == "GET", Route::GetFile(id)),
        ["files", id, "download"] => pick(m == "GET", Route::DownloadFile(id)),
        _ => Route::NotFound,
    }
}

/// The part of a path after `/v1` (and the prefix), if it is an API path.
fn api_rest<'a>(shared: &Shared, path: &'a str) -> Option<&'a str> {
    let prefix = shared.opts.prefix.as_str();
    let path = match path.strip_prefix(prefix) {
        Some(rest) if !prefix.is_empty() && rest.starts_with('/') => rest,
        _ => path,
    };
    let rest = path.strip_prefix("/v1")?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// What the API origin will do with a request, known from its head alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// Not under `/v1`: 404.
    NotApi,
    /// A missing or wrong token: 401.
    Unauthenticated,
    /// No such endpoint or method: 404 or 405.
    NoRoute,
    /// An endpoint the handlers serve.
    Served,
}

/// The path of an API request without the prefix (`/v1/...`), as real URLs in bodies name it.
pub(crate) fn api_path(shared: &Shared, path: &str) -> Option<String> {
    api_rest(shared, path).map(|rest| format!("/v1{rest}"))
}

/// Classifies a request on the API origin by its method, path and headers.
pub(crate) fn classify(shared: &Shared, method: &Method, path: &str, headers: &HeaderMap) -> Class {
    let Some(rest) = api_rest(shared, path) else {
        return Class::NotApi;
    };
    if !authorized(shared, headers) {
        return Class::Unauthenticated;
    }
    match route(method, rest) {
        Route::NotFound | Route::MethodNotAllowed => Class::NoRoute,
        _ => Class::Served,
    }
}

/// Handles a request on the API origin.
pub(crate) async fn handle(shared: &Arc<Shared>, req: &Req) -> Resp {
    let Some(rest) = api_rest(shared, &req.path) else {
        return Resp::not_found();
    };
    if !authorized(shared, &req.headers) {
        return Resp::problem(
            401,
            "Unauthenticated",
            "You did not pass a valid authentication token",
        );
    }
    let r = route(&req.method, rest);
    dispatch(shared, req, r).await
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
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
        Route::ListModels => catalog::list_models(shared, req),
        Route::CreateModel => catalog::create_model(shared, req),
        Route::SearchModels => catalog::search_models(shared, req),
        Route::GetModel(name) => catalog::get_model(shared, &name),
        Route::UpdateModel(name) => catalog::update_model(shared, req, &name),
        Route::DeleteModel(name) => catalog::delete_model(shared, &name),
        Route::ListModelExamples(name) => catalog::list_examples(shared, req, &name),
        Route::GetModelReadme(name) => catalog::get_readme(shared, &name),
        Route::ListVersions(name) => catalog::list_versions(shared, req, &name),
        Route::GetVersion(name, v) => catalog::get_version(shared, &name, v),
        Route::DeleteVersion(name, v) => catalog::delete_version(shared, &name, v),
        Route::CreateTraining(name, v) => trainings::create(shared, req, &name, v),
        Route::ListTrainings => trainings::list(shared, req),
        Route::GetTraining(id) => match trainings::find(shared, id) {
            Some(t) => Resp::json(200, &t.to_json(&t.view(), shared, false)),
            None => Resp::problem(404, "Not found", "Training not found"),
        },
        Route::CancelTraining(id) => match trainings::find(shared, id) {
            Some(t) => {
                t.cancel();
                Resp::json(200, &t.to_json(&t.view(), shared, false))
            }
            None => Resp::problem(404, "Not found", "Training not found"),
        },
        Route::ListDeployments => deployments::list(shared, req),
        Route::CreateDeployment => deployments::create(shared, req),
        Route::GetDeployment(name) => deployments::get(shared, &name),
        Route::UpdateDeployment(name) => deployments::update(shared, req, &name),
        Route::DeleteDeployment(name) => deployments::delete(shared, &name),
        Route::ListCollections => catalog::list_collections(shared, req),
        Route::GetCollection(slug) => catalog::get_collection(shared, slug),
        Route::Search => catalog::search(shared, req),
        Route::Account => Resp::json(200, &account_json()),
        Route::WebhookSecret => Resp::json(200, &json!({"key": shared.opts.webhook_secret})),
        Route::Hardware => Resp::json(
            200,
            &Value::Array(
                HARDWARE
                    .iter()
                    .map(|(name, sku)| json!({"name": name, "sku": sku}))
                    .collect(),
            ),
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

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The body of a request as a JSON object, or the problem to answer.
pub(crate) fn json_object(req: &Req) -> Result<Map<String, Value>, Resp> {
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(e) => {
            return Err(Resp::problem(
                400,
                "Invalid JSON",
                &format!("The request body is not valid JSON: {e}"),
            ));
        }
    };
    match body {
        Value::Object(obj) => Ok(obj),
        other => Err(Resp::invalid(&[format!(
            "(root): Invalid type. Expected: object, given: {}",
            type_name(&other)
        )])),
    }
}

/// Reports every key of `obj` that is not in `allowed`.
pub(crate) fn check_keys(obj: &Map<String, Value>, allowed: &[&str], errs: &mut Vec<String>) {
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            errs.push(format!("(root): Additional property {k} is not allowed"));
        }
    }
}

/// A required non-empty string field.
pub(crate) fn required_string(
    obj: &Map<String, Value>,
    key: &str,
    errs: &mut Vec<String>,
) -> Option<String> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::String(_)) => {
            errs.push(format!("{key}: must not be empty"));
            None
        }
        None => {
            errs.push(format!("(root): {key} is required"));
            None
        }
        Some(other) => {
            errs.push(format!(
                "{key}: Invalid type. Expected: string, given: {}",
                type_name(other)
            ));
            None
        }
    }
}

/// An optional string field (`null` counts as absent).
pub(crate) fn optional_string(
    obj: &Map<String, Value>,
    key: &str,
    errs: &mut Vec<String>,
) -> Option<String> {
    match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            errs.push(format!(
                "{key}: Invalid type. Expected: string, given: {}",
                type_name(other)
            ));
            None
        }
    }
}

/// An optional integer field within `lo..=hi`.
pub(crate) fn optional_int(
    obj: &Map<String, Value>,
    key: &str,
    lo: u64,
    hi: u64,
    errs: &mut Vec<String>,
) -> Option<u64> {
    match obj.get(key) {
        None => None,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if (lo..=hi).contains(&v) => Some(v),
            _ => {
                errs.push(format!("{key}: Must be an integer from {lo} to {hi}"));
                None
            }
        },
        Some(other) => {
            errs.push(format!(
                "{key}: Invalid type. Expected: integer, given: {}",
                type_name(other)
            ));
            None
        }
    }
}

/// The fields prediction and training bodies share: `input` (a required object), `webhook` and
/// `webhook_events_filter`. Returns the webhook URL and events.
pub(crate) fn job_fields(
    obj: &Map<String, Value>,
    errs: &mut Vec<String>,
) -> (Option<String>, Vec<String>) {
    match obj.get("input") {
        Some(Value::Object(_)) => {}
        None => errs.push("(root): input is required".to_owned()),
        Some(other) => errs.push(format!(
            "input: Invalid type. Expected: object, given: {}",
            type_name(other)
        )),
    }
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
    (webhook_url, events)
}

/// The longest `Cancel-After` the fake accepts: one year (Replicate documents no maximum; a
/// larger value is surely a mistake, and would overflow dates).
pub(crate) const MAX_CANCEL_AFTER: Duration = Duration::from_secs(365 * 24 * 3600);

async fn create_prediction(shared: &Arc<Shared>, req: &Req, target: Target) -> Resp {
    let scale = shared.opts.header_time_scale;
    let wait = match req.header("prefer").map(util::parse_prefer_wait) {
        None | Some(Ok(None)) => None,
        Some(Ok(Some(secs))) => match util::scale_duration(Duration::from_secs(secs), scale) {
            Some(d) => Some(d),
            None => {
                return Resp::problem(
                    422,
                    "Invalid Prefer header",
                    &format!("Prefer: wait={secs} is out of range"),
                );
            }
        },
        Some(Err(e)) => return Resp::problem(422, "Invalid Prefer header", &e),
    };
    let deadline = match req.header("cancel-after") {
        None => None,
        Some(v) => {
            let invalid = |detail: &str| Resp::problem(422, "Invalid Cancel-After header", detail);
            match util::parse_cancel_after_secs(v) {
                None => {
                    return invalid(&format!(
                        "Cannot parse Cancel-After value {v:?}: use e.g. 30s, 5m, 1h30m or a number of seconds"
                    ));
                }
                Some(secs) if secs < 5.0 => {
                    return invalid("Cancel-After must be at least 5 seconds");
                }
                Some(secs) if secs > MAX_CANCEL_AFTER.as_secs_f64() => {
                    return invalid(&format!(
                        "Cancel-After value {v:?} is too large: the maximum is 8760h (one year)"
                    ));
                }
                Some(secs) => match Duration::try_from_secs_f64(secs)
                    .ok()
                    .and_then(|d| util::scale_duration(d, scale))
                {
                    Some(d) => Some(d),
                    None => {
                        return invalid(&format!("Cancel-After value {v:?} is out of range"));
                    }
                },
            }
        }
    };

    let obj = match json_object(req) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let is_version = matches!(target, Target::Version);
    let mut errs = Vec::new();
    let allowed: &[&str] = if is_version {
        &[
            "input",
            "webhook",
            "webhook_events_filter",
            "stream",
            "version",
        ]
    } else {
        &["input", "webhook", "webhook_events_filter", "stream"]
    };
    check_keys(&obj, allowed, &mut errs);
    let (webhook_url, events) = job_fields(&obj, &mut errs);
    let version = if is_version {
        required_string(&obj, "version", &mut errs)
    } else {
        None
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
            let (model_name, pinned) = {
                let st = lock(&shared.state);
                if st.deleted_deployments.contains(&dep) {
                    return Resp::problem(404, "Not found", "Deployment not found");
                }
                match st.deployments.get(&dep) {
                    Some(d) => (d.model.clone(), d.version.clone()),
                    None => (dep.clone(), None),
                }
            };
            match shared.model_script(&model_name) {
                Some(s) => {
                    let v = pinned.unwrap_or_else(|| version_of(&model_name, &s));
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
    // Build and render it before storing it: a prediction that cannot be rendered (a panic
    // here) must not be left in the state, where every later list would meet it.
    let pred = Pred::new(
        0,
        NewPred {
            kind: JobKind::Prediction,
            model,
            version,
            deployment,
            input,
            script,
            deadline,
            webhook: webhook_url.map(|url| WebhookCfg { url, events }),
        },
        &shared.opts,
    );
    let _ = pred.to_json(&pred.view(), shared, true);
    let pred = {
        let mut st = lock(&shared.state);
        let mut p = pred;
        p.seq = st.order.len();
        let p = Arc::new(p);
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
        wait_terminal(&pred, w).await;
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
    let until = util::instant_after(Instant::now(), limit);
    loop {
        let notified = pred.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let end_at = util::instant_after(pred.created, pred.end().0);
        let now = Instant::now();
        if now >= end_at || now >= until {
            return;
        }
        tokio::select! {
            _ = util::sleep_until_precise(end_at.min(until)) => {}
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

/// Whether `c` is a cursor the fake made (of any list).
pub(crate) fn valid_cursor(c: &str) -> bool {
    decode_cursor(c).is_some()
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

/// Answers one page of `items` (ascending by `seq`), newest first, with absolute `next` and
/// `previous` URLs naming `path` on the body host, followed by `keep` (e.g. `&sort_by=...`).
pub(crate) fn page_resp<T: Clone>(
    shared: &Shared,
    req: &Req,
    items: &[T],
    seq: impl Fn(&T) -> usize,
    path: &str,
    keep: &str,
    render: impl Fn(&T) -> Value,
) -> Resp {
    let cursor = util::query_param(req.query.as_deref(), "cursor");
    let Ok(page) = paginate(items, &seq, cursor.as_deref(), shared.opts.page_size) else {
        return Resp::problem(400, "Invalid cursor", "The cursor is not valid");
    };
    let host = shared.body_host();
    let url = |c: String| format!("{host}{path}?cursor={c}{keep}");
    let results: Vec<Value> = page.items.iter().map(render).collect();
    Resp::json(
        200,
        &json!({
            "previous": page.previous.map(url),
            "next": page.next.map(url),
            "results": results,
        }),
    )
}

fn list_predictions(shared: &Arc<Shared>, req: &Req) -> Resp {
    let st = lock(&shared.state);
    page_resp(
        shared,
        req,
        &st.order,
        |p| p.seq,
        "/v1/predictions",
        "",
        |p| p.to_json(&p.view(), shared, true),
    )
}

fn list_files(shared: &Arc<Shared>, req: &Req) -> Resp {
    let all: Vec<Arc<Upload>> = lock(&shared.state).file_order.clone();
    page_resp(
        shared,
        req,
        &all,
        |f| f.seq,
        "/v1/files",
        "",
        |f| file_json(shared, f),
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
        "expires_at": util::rfc3339_ns(util::wall_after(f.created, Duration::from_secs(24 * 3600))),
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

/// The account the token belongs to.
pub(crate) fn account_json() -> Value {
    json!({"type": "user", "username": ACCOUNT, "name": "Fake User", "github_url": null})
}

/// The username of the fake's account: the owner of the deployments it creates.
pub(crate) const ACCOUNT: &str = "fake";

/// The hardware the fake offers: (name, SKU).
pub(crate) const HARDWARE: &[(&str, &str)] = &[
    ("CPU", "cpu"),
    ("Nvidia T4 GPU", "gpu-t4"),
    ("Nvidia A40 (Large) GPU", "gpu-a40-large"),
    ("Nvidia A100 (80GB) GPU", "gpu-a100-large"),
];

/// Whether `sku` is one of [`HARDWARE`].
pub(crate) fn known_sku(sku: &str) -> bool {
    HARDWARE.iter().any(|(_, s)| *s == sku)
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
    fn routes_of_the_other_groups() {
        let query = Method::from_bytes(b"QUERY").expect("method");
        let m = |s: &str| Method::from_bytes(s.as_bytes()).expect("method");
        assert_eq!(route(&query, "/models"), Route::SearchModels);
        assert_eq!(route(&m("GET"), "/models/"), Route::ListModels);
        assert_eq!(route(&m("POST"), "/models"), Route::CreateModel);
        assert_eq!(route(&m("PUT"), "/models"), Route::MethodNotAllowed);
        assert_eq!(
            route(&m("PATCH"), "/models/a/b"),
            Route::UpdateModel("a/b".into())
        );
        assert_eq!(
            route(&m("DELETE"), "/models/a/b"),
            Route::DeleteModel("a/b".into())
        );
        assert_eq!(
            route(&m("GET"), "/models/a/b/examples"),
            Route::ListModelExamples("a/b".into())
        );
        assert_eq!(
            route(&m("GET"), "/models/a/b/readme"),
            Route::GetModelReadme("a/b".into())
        );
        assert_eq!(
            route(&m("DELETE"), "/models/a/b/versions/v"),
            Route::DeleteVersion("a/b".into(), "v")
        );
        assert_eq!(
            route(&m("POST"), "/models/a/b/versions/v/trainings"),
            Route::CreateTraining("a/b".into(), "v")
        );
        assert_eq!(
            route(&m("GET"), "/models/a/b/versions/v/trainings"),
            Route::MethodNotAllowed
        );
        assert_eq!(route(&m("GET"), "/trainings"), Route::ListTrainings);
        assert_eq!(route(&m("GET"), "/trainings/t"), Route::GetTraining("t"));
        assert_eq!(
            route(&m("POST"), "/trainings/t/cancel"),
            Route::CancelTraining("t")
        );
        assert_eq!(route(&m("POST"), "/deployments"), Route::CreateDeployment);
        assert_eq!(
            route(&m("PATCH"), "/deployments/a/b"),
            Route::UpdateDeployment("a/b".into())
        );
        assert_eq!(
            route(&m("DELETE"), "/deployments/a/b"),
            Route::DeleteDeployment("a/b".into())
        );
        assert_eq!(route(&m("GET"), "/collections"), Route::ListCollections);
        assert_eq!(
            route(&m("GET"), "/collections/c"),
            Route::GetCollection("c")
        );
        assert_eq!(route(&m("GET"), "/search"), Route::Search);
        assert_eq!(route(&m("POST"), "/search"), Route::MethodNotAllowed);
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
