//! Following a prediction's server-sent events stream.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::{BoxStream, Stream};
use http::HeaderValue;
use http::header::ACCEPT_ENCODING;
use replicate_protocol::sse::ReplicateEvent;
use replicate_protocol::{
    Error, OutputText, Prediction, StreamOptions, StreamSession, StreamStep, TransportError,
};

use crate::{Client, classify, idle_timeout, loggable_uri, millis, now, tokio_instant};

type Connecting =
    Pin<Box<dyn Future<Output = Result<reqwest::Response, TransportError>> + Send + 'static>>;

impl Client {
    /// Follows a prediction's stream (`urls.stream`) with the default [`StreamOptions`]: the
    /// connection is opened now (an error here means it could not be, e.g. the stream is gone),
    /// then events are read as the stream is polled.
    ///
    /// The stream URL is on another host than the API, so by default the request carries no
    /// token (see [`StreamOptions::auth`]). The connection has no total timeout (a stream stays
    /// open for minutes) but an idle timeout: the client's timeout, for the response head and
    /// between two chunks of the body; it never follows redirects. A dropped connection is
    /// resumed with `Last-Event-ID`; see [`replicate_protocol::stream`] for the rules.
    ///
    /// A `reqwest::Client` supplied with [`ClientBuilder::client`](crate::ClientBuilder::client)
    /// that has a total timeout of its own applies it to streams too: build it without one.
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    /// use replicate_reqwest::{Client, ReplicateEvent};
    /// use replicate_reqwest::protocol::{CreatePrediction, Target};
    ///
    /// # async fn demo() -> Result<(), replicate_reqwest::Error> {
    /// let client = Client::from_env()?;
    /// let create = CreatePrediction::new(Target::parse("meta/meta-llama-3-8b-instruct")?)
    ///     .input(serde_json::json!({"prompt": "Tell me a joke"}));
    /// let prediction = client.create(create).await?;
    /// let mut events = client.stream(&prediction).await?;
    /// while let Some(event) = events.next().await {
    ///     if let ReplicateEvent::Output(token) = event? {
    ///         print!("{token}");
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn stream(&self, prediction: &Prediction) -> Result<EventStream, Error> {
        self.stream_with(prediction, self.inner.settings.stream.clone())
            .await
    }

    /// [`Client::stream`] with explicit options.
    pub async fn stream_with(
        &self,
        prediction: &Prediction,
        opts: StreamOptions,
    ) -> Result<EventStream, Error> {
        let session = StreamSession::for_prediction(self.config(), prediction, opts)?;
        self.stream_session(session).await
    }

    /// Follows the stream at `url` (a prediction's `urls.stream`).
    pub async fn stream_url(&self, url: &str, opts: StreamOptions) -> Result<EventStream, Error> {
        let session = StreamSession::new(self.config(), url, opts)?;
        self.stream_session(session).await
    }

    /// Drives a stream session of your own making.
    pub async fn stream_session(&self, session: StreamSession) -> Result<EventStream, Error> {
        let mut stream = EventStream {
            client: self.clone(),
            session,
            state: State::Idle,
            fused: false,
        };
        stream.open().await?;
        Ok(stream)
    }

    /// Follows a prediction's stream to its end and returns the text of its `output` events,
    /// concatenated. An `error` event is [`Error::PredictionStreamError`]. The text is capped at
    /// the client's response size limit ([`ClientBuilder::max_response_bytes`](crate::ClientBuilder::max_response_bytes)).
    pub async fn stream_text(&self, prediction: &Prediction) -> Result<String, Error> {
        let limit = usize::try_from(self.inner.settings.max_response_bytes).unwrap_or(usize::MAX);
        let mut text = OutputText::with_limit(limit);
        let mut events = self.stream(prediction).await?;
        while let Some(event) = events.next().await {
            text.push(&event?)?;
        }
        Ok(text.into_string())
    }

    /// Opens one stream connection: no total timeout, the client's timeout for the response
    /// head, no redirects (clients built by this crate follow none), no compression.
    fn open_stream(&self, request: http::Request<Vec<u8>>) -> Connecting {
        let client = self.clone();
        Box::pin(async move {
            let mut request = reqwest::Request::try_from(request).map_err(classify)?;
            request
                .headers_mut()
                .insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
            let timeout = client.inner.settings.timeout;
            match tokio::time::timeout(timeout, client.inner.http.execute(request)).await {
                Ok(response) => response.map_err(classify),
                Err(_) => Err(idle_timeout(timeout, "the stream's response")),
            }
        })
    }
}

/// Where an [`EventStream`] is.
enum State {
    /// Nothing in flight: poll the session.
    Idle,
    /// Waiting to reconnect.
    Sleeping(Pin<Box<tokio::time::Sleep>>),
    /// A request was sent; waiting for its response head.
    Connecting(Connecting),
    /// The body is open.
    Reading(Body),
}

/// An open body and its idle timer (reset at each chunk).
struct Body {
    chunks: BoxStream<'static, reqwest::Result<Bytes>>,
    idle: Pin<Box<tokio::time::Sleep>>,
}

/// The events of a prediction stream, read as it is polled (see [`Client::stream`]).
///
/// Items are [`ReplicateEvent`]s, `done` included (with its reason), then the stream ends.
/// An `Err` is the last item: an `error` event ([`Error::PredictionStreamError`]), a gone stream
/// (see [`replicate_protocol::stream::is_stream_gone`]), or reconnection attempts exhausted.
///
/// It is `Send` and `Unpin`: use it with [`futures_util::StreamExt`]. Dropping it closes the
/// connection.
pub struct EventStream {
    client: Client,
    session: StreamSession,
    state: State,
    fused: bool,
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("session", &self.session)
            .field("open", &matches!(self.state, State::Reading(_)))
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

    /// Drives the session until a body is open, or it is over.
    async fn open(&mut self) -> Result<(), Error> {
        loop {
            if matches!(self.state, State::Reading(_)) {
                return Ok(());
            }
            match self.session.poll(now()) {
                StreamStep::Connect(request) => {
                    let response = self.connect(request).await;
                    self.connected(response);
                }
                StreamStep::Sleep(until) => {
                    self.log_reconnect(until);
                    tokio::time::sleep_until(tokio_instant(until)).await;
                }
                StreamStep::Done(Ok(())) => return Ok(()),
                StreamStep::Done(Err(e)) => {
                    self.fused = true;
                    return Err(e);
                }
            }
        }
    }

    /// Opens a connection (see [`Client::open_stream`]).
    fn connect(&self, request: http::Request<Vec<u8>>) -> Connecting {
        tracing::debug!(
            url = %loggable_uri(request.uri()),
            authorized = self.session.sends_token(),
            last_event_id = self.session.last_event_id().is_some(),
            "replicate: opening event stream"
        );
        self.client.open_stream(request)
    }

    fn log_reconnect(&self, until: std::time::Instant) {
        tracing::debug!(
            delay_ms = millis(until.saturating_duration_since(now())),
            reconnects = self.session.reconnects(),
            "replicate: reconnecting event stream"
        );
    }

    /// Hands the outcome of a connection to the session, and keeps the body when it is to be
    /// read.
    fn connected(&mut self, response: Result<reqwest::Response, TransportError>) {
        self.state = State::Idle;
        match &response {
            Ok(response) => tracing::debug!(
                status = response.status().as_u16(),
                "replicate: event stream answered"
            ),
            Err(e) => tracing::debug!(
                kind = ?e.kind,
                error = %e.message,
                "replicate: event stream connection failed"
            ),
        }
        match response {
            Ok(response) => {
                self.session
                    .handle_connected(response.status(), response.headers(), now());
                if self.session.is_reading() {
                    let deadline = tokio::time::Instant::now() + self.client.inner.settings.timeout;
                    self.state = State::Reading(Body {
                        chunks: response.bytes_stream().boxed(),
                        idle: Box::pin(tokio::time::sleep_until(deadline)),
                    });
                }
            }
            Err(e) => self.session.handle_error(e, now()),
        }
    }

    /// Reads the open body once and feeds the session. `Pending` when nothing came yet.
    fn poll_body(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let State::Reading(body) = &mut self.state else {
            return Poll::Ready(());
        };
        if !self.session.is_reading() {
            // `done` arrived: drop the connection.
            self.state = State::Idle;
            return Poll::Ready(());
        }
        match body.chunks.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                let timeout = self.client.inner.settings.timeout;
                body.idle
                    .as_mut()
                    .reset(tokio::time::Instant::now() + timeout);
                self.session.feed(&bytes);
            }
            Poll::Ready(Some(Err(e))) => {
                self.state = State::Idle;
                let e = classify(e);
                tracing::debug!(kind = ?e.kind, error = %e.message, "replicate: event stream read failed");
                self.session.handle_error(e, now());
            }
            Poll::Ready(None) => {
                self.state = State::Idle;
                tracing::debug!("replicate: event stream body ended");
                self.session.handle_eof(now());
            }
            Poll::Pending => {
                if body.idle.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                // Silent for a whole timeout: the session decides (an idle stream is reopened).
                let timeout = self.client.inner.settings.timeout;
                self.state = State::Idle;
                tracing::debug!(
                    timeout_ms = millis(timeout),
                    "replicate: event stream idle for a whole timeout"
                );
                self.session
                    .handle_error(idle_timeout(timeout, "the stream"), now());
            }
        }
        Poll::Ready(())
    }
}

impl Stream for EventStream {
    type Item = Result<ReplicateEvent, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.fused {
            return Poll::Ready(None);
        }
        loop {
            if let Some(item) = this.session.next_event() {
                if item.is_err() {
                    this.fused = true;
                    this.state = State::Idle;
                }
                return Poll::Ready(Some(item));
            }
            match &mut this.state {
                State::Reading(_) => {
                    if this.poll_body(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
                State::Connecting(connecting) => match connecting.as_mut().poll(cx) {
                    Poll::Ready(response) => this.connected(response),
                    Poll::Pending => return Poll::Pending,
                },
                State::Sleeping(sleep) => match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => this.state = State::Idle,
                    Poll::Pending => return Poll::Pending,
                },
                State::Idle => match this.session.poll(now()) {
                    StreamStep::Connect(request) => {
                        this.state = State::Connecting(this.connect(request));
                    }
                    StreamStep::Sleep(until) => {
                        this.log_reconnect(until);
                        this.state = State::Sleeping(Box::pin(tokio::time::sleep_until(
                            tokio_instant(until),
                        )));
                    }
                    StreamStep::Done(result) => {
                        this.fused = true;
                        return Poll::Ready(result.err().map(Err));
                    }
                },
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.fused { (0, Some(0)) } else { (0, None) }
    }
}

impl futures_util::stream::FusedStream for EventStream {
    fn is_terminated(&self) -> bool {
        self.fused
    }
}
