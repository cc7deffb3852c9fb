//! Small helpers: ids, timestamps, header parsing.

use std::time::{Duration, Instant, SystemTime};

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
    hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

/// The latest instant the fake writes in a timestamp: 9999-12-31T23:59:59Z.
const MAX_WALL_SECS: u64 = 253_402_300_799;

/// `t` in UTC, clamped to years 0000 to 9999 (never panics, unlike `OffsetDateTime::from`).
fn utc(t: SystemTime) -> OffsetDateTime {
    let nanos: i128 = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
        Err(e) => i128::try_from(e.duration().as_nanos()).map_or(i128::MIN, |n| -n),
    };
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(if nanos < 0 {
        OffsetDateTime::UNIX_EPOCH
    } else {
        time::PrimitiveDateTime::MAX.assume_utc()
    })
}

/// `t + d`, or the latest writable instant (year 9999) when that overflows or goes beyond it.
pub(crate) fn wall_after(t: SystemTime, d: Duration) -> SystemTime {
    let max = SystemTime::UNIX_EPOCH + Duration::from_secs(MAX_WALL_SECS);
    t.checked_add(d).map_or(max, |x| x.min(max))
}

/// `t + d`, with `d` capped at about a century (a time that never comes, and that timers can
/// still add to without overflowing).
pub(crate) fn instant_after(t: Instant, d: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 86_400);
    t.checked_add(d.min(CENTURY)).unwrap_or(t)
}

/// `d × factor`, or `None` when that is negative, not finite or too large for a `Duration`.
pub(crate) fn scale_duration(d: Duration, factor: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(d.as_secs_f64() * factor).ok()
}

/// `d × num / den` without overflow (saturating at `Duration::MAX`; `den` 0 counts as 1).
pub(crate) fn fraction(d: Duration, num: u64, den: u64) -> Duration {
    let nanos = d.as_nanos().saturating_mul(u128::from(num)) / u128::from(den.max(1));
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    let sub = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
    if secs == u64::MAX {
        return Duration::MAX;
    }
    Duration::new(secs, sub)
}

/// An HTTP date, clamped to what HTTP dates can say (1970 to 9999; never panics).
pub(crate) fn http_date(t: SystemTime) -> String {
    let max = SystemTime::UNIX_EPOCH + Duration::from_secs(MAX_WALL_SECS);
    httpdate::fmt_http_date(t.clamp(SystemTime::UNIX_EPOCH, max))
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
/// `None` when malformed or too large for a `Duration` (never panics).
#[cfg(test)]
pub(crate) fn parse_cancel_after(v: &str) -> Option<Duration> {
    Duration::try_from_secs_f64(parse_cancel_after_secs(v)?).ok()
}

/// Parses a `Cancel-After` value (see [`parse_cancel_after`]) to seconds: `None` when malformed
/// (or negative), possibly huge or infinite when well-formed but absurd.
pub(crate) fn parse_cancel_after_secs(v: &str) -> Option<f64> {
    let v = v.trim();
    if v.is_empty() {
        return None;
    }
    if let Ok(secs) = v.parse::<f64>() {
        return (secs >= 0.0).then_some(secs);
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
    (total >= 0.0).then_some(total)
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

/// Percent-encodes a query-string value: everything but `A-Z a-z 0-9 - . _ ~` becomes `%XX`.
pub(crate) fn percent_encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Locks `m`, taking the data of a poisoned lock (a panicked handler must not take the server
/// down).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
        // Too large for a Duration, or not a number: no panic.
        assert_eq!(parse_cancel_after("1e300"), None);
        assert_eq!(parse_cancel_after("NaN"), None);
        assert_eq!(parse_cancel_after("-5"), None);
        assert_eq!(parse_cancel_after("99999999999999999999999h"), None);
        assert_eq!(
            parse_cancel_after("300000000000s"),
            Some(Duration::from_secs(300_000_000_000))
        );
    }

    #[test]
    fn checked_time_arithmetic() {
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(300_000_000_000);
        assert_eq!(rfc3339_ms(far), "9999-12-31T23:59:59.999Z");
        assert_eq!(
            rfc3339_ms(SystemTime::UNIX_EPOCH - Duration::from_secs(5)),
            "1969-12-31T23:59:55.000Z"
        );
        let now = SystemTime::now();
        assert!(wall_after(now, Duration::MAX) > now);
        let i = Instant::now();
        assert!(instant_after(i, Duration::MAX) > i);
        assert_eq!(scale_duration(Duration::from_secs(60), 1e300), None);
        assert_eq!(
            scale_duration(Duration::from_secs(5), 0.01),
            Some(Duration::from_millis(50))
        );
        assert_eq!(fraction(Duration::MAX, 3, 2), Duration::MAX);
        assert_eq!(
            fraction(Duration::from_secs(3), 1, 2),
            Duration::from_millis(1500)
        );
        assert!(http_date(far).starts_with("Fri, 31 Dec 9999"));
        assert!(http_date(SystemTime::UNIX_EPOCH - Duration::from_secs(5)).contains("1970"));
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
        assert_eq!(percent_encode("A-b_c.~"), "A-b_c.~");
        assert_eq!(percent_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(percent_decode(&percent_encode("x y+z&é")), "x y+z&é");
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
