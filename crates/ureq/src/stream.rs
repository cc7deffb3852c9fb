//! Following a prediction's server-sent events stream.

use replicate_protocol::{Error, OutputText, Prediction, StreamOptions, StreamSession};

use crate::{Client, EventStream};

impl Client {
    /// Follows a prediction's stream (`urls.stream`) with the client's [`StreamOptions`]
    /// ([`ClientBuilder::stream_options`](crate::ClientBuilder::stream_options)): the stream is
    /// read until its first event now (an error here means it could not be, e.g. the stream is
    /// gone), then events are read as the iterator advances.
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
        self.items(session).start()
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
}
