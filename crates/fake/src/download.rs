//! File bodies: output files and `GET /v1/files/{id}/download`, with `Range`, `If-Range`, a
//! content-hash `ETag`, optional pacing, and frames of bounded size.

use std::sync::Arc;
use std::time::Duration;

use hyper::Method;

pub(crate) use crate::content::Content;
use crate::http::{Resp, RespBody, StreamBody};
use crate::request::Req;
use crate::state::Shared;
use crate::synthetic::SyntheticFile;
use crate::util::hex;

/// The SHA-256 (lowercase hex) of a synthetic file, computed off the async threads the first
/// time (see [`SyntheticFile::sha256`]); `None` if the server shut down meanwhile. While another
/// task computes it, this waits (on a timer) for its result.
pub(crate) async fn synthetic_sha256(shared: &Arc<Shared>, file: SyntheticFile) -> Option<String> {
    loop {
        if let Some(d) = file.cached_sha256() {
            return Some(hex(&d));
        }
        if *shared.shutdown.borrow() {
            return None;
        }
        if file.claim_digest() {
            let stop = shared.shutdown.clone();
            let task = tokio::task::spawn_blocking(move || file.sha256_until(&|| *stop.borrow()));
            let _ = task.await;
        } else {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Starts computing the digests of these synthetic files in the background, unless they are
/// known or being computed, so that their first download need not wait as long.
pub(crate) fn precompute(shared: &Arc<Shared>, files: &[SyntheticFile]) {
    for f in files {
        if !f.claim_digest() {
            continue;
        }
        let f = *f;
        let stop = shared.shutdown.clone();
        tokio::task::spawn_blocking(move || f.sha256_until(&|| *stop.borrow()));
    }
}

/// What a `Range` header asks of a representation of `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RangeAsk {
    /// No range, or one the server ignores (not `bytes`, malformed, several ranges): the
    /// whole representation.
    Whole,
    /// The bytes `start..end` (end exclusive, never empty).
    Part(u64, u64),
    /// A well-formed single range that selects nothing: 416.
    Unsatisfiable,
}

/// Reads a `Range` header value (RFC 9110 section 14) for a representation of `len` bytes:
/// `bytes=a-b`, `bytes=a-` or `bytes=-n`. A header the server does not handle (another unit, a
/// syntax error, several ranges) is ignored, as the RFC allows.
pub(crate) fn parse_range(value: Option<&str>, len: u64) -> RangeAsk {
    let Some(v) = value else {
        return RangeAsk::Whole;
    };
    let v = v.trim();
    let Some((unit, set)) = v.split_once('=') else {
        return RangeAsk::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((first, last)) = set.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // More digits than a u64 holds: beyond any length.
        Some(s.parse::<u64>().unwrap_or(u64::MAX))
    };
    if first.is_empty() {
        // A suffix: the last n bytes.
        let Some(n) = num(last) else {
            return RangeAsk::Whole;
        };
        if n == 0 || len == 0 {
            return RangeAsk::Unsatisfiable;
        }
        return RangeAsk::Part(len - n.min(len), len);
    }
    let Some(a) = num(first) else {
        return RangeAsk::Whole;
    };
    let end = if last.is_empty() {
        len
    } else {
        match num(last) {
            Some(b) if b >= a => b.saturating_add(1).min(len),
            _ => return RangeAsk::Whole,
        }
    };
    if a >= len {
        return RangeAsk::Unsatisfiable;
    }
    RangeAsk::Part(a, end)
}

/// Answers a `GET` or `HEAD` of a file: `200` with the whole body, `206` with the range asked
/// (when `If-Range`, if any, names the current `ETag`), or `416`; with `Accept-Ranges: bytes`
/// and `ETag: "<sha256 hex>"`. The body streams in frames of at most 64 KiB, paced at
/// [`Options::connection_rate`](crate::Options::connection_rate) when set.
pub(crate) fn serve(
    shared: &Shared,
    req: &Req,
    content: Content,
    sha256_hex: &str,
    content_type: &str,
) -> Resp {
    let etag = format!("\"{sha256_hex}\"");
    let len = content.len();
    let mut ask = if req.method == Method::GET {
        parse_range(req.header("range"), len)
    } else {
        RangeAsk::Whole
    };
    if ask != RangeAsk::Whole
        && let Some(v) = req.headers.get("if-range")
    {
        // A strong comparison with the current ETag; a date (the fake sends no
        // Last-Modified) or a weak tag never matches.
        if v.as_bytes().trim_ascii() != etag.as_bytes() {
            ask = RangeAsk::Whole;
        }
    }
    let (status, start, end) = match ask {
        RangeAsk::Whole => (200, 0, len),
        RangeAsk::Part(a, b) => (206, a, b),
        RangeAsk::Unsatisfiable => {
            return Resp::new(416, "text/plain", "Range Not Satisfiable\n")
                .header("accept-ranges", "bytes")
                .header("etag", etag)
                .header("content-range", format!("bytes */{len}"));
        }
    };
    let body = StreamBody::new(content, start, end, shared.opts.connection_rate);
    let mut resp = Resp {
        status,
        headers: vec![("content-type", content_type.to_owned())],
        body: RespBody::Stream(Box::new(body)),
    }
    .header("accept-ranges", "bytes")
    .header("etag", etag);
    if status == 206 {
        resp = resp.header("content-range", format!("bytes {start}-{}/{len}", end - 1));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_read() {
        use RangeAsk::*;
        let r = |v: &str, len: u64| parse_range(Some(v), len);
        assert_eq!(parse_range(None, 10), Whole);
        assert_eq!(r("bytes=0-0", 10), Part(0, 1));
        assert_eq!(r("bytes=2-5", 10), Part(2, 6));
        assert_eq!(r("bytes=2-", 10), Part(2, 10));
        assert_eq!(r("bytes=2-99", 10), Part(2, 10));
        assert_eq!(r("bytes=9-9", 10), Part(9, 10));
        assert_eq!(r("BYTES = 3 - 4", 10), Part(3, 5));
        assert_eq!(r("bytes=-3", 10), Part(7, 10));
        assert_eq!(r("bytes=-30", 10), Part(0, 10));
        assert_eq!(r("bytes=-99999999999999999999999", 10), Part(0, 10));
        assert_eq!(r("bytes=10-", 10), Unsatisfiable);
        assert_eq!(r("bytes=10-20", 10), Unsatisfiable);
        assert_eq!(r("bytes=99999999999999999999999-", 10), Unsatisfiable);
        assert_eq!(r("bytes=-0", 10), Unsatisfiable);
        assert_eq!(r("bytes=0-", 0), Unsatisfiable);
        assert_eq!(r("bytes=-5", 0), Unsatisfiable);
        for ignored in [
            "bytes=5-2",
            "bytes=a-b",
            "bytes=-",
            "bytes=1",
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes",
            "",
            "bytes=+1-2",
            "bytes=0x1-2",
        ] {
            assert_eq!(r(ignored, 10), Whole, "{ignored}");
        }
    }
}
