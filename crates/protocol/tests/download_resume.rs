//! `Download` resumes a cut body with `Range` and checks SHA-256 digests, driven by hand with
//! made-up instants, heads and chunks.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use http::{HeaderMap, Request, StatusCode};
use proptest::prelude::*;
use replicate_protocol::download::{
    Download, DownloadItem, DownloadLimits, Downloaded, Sha256Digest,
};
use replicate_protocol::{
    Config, Error, Flow, OutputErrorKind, RetryPolicy, Step, TransportError, TransportErrorKind,
};

const TOKEN: &str = "r8_Secr3tTokenValue42";
const OUTPUT: &str = "https://replicate.delivery/x/out.bin";
const API_FILE: &str = "https://proxy.example/replicate/v1/files/f1/download";

fn cfg() -> Config {
    Config::new(TOKEN)
        .with_base_url("https://proxy.example/replicate")
        .unwrap()
}

/// `len` bytes that differ from one offset to the next.
fn body(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[2])
        .collect()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    h
}

fn quoted(digest: Sha256Digest) -> String {
    format!("\"{digest}\"")
}

const ETAG: &str = "\"v1-abc\"";

/// A first answer that can be resumed: `Accept-Ranges`, a strong `ETag`, the length.
fn ranged_200(len: usize) -> HeaderMap {
    headers(&[
        ("accept-ranges", "bytes"),
        ("etag", ETAG),
        ("content-length", &len.to_string()),
        ("content-type", "application/octet-stream"),
    ])
}

fn partial(from: usize, len: usize) -> HeaderMap {
    headers(&[
        ("accept-ranges", "bytes"),
        ("etag", ETAG),
        ("content-range", &format!("bytes {from}-{}/{len}", len - 1)),
        ("content-length", &(len - from).to_string()),
    ])
}

fn reset() -> TransportError {
    TransportError::new(TransportErrorKind::Io, "connection reset by peer")
}

fn header<'r>(req: &'r Request<Vec<u8>>, name: &str) -> Option<&'r str> {
    req.headers().get(name).map(|v| v.to_str().unwrap())
}

/// Drives a download by hand and records what it hands out, as a sink would.
struct Harness {
    dl: Download,
    now: Instant,
    out: Vec<u8>,
    restarts: usize,
    requests: Vec<Request<Vec<u8>>>,
    result: Option<Result<Downloaded, Error>>,
}

impl Harness {
    fn new(dl: Download) -> Self {
        Harness {
            dl,
            now: Instant::now(),
            out: Vec::new(),
            restarts: 0,
            requests: Vec::new(),
            result: None,
        }
    }

    fn policy(retries: u32) -> RetryPolicy {
        RetryPolicy {
            max_retries: retries,
            ..RetryPolicy::default()
        }
    }

    /// Polls until the flow wants to receive (`false`), sends a request (`true`, kept in
    /// `requests`) or finishes (`false`, kept in `result`); sleeps pass at once.
    fn pump(&mut self) -> bool {
        loop {
            match self.dl.poll(self.now) {
                Step::Yield(DownloadItem::Chunk(c)) => self.out.extend_from_slice(&c),
                Step::Yield(DownloadItem::Restart) => {
                    self.out.clear();
                    self.restarts += 1;
                }
                Step::Sleep { until, .. } => {
                    assert!(until > self.now);
                    self.now = until;
                }
                Step::Send(out) => {
                    self.requests.push(out.request);
                    return true;
                }
                Step::Receive => return false,
                Step::Done(r) => {
                    self.result = Some(r);
                    return false;
                }
            }
        }
    }

    /// The next request the flow sends.
    fn request(&mut self) -> &Request<Vec<u8>> {
        assert!(self.pump(), "no request; result: {:?}", self.result);
        self.requests.last().unwrap()
    }

    fn head(&mut self, status: u16, headers: &HeaderMap) {
        self.dl
            .handle_head(StatusCode::from_u16(status).unwrap(), headers, self.now);
    }

    /// Feeds bytes in chunks of `size`.
    fn feed(&mut self, bytes: &[u8], size: usize) {
        for chunk in bytes.chunks(size.max(1)) {
            assert!(!self.pump(), "sent a request while a body was read");
            assert!(self.result.is_none(), "{:?}", self.result);
            self.dl.handle_chunk(chunk, self.now);
            self.now += Duration::from_millis(1);
        }
    }

    fn cut(&mut self) {
        self.dl.handle_error(reset(), self.now);
    }

    fn end(&mut self) {
        self.pump();
        self.dl.handle_end(self.now);
    }

    /// Drains what is left and returns the result.
    fn finish(&mut self) -> Result<Downloaded, Error> {
        assert!(!self.pump(), "the flow sent another request");
        self.result.take().expect("the download has not finished")
    }
}

// ---------------------------------------------------------------------------------------------
// Resuming

#[test]
fn a_cut_body_is_resumed_with_range_and_continues_without_restart() {
    let data = body(10_000);
    let mut h = Harness::new(Download::new(&cfg(), OUTPUT).unwrap());
    let first = h.request();
    assert!(header(first, "range").is_none());
    assert!(header(first, "if-range").is_none());
    h.head(200, &ranged_200(data.len()));
    h.feed(&data[..3000], 700);
    h.cut();
    let again = h.request();
    assert_eq!(again.uri(), OUTPUT);
    assert_eq!(header(again, "range"), Some("bytes=3000-"));
    assert_eq!(header(again, "if-range"), Some(ETAG));
    assert_eq!(header(again, "accept-encoding"), Some("identity"));
    assert!(header(again, "authorization").is_none());
    assert_eq!(h.dl.received(), 3000);
    h.head(206, &partial(3000, data.len()));
    h.feed(&data[3000..], 1024);
    h.end();
    let done = h.finish().unwrap();
    assert_eq!(h.out, data);
    assert_eq!(h.restarts, 0);
    assert_eq!(done.bytes, 10_000);
    assert_eq!(done.resumed, 1);
    assert_eq!(done.sha256, None);
    assert_eq!(
        done.content_type.as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(h.dl.retries(), 1);
    assert_eq!(h.dl.resumes(), 1);
}

#[test]
fn several_cuts_resume_several_times_and_each_resume_is_a_retry() {
    let data = body(9000);
    let mut h = Harness::new(
        Download::new(&cfg(), OUTPUT)
            .unwrap()
            .retry_policy(Harness::policy(3)),
    );
    h.request();
    h.head(200, &ranged_200(data.len()));
    h.feed(&data[..1000], 333);
    h.cut();
    for (from, to) in [(1000, 4000), (4000, 6000), (6000, 8000)] {
        assert_eq!(
            header(h.request(), "range"),
            Some(format!("bytes={from}-").as_str())
        );
        h.head(206, &partial(from, data.len()));
        h.feed(&data[from..to], 512);
        h.cut();
    }
    // Three retries spent: the fourth failure is final.
    let err = h.finish().unwrap_err();
    assert!(matches!(&err, Error::Transport(t) if t.kind == TransportErrorKind::Io));
    assert_eq!(h.dl.retries(), 3);
    assert_eq!(h.dl.resumes(), 3);
    assert_eq!(h.restarts, 0);
    assert_eq!(h.out, data[..8000]);
}

#[test]
fn a_200_to_a_range_request_restarts_with_the_whole_body() {
    let data = body(5000);
    let mut h = Harness::new(Download::new(&cfg(), OUTPUT).unwrap());
    h.request();
    h.head(200, &ranged_200(data.len()));
    h.feed(&data[..2500], 1000);
    h.cut();
    assert_eq!(header(h.request(), "range"), Some("bytes=2500-"));
    // If-Range did not match (say): the whole body, with a new ETag.
    let mut whole = ranged_200(data.len());
    whole.insert("etag", "\"v2\"".parse().unwrap());
    h.head(200, &whole);
    h.feed(&data[..4000], 1000);
    assert_eq!(h.restarts, 1);
    // The new body resumes in turn, with its own validator.
    h.cut();
    let again = h.request();
    assert_eq!(header(again, "range"), Some("bytes=4000-"));
    assert_eq!(header(again, "if-range"), Some("\"v2\""));
    let mut rest = partial(4000, data.len());
    rest.insert("etag", "\"v2\"".parse().unwrap());
    h.head(206, &rest);
    h.feed(&data[4000..], 300);
    h.end();
    let done = h.finish().unwrap();
    assert_eq!(h.out, data);
    assert_eq!(h.restarts, 1);
    assert_eq!(done.resumed, 1);
    assert_eq!(h.dl.retries(), 2);
}

/// A resume answered by `answer` starts over from the original URL, at once, without `Range`,
/// and never sends `Range` again.
fn assert_safe_restart(answer: u16, answer_headers: HeaderMap) {
    let data = body(6000);
    let start = "https://replicate.delivery/x/start";
    let mut h = Harness::new(
        Download::new(&cfg(), start)
            .unwrap()
            .retry_policy(Harness::policy(5)),
    );
    h.request();
    h.head(
        302,
        &headers(&[("location", "https://cdn.example/blob?sig=1")]),
    );
    assert_eq!(h.request().uri(), "https://cdn.example/blob?sig=1");
    h.head(200, &ranged_200(data.len()));
    h.feed(&data[..2000], 500);
    h.cut();
    let resume = h.request();
    assert_eq!(resume.uri(), "https://cdn.example/blob?sig=1");
    assert_eq!(header(resume, "range"), Some("bytes=2000-"));
    let before = h.now;
    h.head(answer, &answer_headers);
    let again = h.request();
    assert_eq!(again.uri(), start, "after HTTP {answer} {answer_headers:?}");
    assert!(header(again, "range").is_none());
    assert!(header(again, "if-range").is_none());
    assert_eq!(h.now, before, "no backoff before the restart");
    assert_eq!(h.restarts, 1);
    assert!(h.out.is_empty());
    h.head(
        302,
        &headers(&[("location", "https://cdn.example/blob?sig=2")]),
    );
    h.request();
    h.head(200, &ranged_200(data.len()));
    h.feed(&data[..3000], 500);
    // A later cut: a plain retry from the start, with no Range.
    h.cut();
    let last = h.request();
    assert_eq!(last.uri(), start);
    assert!(header(last, "range").is_none());
    assert_eq!(h.restarts, 2);
    h.head(200, &ranged_200(data.len()));
    h.feed(&data, 4096);
    h.end();
    let done = h.finish().unwrap();
    assert_eq!(h.out, data);
    assert_eq!(done.resumed, 0);
    assert_eq!(h.dl.retries(), 3);
}

#[test]
fn a_206_with_a_wrong_content_range_starts_over_without_range() {
    let len = 6000;
    let with = |range: &str| {
        let mut h = partial(2000, len);
        h.insert("content-range", range.parse().unwrap());
        h
    };
    let without = {
        let mut h = partial(2000, len);
        h.remove("content-range");
        h
    };
    for case in [
        with("bytes 1999-5999/6000"),
        with("bytes 2001-5999/6000"),
        with("bytes 0-5999/6000"),
        with("bytes 2000-4999/6000"),
        with("bytes 2000-6999/7000"),
        with("bytes 2000-5999/*"),
        with("bytes */6000"),
        with("bytes 2000-5999"),
        with("bytes +2000-5999/6000"),
        with("items 2000-5999/6000"),
        with("bytes 2000-1999/6000"),
        without,
    ] {
        // (`bytes 2000-5999/*` is fine: the first Content-Length gave the total; its wrong
        // Content-Length is not.)
        let mut case = case;
        if case.get("content-range").map(|v| v.to_str().unwrap()) == Some("bytes 2000-5999/*") {
            case.insert("content-length", "3999".parse().unwrap());
        }
        assert_safe_restart(206, case);
    }
    // A different ETag, an encoded body.
    let mut other = partial(2000, len);
    other.insert("etag", "\"v2\"".parse().unwrap());
    assert_safe_restart(206, other);
    let mut encoded = partial(2000, len);
    encoded.insert("content-encoding", "gzip".parse().unwrap());
    assert_safe_restart(206, encoded);
}

#[test]
fn a_416_or_an_expired_body_link_starts_over_without_range() {
    assert_safe_restart(416, headers(&[("content-range", "bytes */6000")]));
    assert_safe_restart(403, HeaderMap::new());
    assert_safe_restart(204, HeaderMap::new());
}

#[test]
fn a_5xx_to_a_resume_is_retried_and_resumed_again() {
    let data = body(4000);
    let mut h = Harness::new(Download::new(&cfg(), OUTPUT).unwrap());
    h.request();
    h.head(200, &ranged_200(data.len()));
    h.feed(&data[..1500], 500);
    h.cut();
    h.request();
    let before = h.now;
    h.head(503, &HeaderMap::new());
    let again = h.request().clone();
    assert!(h.now > before, "backoff before the retry");
    assert_eq!(header(&again, "range"), Some("bytes=1500-"));
    assert_eq!(header(&again, "if-range"), Some(ETAG));
    h.head(206, &partial(1500, data.len()));
    h.feed(&data[1500..], 500);
    h.end();
    let done = h.finish().unwrap();
    assert_eq!(h.out, data);
    assert_eq!((h.restarts, done.resumed, h.dl.retries()), (0, 1, 2));
}

#[test]
fn without_accept_ranges_a_cut_restarts_from_zero_as_before() {
    let data = body(3000);
    for first in [
        headers(&[("etag", ETAG), ("content-length", "3000")]),
        headers(&[("accept-ranges", "none"), ("etag", ETAG)]),
        headers(&[
            ("accept-ranges", "bytes"),
            ("etag", ETAG),
            ("content-encoding", "gzip"),
        ]),
    ] {
        let mut h = Harness::new(Download::new(&cfg(), OUTPUT).unwrap());
        h.request();
        h.head(200, &first);
        h.feed(&data[..1000], 100);
        h.cut();
        let again = h.request();
        assert!(header(again, "range").is_none(), "{first:?}");
        assert!(header(again, "if-range").is_none());
        assert_eq!(h.restarts, 1);
        h.head(200, &first);
        h.feed(&data, 1000);
        h.end();
        assert_eq!(h.finish().unwrap().bytes, 3000);
        assert_eq!(h.out, data);
    }
}

#[test]
fn if_range_is_a_strong_validator_or_absent() {
    let resume_headers = |first: HeaderMap| {
        let mut h = Harness::new(Download::new(&cfg(), OUTPUT).unwrap());
        h.request();
        h.head(200, &first);
        h.feed(&[1; 10], 10);
        h.cut();
        let req = h.request();
        (
            header(req, "range").map(str::to_owned),
            header(req, "if-range").map(str::to_owned),
        )
    };
    let lm = "Tue, 01 Oct 2024 10:00:00 GMT";
    // A weak ETag is never sent; without a strong one, a strong Last-Modified is.
    assert_eq!(
        resume_headers(headers(&[
            ("accept-ranges", "bytes"),
            ("etag", "W/\"weak\""),
            ("last-modified", lm),
            ("date", "Tue, 01 Oct 2024 10:00:05 GMT"),
        ])),
        (Some("bytes=10-".into()), Some(lm.into()))
    );
    // A Last-Modified as recent as the Date is weak: Range alone.
    assert_eq!(
        resume_headers(headers(&[
            ("accept-ranges", "bytes"),
            ("last-modified", lm),
            ("date", lm),
        ])),
        (Some("bytes=10-".into()), None)
    );
    assert_eq!(
        resume_headers(headers(&[("accept-ranges", "bytes"), ("etag", "W/\"w\"")])),
        (Some("bytes=10-".into()), None)
    );
    // The strong ETag wins over the date.
    assert_eq!(
        resume_headers(headers(&[
            ("accept-ranges", "bytes"),
            ("etag", ETAG),
            ("last-modified", lm),
            ("date", "Tue, 01 Oct 2024 10:00:05 GMT"),
        ])),
        (Some("bytes=10-".into()), Some(ETAG.into()))
    );
}

#[test]
fn without_any_known_total_a_206_is_not_trusted() {
    // No Content-Length at first, no complete length in the Content-Range: the end of the range
    // cannot be checked, so the download starts over.
    let mut h = Harness::new(Download::new(&cfg(), OUTPUT).unwrap());
    h.request();
    h.head(200, &headers(&[("accept-ranges", "bytes"), ("etag", ETAG)]));
    h.feed(&[7; 100], 10);
    h.cut();
    h.request();
    h.head(
        206,
        &headers(&[("etag", ETAG), ("content-range", "bytes 100-199/*")]),
    );
    assert!(header(h.request(), "range").is_none());
    assert_eq!(h.restarts, 1);
    // With the complete length in the Content-Range, it is.
    let data = body(300);
    let mut h = Harness::new(Download::new(&cfg(), OUTPUT).unwrap());
    h.request();
    h.head(200, &headers(&[("accept-ranges", "bytes"), ("etag", ETAG)]));
    h.feed(&data[..100], 10);
    h.cut();
    h.request();
    h.head(
        206,
        &headers(&[("etag", ETAG), ("content-range", "bytes 100-299/300")]),
    );
    h.feed(&data[100..], 64);
    h.end();
    assert_eq!(h.finish().unwrap().resumed, 1);
    assert_eq!(h.out, data);
}

#[test]
fn a_body_shorter_than_announced_is_a_cut_and_is_resumed() {
    let data = body(2000);
    let mut h = Harness::new(Download::new(&cfg(), OUTPUT).unwrap());
    h.request();
    h.head(200, &ranged_200(data.len()));
    h.feed(&data[..1200], 400);
    h.end();
    assert_eq!(header(h.request(), "range"), Some("bytes=1200-"));
    h.head(206, &partial(1200, data.len()));
    h.feed(&data[1200..1900], 400);
    h.end();
    assert_eq!(header(h.request(), "range"), Some("bytes=1900-"));
    h.head(206, &partial(1900, data.len()));
    h.feed(&data[1900..], 400);
    h.end();
    let done = h.finish().unwrap();
    assert_eq!((done.bytes, done.resumed, h.restarts), (2000, 2, 0));
    assert_eq!(h.out, data);
}

#[test]
fn an_unrequested_206_is_refused() {
    let mut h = Harness::new(
        Download::new(&cfg(), OUTPUT)
            .unwrap()
            .retry_policy(RetryPolicy::none()),
    );
    h.request();
    h.head(206, &partial(0, 100));
    let err = h.finish().unwrap_err();
    assert!(
        matches!(&err, Error::Output(o) if o.kind == OutputErrorKind::Status(206)),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The token on resumes

#[test]
fn a_resume_goes_to_the_body_hop_and_gets_the_token_by_the_same_rules() {
    let data = body(1000);
    let cut_and_resume = |h: &mut Harness| {
        h.head(200, &ranged_200(data.len()));
        h.feed(&data[..400], 100);
        h.cut();
        let resume = h.request().clone();
        h.head(206, &partial(400, data.len()));
        h.feed(&data[400..], 100);
        h.end();
        assert_eq!(h.finish().unwrap().resumed, 1);
        assert_eq!(h.out, data);
        resume
    };
    // The API origin serves the body itself: the resume carries the token, as the first did.
    let mut h = Harness::new(Download::new(&cfg(), API_FILE).unwrap());
    assert!(header(h.request(), "authorization").is_some());
    let resume = cut_and_resume(&mut h);
    assert_eq!(resume.uri(), API_FILE);
    assert_eq!(
        header(&resume, "authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );

    // The API redirects to an output host: the resume goes there, without the token.
    let mut h = Harness::new(Download::new(&cfg(), API_FILE).unwrap());
    h.request();
    h.head(
        302,
        &headers(&[("location", "https://files.example/f1?sig=abc")]),
    );
    assert!(header(h.request(), "authorization").is_none());
    let resume = cut_and_resume(&mut h);
    assert_eq!(resume.uri(), "https://files.example/f1?sig=abc");
    assert!(header(&resume, "authorization").is_none());

    // Out of the origin and back: the body hop had no token, nor does its resume.
    let mut h = Harness::new(Download::new(&cfg(), OUTPUT).unwrap());
    h.request();
    h.head(302, &headers(&[("location", API_FILE)]));
    assert!(header(h.request(), "authorization").is_none());
    let resume = cut_and_resume(&mut h);
    assert_eq!(resume.uri(), API_FILE);
    assert!(header(&resume, "authorization").is_none());
    assert!(!h.dl.sends_token());
    for req in &h.requests {
        assert!(header(req, "authorization").is_none(), "{req:?}");
    }
}

#[test]
fn a_resume_that_is_redirected_keeps_its_range_and_the_token_rules() {
    let data = body(1000);
    let mut h = Harness::new(Download::new(&cfg(), API_FILE).unwrap());
    h.request();
    h.head(200, &ranged_200(data.len()));
    h.feed(&data[..300], 100);
    h.cut();
    assert!(header(h.request(), "authorization").is_some());
    h.head(
        307,
        &headers(&[("location", "https://files.example/f1?sig=1")]),
    );
    let hop = h.request();
    assert_eq!(header(hop, "range"), Some("bytes=300-"));
    assert!(header(hop, "authorization").is_none());
    h.head(206, &partial(300, data.len()));
    h.feed(&data[300..500], 100);
    h.cut();
    // The body now comes from the output host: the next resume goes there, still no token.
    let next = h.request();
    assert_eq!(next.uri(), "https://files.example/f1?sig=1");
    assert_eq!(header(next, "range"), Some("bytes=500-"));
    assert!(header(next, "authorization").is_none());
    h.head(206, &partial(500, data.len()));
    h.feed(&data[500..], 100);
    h.end();
    assert_eq!(h.finish().unwrap().resumed, 2);
    assert_eq!(h.out, data);
}

// ---------------------------------------------------------------------------------------------
// The size cap

#[test]
fn the_cap_counts_the_whole_body_across_resumes() {
    let limits = DownloadLimits {
        max_bytes: 8000,
        ..DownloadLimits::default()
    };
    // A 206 whose remaining length would take the total over the cap: refused before reading,
    // and not retried.
    let mut h = Harness::new(Download::new(&cfg(), OUTPUT).unwrap().limits(limits));
    h.request();
    h.head(200, &headers(&[("accept-ranges", "bytes"), ("etag", ETAG)]));
    h.feed(&[0; 6000], 1000);
    h.cut();
    h.request();
    h.head(206, &partial(6000, 9000));
    let err = h.finish().unwrap_err();
    assert!(
        matches!(&err, Error::Transport(t) if t.kind == TransportErrorKind::BodyTooLarge),
        "{err:?}"
    );
    assert_eq!(h.dl.retries(), 1);

    // Without a Content-Length, the bytes themselves are counted with those received before.
    let mut h = Harness::new(Download::new(&cfg(), OUTPUT).unwrap().limits(limits));
    h.request();
    h.head(200, &headers(&[("accept-ranges", "bytes"), ("etag", ETAG)]));
    h.feed(&[0; 6000], 1000);
    h.cut();
    h.request();
    h.head(
        206,
        &headers(&[("etag", ETAG), ("content-range", "bytes 6000-7999/8000")]),
    );
    h.feed(&[0; 2000], 1000);
    h.end();
    assert_eq!(h.finish().unwrap().bytes, 8000);

    // Exactly at the cap is fine; a remaining length that fits is not double-counted.
    let mut h = Harness::new(Download::new(&cfg(), OUTPUT).unwrap().limits(limits));
    h.request();
    h.head(200, &ranged_200(8000));
    h.feed(&[0; 5000], 1000);
    h.cut();
    h.request();
    h.head(206, &partial(5000, 8000));
    h.feed(&[0; 3000], 1000);
    h.end();
    assert_eq!(h.finish().unwrap().bytes, 8000);
}

#[test]
fn check_remaining_length_adds_what_was_received() {
    let limits = DownloadLimits {
        max_bytes: 100,
        ..DownloadLimits::default()
    };
    let cl = |n: u64| headers(&[("content-length", &n.to_string())]);
    assert!(limits.check_remaining_length(60, &cl(40)).is_ok());
    assert!(limits.check_remaining_length(60, &cl(41)).is_err());
    assert!(limits.check_remaining_length(0, &cl(100)).is_ok());
    assert!(limits.check_remaining_length(200, &cl(0)).is_ok());
    assert!(limits.check_remaining_length(200, &cl(1)).is_err());
    assert!(limits.check_content_length(&cl(100)).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Checksums

fn mismatch(err: &Error) -> &str {
    match err {
        Error::Output(o) if o.kind == OutputErrorKind::ChecksumMismatch => &o.message,
        other => panic!("not a checksum mismatch: {other:?}"),
    }
}

#[test]
fn an_expected_sha256_that_matches_passes_and_is_reported() {
    let data = body(4096);
    let digest = Sha256Digest::of(&data);
    let dl = Download::new(&cfg(), OUTPUT)
        .unwrap()
        .expect_sha256_hex(&digest.to_hex().to_uppercase())
        .unwrap();
    assert_eq!(dl.expected_sha256(), Some(digest));
    let mut h = Harness::new(dl);
    h.request();
    h.head(200, &HeaderMap::new());
    h.feed(&data, 1000);
    h.end();
    assert_eq!(h.finish().unwrap().sha256, Some(digest));
    assert!(
        Download::new(&cfg(), OUTPUT)
            .unwrap()
            .expect_sha256_hex("abc")
            .is_err()
    );
}

#[test]
fn a_sha256_mismatch_is_a_typed_error_naming_both_digests() {
    let data = body(3000);
    let wrong = Sha256Digest::of(b"something else");
    let mut h = Harness::new(
        Download::new(
            &cfg(),
            "https://replicate.delivery/x/out.bin?token=q_s3cret",
        )
        .unwrap()
        .expect_sha256(wrong),
    );
    h.request();
    h.head(200, &ranged_200(data.len()));
    h.feed(&data, 1000);
    h.end();
    let err = h.finish().unwrap_err();
    let msg = mismatch(&err);
    assert!(msg.contains(&wrong.to_hex()), "{msg}");
    assert!(msg.contains(&Sha256Digest::of(&data).to_hex()), "{msg}");
    let text = err.to_string();
    assert!(
        !text.contains("q_s3cret") && !text.contains(TOKEN),
        "{text}"
    );
    // Not retried: one request only.
    assert_eq!(h.requests.len(), 1);
    assert_eq!(h.dl.retries(), 0);
}

#[test]
fn the_hash_continues_across_a_resume_and_restarts_with_the_body() {
    let data = body(7000);
    let digest = Sha256Digest::of(&data);
    let mut h = Harness::new(Download::new(&cfg(), OUTPUT).unwrap().expect_sha256(digest));
    h.request();
    h.head(200, &ranged_200(data.len()));
    // Garbage first, then a cut: after a restart it must not count.
    h.feed(&[0xAA; 2000], 500);
    h.cut();
    h.request();
    h.head(200, &headers(&[("content-length", "7000")]));
    h.feed(&data[..1000], 300);
    assert_eq!(h.restarts, 1);
    h.cut();
    // No Accept-Ranges on that one: from zero again.
    assert!(header(h.request(), "range").is_none());
    h.head(200, &ranged_200(data.len()));
    assert_eq!(h.restarts, 2);
    h.feed(&data[..2500], 300);
    h.cut();
    h.request();
    h.head(206, &partial(2500, data.len()));
    h.feed(&data[2500..5000], 300);
    h.cut();
    h.request();
    h.head(206, &partial(5000, data.len()));
    h.feed(&data[5000..], 300);
    h.end();
    let done = h.finish().unwrap();
    assert_eq!(done.sha256, Some(digest));
    assert_eq!(done.resumed, 2);
    assert_eq!(h.out, data);
}

#[test]
fn a_resumed_body_that_fails_its_checksum_is_downloaded_once_more_whole() {
    let data = body(5000);
    let digest = Sha256Digest::of(&data);
    let mut h = Harness::new(Download::new(&cfg(), OUTPUT).unwrap().expect_sha256(digest));
    h.request();
    h.head(200, &ranged_200(data.len()));
    h.feed(&data[..2000], 500);
    h.cut();
    h.request();
    // The server stitched another version behind the same validator.
    h.head(206, &partial(2000, data.len()));
    h.feed(&body(5001)[2001..], 500);
    h.end();
    let again = h.request();
    assert_eq!(again.uri(), OUTPUT);
    assert!(header(again, "range").is_none());
    assert_eq!(h.restarts, 1);
    h.head(200, &ranged_200(data.len()));
    h.feed(&data, 1000);
    h.end();
    assert_eq!(h.finish().unwrap().sha256, Some(digest));
    assert_eq!(h.out, data);

    // Once only: the second mismatch is final.
    let mut h = Harness::new(Download::new(&cfg(), OUTPUT).unwrap().expect_sha256(digest));
    h.request();
    h.head(200, &ranged_200(data.len()));
    h.feed(&data[..2000], 500);
    h.cut();
    h.request();
    h.head(206, &partial(2000, data.len()));
    h.feed(&[0; 3000], 500);
    h.end();
    h.request();
    h.head(200, &ranged_200(data.len()));
    h.feed(&[0; 5000], 1000);
    h.end();
    mismatch(&h.finish().unwrap_err());
    assert_eq!(h.requests.len(), 3);
}

#[test]
fn a_content_hash_etag_is_checked_for_the_api_file_download_only_by_default() {
    let data = body(2048);
    let good = quoted(Sha256Digest::of(&data));
    let bad = quoted(Sha256Digest::of(b"other"));
    let run = |dl: Download, etag: &str| {
        let mut h = Harness::new(dl);
        h.request();
        h.head(
            200,
            &headers(&[("etag", etag), ("content-length", &data.len().to_string())]),
        );
        h.feed(&data, 1000);
        h.end();
        let expected = h.dl.expected_sha256();
        (h.finish(), expected)
    };
    let api = || Download::new(&cfg(), API_FILE).unwrap();
    let output = || Download::new(&cfg(), OUTPUT).unwrap();

    // The API's own file download: checked.
    let (ok, expected) = run(api(), &good);
    assert_eq!(ok.unwrap().sha256, Some(Sha256Digest::of(&data)));
    assert_eq!(expected, Some(Sha256Digest::of(&data)));
    let (err, _) = run(api(), &bad);
    let err = err.unwrap_err();
    assert!(mismatch(&err).contains("ETag"), "{err}");
    // Upper-case hex is the same digest.
    assert!(run(api(), &good.to_uppercase()).0.is_ok());
    // Opted out: not checked.
    assert!(run(api().verify_etag_sha256(false), &bad).0.is_ok());
    // Another host's opaque ETag, even 64 hex digits: not checked unless opted in.
    let (ok, expected) = run(output(), &bad);
    assert_eq!(ok.unwrap().sha256, None);
    assert_eq!(expected, None);
    mismatch(&run(output().verify_etag_sha256(true), &bad).0.unwrap_err());
    assert!(run(output().verify_etag_sha256(true), &good).0.is_ok());
    // Weak, unquoted, or not 64 hex digits: never a digest.
    let hex = Sha256Digest::of(b"other").to_hex();
    for etag in [
        format!("W/\"{hex}\""),
        hex.clone(),
        format!("\"{}\"", &hex[..40]),
        "\"d41d8cd98f00b204e9800998ecf8427e-2\"".to_owned(),
    ] {
        assert!(
            run(api().verify_etag_sha256(true), &etag).0.is_ok(),
            "{etag}"
        );
    }
}

#[test]
fn an_api_file_download_redirected_elsewhere_does_not_trust_that_hosts_etag() {
    let data = body(1000);
    let mut h = Harness::new(Download::new(&cfg(), API_FILE).unwrap());
    h.request();
    h.head(
        302,
        &headers(&[("location", "https://bucket.s3.example/f1?X-Amz-Signature=1")]),
    );
    h.request();
    h.head(
        200,
        &headers(&[("etag", &quoted(Sha256Digest::of(b"md5-ish")))]),
    );
    h.feed(&data, 500);
    h.end();
    assert!(h.finish().is_ok());
}

#[test]
fn the_callers_digest_takes_precedence_over_the_etag() {
    let data = body(1000);
    let digest = Sha256Digest::of(&data);
    let run = |expected: Sha256Digest, etag: Sha256Digest| {
        let mut h = Harness::new(
            Download::new(&cfg(), API_FILE)
                .unwrap()
                .expect_sha256(expected),
        );
        h.request();
        h.head(200, &headers(&[("etag", &quoted(etag))]));
        assert_eq!(h.dl.expected_sha256(), Some(expected));
        h.feed(&data, 500);
        h.end();
        h.finish()
    };
    assert_eq!(
        run(digest, Sha256Digest::of(b"stale")).unwrap().sha256,
        Some(digest)
    );
    let err = run(Sha256Digest::of(b"wrong"), digest).unwrap_err();
    assert!(mismatch(&err).contains("expected"), "{err}");
}

#[test]
fn digests_parse_and_print() {
    let d = Sha256Digest::of(b"abc");
    assert_eq!(
        d.to_hex(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(Sha256Digest::from_hex(&format!("  {d}\n")).unwrap(), d);
    assert_eq!(Sha256Digest::from(*d.as_bytes()), d);
    assert!(Sha256Digest::from_hex(&"g".repeat(64)).is_err());
    assert!(Sha256Digest::from_hex(&"a".repeat(63)).is_err());
    assert!(Sha256Digest::from_hex(&"é".repeat(32)).is_err());
    assert_eq!(format!("{d:?}"), format!("Sha256Digest({d})"));
}

// ---------------------------------------------------------------------------------------------
// Any cuts, any answers

/// Serves `data` to a download: each attempt is cut at the next of `cuts` (absolute offsets;
/// those not beyond the attempt's start are skipped), a `Range` is honoured when the next of
/// `honour` says so, chunks are `chunk` bytes. Returns the harness when the download ended.
fn serve(
    dl: Download,
    data: &[u8],
    cuts: &[usize],
    honour: &[bool],
    chunk: usize,
    corrupt_at: Option<usize>,
) -> (Harness, usize) {
    let mut h = Harness::new(dl);
    let mut cuts = cuts.iter().copied();
    let mut honour = honour.iter().copied().cycle();
    let mut served_corrupt = false;
    let mut cut_count = 0;
    for _ in 0..200 {
        if !h.pump() {
            assert!(
                h.result.is_some(),
                "the flow wants to read with no request out"
            );
            return (h, cut_count);
        }
        let req = h.requests.last().unwrap();
        let range = header(req, "range").map(|r| {
            r.strip_prefix("bytes=")
                .unwrap()
                .strip_suffix('-')
                .unwrap()
                .parse::<usize>()
                .unwrap()
        });
        let from = match range {
            Some(from) if honour.next().unwrap() && from < data.len() => {
                h.head(206, &partial(from, data.len()));
                from
            }
            _ => {
                h.head(200, &ranged_200(data.len()));
                0
            }
        };
        let cut = cuts.by_ref().find(|&c| c > from);
        let stop = cut.unwrap_or(data.len()).min(data.len());
        let mut piece = data[from..stop].to_vec();
        if let Some(at) = corrupt_at
            && !served_corrupt
            && (from..stop).contains(&at)
        {
            // One corrupt byte, once.
            piece[at - from] ^= 0xFF;
            served_corrupt = true;
        }
        h.feed(&piece, chunk);
        if cut.is_some_and(|c| c < data.len()) {
            cut_count += 1;
            h.cut();
        } else {
            h.end();
        }
    }
    panic!("the download never ended");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_cuts_and_answers_reassemble_the_body_and_judge_the_checksum(
        len in 1usize..6000,
        mut cuts in prop::collection::vec(0usize..6000, 0..6),
        honour in prop::collection::vec(any::<bool>(), 1..4),
        chunk in 1usize..2000,
        expect in 0u8..3,
        corrupt in prop::option::of(0usize..6000),
    ) {
        let data = body(len);
        cuts.sort_unstable();
        let digest = Sha256Digest::of(&data);
        let mut dl = Download::new(&cfg(), OUTPUT)
            .unwrap()
            .retry_policy(Harness::policy(10));
        // 0: no digest, 1: the right one, 2: a wrong one.
        match expect {
            1 => dl = dl.expect_sha256(digest),
            2 => dl = dl.expect_sha256(Sha256Digest::of(b"wrong")),
            _ => {}
        }
        let corrupt = corrupt.filter(|&c| c < len);
        let (h, cuts_used) = serve(dl, &data, &cuts, &honour, chunk, corrupt);
        let result = h.result.clone().unwrap();
        match (expect, corrupt) {
            (0, None) | (1, None) => {
                let done = result.unwrap();
                prop_assert_eq!(&h.out, &data);
                prop_assert_eq!(done.bytes, len as u64);
                prop_assert_eq!(done.sha256, (expect == 1).then_some(digest));
                prop_assert!(done.resumed as usize <= cuts_used);
                prop_assert_eq!(h.dl.retries() as usize, cuts_used);
            }
            (0, Some(_)) => {
                // Nothing to check against: the corrupt byte passes (the point of a digest).
                let done = result.unwrap();
                prop_assert_eq!(done.bytes, len as u64);
                prop_assert_eq!(h.out.len(), len);
            }
            (1, Some(_)) => {
                // Caught: either final, or (resumed pieces) downloaded once more whole, which
                // the server then serves right; or discarded by a restart before the end.
                match result {
                    Ok(done) => {
                        prop_assert_eq!(&h.out, &data);
                        prop_assert_eq!(done.sha256, Some(digest));
                    }
                    Err(e) => {
                        mismatch(&e);
                    }
                }
            }
            _ => {
                let err = result.unwrap_err();
                let msg = mismatch(&err);
                prop_assert!(msg.contains(&Sha256Digest::of(b"wrong").to_hex()));
            }
        }
    }
}
