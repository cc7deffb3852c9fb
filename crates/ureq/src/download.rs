//! Downloading outputs: to memory, to any writer, as a reader, or streamed to files (several at
//! once), with a size cap, redirects followed by the [`Download`](replicate_protocol::Download)
//! flow, and never the API token for output hosts. What the async client does the same way is
//! generated once (`download_methods!`).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use replicate_protocol::{Download, DownloadItem, Downloaded, Error, OutputRef};

use crate::Client;
use crate::driver::{Driver, Event, Stop};

replicate_protocol::download_methods!(;);

impl Client {
    /// Downloads the output at `url` (an `http(s)` URL) into `sink`, one chunk (at most 64 KiB)
    /// at a time: the memory it takes does not grow with the output's size. Returns what the
    /// download was (its `Content-Type`, its length); `sink` is flushed at the end.
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
    /// # fn main() -> Result<(), replicate_ureq::Error> {
    /// let client = replicate_ureq::Client::from_env()?;
    /// # let url = "https://replicate.delivery/xezq/abc/out-0.mp4";
    /// let mut file = std::io::BufWriter::new(std::fs::File::create("video.mp4").expect("create"));
    /// let done = client.download_to(url, &mut file)?;
    /// println!("{} bytes of {:?}", done.bytes, done.content_type);
    /// # Ok(()) }
    /// ```
    pub fn download_to<W: Write + ?Sized>(
        &self,
        url: &str,
        sink: &mut W,
    ) -> Result<Downloaded, Error> {
        self.download_into(url, &mut &mut *sink)
    }

    /// Opens the output at `url` (an `http(s)` URL) as a reader of its bytes, downloaded as
    /// they are read: the memory it holds is one chunk (at most 64 KiB), whatever the output's
    /// size. The download is started here, so that a refused one (an expired link, a body
    /// announced over the cap) is an error of this call.
    ///
    /// The rules of [`Client::download`] hold (no token off the API's origin, redirects, the
    /// cap, expired links, retries, the idle timeout, the minimum progress). A failure while
    /// reading is an [`std::io::Error`] wrapping this crate's [`Error`] (get it back with
    /// [`OutputReader::error_of`]): the reader never ends short without an error. When the
    /// download has to start over after bytes were read (see [`Client::download_to`]), the
    /// read fails the same way. After the end (a read of 0 bytes),
    /// [`OutputReader::downloaded`] tells what the download was.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), replicate_ureq::Error> {
    /// use std::io::Read;
    /// let client = replicate_ureq::Client::from_env()?;
    /// # let url = "https://replicate.delivery/xezq/abc/out-0.txt";
    /// let mut text = String::new();
    /// client.open_output(url)?.read_to_string(&mut text).expect("read");
    /// # Ok(()) }
    /// ```
    pub fn open_output(&self, url: &str) -> Result<OutputReader, Error> {
        let mut reader = OutputReader {
            url: url.to_owned(),
            driver: Some(Box::new(self.download_driver(url, None, None)?)),
            chunk: Vec::new(),
            pos: 0,
            delivered: 0,
            downloaded: None,
            failed: None,
        };
        // Until the first bytes or the end: a download refused from the start fails here.
        reader.next_chunk()?;
        Ok(reader)
    }

    /// Saves a prediction's outputs with the client's concurrency: `download_concurrency`
    /// scoped threads take the outputs in order, and this thread names the complete files in
    /// output order. The first error raises the batch's stop signal: the other downloads end at
    /// their next chunk (or at once when they sleep before a retry), no output is started any
    /// more, and every thread is joined before this returns.
    fn save_all(
        &self,
        save: &Save<'_>,
        refs: &[OutputRef],
        overwrite: bool,
    ) -> Result<Vec<PathBuf>, Error> {
        let workers = self.inner.settings.download_concurrency.min(refs.len());
        if workers <= 1 {
            return self.save_in_order(save, refs, overwrite);
        }
        let mut batch = Batch::new(save.dir, refs, overwrite);
        let stop = Stop::default();
        let next = AtomicUsize::new(0);
        let mut failure = None;
        std::thread::scope(|scope| {
            let (tx, rx) = mpsc::channel();
            for _ in 0..workers {
                let (tx, stop, next) = (tx.clone(), &stop, &next);
                scope.spawn(move || {
                    while !stop.is_raised() {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(output) = refs.get(index) else { break };
                        let result = self.fetch_output(save, output, Some(stop));
                        if tx.send((index, result)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            // Until every worker is done (each holds a sender).
            for (index, result) in rx {
                if failure.is_some() {
                    // Dropped: its temporary file goes.
                    continue;
                }
                if let Err(e) = result.and_then(|fetched| batch.complete(index, fetched)) {
                    failure = Some(e);
                    stop.raise();
                }
            }
        });
        match failure {
            None => Ok(batch.into_paths()),
            // Dropping the batch removes the files saved ahead of an output that failed.
            Some(e) => Err(e),
        }
    }
}

/// An output being downloaded, read as [`Read`] (see [`Client::open_output`]). Dropping it
/// closes the connection.
pub struct OutputReader {
    url: String,
    /// `None` once the download is over.
    driver: Option<Box<Driver<Download>>>,
    /// The chunk being read, from `pos`.
    chunk: Vec<u8>,
    pos: usize,
    /// Bytes handed to the reader's caller.
    delivered: u64,
    downloaded: Option<Downloaded>,
    /// What ended the download, repeated by every later read.
    failed: Option<Error>,
}

impl OutputReader {
    /// What the download was (its `Content-Type` and length), once it ended: after a read
    /// returned 0.
    pub fn downloaded(&self) -> Option<&Downloaded> {
        self.downloaded.as_ref()
    }

    /// The bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.delivered
    }

    /// The [`Error`] inside an error of [`OutputReader`]'s `read` (`None` for another I/O
    /// error).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), replicate_ureq::Error> {
    /// # let client = replicate_ureq::Client::from_env()?;
    /// use replicate_ureq::OutputReader;
    /// let mut reader = client.open_output("https://replicate.delivery/xezq/abc/out-0.mp4")?;
    /// if let Err(e) = std::io::copy(&mut reader, &mut std::io::sink()) {
    ///     let cause = OutputReader::error_of(&e);
    ///     eprintln!("download failed: {cause:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn error_of(e: &std::io::Error) -> Option<&Error> {
        e.get_ref().and_then(|inner| inner.downcast_ref::<Error>())
    }

    /// Drives the download to its next bytes: `Ok(true)` when a chunk is ready, `Ok(false)` at
    /// the end.
    fn next_chunk(&mut self) -> Result<bool, Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        loop {
            let Some(driver) = self.driver.as_mut() else {
                return Ok(false);
            };
            let failure = match driver.next_event() {
                Event::Item(DownloadItem::Chunk(bytes)) => {
                    // The previous chunk is dropped here: one chunk is held at a time.
                    self.chunk = bytes;
                    self.pos = 0;
                    return Ok(true);
                }
                Event::Item(DownloadItem::Restart) if self.delivered == 0 => {
                    // Nothing was handed out yet: drop what was read ahead, and go on.
                    self.chunk = Vec::new();
                    self.pos = 0;
                    continue;
                }
                Event::Item(DownloadItem::Restart) => restarted(&self.url, self.delivered),
                Event::Done(Ok(done)) => {
                    self.driver = None;
                    self.downloaded = Some(done);
                    return Ok(false);
                }
                Event::Done(Err(e)) => e,
                Event::Stopped => Error::InvalidState("download abandoned"),
            };
            self.driver = None;
            self.failed = Some(failure.clone());
            return Err(failure);
        }
    }
}

impl Read for OutputReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(rest) = self.chunk.get(self.pos..).filter(|r| !r.is_empty()) {
                let n = rest.len().min(buf.len());
                if let (Some(to), Some(from)) = (buf.get_mut(..n), rest.get(..n)) {
                    to.copy_from_slice(from);
                }
                self.pos += n;
                self.delivered = self.delivered.saturating_add(n as u64);
                return Ok(n);
            }
            if !self.next_chunk().map_err(into_io)? {
                return Ok(0);
            }
        }
    }
}

impl std::fmt::Debug for OutputReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputReader")
            .field("url", &replicate_protocol::config::loggable_url(&self.url))
            .field("bytes_read", &self.delivered)
            .field("downloaded", &self.downloaded)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// A download's error as an I/O error (a timeout keeps its kind).
fn into_io(e: Error) -> std::io::Error {
    let kind = match &e {
        Error::Transport(t) if t.kind == replicate_protocol::TransportErrorKind::Timeout => {
            std::io::ErrorKind::TimedOut
        }
        _ => std::io::ErrorKind::Other,
    };
    std::io::Error::new(kind, e)
}
