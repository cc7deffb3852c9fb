//! Fault injection.

use std::time::{Duration, SystemTime};

use crate::record::Origin;

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
/// fault: [`Status`](Fault::Status), [`Redirect`](Fault::Redirect),
/// [`HugeBody`](Fault::HugeBody) and [`ResetBeforeRead`](Fault::ResetBeforeRead) answer
/// instead of the API, so nothing happens; [`Delay`](Fault::Delay),
/// [`TruncatedJson`](Fault::TruncatedJson), [`GarbageJson`](Fault::GarbageJson),
/// [`ResetAfterRead`](Fault::ResetAfterRead) and [`DropStreamAfter`](Fault::DropStreamAfter)
/// apply the request and spoil only the answer.
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
