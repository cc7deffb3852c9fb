//! Following a prediction's server-sent events stream.

use futures_util::StreamExt;
use replicate_protocol::{Error, OutputText, Prediction, StreamOptions, StreamSession};

use crate::{Client, EventStream};

impl Client {
    /// Follows a prediction's stream (`urls.stream`) with the client's [`StreamOptions`]
    /// ([`ClientBuilder::stream_options`](crate::ClientBuilder::stream_options)): the stream is
    /// read until its first event now (an error here means it could not be, e.g. the stream is
    /// gone), then events are read as the stream is polled.
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
        self.items(session).start().await
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
}
