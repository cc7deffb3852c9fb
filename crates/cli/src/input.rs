//! `-i key=value` parsing and typing, and `--input-json`.
//!
//! Everything here runs before any request is sent, so that a malformed input is a usage error
//! (exit 2) with nothing sent. Local files are read with a cap, and only regular files (or stdin
//! for `--input-json -`), so that `/dev/zero` or a FIFO fails at once instead of growing memory
//! or hanging.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Map, Number, Value};

/// The most bytes `--input-json` reads: 64 MiB.
pub const MAX_INPUT_JSON_BYTES: u64 = 64 * 1024 * 1024;

/// The most bytes a `-i key=@path` file may hold (and `files upload`): what the files API
/// accepts, 100 MiB.
pub const MAX_FILE_INPUT_BYTES: u64 = replicate_protocol::input::MAX_UPLOAD_BYTES;

/// The value of one `-i` pair.
#[derive(Debug, Clone, PartialEq)]
pub enum InputValue {
    /// A value sent as is.
    Json(Value),
    /// `key=@path`: a file, inlined as a data URL when small or uploaded when large.
    File(PathBuf),
}

/// One `-i key=value` pair, typed by the rules without a schema ([`RawPair::typed`]).
#[derive(Debug, Clone, PartialEq)]
pub struct InputPair {
    /// The input field name.
    pub key: String,
    /// Its value.
    pub value: InputValue,
}

/// The value of one `-i` pair as written, before it is typed: by the model's input schema
/// when there is one ([`crate::typed`]), by [`RawPair::typed`] (the rules without a schema)
/// otherwise.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    /// Text, typed later.
    Text(String),
    /// `key=@path`: a file without a schema and for a schema's file inputs; the text `@path`
    /// for a schema's other inputs.
    At(String),
    /// `key=@@text`: the string `@text` (held with its one `@`).
    Escaped(String),
    /// A value taken by a `{{.path}}` placeholder from the JSON on stdin, sent as found.
    Resolved(Value),
}

/// One `-i key=value` argument, split but not typed yet.
#[derive(Debug, Clone, PartialEq)]
pub struct RawPair {
    /// The input field name.
    pub key: String,
    /// Its value as written.
    pub value: RawValue,
}

impl RawPair {
    /// The value typed by the rules without a schema: [`typed_value`] for text, a file for
    /// `@path`, the string `@text` for `@@text`, a placeholder's value as found.
    pub fn typed(self) -> Result<InputPair, String> {
        let RawPair { key, value } = self;
        let value = match value {
            RawValue::Text(raw) => InputValue::Json(typed_value(&raw).map_err(|IntegerTooLarge| {
                let example = serde_json::json!({ &key: raw });
                format!(
                    "invalid input {key:?}: the integer {} does not fit in 64 bits (-9223372036854775808 to 18446744073709551615) and would lose precision\n\
                     to send it as a string instead, put it in a JSON file, e.g. {}, and pass --input-json FILE",
                    crate::output::shorten(&raw, 40),
                    crate::output::shorten(&example.to_string(), 80),
                )
            })?),
            RawValue::At(path) => InputValue::File(PathBuf::from(path)),
            RawValue::Escaped(text) => InputValue::Json(Value::String(text)),
            RawValue::Resolved(v) => InputValue::Json(v),
        };
        Ok(InputPair { key, value })
    }
}

/// Splits one `-i` argument at the first `=`; the key must not be empty, nor the path after
/// `@`. `@@text` is the string `@text`, `@path` a file (or, for a schema's input that is not a
/// file, the text `@path`), anything else text.
pub fn split_pair(arg: &str) -> Result<RawPair, String> {
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
        RawValue::Escaped(format!("@{rest}"))
    } else if let Some(path) = raw.strip_prefix('@') {
        if path.is_empty() {
            return Err(format!(
                "invalid input {arg:?}: expected a file path after '@'"
            ));
        }
        RawValue::At(path.to_owned())
    } else {
        RawValue::Text(raw.to_owned())
    };
    Ok(RawPair {
        key: key.to_owned(),
        value,
    })
}

/// Types a command-line value: `true`/`false` become booleans, a JSON integer an integer, any
/// other JSON number (a decimal, an exponent) a float, anything else stays a string.
///
/// Only the JSON number grammar counts as a number, so `007`, `+1`, `1.`, `inf` or `NaN` stay
/// strings and nothing is lost in the conversion. An integer that fits neither `i64` nor `u64`
/// is refused rather than rounded to a float: the model would receive another number.
pub fn typed_value(raw: &str) -> Result<Value, IntegerTooLarge> {
    match raw {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        _ => {}
    }
    Ok(match json_number_kind(raw) {
        Some(NumberKind::Integer) => {
            if let Ok(i) = raw.parse::<i64>() {
                return Ok(Value::Number(i.into()));
            }
            if let Ok(u) = raw.parse::<u64>() {
                return Ok(Value::Number(u.into()));
            }
            return Err(IntegerTooLarge);
        }
        Some(NumberKind::Float) => float_or_string(raw),
        None => Value::String(raw.to_owned()),
    })
}

/// An integer literal that fits neither `i64` nor `u64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntegerTooLarge;

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

/// Splits every `-i` argument, stopping at the first malformed one. A key given twice is
/// refused (one of the values would be silently dropped).
pub fn split_pairs(args: &[String]) -> Result<Vec<RawPair>, String> {
    let pairs = args
        .iter()
        .map(|a| split_pair(a))
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = HashSet::new();
    for pair in &pairs {
        if !seen.insert(pair.key.as_str()) {
            return Err(format!(
                "input {:?} is given twice (-i {}=...): give each input once",
                pair.key, pair.key
            ));
        }
    }
    Ok(pairs)
}

/// Reads `--input-json FILE` (or `-`, stdin): a JSON object of at most
/// [`MAX_INPUT_JSON_BYTES`].
pub fn read_input_json(path: &Path) -> Result<Map<String, Value>, String> {
    let text = if path.as_os_str() == "-" {
        read_capped(std::io::stdin().lock(), MAX_INPUT_JSON_BYTES)
            .map_err(|e| format!("cannot read the input from stdin: {e}"))?
            .ok_or_else(|| {
                format!(
                    "the input on stdin is larger than the limit of {}",
                    size(MAX_INPUT_JSON_BYTES)
                )
            })?
    } else {
        read_file("the input file", path, MAX_INPUT_JSON_BYTES)?
    };
    match serde_json::from_slice::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(format!(
            "{}: the input must be a JSON object",
            path.display()
        )),
        Err(e) => Err(format!("{}: invalid JSON: {e}", path.display())),
    }
}

/// Reads a local file of at most `cap` bytes, so that an unreadable, special or too large file
/// is a usage error before anything is sent. `what` names it in the message (`input image`,
/// say).
///
/// Only regular files are read: the type is checked before opening (opening a FIFO would wait
/// for a writer) and again on the opened file; at most `cap + 1` bytes are read, so a file that
/// grows meanwhile cannot make it read more.
pub fn read_file(what: &str, path: &Path, cap: u64) -> Result<Vec<u8>, String> {
    let cannot = |e: std::io::Error| format!("{what}: cannot read {}: {e}", path.display());
    let not_regular = || {
        format!(
            "{what}: {} is not a regular file (devices, FIFOs and directories are not read)",
            path.display()
        )
    };
    let too_large = || {
        format!(
            "{what}: {} is larger than the limit of {}",
            path.display(),
            size(cap)
        )
    };
    if !std::fs::metadata(path).map_err(cannot)?.is_file() {
        return Err(not_regular());
    }
    let file = std::fs::File::open(path).map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    if meta.len() > cap {
        return Err(too_large());
    }
    read_capped(file, cap)
        .map_err(cannot)?
        .ok_or_else(too_large)
}

/// Reads at most `cap` bytes: `None` when there are more.
pub fn read_capped(reader: impl Read, cap: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    reader.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= cap).then_some(bytes))
}

/// A size in bytes, in MiB when it is a whole number of them.
pub fn size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// One `-i` argument typed by the rules without a schema.
    fn parse_pair(arg: &str) -> Result<InputPair, String> {
        split_pair(arg)?.typed()
    }

    fn parse_pairs(args: &[String]) -> Result<Vec<InputPair>, String> {
        split_pairs(args)?.into_iter().map(RawPair::typed).collect()
    }

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
        assert_eq!(
            value("n=-9223372036854775808"),
            json!(-9_223_372_036_854_775_808i64)
        );
    }

    #[test]
    fn integers_beyond_64_bits_are_refused() {
        for big in [
            "n=18446744073709551616",
            "n=-9223372036854775809",
            "n=123456789012345678901234567890",
        ] {
            let err = parse_pair(big).expect_err(big);
            assert!(err.contains("--input-json"), "{err}");
            assert!(err.contains("\"n\""), "{err}");
        }
    }

    #[test]
    fn a_key_given_twice_is_refused() {
        let err =
            parse_pairs(&["text=a".into(), "x=1".into(), "text=b".into()]).expect_err("duplicate");
        assert!(err.contains("\"text\"") && err.contains("twice"), "{err}");
        assert!(parse_pairs(&["a=1".into(), "b=1".into()]).is_ok());
    }

    #[test]
    fn floats() {
        assert_eq!(value("s=0.8"), json!(0.8));
        assert_eq!(value("s=-1.5"), json!(-1.5));
        assert_eq!(value("s=1e3"), json!(1000.0));
        assert!(value("s=1e3").is_f64());
        assert_eq!(value("s=2.5E-1"), json!(0.25));
        // A large number written as a decimal is a float, as asked.
        assert!(value("n=123456789012345678901234567890.0").is_f64());
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
    fn unreadable_special_and_large_files() {
        let err = read_file("input image", Path::new("/definitely/not/here.png"), 10)
            .expect_err("missing file");
        assert!(err.contains("image"), "{err}");
        assert!(read_file("dir", Path::new("."), 10).is_err());
        #[cfg(unix)]
        {
            let err = read_file("zero", Path::new("/dev/zero"), 10).expect_err("a device");
            assert!(err.contains("not a regular file"), "{err}");
        }
        let dir = std::env::temp_dir().join(format!("replicate-cli-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("eleven.txt");
        std::fs::write(&path, b"hello world").expect("write");
        assert_eq!(read_file("f", &path, 11).expect("fits"), b"hello world");
        let err = read_file("f", &path, 10).expect_err("too large");
        assert!(err.contains("larger than the limit of 10 bytes"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            read_capped(&b"abc"[..], 3).expect("read"),
            Some(b"abc".to_vec())
        );
        assert_eq!(read_capped(&b"abcd"[..], 3).expect("read"), None);
        assert_eq!(size(64 * 1024 * 1024), "64 MiB");
    }
}
