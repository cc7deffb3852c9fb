//! Downloading outputs: to memory or streamed to files, with a size cap, redirects followed by
//! hand, and never the API token for output hosts.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use replicate_protocol::download_plan::{self, DownloadHead, DownloadPlan};
use replicate_protocol::output::{self, FileNames, SaveOptions};
use replicate_protocol::{DownloadLimits, Error, OutputRef, Prediction};

use crate::{Client, classify, classify_io, loggable_uri, loggable_url, millis};

/// Bytes asked for per read of a download body.
const READ_CHUNK: usize = 64 * 1024;

static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// Where a download goes; `reset` empties it before a retry.
trait Sink: Write {
    fn reset(&mut self) -> io::Result<()>;
}

impl Sink for Vec<u8> {
    fn reset(&mut self) -> io::Result<()> {
        self.clear();
        Ok(())
    }
}

impl Sink for File {
    fn reset(&mut self) -> io::Result<()> {
        self.set_len(0)?;
        self.rewind()
    }
}

/// What a successful fetch learnt.
struct Fetched {
    content_type: Option<String>,
}

impl Client {
    /// The limits downloads run with ([`ClientBuilder::max_download_bytes`](crate::ClientBuilder::max_download_bytes)).
    pub fn download_limits(&self) -> DownloadLimits {
        self.inner.settings.download_limits()
    }

    /// Downloads one output into memory: an `http(s)` URL, or a `data:` URI (decoded, no
    /// request).
    ///
    /// The request carries no `Authorization` unless the URL is on the API base URL's origin;
    /// redirects (at most 5) are followed by hand under the same rule. A body over the client's
    /// download cap (512 MiB by default) fails with a transport error of kind
    /// [`TransportErrorKind::BodyTooLarge`](replicate_protocol::TransportErrorKind::BodyTooLarge);
    /// an expired link (403, 404, 410) with [`Error::Output`] explaining that outputs are kept
    /// about an hour. 429, 5xx and network failures are retried with the client's retry policy.
    pub fn download(&self, url_or_data_uri: &str) -> Result<Vec<u8>, Error> {
        match OutputRef::parse(url_or_data_uri)? {
            OutputRef::DataUri { bytes, .. } => {
                self.download_limits().check_received(bytes.len() as u64)?;
                Ok(bytes)
            }
            OutputRef::Url(url) => {
                let mut bytes = Vec::new();
                self.fetch(&url, None, &mut bytes)?;
                Ok(bytes)
            }
        }
    }

    /// Downloads every file output of a prediction (each `http(s)` URL or `data:` URI in its
    /// output, at any depth) into `dir`, created if missing, and returns the paths in output
    /// order.
    ///
    /// Each file is streamed to a temporary file in `dir` (the cap enforced while streaming),
    /// then renamed to a safe name derived from the URL ([`output::file_name_for`]), made
    /// unique within the batch. An existing file is never replaced: the output is written as
    /// `name-1.ext`, `name-2.ext`, ... instead (the paths returned are the ones written). At most
    /// [`output::DEFAULT_MAX_OUTPUT_FILES`] files are written; over that, nothing is. See
    /// [`Client::download_outputs_with`] to change either. A prediction whose
    /// data was removed fails before any request. On an error, files already downloaded stay
    /// and the partial one is removed.
    pub fn download_outputs(
        &self,
        prediction: &Prediction,
        dir: &Path,
    ) -> Result<Vec<PathBuf>, Error> {
        self.download_outputs_with(prediction, dir, SaveOptions::default())
    }

    /// [`Client::download_outputs`] with explicit options: whether existing files are replaced,
    /// and how many files one prediction may write.
    pub fn download_outputs_with(
        &self,
        prediction: &Prediction,
        dir: &Path,
        options: SaveOptions,
    ) -> Result<Vec<PathBuf>, Error> {
        let refs = output::output_refs_capped(prediction, options.max_files)?;
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        fs::create_dir_all(dir).map_err(|e| write_error(dir, &e))?;
        let limits = self.download_limits();
        let mut names = FileNames::new();
        let mut paths = Vec::with_capacity(refs.len());
        for (index, output) in refs.iter().enumerate() {
            let mut temp = TempFile::create(dir)?;
            let content_type = match output {
                OutputRef::DataUri { bytes, .. } => {
                    limits.check_received(bytes.len() as u64)?;
                    temp.file
                        .write_all(bytes)
                        .map_err(|e| write_error(&temp.path, &e))?;
                    None
                }
                OutputRef::Url(url) => {
                    self.fetch(url, Some(prediction), &mut temp.file)?
                        .content_type
                }
            };
            let name =
                download_plan::output_file_name(&mut names, output, index, content_type.as_deref());
            paths.push(temp.persist(dir, name, &mut names, options.overwrite)?);
        }
        Ok(paths)
    }

    /// Fetches a URL into `sink`, retrying per the client's policy.
    fn fetch(
        &self,
        url: &str,
        prediction: Option<&Prediction>,
        sink: &mut dyn Sink,
    ) -> Result<Fetched, Error> {
        let mut plan = DownloadPlan::new(
            self.config(),
            url,
            self.download_limits(),
            self.inner.settings.retry.clone(),
        )?;
        loop {
            let error = match self.fetch_once(&mut plan, prediction, sink) {
                Ok(fetched) => return Ok(fetched),
                Err(e) => e,
            };
            let Some(delay) = plan.retry_delay(&error) else {
                tracing::debug!(error = %error, "replicate: download failed");
                return Err(error);
            };
            tracing::debug!(
                delay_ms = millis(delay),
                retry = plan.retries(),
                error = %error,
                "replicate: retrying download"
            );
            std::thread::sleep(delay);
            sink.reset()
                .map_err(|e| Error::Output(format!("cannot restart the download of {url}: {e}")))?;
        }
    }

    /// One attempt: follows redirects by hand, checks the status, streams the body.
    fn fetch_once(
        &self,
        plan: &mut DownloadPlan,
        prediction: Option<&Prediction>,
        sink: &mut dyn Sink,
    ) -> Result<Fetched, Error> {
        use ureq::RequestExt;
        let timeout = self.inner.settings.timeout;
        loop {
            // Built again for every hop: the token only ever goes to the API's origin.
            let request = plan.request()?;
            let url = loggable_uri(request.uri());
            tracing::debug!(
                %url,
                authorized = request.headers().contains_key(http::header::AUTHORIZATION),
                "replicate: downloading"
            );
            let response = request
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
                .map_err(|e| Error::Transport(classify(e)))?;
            tracing::debug!(%url, status = response.status().as_u16(), "replicate: download answered");
            let content_type = match plan.handle_head(
                response.status(),
                response.headers(),
                prediction,
            )? {
                DownloadHead::Redirect => {
                    tracing::debug!(to = %loggable_url(plan.url()), "replicate: following a download redirect");
                    continue;
                }
                DownloadHead::Body { content_type } => content_type,
            };
            let mut reader = response.into_body().into_reader();
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Error::Transport(classify_io(e))),
                };
                plan.handle_chunk(n, std::time::Instant::now())?;
                sink.write_all(buf.get(..n).unwrap_or_default())
                    .map_err(|e| Error::Output(format!("cannot write the output: {e}")))?;
            }
            sink.flush()
                .map_err(|e| Error::Output(format!("cannot write the output: {e}")))?;
            return Ok(Fetched { content_type });
        }
    }
}

fn write_error(path: &Path, e: &io::Error) -> Error {
    Error::Output(format!("cannot write {}: {e}", path.display()))
}

/// A temporary file in the target directory, removed unless persisted.
struct TempFile {
    path: PathBuf,
    file: File,
    persisted: bool,
}

impl TempFile {
    fn create(dir: &Path) -> Result<TempFile, Error> {
        loop {
            let n = NEXT_TEMP.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(download_plan::temp_file_name(n));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file,
                        persisted: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(write_error(&path, &e)),
            }
        }
    }

    /// Flushes to disk and gives the file its name in `dir`: `name`, or (unless `overwrite`) the
    /// next free `name-N.ext` when a file of that name exists. Returns the path written.
    fn persist(
        mut self,
        dir: &Path,
        mut name: String,
        names: &mut FileNames,
        overwrite: bool,
    ) -> Result<PathBuf, Error> {
        self.file
            .sync_all()
            .map_err(|e| write_error(&self.path, &e))?;
        loop {
            let path = dir.join(&name);
            if overwrite {
                fs::rename(&self.path, &path).map_err(|e| write_error(&path, &e))?;
            } else {
                // A hard link fails when the name is taken, so no existing file is replaced,
                // whoever created it and whenever.
                match fs::hard_link(&self.path, &path) {
                    Ok(()) => {
                        let _ = fs::remove_file(&self.path);
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        name = names.unique(name);
                        continue;
                    }
                    Err(e) => return Err(write_error(&path, &e)),
                }
            }
            self.persisted = true;
            return Ok(path);
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = fs::remove_file(&self.path);
        }
    }
}
