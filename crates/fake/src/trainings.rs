//! Trainings: jobs on a model version that push a new version to a destination model.
//!
//! A training follows the trained model's script like a prediction does (same schedule, logs
//! and ending), but a success outputs `{"version": "<destination>:<id>", "weights": "<url>"}`,
//! and the new version appears on the destination model once the training has succeeded.

use std::sync::Arc;

use serde_json::json;

use crate::body::{check_keys, job_fields, json_object, required_string};
use crate::http::Resp;
use crate::pagination::page_resp;
use crate::request::Req;
use crate::script::{ModelScript, Outcome, Output};
use crate::state::{JobKind, NewPred, Pred, Shared, TrainingRec, WebhookCfg, lock};
use crate::{util, webhook};

/// The training with this id.
pub(crate) fn find(shared: &Shared, id: &str) -> Option<Arc<Pred>> {
    let st = lock(&shared.state);
    st.trainings
        .get(id)
        .and_then(|&i| st.training_order.get(i))
        .map(|t| t.job.clone())
}

/// `GET /v1/trainings/{id}`.
pub(crate) fn get(shared: &Shared, id: &str) -> Resp {
    match find(shared, id) {
        Some(t) => Resp::json(200, &t.to_json(&t.view(), shared, false)),
        None => Resp::problem(404, "Not found", "Training not found"),
    }
}

/// `POST /v1/trainings/{id}/cancel`.
pub(crate) fn cancel(shared: &Shared, id: &str) -> Resp {
    match find(shared, id) {
        Some(t) => {
            t.cancel();
            Resp::json(200, &t.to_json(&t.view(), shared, false))
        }
        None => Resp::problem(404, "Not found", "Training not found"),
    }
}

/// `POST /v1/models/{owner}/{name}/versions/{id}/trainings`.
pub(crate) fn create(shared: &Arc<Shared>, req: &Req, model: &str, version: &str) -> Resp {
    let Some(script) = shared.model_script(model) else {
        return Resp::problem(404, "Not found", "Model not found");
    };
    {
        let mut st = lock(&shared.state);
        st.settle_trainings();
        let known = st
            .meta
            .get(model)
            .is_some_and(|m| m.versions.iter().any(|v| v.id == version));
        if !known {
            return Resp::problem(404, "Not found", "Version not found");
        }
    }
    let obj = match json_object(req) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let mut errs = Vec::new();
    check_keys(
        &obj,
        &["destination", "input", "webhook", "webhook_events_filter"],
        &mut errs,
    );
    let (webhook_url, events) = job_fields(&obj, &mut errs);
    let destination = required_string(&obj, "destination", &mut errs);
    if let Some(d) = &destination {
        let ok = d
            .split_once('/')
            .is_some_and(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains(['/', ':']));
        if !ok {
            errs.push(format!(
                "destination: {d:?} must be an existing model as owner/name"
            ));
        }
    }
    if !errs.is_empty() {
        return Resp::invalid(&errs);
    }
    let Some(destination) = destination else {
        return Resp::invalid(&["(root): destination is required".to_owned()]);
    };
    if shared.model_script(&destination).is_none() {
        return Resp::problem(
            422,
            "Invalid destination",
            &format!("The destination model {destination} does not exist"),
        );
    }

    let id = util::new_id();
    let new_version = util::sha256_hex(format!("training:{id}").as_bytes());
    let weights_path = format!("/xezq/{}/trained_model.tar", util::new_file_token());
    let outcome = match &script.outcome {
        Outcome::Succeed(_) => Outcome::Succeed(Output::Json(json!({
            "version": format!("{destination}:{new_version}"),
            "weights": format!("{}{weights_path}", shared.files_base),
        }))),
        other => other.clone(),
    };
    let train_script = Arc::new(ModelScript {
        outcome,
        streams: Some(false),
        extra_metrics: Default::default(),
        ..(*script).clone()
    });
    let input = obj.get("input").cloned().unwrap_or_else(|| json!({}));
    let job = {
        let mut st = lock(&shared.state);
        let seq = st.training_order.len();
        let mut p = Pred::new(
            seq,
            NewPred {
                kind: JobKind::Training,
                model: model.to_owned(),
                version: version.to_owned(),
                deployment: None,
                input,
                script: train_script,
                deadline: None,
                webhook: webhook_url.map(|url| WebhookCfg { url, events }),
                num_outputs: None,
                output_bytes: None,
                seed: None,
            },
            &shared.opts,
        );
        p.id = id;
        p.output_paths = vec![weights_path.clone()];
        let p = Arc::new(p);
        st.trainings.insert(p.id.clone(), seq);
        st.training_order.push(TrainingRec {
            job: p.clone(),
            destination,
            new_version,
            pushed: false,
        });
        st.outputs.insert(weights_path, (p.clone(), 0));
        p
    };
    if job.webhook.is_some() {
        webhook::spawn(shared.clone(), job.clone());
    }
    Resp::json(201, &job.to_json(&job.view(), shared, false))
}

/// `GET /v1/trainings`: newest first.
pub(crate) fn list(shared: &Arc<Shared>, req: &Req) -> Resp {
    let jobs: Vec<Arc<Pred>> = lock(&shared.state)
        .training_order
        .iter()
        .map(|t| t.job.clone())
        .collect();
    page_resp(
        shared,
        req,
        &jobs,
        |p| p.seq,
        "/v1/trainings",
        "",
        |p| p.to_json(&p.view(), shared, true),
    )
}
