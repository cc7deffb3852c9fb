//! The fake's own check of a prediction's input against the `Input` schema its model serves,
//! as Replicate checks it before creating anything: an independent implementation (it shares
//! no code with the clients' local validation, so tests can hold one against the other).
//!
//! Rules, for each property of `components.schemas.Input` (its `$ref` and `allOf` parts merged
//! in, as Cog writes enums):
//!
//! - a property listed in `required` that is absent or `null`: `input.KEY: KEY is required`;
//! - a value of the wrong JSON type (`integer` wants a number without a fraction or exponent,
//!   `number` any number): `input.KEY: Invalid type. Expected: integer, given: string`;
//! - a value not among the property's `enum`: `input.KEY: KEY must be one of the following:
//!   "a", "b"`;
//! - a number outside `minimum`/`maximum` (or `exclusiveMinimum`/`exclusiveMaximum`):
//!   `input.KEY: Must be greater than or equal to 1`; an integer property with both bounds says
//!   `input.KEY: Must be an integer from 1 to 10`, for any number that is not such an integer;
//! - the items of an array, the same way (`input.KEY.0: ...`).
//!
//! `null` counts as absent; keys the schema does not list are accepted (Replicate ignores
//! them); a property without a `type` takes any value.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use crate::body::type_name;

/// How deep `$ref`/`allOf` chains are followed (a cyclic schema stops there).
const MAX_DEPTH: usize = 8;

/// Every problem of `input` against the `Input` component of the OpenAPI document `doc`, one
/// line each (`input.KEY: message`), in the properties' `x-order`. Empty when `doc` has no
/// `Input` component.
pub(crate) fn check_input(doc: &Value, input: &Map<String, Value>) -> Vec<String> {
    let Some(schema) = doc
        .pointer("/components/schemas/Input")
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    let schema = merged(schema, doc, 0);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let empty = Map::new();
    let mut props: Vec<(&String, Map<String, Value>)> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| {
            p.iter()
                .map(|(k, v)| (k, merged(v.as_object().unwrap_or(&empty), doc, 0)))
                .collect()
        })
        .unwrap_or_default();
    props.sort_by(|(a, pa), (b, pb)| {
        let order = |p: &Map<String, Value>| p.get("x-order").and_then(Value::as_i64);
        match (order(pa), order(pb)) {
            (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => a.cmp(b),
        }
    });
    let mut errs = Vec::new();
    for (key, prop) in &props {
        match input.get(key.as_str()) {
            None | Some(Value::Null) => {
                if required.contains(&key.as_str()) {
                    errs.push(format!("input.{key}: {key} is required"));
                }
            }
            Some(value) => check_value(&format!("input.{key}"), key, prop, value, doc, &mut errs),
        }
    }
    errs
}

/// `schema` with the keys of its `$ref` target and of its `allOf` parts added (its own keys
/// win).
fn merged(schema: &Map<String, Value>, doc: &Value, depth: usize) -> Map<String, Value> {
    let mut out = schema.clone();
    if depth >= MAX_DEPTH {
        return out;
    }
    let mut parts: Vec<&Map<String, Value>> = Vec::new();
    if let Some(target) = reference(schema, doc) {
        parts.push(target);
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for part in all.iter().filter_map(Value::as_object) {
            parts.push(reference(part, doc).unwrap_or(part));
        }
    }
    for part in parts {
        for (k, v) in merged(part, doc, depth + 1) {
            if k != "$ref" && k != "allOf" {
                out.entry(k).or_insert(v);
            }
        }
    }
    out
}

/// The schema a local `$ref` (`#/components/schemas/NAME`) points at.
fn reference<'a>(schema: &Map<String, Value>, doc: &'a Value) -> Option<&'a Map<String, Value>> {
    let pointer = schema.get("$ref")?.as_str()?.strip_prefix('#')?;
    doc.pointer(pointer)?.as_object()
}

fn is_integer(n: &Number) -> bool {
    n.is_i64() || n.is_u64()
}

/// Compares two JSON numbers: exactly when both are integers, as floats otherwise.
fn compare(a: &Number, b: &Number) -> Option<Ordering> {
    let int = |n: &Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    match (int(a), int(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare(x, y) == Some(Ordering::Equal),
        _ => a == b,
    }
}

/// A bound of `prop`: `(inclusive, exclusive)` from `key` and `exclusive_key` (a number, or
/// OpenAPI 3.0's `true` making `key` exclusive).
fn bound<'a>(
    prop: &'a Map<String, Value>,
    key: &str,
    exclusive_key: &str,
) -> (Option<&'a Number>, Option<&'a Number>) {
    let inclusive = prop.get(key).and_then(|v| v.as_number());
    match prop.get(exclusive_key) {
        Some(Value::Bool(true)) => (None, inclusive),
        Some(Value::Number(n)) => (inclusive, Some(n)),
        _ => (inclusive, None),
    }
}

/// Checks one value against its (merged) property schema, pushing `path: message` lines.
fn check_value(
    path: &str,
    key: &str,
    prop: &Map<String, Value>,
    value: &Value,
    doc: &Value,
    errs: &mut Vec<String>,
) {
    let ty = prop.get("type").and_then(Value::as_str);
    let (min, xmin) = bound(prop, "minimum", "exclusiveMinimum");
    let (max, xmax) = bound(prop, "maximum", "exclusiveMaximum");
    let integer_range = match (ty, min, max, xmin, xmax) {
        (Some("integer"), Some(lo), Some(hi), None, None) => Some((lo, hi)),
        _ => None,
    };
    let type_ok = match (ty, value) {
        (Some("string"), Value::String(_))
        | (Some("number"), Value::Number(_))
        | (Some("boolean"), Value::Bool(_))
        | (Some("array"), Value::Array(_))
        | (Some("object"), Value::Object(_)) => true,
        (Some("integer"), Value::Number(n)) => is_integer(n),
        (Some("string" | "number" | "integer" | "boolean" | "array" | "object"), _) => false,
        // No type, or one this check does not know: any value.
        _ => true,
    };
    if !type_ok {
        match (integer_range, value) {
            // A number that is no integer, for an integer with a range: the range's wording.
            (Some((lo, hi)), Value::Number(_)) => {
                errs.push(format!("{path}: Must be an integer from {lo} to {hi}"));
            }
            _ => errs.push(format!(
                "{path}: Invalid type. Expected: {}, given: {}",
                ty.unwrap_or("any"),
                type_name(value)
            )),
        }
        return;
    }
    if let Some(allowed) = prop.get("enum").and_then(Value::as_array)
        && !allowed.iter().any(|a| same(a, value))
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        errs.push(format!(
            "{path}: {key} must be one of the following: {}",
            list.join(", ")
        ));
        return;
    }
    if let Value::Number(n) = value {
        let below = |b: Option<&Number>, strict: bool| {
            b.and_then(|b| compare(n, b))
                .is_some_and(|o| o == Ordering::Less || (strict && o == Ordering::Equal))
        };
        let above = |b: Option<&Number>, strict: bool| {
            b.and_then(|b| compare(n, b))
                .is_some_and(|o| o == Ordering::Greater || (strict && o == Ordering::Equal))
        };
        let out_of_range =
            below(min, false) || below(xmin, true) || above(max, false) || above(xmax, true);
        if out_of_range {
            let message = match (integer_range, min, xmin, max, xmax) {
                (Some((lo, hi)), ..) => format!("Must be an integer from {lo} to {hi}"),
                (_, Some(lo), ..) if below(min, false) => {
                    format!("Must be greater than or equal to {lo}")
                }
                (_, _, Some(lo), ..) if below(xmin, true) => format!("Must be greater than {lo}"),
                (.., Some(hi), _) if above(max, false) => {
                    format!("Must be less than or equal to {hi}")
                }
                (.., Some(hi)) => format!("Must be less than {hi}"),
                _ => "Out of range".to_owned(),
            };
            errs.push(format!("{path}: {message}"));
        }
    }
    if let (Value::Array(items), Some(item_schema)) =
        (value, prop.get("items").and_then(Value::as_object))
    {
        let item_schema = merged(item_schema, doc, 0);
        for (i, item) in items.iter().enumerate() {
            check_value(&format!("{path}.{i}"), key, &item_schema, item, doc, errs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({"components": {"schemas": {
            "Input": {"type": "object", "required": ["prompt"], "properties": {
                "prompt": {"type": "string", "x-order": 0},
                "n": {"type": "integer", "minimum": 1, "maximum": 4, "x-order": 1},
                "t": {"type": "number", "minimum": 0, "maximum": 2, "x-order": 2},
                "seed": {"type": "integer", "x-order": 3},
                "ratio": {"allOf": [{"$ref": "#/components/schemas/ratio"}], "x-order": 4},
                "strength": {"type": "number", "exclusiveMinimum": 0, "x-order": 5},
                "images": {"type": "array", "items": {"type": "string", "format": "uri"}, "x-order": 6},
                "fast": {"type": "boolean", "x-order": 7}
            }},
            "ratio": {"type": "string", "enum": ["1:1", "16:9"], "title": "ratio"}
        }}})
    }

    fn check(input: Value) -> Vec<String> {
        check_input(&doc(), input.as_object().expect("an object"))
    }

    #[test]
    fn every_rule_has_its_line() {
        assert!(check(json!({"prompt": "x", "unknown": 1})).is_empty());
        assert!(check(json!({"prompt": "x", "n": null, "seed": -7, "t": 2})).is_empty());
        assert_eq!(
            check(json!({"prompt": null})),
            ["input.prompt: prompt is required"]
        );
        let lines = check(json!({
            "prompt": 3, "n": 2.5, "t": -0.5, "seed": 1.5, "ratio": "4:3",
            "strength": 0, "images": ["a", 2], "fast": "yes"
        }));
        assert_eq!(
            lines,
            [
                "input.prompt: Invalid type. Expected: string, given: number",
                "input.n: Must be an integer from 1 to 4",
                "input.t: Must be greater than or equal to 0",
                "input.seed: Invalid type. Expected: integer, given: number",
                "input.ratio: ratio must be one of the following: \"1:1\", \"16:9\"",
                "input.strength: Must be greater than 0",
                "input.images.1: Invalid type. Expected: string, given: number",
                "input.fast: Invalid type. Expected: boolean, given: string",
            ]
        );
        assert_eq!(
            check(json!({"prompt": "x", "n": 5, "t": 3})),
            [
                "input.n: Must be an integer from 1 to 4",
                "input.t: Must be less than or equal to 2"
            ]
        );
    }

    #[test]
    fn a_document_without_an_input_accepts_anything() {
        let input = json!({"x": 1});
        let input = input.as_object().expect("an object");
        assert!(check_input(&json!({}), input).is_empty());
        assert!(check_input(&json!({"components": {"schemas": {"Input": 3}}}), input).is_empty());
    }

    #[test]
    fn cyclic_references_end() {
        let doc = json!({"components": {"schemas": {
            "Input": {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/a"}}},
            "a": {"$ref": "#/components/schemas/a", "type": "integer"}
        }}});
        let input = json!({"a": "x"});
        assert_eq!(
            check_input(&doc, input.as_object().expect("an object")),
            ["input.a: Invalid type. Expected: integer, given: string"]
        );
    }
}
