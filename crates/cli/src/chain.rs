//! Chaining commands: `-i image={{.output[0]}}` takes a value from the prediction JSON that a
//! previous command printed with `--json`, piped on stdin.
//!
//! A placeholder is `{{` and `}}` around a path that starts with a dot (spaces inside the braces
//! are allowed): `{{.output}}`, `{{.output[0]}}`, `{{.id}}`, and generally `.field`, `.field[N]`
//! and `.field.sub` in any combination. `{{` without a leading dot is not a placeholder and is
//! sent as is (a template in a prompt).
//!
//! Everything here runs before a request is sent: stdin is read (at most
//! [`MAX_CHAIN_JSON_BYTES`]) only when a value holds a placeholder, and any placeholder that
//! cannot be resolved is a usage error.

use std::io::{IsTerminal, Read};

use serde_json::Value;

use crate::input::{read_capped, size};

/// The most bytes of JSON read from stdin for placeholders: 64 MiB (as `--input-json`).
pub const MAX_CHAIN_JSON_BYTES: u64 = crate::input::MAX_INPUT_JSON_BYTES;

/// One step of a placeholder's path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// `.name`
    Field(String),
    /// `[N]`
    Index(usize),
}

/// A part of a value: text sent as is, or a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Placeholder { source: String, path: Vec<Step> },
}

/// Splits `s` into text and placeholders; an error names a malformed placeholder.
fn parts(s: &str) -> Result<Vec<Part>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let inner = after[..end].trim();
        if !inner.starts_with('.') {
            // Not ours: keep the braces and look further on.
            text.push_str(&rest[..start + 2]);
            rest = after;
            continue;
        }
        text.push_str(&rest[..start]);
        if !text.is_empty() {
            out.push(Part::Text(std::mem::take(&mut text)));
        }
        let source = format!("{{{{{inner}}}}}");
        let path = parse_path(inner).map_err(|why| format!("placeholder {source}: {why}"))?;
        out.push(Part::Placeholder { source, path });
        rest = &after[end + 2..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        out.push(Part::Text(text));
    }
    Ok(out)
}

/// Parses `.field[N].sub` into steps.
fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    const GRAMMAR: &str = "expected .field, .field[N] or .field.sub (e.g. .output[0])";
    let b = path.as_bytes();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'.' => {
                let start = i + 1;
                let mut end = start;
                while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                    end += 1;
                }
                if end == start {
                    return Err(GRAMMAR.to_owned());
                }
                steps.push(Step::Field(path[start..end].to_owned()));
                i = end;
            }
            b'[' if !steps.is_empty() => {
                let close = path[i..].find(']').map(|n| i + n).ok_or(GRAMMAR)?;
                let digits = &path[i + 1..close];
                if digits.is_empty() || !digits.bytes().all(|d| d.is_ascii_digit()) {
                    return Err(GRAMMAR.to_owned());
                }
                let n = digits
                    .parse::<usize>()
                    .map_err(|_| format!("index {digits} is too large"))?;
                steps.push(Step::Index(n));
                i = close + 1;
            }
            _ => return Err(GRAMMAR.to_owned()),
        }
    }
    Ok(steps)
}

/// Whether `s` holds at least one placeholder (well formed or not).
pub fn has_placeholder(s: &str) -> bool {
    parts(s).map_or(true, |parts| {
        parts.iter().any(|p| matches!(p, Part::Placeholder { .. }))
    })
}

/// The value at `path` in `doc`; an error says what is missing.
fn lookup<'a>(doc: &'a Value, source: &str, path: &[Step]) -> Result<&'a Value, String> {
    let mut at = doc;
    let mut shown = String::new();
    for step in path {
        let next = match step {
            Step::Field(name) => {
                shown.push('.');
                shown.push_str(name);
                at.get(name.as_str())
            }
            Step::Index(n) => {
                let len = at.as_array().map(Vec::len);
                shown.push_str(&format!("[{n}]"));
                match (at.get(*n), len) {
                    (Some(v), _) => Some(v),
                    (None, Some(len)) => {
                        return Err(format!(
                            "{source}: the JSON on stdin has no {shown} (it has {len} item(s))"
                        ));
                    }
                    (None, None) => None,
                }
            }
        };
        match next {
            Some(Value::Null) | None => {
                let status = doc
                    .get("status")
                    .and_then(Value::as_str)
                    .map(|s| format!(" (status: {})", crate::text::safe_line(s)))
                    .unwrap_or_default();
                return Err(format!(
                    "{source}: the JSON on stdin has no {shown}{status}"
                ));
            }
            Some(v) => at = v,
        }
    }
    Ok(at)
}

/// Replaces the placeholders of `s` from `doc`. A value that is exactly one placeholder is the
/// JSON value found, as is; otherwise the text with each placeholder replaced by a string as is,
/// or by any other value as compact JSON.
pub fn resolve(s: &str, doc: &Value) -> Result<Value, String> {
    let parts = parts(s)?;
    if let [Part::Placeholder { source, path }] = parts.as_slice() {
        return lookup(doc, source, path).cloned();
    }
    let mut out = String::with_capacity(s.len());
    for part in parts {
        match part {
            Part::Text(t) => out.push_str(&t),
            Part::Placeholder { source, path } => match lookup(doc, &source, &path)? {
                Value::String(v) => out.push_str(v),
                other => out.push_str(&other.to_string()),
            },
        }
    }
    Ok(Value::String(out))
}

/// Reads the JSON object that placeholders are resolved from: at most `cap` bytes of `reader`.
pub fn read_document(reader: impl Read, cap: u64) -> Result<Value, String> {
    let bytes = read_capped(reader, cap)
        .map_err(|e| format!("cannot read the JSON for the placeholders from stdin: {e}"))?
        .ok_or_else(|| {
            format!(
                "the JSON on stdin for the placeholders is larger than the limit of {}",
                size(cap)
            )
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(
            "the -i placeholders need a prediction JSON on stdin, but stdin is empty \
             (pipe the --json output of a previous command)"
                .to_owned(),
        );
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(
            "the JSON on stdin for the placeholders must be one object (a prediction)".to_owned(),
        ),
        Err(e) => Err(format!(
            "the input on stdin for the placeholders is not JSON: {e}"
        )),
    }
}

/// Reads the document from stdin, which must not be a terminal.
pub fn read_stdin_document() -> Result<Value, String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(
            "the -i placeholders need a prediction JSON piped on stdin, e.g. \
             `replicate run A --json | replicate run B -i image={{.output[0]}}`"
                .to_owned(),
        );
    }
    read_document(stdin.lock(), MAX_CHAIN_JSON_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "id": "p1",
            "status": "succeeded",
            "output": ["https://x/a.png", "https://x/b.png"],
            "metrics": {"predict_time": 1.5},
            "logs": null
        })
    }

    #[test]
    fn whole_placeholders_keep_the_json_value() {
        assert_eq!(resolve("{{.id}}", &doc()), Ok(json!("p1")));
        assert_eq!(
            resolve("{{.output[1]}}", &doc()),
            Ok(json!("https://x/b.png"))
        );
        assert_eq!(
            resolve("{{ .output }}", &doc()),
            Ok(json!(["https://x/a.png", "https://x/b.png"]))
        );
        assert_eq!(resolve("{{.metrics.predict_time}}", &doc()), Ok(json!(1.5)));
    }

    #[test]
    fn placeholders_inside_text_are_replaced() {
        assert_eq!(
            resolve("from {{.id}}: {{.output[0]}}", &doc()),
            Ok(json!("from p1: https://x/a.png"))
        );
        assert_eq!(
            resolve("t={{.metrics}}", &doc()),
            Ok(json!(r#"t={"predict_time":1.5}"#))
        );
    }

    #[test]
    fn other_braces_are_text() {
        assert!(!has_placeholder("Hello {{name}}"));
        assert!(!has_placeholder("{{"));
        assert!(!has_placeholder("plain"));
        assert_eq!(
            resolve("Hello {{name}} {{.id}}", &doc()),
            Ok(json!("Hello {{name}} p1"))
        );
        assert!(has_placeholder("{{.id}}"));
        // Malformed ones count, so that they are refused rather than sent.
        assert!(has_placeholder("{{.output[x]}}"));
    }

    #[test]
    fn unresolvable_placeholders_say_why() {
        let err = resolve("{{.output[5]}}", &doc()).expect_err("out of range");
        assert!(
            err.contains("{{.output[5]}}") && err.contains("2 item(s)"),
            "{err}"
        );
        let err = resolve("{{.nope}}", &doc()).expect_err("missing");
        assert!(err.contains("no .nope"), "{err}");
        let err = resolve("{{.logs}}", &doc()).expect_err("null");
        assert!(err.contains("no .logs (status: succeeded)"), "{err}");
        for bad in [
            "{{.}}",
            "{{.output[]}}",
            "{{.output[-1]}}",
            "{{.a b}}",
            "{{.output[1}}",
        ] {
            assert!(resolve(bad, &doc()).is_err(), "{bad}");
        }
        let err = resolve("{{.output[99999999999999999999999]}}", &doc()).expect_err("big");
        assert!(err.contains("too large"), "{err}");
    }

    #[test]
    fn the_document_is_one_bounded_object() {
        assert_eq!(
            read_document(&br#"{"id": "p1"}"#[..], 64),
            Ok(json!({"id": "p1"}))
        );
        assert!(read_document(&b"   \n"[..], 64).is_err_and(|e| e.contains("empty")));
        assert!(read_document(&b"[1]"[..], 64).is_err_and(|e| e.contains("one object")));
        assert!(read_document(&b"{oops"[..], 64).is_err_and(|e| e.contains("not JSON")));
        let big = format!(r#"{{"id": "{}"}}"#, "x".repeat(100));
        assert!(read_document(big.as_bytes(), 64).is_err_and(|e| e.contains("limit of 64")));
    }
}
