//! Downloading outputs: to memory or streamed to files, with a size cap, redirects followed by
//! hand, and never the API token for output hosts.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use replicate_protocol::config::loggable_url;
use replicate_protocol::download::{self, Download, DownloadItem, Downloaded};
use replicate_protocol::output::{self, FileNames, SaveOptions};
use replicate_protocol::{Error, OutputErrorKind, OutputRef, Prediction};

use crate::Client;
use crate::driver::{Driver, Event};

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

impl Client {
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
                download::output_file_name(&mut names, output, index, content_type.as_deref());
            paths.push(temp.persist(dir, name, &mut names, options.overwrite)?);
        }
        Ok(paths)
    }

    /// Fetches a URL into `sink`: the [`Download`] flow, driven here; a restart (a retry after
    /// some bytes) empties the sink.
    fn fetch(
        &self,
        url: &str,
        prediction: Option<&Prediction>,
        sink: &mut dyn Sink,
    ) -> Result<Downloaded, Error> {
        let mut flow = Download::new(self.config(), url)?
            .limits(self.download_limits())
            .retry_policy(self.inner.settings.retry.clone());
        if let Some(p) = prediction {
            flow = flow.for_prediction(p);
        }
        let mut driver = Driver::new(self.clone(), flow);
        loop {
            match driver.next_event() {
                Event::Item(DownloadItem::Chunk(bytes)) => sink.write_all(&bytes),
                Event::Item(DownloadItem::Restart) => sink.reset(),
                Event::Done(result) => return result,
                Event::Stopped => return Err(Error::InvalidState("download abandoned")),
            }
            .map_err(|e| {
                Error::output(
                    OutputErrorKind::Write,
                    format!("cannot write the output of {}: {e}", loggable_url(url)),
                )
            })?;
        }
    }
}

fn write_error(path: &Path, e: &io::Error) -> Error {
    Error::output(
        OutputErrorKind::Write,
        format!("cannot write {}: {e}", path.display()),
    )
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
            let path = dir.join(download::temp_file_name(n));
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
