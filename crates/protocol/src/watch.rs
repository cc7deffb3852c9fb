//! Following a running prediction as it changes: [`Watch`], a [`Flow`] that yields an
//! [`Update`] for every change it sees (status, new log lines, output, progress) and ends with
//! the terminal prediction.
//!
//! It polls like [`Wait`] (same policy, deadline and retries); a driver that follows the
//! prediction's event stream wakes it on `done`, as for a wait.
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
use crate::{Config, Error, Prediction, Progress, Status, TransportError, Wait, WaitOptions};

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
}

impl Watch {
    /// Watches the prediction from this snapshot (a create's answer, a get): the first updates
    /// describe it, then each poll's changes follow.
    pub fn new(cfg: Config, prediction: Prediction, opts: WaitOptions) -> Self {
        let mut watch = Watch {
            cfg: cfg.clone(),
            wait: Wait::from_prediction(cfg, prediction.clone(), opts),
            seen: None,
            queue: VecDeque::new(),
            outcome: None,
        };
        watch.see(&prediction);
        watch
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
        self.wait.handle_error(error, now);
    }

    fn stream_hint(&self) -> Option<&str> {
        self.wait.stream_hint()
    }

    fn wake(&mut self) {
        self.wait.wake();
    }
}
