//! Deployments: list, create, get, update and delete. Predictions through a deployment are in
//! `predictions.rs`.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Map, Value, json};

use crate::account::{ACCOUNT, account_json, known_sku};
use crate::body::{check_keys, json_object, optional_int, required_string, valid_slug};
use crate::http::Resp;
use crate::pagination::page_resp;
use crate::request::Req;
use crate::state::{DeploymentRec, Shared, State, lock};
use crate::util;

fn not_found() -> Resp {
    Resp::problem(404, "Not found", "Deployment not found")
}

/// A deployment object.
pub(crate) fn deployment_json(st: &State, d: &DeploymentRec) -> Value {
    json!({
        "owner": d.owner,
        "name": d.name,
        "current_release": {
            "number": d.release,
            "model": d.model,
            "version": st.deployment_version(d),
            "created_at": util::rfc3339_ns(d.release_at),
            "created_by": account_json(),
            "configuration": {
                "hardware": d.hardware,
                "min_instances": d.min_instances,
                "max_instances": d.max_instances,
            },
        },
    })
}

/// `GET /v1/deployments`: newest first.
pub(crate) fn list(shared: &Arc<Shared>, req: &Req) -> Resp {
    let st = lock(&shared.state);
    let mut all: Vec<DeploymentRec> = st.deployments.values().cloned().collect();
    all.sort_by_key(|d| d.seq);
    page_resp(
        shared,
        req,
        &all,
        |d| d.seq,
        "/v1/deployments",
        "",
        |d| deployment_json(&st, d),
    )
}

/// `GET /v1/deployments/{owner}/{name}`.
pub(crate) fn get(shared: &Arc<Shared>, name: &str) -> Resp {
    let st = lock(&shared.state);
    match st.deployments.get(name) {
        Some(d) => Resp::json(200, &deployment_json(&st, d)),
        None => not_found(),
    }
}

/// Checks that `version` is a version of `model`; the error line otherwise.
fn check_version(st: &mut State, model: &str, version: &str) -> Result<(), String> {
    st.settle_trainings();
    let known = st
        .meta
        .get(model)
        .is_some_and(|m| m.versions.iter().any(|v| v.id == version));
    if known {
        Ok(())
    } else {
        Err(format!("version: {version:?} is not a version of {model}"))
    }
}

/// The hardware and scaling fields of a create or an update.
struct Scaling {
    hardware: Option<String>,
    min: Option<u64>,
    max: Option<u64>,
}

fn scaling(obj: &Map<String, Value>, errs: &mut Vec<String>) -> Scaling {
    let hardware = match obj.get("hardware") {
        None => None,
        Some(Value::String(h)) if known_sku(h) => Some(h.clone()),
        Some(other) => {
            errs.push(format!("hardware: {other} is not a valid hardware SKU"));
            None
        }
    };
    Scaling {
        hardware,
        min: optional_int(obj, "min_instances", 0, 5, errs),
        max: optional_int(obj, "max_instances", 0, 20, errs),
    }
}

/// `POST /v1/deployments`: the owner is the token's account.
pub(crate) fn create(shared: &Arc<Shared>, req: &Req) -> Resp {
    let obj = match json_object(req) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let mut errs = Vec::new();
    check_keys(
        &obj,
        &[
            "name",
            "model",
            "version",
            "hardware",
            "min_instances",
            "max_instances",
        ],
        &mut errs,
    );
    let name = required_string(&obj, "name", &mut errs);
    let model = required_string(&obj, "model", &mut errs);
    let version = required_string(&obj, "version", &mut errs);
    for key in ["hardware", "min_instances", "max_instances"] {
        if !obj.contains_key(key) {
            errs.push(format!("(root): {key} is required"));
        }
    }
    let sc = scaling(&obj, &mut errs);
    if let Some(n) = &name
        && !valid_slug(n)
    {
        errs.push(format!(
            "name: {n:?} must be lowercase letters, digits, dashes, underscores and dots"
        ));
    }
    if let (Some(lo), Some(hi)) = (sc.min, sc.max)
        && lo > hi
    {
        errs.push("min_instances: must not exceed max_instances".to_owned());
    }
    let model_ok = model
        .as_deref()
        .is_some_and(|m| shared.model_script(m).is_some());
    if let Some(m) = &model
        && !model_ok
    {
        errs.push(format!(
            "model: {m:?} is not an existing model (owner/name)"
        ));
    }
    if !errs.is_empty() {
        return Resp::invalid(&errs);
    }
    let (Some(name), Some(model), Some(version), Some(hardware), Some(min), Some(max)) =
        (name, model, version, sc.hardware, sc.min, sc.max)
    else {
        return Resp::invalid(&["(root): invalid deployment".to_owned()]);
    };
    let mut st = lock(&shared.state);
    if let Err(e) = check_version(&mut st, &model, &version) {
        return Resp::invalid(&[e]);
    }
    let full = format!("{ACCOUNT}/{name}");
    if st.deployments.contains_key(&full) {
        return Resp::problem(
            409,
            "Conflict",
            &format!("A deployment named {full} already exists"),
        );
    }
    let seq = st.deployment_seq;
    st.deployment_seq += 1;
    st.deleted_deployments.remove(&full);
    let d = DeploymentRec {
        seq,
        owner: ACCOUNT.to_owned(),
        name,
        model,
        version: Some(version),
        hardware,
        min_instances: min,
        max_instances: max,
        release: 1,
        release_at: SystemTime::now(),
    };
    let body = deployment_json(&st, &d);
    st.deployments.insert(full, d);
    Resp::json(200, &body)
}

/// `PATCH /v1/deployments/{owner}/{name}`: every change makes a new release.
pub(crate) fn update(shared: &Arc<Shared>, req: &Req, name: &str) -> Resp {
    let Some(current) = lock(&shared.state).deployments.get(name).cloned() else {
        return not_found();
    };
    let obj = match json_object(req) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let mut errs = Vec::new();
    check_keys(
        &obj,
        &["hardware", "min_instances", "max_instances", "version"],
        &mut errs,
    );
    let sc = scaling(&obj, &mut errs);
    let version = match obj.get("version") {
        None => None,
        Some(_) => required_string(&obj, "version", &mut errs),
    };
    let min = sc.min.unwrap_or(current.min_instances);
    let max = sc.max.unwrap_or(current.max_instances);
    if min > max {
        errs.push("min_instances: must not exceed max_instances".to_owned());
    }
    if !errs.is_empty() {
        return Resp::invalid(&errs);
    }
    let mut st = lock(&shared.state);
    if let Some(v) = &version
        && let Err(e) = check_version(&mut st, &current.model, v)
    {
        return Resp::invalid(&[e]);
    }
    let Some(d) = st.deployments.get_mut(name) else {
        return not_found();
    };
    if let Some(h) = sc.hardware {
        d.hardware = h;
    }
    if version.is_some() {
        d.version = version;
    }
    d.min_instances = min;
    d.max_instances = max;
    d.release += 1;
    d.release_at = SystemTime::now();
    let d = d.clone();
    Resp::json(200, &deployment_json(&st, &d))
}

/// `DELETE /v1/deployments/{owner}/{name}`.
pub(crate) fn delete(shared: &Arc<Shared>, name: &str) -> Resp {
    let mut st = lock(&shared.state);
    if st.deployments.remove(name).is_none() {
        return not_found();
    }
    st.deleted_deployments.insert(name.to_owned());
    Resp::empty(204)
}
