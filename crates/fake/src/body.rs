//! Validation of JSON request bodies, with the fake's problem-details wording
//! (`"(root): name is required"`, `"key: Invalid type. Expected: string, given: number"`).

use serde_json::{Map, Value};

use crate::http::Resp;
use crate::request::Req;
use crate::script::MAX_NUM_OUTPUTS;

/// The webhook events a body may name in `webhook_events_filter`.
pub(crate) const EVENTS: [&str; 4] = ["start", "output", "logs", "completed"];

/// The JSON type name of a value, as validation errors name it.
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

/// Whether a name part is a valid slug: lowercase letters, digits, `-`, `_` and `.`.
pub(crate) fn valid_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
        && !s.starts_with('.')
}

/// The input `num_outputs` of a model with a list of files ([`Output::Urls`](crate::Output::Urls),
/// [`Output::Synthetic`](crate::Output::Synthetic)): `None` when absent or `null`, else an
/// integer from 1 to [`MAX_NUM_OUTPUTS`]; anything else is reported in `errs`.
pub(crate) fn num_outputs(input: Option<&Value>, errs: &mut Vec<String>) -> Option<usize> {
    input_int(input, "num_outputs", 1, MAX_NUM_OUTPUTS as u64, errs)
        .and_then(|n| usize::try_from(n).ok())
}

/// An integer input field from `lo` to `hi`: `None` when absent or `null` (or invalid, which is
/// reported in `errs` as `input.<key>: ...`).
pub(crate) fn input_int(
    input: Option<&Value>,
    key: &str,
    lo: u64,
    hi: u64,
    errs: &mut Vec<String>,
) -> Option<u64> {
    match input.and_then(|i| i.get(key)) {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if (lo..=hi).contains(&v) => Some(v),
            _ => {
                errs.push(format!("input.{key}: Must be an integer from {lo} to {hi}"));
                None
            }
        },
        Some(other) => {
            errs.push(format!(
                "input.{key}: Invalid type. Expected: integer, given: {}",
                type_name(other)
            ));
            None
        }
    }
}
