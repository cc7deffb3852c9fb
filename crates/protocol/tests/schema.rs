//! Model version schemas: every fixture of `fixtures/schemas/` parses (order, enums through
//! `allOf` refs, ranges, defaults, formats, output shapes); every validation rule; coercion of
//! command-line text; and properties (parsing never panics; inputs built from a schema validate).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use proptest::prelude::*;
use replicate_protocol::api::models::ModelVersion;
use replicate_protocol::schema::{
    FieldProblem, FieldType, InputField, InputSchema, Mode, OutputSchema, OutputShape, ProblemKind,
    ValueType, VersionSchema,
};
use serde_json::{Value, json};

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/schemas")
}

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(fixtures_dir().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn all_fixtures() -> Vec<(String, Value)> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let v = fixture(&n);
            (n, v)
        })
        .collect()
}

fn names(schema: &InputSchema) -> Vec<&str> {
    schema.fields.iter().map(|f| f.name.as_str()).collect()
}

fn strs(values: &[&str]) -> Vec<Value> {
    values.iter().map(|v| json!(v)).collect()
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

#[test]
fn every_fixture_parses_with_input_and_output() {
    let fixtures = all_fixtures();
    assert!(fixtures.len() >= 4, "at least 4 fixtures");
    for (name, doc) in fixtures {
        let schema = VersionSchema::parse(&doc);
        let input = schema.input.unwrap_or_else(|| panic!("{name}: no Input"));
        assert!(!input.fields.is_empty(), "{name}: no fields");
        assert!(schema.output.is_some(), "{name}: no Output");
        // x-order is increasing.
        let orders: Vec<i64> = input.fields.iter().filter_map(|f| f.order).collect();
        assert!(
            orders.windows(2).all(|w| w[0] <= w[1]),
            "{name}: {orders:?}"
        );
        // Every default validates against its own field.
        for f in &input.fields {
            if let Some(d) = &f.default {
                let mut one = serde_json::Map::new();
                one.insert(f.name.clone(), d.clone());
                for r in input.required() {
                    if r.name != f.name {
                        one.insert(r.name.clone(), sample(r));
                    }
                }
                input
                    .validate_strict(&Value::Object(one))
                    .unwrap_or_else(|e| panic!("{name}: default of {}: {e}", f.name));
            }
        }
    }
}

#[test]
fn flux_schnell_fields_in_x_order_with_enums_ranges_defaults() {
    let doc = fixture("synthetic-flux-schnell.json");
    let input = InputSchema::from_openapi(&doc).unwrap();
    assert_eq!(
        names(&input),
        [
            "prompt",
            "aspect_ratio",
            "num_outputs",
            "num_inference_steps",
            "seed",
            "output_format",
            "output_quality",
            "disable_safety_checker",
            "go_fast",
            "megapixels"
        ]
    );
    let prompt = input.field("prompt").unwrap();
    assert!(prompt.required);
    assert_eq!(prompt.ty, FieldType::String);
    assert_eq!(
        prompt.description.as_deref(),
        Some("Prompt for generated image")
    );
    assert_eq!(prompt.title.as_deref(), Some("Prompt"));

    let ar = input.field("aspect_ratio").unwrap();
    assert_eq!(
        ar.ty,
        FieldType::String,
        "type comes from the referenced enum schema"
    );
    assert_eq!(ar.enum_name.as_deref(), Some("aspect_ratio"));
    assert_eq!(ar.allowed.len(), 11);
    assert_eq!(ar.allowed[0], json!("1:1"));
    assert_eq!(ar.default, Some(json!("1:1")));
    assert_eq!(ar.order, Some(1));
    assert!(!ar.required);

    let n = input.field("num_outputs").unwrap();
    assert_eq!(n.ty, FieldType::Integer);
    assert_eq!((n.minimum, n.maximum), (Some(1.0), Some(4.0)));
    assert_eq!(n.default, Some(json!(1)));
    assert_eq!(input.field("go_fast").unwrap().default, Some(json!(true)));
    assert_eq!(
        input.field("megapixels").unwrap().allowed,
        strs(&["1", "0.25"])
    );

    let output = OutputSchema::from_openapi(&doc).unwrap();
    match &output.shape {
        OutputShape::Array(items) => assert!(items.is_file()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn llm_output_is_a_concatenated_iterator() {
    for name in [
        "synthetic-llama-3-instruct.json",
        "cog-output-concat-iter.json",
    ] {
        let output = OutputSchema::from_openapi(&fixture(name)).unwrap();
        match &output.shape {
            OutputShape::Iterator { items, concatenate } => {
                assert_eq!(items.ty, FieldType::String, "{name}");
                assert!(*concatenate, "{name}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    let input = InputSchema::from_openapi(&fixture("synthetic-llama-3-instruct.json")).unwrap();
    assert_eq!(input.fields[0].name, "prompt");
    assert_eq!(input.field("temperature").unwrap().ty, FieldType::Number);
    assert_eq!(
        input.field("temperature").unwrap().default,
        Some(json!(0.6))
    );
    assert_eq!(input.required().count(), 0);
}

#[test]
#[allow(clippy::approx_constant)] // the fixture's default is 2.71828
fn cog_enum_without_type_resolves_through_all_of() {
    let input = InputSchema::from_openapi(&fixture("cog-enums.json")).unwrap();
    assert_eq!(names(&input), ["c", "n"]);
    let c = input.field("c").unwrap();
    assert_eq!(c.ty, FieldType::String);
    assert_eq!(c.allowed, strs(&["red", "green", "blue"]));
    assert_eq!(c.default, Some(json!("red")));
    assert_eq!(c.enum_name.as_deref(), Some("c"));
    // The enum type's own "An enumeration." and title are not the field's.
    assert_eq!((c.description.as_deref(), c.title.as_deref()), (None, None));
    assert!(c.extra.is_empty(), "{:?}", c.extra);
    // A description next to the `allOf` is the field's.
    let mut doc = fixture("cog-enums.json");
    doc["components"]["schemas"]["Input"]["properties"]["c"]["description"] = json!("Colour");
    let input = InputSchema::from_openapi(&doc).unwrap();
    let c = input.field("c").unwrap();
    assert_eq!(c.description.as_deref(), Some("Colour"));
    let n = input.field("n").unwrap();
    assert_eq!(
        (n.ty.clone(), n.default.clone()),
        (FieldType::Number, Some(json!(2.71828)))
    );
    let output = OutputSchema::from_openapi(&fixture("cog-enums.json")).unwrap();
    assert_eq!(
        output.shape,
        OutputShape::Single(ValueType::new(FieldType::String))
    );
    assert_eq!(output.title.as_deref(), Some("Output"));
}

#[test]
fn file_inputs_and_file_lists() {
    let input = InputSchema::from_openapi(&fixture("cog-paths.json")).unwrap();
    assert_eq!(names(&input), ["p1", "p2", "p3", "ps"]);
    let p1 = input.field("p1").unwrap();
    assert!(p1.is_file() && p1.required);
    assert_eq!(p1.format.as_deref(), Some("uri"));
    let ps = input.field("ps").unwrap();
    assert!(ps.is_file_list() && !ps.is_file());
    assert_eq!(ps.default, Some(json!(["bar123.txt", "baz123.txt"])));
    assert_eq!(ps.ty.to_string(), "array of file (URI)");
}

#[test]
fn whisper_enums_files_and_object_output() {
    let doc = fixture("synthetic-whisper.json");
    let input = InputSchema::from_openapi(&doc).unwrap();
    assert_eq!(input.fields[0].name, "audio");
    assert!(input.fields[0].is_file());
    let t = input.field("transcription").unwrap();
    assert_eq!(t.allowed, strs(&["plain text", "srt", "vtt"]));
    let lang = input.field("language").unwrap();
    assert!(lang.default.is_none() && !lang.allowed.is_empty());
    let th = input.field("no_speech_threshold").unwrap();
    assert_eq!((th.minimum, th.maximum), (Some(0.0), Some(1.0)));
    // The last field (x-order 13) comes after x-order 8.
    assert_eq!(input.fields.last().unwrap().name, "no_speech_threshold");

    let output = OutputSchema::from_openapi(&doc).unwrap();
    let OutputShape::Object(props) = &output.shape else {
        panic!("{:?}", output.shape)
    };
    let names: Vec<&str> = props.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "segments",
            "srt_file",
            "txt_file",
            "translation",
            "transcription",
            "detected_language"
        ]
    );
    assert_eq!(
        props[0].value.ty,
        FieldType::Any,
        "an untyped property is Any"
    );
    assert!(props[1].value.is_file());
    assert!(props[5].required && !props[1].required);
}

#[test]
fn object_output_and_secret_input_kept_in_extra() {
    let doc = fixture("cog-output-object.json");
    let input = InputSchema::from_openapi(&doc).unwrap();
    let secret = input.field("secret").unwrap();
    assert_eq!(secret.format.as_deref(), Some("password"));
    assert_eq!(secret.extra.get("x-cog-secret"), Some(&json!(true)));
    assert_eq!(secret.extra.get("writeOnly"), Some(&json!(true)));
    let output = OutputSchema::from_openapi(&doc).unwrap();
    let OutputShape::Object(props) = &output.shape else {
        panic!()
    };
    assert_eq!(props.len(), 6);
    assert_eq!(props[2].value.ty, FieldType::Integer);
}

#[test]
fn ranges_written_as_floats() {
    let input = InputSchema::from_openapi(&fixture("cog-range.json")).unwrap();
    let f = input.field("int_ge_le_wd").unwrap();
    assert_eq!(f.ty, FieldType::Integer);
    assert_eq!(
        (f.minimum, f.maximum, f.default.clone()),
        (Some(0.0), Some(10.0), Some(json!(5)))
    );
    let f = input.field("float_ge").unwrap();
    assert_eq!((f.minimum, f.maximum), (Some(2.71), None));
    assert_eq!(input.coerce("int_ge", "0").unwrap(), json!(0));
    assert!(matches!(
        input.coerce("int_ge", "-1").unwrap_err().kind,
        ProblemKind::OutOfRange { .. }
    ));
    assert!(input.coerce("float_ge", "2.70").is_err());
}

#[test]
fn training_schema_parses_with_the_same_code() {
    let doc = fixture("synthetic-lora-trainer.json");
    let schema = VersionSchema::parse(&doc);
    let training = schema.training_input.unwrap();
    assert_eq!(training.title.as_deref(), Some("TrainingInput"));
    assert_eq!(training.fields[0].name, "input_images");
    assert!(training.fields[0].is_file() && training.fields[0].required);
    let lr = training.field("learning_rate").unwrap();
    assert_eq!((lr.minimum, lr.exclusive_minimum), (None, Some(0.0)));
    assert_eq!(
        training.field("optimizer").unwrap().allowed,
        strs(&["adamw8bit", "adamw", "prodigy"])
    );
    let out = schema.training_output.unwrap();
    let OutputShape::Object(props) = &out.shape else {
        panic!()
    };
    assert!(props[0].value.is_file() && props[0].required);
    assert!(
        training
            .validate(&json!({"input_images": "https://x/a.zip", "learning_rate": 0}))
            .is_err()
    );
    // Models without a trainer have none.
    assert!(
        VersionSchema::parse(&fixture("cog-enums.json"))
            .training_input
            .is_none()
    );
}

#[test]
fn missing_or_empty_schemas_are_none() {
    for doc in [
        json!(null),
        json!({}),
        json!({"components": {}}),
        json!({"components": {"schemas": {}}}),
        json!({"components": {"schemas": {"Input": 3, "Output": "x"}}}),
    ] {
        let s = VersionSchema::parse(&doc);
        assert!(s.input.is_none() && s.output.is_none(), "{doc}");
    }
    let empty =
        InputSchema::from_openapi(&json!({"components": {"schemas": {"Input": {}}}})).unwrap();
    assert!(empty.fields.is_empty());
    assert!(empty.validate(&json!({})).is_ok());

    let version: ModelVersion = serde_json::from_value(json!({"id": "v1"})).unwrap();
    assert_eq!(VersionSchema::of(&version), VersionSchema::default());
    let version: ModelVersion =
        serde_json::from_value(json!({"id": "v1", "openapi_schema": fixture("cog-enums.json")}))
            .unwrap();
    assert_eq!(VersionSchema::of(&version).input.unwrap().fields.len(), 2);
}

#[test]
fn fields_without_x_order_come_after_by_name_and_unknown_things_are_kept() {
    let doc = json!({"components": {"schemas": {"Input": {"properties": {
        "zeta": {"type": "string"},
        "alpha": {"type": "string"},
        "second": {"type": "integer", "x-order": 1},
        "first": {"type": ["number", "null"], "x-order": 0, "x-custom": {"a": 1}, "minLength": 2},
        "weird": {"type": "frobnicate", "x-order": 2},
        "nullable": {"anyOf": [{"type": "string"}, {"type": "null"}], "x-order": 3},
        "cycle": {"$ref": "#/components/schemas/Loop", "x-order": 4}
    }}, "Loop": {"allOf": [{"$ref": "#/components/schemas/Loop"}], "type": "boolean"}}}});
    let input = InputSchema::from_openapi(&doc).unwrap();
    assert_eq!(
        names(&input),
        [
            "first", "second", "weird", "nullable", "cycle", "alpha", "zeta"
        ]
    );
    let first = input.field("first").unwrap();
    assert_eq!(first.ty, FieldType::Number);
    assert_eq!(first.extra.get("x-custom"), Some(&json!({"a": 1})));
    assert_eq!(first.extra.get("minLength"), Some(&json!(2)));
    assert_eq!(input.field("weird").unwrap().ty, FieldType::Any);
    let nullable = input.field("nullable").unwrap();
    assert!(nullable.nullable);
    assert_eq!(nullable.ty, FieldType::String);
    assert_eq!(input.field("cycle").unwrap().ty, FieldType::Boolean);
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

fn rules() -> InputSchema {
    let doc = json!({"components": {"schemas": {
        "Input": {"type": "object", "required": ["prompt", "n"], "properties": {
            "prompt": {"type": "string", "x-order": 0},
            "n": {"type": "integer", "minimum": 1, "maximum": 4, "x-order": 1},
            "scale": {"type": "number", "minimum": 0, "exclusiveMaximum": 10, "x-order": 2},
            "strength": {"type": "number", "minimum": 0, "maximum": 1, "exclusiveMinimum": true, "x-order": 3},
            "flag": {"type": "boolean", "x-order": 4},
            "image": {"type": "string", "format": "uri", "x-order": 5},
            "size": {"allOf": [{"$ref": "#/components/schemas/size"}], "x-order": 6},
            "images": {"type": "array", "items": {"type": "string", "format": "uri"}, "x-order": 7},
            "nums": {"type": "array", "items": {"type": "integer"}, "x-order": 8},
            "opts": {"type": "object", "x-order": 9},
            "anything": {"x-order": 10},
            "level": {"type": "integer", "enum": [1, 2, 3], "x-order": 11},
            "seed": {"type": "integer", "x-order": 12}
        }},
        "size": {"type": "string", "enum": ["small", "large"], "title": "size"}
    }}});
    InputSchema::from_openapi(&doc).unwrap()
}

fn base() -> serde_json::Map<String, Value> {
    json!({"prompt": "a cat", "n": 2})
        .as_object()
        .unwrap()
        .clone()
}

#[test]
fn valid_inputs_pass() {
    let schema = rules();
    let full = json!({
        "prompt": "a cat", "n": 4, "scale": 9.99, "strength": 1, "flag": false,
        "image": "https://x/a.png", "size": "large", "images": ["data:,x"], "nums": [1, -2],
        "opts": {"k": 1}, "anything": [null], "level": 2, "seed": -7
    });
    schema.validate(&full).unwrap();
    schema.validate_strict(&full).unwrap();
    schema
        .validate(&json!({"prompt": "", "n": 1, "scale": 0, "image": null}))
        .unwrap();
    // A JSON integer is a valid number.
    schema
        .validate(&json!({"prompt": "x", "n": 1, "scale": 3}))
        .unwrap();
}

#[test]
fn each_rule_in_a_table() {
    let schema = rules();
    let cases: Vec<(Value, &str, &str)> = vec![
        // (extra fields over a valid base or a whole input, field, message)
        (
            json!({"prompt": null}),
            "prompt",
            "prompt: expected string, got null",
        ),
        (
            json!({"n": 2.5}),
            "n",
            "n: expected integer, got number (float)",
        ),
        (
            json!({"n": 2.0}),
            "n",
            "n: expected integer, got number (float)",
        ),
        (json!({"n": "2"}), "n", "n: expected integer, got string"),
        (
            json!({"n": 0}),
            "n",
            "n: 0 is out of range (must be >= 1 and <= 4)",
        ),
        (
            json!({"n": 5}),
            "n",
            "n: 5 is out of range (must be >= 1 and <= 4)",
        ),
        (
            json!({"scale": 10}),
            "scale",
            "scale: 10 is out of range (must be >= 0 and < 10)",
        ),
        (
            json!({"scale": -0.5}),
            "scale",
            "scale: -0.5 is out of range (must be >= 0 and < 10)",
        ),
        (
            json!({"strength": 0}),
            "strength",
            "strength: 0 is out of range (must be > 0 and <= 1)",
        ),
        (
            json!({"scale": "big"}),
            "scale",
            "scale: expected number, got string",
        ),
        (
            json!({"flag": "true"}),
            "flag",
            "flag: expected boolean, got string",
        ),
        (
            json!({"image": 3}),
            "image",
            "image: expected file (URI), got integer",
        ),
        (
            json!({"size": "huge"}),
            "size",
            "size: \"huge\" is not one of \"small\", \"large\"",
        ),
        (
            json!({"size": 1}),
            "size",
            "size: expected string, got integer",
        ),
        (
            json!({"level": 4}),
            "level",
            "level: 4 is not one of 1, 2, 3",
        ),
        (
            json!({"images": "https://x"}),
            "images",
            "images: expected array of file (URI), got string",
        ),
        (
            json!({"images": ["a", 2]}),
            "images[1]",
            "images[1]: expected file (URI), got integer",
        ),
        (
            json!({"nums": [1, 1.5]}),
            "nums[1]",
            "nums[1]: expected integer, got number (float)",
        ),
        (
            json!({"opts": []}),
            "opts",
            "opts: expected object, got array",
        ),
    ];
    for (extra, field, message) in cases {
        let mut input = base();
        for (k, v) in extra.as_object().unwrap() {
            input.insert(k.clone(), v.clone());
        }
        let errors = schema.validate(&Value::Object(input)).unwrap_err();
        assert_eq!(errors.len(), 1, "{field}: {errors}");
        let p = &errors.problems()[0];
        assert_eq!(p.field, field);
        assert_eq!(p.to_string(), message);
    }
}

#[test]
fn problem_kinds_are_typed() {
    let schema = rules();
    let errors = schema
        .validate(&json!({"n": 9, "size": "huge", "flag": 1}))
        .unwrap_err();
    let kinds: Vec<&ProblemKind> = errors.iter().map(|p| &p.kind).collect();
    assert_eq!(kinds.len(), 4);
    assert_eq!(*kinds[0], ProblemKind::MissingRequired);
    assert!(matches!(
        kinds[1],
        ProblemKind::OutOfRange { value, minimum: Some(1.0), maximum: Some(4.0), .. } if *value == json!(9)
    ));
    assert!(
        matches!(kinds[2], ProblemKind::WrongType { expected, found } if expected == "boolean" && found == "integer")
    );
    assert!(matches!(
        kinds[3],
        ProblemKind::NotAllowed { allowed, .. } if *allowed == strs(&["small", "large"])
    ));
    assert_eq!(
        errors.problems()[0].to_string(),
        "prompt: required input is missing"
    );
}

#[test]
fn multiple_problems_at_once() {
    let schema = rules();
    let errors = schema
        .validate(&json!({"n": "two", "scale": 11, "size": "x", "images": [1, 2], "mystery": 1}))
        .unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        ["prompt", "n", "scale", "size", "images[0]", "images[1]"]
    );
    let text = errors.to_string();
    assert!(
        text.starts_with("invalid input (6 problems)\n  - prompt: required input is missing"),
        "{text}"
    );
    assert!(!text.contains("mystery"));
}

#[test]
fn unknown_fields_are_a_separate_kind() {
    let schema = rules();
    let mut input = base();
    input.insert("promt".into(), json!("typo"));
    let input = Value::Object(input);
    // Lenient (the default): not an error, but check() shows it.
    schema.validate(&input).unwrap();
    schema.validate_with(&input, Mode::Lenient).unwrap();
    let all = schema.check(&input);
    assert_eq!(
        all,
        vec![FieldProblem::new("promt", ProblemKind::UnknownField)]
    );
    assert!(all[0].kind.is_unknown_field());
    assert_eq!(
        all[0].to_string(),
        "promt: unknown input (not in the schema)"
    );
    // Strict: an error.
    let errors = schema.validate_strict(&input).unwrap_err();
    assert_eq!(errors.problems(), all.as_slice());
    assert_eq!(
        schema.validate_with(&input, Mode::Strict).unwrap_err(),
        errors
    );
}

#[test]
fn input_that_is_not_an_object() {
    let schema = rules();
    for input in [json!(null), json!([1]), json!("prompt=x")] {
        let errors = schema.validate(&input).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(matches!(
            errors.problems()[0].kind,
            ProblemKind::NotAnObject { .. }
        ));
        assert!(
            errors.problems()[0]
                .to_string()
                .starts_with("input: expected a JSON object")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Coercion
// ---------------------------------------------------------------------------------------------

#[test]
fn coercion_table() {
    let schema = rules();
    let ok: Vec<(&str, &str, Value)> = vec![
        ("seed", "007", json!(7)),
        ("seed", "-12", json!(-12)),
        ("seed", "18446744073709551615", json!(u64::MAX)),
        ("n", "003", json!(3)),
        ("n", " 3 ", json!(3)),
        ("prompt", "007", json!("007")),
        ("prompt", "true", json!("true")),
        ("prompt", "", json!("")),
        ("image", "https://x/a.png", json!("https://x/a.png")),
        ("scale", "2", json!(2)),
        ("scale", "2.5", json!(2.5)),
        ("scale", "1e0", json!(1.0)),
        ("flag", "true", json!(true)),
        ("flag", "False", json!(false)),
        ("size", "small", json!("small")),
        ("level", "2", json!(2)),
        (
            "images",
            r#"["https://x/a", "https://x/b"]"#,
            json!(["https://x/a", "https://x/b"]),
        ),
        ("nums", "[1, 2]", json!([1, 2])),
        ("nums", "[]", json!([])),
        ("opts", r#"{"a": 1}"#, json!({"a": 1})),
        ("anything", "[1]", json!([1])),
        ("anything", "hello", json!("hello")),
    ];
    for (field, text, want) in ok {
        assert_eq!(schema.coerce(field, text).unwrap(), want, "{field}={text}");
    }
    let err: Vec<(&str, &str, &str)> = vec![
        ("n", "7.5", "n: \"7.5\" is not a valid integer"),
        ("n", "seven", "n: \"seven\" is not a valid integer"),
        ("n", "9", "n: 9 is out of range (must be >= 1 and <= 4)"),
        ("scale", "NaN", "scale: \"NaN\" is not a valid number"),
        ("scale", "abc", "scale: \"abc\" is not a valid number"),
        ("flag", "yes", "flag: \"yes\" is not a valid boolean"),
        (
            "size",
            "huge",
            "size: \"huge\" is not one of \"small\", \"large\"",
        ),
        ("level", "5", "level: 5 is not one of 1, 2, 3"),
        (
            "nums",
            "1,2",
            "nums: \"1,2\" is not a valid array of integer",
        ),
        (
            "nums",
            "[1.5]",
            "nums[0]: expected integer, got number (float)",
        ),
        ("opts", "[]", "opts: \"[]\" is not a valid object"),
        ("nope", "1", "nope: unknown input (not in the schema)"),
    ];
    for (field, text, message) in err {
        let problem = schema.coerce(field, text).unwrap_err();
        assert_eq!(problem.to_string(), message, "{field}={text}");
    }
    assert!(matches!(
        schema.coerce("n", "x").unwrap_err().kind,
        ProblemKind::InvalidText { .. }
    ));
    assert!(
        schema
            .coerce("nope", "1")
            .unwrap_err()
            .kind
            .is_unknown_field()
    );
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("components".to_owned()),
        Just("schemas".to_owned()),
        Just("Input".to_owned()),
        Just("Output".to_owned()),
        Just("TrainingInput".to_owned()),
        Just("properties".to_owned()),
        Just("type".to_owned()),
        Just("items".to_owned()),
        Just("allOf".to_owned()),
        Just("anyOf".to_owned()),
        Just("$ref".to_owned()),
        Just("enum".to_owned()),
        Just("required".to_owned()),
        Just("x-order".to_owned()),
        Just("minimum".to_owned()),
        Just("exclusiveMinimum".to_owned()),
        Just("x-cog-array-type".to_owned()),
        "[a-z]{1,3}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        prop_oneof![
            Just("string"),
            Just("integer"),
            Just("number"),
            Just("array"),
            Just("object"),
            Just("iterator"),
            Just("#/components/schemas/Input"),
            Just("#/components/schemas/a"),
            Just("#"),
            Just("uri"),
        ]
        .prop_map(Value::from),
        "[a-z]{0,4}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A valid value for `field`, from its enum, range, type (deterministic).
fn sample(field: &InputField) -> Value {
    pick(field, 7).unwrap_or(Value::Null)
}

fn pick_type(ty: &ValueType, field: Option<&InputField>, r: u64) -> Value {
    if !ty.allowed.is_empty() {
        return ty.allowed[(r % ty.allowed.len() as u64) as usize].clone();
    }
    let lo = field.and_then(|f| f.minimum.or(f.exclusive_minimum));
    let hi = field.and_then(|f| f.maximum.or(f.exclusive_maximum));
    let (lo, hi) = match (lo, hi) {
        (Some(l), Some(h)) => (l, h),
        (Some(l), None) => (l, l + 100.0),
        (None, Some(h)) => (h - 100.0, h),
        (None, None) => (-100.0, 100.0),
    };
    match &ty.ty {
        FieldType::Integer => {
            let first = lo.floor() as i64 + 1;
            let last = hi.ceil() as i64 - 1;
            let first = if field.is_some_and(|f| f.minimum.is_some()) {
                lo.ceil() as i64
            } else {
                first
            };
            let last = if field.is_some_and(|f| f.maximum.is_some()) {
                hi.floor() as i64
            } else {
                last
            };
            json!(first + (r % ((last - first + 1).max(1) as u64)) as i64)
        }
        FieldType::Number => {
            let t = ((r % 999) + 1) as f64 / 1000.0;
            json!(lo + t * (hi - lo))
        }
        FieldType::Boolean => json!(r.is_multiple_of(2)),
        FieldType::String if ty.is_file() => json!(format!("https://example.com/{r}.bin")),
        FieldType::String => json!(format!("s{r}")),
        FieldType::Array(items) => Value::Array(
            (0..r % 3)
                .map(|i| pick_type(items, None, r / 3 + i))
                .collect(),
        ),
        FieldType::Object => json!({"k": r}),
        _ => json!(r),
    }
}

/// A value for `field` (`None`: leave it out), chosen by `r` among: omitted (if optional), its
/// default, an allowed value, a value in range.
fn pick(field: &InputField, r: u64) -> Option<Value> {
    if !field.required && r.is_multiple_of(5) {
        return None;
    }
    if let Some(d) = &field.default
        && r.is_multiple_of(3)
    {
        return Some(d.clone());
    }
    Some(pick_type(&field.value_type(), Some(field), r / 5))
}

fn fixture_inputs() -> Vec<(String, InputSchema)> {
    let mut out = Vec::new();
    for (name, doc) in all_fixtures() {
        let s = VersionSchema::parse(&doc);
        if let Some(i) = s.input {
            out.push((name.clone(), i));
        }
        if let Some(t) = s.training_input {
            out.push((format!("{name} (training)"), t));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parsing_arbitrary_json_never_panics(doc in arb_json(), input in arb_json()) {
        let s = VersionSchema::parse(&doc);
        let wrapped = json!({"components": {"schemas": {"Input": doc.clone(), "Output": doc.clone(), "a": doc}}});
        let w = VersionSchema::parse(&wrapped);
        for schema in [s.input, w.input].into_iter().flatten() {
            let _ = schema.check(&input);
            for f in &schema.fields {
                let _ = schema.coerce(&f.name, "1");
                let _ = f.value_type().to_string();
            }
        }
        let _ = w.output.map(|o| o.shape);
    }

    #[test]
    fn inputs_built_from_each_schema_validate(rs in prop::collection::vec(any::<u64>(), 32)) {
        for (name, schema) in fixture_inputs() {
            let mut input = serde_json::Map::new();
            for (i, f) in schema.fields.iter().enumerate() {
                if let Some(v) = pick(f, rs[i % rs.len()].wrapping_add(i as u64)) {
                    input.insert(f.name.clone(), v);
                }
            }
            let input = Value::Object(input);
            if let Err(e) = schema.validate_strict(&input) {
                prop_assert!(false, "{}: {} for {}", name, e, input);
            }
        }
    }
}
