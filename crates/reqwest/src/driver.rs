//! The one loop that drives every flow: send, receive, sleep, hand out items (see
//! [`replicate_protocol::flow`] for the rule it follows).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::{Either, select};
use futures_util::stream::{BoxStream, Stream, StreamExt};
use http::HeaderValue;
use http::header::CONTENT_LENGTH;
use replicate_protocol::flow::{
    BodyRead, Outgoing, SleepReason, Timeout, body_too_large, check_announced_length,
};
use replicate_protocol::sse::ReplicateEvent;
use replicate_protocol::{Error, Flow, FlowSpan, Pager, Step, StreamSession, TransportError};
use tracing::Instrument;

use crate::{Client, classify, idle_timeout, now};

/// Bytes handed to the connection per piece of a request body sent under an idle timeout.
const UPLOAD_CHUNK: usize = 64 * 1024;

/// The most memory reserved up front from a `Content-Length`; the body grows past it as it comes.
const MAX_PREALLOCATION: u64 = 1024 * 1024;

type Watcher = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The target of this crate's log events (the crate's name, whatever module emits them).
pub(crate) const LOG_TARGET: &str = "replicate_reqwest";

/// What a driver hands back.
pub(crate) enum Event<Y, T> {
    /// An item the flow yielded.
    Item(Y),
    /// The flow is over.
    Done(T),
    /// The flow was abandoned (never, in this client: a flow is dropped instead; the variant
    /// keeps the two clients' drivers alike).
    #[allow(dead_code)]
    Stopped,
}

/// An open body and its idle timeout.
struct Body {
    chunks: BoxStream<'static, reqwest::Result<Bytes>>,
    idle: Duration,
}

/// A flow and the connection it may have open.
pub(crate) struct Driver<F: Flow> {
    client: Client,
    flow: F,
    body: Option<Body>,
    watch: Watch,
    /// The span the flow runs in (see [`replicate_protocol::trace`]).
    span: FlowSpan,
}

/// The stream of a prediction the flow waits for: followed only while the flow sleeps, dropped
/// with the driver.
#[derive(Default)]
struct Watch {
    stream: Option<Watcher>,
    started: bool,
}

impl<F: Flow> Driver<F> {
    pub(crate) fn new(client: Client, flow: F) -> Self {
        let watch = Watch::default();
        Driver {
            span: FlowSpan::new(&flow),
            client,
            flow,
            body: None,
            watch,
        }
    }

    /// The same driver: kept alike with the blocking client's, where a batch of downloads
    /// shares a stop signal. Here a download is stopped by dropping its future.
    pub(crate) fn stop_with(self, _: &Stop) -> Self {
        self
    }

    /// A chunk the flow handed out, written and no longer needed (this client reads into
    /// buffers of its HTTP stack: nothing to reuse).
    pub(crate) fn recycle(&mut self, chunk: Vec<u8>) {
        drop(chunk);
    }

    /// The flow, between two steps (for the download macros, which read it alike in both
    /// clients).
    pub(crate) fn current(&self) -> Option<&F> {
        Some(&self.flow)
    }

    /// Drives the flow to its end, dropping its items.
    pub(crate) async fn finish(mut self) -> F::Output {
        loop {
            if let Event::Done(output) = self.next_event().await {
                return output;
            }
        }
    }

    /// Drives the flow until it yields an item or ends.
    pub(crate) async fn next_event(&mut self) -> Event<F::Item, F::Output> {
        let span = self.span.span().clone();
        self.next_step().instrument(span).await
    }

    async fn next_step(&mut self) -> Event<F::Item, F::Output> {
        loop {
            self.span.observe(&self.flow);
            let step = self.flow.poll(now());
            if !matches!(step, Step::Receive | Step::Yield(_)) {
                // The rule: a body stays open only while the flow reads it or yields.
                self.body = None;
            }
            match step {
                // Boxed: a request's future is large and lives only while the request is out,
                // whereas a waiting flow spends most of its life asleep.
                Step::Send(out) => Box::pin(self.send(out)).await,
                Step::Receive => self.receive().await,
                Step::Sleep { until, reason } => self.sleep(until, reason).await,
                Step::Yield(item) => return Event::Item(item),
                Step::Done(output) => return Event::Done(output),
            }
        }
    }

    async fn send(&mut self, out: Outgoing) {
        let result = self.client.exchange(out).await;
        let now = now();
        match result {
            Err(e) => self.flow.handle_error(e, now),
            Ok(Answer::Whole(response)) => self.flow.handle_response(response, now),
            Ok(Answer::Head(response, idle)) => {
                self.flow
                    .handle_head(response.status(), response.headers(), now);
                self.body = Some(Body {
                    chunks: response.bytes_stream().boxed(),
                    idle,
                });
            }
        }
    }

    async fn receive(&mut self) {
        let Some(body) = self.body.as_mut() else {
            return self.flow.handle_end(now());
        };
        let next = tokio::time::timeout(body.idle, body.chunks.next()).await;
        let idle = body.idle;
        match next {
            Ok(Some(Ok(chunk))) => self.flow.handle_chunk(&chunk, now()),
            Ok(None) => {
                self.body = None;
                self.flow.handle_end(now());
            }
            Ok(Some(Err(e))) => {
                self.body = None;
                self.flow.handle_error(classify(e), now());
            }
            Err(_) => {
                self.body = None;
                self.flow
                    .handle_error(idle_timeout(idle, "the response body"), now());
            }
        }
    }

    async fn sleep(&mut self, until: Instant, reason: SleepReason) {
        let delay_ms = until.saturating_duration_since(now()).as_millis();
        // Polls are routine; retries and reconnections are worth a look.
        if reason == SleepReason::Poll {
            tracing::trace!(target: LOG_TARGET, delay_ms, "replicate: {}", reason.describe());
        } else {
            tracing::debug!(target: LOG_TARGET, delay_ms, "replicate: {}", reason.describe());
        }
        if !self.watch.started
            && reason == SleepReason::Poll
            && self.client.inner.settings.follow_stream
            && let Some(url) = self.flow.stream_hint()
        {
            self.watch.started = true;
            self.watch.stream = Some(self.client.watch(url));
        }
        let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(until));
        match self.watch.stream.as_mut() {
            None => sleep.await,
            Some(watch) => {
                let sleep = std::pin::pin!(sleep);
                if let Either::Right(_) = select(sleep, watch.as_mut()).await {
                    self.watch.stream = None;
                    self.flow.wake();
                }
            }
        }
    }
}

/// The stop signal of a batch of downloads, as in the blocking client: nothing here, since the
/// batch drops the futures of the downloads it stops.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stop;

/// What a request brought back: a whole body, or a head whose body is read as the flow asks.
enum Answer {
    Whole(http::Response<Vec<u8>>),
    Head(reqwest::Response, Duration),
}

impl Client {
    /// Sends one request and reads its answer as it asks ([`Outgoing::read`]: whole, under its
    /// cap, or only the head), under its timeout: the one send path of flows and batches.
    async fn exchange(&self, out: Outgoing) -> Result<Answer, TransportError> {
        let what = out.summary();
        tracing::debug!(target: LOG_TARGET, request = %what, authorized = what.authorized, timeout = ?out.timeout, "replicate: sending request");
        let result = self.transmit(out).await;
        match &result {
            Err(e) => {
                tracing::debug!(target: LOG_TARGET, request = %what, kind = ?e.kind, error = %e.message, "replicate: request failed");
            }
            Ok(Answer::Whole(response)) => {
                tracing::debug!(target: LOG_TARGET, request = %what, status = response.status().as_u16(), "replicate: response");
            }
            Ok(Answer::Head(response, _)) => {
                tracing::debug!(target: LOG_TARGET, request = %what, status = response.status().as_u16(), "replicate: response head");
            }
        }
        result
    }

    /// [`Client::exchange`] of a request whose answer is read whole (a head-only answer is read
    /// whole too, under the client's response cap).
    pub(crate) async fn exchange_whole(
        &self,
        out: Outgoing,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        match self.exchange(out).await? {
            Answer::Whole(response) => Ok(response),
            Answer::Head(response, _) => {
                whole(response, self.inner.settings.max_response_bytes, || ()).await
            }
        }
    }

    /// Sends a request (never following redirects) and reads its answer as the flow chose.
    async fn transmit(&self, out: Outgoing) -> Result<Answer, TransportError> {
        match (out.read, out.timeout) {
            (BodyRead::Buffered { max_bytes }, Timeout::Total(t)) => {
                let mut request = reqwest::Request::try_from(out.request).map_err(classify)?;
                *request.timeout_mut() = Some(t);
                let response = self.inner.http.execute(request).await.map_err(classify)?;
                whole(response, max_bytes, || ()).await.map(Answer::Whole)
            }
            (BodyRead::Buffered { max_bytes }, Timeout::Idle(t)) => {
                self.send_in_pieces(out.request, max_bytes, t).await
            }
            (BodyRead::Streamed, timeout) => {
                let request = reqwest::Request::try_from(out.request).map_err(classify)?;
                let t = timeout.duration();
                match tokio::time::timeout(t, self.inner.http.execute(request)).await {
                    Ok(response) => Ok(Answer::Head(response.map_err(classify)?, t)),
                    Err(_) => Err(idle_timeout(t, "the response head")),
                }
            }
        }
    }

    /// Sends a request whose body may take long (an upload) under an idle timeout: the body is
    /// handed to the connection in pieces, so that a connection that stops taking it is noticed,
    /// and the whole exchange fails once it made no progress for `idle`.
    async fn send_in_pieces(
        &self,
        request: http::Request<Vec<u8>>,
        max_bytes: u64,
        idle: Duration,
    ) -> Result<Answer, TransportError> {
        let (mut parts, body) = request.into_parts();
        // The body is streamed: give its length, so it is not sent chunked.
        parts
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        let progress = Progress::new();
        let pieces = {
            let body = Bytes::from(body);
            let progress = progress.clone();
            let starts = (0..body.len()).step_by(UPLOAD_CHUNK);
            futures_util::stream::iter(starts).map(move |start| {
                progress.touch();
                let end = body.len().min(start.saturating_add(UPLOAD_CHUNK));
                Ok::<Bytes, std::io::Error>(body.slice(start..end))
            })
        };
        let request = http::Request::from_parts(parts, reqwest::Body::wrap_stream(pieces));
        let request = reqwest::Request::try_from(request).map_err(classify)?;
        let exchange = async {
            let response = self.inner.http.execute(request).await.map_err(classify)?;
            progress.touch();
            whole(response, max_bytes, || progress.touch()).await
        };
        progress.watch(idle, exchange).await.map(Answer::Whole)
    }

    /// A future following the stream at `url` until `done` or a failure.
    fn watch(&self, url: &str) -> Watcher {
        let session = StreamSession::new(self.config(), url, self.inner.settings.stream.clone());
        let client = self.clone();
        Box::pin(async move {
            let Ok(session) = session else { return };
            let mut driver = Driver::new(client, session);
            while let Event::Item(event) = driver.next_event().await {
                if matches!(event, ReplicateEvent::Done(_)) {
                    break;
                }
            }
        })
    }
}

/// Reads a whole body of at most `max_bytes`, failing as soon as it is known to be larger: from
/// its head before reading anything, else at the chunk that crosses the cap. Dropping the
/// response then closes its connection rather than draining it.
async fn whole(
    mut response: reqwest::Response,
    max_bytes: u64,
    mut on_chunk: impl FnMut(),
) -> Result<http::Response<Vec<u8>>, TransportError> {
    check_announced_length(response.headers(), max_bytes)?;
    let reserve = response
        .content_length()
        .unwrap_or(0)
        .min(MAX_PREALLOCATION);
    let mut body = Vec::with_capacity(usize::try_from(reserve).unwrap_or(0));
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        on_chunk();
        let len = u64::try_from(body.len() + chunk.len()).unwrap_or(u64::MAX);
        if len > max_bytes {
            return Err(body_too_large(len, max_bytes));
        }
        body.extend_from_slice(&chunk);
    }
    let mut whole = http::Response::new(body);
    *whole.status_mut() = response.status();
    *whole.version_mut() = response.version();
    *whole.headers_mut() = std::mem::take(response.headers_mut());
    Ok(whole)
}

/// When an exchange last made progress, shared between the exchange and its watchdog.
#[derive(Clone)]
struct Progress {
    start: tokio::time::Instant,
    /// Nanoseconds from `start` to the last progress.
    last: Arc<AtomicU64>,
}

impl Progress {
    fn new() -> Self {
        Progress {
            start: tokio::time::Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        let elapsed = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last.fetch_max(elapsed, Ordering::Relaxed);
    }

    fn last(&self) -> tokio::time::Instant {
        self.start + Duration::from_nanos(self.last.load(Ordering::Relaxed))
    }

    /// Runs `exchange`, failing with a timeout once it made no progress for `timeout`.
    async fn watch<T>(
        &self,
        timeout: Duration,
        exchange: impl Future<Output = Result<T, TransportError>>,
    ) -> Result<T, TransportError> {
        let mut exchange = std::pin::pin!(exchange);
        loop {
            let deadline = self.last() + timeout;
            match tokio::time::timeout_at(deadline, exchange.as_mut()).await {
                Ok(result) => return result,
                Err(_) if self.last() + timeout <= tokio::time::Instant::now() => {
                    return Err(idle_timeout(timeout, "the upload"));
                }
                Err(_) => {}
            }
        }
    }
}

type Pending<F> = Pin<
    Box<
        dyn Future<
                Output = (
                    Box<Driver<F>>,
                    Event<<F as Flow>::Item, <F as Flow>::Output>,
                ),
            > + Send,
    >,
>;

enum State<F: Flow> {
    Idle(Box<Driver<F>>),
    Busy(Pending<F>),
    /// The flow is over; kept so that its final state can still be read.
    Finished(Box<Driver<F>>),
    Over,
}

/// The items a flow yields, as a stream that drives it: [`Pages`] of a list, [`EventStream`]
/// of a prediction's events. An `Err` is the last item: what ended the flow. Dropping it closes
/// any connection it holds.
///
/// It is `Send` and `Unpin`: use it with [`futures_util::StreamExt`].
pub struct Items<F: Flow> {
    state: State<F>,
    /// An item read ahead by [`Items::start`].
    pending: Option<F::Item>,
}

/// Every item of a paginated list; pages are fetched as the stream is polled, each request
/// going to the configured base URL with only the cursor of the previous page.
pub type Pages<P> = Items<Pager<P>>;

/// The events of a prediction stream, read as it is polled (see [`Client::stream`]).
///
/// Items are [`ReplicateEvent`]s, `done` included (with its reason), then the stream ends.
/// An `Err` is the last item: an `error` event ([`Error::PredictionStreamError`]), a gone stream
/// (see [`replicate_protocol::stream::is_stream_gone`]), or reconnection attempts exhausted.
pub type EventStream = Items<StreamSession>;

impl<F> Items<F>
where
    F: Flow<Output = Result<(), Error>> + Send + 'static,
    F::Item: Send + 'static,
{
    pub(crate) fn new(driver: Driver<F>) -> Self {
        Items {
            state: State::Idle(Box::new(driver)),
            pending: None,
        }
    }

    /// The flow being driven, between two items or once it is over (`None` only while a step
    /// is in progress).
    pub fn flow(&self) -> Option<&F> {
        match &self.state {
            State::Idle(driver) | State::Finished(driver) => Some(&driver.flow),
            _ => None,
        }
    }

    /// Drives the flow until its first item, so that a failure to start (a refused stream) is
    /// an error here rather than the first item.
    pub(crate) async fn start(mut self) -> Result<Self, Error> {
        if let State::Idle(driver) = &mut self.state {
            match driver.next_event().await {
                Event::Item(item) => self.pending = Some(item),
                Event::Done(Ok(())) => {
                    if let State::Idle(driver) = std::mem::replace(&mut self.state, State::Over) {
                        self.state = State::Finished(driver);
                    }
                }
                Event::Done(Err(e)) => return Err(e),
                Event::Stopped => self.state = State::Over,
            }
        }
        Ok(self)
    }
}

impl EventStream {
    /// The session (its last event id, reconnection count...), between two events.
    pub fn session(&self) -> Option<&StreamSession> {
        self.flow()
    }

    /// The id of the last event received, between two events.
    pub fn last_event_id(&self) -> Option<&str> {
        self.flow()?.last_event_id()
    }
}

// Nothing in it is pinned in place: the driver is boxed, the pending step a boxed future.
impl<F: Flow> Unpin for Items<F> {}

impl<F> Stream for Items<F>
where
    F: Flow<Output = Result<(), Error>> + Send + 'static,
    F::Item: Send + 'static,
{
    type Item = Result<F::Item, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(item) = this.pending.take() {
            return Poll::Ready(Some(Ok(item)));
        }
        loop {
            match std::mem::replace(&mut this.state, State::Over) {
                State::Over => return Poll::Ready(None),
                State::Finished(driver) => {
                    this.state = State::Finished(driver);
                    return Poll::Ready(None);
                }
                State::Idle(mut driver) => {
                    this.state = State::Busy(Box::pin(async move {
                        let event = driver.next_event().await;
                        (driver, event)
                    }));
                }
                State::Busy(mut pending) => match pending.as_mut().poll(cx) {
                    Poll::Pending => {
                        this.state = State::Busy(pending);
                        return Poll::Pending;
                    }
                    Poll::Ready((driver, event)) => {
                        return Poll::Ready(match event {
                            Event::Item(item) => {
                                this.state = State::Idle(driver);
                                Some(Ok(item))
                            }
                            Event::Done(result) => {
                                this.state = State::Finished(driver);
                                result.err().map(Err)
                            }
                            Event::Stopped => None,
                        });
                    }
                },
            }
        }
    }
}

impl<F> futures_util::stream::FusedStream for Items<F>
where
    F: Flow<Output = Result<(), Error>> + Send + 'static,
    F::Item: Send + 'static,
{
    fn is_terminated(&self) -> bool {
        matches!(self.state, State::Over | State::Finished(_)) && self.pending.is_none()
    }
}

impl<F: Flow + std::fmt::Debug> std::fmt::Debug for Items<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Items");
        if let State::Idle(driver) | State::Finished(driver) = &self.state {
            d.field("flow", &driver.flow);
            d.field("open", &driver.body.is_some());
        }
        d.finish_non_exhaustive()
    }
}
