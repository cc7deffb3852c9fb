//! `/v1/predictions`, `/v1/models/{owner}/{name}/predictions` and
//! `/v1/deployments/{owner}/{name}/predictions`: create, get, cancel and list predictions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::body::{
    check_keys, input_int, job_fields, json_object, num_outputs, required_string, type_name,
};
use crate::catalog;
use crate::download;
use crate::http::Resp;
use crate::pagination::page_resp;
use crate::request::Req;
use crate::script::{MAX_OUTPUT_BYTES, ModelScript};
use crate::state::{JobKind, NewPred, Pred, Shared, WebhookCfg, lock, version_of};
use crate::util;
use crate::validate;
use crate::webhook;

/// What a create names: a model, a version (in the body), or a deployment.
pub(crate) enum Target {
    /// `POST /v1/models/{owner}/{name}/predictions`.
    Model(String),
    /// `POST /v1/predictions` with a `version`.
    Version,
    /// `POST /v1/deployments/{owner}/{name}/predictions`.
    Deployment(String),
}

/// The longest `Cancel-After` the fake accepts: one year (Replicate documents no maximum; a
/// larger value is surely a mistake, and would overflow dates).
pub(crate) const MAX_CANCEL_AFTER: Duration = Duration::from_secs(365 * 24 * 3600);

/// Creates a prediction.
pub(crate) async fn create(shared: &Arc<Shared>, req: &Req, target: Target) -> Resp {
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

    // The model's input validation, once the model is known: the schema its versions serve,
    // then the rules of the inputs the fake acts on (which the schema states too, unless a
    // script's own schema leaves them out).
    let input = obj.get("input");
    let mut errs = match input.and_then(|i| i.as_object()) {
        Some(i) => validate::check_input(&catalog::openapi_schema(&script), i),
        None => Vec::new(),
    };
    let outputs = if script.takes_num_outputs() {
        num_outputs(input, &mut errs)
    } else {
        None
    };
    let (output_bytes, seed) = if script.makes_synthetic_files() {
        (
            input_int(input, "output_bytes", 0, MAX_OUTPUT_BYTES, &mut errs),
            input_int(input, "seed", 0, u64::MAX, &mut errs),
        )
    } else {
        (None, None)
    };
    if !errs.is_empty() {
        // A line both checks wrote is listed once.
        let mut lines: Vec<String> = Vec::with_capacity(errs.len());
        for line in errs {
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
        return Resp::invalid(&lines);
    }
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
            num_outputs: outputs,
            output_bytes,
            seed,
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
    download::precompute(shared, &pred.synthetic);
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

/// `GET /v1/predictions`: newest first.
pub(crate) fn list(shared: &Arc<Shared>, req: &Req) -> Resp {
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

/// `GET /v1/predictions/{id}`.
pub(crate) fn get(shared: &Shared, id: &str) -> Resp {
    match shared.find_pred(id) {
        Some(p) => Resp::json(200, &p.to_json(&p.view(), shared, false)),
        None => Resp::not_found(),
    }
}

/// `POST /v1/predictions/{id}/cancel`.
pub(crate) fn cancel(shared: &Shared, id: &str) -> Resp {
    match shared.find_pred(id) {
        Some(p) => {
            p.cancel();
            Resp::json(200, &p.to_json(&p.view(), shared, false))
        }
        None => Resp::not_found(),
    }
}
