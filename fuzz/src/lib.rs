//! Helpers shared by the fuzz targets.
//!
//! The `prediction`, `page` and `error` targets read their input as a tiny HTTP response, so that
//! seed files stay readable and the fixtures can be used as seeds:
//!
//! ```text
//! 429                         <- status line: decimal digits (100..=999), then LF
//! retry-after: 5              <- zero or more `name: value` header lines
//! date: Wed, 21 Oct 2015 07:28:00 GMT
//!                             <- a blank line
//! {"detail": "throttled"}     <- the body: every remaining byte
//! ```
//!
//! An input that does not start with a status line is a `200` body without headers. Header lines
//! whose name or value `http` rejects are skipped (values may hold any byte `HeaderValue` accepts,
//! including obs-text).

use http::{HeaderName, HeaderValue, Response, StatusCode};

/// Decodes a fuzz input as described in the crate documentation. `None` when the status line holds
/// a number that is not a valid status code.
pub fn response(data: &[u8]) -> Option<Response<&[u8]>> {
    let digits = data.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || data.get(digits) != Some(&b'\n') {
        return Some(Response::new(data));
    }
    let code: u16 = std::str::from_utf8(&data[..digits]).ok()?.parse().ok()?;
    let status = StatusCode::from_u16(code).ok()?;
    let mut rest = &data[digits + 1..];
    let mut builder = Response::builder().status(status);
    loop {
        let (line, after) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = after;
        if line.is_empty() {
            break;
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let value = &line[colon + 1..];
            let value = value.strip_prefix(b" ").unwrap_or(value);
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(&line[..colon]),
                HeaderValue::from_bytes(value),
            ) {
                builder = builder.header(name, value);
            }
        }
    }
    builder.body(rest).ok()
}

/// A response with the given status and body, no headers.
pub fn plain(status: u16, body: &[u8]) -> Response<&[u8]> {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(status).expect("a valid status");
    resp
}
