//! Batches: [`Client::batch`] and the iterator that drives a [`Batch`] with a bounded pool of
//! worker threads (see the crate documentation's "Batches" section).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use replicate_protocol::settings::{BatchError, BatchSettings};
use replicate_protocol::{
    Batch, BatchStep, BatchSummary, ItemResult, Outgoing, Prediction, RequestId, TransportError,
};

use crate::Client;
use crate::driver::LOG_TARGET;

replicate_protocol::batch_methods!(;);

/// What reaches the coordinator: an answer from a worker, or a webhook delivery.
enum Msg {
    Answer(RequestId, Result<http::Response<Vec<u8>>, TransportError>),
    Webhook(Box<Prediction>),
}

/// A request for a worker.
type Job = (RequestId, Outgoing);

impl BatchBuilder {
    /// Opens the journal (resuming it when it has records) and starts the batch: the returned
    /// iterator drives it as it is advanced, yielding each item as it ends, in completion
    /// order.
    ///
    /// Fails when the model or an option is invalid, or the journal cannot be opened, read, or
    /// belongs to another batch ([`BatchError::Journal`]; the file is then left as it was).
    pub fn run(self) -> Result<BatchIter, BatchError> {
        let (client, settings, batch, journal) = self.prepare()?;
        let (msg_tx, msgs) = mpsc::channel();
        let (jobs, job_rx) = mpsc::channel();
        Ok(BatchIter {
            client,
            settings,
            batch,
            journal,
            jobs: Some(jobs),
            job_rx: Arc::new(Mutex::new(job_rx)),
            msgs,
            msg_tx,
            stopping: Arc::new(AtomicBool::new(false)),
            workers: Vec::new(),
            busy: 0,
            failed: None,
            summary: None,
            over: false,
        })
    }
}

/// A running batch, as an iterator of its items in completion order (see
/// [`BatchBuilder::run`]).
///
/// Each [`ItemResult`] is one input's end: its terminal prediction, whatever its status, or why
/// it has none. An `Err` is the last item: what ended the batch early (a journal that could not
/// be written, a refused token, the server failing past the retry policy), after the requests
/// in flight were answered; [`BatchIter::summary`] then says which items were not over.
///
/// Requests are sent by at most [`BatchIter::max_requests`] worker threads, started as needed.
/// The iterator's thread schedules everything: it sleeps in [`Iterator::next`] until an answer,
/// a webhook or a timer. Dropping the iterator stops the batch: nothing more is sent, and the
/// drop waits for the workers to end (a request in flight ends within its timeout). A prediction
/// already created keeps running on Replicate: resume the batch from its journal.
///
/// With a journal, an item is recorded done once the next item is asked for: one killed while
/// handling an item is yielded again by the resumed batch (never created again).
pub struct BatchIter {
    client: Client,
    settings: BatchSettings,
    batch: Batch,
    journal: Option<File>,
    /// `None` once the batch is over: the workers then end.
    jobs: Option<Sender<Job>>,
    job_rx: Arc<Mutex<Receiver<Job>>>,
    msgs: Receiver<Msg>,
    msg_tx: Sender<Msg>,
    /// Raised when the iterator is dropped: workers send nothing more.
    stopping: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    /// Requests handed to the workers and not answered.
    busy: usize,
    failed: Option<BatchError>,
    summary: Option<BatchSummary>,
    over: bool,
}

/// Feeds verified webhook deliveries to a running batch, from any thread: see
/// [`BatchIter::handle`].
#[derive(Clone, Debug)]
pub struct BatchHandle {
    tx: Sender<Msg>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Answer(id, _) => write!(f, "Answer({id})"),
            Msg::Webhook(p) => write!(f, "Webhook({})", p.id),
        }
    }
}

impl BatchHandle {
    /// Hands a webhook delivery to the batch (verify it first: [`Client::verify_webhook`]). A
    /// terminal prediction of one of its items ends that item, which is not polled any more; a
    /// prediction of no item of the batch is ignored. Returns `false` when the batch is gone.
    pub fn feed_webhook(&self, prediction: Prediction) -> bool {
        self.tx.send(Msg::Webhook(Box::new(prediction))).is_ok()
    }
}

impl BatchIter {
    /// A handle feeding webhook deliveries to this batch (see
    /// [`Completion::Webhook`](replicate_protocol::Completion::Webhook)).
    pub fn handle(&self) -> BatchHandle {
        BatchHandle {
            tx: self.msg_tx.clone(),
        }
    }

    /// The summary, once the iterator has ended.
    pub fn summary(&self) -> Option<&BatchSummary> {
        self.summary.as_ref()
    }

    /// The counts so far.
    pub fn progress(&self) -> &BatchSummary {
        self.batch.progress()
    }

    /// The most requests in flight at once: the most worker threads.
    pub fn max_requests(&self) -> usize {
        self.batch.max_requests()
    }

    /// The worker threads started so far (at most [`BatchIter::max_requests`]).
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Stops the batch: nothing new is sent; the iterator yields the items the requests in
    /// flight end, then ends, with [`BatchSummary::unfinished`] listing the others.
    pub fn stop(&mut self) {
        self.batch.stop();
    }

    /// The journal file, when the batch keeps one.
    pub fn journal_path(&self) -> Option<&std::path::Path> {
        self.settings.journal.as_deref()
    }

    fn take(&mut self, msg: Msg) {
        let now = Instant::now();
        match msg {
            Msg::Answer(id, result) => {
                self.busy = self.busy.saturating_sub(1);
                match result {
                    Ok(response) => self.batch.handle_response(id, response, now),
                    Err(e) => self.batch.handle_error(id, e, now),
                }
            }
            Msg::Webhook(prediction) => {
                self.batch.feed_webhook(*prediction, now);
            }
        }
    }

    fn write(&mut self, record: &replicate_protocol::JournalRecord) {
        if self.failed.is_some() {
            return;
        }
        let Some(file) = self.journal.as_mut() else {
            return;
        };
        if let Err(e) = append_record(file, record) {
            tracing::debug!(target: LOG_TARGET, error = %e, "replicate: batch journal write failed");
            // Nothing more is sent: the record may not be on disk.
            self.failed = Some(self.settings.io_error(e));
            self.batch.stop();
        }
    }

    fn dispatch(&mut self, id: RequestId, out: Outgoing) {
        if self.busy >= self.workers.len() && self.workers.len() < self.batch.max_requests() {
            self.spawn_worker();
        }
        self.busy += 1;
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send((id, out)).is_ok());
        if !sent {
            self.busy -= 1;
            let e = TransportError::new(
                replicate_protocol::TransportErrorKind::Connect,
                "the batch's workers are gone",
            );
            self.batch.handle_error(id, e, Instant::now());
        }
    }

    fn spawn_worker(&mut self) {
        let client = self.client.clone();
        let jobs = self.job_rx.clone();
        let answers = self.msg_tx.clone();
        let stopping = self.stopping.clone();
        let spawned = std::thread::Builder::new()
            .name("replicate-batch".into())
            .spawn(move || {
                loop {
                    let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok((id, out)) = job else { return };
                    if stopping.load(Ordering::Acquire) {
                        return;
                    }
                    let answer = client.exchange_whole(out);
                    if answers.send(Msg::Answer(id, answer)).is_err() {
                        return;
                    }
                }
            });
        match spawned {
            Ok(worker) => self.workers.push(worker),
            // The workers already started take the job (there is at least one unless none could
            // be started at all: then `dispatch` finds it unanswered below).
            Err(e) => {
                tracing::debug!(target: LOG_TARGET, error = %e, "replicate: cannot start a batch worker");
                if self.workers.is_empty() {
                    self.jobs = None;
                }
            }
        }
    }

    /// Ends the workers: a request in flight is finished (its answer dropped), nothing queued
    /// is sent.
    fn shutdown(&mut self) {
        self.stopping.store(true, Ordering::Release);
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

impl Iterator for BatchIter {
    type Item = Result<ItemResult, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.over {
            return None;
        }
        loop {
            while let Ok(msg) = self.msgs.try_recv() {
                self.take(msg);
            }
            match self.batch.poll(Instant::now()) {
                BatchStep::Journal(record) => self.write(&record),
                BatchStep::Send { id, out } => self.dispatch(id, out),
                BatchStep::Yield(item) => return Some(Ok(item)),
                BatchStep::Sleep { until } => {
                    let msg = match until {
                        Some(t) => self
                            .msgs
                            .recv_timeout(t.saturating_duration_since(Instant::now()))
                            .ok(),
                        // The iterator holds a sender: this returns with a message.
                        None => self.msgs.recv().ok(),
                    };
                    if let Some(msg) = msg {
                        self.take(msg);
                    }
                }
                BatchStep::Done(summary) => {
                    self.over = true;
                    self.shutdown();
                    let error = summary.error.clone();
                    self.summary = Some(summary);
                    return match self.failed.take() {
                        Some(e) => Some(Err(e)),
                        None => error.map(|e| Err(BatchError::Failed(e))),
                    };
                }
            }
        }
    }
}

impl std::iter::FusedIterator for BatchIter {}

impl Drop for BatchIter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::fmt::Debug for BatchIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchIter")
            .field("progress", self.batch.progress())
            .field("threads", &self.workers.len())
            .field("busy", &self.busy)
            .field("journal", &self.settings.journal)
            .field("over", &self.over)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_types_are_send() {
        fn assert<T: Send>() {}
        assert::<BatchIter>();
        assert::<BatchBuilder>();
        assert::<BatchHandle>();
    }

    #[test]
    fn an_invalid_model_fails_to_start() {
        let client = Client::new("r8_test").expect("client");
        let e = client
            .batch("not a model", vec![serde_json::json!({})])
            .run()
            .expect_err("an invalid model");
        assert!(matches!(e, BatchError::Start(_)), "{e:?}");
    }
}
