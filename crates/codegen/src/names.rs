//! Rust identifiers from schema names: field names in `snake_case`, types and enum variants in
//! `UpperCamelCase`, never a keyword, never a name the generated module already uses.

use std::collections::BTreeSet;

use heck::{ToSnakeCase, ToUpperCamelCase};
use proc_macro2::{Ident, Span};

/// Keywords of Rust 2024 (strict and reserved): not usable as plain identifiers.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "Self", "static", "struct", "super", "trait", "true", "try", "type",
    "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Field names taken by the builder's own method (`build`): such a field gets a trailing `_`.
const RESERVED_FIELDS: &[&str] = &["build"];

/// Type names a generated type must not take: the module's own items, and the prelude's names
/// the generated code uses unqualified (an enum called `Result` would shadow `Result`).
const RESERVED_TYPES: &[&str] = &[
    "Input",
    "InputBuilder",
    "InputError",
    "InputProblem",
    "Output",
    "TrainingInput",
    "TrainingInputBuilder",
    "TrainingOutput",
    "String",
    "Vec",
    "Option",
    "Some",
    "None",
    "Result",
    "Ok",
    "Err",
    "Box",
    "Default",
    "Clone",
    "Copy",
    "Debug",
    "Display",
    "Eq",
    "PartialEq",
    "Hash",
    "Into",
    "From",
    "Iterator",
    "Send",
    "Sync",
    "Sized",
    "ToString",
];

/// A set of names already used in one namespace; [`Names::snake`] and [`Names::camel`] hand out
/// fresh ones.
#[derive(Debug, Default)]
pub(crate) struct Names {
    taken: BTreeSet<String>,
}

impl Names {
    /// A namespace for the module's types.
    pub(crate) fn for_types() -> Self {
        Names {
            taken: RESERVED_TYPES.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// A fresh `snake_case` identifier for `raw` (a field name): ASCII letters and digits, a
    /// keyword gets a trailing `_`, a leading digit a `field_` prefix.
    pub(crate) fn snake(&mut self, raw: &str) -> Ident {
        let mut base = ascii_words(raw).to_snake_case();
        if base.is_empty() || base.chars().all(|c| c == '_') {
            base = "field".to_owned();
        }
        if base.starts_with(|c: char| c.is_ascii_digit()) {
            base = format!("field_{base}");
        }
        if KEYWORDS.contains(&base.as_str()) || RESERVED_FIELDS.contains(&base.as_str()) {
            base.push('_');
        }
        self.fresh(base, "_")
    }

    /// A fresh `UpperCamelCase` identifier for `raw` (a schema or enum value name); a leading
    /// digit gets `prefix`, a reserved name the suffix `Choice`.
    pub(crate) fn camel(&mut self, raw: &str, prefix: &str) -> Ident {
        let mut base = camel_words(raw);
        if base.is_empty() {
            base = "Empty".to_owned();
        }
        // Clippy's `upper_case_acronyms` refuses names of three or more capitals (`ABC`).
        if base.len() > 2 && base.chars().all(|c| c.is_ascii_uppercase()) {
            base = base[..1].to_owned() + &base[1..].to_ascii_lowercase();
        }
        if base.starts_with(|c: char| c.is_ascii_digit()) {
            base = format!("{prefix}{base}");
        }
        if KEYWORDS.contains(&base.as_str()) || RESERVED_TYPES.contains(&base.as_str()) {
            base.push_str("Choice");
        }
        // `Name_2` would not be camel case after a letter; `V1_1_2` is after a digit.
        let sep = if base.ends_with(|c: char| c.is_ascii_digit()) {
            "_"
        } else {
            ""
        };
        self.fresh(base, sep)
    }

    fn fresh(&mut self, base: String, sep: &str) -> Ident {
        let mut name = base.clone();
        let mut n = 2;
        while self.taken.contains(&name) {
            name = format!("{base}{sep}{n}");
            n += 1;
        }
        self.taken.insert(name.clone());
        ident(&name)
    }
}

/// An identifier (checked by construction to be a valid, non-keyword one).
pub(crate) fn ident(name: &str) -> Ident {
    Ident::new(name, Span::call_site())
}

/// `raw` with every run of characters other than ASCII letters and digits made one `_`.
fn ascii_words(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out
}

/// `raw` in `UpperCamelCase`, its words being its runs of ASCII letters and digits; two words
/// that meet digit to digit keep a `_` between them (`1:1` is `1_1`, not `11`).
fn camel_words(raw: &str) -> String {
    let mut out = String::new();
    for word in raw
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let word = word.to_upper_camel_case();
        if out.ends_with(|c: char| c.is_ascii_digit())
            && word.starts_with(|c: char| c.is_ascii_digit())
        {
            out.push('_');
        }
        out.push_str(&word);
    }
    out
}

/// The words of a `CamelCase` name (`OutputFormat` is `Output`, `Format`).
pub(crate) fn camel_parts(name: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, c) in name.char_indices().skip(1) {
        if c.is_ascii_uppercase() || c == '_' {
            parts.push(&name[start..i]);
            start = i;
        }
    }
    parts.push(&name[start..]);
    parts
        .into_iter()
        .map(|p| p.trim_start_matches('_'))
        .filter(|p| !p.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_names_are_identifiers() {
        let mut n = Names::default();
        assert_eq!(n.snake("Go Fast").to_string(), "go_fast");
        assert_eq!(n.snake("type").to_string(), "type_");
        assert_eq!(n.snake("1st").to_string(), "field_1st");
        assert_eq!(n.snake("build").to_string(), "build_");
        assert_eq!(n.snake("go-fast").to_string(), "go_fast_2");
        assert_eq!(n.snake("température").to_string(), "temp_rature");
        assert_eq!(n.snake("").to_string(), "field");
        assert_eq!(n.snake("self").to_string(), "self_");
        assert_eq!(n.snake("gen").to_string(), "gen_");
    }

    #[test]
    fn camel_names_are_identifiers() {
        let mut n = Names::default();
        assert_eq!(n.camel("1:1", "V").to_string(), "V1_1");
        assert_eq!(n.camel("11", "V").to_string(), "V11");
        assert_eq!(n.camel("0.25", "V").to_string(), "V0_25");
        assert_eq!(n.camel("plain text", "V").to_string(), "PlainText");
        assert_eq!(n.camel("large-v3", "V").to_string(), "LargeV3");
        assert_eq!(n.camel("png", "V").to_string(), "Png");
        assert_eq!(n.camel("PNG", "V").to_string(), "Png2");
        assert_eq!(n.camel("self", "V").to_string(), "SelfChoice");
        assert_eq!(n.camel("", "V").to_string(), "Empty");
        assert_eq!(n.camel("1", "V").to_string(), "V1");
        assert_eq!(n.camel("a b c", "V").to_string(), "Abc");
        assert_eq!(n.camel("a b", "V").to_string(), "AB");
        assert_eq!(n.camel("1.", "V").to_string(), "V1_2");
        let mut t = Names::for_types();
        assert_eq!(t.camel("result", "T").to_string(), "ResultChoice");
        assert_eq!(t.camel("output", "T").to_string(), "OutputChoice");
    }

    #[test]
    fn camel_parts_split_words() {
        assert_eq!(camel_parts("OutputFormat"), ["Output", "Format"]);
        assert_eq!(camel_parts("V1_1"), ["V1", "1"]);
        assert_eq!(camel_parts("A"), ["A"]);
    }
}
