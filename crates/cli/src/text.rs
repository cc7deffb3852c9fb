//! Cleaning text before it is printed: the API token taken out, control characters escaped.
//!
//! It depends on no other module of the CLI: both [`crate::output`] (what is printed) and
//! [`crate::exit`] (the error lines) use it.

use std::borrow::Cow;
use std::sync::OnceLock;

use replicate_protocol::text;

/// The API token of this run, taken out of everything printed.
static SECRET: OnceLock<String> = OnceLock::new();

/// Sets the secret (the API token) that everything printed ([`crate::output`]) and the error
/// lines ([`crate::exit`]) redact. Only the first call counts.
pub fn set_secret(secret: &str) {
    let _ = SECRET.set(secret.to_owned());
}

/// The secret set by [`set_secret`], if any.
pub fn secret() -> Option<&'static str> {
    SECRET.get().map(String::as_str)
}

/// `text` without the token.
pub fn redact(text: &str) -> Cow<'_, str> {
    match secret() {
        Some(s) => text::redact(text, s),
        None => Cow::Borrowed(text),
    }
}

/// Multi-line text made safe to print: the token redacted, control characters escaped.
pub fn safe_text(text: &str) -> String {
    text::clean_text(&redact(text)).into_owned()
}

/// A one-line field made safe to print: the token redacted, control characters (newlines
/// included) escaped.
pub fn safe_line(text: &str) -> String {
    text::clean_line(&redact(text)).into_owned()
}

/// How many bytes at the end of `text` may be the start of the token (or of its
/// percent-encoded form), or a carriage return that a newline may follow.
pub fn held_back(text: &str) -> usize {
    let mut keep = usize::from(text.ends_with('\r'));
    if let Some(secret) = secret().filter(|s| s.len() >= text::MIN_REDACTED_LEN) {
        let encoded = percent_encoded(secret);
        for needle in [secret, encoded.as_str()] {
            keep = keep.max(partial_match_len(text, needle));
        }
    }
    keep
}

/// The percent-encoded form of `secret` that [`text::redact`] also looks for (every byte but
/// ASCII letters and digits encoded).
fn percent_encoded(secret: &str) -> String {
    let mut out = String::with_capacity(secret.len() * 3);
    for b in secret.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The length of the longest suffix of `text` that is a proper prefix of `needle`, compared
/// without regard to ASCII case, and that starts on a character boundary.
fn partial_match_len(text: &str, needle: &str) -> usize {
    let hay = text.as_bytes();
    let pat = needle.as_bytes();
    let longest = pat.len().saturating_sub(1).min(hay.len());
    (1..=longest)
        .rev()
        .find(|&n| {
            let start = hay.len() - n;
            text.is_char_boundary(start) && hay[start..].eq_ignore_ascii_case(&pat[..n])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_token_at_the_end_is_held_back() {
        assert_eq!(partial_match_len("hello r8_ab", "r8_abcdef"), 5);
        assert_eq!(partial_match_len("hello R8", "r8_abcdef"), 2);
        assert_eq!(partial_match_len("hello", "r8_abcdef"), 0);
        // The whole token is not "partial": redaction handles it.
        assert_eq!(partial_match_len("r8_abcdef", "r8_abcdef"), 0);
        assert_eq!(partial_match_len("é", "\u{e9}x"), 2);
        assert_eq!(percent_encoded("r8_a-b"), "r8%5Fa%2Db");
    }
}
