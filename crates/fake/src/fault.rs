//! Fault injection.

use std::time::{Duration, SystemTime};

use crate::origin::Origin;

/// A `Retry-After` value sent with a [`Fault::Status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: <seconds>`.
    Seconds(u64),
    /// `Retry-After: <HTTP date>`.
    HttpDate(SystemTime),
}

/// What goes wrong with a matching request.
///
/// Whether the request *takes effect* (e.g. a create really creates a prediction) depends on the
/// fault:
///
/// - answered instead of the API, so nothing happens: [`Status`](Fault::Status),
///   [`Redirect`](Fault::Redirect), [`HugeBody`](Fault::HugeBody),
///   [`ResetBeforeRead`](Fault::ResetBeforeRead), [`Echo`](Fault::Echo);
/// - applied for real, only the answer is spoiled: [`Delay`](Fault::Delay),
///   [`TruncatedJson`](Fault::TruncatedJson), [`GarbageJson`](Fault::GarbageJson),
///   [`ResetAfterRead`](Fault::ResetAfterRead), [`DropStreamAfter`](Fault::DropStreamAfter),
///   [`NextCursor`](Fault::NextCursor), [`Drip`](Fault::Drip), [`CutAfter`](Fault::CutAfter),
///   [`Corrupt`](Fault::Corrupt), [`ApplyThen`](Fault::ApplyThen);
/// - [`SilentStream`](Fault::SilentStream) only concerns streams, which change nothing.
///
/// [`DropStreamAfter`](Fault::DropStreamAfter) and [`SilentStream`](Fault::SilentStream) match
/// only SSE stream requests (`GET /v1/streams/{id}` on the files origin); the others match any
/// request.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Answer with this status instead. Without `body`: 429 gets Replicate's throttle JSON
    /// (`{"detail":"Request was throttled. Expected available in N second(s).","status":429,"retry_after":N}`
    /// plus `ratelimit-remaining: 0` and `ratelimit-reset: N`), 502/504 get an HTML page as proxies
    /// send, others a problem-details JSON. `retry_after` adds a `Retry-After` header.
    Status {
        /// The HTTP status code.
        status: u16,
        /// An optional `Retry-After` header.
        retry_after: Option<RetryAfter>,
        /// A body to send instead of the default one.
        body: Option<String>,
    },
    /// Close the TCP connection with an RST after the request head arrives, before reading the
    /// body. The request does not take effect.
    ResetBeforeRead,
    /// Read and apply the request, then close the connection with an RST without answering.
    ResetAfterRead,
    /// Wait this long before handling the request (slow response headers).
    Delay(Duration),
    /// Answer the real response with its body cut in half and a `Content-Length` that matches
    /// the cut body: well-formed HTTP, broken JSON.
    TruncatedJson,
    /// Answer the real status and headers with a body that is not JSON.
    GarbageJson,
    /// Answer 200 `application/json` with a body of this many bytes, streamed.
    HugeBody(usize),
    /// Answer `302 Found` with `Location` set to this URL.
    Redirect(String),
    /// For an SSE stream request: send this many events, then drop the connection mid-stream.
    /// It matches only stream requests.
    DropStreamAfter(usize),
    /// Apply a list request for real, but set the page's `next` to a URL whose `cursor` query
    /// parameter is this string (percent-encoded), an absolute URL on the API origin of the same
    /// shape as real `next` URLs (`{base}/v1/predictions?cursor=...`, on
    /// [`Options::api_host_in_bodies`](crate::Options::api_host_in_bodies) when set).
    ///
    /// A cursor in the request that the fake did not make (such as one a `NextCursor` made up)
    /// is ignored when this fault applies: the first page is served. So rules matching
    /// `path_contains("cursor=A")` with `NextCursor("B")` and `path_contains("cursor=B")` with
    /// `NextCursor("A")` make a cursor cycle. Answers that are not a page (no `results`) are left
    /// as they are. The request takes effect (listing changes nothing).
    NextCursor(String),
    /// Apply the request and send the real response (status, headers, exact `Content-Length`),
    /// but write its body `chunk` bytes at a time with `interval` between writes (the first
    /// chunk at once). Works on both origins (API answers, output files and file downloads,
    /// where it replaces [`Options::connection_rate`](crate::Options::connection_rate)); an SSE
    /// stream is sent as usual. Stops when the client disconnects (at the next write) or the server shuts
    /// down. A `chunk` of 0 is taken as 1. The request takes effect.
    Drip {
        /// Time between two writes.
        interval: Duration,
        /// Bytes per write.
        chunk: usize,
    },
    /// For an SSE stream request: answer `200` with the `text/event-stream` headers (after the
    /// same 404/406 checks as a real stream), then send nothing at all, keeping the connection
    /// open until the client closes it, the server shuts down, or 10 minutes pass (then the
    /// stream ends). It matches only stream requests. Nothing takes effect (a stream changes
    /// nothing).
    SilentStream,
    /// Answer `status` with a body that echoes the request's headers verbatim, `Authorization`
    /// included, like a hostile or misconfigured server (see [`EchoFormat`]). The request does
    /// not take effect.
    Echo {
        /// The HTTP status code (e.g. 401, or 200 for "a 200 with a non-JSON body").
        status: u16,
        /// The shape of the body.
        format: EchoFormat,
    },
    /// Apply the request for real (a create really creates the prediction), then answer
    /// `status` instead of the real answer, with the default body of a
    /// [`Status`](Fault::Status) fault: an HTML proxy page for 502 and 504, Replicate's throttle
    /// body for 429, a problem-details JSON otherwise. Models "the response to a create replaced
    /// by a 502 HTML page (or a 504) after the server created the prediction".
    ApplyThen {
        /// The HTTP status code answered.
        status: u16,
    },
    /// Apply the request and send the real response headers (with the full `Content-Length`),
    /// then only the first N bytes of the body, then close the connection: a truncated body or
    /// download. Works on both origins; when N is at least the body's length the whole response
    /// is sent. An SSE stream is sent as usual (see [`DropStreamAfter`](Fault::DropStreamAfter)).
    /// The request takes effect.
    ///
    /// On a file (an output file or `GET /v1/files/{id}/download`), N counts the bytes of this
    /// response's body: a `206` answer to `Range: bytes=1000-` cut after 10 bytes sends bytes
    /// 1000 to 1009 of the file. So a test can fetch a file, be cut after N bytes, then resume
    /// with `Range: bytes=N-` (and `If-Range` with the `ETag`) and get the rest.
    CutAfter(usize),
    /// Apply the request and send the real response (status, headers, `Content-Length`,
    /// `ETag`), but with the byte at this offset of the body inverted (XOR 0xFF), or its last
    /// byte when the body is shorter; an empty body is sent as is. The headers and the files
    /// API's `checksums.sha256` still describe the real bytes: a download that checks its
    /// digest must fail. The offset counts the bytes of this response's body (of a `206`
    /// answer, from the start of its range). Works on both origins; an SSE stream is sent as
    /// usual. The request takes effect.
    Corrupt(u64),
    /// For the fake's own tests: the handler panics (while holding the server's state lock), and
    /// the request is answered 500. The request does not take effect.
    #[doc(hidden)]
    Panic,
}

/// The body of a [`Fault::Echo`] answer. Header names are lowercase (as HTTP/1 servers see
/// them), values verbatim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EchoFormat {
    /// `application/problem+json`:
    /// `{"title":"Unauthenticated","detail":"bad credentials: <Authorization value>","status":N}`
    /// (the value empty without an `Authorization` header).
    ProblemJson,
    /// `text/html`: an HTML page listing every request header as `name: value`, one per line,
    /// not escaped.
    Html,
    /// `text/plain`: every request header as `name: value`, one per line (not JSON).
    Text,
}

impl Fault {
    /// A bare status fault.
    pub fn status(status: u16) -> Self {
        Fault::Status {
            status,
            retry_after: None,
            body: None,
        }
    }

    /// A 429 with `Retry-After: secs` and Replicate's throttle body.
    pub fn throttled(secs: u64) -> Self {
        Fault::Status {
            status: 429,
            retry_after: Some(RetryAfter::Seconds(secs)),
            body: None,
        }
    }

    /// Whether this fault answers by itself, without the API applying the request (and without
    /// needing its body).
    pub(crate) fn answers_alone(&self) -> bool {
        matches!(
            self,
            Fault::Status { .. }
                | Fault::Redirect(_)
                | Fault::HugeBody(_)
                | Fault::Echo { .. }
                | Fault::ResetBeforeRead
        )
    }

    /// Whether this fault applies only to SSE stream requests.
    pub(crate) fn stream_only(&self) -> bool {
        matches!(self, Fault::DropStreamAfter(_) | Fault::SilentStream)
    }
}

/// Which requests a [`FaultRule`] applies to. Every `None` field matches anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Matcher {
    /// The HTTP method, compared case-insensitively.
    pub method: Option<String>,
    /// A substring of the request target (path, plus `?query` when there is one).
    pub path_contains: Option<String>,
    /// The origin the request arrives on.
    pub origin: Option<Origin>,
}

impl Matcher {
    /// Matches every request.
    pub fn any() -> Self {
        Matcher::default()
    }

    /// Matches requests with this method and a target containing `path`, on any origin.
    pub fn new(method: &str, path: &str) -> Self {
        Matcher::any().method(method).path_contains(path)
    }

    /// Restricts to this method.
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_owned());
        self
    }

    /// Restricts to targets containing this substring.
    pub fn path_contains(mut self, s: &str) -> Self {
        self.path_contains = Some(s.to_owned());
        self
    }

    /// Restricts to this origin.
    pub fn origin(mut self, origin: Origin) -> Self {
        self.origin = Some(origin);
        self
    }

    pub(crate) fn matches(&self, origin: Origin, method: &str, target: &str) -> bool {
        self.origin.is_none_or(|o| o == origin)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| target.contains(p))
    }
}

/// A fault to inject into the next `times` matching requests.
///
/// Rules are tried in the order they were pushed; the first matching one applies (one fault per
/// request), and is removed once it has applied `times` times.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRule {
    /// Which requests it applies to.
    pub matcher: Matcher,
    /// What happens to them.
    pub fault: Fault,
    /// How many matching requests it applies to before it is removed (0: none).
    pub times: usize,
}

impl FaultRule {
    /// A rule that applies once.
    pub fn new(matcher: Matcher, fault: Fault) -> Self {
        FaultRule {
            matcher,
            fault,
            times: 1,
        }
    }

    /// Sets how many times it applies.
    pub fn times(mut self, times: usize) -> Self {
        self.times = times;
        self
    }
}
