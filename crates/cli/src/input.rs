//! `-i key=value` parsing and typing, and `--input-json`.
//!
//! Everything here runs before any request is sent, so that a malformed input is a usage error
//! (exit 2) with nothing sent.

use std::path::{Path, PathBuf};

use serde_json::{Map, Number, Value};

/// The value of one `-i` pair.
#[derive(Debug, Clone, PartialEq)]
pub enum InputValue {
    /// A value sent as is.
    Json(Value),
    /// `key=@path`: a file, inlined as a data URL when small or uploaded when large.
    File(PathBuf),
}

/// One `-i key=value` pair.
#[derive(Debug, Clone, PartialEq)]
pub struct InputPair {
    /// The input field name.
    pub key: String,
    /// Its value.
    pub value: InputValue,
}

/// Parses one `-i` argument: split at the first `=`; the key must not be empty.
///
/// The value is typed by [`typed_value`], except `@path` (a file) and `@@text` (the string
/// `@text`).
pub fn parse_pair(arg: &str) -> Result<InputPair, String> {
    let Some((key, raw)) = arg.split_once('=') else {
        return Err(format!(
            "invalid input {arg:?}: expected KEY=VALUE (for example -i prompt=\"a cat\")"
        ));
    };
    if key.trim().is_empty() {
        return Err(format!(
            "invalid input {arg:?}: the key before '=' is empty"
        ));
    }
    let value = if let Some(rest) = raw.strip_prefix("@@") {
        InputValue::Json(Value::String(format!("@{rest}")))
    } else if let Some(path) = raw.strip_prefix('@') {
        if path.is_empty() {
            return Err(format!(
                "invalid input {arg:?}: expected a file path after '@'"
            ));
        }
        InputValue::File(PathBuf::from(path))
    } else {
        InputValue::Json(typed_value(raw))
    };
    Ok(InputPair {
        key: key.to_owned(),
        value,
    })
}

/// Types a command-line value: `true`/`false` become booleans, a JSON integer an integer, any
/// other JSON number (a decimal, an exponent) a float, anything else stays a string.
///
/// Only the JSON number grammar counts as a number, so `007`, `+1`, `1.`, `inf` or `NaN` stay
/// strings and nothing is lost in the conversion.
pub fn typed_value(raw: &str) -> Value {
    match raw {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    match json_number_kind(raw) {
        Some(NumberKind::Integer) => {
            if let Ok(i) = raw.parse::<i64>() {
                return Value::Number(i.into());
            }
            if let Ok(u) = raw.parse::<u64>() {
                return Value::Number(u.into());
            }
            float_or_string(raw)
        }
        Some(NumberKind::Float) => float_or_string(raw),
        None => Value::String(raw.to_owned()),
    }
}

fn float_or_string(raw: &str) -> Value {
    raw.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map_or_else(|| Value::String(raw.to_owned()), Value::Number)
}

enum NumberKind {
    Integer,
    Float,
}

/// Whether `s` matches `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, and which kind it is.
fn json_number_kind(s: &str) -> Option<NumberKind> {
    let b = s.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let int_start = i;
    let n = digits(&mut i);
    if n == 0 || (n > 1 && b[int_start] == b'0') {
        return None;
    }
    let mut kind = NumberKind::Integer;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return None;
        }
        kind = NumberKind::Float;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return None;
        }
        kind = NumberKind::Float;
    }
    (i == b.len()).then_some(kind)
}

/// Parses every `-i` argument, stopping at the first malformed one.
pub fn parse_pairs(args: &[String]) -> Result<Vec<InputPair>, String> {
    args.iter().map(|a| parse_pair(a)).collect()
}

/// Reads `--input-json FILE`: a JSON object.
pub fn read_input_json(path: &Path) -> Result<Map<String, Value>, String> {
    let text = std::fs::read(path)
        .map_err(|e| format!("cannot read the input file {}: {e}", path.display()))?;
    match serde_json::from_slice::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(format!(
            "{}: the input must be a JSON object",
            path.display()
        )),
        Err(e) => Err(format!("{}: invalid JSON: {e}", path.display())),
    }
}

/// Checks that a file can be read (a regular file we may open), so that an unreadable file is a
/// usage error before anything is sent. `what` names it in the message (`input image`, say).
pub fn check_readable(what: &str, path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("{what}: cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{what}: {} is not a regular file", path.display()));
    }
    std::fs::File::open(path)
        .map_err(|e| format!("{what}: cannot read {}: {e}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn value(arg: &str) -> Value {
        match parse_pair(arg).expect("valid pair").value {
            InputValue::Json(v) => v,
            InputValue::File(p) => panic!("unexpected file {}", p.display()),
        }
    }

    #[test]
    fn booleans() {
        assert_eq!(value("go_fast=true"), json!(true));
        assert_eq!(value("go_fast=false"), json!(false));
        assert_eq!(value("x=True"), json!("True"));
        assert_eq!(value("x=yes"), json!("yes"));
    }

    #[test]
    fn integers() {
        assert_eq!(value("n=1"), json!(1));
        assert_eq!(value("n=0"), json!(0));
        assert_eq!(value("n=-42"), json!(-42));
        assert_eq!(
            value("n=18446744073709551615"),
            json!(18_446_744_073_709_551_615u64)
        );
        assert!(value("n=4").is_i64());
    }

    #[test]
    fn floats() {
        assert_eq!(value("s=0.8"), json!(0.8));
        assert_eq!(value("s=-1.5"), json!(-1.5));
        assert_eq!(value("s=1e3"), json!(1000.0));
        assert!(value("s=1e3").is_f64());
        assert_eq!(value("s=2.5E-1"), json!(0.25));
        // Integers too large for 64 bits become floats.
        assert!(value("n=123456789012345678901234567890").is_f64());
    }

    #[test]
    fn strings() {
        assert_eq!(value("megapixels=\"1\""), json!("\"1\""));
        assert_eq!(value("aspect_ratio=1:1"), json!("1:1"));
        assert_eq!(value("code=007"), json!("007"));
        assert_eq!(value("x=+1"), json!("+1"));
        assert_eq!(value("x=1."), json!("1."));
        assert_eq!(value("x=.5"), json!(".5"));
        assert_eq!(value("x=inf"), json!("inf"));
        assert_eq!(value("x=NaN"), json!("NaN"));
        assert_eq!(value("x=1e999"), json!("1e999"));
        assert_eq!(value("x=-"), json!("-"));
        assert_eq!(value("prompt=a cat"), json!("a cat"));
        assert_eq!(value("prompt="), json!(""));
    }

    #[test]
    fn splits_at_the_first_equals() {
        let p = parse_pair("prompt=a=b=c").expect("valid");
        assert_eq!(p.key, "prompt");
        assert_eq!(p.value, InputValue::Json(json!("a=b=c")));
    }

    #[test]
    fn files() {
        let p = parse_pair("image=@photos/cat.png").expect("valid");
        assert_eq!(p.key, "image");
        assert_eq!(p.value, InputValue::File(PathBuf::from("photos/cat.png")));
        assert_eq!(value("handle=@@replicate"), json!("@replicate"));
        assert!(parse_pair("image=@").is_err());
    }

    #[test]
    fn malformed() {
        assert!(parse_pair("prompt").is_err());
        assert!(parse_pair("=value").is_err());
        assert!(parse_pair("").is_err());
        let err = parse_pairs(&["a=1".into(), "oops".into()]).expect_err("second is bad");
        assert!(err.contains("oops"), "{err}");
    }

    #[test]
    fn unreadable_file() {
        let err = check_readable("input image", Path::new("/definitely/not/here.png"))
            .expect_err("missing file");
        assert!(err.contains("image"), "{err}");
        assert!(check_readable("dir", Path::new(".")).is_err());
    }
}
