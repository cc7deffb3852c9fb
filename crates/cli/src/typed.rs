//! `-i` values typed by the model's input schema, and the check of a whole input against it
//! (`replicate run`).
//!
//! With a schema, the text of `-i key=value` becomes what the field wants
//! ([`InputSchema::coerce`]): `seed=007` is the integer 7 for an integer field and the string
//! `"007"` for a string field; `true`/`false` for booleans; numbers; an enum's value checked;
//! a list (a JSON array, or one item for a list of strings or files). `key=@path` is a local
//! file only for a file input (`format: uri`, or a list of them); for any other input it is the
//! text `@path`. A field declared without a type takes booleans, numbers and text by the rules
//! without a schema ([`typed_value`]); a field the schema does not declare keeps all of them
//! ([`RawPair::typed`]).
//!
//! Everything here is pure: no request, no file read.

use std::path::PathBuf;

use replicate_protocol::schema::{FieldProblem, FieldType, InputField, InputSchema};
use serde_json::{Map, Value};

use crate::input::{InputValue, RawPair, RawValue, typed_value};

/// What one `-i` value becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum Typed {
    /// A value sent as is.
    Value(Value),
    /// A local file, for a file input: inlined or uploaded.
    File(PathBuf),
    /// A local file, for a list-of-files input: sent as a list of one file.
    FileList(PathBuf),
}

impl Typed {
    /// What stands for this value when the input is checked: the value itself, or a string
    /// (a list of one) for a file not read yet.
    pub fn stand_in(&self) -> Value {
        match self {
            Typed::Value(v) => v.clone(),
            Typed::File(_) => Value::String("@file".to_owned()),
            Typed::FileList(_) => Value::Array(vec![Value::String("@file".to_owned())]),
        }
    }
}

/// What typing one `-i` value gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Typing {
    /// The value.
    Typed(Typed),
    /// The text does not fit its field (a wrong type, out of range, not in the enum).
    Unfit(FieldProblem),
}

impl From<Result<Value, FieldProblem>> for Typing {
    fn from(r: Result<Value, FieldProblem>) -> Self {
        match r {
            Ok(v) => Typing::Typed(Typed::Value(v)),
            Err(p) => Typing::Unfit(p),
        }
    }
}

/// Types the value of the input `field` of `schema` from what was written after `key=`.
pub fn by_schema(schema: &InputSchema, field: &InputField, value: RawValue) -> Typing {
    match value {
        RawValue::Resolved(v) => Typing::Typed(Typed::Value(v)),
        RawValue::At(path) if field.is_file() => Typing::Typed(Typed::File(PathBuf::from(path))),
        RawValue::At(path) if field.is_file_list() => {
            Typing::Typed(Typed::FileList(PathBuf::from(path)))
        }
        RawValue::At(path) => text(schema, field, &format!("@{path}")),
        RawValue::Escaped(s) | RawValue::Text(s) => text(schema, field, &s),
    }
}

/// Types command-line text by the field's type.
fn text(schema: &InputSchema, field: &InputField, s: &str) -> Typing {
    match &field.ty {
        // No declared type: the rules without a schema, but an integer beyond 64 bits stays
        // text rather than being refused (any value is accepted).
        FieldType::Any => Typing::Typed(Typed::Value(
            typed_value(s).unwrap_or_else(|_| Value::String(s.to_owned())),
        )),
        // A list of strings (or files) takes one item as is, or a JSON array.
        FieldType::Array(items)
            if items.ty == FieldType::String
                && !matches!(serde_json::from_str::<Value>(s), Ok(Value::Array(_))) =>
        {
            Typing::Typed(Typed::Value(Value::Array(vec![Value::String(
                s.to_owned(),
            )])))
        }
        _ => schema.coerce(&field.name, s).into(),
    }
}

/// Types one pair: by its field when the schema declares it, otherwise by the rules without a
/// schema (whose refusals are usage errors, the message returned).
pub fn pair(schema: Option<&InputSchema>, pair: RawPair) -> Result<Typing, String> {
    if let Some(schema) = schema
        && let Some(field) = schema.field(&pair.key)
    {
        return Ok(by_schema(schema, field, pair.value));
    }
    let typed = pair.typed()?;
    Ok(Typing::Typed(match typed.value {
        InputValue::Json(v) => Typed::Value(v),
        InputValue::File(path) => Typed::File(path),
    }))
}

/// The outcome of checking a whole input.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Checked {
    /// The problems that stop the run, in the schema's field order (unknown fields cannot be
    /// among them).
    pub errors: Vec<FieldProblem>,
    /// Fields the schema does not declare: sent anyway, with a warning.
    pub warnings: Vec<FieldProblem>,
}

/// Checks `input` (files stood in for, see [`Typed::stand_in`]) against `schema`, together with
/// the `typing` problems of the `-i` values (whose fields are then left out of the input's own
/// check, so that each field is named once).
pub fn check(
    schema: &InputSchema,
    input: &Map<String, Value>,
    typing: Vec<FieldProblem>,
) -> Checked {
    let failed = |name: &str| {
        typing.iter().any(|p| {
            name == p.field
                || name
                    .strip_prefix(p.field.as_str())
                    .is_some_and(|rest| rest.starts_with('['))
        })
    };
    let mut checked = Checked::default();
    for problem in schema.check(&Value::Object(input.clone())) {
        if problem.kind.is_unknown_field() {
            checked.warnings.push(problem);
        } else if !failed(&problem.field) {
            checked.errors.push(problem);
        }
    }
    checked.errors.extend(typing);
    // In the schema's order: a field's position, its items right after it.
    let position = |p: &FieldProblem| {
        let name = p.field.split('[').next().unwrap_or_default();
        schema
            .fields
            .iter()
            .position(|f| f.name == name)
            .unwrap_or(usize::MAX)
    };
    checked.errors.sort_by_key(position);
    checked
}

#[cfg(test)]
mod tests {
    use super::*;
    use replicate_protocol::schema::ProblemKind;
    use serde_json::json;

    fn schema() -> InputSchema {
        let doc = json!({"components": {"schemas": {
            "Input": {"type": "object", "required": ["prompt"], "properties": {
                "prompt": {"type": "string", "x-order": 0},
                "seed": {"type": "integer", "minimum": 0, "x-order": 1},
                "code": {"type": "string", "x-order": 2},
                "size": {"allOf": [{"$ref": "#/components/schemas/size"}], "x-order": 3},
                "image": {"type": "string", "format": "uri", "x-order": 4},
                "images": {"type": "array", "items": {"type": "string", "format": "uri"}, "x-order": 5},
                "tags": {"type": "array", "items": {"type": "string"}, "x-order": 6},
                "steps": {"type": "array", "items": {"type": "integer"}, "x-order": 7},
                "fast": {"type": "boolean", "x-order": 8},
                "scale": {"type": "number", "x-order": 9},
                "extra": {"x-order": 10}
            }},
            "size": {"type": "string", "enum": ["small", "large"]}
        }}});
        InputSchema::from_openapi(&doc).expect("input schema")
    }

    fn typed(key: &str, value: RawValue) -> Typing {
        let s = schema();
        let raw = RawPair {
            key: key.to_owned(),
            value,
        };
        pair(Some(&s), raw).expect("no usage error")
    }

    fn text(key: &str, t: &str) -> Typing {
        typed(key, RawValue::Text(t.to_owned()))
    }

    fn value(v: Value) -> Typing {
        Typing::Typed(Typed::Value(v))
    }

    fn file(path: &str) -> Typing {
        Typing::Typed(Typed::File(path.into()))
    }

    /// The problem of an unfit text.
    fn unfit(t: Typing) -> FieldProblem {
        match t {
            Typing::Unfit(p) => p,
            other => panic!("a problem expected, got {other:?}"),
        }
    }

    #[test]
    fn text_takes_the_type_of_its_field() {
        assert_eq!(text("seed", "007"), value(json!(7)));
        assert_eq!(text("code", "007"), value(json!("007")));
        assert_eq!(text("prompt", "true"), value(json!("true")));
        assert_eq!(text("fast", "true"), value(json!(true)));
        assert_eq!(text("fast", "false"), value(json!(false)));
        assert_eq!(text("scale", "2"), value(json!(2)));
        assert_eq!(text("scale", "0.5"), value(json!(0.5)));
        assert_eq!(text("size", "large"), value(json!("large")));
        // No declared type: the rules without a schema.
        assert_eq!(text("extra", "007"), value(json!("007")));
        assert_eq!(text("extra", "7"), value(json!(7)));
        assert_eq!(
            text("extra", "123456789012345678901234567890"),
            value(json!("123456789012345678901234567890"))
        );
    }

    #[test]
    fn text_that_does_not_fit_is_a_problem_of_its_field() {
        let p = unfit(text("seed", "abc"));
        assert_eq!(p.field, "seed");
        assert!(matches!(p.kind, ProblemKind::InvalidText { .. }), "{p:?}");
        let p = unfit(text("seed", "-1"));
        assert!(matches!(p.kind, ProblemKind::OutOfRange { .. }), "{p:?}");
        let p = unfit(text("size", "huge"));
        assert!(
            matches!(&p.kind, ProblemKind::NotAllowed { allowed, .. } if allowed.len() == 2),
            "{p:?}"
        );
        unfit(text("fast", "yes"));
        unfit(text("scale", "x"));
    }

    #[test]
    fn files_only_for_file_inputs() {
        assert_eq!(
            typed("image", RawValue::At("cat.png".into())),
            file("cat.png")
        );
        assert_eq!(
            typed("images", RawValue::At("cat.png".into())),
            Typing::Typed(Typed::FileList("cat.png".into()))
        );
        assert_eq!(
            typed("prompt", RawValue::At("cat.png".into())),
            value(json!("@cat.png"))
        );
        assert_eq!(
            typed("image", RawValue::Escaped("@handle".into())),
            value(json!("@handle"))
        );
        assert_eq!(
            typed("extra", RawValue::At("cat.png".into())),
            value(json!("@cat.png")),
            "no declared type: not a file input"
        );
        // A field the schema does not declare keeps the rules without a schema.
        assert_eq!(
            typed("unknown", RawValue::At("cat.png".into())),
            file("cat.png")
        );
    }

    #[test]
    fn lists_take_a_json_array_or_one_string() {
        assert_eq!(text("tags", "a cat"), value(json!(["a cat"])));
        assert_eq!(text("tags", r#"["a", "b"]"#), value(json!(["a", "b"])));
        assert_eq!(text("steps", "[1, 2]"), value(json!([1, 2])));
        unfit(text("steps", "1"));
        assert_eq!(
            text("images", "https://x/a.png"),
            value(json!(["https://x/a.png"]))
        );
    }

    #[test]
    fn placeholders_are_sent_as_found() {
        assert_eq!(
            typed("seed", RawValue::Resolved(json!("x"))),
            value(json!("x"))
        );
    }

    #[test]
    fn without_a_schema_the_rules_stay() {
        let raw = |t: &str| RawPair {
            key: "seed".to_owned(),
            value: RawValue::Text(t.to_owned()),
        };
        assert_eq!(pair(None, raw("007")), Ok(value(json!("007"))));
        assert_eq!(pair(None, raw("7")), Ok(value(json!(7))));
        assert!(pair(None, raw("123456789012345678901234567890")).is_err());
    }

    #[test]
    fn the_check_names_each_field_once_in_order_and_warns_of_unknown_ones() {
        let s = schema();
        let typing = vec![unfit(text("seed", "abc"))];
        let input: Map<String, Value> = serde_json::from_value(json!({
            "size": "huge", "typo": 1, "images": [3]
        }))
        .expect("object");
        let checked = check(&s, &input, typing);
        let fields: Vec<&str> = checked.errors.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["prompt", "seed", "size", "images[0]"]);
        let warned: Vec<&str> = checked.warnings.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(warned, ["typo"]);
        // A field whose text did not fit is not reported again as missing.
        let bad_prompt = FieldProblem::new(
            "prompt",
            ProblemKind::InvalidText {
                expected: "string".into(),
                text: "x".into(),
            },
        );
        let checked = check(&s, &Map::new(), vec![bad_prompt.clone()]);
        assert_eq!(checked.errors, [bad_prompt]);
        let ok: Map<String, Value> = serde_json::from_value(
            json!({"prompt": "a", "image": Typed::File("x".into()).stand_in()}),
        )
        .expect("object");
        assert_eq!(check(&s, &ok, Vec::new()), Checked::default());
    }
}
