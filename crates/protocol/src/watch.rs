//! Following a running prediction as it changes: [`Watch`], a [`Flow`] that yields an
//! [`Update`] for every change it sees (status, new log lines, output, progress) and ends with
//! the terminal prediction.
//!
//! It polls like [`Wait`] (same policy, deadline and retries). With
//! [`Watch::follow_stream`], it reads the prediction's event stream instead while the prediction
//! runs, so output and log text arrive as the model writes them ([`Update::OutputChunk`],
//! [`Update::Logs`]); on the stream's `done` (or when the stream fails, or at the deadline) it
//! polls once more for the terminal prediction. While it reads the stream, the status it reports
//! goes from `starting` to `processing` at the first event (the stream carries no status), and a
//! silent stream is bounded by the stream's idle timeout ([`StreamOptions`]).
//!
//! ```
//! use std::time::Instant;
//! use replicate_protocol::watch::{Update, Watch};
//! use replicate_protocol::{Config, Flow, Prediction, Status, Step, WaitOptions};
//!
//! let running: Prediction = serde_json::from_str(
//!     r#"{"id":"p1","status":"processing","logs":" 50%|█████     | 2/4 [00:01<00:01]\n"}"#,
//! )?;
//! let mut watch = Watch::new(Config::new("r8_token"), running, WaitOptions::default());
//! let now = Instant::now();
//! assert!(matches!(watch.poll(now), Step::Yield(Update::Status(Status::Processing))));
//! assert!(matches!(watch.poll(now), Step::Yield(Update::Logs(_))));
//! assert!(matches!(watch.poll(now), Step::Yield(Update::Progress(p)) if p.current == 2));
//! assert!(matches!(watch.poll(now), Step::Sleep { .. }));
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::collections::VecDeque;
use std::time::Instant;

use http::Response;
use serde_json::Value;

use crate::flow::{Flow, Step};
use http::{HeaderMap, StatusCode};

use crate::sse::ReplicateEvent;
use crate::{
    Config, Error, Prediction, Progress, Status, StreamOptions, StreamSession, TransportError,
    Wait, WaitOptions,
};

/// One change of a prediction being watched.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// Its status, when it changed (the first update is the status the watch started from).
    Status(Status),
    /// Log text that appeared since the last update, as the model wrote it (several lines, or
    /// the rest of one). When the logs were rewritten rather than extended, all of them.
    Logs(String),
    /// The output, whole, when it changed (partial outputs grow as the model runs).
    Output(Value),
    /// An `output` event of the prediction's event stream, when the watch follows it
    /// ([`Watch::follow_stream`]): the next piece of output as the model sent it (an LLM's next
    /// tokens; a file URL or JSON text for other models). The whole output still comes as
    /// [`Update::Output`] at the end.
    OutputChunk(String),
    /// The progress of its last progress bar, when it moved (see [`crate::progress`]).
    Progress(Progress),
    /// The prediction is terminal: its last state. The last update of a watch.
    Finished(Box<Prediction>),
}

/// A [`Flow`] following a prediction until it is terminal, yielding each [`Update`]. See the
/// [module documentation](self).
#[derive(Debug)]
pub struct Watch {
    cfg: Config,
    wait: Wait,
    seen: Option<Prediction>,
    queue: VecDeque<Update>,
    outcome: Option<Result<(), Error>>,
    /// The event stream, while it is followed.
    stream: Option<StreamSession>,
    /// Whether a stream was followed (a driver then follows none of its own).
    streamed: bool,
    deadline: Option<Instant>,
}

impl Watch {
    /// Watches the prediction from this snapshot (a create's answer, a get): the first updates
    /// describe it, then each poll's changes follow.
    pub fn new(cfg: Config, prediction: Prediction, opts: WaitOptions) -> Self {
        let mut watch = Watch {
            cfg: cfg.clone(),
            deadline: opts.deadline,
            wait: Wait::from_prediction(cfg, prediction.clone(), opts),
            seen: None,
            queue: VecDeque::new(),
            outcome: None,
            stream: None,
            streamed: false,
        };
        watch.see(&prediction);
        watch
    }

    /// Reads the prediction's event stream (`urls.stream`) while it runs instead of polling,
    /// when it has one and is not terminal yet; see the [module documentation](self).
    pub fn follow_stream(mut self, opts: StreamOptions) -> Self {
        let session = self
            .seen
            .as_ref()
            .filter(|p| !p.status.is_terminal())
            .and_then(|p| StreamSession::for_prediction(&self.cfg, p, opts).ok());
        self.streamed = session.is_some();
        self.stream = session;
        self
    }

    /// Stops reading the stream and polls at once for the prediction's state.
    fn stop_streaming(&mut self) {
        if self.stream.take().is_some() {
            self.wait.wake();
        }
    }

    /// Queues what a stream event says.
    fn stream_event(&mut self, event: ReplicateEvent) {
        let (ReplicateEvent::Output(_) | ReplicateEvent::Logs(_)) = &event else {
            if matches!(event, ReplicateEvent::Done(_) | ReplicateEvent::Error(_)) {
                self.stop_streaming();
            }
            return;
        };
        let Some(seen) = self.seen.as_mut() else {
            return;
        };
        // The model writes: it runs.
        if seen.status == Status::Starting {
            seen.status = Status::Processing;
            self.queue.push_back(Update::Status(Status::Processing));
        }
        match event {
            ReplicateEvent::Output(mut text) => {
                crate::text::redact_in_place(&mut text, self.cfg.token().expose());
                self.queue.push_back(Update::OutputChunk(text));
            }
            ReplicateEvent::Logs(mut text) => {
                crate::text::redact_in_place(&mut text, self.cfg.token().expose());
                // An event is a line, its end of line left out: put back as in `logs`.
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                let before = seen.progress();
                seen.logs.get_or_insert_with(String::new).push_str(&text);
                let after = seen.progress();
                self.queue.push_back(Update::Logs(text));
                if after.is_some() && after != before {
                    self.queue.extend(after.map(Update::Progress));
                }
            }
            _ => {}
        }
    }

    /// The latest state seen.
    pub fn prediction(&self) -> Option<&Prediction> {
        self.seen.as_ref()
    }

    /// Queues what changed from the last state seen to `p` (the token taken out of what the
    /// server wrote, as everywhere).
    fn see(&mut self, p: &Prediction) {
        let mut p = p.clone();
        p.redact(self.cfg.token().expose());
        let p = &p;
        let old = self.seen.as_ref();
        if old.is_none_or(|o| o.status != p.status) {
            self.queue.push_back(Update::Status(p.status.clone()));
        }
        let (before, now) = (
            old.and_then(|o| o.logs.as_deref()).unwrap_or(""),
            p.logs.as_deref().unwrap_or(""),
        );
        match now.strip_prefix(before) {
            Some("") => {}
            Some(added) => self.queue.push_back(Update::Logs(added.to_owned())),
            None => self.queue.push_back(Update::Logs(now.to_owned())),
        }
        if old.map_or(!p.output.is_null(), |o| o.output != p.output) {
            self.queue.push_back(Update::Output(p.output.clone()));
        }
        let progress = p.progress();
        if progress.is_some() && old.and_then(Prediction::progress) != progress {
            self.queue.extend(progress.map(Update::Progress));
        }
        self.seen = Some(p.clone());
    }
}

impl Flow for Watch {
    type Item = Update;
    type Output = Result<(), Error>;

    fn poll(&mut self, now: Instant) -> Step<Update, Result<(), Error>> {
        loop {
            if let Some(update) = self.queue.pop_front() {
                return Step::Yield(update);
            }
            if let Some(outcome) = &self.outcome {
                return Step::Done(outcome.clone());
            }
            if self.deadline.is_some_and(|d| now >= d) {
                // The wait handles the deadline (and its cancel).
                self.stop_streaming();
            }
            if let Some(stream) = self.stream.as_mut() {
                match stream.poll(now) {
                    Step::Send(out) => return Step::Send(out),
                    Step::Receive => return Step::Receive,
                    Step::Sleep { until, reason } => return Step::Sleep { until, reason },
                    Step::Yield(event) => self.stream_event(event),
                    Step::Done(_) => self.stop_streaming(),
                }
                continue;
            }
            match self.wait.poll(now) {
                Step::Send(out) => return Step::Send(out),
                Step::Receive => return Step::Receive,
                Step::Sleep { until, reason } => return Step::Sleep { until, reason },
                Step::Yield(never) => match never {},
                Step::Done(Ok(p)) => {
                    self.see(&p);
                    self.queue.push_back(Update::Finished(Box::new(p)));
                    self.outcome = Some(Ok(()));
                }
                Step::Done(Err(e)) => self.outcome = Some(Err(e)),
            }
        }
    }

    fn handle_response(&mut self, response: Response<Vec<u8>>, now: Instant) {
        if let Some(stream) = self.stream.as_mut() {
            return stream.handle_response(response, now);
        }
        self.wait.handle_response(response, now);
        if let Some(p) = self
            .wait
            .last()
            .filter(|p| !p.status.is_terminal())
            .cloned()
        {
            self.see(&p);
        }
    }

    fn handle_error(&mut self, error: TransportError, now: Instant) {
        match self.stream.as_mut() {
            Some(stream) => stream.handle_error(error, now),
            None => self.wait.handle_error(error, now),
        }
    }

    fn handle_head(&mut self, status: StatusCode, headers: &HeaderMap, now: Instant) {
        if let Some(stream) = self.stream.as_mut() {
            stream.handle_head(status, headers, now);
        }
    }

    fn handle_chunk(&mut self, chunk: &[u8], now: Instant) {
        if let Some(stream) = self.stream.as_mut() {
            stream.handle_chunk(chunk, now);
        }
    }

    fn handle_end(&mut self, now: Instant) {
        if let Some(stream) = self.stream.as_mut() {
            stream.handle_end(now);
        }
    }

    fn stream_hint(&self) -> Option<&str> {
        if self.streamed {
            None
        } else {
            self.wait.stream_hint()
        }
    }

    fn wake(&mut self) {
        self.wait.wake();
    }

    fn describe(&self) -> crate::FlowInfo {
        crate::FlowInfo::new("watch").prediction(self.wait.id())
    }

    fn prediction_id(&self) -> Option<&str> {
        Some(self.wait.id())
    }
}
