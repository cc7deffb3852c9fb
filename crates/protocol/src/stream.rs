//! Following a prediction's server-sent events stream (`urls.stream`), with reconnection.
//!
//! [`StreamSession`] is a [`Flow`]: it builds the requests (streamed, under an idle timeout: a
//! stream stays open for minutes), reads the response status and headers, decodes the body
//! chunks it is handed (with [`sse::Decoder`](crate::sse::Decoder), so memory stays bounded by
//! [`sse::Limits`](crate::sse::Limits)), yields each event, and decides when and how to
//! reconnect. It is driven like every flow (see [`crate::flow`]).
//!
//! # What ends a session
//!
//! - A `done` event: the session yields the `done` event itself (with its reason, e.g.
//!   `canceled`), nothing after it, and ends with `Ok(())`.
//! - An `error` event: the session ends with [`Error::PredictionStreamError`] and the event's
//!   `detail`.
//! - A line or an event over the decoder's [`Limits`]: [`Error::Stream`].
//! - HTTP 404 or 410 when connecting: the stream is gone (the prediction finished long ago, or
//!   the URL is wrong) — [`Error::Api`] with that status; see [`is_stream_gone`].
//! - Any other 4xx, a redirect (3xx, never followed: it could carry the token elsewhere), a
//!   `204 No Content` (the server asks not to reconnect) or a success whose `Content-Type` is not
//!   `text/event-stream`.
//! - Reconnection attempts exhausted (see below).
//!
//! # Reconnection
//!
//! The end of the body before `done`, a transport failure, HTTP 429 or 5xx all lead to a new
//! connection after a delay, sending `Last-Event-ID` when an event id is known so that the
//! server resumes after the last event received. The delay is the stream's `retry` field when
//! the server sent one (capped at [`StreamOptions::max_retry_after`]), else
//! [`StreamOptions::initial_backoff`], doubled after each consecutive failure up to
//! [`StreamOptions::max_backoff`]; a 429 or 5xx with `Retry-After` waits for that instead.
//! At most [`StreamOptions::max_reconnects`] consecutive attempts are made; the count starts
//! again once an event is received. A read timeout on a stream that was open (an idle stream,
//! e.g. while the model boots) reopens it, and counts as an attempt too: a host that sends
//! headers and then nothing ends the session after `max_reconnects` silent reopenings
//! (bounded: at most `(max_reconnects + 1) × read timeout` plus the backoffs without an event)
//! instead of being reopened forever.
//!
//! Events are deduplicated across reconnections: a server that replays events the session
//! already delivered (same `id`) does not make them appear twice.
//!
//! # Who receives the API token
//!
//! Stream URLs name another host than the API (`stream.replicate.com`), and through a proxy they
//! still name Replicate's hosts. By default ([`StreamAuth::ApiOriginOnly`]) the token is sent
//! only when the stream URL is on the same origin (scheme, host and port) as the configured API
//! base URL: otherwise the request has no `Authorization` header at all. Replicate's stream URLs
//! are unguessable and need no token.
//!
//! # Example
//!
//! ```
//! use std::time::Instant;
//! use http::{HeaderMap, StatusCode};
//! use replicate_protocol::sse::ReplicateEvent;
//! use replicate_protocol::stream::{StreamOptions, StreamSession};
//! use replicate_protocol::{BodyRead, Config, Flow, Step};
//!
//! let cfg = Config::new("r8_token");
//! let mut session =
//!     StreamSession::new(&cfg, "https://stream.replicate.com/v1/files/abc", StreamOptions::default())?;
//! let now = Instant::now();
//! let Step::Send(out) = session.poll(now) else { unreachable!() };
//! assert_eq!(out.request.headers()["accept"], "text/event-stream");
//! assert_eq!(out.read, BodyRead::Streamed);
//! // Another origin than the API: no token.
//! assert!(out.request.headers().get("authorization").is_none());
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("content-type", "text/event-stream".parse().unwrap());
//! session.handle_head(StatusCode::OK, &headers, now);
//! assert!(matches!(session.poll(now), Step::Receive));
//! session.handle_chunk(b"event: output\nid: 1:0\ndata: Hello\n\nevent: done\ndata: {}\n\n", now);
//! assert!(matches!(session.poll(now), Step::Yield(ReplicateEvent::Output(s)) if s == "Hello"));
//! assert!(matches!(session.poll(now), Step::Yield(ReplicateEvent::Done(None))));
//! assert!(matches!(session.poll(now), Step::Done(Ok(()))));
//! # Ok::<(), replicate_protocol::Error>(())
//! ```

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use http::header::{
    ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, USER_AGENT,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};

use crate::config::{bearer, check_url};
use crate::error::{ApiError, StreamErrorKind};
use crate::flow::{Flow, Outgoing, SleepReason, Step};
use crate::retry::RetryPolicy;
use crate::sse::{Decoder, Limits, ReplicateEvent};
use crate::{Config, Error, Prediction, TransportError, TransportErrorKind};

/// The `Last-Event-ID` request header.
pub const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// How many event ids a session remembers to drop replayed events.
const SEEN_IDS: usize = 4096;
/// Ids longer than this are not remembered (they are still sent as `Last-Event-ID`).
const MAX_REMEMBERED_ID_LEN: usize = 256;

/// Whether a stream request carries the API token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StreamAuth {
    /// Send `Authorization` only when the stream URL is on the same origin (scheme, host and
    /// port) as the configured API base URL; otherwise send no `Authorization` header at all.
    /// The default.
    #[default]
    ApiOriginOnly,
    /// **Always send the API token to the stream URL, whatever its host.**
    ///
    /// Only opt in when you know the stream host needs your token (a private gateway that
    /// serves streams on another origin): the token is then handed to whatever host
    /// `urls.stream` names, which is data from a response body. Redirects are still never
    /// followed.
    Always,
    /// Never send the API token.
    Never,
}

/// Options of a [`StreamSession`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOptions {
    /// Consecutive reconnection attempts allowed before giving up (default 5; 0 never
    /// reconnects). The count starts again each time an event is received.
    pub max_reconnects: u32,
    /// The first reconnection delay when the server sent no `retry` field (default 500 ms);
    /// doubled after each consecutive failure.
    pub initial_backoff: Duration,
    /// The cap of the doubling delay (default 30 s).
    pub max_backoff: Duration,
    /// The longest `Retry-After` (of a 429 or 5xx) or `retry` field honoured (default 120 s): a
    /// longer `Retry-After` ends the session with the error, a longer `retry` is capped.
    pub max_retry_after: Duration,
    /// Who receives the API token (default [`StreamAuth::ApiOriginOnly`]).
    pub auth: StreamAuth,
    /// The decoder's memory limits.
    pub limits: Limits,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            max_reconnects: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
            auth: StreamAuth::default(),
            limits: Limits::DEFAULT,
        }
    }
}

#[derive(Debug)]
enum State {
    /// Next connection not before this instant (`None`: at once).
    Idle(Option<Instant>),
    /// A request was handed out; waiting for its status.
    Connecting,
    /// The body is open: feed it.
    Reading,
    /// Over.
    Finished(Result<(), Error>),
}

/// A sans-IO session following one prediction stream. See the [module documentation](self).
pub struct StreamSession {
    cfg: Config,
    url: String,
    send_token: bool,
    opts: StreamOptions,
    decoder: Decoder,
    state: State,
    events: VecDeque<Result<ReplicateEvent, Error>>,
    /// Consecutive failed attempts since the last event.
    failures: u32,
    /// Every reconnection scheduled so far.
    reconnects: u32,
    /// The id in effect at the previous decoded event, to tell an event's own id from one
    /// carried forward.
    previous_id: Option<String>,
    seen: HashSet<String>,
    seen_order: VecDeque<String>,
}

impl fmt::Debug for StreamSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamSession")
            .field("url", &self.url)
            .field("sends_token", &self.send_token)
            .field("state", &self.state)
            .field("last_event_id", &self.last_event_id())
            .field("reconnects", &self.reconnects)
            .field("queued_events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl StreamSession {
    /// A session following the stream at `url` (an absolute `http` or `https` URL).
    pub fn new(cfg: &Config, url: &str, opts: StreamOptions) -> Result<Self, Error> {
        check_url(url)?;
        let send_token = match opts.auth {
            StreamAuth::ApiOriginOnly => cfg.base_url().is_same_origin(url),
            StreamAuth::Always => true,
            StreamAuth::Never => false,
        };
        Ok(StreamSession {
            cfg: cfg.clone(),
            url: url.to_owned(),
            send_token,
            decoder: Decoder::with_limits(opts.limits),
            opts,
            state: State::Idle(None),
            events: VecDeque::new(),
            failures: 0,
            reconnects: 0,
            previous_id: None,
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
        })
    }

    /// A session following a prediction's `urls.stream`; an error when it has none (the model
    /// does not stream).
    pub fn for_prediction(
        cfg: &Config,
        prediction: &Prediction,
        opts: StreamOptions,
    ) -> Result<Self, Error> {
        let url = prediction.stream_url().ok_or_else(|| {
            Error::InvalidInput(format!(
                "prediction {} has no stream URL (urls.stream): its model does not stream",
                prediction.id
            ))
        })?;
        Self::new(cfg, url, opts)
    }

    /// The stream URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the requests of this session carry the API token.
    pub fn sends_token(&self) -> bool {
        self.send_token
    }

    /// The id of the last event received: sent as `Last-Event-ID` when reconnecting.
    pub fn last_event_id(&self) -> Option<&str> {
        self.decoder.last_event_id()
    }

    /// How many reconnections were scheduled so far.
    pub fn reconnects(&self) -> u32 {
        self.reconnects
    }

    /// Whether a body is open and should be read and fed.
    pub fn is_reading(&self) -> bool {
        matches!(self.state, State::Reading)
    }

    /// Whether the session is over (events may still wait in [`next_event`](Self::next_event)).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished(_))
    }

    /// The request of the next connection.
    fn request(&self) -> Result<Request<Vec<u8>>, Error> {
        let mut builder = Request::builder()
            .method(Method::GET)
            .uri(self.url.as_str())
            .header(ACCEPT, HeaderValue::from_static("text/event-stream"))
            .header(CACHE_CONTROL, HeaderValue::from_static("no-store"))
            // Events must arrive as they are sent: no compression to buffer them.
            .header(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        if let Ok(ua) = HeaderValue::try_from(self.cfg.user_agent()) {
            builder = builder.header(USER_AGENT, ua);
        }
        // An id that cannot be a header value (control characters) is not sent: the server then
        // replays from the start and the replayed events are dropped as duplicates.
        if let Some(id) = self.decoder.last_event_id()
            && let Ok(value) = HeaderValue::try_from(id)
        {
            builder = builder.header(LAST_EVENT_ID, value);
        }
        if self.send_token {
            builder = builder.header(AUTHORIZATION, bearer(&self.cfg)?);
        }
        builder
            .body(Vec::new())
            .map_err(|e| Error::InvalidInput(format!("cannot build the stream request: {e}")))
    }

    /// The response head of the last connection ([`Flow::handle_head`]).
    fn connected(&mut self, status: StatusCode, headers: &HeaderMap, now: Instant) {
        if !matches!(self.state, State::Connecting) {
            return;
        }
        let code = status.as_u16();
        if status == StatusCode::NO_CONTENT {
            self.finish(Err(Error::stream(StreamErrorKind::NoContent,
                "the stream answered 204 No Content before its done event: the server asks not to reconnect"
                    .to_owned(),
            )));
        } else if status.is_success() {
            match headers.get(CONTENT_TYPE) {
                Some(ct) if !is_event_stream(ct) => {
                    let ct = String::from_utf8_lossy(ct.as_bytes()).into_owned();
                    self.finish(Err(Error::stream(StreamErrorKind::NotEventStream, format!(
                        "the stream answered HTTP {code} with Content-Type {ct:?} instead of text/event-stream"
                    ))));
                }
                _ => self.state = State::Reading,
            }
        } else if status.is_redirection() {
            let to = headers
                .get(http::header::LOCATION)
                .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned())
                .unwrap_or_default();
            self.finish(Err(Error::stream(StreamErrorKind::Redirected, format!(
                "the stream answered a redirect (HTTP {code} to {to:?}); redirects of streams are not followed"
            ))));
        } else if code == 429 || status.is_server_error() {
            let api = ApiError::from_response(status, headers, &[]);
            match api.retry_delay() {
                Some(delay) if delay > self.opts.max_retry_after => {
                    self.finish(Err(Error::Api(Box::new(api))));
                }
                delay => self.reconnect(now, delay, Error::Api(Box::new(api)), true),
            }
        } else {
            let mut api = ApiError::from_response(status, headers, &[]);
            if matches!(code, 404 | 410) {
                api.problem = Some(crate::Problem {
                    title: Some("Stream gone".to_owned()),
                    detail: Some(
                        "the prediction's stream no longer exists or has expired; get the prediction instead"
                            .to_owned(),
                    ),
                    status: Some(code),
                    ..Default::default()
                });
            }
            self.finish(Err(Error::Api(Box::new(api))));
        }
    }

    /// The next bytes of the open body ([`Flow::handle_chunk`] without the time). Ignored unless
    /// [`is_reading`](Self::is_reading).
    pub fn feed(&mut self, bytes: &[u8]) {
        if !self.is_reading() {
            return;
        }
        self.decoder.feed(bytes);
        while let Some(decoded) = self.decoder.next_event() {
            if self.is_finished() {
                // Whatever follows `done` or an error is dropped.
                continue;
            }
            let event = match decoded {
                Ok(event) => event,
                Err(e) => {
                    let err = Error::stream(
                        StreamErrorKind::Malformed,
                        format!("{e}; the stream was abandoned"),
                    );
                    self.events.push_back(Err(err.clone()));
                    self.finish(Err(err));
                    continue;
                }
            };
            if self.is_replay(event.id.as_deref()) {
                continue;
            }
            self.failures = 0;
            match ReplicateEvent::from_event(event) {
                ReplicateEvent::Error(detail) => {
                    let err = Error::PredictionStreamError(detail.detail);
                    self.events.push_back(Err(err.clone()));
                    self.finish(Err(err));
                }
                done @ ReplicateEvent::Done(_) => {
                    self.events.push_back(Ok(done));
                    self.finish(Ok(()));
                }
                other => self.events.push_back(Ok(other)),
            }
        }
    }

    /// Whether an event was already delivered (same own id), and remembers its id otherwise.
    fn is_replay(&mut self, id: Option<&str>) -> bool {
        let own = id.is_some() && id != self.previous_id.as_deref();
        self.previous_id = id.map(str::to_owned);
        let Some(id) = id.filter(|_| own) else {
            // No id, or one carried forward from an earlier event: never a replay.
            return false;
        };
        if self.seen.contains(id) {
            return true;
        }
        if id.len() <= MAX_REMEMBERED_ID_LEN {
            if self.seen_order.len() >= SEEN_IDS
                && let Some(old) = self.seen_order.pop_front()
            {
                self.seen.remove(&old);
            }
            self.seen.insert(id.to_owned());
            self.seen_order.push_back(id.to_owned());
        }
        false
    }

    /// The next event decoded, in stream order, taken out of the session without polling it;
    /// `None` when more bytes are needed. An `Err` ends the session (and [`Flow::poll`] ends
    /// with it). Polling yields the same events.
    pub fn next_event(&mut self) -> Option<Result<ReplicateEvent, Error>> {
        let secret = self.cfg.token().expose();
        self.events
            .pop_front()
            .map(|r| r.map_err(|e| e.redact(secret)))
    }

    /// The open body ended (or the connection closed before the response head).
    fn ended(&mut self, now: Instant) {
        match self.state {
            State::Reading | State::Connecting => {
                self.decoder.finish();
                let err = Error::stream(
                    StreamErrorKind::Ended,
                    "the stream ended before its done event and could not be resumed".to_owned(),
                );
                self.reconnect(now, None, err, true);
            }
            _ => {}
        }
    }

    /// The last request, or the reading of its body, failed below HTTP.
    fn failed(&mut self, error: TransportError, now: Instant) {
        if !matches!(self.state, State::Reading | State::Connecting) {
            return;
        }
        // An open stream that stayed silent for a whole read timeout is reopened, and that
        // reopen counts as an attempt: a host that sends headers and then nothing would
        // otherwise be reopened forever. The count starts again at each event.
        self.decoder.finish();
        let cause = if self.is_reading() && error.kind == TransportErrorKind::Timeout {
            Error::stream(
                StreamErrorKind::Silent,
                format!(
                    "the stream stayed silent (no event) through {} reopenings: {error}",
                    self.opts.max_reconnects
                ),
            )
        } else {
            Error::Transport(error)
        };
        self.reconnect(now, None, cause, true);
    }

    /// Schedules a reconnection, or ends the session with `cause` once attempts ran out.
    fn reconnect(&mut self, now: Instant, delay: Option<Duration>, cause: Error, counts: bool) {
        if counts {
            self.failures = self.failures.saturating_add(1);
            if self.failures > self.opts.max_reconnects {
                self.finish(Err(cause));
                return;
            }
        }
        let delay = delay.unwrap_or_else(|| self.backoff());
        // A delay past any representable instant (an absurd `Retry-After`) means never.
        let Some(at) = now.checked_add(delay) else {
            self.finish(Err(cause));
            return;
        };
        self.reconnects = self.reconnects.saturating_add(1);
        self.state = State::Idle(Some(at));
    }

    /// The delay before the next attempt: the `retry` field or the initial backoff, doubled
    /// per consecutive failure up to the cap, by the shared rule ([`RetryPolicy::backoff`]).
    fn backoff(&self) -> Duration {
        let base = self
            .decoder
            .retry()
            .map(|ms| Duration::from_millis(ms).min(self.opts.max_retry_after))
            .unwrap_or(self.opts.initial_backoff);
        RetryPolicy {
            initial_backoff: base,
            max_backoff: self.opts.max_backoff.max(base),
            ..RetryPolicy::default()
        }
        .backoff(self.failures.saturating_sub(1))
    }

    fn finish(&mut self, result: Result<(), Error>) {
        self.state = State::Finished(result);
    }
}

impl Flow for StreamSession {
    type Item = ReplicateEvent;
    type Output = Result<(), Error>;

    fn poll(&mut self, now: Instant) -> Step<ReplicateEvent, Result<(), Error>> {
        // The events decoded so far come first; an error among them is also the session's end.
        while let Some(event) = self.events.pop_front() {
            if let Ok(event) = event {
                return Step::Yield(event);
            }
        }
        match &self.state {
            State::Finished(result) => Step::Done(
                result
                    .clone()
                    .map_err(|e| e.redact(self.cfg.token().expose())),
            ),
            State::Connecting => Step::Done(Err(Error::InvalidState(
                "stream polled while a connection was being opened",
            ))),
            State::Reading => Step::Receive,
            State::Idle(Some(at)) if *at > now => Step::Sleep {
                until: *at,
                reason: SleepReason::Reconnect,
            },
            State::Idle(_) => match self.request() {
                Ok(request) => {
                    self.state = State::Connecting;
                    Step::Send(Outgoing::streamed(&self.cfg, request))
                }
                Err(e) => {
                    self.state = State::Finished(Err(e.clone()));
                    Step::Done(Err(e))
                }
            },
        }
    }

    fn handle_response(&mut self, response: Response<Vec<u8>>, now: Instant) {
        // A driver that read the body whole: the same as a head, one chunk and the end.
        let (parts, body) = response.into_parts();
        self.connected(parts.status, &parts.headers, now);
        if self.is_reading() {
            self.feed(&body);
            self.ended(now);
        }
    }

    fn handle_error(&mut self, error: TransportError, now: Instant) {
        self.failed(error, now);
    }

    fn handle_head(&mut self, status: StatusCode, headers: &HeaderMap, now: Instant) {
        self.connected(status, headers, now);
    }

    fn handle_chunk(&mut self, chunk: &[u8], _now: Instant) {
        self.feed(chunk);
    }

    fn handle_end(&mut self, now: Instant) {
        self.ended(now);
    }

    fn describe(&self) -> crate::FlowInfo {
        crate::FlowInfo::new("stream")
    }
}

/// Whether an error means the stream no longer exists (HTTP 404 or 410 when connecting): the
/// prediction finished long ago, or its stream expired. Get the prediction instead.
pub fn is_stream_gone(error: &Error) -> bool {
    matches!(error.status(), Some(404 | 410))
}

fn is_event_stream(ct: &HeaderValue) -> bool {
    ct.to_str().ok().is_some_and(|ct| {
        ct.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .eq_ignore_ascii_case("text/event-stream")
    })
}

/// The text of a stream's `output` events, concatenated exactly as received (multi-line data is
/// already joined with `\n` by the decoder).
///
/// ```
/// use replicate_protocol::sse::ReplicateEvent;
/// use replicate_protocol::stream::OutputText;
///
/// let mut text = OutputText::new();
/// for ev in [
///     ReplicateEvent::Output("Hello".into()),
///     ReplicateEvent::Logs("ignored".into()),
///     ReplicateEvent::Output(" world\n!".into()),
/// ] {
///     text.push(&ev)?;
/// }
/// assert_eq!(text.as_str(), "Hello world\n!");
/// # Ok::<(), replicate_protocol::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputText {
    text: String,
    limit: usize,
}

impl Default for OutputText {
    fn default() -> Self {
        Self::new()
    }
}

impl OutputText {
    /// An empty text without a size limit.
    pub fn new() -> Self {
        OutputText {
            text: String::new(),
            limit: usize::MAX,
        }
    }

    /// An empty text that refuses to grow past `max_bytes`.
    pub fn with_limit(max_bytes: usize) -> Self {
        OutputText {
            text: String::new(),
            limit: max_bytes,
        }
    }

    /// Appends the data of an `output` event; other events are ignored. Fails (and appends
    /// nothing) when the text would exceed its limit: a transport error of kind
    /// [`TransportErrorKind::BodyTooLarge`].
    pub fn push(&mut self, event: &ReplicateEvent) -> Result<(), Error> {
        if let ReplicateEvent::Output(chunk) = event {
            if self.text.len().saturating_add(chunk.len()) > self.limit {
                return Err(Error::Transport(TransportError::new(
                    TransportErrorKind::BodyTooLarge,
                    format!(
                        "the streamed output exceeds the limit of {} bytes",
                        self.limit
                    ),
                )));
            }
            self.text.push_str(chunk);
        }
        Ok(())
    }

    /// The text so far.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The text.
    pub fn into_string(self) -> String {
        self.text
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.text.len()
    }

    /// Whether no output was received.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
}
