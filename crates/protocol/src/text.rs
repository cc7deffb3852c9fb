//! Server text made safe: the API token taken out of it, and control characters kept away from
//! terminals and file names.
//!
//! Anything a server writes (problem details, HTML error pages, logs, stream errors, output
//! names) may echo what it received, `Authorization` header included, and may carry escape
//! sequences that drive a terminal (`ESC ] 52` writes the clipboard, `ESC [ 2 J` clears the
//! screen) or bidi overrides that disguise a file name (`U+202E`). Two rules, written once here:
//!
//! - [`redact`]: every occurrence of the token, in any letter case and percent-encoded, becomes
//!   `***`. [`Error`](crate::Error)s built from server text pass through it in every flow of this
//!   crate (see [`Error::redact`](crate::Error::redact)).
//! - [`clean_text`] / [`clean_line`]: C0 and C1 control characters (except newline and tab in
//!   multi-line text) and invisible direction overrides are shown escaped (`\u{1b}`), so text
//!   printed to a terminal is inert.
//!
//! ```
//! use replicate_protocol::text::{clean_line, redact};
//! assert_eq!(redact("bad credentials: Bearer R8_Secret", "r8_secret"), "bad credentials: Bearer ***");
//! assert_eq!(clean_line("done\x1b]0;pwned\x07"), "done\\u{1b}]0;pwned\\u{7}");
//! ```

use std::borrow::Cow;

/// What a redacted token is replaced with.
pub const REDACTED: &str = "***";

/// Tokens shorter than this are not searched for: replacing every `a` of a text would make it
/// unreadable, and no real API token is that short.
pub const MIN_REDACTED_LEN: usize = 4;

/// `text` with every occurrence of `secret` replaced by [`REDACTED`]: compared without regard
/// to ASCII letter case, and also in its percent-encoded form (as in a URL's query).
///
/// A secret shorter than [`MIN_REDACTED_LEN`] leaves the text unchanged.
///
/// ```
/// use replicate_protocol::text::redact;
/// assert_eq!(redact("<p>Authorization: Bearer hk-KEY</p>", "hk-key"), "<p>Authorization: Bearer ***</p>");
/// assert_eq!(redact("?token=r8%2Babc", "r8+abc"), "?token=***");
/// assert_eq!(redact("nothing here", "r8_abc"), "nothing here");
/// ```
pub fn redact<'a>(text: &'a str, secret: &str) -> Cow<'a, str> {
    if secret.len() < MIN_REDACTED_LEN {
        return Cow::Borrowed(text);
    }
    let mut out = replace_ignore_case(text, secret);
    let encoded = percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    if encoded != secret
        && let Cow::Owned(s) = replace_ignore_case(&out, &encoded)
    {
        out = Cow::Owned(s);
    }
    out
}

/// Replaces `needle` (compared ignoring ASCII case) by [`REDACTED`].
fn replace_ignore_case<'a>(text: &'a str, needle: &str) -> Cow<'a, str> {
    let hay = text.as_bytes();
    let pat = needle.as_bytes();
    if pat.is_empty() || hay.len() < pat.len() {
        return Cow::Borrowed(text);
    }
    let first = pat[0].to_ascii_lowercase();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i + pat.len() <= hay.len() {
        if hay[i].to_ascii_lowercase() == first && hay[i..i + pat.len()].eq_ignore_ascii_case(pat) {
            // A match of an ASCII needle starts and ends on character boundaries, unless the
            // needle itself is not ASCII (then bytes equal exactly, still on boundaries).
            let s = out.get_or_insert_with(|| String::with_capacity(text.len()));
            s.push_str(&text[copied..i]);
            s.push_str(REDACTED);
            i += pat.len();
            copied = i;
        } else {
            i += 1;
        }
    }
    match out {
        Some(mut s) => {
            s.push_str(&text[copied..]);
            Cow::Owned(s)
        }
        None => Cow::Borrowed(text),
    }
}

/// Replaces the secret in a `String` in place (no allocation when it does not occur).
///
/// A text cut short (an excerpt ending in `…`) may end with the first characters of the secret,
/// cut with the rest of the text: any such beginning of at least [`MIN_REDACTED_LEN`]
/// characters is replaced too.
pub fn redact_in_place(text: &mut String, secret: &str) {
    if let Cow::Owned(s) = redact(text, secret) {
        *text = s;
    }
    redact_cut_tail(text, secret);
}

/// Replaces a beginning of `secret` left at the very end of a cut text (before its `…`).
fn redact_cut_tail(text: &mut String, secret: &str) {
    let Some(body) = text.strip_suffix('…') else {
        return;
    };
    let bytes = body.as_bytes();
    let pat = secret.as_bytes();
    // The longest beginning of the secret the text ends with.
    let found = (MIN_REDACTED_LEN..pat.len().min(bytes.len()) + 1)
        .rev()
        .find(|&n| bytes[bytes.len() - n..].eq_ignore_ascii_case(&pat[..n]));
    if let Some(n) = found {
        let cut = body.len() - n;
        if text.is_char_boundary(cut) {
            text.replace_range(cut..body.len(), REDACTED);
        }
    }
}

/// Replaces the secret in every string of a JSON value (keys included), recursively.
pub fn redact_value(value: &mut serde_json::Value, secret: &str) {
    use serde_json::Value;
    match value {
        Value::String(s) => redact_in_place(s, secret),
        Value::Array(items) => items.iter_mut().for_each(|v| redact_value(v, secret)),
        Value::Object(map) => {
            if map.keys().any(|k| redact(k, secret) != k.as_str()) {
                let old = std::mem::take(map);
                for (k, mut v) in old {
                    redact_value(&mut v, secret);
                    map.insert(redact(&k, secret).into_owned(), v);
                }
            } else {
                map.values_mut().for_each(|v| redact_value(v, secret));
            }
        }
        _ => {}
    }
}

/// Whether a character may change how a terminal shows what follows, or hide text: C0 and C1
/// controls, DEL, and the invisible direction marks and overrides (U+061C, U+200E, U+200F,
/// U+202A to U+202E, U+2066 to U+2069).
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// Multi-line server text made inert for a terminal: newlines and tabs are kept (a lone
/// carriage return, which would let a line overwrite the one before it, becomes a newline);
/// every other [unsafe character](is_unsafe_char) is shown escaped, as `\u{1b}`.
///
/// ```
/// use replicate_protocol::text::clean_text;
/// assert_eq!(clean_text("a\r\nb\rc\x1b[2J"), "a\nb\nc\\u{1b}[2J");
/// ```
pub fn clean_text(text: &str) -> Cow<'_, str> {
    clean(text, true)
}

/// One-line server text made inert for a terminal: like [`clean_text`], with newlines and tabs
/// escaped too.
///
/// ```
/// use replicate_protocol::text::clean_line;
/// assert_eq!(clean_line("a\nb\u{202e}gpj.exe"), "a\\nb\\u{202e}gpj.exe");
/// ```
pub fn clean_line(text: &str) -> Cow<'_, str> {
    clean(text, false)
}

fn clean(text: &str, multi_line: bool) -> Cow<'_, str> {
    let keep = |c: char| !is_unsafe_char(c) || (multi_line && matches!(c, '\n' | '\t'));
    if text.chars().all(keep) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if keep(c) {
            out.push(c);
        } else if multi_line && c == '\r' {
            if chars.peek() != Some(&'\n') {
                out.push('\n');
            }
        } else {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                _ => out.extend(c.escape_unicode()),
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_every_case_and_position() {
        let t = "r8_AbC123";
        for body in [
            "r8_AbC123",
            "R8_ABC123 at start",
            "end: r8_abc123",
            "{\"detail\":\"Bearer r8_AbC123r8_abc123\"}",
        ] {
            let out = redact(body, t);
            assert!(!out.to_ascii_lowercase().contains("r8_abc123"), "{out}");
            assert!(out.contains(REDACTED));
        }
    }

    #[test]
    fn short_secrets_and_non_ascii_text_are_safe() {
        assert_eq!(redact("abc", "ab"), "abc");
        assert_eq!(redact("é r8_tok é", "r8_tok"), "é *** é");
        assert_eq!(redact("", "r8_tok"), "");
    }

    #[test]
    fn a_token_cut_by_an_excerpt_is_redacted_too() {
        let mut s = format!("{}Bearer r8_AbC1…", "x".repeat(10));
        redact_in_place(&mut s, "r8_abc123456");
        assert_eq!(s, format!("{}Bearer ***…", "x".repeat(10)));
        // Shorter than the minimum: left alone (nothing to learn from it).
        let mut s = "Bearer r8_…".to_owned();
        redact_in_place(&mut s, "r8_abc123456");
        assert_eq!(s, "Bearer r8_…");
        // Not cut: no partial match is looked for.
        let mut s = "ends with r8_ab".to_owned();
        redact_in_place(&mut s, "r8_abc123456");
        assert_eq!(s, "ends with r8_ab");
    }

    #[test]
    fn clean_keeps_plain_text_borrowed() {
        assert!(matches!(clean_text("plain\ttext\n"), Cow::Borrowed(_)));
        assert_eq!(clean_line("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(clean_line("\x7f"), "\\u{7f}");
    }
}
