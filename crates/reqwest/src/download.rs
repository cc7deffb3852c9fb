//! Downloading outputs: to memory, to any writer, as a stream, or streamed to files (several at
//! once), with a size cap, redirects followed by the [`Download`](replicate_protocol::Download)
//! flow, and never the API token for output hosts. What the blocking client does the same way
//! is generated once (`download_methods!`).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::stream::{FusedStream, FuturesUnordered, Stream, StreamExt};
use replicate_protocol::{Download, DownloadItem, Downloaded, Error, OutputRef};
use tokio::fs::{self, File, OpenOptions};
use tokio::io::{AsyncSeekExt, AsyncWrite as Write, AsyncWriteExt};

use crate::Client;
use crate::driver::{Driver, Event, Stop};

replicate_protocol::download_methods!(async; .await);

impl Client {
    /// Downloads the output at `url` (an `http(s)` URL) into `sink`, one chunk at a time: the
    /// memory it takes does not grow with the output's size. Returns what the download was
    /// (its `Content-Type`, its length); `sink` is flushed at the end.
    ///
    /// The rules of [`Client::download`] hold: no token off the API's origin, redirects, the
    /// download cap, expired links explained, retries, the idle timeout and the minimum
    /// progress. A `data:` URI holds its content already: decode it with
    /// [`OutputRef::parse`](replicate_protocol::OutputRef::parse) (or use
    /// [`Client::download`]).
    ///
    /// **Restarts.** When an attempt fails after some bytes and the download has to start over
    /// from the first byte, what `sink` received cannot be taken back: if bytes were already
    /// written, this fails with an [`Error::Output`] of kind
    /// [`OutputErrorKind::Write`](replicate_protocol::OutputErrorKind::Write) saying that the
    /// download restarted and `sink` holds partial data; a restart before any byte was written
    /// is invisible. (A download that resumes where it stopped, with a range request, is no
    /// restart.) [`Client::download_outputs`] and [`Client::download`] start over by
    /// themselves, truncating their file or buffer.
    ///
    /// ```no_run
    /// # async fn example(client: replicate_reqwest::Client) -> Result<(), replicate_reqwest::Error> {
    /// # let url = "https://replicate.delivery/xezq/abc/out-0.mp4";
    /// let file = tokio::fs::File::create("video.mp4").await.expect("create");
    /// let mut file = tokio::io::BufWriter::new(file);
    /// let done = client.download_to(url, &mut file).await?;
    /// println!("{} bytes of {:?}", done.bytes, done.content_type);
    /// # Ok(()) }
    /// ```
    pub async fn download_to<W: Write + Unpin + ?Sized>(
        &self,
        url: &str,
        sink: &mut W,
    ) -> Result<Downloaded, Error> {
        self.download_into(url, sink).await
    }

    /// Opens the output at `url` (an `http(s)` URL) as a [`Stream`] of its bytes, downloaded
    /// as the stream is polled: the memory it holds is one chunk, whatever the output's size.
    /// The download is started here, so that a refused one (an expired link, a body announced
    /// over the cap) is an error of this call.
    ///
    /// The rules of [`Client::download`] hold (no token off the API's origin, redirects, the
    /// cap, expired links, retries, the idle timeout, the minimum progress). A failure is the
    /// stream's last item, an `Err`: the stream never ends short without one. When the
    /// download has to start over after bytes were handed out (see [`Client::download_to`]),
    /// the stream ends with that error too. After its end, [`OutputStream::downloaded`] tells
    /// what the download was.
    ///
    /// ```no_run
    /// # async fn example(client: replicate_reqwest::Client) -> Result<(), replicate_reqwest::Error> {
    /// use replicate_reqwest::StreamExt;
    /// # let url = "https://replicate.delivery/xezq/abc/out-0.mp4";
    /// let mut output = client.open_output(url).await?;
    /// let mut total = 0;
    /// while let Some(chunk) = output.next().await {
    ///     total += chunk?.len(); // a `bytes::Bytes`
    /// }
    /// println!("{total} bytes");
    /// # Ok(()) }
    /// ```
    pub async fn open_output(&self, url: &str) -> Result<OutputStream, Error> {
        let mut stream = OutputStream {
            url: url.to_owned(),
            state: State::Idle(Box::new(self.download_driver(url, None, None)?)),
            pending: None,
            delivered: 0,
            downloaded: None,
        };
        // Until the first bytes or the end: a download refused from the start fails here.
        match stream.next().await {
            Some(Ok(first)) => {
                stream.delivered = 0;
                stream.pending = Some(first);
            }
            Some(Err(e)) => return Err(e),
            None => {}
        }
        Ok(stream)
    }

    /// Saves a prediction's outputs with the client's concurrency: up to
    /// `download_concurrency` downloads at once, all within the calling task (nothing is
    /// spawned), the complete files named in output order. The first error drops the other
    /// downloads in flight, which closes their connections and removes their temporary files.
    async fn save_all(
        &self,
        save: &Save<'_>,
        refs: &[OutputRef],
        overwrite: bool,
    ) -> Result<Vec<PathBuf>, Error> {
        let limit = self.inner.settings.download_concurrency.min(refs.len());
        if limit <= 1 {
            return self.save_in_order(save, refs, overwrite).await;
        }
        let mut batch = Batch::new(save.dir, refs, overwrite);
        let stop = &Stop;
        let fetch = |(index, output)| async move {
            (index, self.fetch_output(save, output, Some(stop)).await)
        };
        let mut outputs = refs.iter().enumerate();
        let mut running: FuturesUnordered<_> = outputs.by_ref().take(limit).map(fetch).collect();
        let mut failure = None;
        while let Some((index, result)) = running.next().await {
            if let Err(e) = match result {
                Ok(fetched) => batch.complete(index, fetched).await,
                Err(e) => Err(e),
            } {
                failure = Some(e);
                break;
            }
            if let Some(next) = outputs.next() {
                running.push(fetch(next));
            }
        }
        // Stops the downloads still in flight: their connections close, their files go.
        drop(running);
        match failure {
            None => Ok(batch.into_paths()),
            // Dropping the batch removes the files saved ahead of an output that failed.
            Some(e) => Err(e),
        }
    }
}

type Pending = Pin<
    Box<
        dyn Future<
                Output = (
                    Box<Driver<Download>>,
                    Event<DownloadItem, Result<Downloaded, Error>>,
                ),
            > + Send,
    >,
>;

enum State {
    Idle(Box<Driver<Download>>),
    Busy(Pending),
    Over,
}

/// An output being downloaded, as a [`Stream`] of [`Bytes`] (see [`Client::open_output`]).
/// An `Err` is the last item. Dropping it closes the connection.
///
/// It is `Send` and `Unpin`: use it with [`StreamExt`](crate::StreamExt).
pub struct OutputStream {
    url: String,
    state: State,
    /// The first chunk, read ahead by [`Client::open_output`].
    pending: Option<Bytes>,
    /// Bytes handed out.
    delivered: u64,
    downloaded: Option<Downloaded>,
}

impl OutputStream {
    /// What the download was (its `Content-Type` and length), once the stream ended without
    /// an error.
    pub fn downloaded(&self) -> Option<&Downloaded> {
        self.downloaded.as_ref()
    }

    /// The bytes handed out so far.
    pub fn bytes_read(&self) -> u64 {
        self.delivered
    }
}

impl Stream for OutputStream {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(first) = this.pending.take() {
            this.delivered = this.delivered.saturating_add(first.len() as u64);
            return Poll::Ready(Some(Ok(first)));
        }
        loop {
            match std::mem::replace(&mut this.state, State::Over) {
                State::Over => return Poll::Ready(None),
                State::Idle(mut driver) => {
                    this.state = State::Busy(Box::pin(async move {
                        let event = driver.next_event().await;
                        (driver, event)
                    }));
                }
                State::Busy(mut pending) => {
                    let Poll::Ready((driver, event)) = pending.as_mut().poll(cx) else {
                        this.state = State::Busy(pending);
                        return Poll::Pending;
                    };
                    let failure = match event {
                        Event::Item(DownloadItem::Chunk(bytes)) => {
                            this.state = State::Idle(driver);
                            if bytes.is_empty() {
                                continue;
                            }
                            this.delivered = this.delivered.saturating_add(bytes.len() as u64);
                            return Poll::Ready(Some(Ok(Bytes::from(bytes))));
                        }
                        // Nothing was handed out yet: nothing to take back.
                        Event::Item(DownloadItem::Restart) if this.delivered == 0 => {
                            this.state = State::Idle(driver);
                            continue;
                        }
                        Event::Item(DownloadItem::Restart) => restarted(&this.url, this.delivered),
                        Event::Done(Ok(done)) => {
                            this.downloaded = Some(done);
                            return Poll::Ready(None);
                        }
                        Event::Done(Err(e)) => e,
                        Event::Stopped => Error::InvalidState("download abandoned"),
                    };
                    return Poll::Ready(Some(Err(failure)));
                }
            }
        }
    }
}

impl FusedStream for OutputStream {
    fn is_terminated(&self) -> bool {
        matches!(self.state, State::Over) && self.pending.is_none()
    }
}

impl std::fmt::Debug for OutputStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputStream")
            .field("url", &replicate_protocol::config::loggable_url(&self.url))
            .field("bytes_read", &self.delivered)
            .field("downloaded", &self.downloaded)
            .finish_non_exhaustive()
    }
}
