//! Small helpers: ids, timestamps, header parsing.

use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const MIXED_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn random_from(alphabet: &[u8], len: usize) -> String {
    (0..len)
        .map(|_| char::from(alphabet[fastrand::usize(..alphabet.len())]))
        .collect()
}

/// A Replicate-style id: 26 lowercase alphanumeric characters.
pub(crate) fn new_id() -> String {
    random_from(LOWER_ALNUM, 26)
}

/// A random mixed-case token like the seed's `replicate.delivery` path segment.
pub(crate) fn new_file_token() -> String {
    random_from(MIXED_ALNUM, 45)
}

/// Lowercase hex SHA-256.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn utc(t: SystemTime) -> OffsetDateTime {
    OffsetDateTime::from(t)
}

/// RFC 3339 UTC with milliseconds: `2025-01-15T09:54:55.566Z`.
pub(crate) fn rfc3339_ms(t: SystemTime) -> String {
    let d = utc(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second(),
        d.millisecond()
    )
}

/// RFC 3339 UTC with nanoseconds: `2025-01-15T10:03:40.584470194Z`.
pub(crate) fn rfc3339_ns(t: SystemTime) -> String {
    let d = utc(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second(),
        d.nanosecond()
    )
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Parses a `Cancel-After` value: `30s`, `5m`, `1h30m45s`, `250ms`, `1.5s` or plain seconds `30`.
pub(crate) fn parse_cancel_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if v.is_empty() {
        return None;
    }
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let mut total = 0.0f64;
    let mut rest = v;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * factor;
    }
    total.is_finite().then(|| Duration::from_secs_f64(total))
}

/// The wait a `Prefer` header asks for: `Ok(None)` without `wait`, `Ok(Some(secs))` with it,
/// `Err` when malformed (`wait=0`, `wait=61`, `wait=x`).
pub(crate) fn parse_prefer_wait(v: &str) -> Result<Option<u64>, String> {
    for pref in v.split([',', ';']) {
        let pref = pref.trim();
        let (name, value) = match pref.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (pref, None),
        };
        if !name.eq_ignore_ascii_case("wait") {
            continue;
        }
        return match value {
            None => Ok(Some(60)),
            Some(n) => match n.parse::<u64>() {
                Ok(n @ 1..=60) => Ok(Some(n)),
                _ => Err(format!(
                    "Prefer: wait={n} is invalid: the wait must be a whole number of seconds between 1 and 60"
                )),
            },
        };
    }
    Ok(None)
}

/// The value of `key` in a query string (no percent-decoding beyond `%3D`/`%2B`/`%2F`).
pub(crate) fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| {
            v.replace("%3D", "=")
                .replace("%3d", "=")
                .replace("%2B", "+")
                .replace("%2b", "+")
                .replace("%2F", "/")
                .replace("%2f", "/")
        })
}

/// Percent-decodes a query-string value (`+` is a space); invalid escapes are kept as is.
pub(crate) fn percent_decode(v: &str) -> String {
    let hex = |b: u8| char::from(b).to_digit(16);
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The raw value of `key` in a query string, percent-decoded.
pub(crate) fn query_value(query: Option<&str>, key: &str) -> Option<String> {
    query?
        .split('&')
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| percent_decode(v))
}

/// Sleeps until `at` with sub-millisecond precision. A tokio timer fires on the first
/// millisecond tick after its deadline, up to about 1 ms late (more on a busy runtime), which is
/// more than the whole notice latency a client is expected to reach: sleep on the timer until
/// shortly before `at`, then the rest on a blocking thread, whose `nanosleep` is precise.
pub(crate) async fn sleep_until_precise(at: std::time::Instant) {
    let coarse = at.checked_sub(std::time::Duration::from_millis(2));
    if let Some(coarse) = coarse
        && coarse > std::time::Instant::now()
    {
        tokio::time::sleep_until(coarse.into()).await;
    }
    let _ = tokio::task::spawn_blocking(move || {
        let now = std::time::Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_after_forms() {
        assert_eq!(parse_cancel_after("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_cancel_after("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_cancel_after("5m"), Some(Duration::from_secs(300)));
        assert_eq!(
            parse_cancel_after("1h30m45s"),
            Some(Duration::from_secs(5445))
        );
        assert_eq!(
            parse_cancel_after("1500ms"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_cancel_after("5x"), None);
        assert_eq!(parse_cancel_after(""), None);
        assert_eq!(parse_cancel_after("s"), None);
    }

    #[test]
    fn prefer_forms() {
        assert_eq!(parse_prefer_wait("wait"), Ok(Some(60)));
        assert_eq!(parse_prefer_wait("wait=5"), Ok(Some(5)));
        assert_eq!(parse_prefer_wait("respond-async, wait=7"), Ok(Some(7)));
        assert_eq!(parse_prefer_wait("return=minimal"), Ok(None));
        assert!(parse_prefer_wait("wait=0").is_err());
        assert!(parse_prefer_wait("wait=61").is_err());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("nano+banana"), "nano banana");
        assert_eq!(percent_decode("a%20b%2Fc%3d"), "a b/c=");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("caf%C3%A9"), "café");
        assert_eq!(
            query_value(Some("limit=5&query=flux%20schnell"), "query").as_deref(),
            Some("flux schnell")
        );
        assert_eq!(query_value(Some("query"), "query").as_deref(), Some(""));
        assert_eq!(query_value(Some("q=1"), "query"), None);
    }

    #[test]
    fn timestamps() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_736_935_495, 566_123_456);
        assert_eq!(rfc3339_ms(t), "2025-01-15T10:04:55.566Z");
        assert_eq!(rfc3339_ns(t), "2025-01-15T10:04:55.566123456Z");
        let id = new_id();
        assert_eq!(id.len(), 26);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
    }
}
