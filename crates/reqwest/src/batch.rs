//! Batches: [`Client::batch`] and the stream that drives a [`Batch`] (see the crate
//! documentation's "Batches" section).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::stream::{FusedStream, FuturesUnordered, Stream, StreamExt};
use replicate_protocol::settings::{BatchError, BatchSettings};
use replicate_protocol::{
    Batch, BatchStep, BatchSummary, ItemResult, JournalRecord, Prediction, RequestId,
    TransportError,
};
use tokio::fs::{File, OpenOptions};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::driver::LOG_TARGET;
use crate::{Client, now};

replicate_protocol::batch_methods!(async; .await);

/// A request in flight and its answer.
type Pending = Pin<
    Box<dyn Future<Output = (RequestId, Result<http::Response<Vec<u8>>, TransportError>)> + Send>,
>;

/// A journal record being appended; gives the file back.
type Writing = Pin<Box<dyn Future<Output = (File, std::io::Result<()>)> + Send>>;

impl BatchBuilder {
    /// Opens the journal (resuming it when it has records) and starts the batch: the returned
    /// stream drives it as it is polled, yielding each item as it ends, in completion order.
    ///
    /// Fails when the model or an option is invalid, or the journal cannot be opened, read, or
    /// belongs to another batch ([`BatchError::Journal`]; the file is then left as it was).
    pub async fn stream(self) -> Result<BatchStream, BatchError> {
        let (client, settings, batch, journal) = self.prepare().await?;
        let (webhook_tx, webhooks) = unbounded_channel();
        Ok(BatchStream {
            client,
            settings,
            batch,
            journal,
            writing: None,
            in_flight: FuturesUnordered::new(),
            sleep: None,
            webhooks,
            webhook_tx,
            failed: None,
            summary: None,
            over: false,
        })
    }
}

/// A running batch, as a stream of its items in completion order (see
/// [`BatchBuilder::stream`]).
///
/// Each [`ItemResult`] is one input's end: its terminal prediction, whatever its status, or why
/// it has none. An `Err` is the last item: what ended the batch early (a journal that could not
/// be written, a refused token, the server failing past the retry policy), after the requests
/// in flight were answered; [`BatchStream::summary`] then says which items were not over.
///
/// The requests (at most [`BatchStream::max_requests`] at once) are futures polled inside the
/// stream's own `poll_next`: nothing is spawned, and nothing progresses while the stream is
/// not polled. Dropping it drops the requests in flight. A prediction already created keeps
/// running on Replicate: resume the batch from its journal. Journal records are written with
/// `tokio::fs` (on tokio's blocking pool), each made durable before the batch goes on.
///
/// With a journal, an item is recorded done once the next item is asked for: one killed while
/// handling an item is yielded again by the resumed batch (never created again).
///
/// It is `Send` and `Unpin`: use it with [`StreamExt`](futures_util::StreamExt).
pub struct BatchStream {
    client: Client,
    settings: BatchSettings,
    batch: Batch,
    /// `None` while a record is being written (the write holds it).
    journal: Option<File>,
    writing: Option<Writing>,
    in_flight: FuturesUnordered<Pending>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    webhooks: UnboundedReceiver<Prediction>,
    webhook_tx: UnboundedSender<Prediction>,
    failed: Option<BatchError>,
    summary: Option<BatchSummary>,
    over: bool,
}

/// Feeds verified webhook deliveries to a running batch, from any task or thread: see
/// [`BatchStream::handle`].
#[derive(Clone, Debug)]
pub struct BatchHandle {
    tx: UnboundedSender<Prediction>,
}

impl BatchHandle {
    /// Hands a webhook delivery to the batch (verify it first: [`Client::verify_webhook`]). A
    /// terminal prediction of one of its items ends that item, which is not polled any more; a
    /// prediction of no item of the batch is ignored. Returns `false` when the batch is gone.
    pub fn feed_webhook(&self, prediction: Prediction) -> bool {
        self.tx.send(prediction).is_ok()
    }
}

impl BatchStream {
    /// A handle feeding webhook deliveries to this batch (see
    /// [`Completion::Webhook`](replicate_protocol::Completion::Webhook)).
    pub fn handle(&self) -> BatchHandle {
        BatchHandle {
            tx: self.webhook_tx.clone(),
        }
    }

    /// The summary, once the stream has ended.
    pub fn summary(&self) -> Option<&BatchSummary> {
        self.summary.as_ref()
    }

    /// The counts so far.
    pub fn progress(&self) -> &BatchSummary {
        self.batch.progress()
    }

    /// The most requests in flight at once.
    pub fn max_requests(&self) -> usize {
        self.batch.max_requests()
    }

    /// The requests in flight.
    pub fn requests_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Stops the batch: nothing new is sent; the stream yields the items the requests in
    /// flight end, then ends, with [`BatchSummary::unfinished`] listing the others.
    pub fn stop(&mut self) {
        self.batch.stop();
    }

    /// The journal file, when the batch keeps one.
    pub fn journal_path(&self) -> Option<&std::path::Path> {
        self.settings.journal.as_deref()
    }

    /// Hands the batch every answer that is ready (registering for the next one).
    fn take_answers(&mut self, cx: &mut Context<'_>) {
        while let Poll::Ready(Some((id, result))) = self.in_flight.poll_next_unpin(cx) {
            match result {
                Ok(response) => self.batch.handle_response(id, response, now()),
                Err(e) => self.batch.handle_error(id, e, now()),
            }
        }
    }

    /// Hands the batch every webhook delivery fed so far (registering for the next one).
    fn take_webhooks(&mut self, cx: &mut Context<'_>) {
        while let Poll::Ready(Some(prediction)) = self.webhooks.poll_recv(cx) {
            self.batch.feed_webhook(prediction, now());
        }
    }

    fn write(&mut self, record: JournalRecord) {
        if self.failed.is_some() {
            return;
        }
        if let Some(mut file) = self.journal.take() {
            self.writing = Some(Box::pin(async move {
                let result = append_record(&mut file, &record).await;
                (file, result)
            }));
        }
    }

    fn send(&mut self, id: RequestId, out: replicate_protocol::Outgoing) {
        let client = self.client.clone();
        self.in_flight.push(Box::pin(
            async move { (id, client.exchange_whole(out).await) },
        ));
    }
}

impl Stream for BatchStream {
    type Item = Result<ItemResult, BatchError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.over {
            return Poll::Ready(None);
        }
        loop {
            // A record is durable before the batch is polled again; answers may come meanwhile.
            if let Some(writing) = this.writing.as_mut() {
                match writing.as_mut().poll(cx) {
                    Poll::Pending => {
                        this.take_answers(cx);
                        return Poll::Pending;
                    }
                    Poll::Ready((file, result)) => {
                        this.writing = None;
                        this.journal = Some(file);
                        if let Err(e) = result {
                            tracing::debug!(target: LOG_TARGET, error = %e, "replicate: batch journal write failed");
                            // Nothing more is sent: the record may not be on disk.
                            this.failed = Some(this.settings.io_error(e));
                            this.batch.stop();
                        }
                    }
                }
            }
            this.take_webhooks(cx);
            this.take_answers(cx);
            match this.batch.poll(now()) {
                BatchStep::Journal(record) => this.write(record),
                BatchStep::Send { id, out } => this.send(id, out),
                BatchStep::Yield(item) => return Poll::Ready(Some(Ok(item))),
                BatchStep::Sleep { until } => {
                    // The answers and the webhooks registered this task above.
                    let Some(until) = until else {
                        return Poll::Pending;
                    };
                    let deadline = tokio::time::Instant::from_std(until);
                    let sleep = match &mut this.sleep {
                        Some(sleep) => {
                            sleep.as_mut().reset(deadline);
                            sleep
                        }
                        None => this
                            .sleep
                            .insert(Box::pin(tokio::time::sleep_until(deadline))),
                    };
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
                BatchStep::Done(summary) => {
                    this.over = true;
                    this.in_flight = FuturesUnordered::new();
                    this.sleep = None;
                    let error = summary.error.clone();
                    this.summary = Some(summary);
                    return Poll::Ready(match this.failed.take() {
                        Some(e) => Some(Err(e)),
                        None => error.map(|e| Err(BatchError::Failed(e))),
                    });
                }
            }
        }
    }
}

impl FusedStream for BatchStream {
    fn is_terminated(&self) -> bool {
        self.over
    }
}

impl std::fmt::Debug for BatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchStream")
            .field("progress", self.batch.progress())
            .field("in_flight", &self.in_flight.len())
            .field("journal", &self.settings.journal)
            .field("over", &self.over)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_types_are_send_and_unpin() {
        fn assert<T: Send + Unpin>() {}
        assert::<BatchStream>();
        assert::<BatchBuilder>();
        assert::<BatchHandle>();
    }
}
