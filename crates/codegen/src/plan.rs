//! What a module holds, decided from the parsed schema before any code is written: the Rust
//! name and type of every input, which defaults apply, the enums, the output's shape.

use proc_macro2::Ident;
use replicate_protocol::schema::{
    FieldType, InputField, InputSchema, OutputSchema, OutputShape, ValueType,
};
use serde_json::{Value, json};

use crate::docs::code;
use crate::names::{Names, ident};

/// A Rust type of an input or output value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ty {
    /// `String`.
    Str,
    /// `i64`.
    Int,
    /// `f64`.
    Num,
    /// `bool`.
    Bool,
    /// `serde_json::Value` (objects, and values of no or unknown type).
    Json,
    /// A generated enum (index into [`Module::enums`]).
    Enum(usize),
    /// `Vec<T>`.
    List(Box<Ty>),
}

/// A string enum of the schema, as a Rust enum.
#[derive(Debug, Clone)]
pub(crate) struct EnumDef {
    /// Its Rust name.
    pub ident: Ident,
    /// The schema component it comes from (`allOf: [{"$ref": ...}]`), if any.
    pub component: Option<String>,
    /// The input it was first met on (for its doc).
    pub first_field: String,
    /// Whether it is the type of that input's items (the input is a list).
    pub items: bool,
    /// The variants: Rust name and value, in the schema's order.
    pub variants: Vec<(Ident, String)>,
}

/// How an input gets its value.
#[derive(Debug, Clone)]
pub(crate) enum Presence {
    /// An argument of `builder(...)`.
    Required,
    /// Set by the builder to the schema's default (a JSON value that fits the type and range).
    Default(Value),
    /// `Option<T>`, left out of the JSON when `None`.
    Optional,
}

/// What a number must satisfy.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Bounds {
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub exclusive_minimum: Option<f64>,
    pub exclusive_maximum: Option<f64>,
}

impl Bounds {
    fn of(field: &InputField) -> Self {
        Bounds {
            minimum: field.minimum,
            maximum: field.maximum,
            exclusive_minimum: field.exclusive_minimum,
            exclusive_maximum: field.exclusive_maximum,
        }
    }

    fn is_empty(&self) -> bool {
        *self == Bounds::default()
    }
}

/// One input of a struct.
#[derive(Debug, Clone)]
pub(crate) struct FieldDef {
    /// The name the API uses.
    pub json: String,
    /// The Rust field (and setter) name.
    pub ident: Ident,
    /// Its type (without the `Option` of an optional input).
    pub ty: Ty,
    pub presence: Presence,
    /// Range checks (numbers, top level only, as the schema's validation does).
    pub bounds: Bounds,
    /// Allowed values of a non-enum field (or of its items, for a list): an `enum` of numbers,
    /// or of strings the field could not be an enum for.
    pub allowed: Vec<Value>,
    /// A secret (`format: password` or `x-cog-secret`): hidden from `Debug`.
    pub secret: bool,
    /// Lines of its doc comment (already safe).
    pub doc: Vec<String>,
}

/// `Input` or `TrainingInput`.
#[derive(Debug, Clone)]
pub(crate) struct InputDef {
    /// `Input` / `TrainingInput`.
    pub ident: Ident,
    /// `InputBuilder` / `TrainingInputBuilder`.
    pub builder: Ident,
    pub fields: Vec<FieldDef>,
    /// Whether it is the trainer's (`TrainingInput`).
    pub training: bool,
}

/// One property of an object output.
#[derive(Debug, Clone)]
pub(crate) struct OutputField {
    pub json: String,
    pub ident: Ident,
    pub ty: Ty,
    pub required: bool,
    pub title: Option<String>,
}

/// What an output type is.
#[derive(Debug, Clone)]
pub(crate) enum OutputKind {
    /// `pub type Output = T;` (a single value, a list, a plain iterator, unknown).
    Alias(Ty),
    /// A newtype over `Vec<String>` with `text()`: an iterator shown concatenated.
    Text,
    /// A struct of the object's properties.
    Struct(Vec<OutputField>),
}

/// `Output` or `TrainingOutput`.
#[derive(Debug, Clone)]
pub(crate) struct OutputDef {
    pub ident: Ident,
    pub kind: OutputKind,
    /// A phrase saying what the shape is, for the doc.
    pub shape: String,
    /// Whether it is the trainer's (`TrainingOutput`).
    pub training: bool,
}

/// The whole module.
#[derive(Debug, Clone)]
pub(crate) struct Module {
    pub enums: Vec<EnumDef>,
    pub input: InputDef,
    pub output: OutputDef,
    pub training: Option<(InputDef, OutputDef)>,
}

/// Builds a module from the parsed components.
pub(crate) struct Planner {
    types: Names,
    enums: Vec<EnumDef>,
}

impl Planner {
    pub(crate) fn new() -> Self {
        Planner {
            types: Names::for_types(),
            enums: Vec::new(),
        }
    }

    pub(crate) fn input(&mut self, schema: &InputSchema, name: &str, training: bool) -> InputDef {
        let mut fields_ns = Names::default();
        let fields = schema
            .fields
            .iter()
            .map(|f| self.field(schema, f, &mut fields_ns))
            .collect();
        InputDef {
            ident: ident(name),
            builder: ident(&format!("{name}Builder")),
            fields,
            training,
        }
    }

    pub(crate) fn output(
        &mut self,
        schema: Option<&OutputSchema>,
        name: &str,
        training: bool,
    ) -> OutputDef {
        let (kind, shape) = match schema.map(|s| &s.shape) {
            None => (
                OutputKind::Alias(Ty::Json),
                "the schema does not describe it, so it is any JSON value".to_owned(),
            ),
            Some(OutputShape::Single(v)) => (
                OutputKind::Alias(self.output_ty(v)),
                format!("a single {}", describe(v)),
            ),
            Some(OutputShape::Array(v)) => (
                OutputKind::Alias(Ty::List(Box::new(self.output_ty(v)))),
                format!("a list, each item a {}", describe(v)),
            ),
            Some(OutputShape::Iterator {
                items,
                concatenate: true,
            }) if items.ty == FieldType::String => (
                OutputKind::Text,
                "text produced piece by piece (an iterator shown concatenated)".to_owned(),
            ),
            Some(OutputShape::Iterator { items, .. }) => (
                OutputKind::Alias(Ty::List(Box::new(self.output_ty(items)))),
                format!(
                    "a list produced item by item, each item a {}",
                    describe(items)
                ),
            ),
            Some(OutputShape::Object(props)) => {
                let mut ns = Names::default();
                let fields = props
                    .iter()
                    .map(|p| OutputField {
                        json: p.name.clone(),
                        ident: ns.snake(&p.name),
                        ty: self.output_ty(&p.value),
                        required: p.required,
                        title: p.title.clone().filter(|t| !is_generated_title(t, &p.name)),
                    })
                    .collect();
                (
                    OutputKind::Struct(fields),
                    "an object of named values".to_owned(),
                )
            }
            Some(_) => (OutputKind::Alias(Ty::Json), "any JSON value".to_owned()),
        };
        OutputDef {
            ident: ident(name),
            kind,
            shape,
            training,
        }
    }

    pub(crate) fn finish(
        self,
        input: InputDef,
        output: OutputDef,
        training: Option<(InputDef, OutputDef)>,
    ) -> Module {
        Module {
            enums: self.enums,
            input,
            output,
            training,
        }
    }

    /// The Rust type of an output value: enums stay strings (a model may add values).
    fn output_ty(&self, v: &ValueType) -> Ty {
        match &v.ty {
            FieldType::String => Ty::Str,
            FieldType::Integer => Ty::Int,
            FieldType::Number => Ty::Num,
            FieldType::Boolean => Ty::Bool,
            FieldType::Array(items) => Ty::List(Box::new(self.output_ty(items))),
            _ => Ty::Json,
        }
    }

    fn field(&mut self, schema: &InputSchema, f: &InputField, names: &mut Names) -> FieldDef {
        let ident = names.snake(&f.name);
        let (ty, allowed) = self.input_ty(&f.value_type(), f.enum_name.as_deref(), &f.name, false);
        let secret = f.format.as_deref() == Some("password")
            || f.extra.get("x-cog-secret").and_then(Value::as_bool) == Some(true);
        let (presence, note) = self.presence(schema, f, &ty);
        let bounds = if matches!(ty, Ty::Int | Ty::Num) {
            Bounds::of(f)
        } else {
            Bounds::default()
        };
        // Through an enum's `$ref`, the field inherits the enum component's description
        // (pydantic's "An enumeration.") and title (the enum's name): not about the field.
        let own = |text: &Option<String>, inherited: Option<&str>| {
            text.clone()
                .filter(|t| f.enum_name.is_none() || Some(t.as_str()) != inherited)
        };
        let description = own(&f.description, Some("An enumeration."))
            .or_else(|| own(&f.title, f.enum_name.as_deref()))
            .filter(|d| !is_generated_title(d, &f.name));
        let mut facts = Vec::new();
        if f.required {
            facts.push("Required.".to_owned());
        }
        if f.is_file() {
            facts.push("A file: its URL (`https://…`, or a `data:` URI).".to_owned());
        } else if f.is_file_list() {
            facts.push("Files: their URLs (`https://…`, or `data:` URIs).".to_owned());
        }
        if secret {
            facts.push("A secret: `Debug` does not show it.".to_owned());
        }
        if let Some(range) = range_text(&bounds) {
            facts.push(range);
        }
        if !allowed.is_empty() {
            let list: Vec<String> = allowed.iter().map(|v| code(&v.to_string())).collect();
            facts.push(format!("One of {}.", list.join(", ")));
        }
        if let Some(default) = f.default.as_ref().filter(|d| !d.is_null()) {
            let shown = code(&default.to_string());
            facts.push(match (&presence, note) {
                (Presence::Default(_), _) => format!("Default: {shown}."),
                (_, Some(why)) => format!("Default: {shown} ({why})."),
                _ => format!("Default: {shown}."),
            });
        }
        let mut doc = match &description {
            Some(d) => crate::docs::doc_lines(d),
            None => Vec::new(),
        };
        if doc.is_empty() {
            doc.push(format!("The input {}.", code(&f.name)));
        }
        if !facts.is_empty() {
            doc.push(String::new());
            doc.push(facts.join(" "));
        }
        FieldDef {
            json: f.name.clone(),
            ident,
            ty,
            presence,
            bounds,
            allowed,
            secret,
            doc,
        }
    }

    /// The type of an input value, and the allowed values left to check (when they are not an
    /// enum type).
    fn input_ty(
        &mut self,
        v: &ValueType,
        enum_name: Option<&str>,
        field: &str,
        items: bool,
    ) -> (Ty, Vec<Value>) {
        let string_enum = !v.allowed.is_empty()
            && v.allowed.iter().all(Value::is_string)
            && matches!(v.ty, FieldType::String | FieldType::Any)
            && v.format.as_deref() != Some("uri");
        if string_enum {
            let values: Vec<&str> = v.allowed.iter().filter_map(Value::as_str).collect();
            return (
                Ty::Enum(self.enum_for(enum_name, field, items, &values)),
                Vec::new(),
            );
        }
        let ty = match &v.ty {
            FieldType::String => Ty::Str,
            FieldType::Integer => Ty::Int,
            FieldType::Number => Ty::Num,
            FieldType::Boolean => Ty::Bool,
            FieldType::Array(items) => {
                let (item, allowed) = self.input_ty(items, None, field, true);
                return (Ty::List(Box::new(item)), allowed);
            }
            _ => Ty::Json,
        };
        let allowed = match ty {
            Ty::Str | Ty::Int | Ty::Num => v.allowed.clone(),
            _ => Vec::new(),
        };
        (ty, allowed)
    }

    /// The enum for these values: the one already made for the same component, or a new one.
    fn enum_for(
        &mut self,
        component: Option<&str>,
        field: &str,
        items: bool,
        values: &[&str],
    ) -> usize {
        if let Some(i) = self.enums.iter().position(|e| {
            component.is_some()
                && e.component.as_deref() == component
                && e.variants
                    .iter()
                    .map(|(_, v)| v.as_str())
                    .eq(values.iter().copied())
        }) {
            return i;
        }
        let own_name = format!("{field}_item");
        let name = component.unwrap_or(if items { &own_name } else { field });
        let ident = self.types.camel(name, "T");
        let mut variant_names = Names::default();
        let mut variants = Vec::new();
        for value in values {
            if variants.iter().any(|(_, v): &(Ident, String)| v == value) {
                continue;
            }
            variants.push((variant_names.camel(value, "V"), (*value).to_owned()));
        }
        self.enums.push(EnumDef {
            ident,
            component: component.map(str::to_owned),
            first_field: field.to_owned(),
            items,
            variants,
        });
        self.enums.len() - 1
    }

    /// Whether the builder applies the field's default, and if not, why (for the doc).
    fn presence(
        &self,
        schema: &InputSchema,
        f: &InputField,
        ty: &Ty,
    ) -> (Presence, Option<&'static str>) {
        if f.required {
            return (Presence::Required, None);
        }
        let Some(default) = f.default.as_ref().filter(|d| !d.is_null()) else {
            return (Presence::Optional, None);
        };
        if f.is_file() || f.is_file_list() {
            // A file default names a file inside the model's container, not a URL to send.
            return (
                Presence::Optional,
                Some("the model's own, applied when unset"),
            );
        }
        let fits = self.fits(ty, default)
            && schema
                .check(&json!({ f.name.as_str(): default }))
                .iter()
                .all(|p| p.field != f.name && !p.field.starts_with(&format!("{}[", f.name)));
        if fits {
            (Presence::Default(default.clone()), None)
        } else {
            (
                Presence::Optional,
                Some("not valid for the schema, so not applied"),
            )
        }
    }

    /// Whether `value` can be written as a Rust value of `ty`.
    fn fits(&self, ty: &Ty, value: &Value) -> bool {
        match (ty, value) {
            (Ty::Str, Value::String(_)) | (Ty::Bool, Value::Bool(_)) | (Ty::Json, _) => true,
            (Ty::Int, v) => int_of(v).is_some(),
            (Ty::Num, Value::Number(n)) => n.as_f64().is_some_and(f64::is_finite),
            (Ty::Enum(i), Value::String(s)) => self.enums[*i].variants.iter().any(|(_, v)| v == s),
            (Ty::List(item), Value::Array(items)) => items.iter().all(|v| self.fits(item, v)),
            _ => false,
        }
    }
}

/// Whether `title` says no more than `name` (pydantic titles `go_fast` "Go Fast").
pub(crate) fn is_generated_title(title: &str, name: &str) -> bool {
    let letters = |s: &str| -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    letters(title) == letters(name)
}

/// A JSON number as an `i64`, when it is a whole number in range (`5` or `5.0`).
pub(crate) fn int_of(v: &Value) -> Option<i64> {
    let n = v.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let x = n.as_f64()?;
    // `i64::MAX as f64` rounds up to 2^63, which is out of range: compare strictly.
    (x.fract() == 0.0 && x >= -(2f64.powi(63)) && x < 2f64.powi(63)).then_some(x as i64)
}

/// A value's type in words: `file URL`, `string`, `array of integer`, `value of any type`.
fn describe(v: &ValueType) -> String {
    if v.is_file() {
        "file URL".to_owned()
    } else if v.ty == FieldType::Any {
        "value of any type".to_owned()
    } else {
        v.ty.to_string()
    }
}

/// "Must be at least 1 and at most 4." for the doc.
fn range_text(b: &Bounds) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(x) = b.minimum {
        parts.push(format!("at least {x}"));
    }
    if let Some(x) = b.exclusive_minimum {
        parts.push(format!("greater than {x}"));
    }
    if let Some(x) = b.maximum {
        parts.push(format!("at most {x}"));
    }
    if let Some(x) = b.exclusive_maximum {
        parts.push(format!("less than {x}"));
    }
    (!b.is_empty()).then(|| format!("Must be {}.", parts.join(" and ")))
}
