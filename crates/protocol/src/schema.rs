//! Model version schemas: parse a version's `openapi_schema`, validate inputs locally, and turn
//! command-line text into typed input values.
//!
//! A Cog model describes its inputs and output in the OpenAPI document of each version
//! ([`ModelVersion::openapi_schema`]): `components.schemas.Input` is an object schema whose
//! properties are the inputs (ordered by `x-order`), `components.schemas.Output` the output.
//! Trainable models add `TrainingInput` and `TrainingOutput`, which parse with the same code.
//!
//! - [`VersionSchema::parse`] reads the whole document; [`InputSchema`] and [`OutputSchema`]
//!   read one component. Nothing here fails: what is not understood is kept (`extra`, `raw`),
//!   and a missing or empty schema is `None`.
//! - [`InputSchema::validate`] reports every problem of an input at once ([`ValidationErrors`]);
//!   unknown fields are a separate kind ([`ProblemKind::UnknownField`]), an error only with
//!   [`InputSchema::validate_strict`] (or [`Mode::Strict`]).
//! - [`InputSchema::coerce`] turns the text of `-i seed=007` into the value the field wants.
//!
//! ```
//! use replicate_protocol::schema::{FieldType, InputSchema, ProblemKind};
//! use serde_json::json;
//!
//! let doc = json!({"components": {"schemas": {
//!     "Input": {"type": "object", "required": ["prompt"], "properties": {
//!         "prompt": {"type": "string", "x-order": 0},
//!         "seed": {"type": "integer", "minimum": 0, "x-order": 1},
//!         "size": {"allOf": [{"$ref": "#/components/schemas/size"}], "default": "small", "x-order": 2}
//!     }},
//!     "size": {"type": "string", "enum": ["small", "large"]}
//! }}});
//! let input = InputSchema::from_openapi(&doc).unwrap();
//! assert_eq!(input.field("size").unwrap().ty, FieldType::String);
//! assert_eq!(input.field("size").unwrap().allowed, vec![json!("small"), json!("large")]);
//!
//! assert_eq!(input.coerce("seed", "007").unwrap(), json!(7));
//! assert_eq!(input.coerce("prompt", "007").unwrap(), json!("007"));
//!
//! let errors = input.validate(&json!({"seed": -1, "size": "huge"})).unwrap_err();
//! let kinds: Vec<_> = errors.iter().map(|p| p.field.as_str()).collect();
//! assert_eq!(kinds, ["prompt", "seed", "size"]);
//! assert!(matches!(errors.problems()[0].kind, ProblemKind::MissingRequired));
//! ```
//!
//! [`ModelVersion::openapi_schema`]: crate::api::models::ModelVersion::openapi_schema

use std::fmt;

use serde_json::{Map, Value};

/// How deep `$ref`/`allOf` chains are followed (guards against cycles).
const MAX_REF_DEPTH: usize = 8;

/// Keys of a property schema that are read into [`InputField`]'s own fields; the others go to
/// [`InputField::extra`].
const KNOWN_FIELD_KEYS: &[&str] = &[
    "type",
    "format",
    "default",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "enum",
    "description",
    "title",
    "x-order",
    "allOf",
    "$ref",
    "items",
    "nullable",
];

/// The type of a value, as a schema declares it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FieldType {
    /// `type: string` (files are strings with `format: uri`).
    String,
    /// `type: integer`.
    Integer,
    /// `type: number` (an integer is a number too).
    Number,
    /// `type: boolean`.
    Boolean,
    /// `type: array`, with the type of its items.
    Array(Box<ValueType>),
    /// `type: object`.
    Object,
    /// No type, or one this SDK does not know (the raw schema is kept): anything goes.
    Any,
}

impl FieldType {
    /// The JSON Schema name of this type (`"string"`, `"integer"`, …, `"any"`).
    pub fn name(&self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
            FieldType::Array(_) => "array",
            FieldType::Object => "object",
            FieldType::Any => "any",
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldType::Array(items) => write!(f, "array of {}", items),
            other => f.write_str(other.name()),
        }
    }
}

/// A type with its format and allowed values: an array's items, an output value.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ValueType {
    /// The type.
    pub ty: FieldType,
    /// `format` (`uri` for files).
    pub format: Option<String>,
    /// `enum`: the allowed values (empty: any value of the type).
    pub allowed: Vec<Value>,
}

impl ValueType {
    /// A value of this type, without a format or allowed values.
    pub fn new(ty: FieldType) -> Self {
        ValueType {
            ty,
            format: None,
            allowed: Vec::new(),
        }
    }

    /// Whether this is a file (a string with `format: uri`).
    pub fn is_file(&self) -> bool {
        self.ty == FieldType::String && self.format.as_deref() == Some("uri")
    }

    fn from_schema(schema: &Map<String, Value>, doc: &Value, depth: usize) -> Self {
        let schema = resolve(schema, doc, depth);
        ValueType {
            ty: field_type(&schema, doc, depth),
            format: str_of(&schema, "format"),
            allowed: schema
                .get("enum")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_file() {
            f.write_str("file (URI)")
        } else {
            write!(f, "{}", self.ty)?;
            if let Some(format) = &self.format {
                write!(f, " ({format})")?;
            }
            Ok(())
        }
    }
}

/// One input of a model: a property of the `Input` (or `TrainingInput`) schema.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct InputField {
    /// The input's name (the property key).
    pub name: String,
    /// Its type (enums resolved through `allOf`/`$ref`).
    pub ty: FieldType,
    /// `format` (`uri` for files).
    pub format: Option<String>,
    /// `default`.
    pub default: Option<Value>,
    /// `minimum` (inclusive).
    pub minimum: Option<f64>,
    /// `maximum` (inclusive).
    pub maximum: Option<f64>,
    /// The exclusive lower bound (`exclusiveMinimum`, as a number, or OpenAPI 3.0's `true`
    /// with `minimum`).
    pub exclusive_minimum: Option<f64>,
    /// The exclusive upper bound.
    pub exclusive_maximum: Option<f64>,
    /// `enum`: the allowed values (empty: any value of the type).
    pub allowed: Vec<Value>,
    /// The name of the referenced enum schema, when the field is `allOf: [{"$ref": ...}]`.
    pub enum_name: Option<String>,
    /// Whether the input is listed in the schema's `required`.
    pub required: bool,
    /// `nullable: true` (or an `anyOf` with `null`).
    pub nullable: bool,
    /// `description`.
    pub description: Option<String>,
    /// `title`.
    pub title: Option<String>,
    /// `x-order`.
    pub order: Option<i64>,
    /// Every other key of the property (and of what it references), kept as is (e.g.
    /// `minLength`, `x-cog-secret`).
    pub extra: Map<String, Value>,
}

impl InputField {
    /// Whether this input is a file (a string with `format: uri`).
    pub fn is_file(&self) -> bool {
        self.ty == FieldType::String && self.format.as_deref() == Some("uri")
    }

    /// Whether this input is a list of files.
    pub fn is_file_list(&self) -> bool {
        matches!(&self.ty, FieldType::Array(items) if items.is_file())
    }

    /// The type, format and allowed values of this input.
    pub fn value_type(&self) -> ValueType {
        ValueType {
            ty: self.ty.clone(),
            format: self.format.clone(),
            allowed: self.allowed.clone(),
        }
    }

    fn parse(name: &str, raw: &Map<String, Value>, required: bool, doc: &Value) -> Self {
        let mut enum_name = None;
        for key in ["allOf", "anyOf", "oneOf"] {
            if let Some(parts) = raw.get(key).and_then(Value::as_array) {
                for part in parts {
                    if let Some(r) = part.get("$ref").and_then(Value::as_str) {
                        enum_name = r.rsplit('/').next().map(str::to_owned);
                    }
                }
            }
        }
        if let Some(r) = raw.get("$ref").and_then(Value::as_str) {
            enum_name = r.rsplit('/').next().map(str::to_owned);
        }
        let merged = resolve(raw, doc, 0);
        let allowed: Vec<Value> = merged
            .get("enum")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if allowed.is_empty() {
            enum_name = None;
        }
        let (minimum, exclusive_minimum) = bounds(&merged, "minimum", "exclusiveMinimum");
        let (maximum, exclusive_maximum) = bounds(&merged, "maximum", "exclusiveMaximum");
        let nullable =
            merged.get("nullable").and_then(Value::as_bool) == Some(true) || any_of_null(raw);
        let extra = merged
            .iter()
            .filter(|(k, _)| !KNOWN_FIELD_KEYS.contains(&k.as_str()))
            .filter(|(k, _)| !matches!(k.as_str(), "anyOf" | "oneOf") || !any_of_null(raw))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let is_enum_ref = enum_name.is_some();
        InputField {
            name: name.to_owned(),
            ty: field_type(&merged, doc, 0),
            format: str_of(&merged, "format"),
            default: merged.get("default").cloned(),
            minimum,
            maximum,
            exclusive_minimum,
            exclusive_maximum,
            allowed,
            enum_name,
            required,
            nullable,
            // A referenced enum's own `description` ("An enumeration.") and `title` (its
            // type's name) describe the enum type, not this field.
            description: own_or_shared(raw, &merged, "description", is_enum_ref),
            title: own_or_shared(raw, &merged, "title", is_enum_ref),
            order: merged.get("x-order").and_then(Value::as_i64),
            extra,
        }
    }
}

/// The inputs of a model version (or of its trainer), in `x-order`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct InputSchema {
    /// The inputs: those with `x-order` by it, then the others by name.
    pub fields: Vec<InputField>,
    /// The schema's `title`.
    pub title: Option<String>,
    /// The component as the document holds it.
    pub raw: Value,
}

impl InputSchema {
    /// The `Input` component of a version's OpenAPI document; `None` when there is none.
    pub fn from_openapi(doc: &Value) -> Option<Self> {
        Self::from_component(doc, "Input")
    }

    /// The `TrainingInput` component of a version's OpenAPI document.
    pub fn training_from_openapi(doc: &Value) -> Option<Self> {
        Self::from_component(doc, "TrainingInput")
    }

    /// The component `components.schemas.<name>` of an OpenAPI document, read as an input
    /// schema; `None` when it is absent or not an object.
    pub fn from_component(doc: &Value, name: &str) -> Option<Self> {
        Self::from_schema(component(doc, name)?, doc)
    }

    /// An object schema (with `properties` and `required`), its `$ref`s resolved against `doc`.
    /// `None` when `schema` is not a JSON object.
    pub fn from_schema(schema: &Value, doc: &Value) -> Option<Self> {
        let map = schema.as_object()?;
        let map = resolve(map, doc, 0);
        let required: Vec<&str> = map
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut fields: Vec<InputField> = map
            .get("properties")
            .and_then(Value::as_object)
            .map(|props| {
                props
                    .iter()
                    .map(|(name, prop)| {
                        let empty = Map::new();
                        let prop = prop.as_object().unwrap_or(&empty);
                        InputField::parse(name, prop, required.contains(&name.as_str()), doc)
                    })
                    .collect()
            })
            .unwrap_or_default();
        fields.sort_by(|a, b| match (a.order, b.order) {
            (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.name.cmp(&b.name)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.name.cmp(&b.name),
        });
        Some(InputSchema {
            fields,
            title: str_of(&map, "title"),
            raw: schema.clone(),
        })
    }

    /// The input named `name`.
    pub fn field(&self, name: &str) -> Option<&InputField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The required inputs.
    pub fn required(&self) -> impl Iterator<Item = &InputField> {
        self.fields.iter().filter(|f| f.required)
    }

    /// Every problem of `input`, unknown fields included ([`ProblemKind::UnknownField`]), in
    /// field order (unknown fields last).
    pub fn check(&self, input: &Value) -> Vec<FieldProblem> {
        let Some(object) = input.as_object() else {
            return vec![FieldProblem::new(
                "",
                ProblemKind::NotAnObject {
                    found: json_type(input).to_owned(),
                },
            )];
        };
        let mut problems = Vec::new();
        for field in &self.fields {
            match object.get(&field.name) {
                None => {
                    if field.required {
                        problems.push(FieldProblem::new(&field.name, ProblemKind::MissingRequired));
                    }
                }
                Some(Value::Null) if field.nullable || !field.required => {}
                Some(value) => check_value(
                    &field.name,
                    &field.value_type(),
                    Some(field),
                    value,
                    &mut problems,
                ),
            }
        }
        for name in object.keys() {
            if self.field(name).is_none() {
                problems.push(FieldProblem::new(name, ProblemKind::UnknownField));
            }
        }
        problems
    }

    /// Validates `input`; unknown fields are not errors (see [`check`](Self::check) to see
    /// them as warnings, [`validate_strict`](Self::validate_strict) to refuse them).
    pub fn validate(&self, input: &Value) -> Result<(), ValidationErrors> {
        self.validate_with(input, Mode::Lenient)
    }

    /// Validates `input`, unknown fields included.
    pub fn validate_strict(&self, input: &Value) -> Result<(), ValidationErrors> {
        self.validate_with(input, Mode::Strict)
    }

    /// Validates `input` in the given mode: every problem at once.
    pub fn validate_with(&self, input: &Value, mode: Mode) -> Result<(), ValidationErrors> {
        let problems: Vec<FieldProblem> = self
            .check(input)
            .into_iter()
            .filter(|p| mode == Mode::Strict || !p.kind.is_unknown_field())
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors { problems })
        }
    }

    /// The value of the input `field` written as `text` on a command line: `007` is the
    /// integer 7 for an integer field and the string `"007"` for a string (or file) field;
    /// `true`/`false` for booleans; a number; a JSON array (or object) text for array (or
    /// object) fields. The result is checked against the field (range, enum).
    // The error is as large as a problem is (it carries the allowed values); coercion runs once
    // per command-line input, so boxing it would only cost callers a deref.
    #[allow(clippy::result_large_err)]
    pub fn coerce(&self, field: &str, text: &str) -> Result<Value, FieldProblem> {
        let Some(f) = self.field(field) else {
            return Err(FieldProblem::new(field, ProblemKind::UnknownField));
        };
        let invalid = || {
            FieldProblem::new(
                field,
                ProblemKind::InvalidText {
                    expected: f.value_type().to_string(),
                    text: text.to_owned(),
                },
            )
        };
        let value = match &f.ty {
            FieldType::String => Value::String(text.to_owned()),
            FieldType::Integer => {
                let t = text.trim();
                if let Ok(i) = t.parse::<i64>() {
                    Value::from(i)
                } else if let Ok(u) = t.parse::<u64>() {
                    Value::from(u)
                } else {
                    return Err(invalid());
                }
            }
            FieldType::Number => {
                let t = text.trim();
                if let Ok(i) = t.parse::<i64>() {
                    Value::from(i)
                } else {
                    match t.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                        Some(n) => Value::Number(n),
                        None => return Err(invalid()),
                    }
                }
            }
            FieldType::Boolean => match text.trim().to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(invalid()),
            },
            FieldType::Array(_) => match serde_json::from_str::<Value>(text) {
                Ok(v @ Value::Array(_)) => v,
                _ => return Err(invalid()),
            },
            FieldType::Object => match serde_json::from_str::<Value>(text) {
                Ok(v @ Value::Object(_)) => v,
                _ => return Err(invalid()),
            },
            FieldType::Any => {
                serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
            }
        };
        let mut problems = Vec::new();
        check_value(field, &f.value_type(), Some(f), &value, &mut problems);
        match problems.into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(value),
        }
    }
}

/// Whether unknown fields are errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Mode {
    /// Unknown fields are not errors (callers may show them as warnings).
    #[default]
    Lenient,
    /// Unknown fields are errors.
    Strict,
}

/// What is wrong with one input.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// A required input is missing.
    MissingRequired,
    /// The value has the wrong type.
    WrongType {
        /// The type the schema wants (e.g. `integer`, `file (URI)`).
        expected: String,
        /// The JSON type given (`string`, `number (float)`, `null`, …).
        found: String,
    },
    /// A number outside the field's range.
    OutOfRange {
        /// The value given.
        value: Value,
        /// The inclusive lower bound.
        minimum: Option<f64>,
        /// The inclusive upper bound.
        maximum: Option<f64>,
        /// The exclusive lower bound.
        exclusive_minimum: Option<f64>,
        /// The exclusive upper bound.
        exclusive_maximum: Option<f64>,
    },
    /// A value not among the field's `enum`.
    NotAllowed {
        /// The value given.
        value: Value,
        /// The allowed values.
        allowed: Vec<Value>,
    },
    /// A field the schema does not have (a warning unless validating in [`Mode::Strict`]).
    UnknownField,
    /// The input as a whole is not a JSON object.
    NotAnObject {
        /// The JSON type given.
        found: String,
    },
    /// Command-line text that does not read as the field's type ([`InputSchema::coerce`]).
    InvalidText {
        /// The type the schema wants.
        expected: String,
        /// The text given.
        text: String,
    },
}

impl ProblemKind {
    /// Whether this is an unknown field (a warning by default).
    pub fn is_unknown_field(&self) -> bool {
        matches!(self, ProblemKind::UnknownField)
    }
}

/// One problem of an input: the field and what is wrong.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FieldProblem {
    /// The field's name; an item of an array field is `name[index]`; empty for the input as
    /// a whole.
    pub field: String,
    /// What is wrong.
    pub kind: ProblemKind,
}

impl FieldProblem {
    /// A problem of `field`.
    pub fn new(field: impl Into<String>, kind: ProblemKind) -> Self {
        FieldProblem {
            field: field.into(),
            kind,
        }
    }
}

fn fmt_num(x: f64) -> String {
    // `{}` prints 4.0 as "4"; keep it that way for bounds.
    format!("{x}")
}

/// One line, whatever the names and values hold: they come from the input and from the
/// server's schema, so control characters are shown escaped
/// ([`clean_line`](crate::text::clean_line)).
impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = String::new();
        self.write_raw(&mut line)?;
        f.write_str(&crate::text::clean_line(&line))
    }
}

impl FieldProblem {
    fn write_raw(&self, f: &mut String) -> fmt::Result {
        use std::fmt::Write as _;
        let name = &self.field;
        match &self.kind {
            ProblemKind::MissingRequired => write!(f, "{name}: required input is missing"),
            ProblemKind::WrongType { expected, found } => {
                write!(f, "{name}: expected {expected}, got {found}")
            }
            ProblemKind::OutOfRange {
                value,
                minimum,
                maximum,
                exclusive_minimum,
                exclusive_maximum,
            } => {
                let mut bounds = Vec::new();
                if let Some(x) = minimum {
                    bounds.push(format!(">= {}", fmt_num(*x)));
                }
                if let Some(x) = exclusive_minimum {
                    bounds.push(format!("> {}", fmt_num(*x)));
                }
                if let Some(x) = maximum {
                    bounds.push(format!("<= {}", fmt_num(*x)));
                }
                if let Some(x) = exclusive_maximum {
                    bounds.push(format!("< {}", fmt_num(*x)));
                }
                write!(
                    f,
                    "{name}: {value} is out of range (must be {})",
                    bounds.join(" and ")
                )
            }
            ProblemKind::NotAllowed { value, allowed } => {
                let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
                write!(f, "{name}: {value} is not one of {}", list.join(", "))
            }
            ProblemKind::UnknownField => write!(f, "{name}: unknown input (not in the schema)"),
            ProblemKind::NotAnObject { found } => {
                write!(f, "input: expected a JSON object, got {found}")
            }
            ProblemKind::InvalidText { expected, text } => {
                write!(f, "{name}: {text:?} is not a valid {expected}")
            }
        }
    }
}

impl std::error::Error for FieldProblem {}

/// Every problem of an input ([`InputSchema::validate`]); never empty.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationErrors {
    problems: Vec<FieldProblem>,
}

impl ValidationErrors {
    /// The problems, in field order.
    pub fn problems(&self) -> &[FieldProblem] {
        &self.problems
    }

    /// The problems, in field order.
    pub fn iter(&self) -> std::slice::Iter<'_, FieldProblem> {
        self.problems.iter()
    }

    /// How many problems.
    pub fn len(&self) -> usize {
        self.problems.len()
    }

    /// Always `false` (kept for the `len`/`is_empty` pair).
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems.
    pub fn into_problems(self) -> Vec<FieldProblem> {
        self.problems
    }
}

impl<'a> IntoIterator for &'a ValidationErrors {
    type Item = &'a FieldProblem;
    type IntoIter = std::slice::Iter<'a, FieldProblem>;
    fn into_iter(self) -> Self::IntoIter {
        self.problems.iter()
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "invalid input ({n} problem{})",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// The shape of a model's output.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum OutputShape {
    /// A single value (a string, a number, a file URL, …).
    Single(ValueType),
    /// A list, returned at once.
    Array(ValueType),
    /// A list produced item by item (`x-cog-array-type: iterator`), e.g. an LLM's tokens.
    Iterator {
        /// The items' type.
        items: ValueType,
        /// `x-cog-array-display: concatenate`: the items are pieces of one text.
        concatenate: bool,
    },
    /// An object with named properties.
    Object(Vec<OutputProperty>),
}

/// One property of an object output.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OutputProperty {
    /// The property's name.
    pub name: String,
    /// Its type.
    pub value: ValueType,
    /// Whether the schema lists it in `required`.
    pub required: bool,
    /// `title`.
    pub title: Option<String>,
}

/// A model's output schema (`Output`, or `TrainingOutput`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OutputSchema {
    /// The shape.
    pub shape: OutputShape,
    /// `title`.
    pub title: Option<String>,
    /// The component as the document holds it.
    pub raw: Value,
}

impl OutputSchema {
    /// The `Output` component of a version's OpenAPI document; `None` when there is none.
    pub fn from_openapi(doc: &Value) -> Option<Self> {
        Self::from_component(doc, "Output")
    }

    /// The `TrainingOutput` component.
    pub fn training_from_openapi(doc: &Value) -> Option<Self> {
        Self::from_component(doc, "TrainingOutput")
    }

    /// The component `components.schemas.<name>`, read as an output schema.
    pub fn from_component(doc: &Value, name: &str) -> Option<Self> {
        Self::from_schema(component(doc, name)?, doc)
    }

    /// A schema, its `$ref`s resolved against `doc`; `None` when it is not a JSON object.
    pub fn from_schema(schema: &Value, doc: &Value) -> Option<Self> {
        let map = resolve(schema.as_object()?, doc, 0);
        let ty = field_type(&map, doc, 0);
        let shape = match &ty {
            FieldType::Array(items) => {
                if str_of(&map, "x-cog-array-type").as_deref() == Some("iterator") {
                    OutputShape::Iterator {
                        items: (**items).clone(),
                        concatenate: str_of(&map, "x-cog-array-display").as_deref()
                            == Some("concatenate"),
                    }
                } else {
                    OutputShape::Array((**items).clone())
                }
            }
            FieldType::Object if map.contains_key("properties") => {
                let required: Vec<&str> = map
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let props = map
                    .get("properties")
                    .and_then(Value::as_object)
                    .map(|props| {
                        props
                            .iter()
                            .map(|(name, prop)| {
                                let empty = Map::new();
                                let p = resolve(prop.as_object().unwrap_or(&empty), doc, 0);
                                OutputProperty {
                                    name: name.clone(),
                                    value: ValueType::from_schema(&p, doc, 0),
                                    required: required.contains(&name.as_str()),
                                    title: str_of(&p, "title"),
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                OutputShape::Object(props)
            }
            _ => OutputShape::Single(ValueType::from_schema(&map, doc, 0)),
        };
        Some(OutputSchema {
            shape,
            title: str_of(&map, "title"),
            raw: schema.clone(),
        })
    }
}

/// The schemas of a model version: its inputs and output, and its trainer's.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct VersionSchema {
    /// `Input`.
    pub input: Option<InputSchema>,
    /// `Output`.
    pub output: Option<OutputSchema>,
    /// `TrainingInput` (trainable models).
    pub training_input: Option<InputSchema>,
    /// `TrainingOutput` (trainable models).
    pub training_output: Option<OutputSchema>,
}

impl VersionSchema {
    /// Reads a version's whole OpenAPI document (`openapi_schema`). Never fails: a missing or
    /// unexpected part is `None`.
    pub fn parse(doc: &Value) -> Self {
        VersionSchema {
            input: InputSchema::from_openapi(doc),
            output: OutputSchema::from_openapi(doc),
            training_input: InputSchema::training_from_openapi(doc),
            training_output: OutputSchema::training_from_openapi(doc),
        }
    }
}

/// `components.schemas.<name>` of an OpenAPI document.
fn component<'d>(doc: &'d Value, name: &str) -> Option<&'d Value> {
    doc.get("components")?.get("schemas")?.get(name)
}

fn str_of(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The schema `#/components/schemas/<name>` (or any local JSON pointer) of `doc`.
fn lookup<'a>(doc: &'a Value, reference: &str) -> Option<&'a Map<String, Value>> {
    let pointer = reference.strip_prefix('#')?;
    doc.pointer(pointer)?.as_object()
}

/// `schema` with its `$ref`, its `allOf` parts and a nullable `anyOf`'s one non-null part merged
/// in; the schema's own keys win. A reference already being resolved (a cycle) is not followed
/// again, and chains stop at [`MAX_REF_DEPTH`].
fn resolve(schema: &Map<String, Value>, doc: &Value, depth: usize) -> Map<String, Value> {
    resolve_in(schema, doc, depth, &mut Vec::new())
}

fn resolve_in<'d>(
    schema: &'d Map<String, Value>,
    doc: &'d Value,
    depth: usize,
    chain: &mut Vec<&'d str>,
) -> Map<String, Value> {
    let mut out = schema.clone();
    if depth >= MAX_REF_DEPTH {
        return out;
    }
    let mut parts: Vec<Map<String, Value>> = Vec::new();
    let mut follow = |part: &'d Map<String, Value>, chain: &mut Vec<&'d str>| {
        let reference = part.get("$ref").and_then(Value::as_str);
        match reference {
            Some(r) if chain.contains(&r) => {}
            Some(r) => {
                chain.push(r);
                if let Some(target) = lookup(doc, r) {
                    parts.push(resolve_in(target, doc, depth + 1, chain));
                }
                chain.pop();
            }
            None => parts.push(resolve_in(part, doc, depth + 1, chain)),
        }
    };
    if schema.contains_key("$ref") {
        follow(schema, chain);
        // `follow` merged the target; the schema's other keys are already in `out`.
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for part in all.iter().filter_map(Value::as_object) {
            follow(part, chain);
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(any) = schema.get(key).and_then(Value::as_array) {
            let non_null: Vec<&Map<String, Value>> = any
                .iter()
                .filter_map(Value::as_object)
                .filter(|p| p.get("type").and_then(Value::as_str) != Some("null"))
                .collect();
            if non_null.len() == 1 {
                follow(non_null[0], chain);
            }
        }
    }
    for part in parts {
        for (k, v) in part {
            if k != "$ref" && k != "allOf" {
                out.entry(k).or_insert(v);
            }
        }
    }
    out
}

/// The property's own `key`, or (unless the rest is a referenced enum's) the merged one.
fn own_or_shared(
    raw: &Map<String, Value>,
    merged: &Map<String, Value>,
    key: &str,
    is_enum_ref: bool,
) -> Option<String> {
    str_of(raw, key).or_else(|| {
        if is_enum_ref {
            None
        } else {
            str_of(merged, key)
        }
    })
}

fn any_of_null(schema: &Map<String, Value>) -> bool {
    ["anyOf", "oneOf"].iter().any(|key| {
        schema
            .get(*key)
            .and_then(Value::as_array)
            .is_some_and(|parts| {
                parts
                    .iter()
                    .any(|p| p.get("type").and_then(Value::as_str) == Some("null"))
            })
    })
}

fn field_type(schema: &Map<String, Value>, doc: &Value, depth: usize) -> FieldType {
    let ty = match schema.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        // `["string", "null"]`: the one non-null type.
        Some(Value::Array(types)) => {
            let named: Vec<&str> = types
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect();
            if named.len() == 1 {
                Some(named[0])
            } else {
                None
            }
        }
        _ => None,
    };
    match ty {
        Some("string") => FieldType::String,
        Some("integer") => FieldType::Integer,
        Some("number") => FieldType::Number,
        Some("boolean") => FieldType::Boolean,
        Some("object") => FieldType::Object,
        Some("array") => {
            let items = match schema.get("items").and_then(Value::as_object) {
                Some(items) if depth < MAX_REF_DEPTH => {
                    ValueType::from_schema(items, doc, depth + 1)
                }
                _ => ValueType::new(FieldType::Any),
            };
            FieldType::Array(Box::new(items))
        }
        _ => FieldType::Any,
    }
}

/// `(inclusive, exclusive)` from `minimum`/`exclusiveMinimum` (OpenAPI 3.0's boolean form or
/// JSON Schema's number form).
fn bounds(
    schema: &Map<String, Value>,
    key: &str,
    exclusive_key: &str,
) -> (Option<f64>, Option<f64>) {
    let bound = schema.get(key).and_then(Value::as_f64);
    match schema.get(exclusive_key) {
        Some(Value::Bool(true)) => (None, bound),
        Some(v) => (bound, v.as_f64()),
        None => (bound, None),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number (float)",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        _ => a == b,
    }
}

fn type_matches(ty: &FieldType, value: &Value) -> bool {
    match (ty, value) {
        (FieldType::Any, _) => true,
        (FieldType::String, Value::String(_)) => true,
        (FieldType::Integer, Value::Number(n)) => n.is_i64() || n.is_u64(),
        (FieldType::Number, Value::Number(_)) => true,
        (FieldType::Boolean, Value::Bool(_)) => true,
        (FieldType::Array(_), Value::Array(_)) => true,
        (FieldType::Object, Value::Object(_)) => true,
        _ => false,
    }
}

/// Checks `value` against `ty` (and, for a top-level field, its range), pushing problems.
fn check_value(
    name: &str,
    ty: &ValueType,
    field: Option<&InputField>,
    value: &Value,
    problems: &mut Vec<FieldProblem>,
) {
    if !type_matches(&ty.ty, value) {
        problems.push(FieldProblem::new(
            name,
            ProblemKind::WrongType {
                expected: ty.to_string(),
                found: json_type(value).to_owned(),
            },
        ));
        return;
    }
    if !ty.allowed.is_empty() && !ty.allowed.iter().any(|a| same_value(a, value)) {
        problems.push(FieldProblem::new(
            name,
            ProblemKind::NotAllowed {
                value: value.clone(),
                allowed: ty.allowed.clone(),
            },
        ));
        return;
    }
    if let (Some(f), Some(x)) = (field, value.as_f64()) {
        let below = f.minimum.is_some_and(|m| x < m) || f.exclusive_minimum.is_some_and(|m| x <= m);
        let above = f.maximum.is_some_and(|m| x > m) || f.exclusive_maximum.is_some_and(|m| x >= m);
        if below || above {
            problems.push(FieldProblem::new(
                name,
                ProblemKind::OutOfRange {
                    value: value.clone(),
                    minimum: f.minimum,
                    maximum: f.maximum,
                    exclusive_minimum: f.exclusive_minimum,
                    exclusive_maximum: f.exclusive_maximum,
                },
            ));
        }
    }
    if let (FieldType::Array(items), Value::Array(values)) = (&ty.ty, value) {
        for (i, item) in values.iter().enumerate() {
            check_value(&format!("{name}[{i}]"), items, None, item, problems);
        }
    }
}
