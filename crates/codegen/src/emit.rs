//! The module's Rust code, as tokens, from a [`Module`] plan.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};
use serde_json::Value;

use crate::docs::code;
use crate::names::camel_parts;
use crate::plan::{
    Bounds, EnumDef, FieldDef, InputDef, Module, OutputDef, OutputKind, Presence, Ty, int_of,
};
use crate::{Gate, Options};

/// What the emitter needs besides the plan.
pub(crate) struct Target<'a> {
    pub options: &'a Options,
    /// `owner/name`.
    pub model: &'a str,
    pub version: Option<&'a str>,
}

/// The whole module.
pub(crate) fn module(m: &Module, t: &Target<'_>) -> TokenStream {
    let mut out = TokenStream::new();
    if let Some(doc) = &t.options.module_doc {
        for line in crate::docs::doc_lines(doc) {
            let line = format!(" {line}");
            out.extend(quote!(#![doc = #line]));
        }
    }
    out.extend(constants(t));
    for e in &m.enums {
        out.extend(enum_def(e));
    }
    out.extend(input_error());
    out.extend(input(m, &m.input, t));
    out.extend(output(&m.output, t.model));
    if let Some((training_input, training_output)) = &m.training {
        out.extend(input(m, training_input, t));
        out.extend(output(training_output, t.model));
    }
    out.extend(run_fns(m, t));
    out
}

fn doc_attrs(lines: &[String]) -> TokenStream {
    let lines = lines.iter().map(|l| {
        if l.is_empty() {
            String::new()
        } else {
            format!(" {l}")
        }
    });
    quote!(#(#[doc = #lines])*)
}

/// Doc comment lines of this crate's own text: paragraphs (split on empty lines) wrapped at
/// [`WRAP`] columns.
fn doc(text: &str) -> TokenStream {
    let mut lines: Vec<String> = Vec::new();
    for (i, paragraph) in text.split("\n\n").enumerate() {
        if i > 0 {
            lines.push(String::new());
        }
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.len() + 1 + word.len() > WRAP {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    doc_attrs(&lines)
}

/// The width this crate's own doc text is wrapped at.
const WRAP: usize = 92;

fn constants(t: &Target<'_>) -> TokenStream {
    let model = t.model;
    let model_doc = doc(&format!(
        "The model these types were generated for, {}.",
        code(model)
    ));
    let (version_doc, version) = match t.version {
        Some(v) => (
            doc(&format!(
                "The version whose schema these types were generated from, {}: the typed run\nfunctions run it.",
                code(v)
            )),
            quote!(Some(#v)),
        ),
        None => (
            doc(
                "The version whose schema these types were generated from: `None`, it was not known,\nso the typed run functions run the model's latest version.",
            ),
            quote!(None),
        ),
    };
    quote! {
        #model_doc
        pub const MODEL: &str = #model;
        #version_doc
        pub const VERSION: Option<&str> = #version;
    }
}

fn enum_def(e: &EnumDef) -> TokenStream {
    let ident = &e.ident;
    let of = if e.items {
        format!("the items of the input {}", code(&e.first_field))
    } else {
        format!("the input {}", code(&e.first_field))
    };
    let head = doc(&match &e.component {
        Some(name) if *name != e.first_field => {
            format!("The values of {of} (the schema's enum {}).", code(name))
        }
        _ => format!("The values of {of}."),
    });
    let variants = e.variants.iter().map(|(v, value)| {
        let d = doc(&code(value));
        quote! {
            #d
            #[serde(rename = #value)]
            #v
        }
    });
    let names = e.variants.iter().map(|(v, _)| v);
    let arms = e
        .variants
        .iter()
        .map(|(v, value)| quote!(Self::#v => #value));
    let allow = if needs_variant_names_allow(e) {
        quote!(#[allow(clippy::enum_variant_names)])
    } else {
        TokenStream::new()
    };
    quote! {
        #head
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        #allow
        pub enum #ident {
            #(#variants,)*
        }

        impl #ident {
            /// Every value, in the schema's order.
            pub const ALL: &[Self] = &[#(Self::#names),*];

            /// The value as the API spells it.
            pub fn as_str(&self) -> &'static str {
                match self {
                    #(#arms,)*
                }
            }
        }

        impl ::std::fmt::Display for #ident {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    }
}

/// Whether clippy's `enum_variant_names` could fire: the variants share a first or last word,
/// or one contains the enum's name.
fn needs_variant_names_allow(e: &EnumDef) -> bool {
    let names: Vec<String> = e.variants.iter().map(|(v, _)| v.to_string()).collect();
    let enum_name = e.ident.to_string();
    if names.iter().any(|n| n.contains(&enum_name)) {
        return true;
    }
    if names.len() < 2 {
        return false;
    }
    let first = |n: &String| camel_parts(n).first().map(|s| (*s).to_owned());
    let last = |n: &String| camel_parts(n).last().map(|s| (*s).to_owned());
    let same = |f: &dyn Fn(&String) -> Option<String>| {
        let all: Vec<Option<String>> = names.iter().map(f).collect();
        all.windows(2).all(|w| w[0] == w[1])
    };
    same(&first) || same(&last)
}

fn input_error() -> TokenStream {
    quote! {
        /// An input value the schema does not allow, found by the builder's `build` or by
        /// `validate` (nothing is sent).
        #[derive(Debug, Clone, PartialEq)]
        pub struct InputError {
            /// The input's name, as the API spells it.
            pub field: &'static str,
            /// For an item of a list input, its index.
            pub index: Option<usize>,
            /// What is wrong.
            pub problem: InputProblem,
        }

        /// What is wrong with an input value.
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum InputProblem {
            /// Less than the schema's `minimum`.
            BelowMinimum {
                /// The value.
                value: f64,
                /// The smallest value allowed.
                minimum: f64,
            },
            /// Greater than the schema's `maximum`.
            AboveMaximum {
                /// The value.
                value: f64,
                /// The largest value allowed.
                maximum: f64,
            },
            /// Not greater than the schema's `exclusiveMinimum`.
            NotAboveExclusiveMinimum {
                /// The value.
                value: f64,
                /// The value must be greater than this.
                exclusive_minimum: f64,
            },
            /// Not less than the schema's `exclusiveMaximum`.
            NotBelowExclusiveMaximum {
                /// The value.
                value: f64,
                /// The value must be less than this.
                exclusive_maximum: f64,
            },
            /// Not among the schema's allowed values.
            NotAllowed {
                /// The value.
                value: String,
                /// The allowed values.
                allowed: &'static [&'static str],
            },
            /// Not a finite number (JSON has no NaN or infinity).
            NotFinite,
        }

        impl ::std::fmt::Display for InputError {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.field)?;
                if let Some(i) = self.index {
                    write!(f, "[{i}]")?;
                }
                match &self.problem {
                    InputProblem::BelowMinimum { value, minimum } => {
                        write!(f, ": {value} is less than the minimum {minimum}")
                    }
                    InputProblem::AboveMaximum { value, maximum } => {
                        write!(f, ": {value} is greater than the maximum {maximum}")
                    }
                    InputProblem::NotAboveExclusiveMinimum { value, exclusive_minimum } => {
                        write!(f, ": {value} must be greater than {exclusive_minimum}")
                    }
                    InputProblem::NotBelowExclusiveMaximum { value, exclusive_maximum } => {
                        write!(f, ": {value} must be less than {exclusive_maximum}")
                    }
                    InputProblem::NotAllowed { value, allowed } => {
                        write!(f, ": {value} is not one of {}", allowed.join(", "))
                    }
                    InputProblem::NotFinite => f.write_str(": not a finite number"),
                }
            }
        }

        impl ::std::error::Error for InputError {}
    }
}

fn rust_ty(ty: &Ty, m: &Module) -> TokenStream {
    match ty {
        Ty::Str => quote!(String),
        Ty::Int => quote!(i64),
        Ty::Num => quote!(f64),
        Ty::Bool => quote!(bool),
        Ty::Json => quote!(::serde_json::Value),
        Ty::Enum(i) => {
            let id = &m.enums[*i].ident;
            quote!(#id)
        }
        Ty::List(item) => {
            let item = rust_ty(item, m);
            quote!(Vec<#item>)
        }
    }
}

/// The type a setter or builder argument takes (strings as `impl Into<String>`), and the
/// expression storing `value` of it.
fn param(ty: &Ty, m: &Module, value: &TokenStream) -> (TokenStream, TokenStream) {
    match ty {
        Ty::Str => (quote!(impl Into<String>), quote!(#value.into())),
        other => (rust_ty(other, m), value.clone()),
    }
}

fn input(m: &Module, def: &InputDef, t: &Target<'_>) -> TokenStream {
    let ident = &def.ident;
    let builder = &def.builder;
    let model = code(t.model);
    let struct_doc = doc(&format!(
        "The {what} of {model}, its fields in the schema's order. [`{ident}::builder`] takes\n\
         the required inputs and applies the schema's defaults; [`{builder}::build`] checks the\n\
         ranges and allowed values.",
        what = if def.training {
            "training input"
        } else {
            "input"
        },
    ));
    let has_secret = def.fields.iter().any(|f| f.secret);
    let derive_debug = if has_secret {
        TokenStream::new()
    } else {
        quote!(Debug,)
    };
    let fields = def.fields.iter().map(|f| {
        let id = &f.ident;
        let d = doc_attrs(&f.doc);
        let ty = rust_ty(&f.ty, m);
        let mut serde = rename(id, &f.json);
        match f.presence {
            Presence::Optional => {
                serde.push(quote!(skip_serializing_if = "Option::is_none"));
                let serde = serde_attr(&serde);
                quote!(#d #serde pub #id: Option<#ty>)
            }
            _ => {
                let serde = serde_attr(&serde);
                quote!(#d #serde pub #id: #ty)
            }
        }
    });
    let debug = if has_secret {
        debug_impl(def)
    } else {
        TokenStream::new()
    };

    let required: Vec<&FieldDef> = def
        .fields
        .iter()
        .filter(|f| matches!(f.presence, Presence::Required))
        .collect();
    let args = required.iter().map(|f| {
        let id = &f.ident;
        let (ty, _) = param(&f.ty, m, &quote!(#id));
        quote!(#id: #ty)
    });
    let inits = def.fields.iter().map(|f| {
        let id = &f.ident;
        match &f.presence {
            Presence::Required => match f.ty {
                Ty::Str => quote!(#id: #id.into()),
                _ => quote!(#id),
            },
            Presence::Default(v) => {
                let value = value_tokens(&f.ty, v, m);
                quote!(#id: #value)
            }
            Presence::Optional => quote!(#id: None),
        }
    });
    let mut builder_allows = Vec::new();
    if required.len() > 7 {
        builder_allows.push(quote!(clippy::too_many_arguments));
    }
    if def
        .fields
        .iter()
        .any(|f| matches!(&f.presence, Presence::Default(v) if default_near_constant(&f.ty, v)))
    {
        builder_allows.push(quote!(clippy::approx_constant));
    }
    let builder_allow = allow(&builder_allows);
    let required_names: Vec<String> = required.iter().map(|f| code(&f.json)).collect();
    let builder_doc = doc(&if required_names.is_empty() {
        format!(
            "Starts an input with every value at the schema's default (or unset); set others on\n\
             the [`{builder}`], then [`{builder}::build`]."
        )
    } else {
        format!(
            "Starts an input with the required values ({}), the others at the schema's\n\
             defaults (or unset); set others on the [`{builder}`], then [`{builder}::build`].",
            required_names.join(", ")
        )
    });

    let checks: Vec<TokenStream> = def.fields.iter().filter_map(field_checks).collect();
    let validate_allow = allow(
        &def.fields
            .iter()
            .any(checks_near_constant)
            .then(|| quote!(clippy::approx_constant))
            .into_iter()
            .collect::<Vec<_>>(),
    );

    let setters = def
        .fields
        .iter()
        .filter(|f| !matches!(f.presence, Presence::Required))
        .map(|f| {
            let id = &f.ident;
            let d = doc_attrs(&f.doc);
            let (ty, store) = param(&f.ty, m, &quote!(value));
            let store = match f.presence {
                Presence::Optional => quote!(Some(#store)),
                _ => store,
            };
            quote! {
                #d
                pub fn #id(mut self, value: #ty) -> Self {
                    self.input.#id = #store;
                    self
                }
            }
        });
    let setter_allow = allow(&setter_allows(def));
    let builder_struct_doc = doc(&format!(
        "Builds an [`{ident}`]: from [`{ident}::builder`], one method per optional input, then\n\
         [`{builder}::build`]."
    ));
    let build_doc = doc(&format!(
        "The input, once [`{ident}::validate`] accepts it."
    ));
    let validate_doc = doc(&format!(
        "Checks the values against the schema's ranges and allowed values (the types and the\n\
         required inputs are checked by the compiler). The typed {} functions call it too.",
        if def.training { "train" } else { "run" }
    ));

    quote! {
        #struct_doc
        #[derive(#derive_debug Clone, PartialEq, ::serde::Serialize)]
        pub struct #ident {
            #(#fields,)*
        }

        #debug

        impl #ident {
            #builder_doc
            #builder_allow
            pub fn builder(#(#args),*) -> #builder {
                #builder {
                    input: #ident {
                        #(#inits,)*
                    },
                }
            }

            #validate_doc
            #validate_allow
            pub fn validate(&self) -> Result<(), InputError> {
                #(#checks)*
                Ok(())
            }
        }

        #builder_struct_doc
        #[derive(Debug, Clone, PartialEq)]
        #[must_use]
        pub struct #builder {
            input: #ident,
        }

        #setter_allow
        impl #builder {
            #(#setters)*

            #build_doc
            pub fn build(self) -> Result<#ident, InputError> {
                self.input.validate()?;
                Ok(self.input)
            }
        }
    }
}

/// `rename = "..."` when the Rust name is not the API's.
fn rename(id: &proc_macro2::Ident, json: &str) -> Vec<TokenStream> {
    if *id == json {
        Vec::new()
    } else {
        vec![quote!(rename = #json)]
    }
}

/// One `#[serde(...)]` of these arguments, or nothing.
fn serde_attr(args: &[TokenStream]) -> TokenStream {
    if args.is_empty() {
        TokenStream::new()
    } else {
        quote!(#[serde(#(#args),*)])
    }
}

fn allow(lints: &[TokenStream]) -> TokenStream {
    if lints.is_empty() {
        TokenStream::new()
    } else {
        quote!(#[allow(#(#lints),*)])
    }
}

/// Lints a setter's name can trip: a name of an operator trait's method taking `self` and one
/// argument (`add`), or a conversion prefix whose convention wants another `self`.
fn setter_allows(def: &InputDef) -> Vec<TokenStream> {
    const OPERATOR_METHODS: &[&str] = &[
        "add", "sub", "mul", "div", "rem", "neg", "not", "bitand", "bitor", "bitxor", "shl", "shr",
    ];
    let names: Vec<String> = def
        .fields
        .iter()
        .filter(|f| !matches!(f.presence, Presence::Required))
        .map(|f| f.ident.to_string())
        .collect();
    let mut lints = Vec::new();
    if names.iter().any(|n| OPERATOR_METHODS.contains(&n.as_str())) {
        lints.push(quote!(clippy::should_implement_trait));
    }
    if names.iter().any(|n| {
        ["as_", "to_", "is_", "from_"]
            .iter()
            .any(|p| n.starts_with(p))
    }) {
        lints.push(quote!(clippy::wrong_self_convention));
    }
    lints
}

/// `Debug` that shows every field but the secrets.
fn debug_impl(def: &InputDef) -> TokenStream {
    let ident = &def.ident;
    let name = ident.to_string();
    let fields = def.fields.iter().map(|f| {
        let id = &f.ident;
        let label = id.to_string();
        match (f.secret, &f.presence) {
            (false, _) => quote!(.field(#label, &self.#id)),
            (true, Presence::Optional) => {
                quote!(.field(#label, &self.#id.as_ref().map(|_| "<redacted>")))
            }
            (true, _) => quote!(.field(#label, &"<redacted>")),
        }
    });
    quote! {
        impl ::std::fmt::Debug for #ident {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(#name)
                    #(#fields)*
                    .finish()
            }
        }
    }
}

/// The checks of one field in `validate`, if it has any. An optional value is checked as
/// `if let Some(v) = self.x.filter(|&v| bad(v)) { return Err(...) }` (or `is_some_and` when
/// the error does not show the value), one `if` per check: no nested `if` for clippy's
/// `collapsible_if` to find, in any edition.
fn field_checks(f: &FieldDef) -> Option<TokenStream> {
    let id = &f.ident;
    let checks = match &f.ty {
        Ty::Int | Ty::Num | Ty::Str => {
            let optional = matches!(f.presence, Presence::Optional);
            let value = match (&f.ty, optional) {
                (_, true) => quote!(v),
                (Ty::Str, false) => quote!(self.#id.as_str()),
                (_, false) => quote!(self.#id),
            };
            let option = match f.ty {
                Ty::Str => quote!(self.#id.as_deref()),
                _ => quote!(self.#id),
            };
            value_checks(f, &quote!(None), &f.ty, &f.bounds, &value)
                .into_iter()
                .map(
                    |Check {
                         bad,
                         err,
                         shows_value,
                     }| match (optional, shows_value) {
                        (true, false) => quote!(if #option.is_some_and(|v| #bad) { #err }),
                        (true, true) => quote!(if let Some(v) = #option.filter(|&v| #bad) { #err }),
                        (false, _) => quote!(if #bad { #err }),
                    },
                )
                .collect::<TokenStream>()
        }
        Ty::List(item) if matches!(**item, Ty::Int | Ty::Num | Ty::Str) => {
            let (pattern, value) = match **item {
                Ty::Str => (quote!(v), quote!(v.as_str())),
                _ => (quote!(&v), quote!(v)),
            };
            let checks: TokenStream =
                value_checks(f, &quote!(Some(i)), item, &Bounds::default(), &value)
                    .into_iter()
                    .map(|Check { bad, err, .. }| quote!(if #bad { #err }))
                    .collect();
            if checks.is_empty() {
                return None;
            }
            match f.presence {
                Presence::Optional => quote! {
                    if let Some(list) = &self.#id {
                        for (i, #pattern) in list.iter().enumerate() { #checks }
                    }
                },
                _ => quote! {
                    for (i, #pattern) in self.#id.iter().enumerate() { #checks }
                },
            }
        }
        _ => TokenStream::new(),
    };
    (!checks.is_empty()).then_some(checks)
}

/// One check of a value.
struct Check {
    /// When it fails (an expression of the value).
    bad: TokenStream,
    /// The `return Err(...)` then.
    err: TokenStream,
    /// Whether `err` shows the value.
    shows_value: bool,
}

/// The checks of one value (`value`, an `i64`, `f64` or `&str` expression): finite, in
/// range, allowed.
fn value_checks(
    f: &FieldDef,
    index: &TokenStream,
    ty: &Ty,
    bounds: &Bounds,
    value: &TokenStream,
) -> Vec<Check> {
    let field = &f.json;
    let fail = |problem: TokenStream| {
        quote! {
            return Err(InputError {
                field: #field,
                index: #index,
                problem: InputProblem::#problem,
            });
        }
    };
    let mut out = Vec::new();
    if *ty == Ty::Num {
        out.push(Check {
            bad: quote!(!#value.is_finite()),
            err: fail(quote!(NotFinite)),
            shows_value: false,
        });
    }
    let (as_f64, compared) = match ty {
        Ty::Int => (quote!(#value as f64), quote!((#value as f64))),
        _ => (value.clone(), value.clone()),
    };
    let mut bound = |limit: Option<f64>, op: TokenStream, variant: &str, key: &str| {
        let Some(limit) = limit else { return };
        // At `i64::MIN` or `i64::MAX` an integer comparison would be always true or false
        // (clippy's `absurd_extreme_comparisons`): compare as floats there.
        let inner = int_of(&Value::from(limit)).filter(|i| *i != i64::MIN && *i != i64::MAX);
        let bad = match (ty, inner) {
            (Ty::Int, Some(i)) => {
                let lit = int_tokens(i);
                quote!(#value #op #lit)
            }
            _ => {
                let lit = float_tokens(limit);
                quote!(#compared #op #lit)
            }
        };
        let variant = format_ident!("{variant}");
        let key = format_ident!("{key}");
        let lit = float_tokens(limit);
        out.push(Check {
            bad,
            err: fail(quote!(#variant { value: #as_f64, #key: #lit })),
            shows_value: true,
        });
    };
    bound(bounds.minimum, quote!(<), "BelowMinimum", "minimum");
    bound(
        bounds.exclusive_minimum,
        quote!(<=),
        "NotAboveExclusiveMinimum",
        "exclusive_minimum",
    );
    bound(bounds.maximum, quote!(>), "AboveMaximum", "maximum");
    bound(
        bounds.exclusive_maximum,
        quote!(>=),
        "NotBelowExclusiveMaximum",
        "exclusive_maximum",
    );
    let allowed: Vec<(TokenStream, String)> = f
        .allowed
        .iter()
        .filter_map(|v| match (ty, v) {
            (Ty::Str, Value::String(s)) => Some((quote!(#s), s.clone())),
            (Ty::Int, v) => int_of(v).map(|i| (int_tokens(i), i.to_string())),
            (Ty::Num, Value::Number(n)) => n
                .as_f64()
                .filter(|x| x.is_finite())
                .map(|x| (float_tokens(x), n.to_string())),
            _ => None,
        })
        .collect();
    if !allowed.is_empty() {
        let lits = allowed.iter().map(|(t, _)| t);
        let texts = allowed.iter().map(|(_, s)| s);
        out.push(Check {
            bad: quote!(![#(#lits),*].contains(&#value)),
            err: fail(quote!(NotAllowed {
                value: #value.to_string(),
                allowed: &[#(#texts),*],
            })),
            shows_value: true,
        });
    }
    out
}

/// Whether a float written as a literal could be taken by clippy's `approx_constant` (a deny
/// lint) for a `std::f64::consts` value: within 1% of one (clippy wants a few matching digits,
/// so this errs on the side of allowing).
fn near_constant(x: f64) -> bool {
    use std::f64::consts::*;
    const CONSTANTS: &[f64] = &[
        E,
        FRAC_1_PI,
        FRAC_1_SQRT_2,
        FRAC_2_PI,
        FRAC_2_SQRT_PI,
        FRAC_PI_2,
        FRAC_PI_3,
        FRAC_PI_4,
        FRAC_PI_6,
        FRAC_PI_8,
        LN_10,
        LN_2,
        LOG10_E,
        LOG2_E,
        LOG2_10,
        LOG10_2,
        PI,
        SQRT_2,
        TAU,
    ];
    CONSTANTS.iter().any(|c| ((x.abs() - c) / c).abs() < 0.01)
}

/// Whether the checks of `f` write a float literal near a constant (see [`near_constant`]).
fn checks_near_constant(f: &FieldDef) -> bool {
    let bounds = [
        f.bounds.minimum,
        f.bounds.maximum,
        f.bounds.exclusive_minimum,
        f.bounds.exclusive_maximum,
    ];
    bounds.into_iter().flatten().any(near_constant)
        || f.allowed
            .iter()
            .filter_map(Value::as_f64)
            .any(near_constant)
}

/// Whether the default `v` of type `ty` is written with a float literal near a constant.
fn default_near_constant(ty: &Ty, v: &Value) -> bool {
    match (ty, v) {
        (Ty::Num, v) => v.as_f64().is_some_and(near_constant),
        (Ty::List(item), Value::Array(items)) => {
            items.iter().any(|v| default_near_constant(item, v))
        }
        (Ty::Json, v) => json_near_constant(v),
        _ => false,
    }
}

fn json_near_constant(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64() && n.as_f64().is_some_and(near_constant),
        Value::Array(items) => items.iter().any(json_near_constant),
        Value::Object(map) => map.values().any(json_near_constant),
        _ => false,
    }
}

/// An integer literal (negative ones as a negation, which every context here accepts).
fn int_tokens(i: i64) -> TokenStream {
    let lit = Literal::u64_unsuffixed(i.unsigned_abs());
    if i < 0 { quote!(-#lit) } else { quote!(#lit) }
}

/// A float literal; `x` must be finite.
fn float_tokens(x: f64) -> TokenStream {
    let lit = Literal::f64_unsuffixed(x.abs());
    if x.is_sign_negative() && x != 0.0 {
        quote!(-#lit)
    } else {
        quote!(#lit)
    }
}

/// The Rust value of a default (the plan checked that it fits).
fn value_tokens(ty: &Ty, v: &Value, m: &Module) -> TokenStream {
    match (ty, v) {
        (Ty::Str, Value::String(s)) => quote!(String::from(#s)),
        (Ty::Int, v) => int_tokens(int_of(v).unwrap_or_default()),
        (Ty::Num, v) => float_tokens(v.as_f64().filter(|x| x.is_finite()).unwrap_or_default()),
        (Ty::Bool, Value::Bool(b)) => quote!(#b),
        (Ty::Enum(i), Value::String(s)) => {
            let e = &m.enums[*i];
            let ident = &e.ident;
            match e.variants.iter().find(|(_, value)| value == s) {
                Some((variant, _)) => quote!(#ident::#variant),
                None => quote!(#ident::ALL[0]),
            }
        }
        (Ty::List(_), Value::Array(items)) if items.is_empty() => quote!(Vec::new()),
        (Ty::List(item), Value::Array(items)) => {
            let items = items.iter().map(|v| value_tokens(item, v, m));
            quote!(vec![#(#items),*])
        }
        (_, v) => {
            let json = json_tokens(v);
            quote!(::serde_json::json!(#json))
        }
    }
}

/// A JSON value as the input of `serde_json::json!`.
fn json_tokens(v: &Value) -> TokenStream {
    match v {
        Value::Null => quote!(null),
        Value::Bool(b) => quote!(#b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                int_tokens(i)
            } else if let Some(u) = n.as_u64() {
                let lit = Literal::u64_unsuffixed(u);
                quote!(#lit)
            } else {
                float_tokens(n.as_f64().filter(|x| x.is_finite()).unwrap_or_default())
            }
        }
        Value::String(s) => quote!(#s),
        Value::Array(items) => {
            let items = items.iter().map(json_tokens);
            quote!([#(#items),*])
        }
        Value::Object(map) => {
            let entries = map.iter().map(|(k, v)| {
                let v = json_tokens(v);
                quote!(#k: #v)
            });
            quote!({ #(#entries),* })
        }
    }
}

fn output(def: &OutputDef, model: &str) -> TokenStream {
    let ident = &def.ident;
    let what = if def.training {
        "training output"
    } else {
        "output"
    };
    let head = format!("The {what} of {}: {}.", code(model), def.shape);
    match &def.kind {
        OutputKind::Alias(ty) => {
            let d = doc(&head);
            let ty = alias_ty(ty);
            quote! {
                #d
                pub type #ident = #ty;
            }
        }
        OutputKind::Text => {
            let d = doc(&format!(
                "{head}\n\n[`{ident}::text`] joins the pieces; `Display` writes them."
            ));
            quote! {
                #d
                #[derive(Debug, Clone, PartialEq, Eq, Default, ::serde::Serialize, ::serde::Deserialize)]
                #[serde(transparent)]
                pub struct #ident(
                    /// The pieces, in order.
                    pub Vec<String>,
                );

                impl #ident {
                    /// The whole text: the pieces joined.
                    pub fn text(&self) -> String {
                        self.0.concat()
                    }
                }

                impl ::std::fmt::Display for #ident {
                    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        self.0.iter().try_for_each(|piece| f.write_str(piece))
                    }
                }
            }
        }
        OutputKind::Struct(fields) => {
            let d = doc(&head);
            let fields = fields.iter().map(|f| {
                let id = &f.ident;
                let ty = alias_ty(&f.ty);
                let text = match &f.title {
                    Some(title) => {
                        let title = crate::docs::doc_lines(title).join(" ");
                        format!("{title} ({}).", code(&f.json))
                    }
                    None => format!("The value {}.", code(&f.json)),
                };
                let d = doc(&if f.required {
                    text
                } else {
                    format!("{text} `None` when the model leaves it out.")
                });
                let mut serde = rename(id, &f.json);
                if f.required {
                    let serde = serde_attr(&serde);
                    quote!(#d #serde pub #id: #ty)
                } else {
                    serde.push(quote!(default));
                    serde.push(quote!(skip_serializing_if = "Option::is_none"));
                    let serde = serde_attr(&serde);
                    quote!(#d #serde pub #id: Option<#ty>)
                }
            });
            quote! {
                #d
                #[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::serde::Deserialize)]
                pub struct #ident {
                    #(#fields,)*
                }
            }
        }
    }
}

/// An output type (never an enum).
fn alias_ty(ty: &Ty) -> TokenStream {
    match ty {
        Ty::Str => quote!(String),
        Ty::Int => quote!(i64),
        Ty::Num => quote!(f64),
        Ty::Bool => quote!(bool),
        Ty::List(item) => {
            let item = alias_ty(item);
            quote!(Vec<#item>)
        }
        Ty::Json | Ty::Enum(_) => quote!(::serde_json::Value),
    }
}

/// One client's functions: its crate, the gate, and whether they are `async`.
struct Client<'a> {
    krate: TokenStream,
    gate: &'a Gate,
    asynchronous: bool,
    label: &'static str,
}

fn run_fns(m: &Module, t: &Target<'_>) -> TokenStream {
    let clients = [
        Client {
            krate: quote!(::replicate_ureq),
            gate: &t.options.blocking,
            asynchronous: false,
            label: "the blocking client (`replicate-ureq`)",
        },
        Client {
            krate: quote!(::replicate_reqwest),
            gate: &t.options.async_client,
            asynchronous: true,
            label: "the async client (`replicate-reqwest`)",
        },
    ];
    let mut out = TokenStream::new();
    for c in &clients {
        let cfg = match c.gate {
            Gate::Omit => continue,
            Gate::Always => TokenStream::new(),
            Gate::Feature(feature) => quote!(#[cfg(feature = #feature)]),
        };
        out.extend(run_fn(c, &cfg, t));
        if let (Some(_), Some(version)) = (&m.training, t.version) {
            out.extend(train_fn(c, &cfg, t, version));
        }
    }
    out
}

/// The lines every typed function starts with: validate, then serialize.
fn checked_value(krate: &TokenStream) -> TokenStream {
    quote! {
        input
            .validate()
            .map_err(|e| #krate::Error::InvalidInput(e.to_string()))?;
        let value = ::serde_json::to_value(input)
            .map_err(|e| #krate::Error::InvalidInput(e.to_string()))?;
    }
}

fn run_fn(c: &Client<'_>, cfg: &TokenStream, t: &Target<'_>) -> TokenStream {
    let krate = &c.krate;
    let target = match t.version {
        Some(v) => format!("{}:{v}", t.model),
        None => t.model.to_owned(),
    };
    let what = match t.version {
        Some(v) => format!("version {} of {}", code(v), code(t.model)),
        None => format!("the latest version of {}", code(t.model)),
    };
    let d = doc(&format!(
        "Runs {what} on `input` with {}, waits for it with the\n\
         client's wait options, and returns its output.\n\n\
         The input is checked first ([`Input::validate`]): a value the schema refuses is\n\
         `Error::InvalidInput`, and nothing is sent. An output that is not an [`Output`] is\n\
         `Error::Output`; a failed or canceled prediction is the client's error for it.",
        c.label
    ));
    let checked = checked_value(krate);
    let (name, asyncness, wait) = if c.asynchronous {
        (quote!(run_async), quote!(async), quote!(.await))
    } else {
        (quote!(run), TokenStream::new(), TokenStream::new())
    };
    quote! {
        #d
        #cfg
        pub #asyncness fn #name(
            client: &#krate::Client,
            input: &Input,
        ) -> Result<Output, #krate::Error> {
            #checked
            let create = #krate::CreatePrediction::new(#krate::Target::parse(#target)?).input(value);
            client.run_with(create, client.wait_options())#wait?.output_as::<Output>()
        }
    }
}

fn train_fn(c: &Client<'_>, cfg: &TokenStream, t: &Target<'_>, version: &str) -> TokenStream {
    let krate = &c.krate;
    let (owner, name) = t.model.split_once('/').unwrap_or((t.model, ""));
    let d = doc(&format!(
        "Starts a training of version {} of {} on `input` with {}: the\n\
         trained weights become a new version of `destination` (`owner/name`, a model of\n\
         yours). Returns the training at once (a create is sent once, never repeated).\n\n\
         Wait for it as for any training, then read its output with\n\
         `training.output_as::<TrainingOutput>()`. The input is checked first\n\
         ([`TrainingInput::validate`]): a value the schema refuses is `Error::InvalidInput`, and\n\
         nothing is sent.",
        code(version),
        code(t.model),
        c.label
    ));
    let checked = checked_value(krate);
    let (fn_name, asyncness, wait) = if c.asynchronous {
        (quote!(train_async), quote!(async), quote!(.await))
    } else {
        (quote!(train), TokenStream::new(), TokenStream::new())
    };
    quote! {
        #d
        #cfg
        pub #asyncness fn #fn_name(
            client: &#krate::Client,
            destination: &str,
            input: &TrainingInput,
        ) -> Result<#krate::Prediction, #krate::Error> {
            #checked
            let create = #krate::protocol::api::CreateTraining::new(#owner, #name, #version, destination)
                .input(value);
            client.execute(create)#wait
        }
    }
}
