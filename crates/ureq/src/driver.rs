//! The one loop that drives every flow: send, receive, sleep, hand out items (see
//! [`replicate_protocol::flow`] for the rule it follows).

use std::io::Read;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Instant;

use replicate_protocol::flow::{BodyRead, Outgoing, SleepReason, Timeout, check_announced_length};
use replicate_protocol::sse::ReplicateEvent;
use replicate_protocol::{Error, Flow, FlowSpan, Pager, Step, StreamSession, TransportError};

use crate::{Client, classify, classify_io};

/// Bytes asked for per read of a streamed body.
const READ_CHUNK: usize = 64 * 1024;

/// The target of this crate's log events (the crate's name, whatever module emits them).
pub(crate) const LOG_TARGET: &str = "replicate_ureq";

/// What a driver hands back.
pub(crate) enum Event<Y, T> {
    /// An item the flow yielded.
    Item(Y),
    /// The flow is over.
    Done(T),
    /// The owner of the stop signal is gone: the flow was abandoned.
    Stopped,
}

/// A flow and the connection it may have open.
pub(crate) struct Driver<F: Flow> {
    client: Client,
    flow: F,
    body: Option<ureq::BodyReader<'static>>,
    buf: Vec<u8>,
    /// Ends the flow when its sender is dropped (a stream watcher).
    stop: Option<Receiver<()>>,
    /// Ends the flow when raised (one of several concurrent downloads).
    cancel: Option<Stop>,
    watch: Following,
    /// The span the flow runs in (see [`replicate_protocol::trace`]).
    span: FlowSpan,
}

/// Whether the stream of the prediction a flow waits for is followed.
enum Following {
    NotYet,
    Running(Watch),
    Over,
}

/// A thread following a stream for a flow that sleeps.
struct Watch {
    /// Signalled when the stream said `done` (or gave up).
    done: Receiver<()>,
    /// Dropped with the driver, which stops the thread.
    _stop: mpsc::Sender<()>,
}

impl<F: Flow> Driver<F> {
    pub(crate) fn new(client: Client, flow: F) -> Self {
        Driver {
            buf: Vec::new(),
            stop: None,
            cancel: None,
            watch: Following::NotYet,
            span: FlowSpan::new(&flow),
            client,
            flow,
            body: None,
        }
    }

    pub(crate) fn flow(&self) -> &F {
        &self.flow
    }

    /// A chunk the flow handed out, written and no longer needed: its buffer serves the next
    /// read (no new allocation, no zeroing).
    pub(crate) fn recycle(&mut self, mut chunk: Vec<u8>) {
        if self.buf.is_empty() && chunk.capacity() >= READ_CHUNK {
            chunk.resize(READ_CHUNK, 0);
            self.buf = chunk;
        }
    }

    /// The flow, between two steps (for the download macros, which read it alike in both
    /// clients).
    pub(crate) fn current(&self) -> Option<&F> {
        Some(&self.flow)
    }

    /// The same driver, ending its flow ([`Event::Stopped`]) once `stop` is raised: at its next
    /// step, or at once when it sleeps.
    pub(crate) fn stop_with(mut self, stop: &Stop) -> Self {
        self.cancel = Some(stop.clone());
        self
    }

    /// Drives the flow to its end, dropping its items.
    pub(crate) fn finish(mut self) -> F::Output {
        loop {
            if let Event::Done(output) = self.next_event() {
                return output;
            }
        }
    }

    fn stopped(&self) -> bool {
        self.cancel.as_ref().is_some_and(Stop::is_raised)
            || self
                .stop
                .as_ref()
                .is_some_and(|rx| matches!(rx.try_recv(), Err(TryRecvError::Disconnected)))
    }

    /// Drives the flow until it yields an item or ends.
    pub(crate) fn next_event(&mut self) -> Event<F::Item, F::Output> {
        let span = self.span.span().clone();
        let _entered = span.enter();
        loop {
            self.span.observe(&self.flow);
            if self.stopped() {
                self.body = None;
                return Event::Stopped;
            }
            let step = self.flow.poll(Instant::now());
            if !matches!(step, Step::Receive | Step::Yield(_)) {
                // The rule: a body stays open only while the flow reads it or yields.
                self.body = None;
            }
            match step {
                Step::Send(out) => self.send(out),
                Step::Receive => self.receive(),
                Step::Sleep { until, reason } => self.sleep(until, reason),
                Step::Yield(item) => return Event::Item(item),
                Step::Done(output) => return Event::Done(output),
            }
        }
    }

    fn send(&mut self, out: Outgoing) {
        let result = self.client.exchange(out);
        let now = Instant::now();
        match result {
            Err(e) => self.flow.handle_error(e, now),
            Ok(Answer::Whole(response)) => self.flow.handle_response(response, now),
            Ok(Answer::Head(parts, body)) => {
                self.flow.handle_head(parts.status, &parts.headers, now);
                self.body = Some(body.into_reader());
            }
        }
    }

    fn receive(&mut self) {
        let Some(body) = self.body.as_mut() else {
            return self.flow.handle_end(Instant::now());
        };
        if self.buf.is_empty() {
            self.buf = vec![0; READ_CHUNK];
        }
        let read = loop {
            match body.read(&mut self.buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let now = Instant::now();
        match read {
            Ok(0) => {
                self.body = None;
                self.flow.handle_end(now);
            }
            // A large read (a download's body) gives the buffer away, for the flow to hand out
            // without a copy, and the next read takes a new one; a small one (an event of a
            // stream) is lent, and the buffer kept.
            Ok(n) if n >= READ_CHUNK / 2 => {
                let mut chunk = std::mem::take(&mut self.buf);
                chunk.truncate(n);
                self.flow.handle_chunk_owned(chunk, now);
            }
            Ok(n) => self
                .flow
                .handle_chunk(self.buf.get(..n).unwrap_or_default(), now),
            Err(e) => {
                self.body = None;
                let e = classify_io(e);
                tracing::debug!(target: LOG_TARGET, kind = ?e.kind, error = %e.message, "replicate: body read failed");
                self.flow.handle_error(e, now);
            }
        }
    }

    fn sleep(&mut self, until: Instant, reason: SleepReason) {
        let delay_ms = until.saturating_duration_since(Instant::now()).as_millis();
        // Polls are routine; retries and reconnections are worth a look.
        if reason == SleepReason::Poll {
            tracing::trace!(target: LOG_TARGET, delay_ms, "replicate: {}", reason.describe());
        } else {
            tracing::debug!(target: LOG_TARGET, delay_ms, "replicate: {}", reason.describe());
        }
        if matches!(self.watch, Following::NotYet)
            && reason == SleepReason::Poll
            && self.client.inner.settings.follow_stream
            && let Some(url) = self.flow.stream_hint()
        {
            self.watch = Following::Running(self.client.watch(url));
        }
        let wait = until.saturating_duration_since(Instant::now());
        if let Following::Running(watch) = &self.watch {
            match watch.done.recv_timeout(wait) {
                Err(RecvTimeoutError::Timeout) => {}
                // The stream said `done`, or gave up: either way it is followed no more (a
                // watcher that ended must not cut the flow's later sleeps short).
                Ok(()) => {
                    self.watch = Following::Over;
                    self.flow.wake();
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.watch = Following::Over;
                    std::thread::sleep(until.saturating_duration_since(Instant::now()));
                }
            }
        } else if let Some(stop) = &self.stop {
            // Returns early when the stop signal's sender is dropped.
            let _ = stop.recv_timeout(wait);
        } else if let Some(cancel) = &self.cancel {
            cancel.sleep(wait);
        } else {
            std::thread::sleep(wait);
        }
    }
}

/// What one exchange brought back: a whole body, or a head whose body is read as the flow asks.
pub(crate) enum Answer {
    Whole(http::Response<Vec<u8>>),
    Head(http::response::Parts, ureq::Body),
}

impl Client {
    /// Sends one request and reads its answer as it asks ([`Outgoing::read`]: whole, under its
    /// cap, or only the head), under its timeout: the one send path of flows and batches.
    pub(crate) fn exchange(&self, out: Outgoing) -> Result<Answer, TransportError> {
        let what = out.summary();
        tracing::debug!(target: LOG_TARGET, request = %what, authorized = what.authorized, timeout = ?out.timeout, "replicate: sending request");
        let read = out.read;
        let response = self.transmit(out).inspect_err(|e| {
            tracing::debug!(target: LOG_TARGET, request = %what, kind = ?e.kind, error = %e.message, "replicate: request failed");
        })?;
        tracing::debug!(target: LOG_TARGET, request = %what, status = response.status().as_u16(), "replicate: response");
        let (parts, body) = response.into_parts();
        match read {
            BodyRead::Buffered { max_bytes } => read_all(&parts.headers, body, max_bytes)
                .map(|bytes| Answer::Whole(http::Response::from_parts(parts, bytes))),
            BodyRead::Streamed => Ok(Answer::Head(parts, body)),
        }
    }

    /// [`Client::exchange`] of a request whose answer is read whole (a head-only answer is read
    /// whole too, under the client's response cap).
    pub(crate) fn exchange_whole(
        &self,
        out: Outgoing,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        match self.exchange(out)? {
            Answer::Whole(response) => Ok(response),
            Answer::Head(parts, body) => {
                let cap = self.inner.settings.max_response_bytes;
                read_all(&parts.headers, body, cap)
                    .map(|bytes| http::Response::from_parts(parts, bytes))
            }
        }
    }

    /// Sends a request without following redirects, under the timeout the flow chose.
    fn transmit(&self, out: Outgoing) -> Result<http::Response<ureq::Body>, TransportError> {
        use ureq::RequestExt;
        let request = out.request.with_agent(&self.inner.agent);
        let configured = match out.timeout {
            // The agent applies it already: configuring it again costs system calls.
            Timeout::Total(t) if self.inner.agent_timeout == Some(t) => {
                return request.run().map_err(classify);
            }
            Timeout::Total(t) => request
                .configure()
                .timeout_global(Some(t))
                .timeout_per_read(None)
                .timeout_per_write(None),
            Timeout::Idle(t) => request
                .configure()
                .timeout_global(None)
                .timeout_per_call(None)
                .timeout_send_body(None)
                .timeout_recv_body(None)
                .timeout_recv_response(Some(t))
                .timeout_per_read(Some(t))
                .timeout_per_write(Some(t)),
        };
        configured
            .http_status_as_error(false)
            .max_redirects(0)
            .allow_non_standard_methods(true)
            .run()
            .map_err(classify)
    }

    /// Starts a thread following the stream at `url` until `done`, a failure, or the returned
    /// watch is dropped.
    fn watch(&self, url: &str) -> Watch {
        let (done_tx, done) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel();
        let session = StreamSession::new(self.config(), url, self.inner.settings.stream.clone());
        let client = self.clone();
        std::thread::spawn(move || {
            if let Ok(session) = session {
                let mut driver = Driver::new(client, session);
                driver.stop = Some(stop_rx);
                while let Event::Item(event) = driver.next_event() {
                    if matches!(event, ReplicateEvent::Done(_)) {
                        break;
                    }
                }
            }
            let _ = done_tx.send(());
        });
        Watch {
            done,
            _stop: stop_tx,
        }
    }
}

/// A signal shared by the flows of one batch (the downloads of
/// [`Client::download_outputs`]): once raised, each of them ends at its next step, and a flow
/// asleep (a retry's backoff) wakes at once.
#[derive(Clone, Debug, Default)]
pub(crate) struct Stop(Arc<(Mutex<bool>, Condvar)>);

impl Stop {
    /// Raises it.
    pub(crate) fn raise(&self) {
        let (raised, wake) = &*self.0;
        *raised.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
    }

    /// Whether it was raised.
    pub(crate) fn is_raised(&self) -> bool {
        *self.0.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps `wait`, or less when it is raised meanwhile.
    fn sleep(&self, wait: std::time::Duration) {
        let (raised, wake) = &*self.0;
        let guard = raised.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = wake
            .wait_timeout_while(guard, wait, |raised| !*raised)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// Reads a whole body of at most `max_bytes`: refused from its head when it announces more,
/// else at the read that crosses the cap.
fn read_all(
    headers: &http::HeaderMap,
    mut body: ureq::Body,
    max_bytes: u64,
) -> Result<Vec<u8>, TransportError> {
    check_announced_length(headers, max_bytes)?;
    body.with_config()
        .limit(max_bytes)
        .read_to_vec()
        .map_err(classify)
}

/// The items a flow yields, as an iterator that drives it: [`Pages`] of a list,
/// [`EventStream`] of a prediction's events. An `Err` is the last item: what ended the flow.
/// Dropping it closes any connection it holds.
pub struct Items<F: Flow> {
    driver: Driver<F>,
    /// An item read ahead by [`Items::start`].
    pending: Option<F::Item>,
    fused: bool,
}

/// Every item of a paginated list; pages are fetched as the iterator advances, each request
/// going to the configured base URL with only the cursor of the previous page.
pub type Pages<P> = Items<Pager<P>>;

/// The events of a prediction stream, read as the iterator advances (see [`Client::stream`]).
///
/// Items are [`ReplicateEvent`]s, `done` included (with its reason), then the iterator ends.
/// An `Err` is the last item: an `error` event ([`Error::PredictionStreamError`]), a gone stream
/// (see [`replicate_protocol::stream::is_stream_gone`]), or reconnection attempts exhausted.
pub type EventStream = Items<StreamSession>;

impl<F: Flow<Output = Result<(), Error>>> Items<F> {
    pub(crate) fn new(driver: Driver<F>) -> Self {
        Items {
            driver,
            pending: None,
            fused: false,
        }
    }

    /// The flow being driven (a stream session's last event id, a pager's page count...).
    pub fn flow(&self) -> &F {
        self.driver.flow()
    }

    /// Drives the flow until its first item is ready or a body is open, so that a failure to
    /// start (a refused stream) is an error here rather than the first item.
    pub(crate) fn start(mut self) -> Result<Self, Error> {
        // Items yielded while starting are not lost: they are put back in front.
        match self.driver.next_event() {
            Event::Item(item) => {
                self.pending = Some(item);
                Ok(self)
            }
            Event::Done(Ok(())) | Event::Stopped => {
                self.fused = true;
                Ok(self)
            }
            Event::Done(Err(e)) => Err(e),
        }
    }
}

impl EventStream {
    /// The session: its last event id, reconnection count, ...
    pub fn session(&self) -> &StreamSession {
        self.flow()
    }

    /// The id of the last event received.
    pub fn last_event_id(&self) -> Option<&str> {
        self.flow().last_event_id()
    }
}

impl<F: Flow<Output = Result<(), Error>>> Iterator for Items<F> {
    type Item = Result<F::Item, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(item) = self.pending.take() {
            return Some(Ok(item));
        }
        if self.fused {
            return None;
        }
        match self.driver.next_event() {
            Event::Item(item) => Some(Ok(item)),
            Event::Done(result) => {
                self.fused = true;
                result.err().map(Err)
            }
            Event::Stopped => {
                self.fused = true;
                None
            }
        }
    }
}

impl<F: Flow + std::fmt::Debug> std::fmt::Debug for Items<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Items")
            .field("flow", self.driver.flow())
            .field("open", &self.driver.body.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::time::Duration;

    use replicate_protocol::{Flow, SleepReason, Step, TransportError};

    use super::*;

    /// Sleeps until 300 ms after its first poll, counting its polls, with a stream to follow.
    struct Counting {
        url: String,
        until: Option<Instant>,
        polls: u32,
    }

    impl Flow for Counting {
        type Item = std::convert::Infallible;
        type Output = u32;
        fn poll(&mut self, now: Instant) -> Step<Self::Item, u32> {
            self.polls += 1;
            let until = *self.until.get_or_insert(now + Duration::from_millis(300));
            if now >= until {
                Step::Done(self.polls)
            } else {
                Step::Sleep {
                    until,
                    reason: SleepReason::Poll,
                }
            }
        }
        fn handle_response(&mut self, _: http::Response<Vec<u8>>, _: Instant) {}
        fn handle_error(&mut self, _: TransportError, _: Instant) {}
        fn stream_hint(&self) -> Option<&str> {
            Some(&self.url)
        }
        fn wake(&mut self) {}
    }

    #[test]
    fn a_watcher_that_ended_does_not_cut_later_sleeps_short() {
        // A stream host that answers 404 at once: the watcher ends right away.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!(
            "http://{}/v1/streams/abc",
            listener.local_addr().expect("addr")
        );
        std::thread::spawn(move || {
            for conn in listener.incoming().take(8) {
                let Ok(mut conn) = conn else { return };
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
            }
        });
        let client = Client::builder()
            .token("r8_test")
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        let polls = client.drive(Counting {
            url,
            until: None,
            polls: 0,
        });
        // The first poll, the one the watcher's end woke, the one at the end; a watcher whose
        // channel was closed made every later sleep return at once (thousands of polls).
        assert!(polls <= 4, "{polls} polls for one 300 ms sleep");
    }
}
