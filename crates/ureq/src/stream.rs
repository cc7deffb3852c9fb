//! Following a prediction's server-sent events stream.

use std::io::Read;
use std::time::Instant;

use http::HeaderValue;
use http::header::ACCEPT_ENCODING;
use replicate_protocol::sse::ReplicateEvent;
use replicate_protocol::{
    Error, OutputText, Prediction, StreamOptions, StreamSession, StreamStep, TransportError,
};

use crate::{Client, classify, classify_io, loggable_uri, millis};

/// Bytes asked for per read of a stream body.
const READ_CHUNK: usize = 16 * 1024;

impl Client {
    /// Follows a prediction's stream (`urls.stream`) with the default [`StreamOptions`]: the
    /// connection is opened now (an error here means it could not be, e.g. the stream is gone),
    /// then events are read as the iterator advances.
    ///
    /// The stream URL is on another host than the API, so by default the request carries no
    /// token (see [`StreamOptions::auth`]). The connection has a per-read timeout (the client's
    /// timeout) instead of a total one, and never follows redirects. A dropped connection is
    /// resumed with `Last-Event-ID`; see [`replicate_protocol::stream`] for the rules.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), replicate_ureq::Error> {
    /// use replicate_ureq::{Client, ReplicateEvent};
    /// use replicate_ureq::protocol::{CreatePrediction, Target};
    ///
    /// let client = Client::from_env()?;
    /// let create = CreatePrediction::new(Target::parse("meta/meta-llama-3-8b-instruct")?)
    ///     .input(serde_json::json!({"prompt": "Tell me a joke"}));
    /// let prediction = client.create(create)?;
    /// for event in client.stream(&prediction)? {
    ///     if let ReplicateEvent::Output(token) = event? {
    ///         print!("{token}");
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn stream(&self, prediction: &Prediction) -> Result<EventStream, Error> {
        self.stream_with(prediction, self.inner.settings.stream.clone())
    }

    /// [`Client::stream`] with explicit options.
    pub fn stream_with(
        &self,
        prediction: &Prediction,
        opts: StreamOptions,
    ) -> Result<EventStream, Error> {
        let session = StreamSession::for_prediction(self.config(), prediction, opts)?;
        self.stream_session(session)
    }

    /// Follows the stream at `url` (a prediction's `urls.stream`).
    pub fn stream_url(&self, url: &str, opts: StreamOptions) -> Result<EventStream, Error> {
        let session = StreamSession::new(self.config(), url, opts)?;
        self.stream_session(session)
    }

    /// Drives a stream session of your own making.
    pub fn stream_session(&self, session: StreamSession) -> Result<EventStream, Error> {
        let mut stream = EventStream {
            client: self.clone(),
            session,
            body: None,
            buf: vec![0; READ_CHUNK].into_boxed_slice(),
            fused: false,
            stop: None,
        };
        stream.open()?;
        Ok(stream)
    }

    /// A stream that ends as soon as `stop`'s sender is dropped: checked before every read and
    /// reconnection, and during the sleeps between them (a read in progress still ends by the
    /// idle timeout). The flow watcher of [`Client::drive`] uses it so that it never outlives
    /// its flow.
    pub(crate) fn stream_url_until(
        &self,
        url: &str,
        opts: StreamOptions,
        stop: std::sync::mpsc::Receiver<()>,
    ) -> Result<EventStream, Error> {
        let session = StreamSession::new(self.config(), url, opts)?;
        let mut stream = EventStream {
            client: self.clone(),
            session,
            body: None,
            buf: vec![0; READ_CHUNK].into_boxed_slice(),
            fused: false,
            stop: Some(stop),
        };
        stream.open()?;
        Ok(stream)
    }

    /// Follows a prediction's stream to its end and returns the text of its `output` events,
    /// concatenated. An `error` event is [`Error::PredictionStreamError`]. The text is capped at
    /// the client's response size limit ([`ClientBuilder::max_response_bytes`](crate::ClientBuilder::max_response_bytes)).
    pub fn stream_text(&self, prediction: &Prediction) -> Result<String, Error> {
        let limit = usize::try_from(self.inner.settings.max_response_bytes).unwrap_or(usize::MAX);
        let mut text = OutputText::with_limit(limit);
        for event in self.stream(prediction)? {
            text.push(&event?)?;
        }
        Ok(text.into_string())
    }

    /// Opens one stream connection: no total timeout (a stream stays open for minutes), a
    /// per-read timeout, no redirects, no compression.
    fn open_stream(
        &self,
        mut request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<ureq::Body>, TransportError> {
        use ureq::RequestExt;
        request
            .headers_mut()
            .insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        let timeout = self.inner.settings.timeout;
        request
            .with_agent(&self.inner.agent)
            .configure()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(None)
            .timeout_per_call(None)
            .timeout_recv_body(None)
            .timeout_recv_response(Some(timeout))
            .timeout_per_read(Some(timeout))
            .run()
            .map_err(classify)
    }
}

/// The events of a prediction stream, read as the iterator advances (see [`Client::stream`]).
///
/// Items are [`ReplicateEvent`]s, `done` included (with its reason), then the iterator ends.
/// An `Err` is the last item: an `error` event ([`Error::PredictionStreamError`]), a gone stream
/// (see [`replicate_protocol::stream::is_stream_gone`]), or reconnection attempts exhausted.
pub struct EventStream {
    client: Client,
    session: StreamSession,
    body: Option<ureq::BodyReader<'static>>,
    buf: Box<[u8]>,
    fused: bool,
    /// Ends the stream when its sender is gone (see `Client::stream_url_until`).
    stop: Option<std::sync::mpsc::Receiver<()>>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("session", &self.session)
            .field("open", &self.body.is_some())
            .finish_non_exhaustive()
    }
}

impl EventStream {
    /// The session: its last event id, reconnection count, ...
    pub fn session(&self) -> &StreamSession {
        &self.session
    }

    /// The id of the last event received.
    pub fn last_event_id(&self) -> Option<&str> {
        self.session.last_event_id()
    }

    /// Whether the owner of the stop signal is gone: the stream must end now.
    fn stopped(&self) -> bool {
        self.stop.as_ref().is_some_and(|rx| {
            matches!(
                rx.try_recv(),
                Err(std::sync::mpsc::TryRecvError::Disconnected)
            )
        })
    }

    /// Drives the session until a body is open, or it is over.
    fn open(&mut self) -> Result<(), Error> {
        loop {
            if self.body.is_some() || self.stopped() {
                return Ok(());
            }
            match self.session.poll(Instant::now()) {
                StreamStep::Connect(request) => self.connect(request),
                StreamStep::Sleep(until) => self.sleep_until(until),
                StreamStep::Done(Ok(())) => return Ok(()),
                StreamStep::Done(Err(e)) => {
                    self.fused = true;
                    return Err(e);
                }
            }
        }
    }

    fn connect(&mut self, request: http::Request<Vec<u8>>) {
        let url = loggable_uri(request.uri());
        tracing::debug!(
            %url,
            authorized = self.session.sends_token(),
            last_event_id = self.session.last_event_id().is_some(),
            "replicate: opening event stream"
        );
        match self.client.open_stream(request) {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                tracing::debug!(%url, status = parts.status.as_u16(), "replicate: event stream answered");
                self.session
                    .handle_connected(parts.status, &parts.headers, Instant::now());
                if self.session.is_reading() {
                    self.body = Some(body.into_reader());
                }
            }
            Err(e) => {
                tracing::debug!(%url, kind = ?e.kind, error = %e.message, "replicate: event stream connection failed");
                self.session.handle_error(e, Instant::now());
            }
        }
    }

    /// Waits before reconnecting.
    fn sleep_until(&self, until: Instant) {
        let delay = until.saturating_duration_since(Instant::now());
        tracing::debug!(
            delay_ms = millis(delay),
            reconnects = self.session.reconnects(),
            "replicate: reconnecting event stream"
        );
        match &self.stop {
            // Returns early when the stop signal's sender is dropped.
            Some(stop) => {
                let _ = stop.recv_timeout(delay);
            }
            None => std::thread::sleep(delay),
        }
    }

    /// Reads the open body once and feeds the session.
    fn read_some(&mut self) {
        let Some(body) = self.body.as_mut() else {
            return;
        };
        if !self.session.is_reading() {
            // `done` arrived: drop the connection.
            self.body = None;
            return;
        }
        match body.read(&mut self.buf) {
            Ok(0) => {
                self.body = None;
                tracing::debug!("replicate: event stream body ended");
                self.session.handle_eof(Instant::now());
            }
            Ok(n) => {
                let bytes = self.buf.get(..n).unwrap_or_default();
                self.session.feed(bytes);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                self.body = None;
                let e = classify_io(e);
                tracing::debug!(kind = ?e.kind, error = %e.message, "replicate: event stream read failed");
                self.session.handle_error(e, Instant::now());
            }
        }
    }
}

impl Iterator for EventStream {
    type Item = Result<ReplicateEvent, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.fused {
            return None;
        }
        loop {
            if self.stopped() {
                self.fused = true;
                self.body = None;
                return None;
            }
            if let Some(item) = self.session.next_event() {
                if item.is_err() {
                    self.fused = true;
                    self.body = None;
                }
                return Some(item);
            }
            if self.body.is_some() {
                self.read_some();
                continue;
            }
            match self.session.poll(Instant::now()) {
                StreamStep::Connect(request) => self.connect(request),
                StreamStep::Sleep(until) => self.sleep_until(until),
                StreamStep::Done(result) => {
                    self.fused = true;
                    return result.err().map(Err);
                }
            }
        }
    }
}

impl std::iter::FusedIterator for EventStream {}
