//! What both clients write the same way, blocking and async, generated once: the parts of an
//! adapter that only move bytes to files (`download_methods!`). The builder setters
//! (`client_settings_setters!`), constructors (`client_constructors!`) and thin wrappers
//! (`client_methods!`) live in [`crate::settings`].
//!
//! A macro takes `; ` in a blocking client and `async; .await` in an async one, and expects the
//! invoking module to have brought the file-system items it uses into scope: `fs` (`std::fs` or
//! `tokio::fs`), `File` and `OpenOptions` of that module, the traits that give files and
//! writers `write_all`, `flush` and `seek`, and the writer trait as `Write` (`std::io::Write`,
//! or `tokio::io::AsyncWrite as Write`).

/// Expands to an adapter's `Client` (documented with the attributes given): a shared
/// `Arc<Inner>`, where `Inner` holds the effective settings and the fields given.
#[doc(hidden)]
#[macro_export]
macro_rules! client_struct {
    ($(#[$doc:meta])* ; $($(#[$fdoc:meta])* $field:ident: $ty:ty),* $(,)?) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct Client {
            inner: ::std::sync::Arc<Inner>,
        }

        #[derive(Debug)]
        struct Inner {
            settings: $crate::EffectiveSettings,
            $($(#[$fdoc])* $field: $ty,)*
        }
    };
}

/// Expands to an adapter's `ClientBuilder`: the settings, every setter of
/// `client_settings_setters!`, and a setter for the adapter's own transport (`agent`,
/// `client`) with the documentation given. The adapter writes `build` itself.
#[doc(hidden)]
#[macro_export]
macro_rules! client_builder {
    ($(#[$doc:meta])* $field:ident: $ty:ty) => {
        /// Builds a [`Client`].
        #[derive(Debug, Default)]
        pub struct ClientBuilder {
            settings: $crate::ClientSettings,
            $field: Option<$ty>,
        }

        impl ClientBuilder {
            $crate::client_settings_setters!();

            $(#[$doc])*
            pub fn $field(mut self, $field: $ty) -> Self {
                self.$field = Some($field);
                self
            }
        }
    };
}

/// Expands, in an adapter's download module, to `Client::download`,
/// `Client::download_outputs`, `Client::download_outputs_with`, and what they and the adapter's
/// own streaming methods (`download_to`, `open_output`) share: `pump`, which moves the chunks
/// of a [`Download`](crate::Download) into a writer, the temporary files outputs are written
/// through, and `Batch`, which names the files of one prediction in output order whatever order
/// they complete in. See the [module documentation](self) for what the module must import;
/// `Write` is the writer trait (`std::io::Write`, or `tokio::io::AsyncWrite` imported under that
/// name, with `AsyncWriteExt` and `AsyncSeekExt`). The adapter writes
/// `Client::save_all(&self, &Prediction, &Path, &[OutputRef], overwrite: bool) ->
/// Result<Vec<PathBuf>, Error>`, which fetches a batch with its concurrency (`fetch_output`
/// for each output, `Batch` to name them), and a `driver::Stop` type with
/// `Driver::stop_with(self, &Stop) -> Self`.
#[doc(hidden)]
#[macro_export]
// `crate::driver` is the invoking adapter's driver, on purpose.
#[allow(clippy::crate_in_macro_def)]
macro_rules! download_methods {
    ($($async_:ident)?; $($await_:tt)*) => {
        static NEXT_TEMP: ::std::sync::atomic::AtomicU64 = ::std::sync::atomic::AtomicU64::new(0);

        /// Where [`pump`] stopped.
        enum Pumped {
            /// The download is over.
            Done($crate::Downloaded),
            /// An attempt failed after some bytes and the download starts over from the first
            /// byte: what the writer received is void.
            Restart,
        }

        /// Moves the chunks of a download into `sink` until the download ends (the sink then
        /// flushed) or restarts, adding the bytes written to `written`. One chunk at a time:
        /// the memory it takes is one chunk, whatever the size of the output.
        $($async_)? fn pump<S: Write + Unpin + ?Sized>(
            driver: &mut crate::driver::Driver<$crate::Download>,
            sink: &mut S,
            written: &mut u64,
            url: &str,
            progress: Option<&$crate::TransferProgress>,
        ) -> Result<Pumped, $crate::Error> {
            loop {
                match driver.next_event() $($await_)* {
                    crate::driver::Event::Item($crate::DownloadItem::Chunk(bytes)) => {
                        sink.write_all(&bytes) $($await_)* .map_err(|e| sink_error(url, &e))?;
                        if let Some(progress) = progress {
                            if *written == 0 {
                                let len = driver.current().and_then($crate::Download::expected_len);
                                progress.expect_bytes(len.unwrap_or(0));
                            }
                            progress.add_bytes(bytes.len() as u64);
                        }
                        *written = written.saturating_add(bytes.len() as u64);
                        driver.recycle(bytes);
                    }
                    crate::driver::Event::Item($crate::DownloadItem::Restart) => {
                        if let Some(progress) = progress {
                            progress.remove_bytes(*written);
                        }
                        return Ok(Pumped::Restart);
                    }
                    crate::driver::Event::Done(result) => {
                        let done = result?;
                        sink.flush() $($await_)* .map_err(|e| sink_error(url, &e))?;
                        return Ok(Pumped::Done(done));
                    }
                    crate::driver::Event::Stopped => {
                        return Err($crate::Error::InvalidState("download abandoned"));
                    }
                }
            }
        }

        /// Moves a whole download into `sink`, which cannot take bytes back: a restart after
        /// bytes were written is an error.
        $($async_)? fn drain<S: Write + Unpin + ?Sized>(
            mut driver: crate::driver::Driver<$crate::Download>,
            sink: &mut S,
            url: &str,
        ) -> Result<$crate::Downloaded, $crate::Error> {
            let mut written = 0;
            loop {
                match pump(&mut driver, sink, &mut written, url, None) $($await_)* ? {
                    Pumped::Done(done) => return Ok(done),
                    // Nothing was written yet: nothing to take back.
                    Pumped::Restart if written == 0 => {}
                    Pumped::Restart => return Err(restarted(url, written)),
                }
            }
        }

        /// A writer of the output at `url` failed.
        fn sink_error(url: &str, e: &::std::io::Error) -> $crate::Error {
            $crate::Error::output(
                $crate::OutputErrorKind::Write,
                format!(
                    "cannot write the output of {}: {e}",
                    $crate::config::loggable_url(url)
                ),
            )
        }

        /// The error of a download that started over (an attempt failed after some bytes and
        /// could not be resumed) when `written` bytes had already gone to a writer that cannot
        /// take them back.
        fn restarted(url: &str, written: u64) -> $crate::Error {
            $crate::Error::output(
                $crate::OutputErrorKind::Write,
                format!(
                    "the download of {} failed after {written} bytes and had to start over from \
                     the first byte: the writer holds partial data that cannot be taken back \
                     (download_outputs and download start over by themselves)",
                    $crate::config::loggable_url(url)
                ),
            )
        }

        /// What one save of a prediction's outputs works with.
        struct Save<'a> {
            prediction: &'a $crate::Prediction,
            dir: &'a ::std::path::Path,
            progress: Option<&'a $crate::TransferProgress>,
        }

        /// An output saved to its temporary file (closed), waiting for its name.
        struct Fetched {
            temp: TempFile,
            content_type: Option<String>,
        }

        /// The files of one prediction being saved: each is named once every output before it
        /// was named, so output `i` gets the same name whatever order the downloads complete
        /// in. Dropping it removes the files still waiting (their [`TempFile`]s).
        struct Batch<'a> {
            dir: &'a ::std::path::Path,
            refs: &'a [$crate::OutputRef],
            overwrite: bool,
            names: $crate::output::FileNames,
            /// Complete files waiting for an earlier output.
            waiting: Vec<Option<Fetched>>,
            /// The paths written, in output order.
            paths: Vec<::std::path::PathBuf>,
        }

        impl<'a> Batch<'a> {
            fn new(
                dir: &'a ::std::path::Path,
                refs: &'a [$crate::OutputRef],
                overwrite: bool,
            ) -> Self {
                Batch {
                    dir,
                    refs,
                    overwrite,
                    names: $crate::output::FileNames::new(),
                    waiting: refs.iter().map(|_| None).collect(),
                    paths: Vec::with_capacity(refs.len()),
                }
            }

            /// Output `index` is complete: it is named, with the complete ones after it, when
            /// every output before it is.
            $($async_)? fn complete(
                &mut self,
                index: usize,
                fetched: Fetched,
            ) -> Result<(), $crate::Error> {
                if let Some(slot) = self.waiting.get_mut(index) {
                    *slot = Some(fetched);
                }
                loop {
                    let next = self.paths.len();
                    let Some(fetched) = self.waiting.get_mut(next).and_then(Option::take) else {
                        return Ok(());
                    };
                    let path = self.persist(next, fetched) $($await_)* ?;
                    self.paths.push(path);
                }
            }

            $($async_)? fn persist(
                &mut self,
                index: usize,
                fetched: Fetched,
            ) -> Result<::std::path::PathBuf, $crate::Error> {
                let Some(output) = self.refs.get(index) else {
                    return Err($crate::Error::InvalidState("no such output"));
                };
                let name = $crate::download::output_file_name(
                    &mut self.names,
                    output,
                    index,
                    fetched.content_type.as_deref(),
                );
                fetched
                    .temp
                    .persist(self.dir, name, &mut self.names, self.overwrite)
                    $($await_)*
            }

            fn into_paths(self) -> Vec<::std::path::PathBuf> {
                self.paths
            }
        }

        impl Client {
            /// Downloads one output into memory: an `http(s)` URL, or a `data:` URI (decoded, no
            /// request).
            ///
            /// The request carries no `Authorization` unless the URL is on the API base URL's
            /// origin; redirects (at most 5) are followed under the same rule, and once a hop
            /// left the API origin no later hop carries it. A body over the client's download
            /// cap (512 MiB by default) fails with a transport error of kind
            /// [`TransportErrorKind::BodyTooLarge`]($crate::TransportErrorKind::BodyTooLarge);
            /// an expired link (403, 404, 410) with [`Error::Output`]($crate::Error::Output)
            /// explaining that outputs are kept about an hour. 429, 5xx and network failures are
            /// retried with the client's retry policy (a retry that starts over empties the
            /// buffer). There is no total timeout: the client's timeout applies to the response
            /// head and between two chunks of the body, and a body must keep up the minimum
            /// progress
            /// ([`ClientBuilder::min_download_progress`](crate::ClientBuilder::min_download_progress)).
            ///
            /// The whole output is held in memory: for large ones, stream it with
            /// [`Client::download_to`] or [`Client::open_output`], or save it with
            /// [`Client::download_outputs`].
            pub $($async_)? fn download(
                &self,
                url_or_data_uri: &str,
            ) -> Result<Vec<u8>, $crate::Error> {
                match $crate::OutputRef::parse(url_or_data_uri)? {
                    $crate::OutputRef::DataUri { bytes, .. } => {
                        self.download_limits().check_received(bytes.len() as u64)?;
                        Ok(bytes)
                    }
                    $crate::OutputRef::Url(url) => {
                        let mut driver = self.download_driver(&url, None, None)?;
                        let mut bytes = Vec::new();
                        loop {
                            let mut written = 0;
                            match pump(&mut driver, &mut bytes, &mut written, &url, None) $($await_)* ? {
                                Pumped::Done(_) => return Ok(bytes),
                                Pumped::Restart => bytes.clear(),
                            }
                        }
                    }
                }
            }

            /// Downloads every file output of a prediction (each `http(s)` URL or `data:` URI
            /// in its output, at any depth) into `dir`, created if missing, and returns the
            /// paths in output order.
            ///
            /// Up to [`ClientBuilder::download_concurrency`](crate::ClientBuilder::download_concurrency)
            /// files (4 by default) are downloaded at once. Each is streamed, one chunk at a
            /// time (constant memory, whatever its size, the cap enforced while streaming), to
            /// a hidden temporary file in `dir` (`.replicate-download-*.part`; a download that
            /// starts over truncates it), then renamed to a safe name derived from the URL
            /// ([`output::file_name_for`]($crate::output::file_name_for)), made unique within
            /// the batch. Names are given in output order, whatever order the downloads
            /// complete in, so output `i` always gets the same name. An existing file is never
            /// replaced: the output is written as `name-1.ext`, `name-2.ext`, ... instead (the
            /// paths returned are the ones written). At most
            /// [`DEFAULT_MAX_OUTPUT_FILES`]($crate::output::DEFAULT_MAX_OUTPUT_FILES) files are
            /// written; over that, nothing is. See [`Client::download_outputs_with`] to change
            /// either. A prediction whose data was removed fails before any request.
            ///
            /// On an error (the first one is returned), the other downloads in flight are
            /// stopped (nothing keeps running once this returns) and every temporary file is
            /// removed. The files already named stay: as each output is named only once every
            /// output before it is saved, they are outputs `0` to `k - 1` for some `k`, with
            /// the names a successful call gives them (what a download one file at a time
            /// would leave); an output saved ahead of an earlier one that did not complete is
            /// removed with the temporary files. When the call is abandoned, temporary files
            /// are removed too.
            pub $($async_)? fn download_outputs(
                &self,
                prediction: &$crate::Prediction,
                dir: &::std::path::Path,
            ) -> Result<Vec<::std::path::PathBuf>, $crate::Error> {
                self.download_outputs_with(prediction, dir, $crate::SaveOptions::default())
                    $($await_)*
            }

            /// [`Client::download_outputs`] with explicit options: whether existing files are
            /// replaced, and how many files one prediction may write.
            pub $($async_)? fn download_outputs_with(
                &self,
                prediction: &$crate::Prediction,
                dir: &::std::path::Path,
                options: $crate::SaveOptions,
            ) -> Result<Vec<::std::path::PathBuf>, $crate::Error> {
                self.save_outputs(prediction, dir, options, None) $($await_)*
            }

            /// [`Client::download_outputs_with`] that counts what it moves in `progress` as
            /// it goes (bytes written, lengths announced, files started and complete), for a
            /// progress bar read from elsewhere
            /// ([`TransferProgress::snapshot`]($crate::TransferProgress::snapshot)).
            pub $($async_)? fn download_outputs_with_progress(
                &self,
                prediction: &$crate::Prediction,
                dir: &::std::path::Path,
                options: $crate::SaveOptions,
                progress: &$crate::TransferProgress,
            ) -> Result<Vec<::std::path::PathBuf>, $crate::Error> {
                self.save_outputs(prediction, dir, options, Some(progress)) $($await_)*
            }

            $($async_)? fn save_outputs(
                &self,
                prediction: &$crate::Prediction,
                dir: &::std::path::Path,
                options: $crate::SaveOptions,
                progress: Option<&$crate::TransferProgress>,
            ) -> Result<Vec<::std::path::PathBuf>, $crate::Error> {
                let refs = $crate::output::output_refs_capped(prediction, options.max_files)?;
                if refs.is_empty() {
                    return Ok(Vec::new());
                }
                fs::create_dir_all(dir) $($await_)* .map_err(|e| write_error(dir, &e))?;
                let save = Save { prediction, dir, progress };
                self.save_all(&save, &refs, options.overwrite) $($await_)*
            }

            /// [`Client::download_to`]'s work, for any writer of this client's kind.
            $($async_)? fn download_into<S: Write + Unpin + ?Sized>(
                &self,
                url: &str,
                sink: &mut S,
            ) -> Result<$crate::Downloaded, $crate::Error> {
                let driver = self.download_driver(url, None, None)?;
                drain(driver, sink, url) $($await_)*
            }

            /// Downloads file `file` of the files API (`GET /v1/files/{id}/download`, with the
            /// token: the file is on the API's origin) into `sink`, one chunk at a time, and
            /// checks its SHA-256 against the file's `checksums.sha256` when it has one: a
            /// mismatch is an [`Error::Output`]($crate::Error::Output) of kind
            /// [`ChecksumMismatch`]($crate::OutputErrorKind::ChecksumMismatch), at the end (the
            /// sink then holds bytes to throw away). The rules of [`Client::download_to`] hold
            /// (restarts, the cap, the idle timeout).
            pub $($async_)? fn download_file_to<S: Write + Unpin + ?Sized>(
                &self,
                file: &$crate::api::FileObject,
                sink: &mut S,
            ) -> Result<$crate::Downloaded, $crate::Error> {
                let url = $crate::api::file_download_url(self.config(), &file.id)?;
                let mut flow = $crate::Download::new(self.config(), &url)?
                    .limits(self.download_limits())
                    .retry_policy(self.inner.settings.retry.clone());
                if let Some(digest) = file.checksums.sha256_digest() {
                    flow = flow.expect_sha256(digest);
                }
                drain(crate::driver::Driver::new(self.clone(), flow), sink, &url) $($await_)*
            }

            /// The [`Download`]($crate::Download) flow of `url` with this client's limits and
            /// retry policy, and a driver for it.
            fn download_driver(
                &self,
                url: &str,
                prediction: Option<&$crate::Prediction>,
                stop: Option<&crate::driver::Stop>,
            ) -> Result<crate::driver::Driver<$crate::Download>, $crate::Error> {
                let mut flow = $crate::Download::new(self.config(), url)?
                    .limits(self.download_limits())
                    .retry_policy(self.inner.settings.retry.clone());
                if self.inner.settings.verify_etag_sha256 {
                    flow = flow.verify_etag_sha256(true);
                }
                if let Some(p) = prediction {
                    flow = flow.for_prediction(p);
                }
                let driver = crate::driver::Driver::new(self.clone(), flow);
                Ok(match stop {
                    Some(stop) => driver.stop_with(stop),
                    None => driver,
                })
            }

            /// Saves one output of `prediction` to a new temporary file in `dir`, flushed to
            /// disk and closed; a download that starts over truncates it. The file is removed
            /// on an error (or when this is abandoned).
            $($async_)? fn fetch_output(
                &self,
                save: &Save<'_>,
                output: &$crate::OutputRef,
                stop: Option<&crate::driver::Stop>,
            ) -> Result<Fetched, $crate::Error> {
                let (prediction, progress) = (save.prediction, save.progress);
                let mut temp = TempFile::create(save.dir) $($await_)* ?;
                if let Some(progress) = progress {
                    progress.start_file();
                }
                let content_type = match output {
                    $crate::OutputRef::DataUri { bytes, .. } => {
                        self.download_limits().check_received(bytes.len() as u64)?;
                        let path = temp.path.clone();
                        temp.file_mut()?
                            .write_all(bytes)
                            $($await_)*
                            .map_err(|e| write_error(&path, &e))?;
                        if let Some(progress) = progress {
                            progress.expect_bytes(bytes.len() as u64);
                            progress.add_bytes(bytes.len() as u64);
                        }
                        None
                    }
                    $crate::OutputRef::Url(url) => {
                        let mut driver = self.download_driver(url, Some(prediction), stop)?;
                        loop {
                            let mut written = 0;
                            let file = temp.file_mut()?;
                            match pump(&mut driver, file, &mut written, url, progress) $($await_)* ? {
                                Pumped::Done(done) => {
                                    if let Some(progress) = progress.filter(|_| written == 0) {
                                        // An empty body: its length is known now.
                                        progress.expect_bytes(0);
                                    }
                                    break done.content_type;
                                }
                                Pumped::Restart => temp.truncate() $($await_)* ?,
                            }
                        }
                    }
                };
                temp.close() $($await_)* ?;
                if let Some(progress) = progress {
                    progress.finish_file();
                }
                Ok(Fetched { temp, content_type })
            }

            /// Saves the outputs one after the other (a concurrency of 1).
            $($async_)? fn save_in_order(
                &self,
                save: &Save<'_>,
                refs: &[$crate::OutputRef],
                overwrite: bool,
            ) -> Result<Vec<::std::path::PathBuf>, $crate::Error> {
                let mut batch = Batch::new(save.dir, refs, overwrite);
                for (index, output) in refs.iter().enumerate() {
                    let fetched = self.fetch_output(save, output, None) $($await_)* ?;
                    batch.complete(index, fetched) $($await_)* ?;
                }
                Ok(batch.into_paths())
            }
        }

        fn write_error(path: &::std::path::Path, e: &::std::io::Error) -> $crate::Error {
            $crate::Error::output(
                $crate::OutputErrorKind::Write,
                format!("cannot write {}: {e}", path.display()),
            )
        }

        /// A temporary file in the target directory, removed unless persisted.
        struct TempFile {
            path: ::std::path::PathBuf,
            /// `None` once closed.
            file: Option<File>,
            persisted: bool,
        }

        impl TempFile {
            $($async_)? fn create(dir: &::std::path::Path) -> Result<TempFile, $crate::Error> {
                loop {
                    let n = NEXT_TEMP.fetch_add(1, ::std::sync::atomic::Ordering::Relaxed);
                    let path = dir.join($crate::download::temp_file_name(n));
                    match OpenOptions::new().write(true).create_new(true).open(&path) $($await_)* {
                        Ok(file) => {
                            return Ok(TempFile {
                                path,
                                file: Some(file),
                                persisted: false,
                            });
                        }
                        Err(e) if e.kind() == ::std::io::ErrorKind::AlreadyExists => continue,
                        Err(e) => return Err(write_error(&path, &e)),
                    }
                }
            }

            /// The open file.
            fn file_mut(&mut self) -> Result<&mut File, $crate::Error> {
                self.file
                    .as_mut()
                    .ok_or($crate::Error::InvalidState("temporary file closed"))
            }

            /// Empties it before a download that starts over.
            $($async_)? fn truncate(&mut self) -> Result<(), $crate::Error> {
                let Some(file) = self.file.as_mut() else {
                    return Err($crate::Error::InvalidState("temporary file closed"));
                };
                let failed = |e: ::std::io::Error| write_error(&self.path, &e);
                file.flush() $($await_)* .map_err(failed)?;
                file.set_len(0) $($await_)* .map_err(failed)?;
                file.seek(::std::io::SeekFrom::Start(0)) $($await_)* .map_err(failed)?;
                Ok(())
            }

            /// Flushes it to disk and closes it.
            $($async_)? fn close(&mut self) -> Result<(), $crate::Error> {
                if let Some(mut file) = self.file.take() {
                    file.flush() $($await_)* .map_err(|e| write_error(&self.path, &e))?;
                    file.sync_all() $($await_)* .map_err(|e| write_error(&self.path, &e))?;
                }
                Ok(())
            }

            /// Closes it (see [`TempFile::close`]) and gives the file its name in `dir`: `name`,
            /// or (unless `overwrite`) the next free `name-N.ext` when a file of that name
            /// exists. Returns the path written.
            $($async_)? fn persist(
                mut self,
                dir: &::std::path::Path,
                mut name: String,
                names: &mut $crate::output::FileNames,
                overwrite: bool,
            ) -> Result<::std::path::PathBuf, $crate::Error> {
                self.close() $($await_)* ?;
                loop {
                    let path = dir.join(&name);
                    if overwrite {
                        fs::rename(&self.path, &path) $($await_)*
                            .map_err(|e| write_error(&path, &e))?;
                    } else {
                        // A hard link fails when the name is taken, so no existing file is
                        // replaced, whoever created it and whenever.
                        match fs::hard_link(&self.path, &path) $($await_)* {
                            Ok(()) => {
                                let _ = fs::remove_file(&self.path) $($await_)*;
                            }
                            Err(e) if e.kind() == ::std::io::ErrorKind::AlreadyExists => {
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
                    // Close first (Windows cannot remove an open file). One unlink, wherever the
                    // call was abandoned: there is no async drop.
                    drop(self.file.take());
                    let _ = ::std::fs::remove_file(&self.path);
                }
            }
        }
    };
}

/// Expands, in an adapter's crate root, to `Client::start`, `Client::create_from`,
/// `Client::stream_run` and the `RunHandle` they return. Blocking with `;`, async with
/// `async; .await` (see the [module documentation](self)).
#[doc(hidden)]
#[macro_export]
macro_rules! run_handle {
    ($($async_:ident)?; $($await_:tt)*) => {
        impl Client {
            /// Creates a prediction of `model` (`owner/name`, `owner/name:version` or a version
            /// id) with this JSON input, without waiting for it (no sync-mode hold). It is sent
            /// once: see [`Error::CreateOutcomeUnknown`]($crate::Error::CreateOutcomeUnknown).
            pub $($async_)? fn create_from(
                &self,
                model: &str,
                input: ::serde_json::Value,
            ) -> Result<$crate::Prediction, $crate::Error> {
                let create = self.inner.settings.run_create(model, input)?;
                self.create(create) $($await_)*
            }

            /// Creates a prediction and returns as soon as the API answered, with a
            /// [`RunHandle`] to watch it ([`RunHandle::updates`]), wait for it, or cancel it.
            /// The id is known at once, so a service can store it before anything else happens.
            /// The create is sent as given (a sync-mode hold only when it asks for one).
            pub $($async_)? fn start(
                &self,
                create: $crate::CreatePrediction,
            ) -> Result<RunHandle, $crate::Error> {
                let prediction = self.create(create) $($await_)* ?;
                Ok(RunHandle {
                    client: self.clone(),
                    prediction,
                })
            }

            /// [`Client::start`] of `model` (`owner/name`, `owner/name:version` or a version id)
            /// with this JSON input.
            pub $($async_)? fn start_from(
                &self,
                model: &str,
                input: ::serde_json::Value,
            ) -> Result<RunHandle, $crate::Error> {
                let create = self.inner.settings.run_create(model, input)?;
                self.start(create) $($await_)*
            }

            /// Creates a prediction of `model` with this input and follows its event stream:
            /// the `output` (and `logs`) events until `done`, with the reconnection rules of
            /// [`Client::stream`]. For models that stream (language models); others have no
            /// stream, which is [`Error::InvalidInput`]($crate::Error::InvalidInput).
            pub $($async_)? fn stream_run(
                &self,
                model: &str,
                input: ::serde_json::Value,
            ) -> Result<EventStream, $crate::Error> {
                let prediction = self.create_from(model, input) $($await_)* ?;
                self.stream(&prediction) $($await_)*
            }
        }

        /// A prediction started with [`Client::start`]: its id at once, then its updates, its
        /// end, or its cancellation.
        #[derive(Debug, Clone)]
        pub struct RunHandle {
            client: Client,
            prediction: $crate::Prediction,
        }

        impl RunHandle {
            /// The prediction's id.
            pub fn id(&self) -> &str {
                &self.prediction.id
            }

            /// The latest snapshot of the prediction this handle holds (the create's answer,
            /// until [`RunHandle::refresh`]).
            pub fn prediction(&self) -> &$crate::Prediction {
                &self.prediction
            }

            /// Gets the prediction again and keeps the answer as the latest snapshot.
            pub $($async_)? fn refresh(&mut self) -> Result<&$crate::Prediction, $crate::Error> {
                self.prediction = self.client.get(&self.prediction.id) $($await_)* ?;
                Ok(&self.prediction)
            }

            /// Every change of the prediction until it is terminal, as [`Update`]($crate::Update)s:
            /// status changes, new log text, output growth and progress, then
            /// [`Update::Finished`]($crate::Update::Finished) with the terminal prediction. When
            /// the prediction has an event stream, it is read while the model runs, so output
            /// and logs arrive as written ([`Update::OutputChunk`]($crate::Update::OutputChunk));
            /// otherwise (or with [`ClientBuilder::follow_stream`](crate::ClientBuilder::follow_stream)
            /// off) it polls with the client's policy. See [`Watch`]($crate::Watch).
            pub fn updates(&self) -> Items<$crate::Watch> {
                let settings = &self.client.inner.settings;
                let watch = $crate::Watch::new(
                    settings.cfg.clone(),
                    self.prediction.clone(),
                    self.client.wait_options(),
                );
                self.client.items(if settings.follow_stream {
                    watch.follow_stream(settings.stream.clone())
                } else {
                    watch
                })
            }

            /// Waits until the prediction is terminal and returns it, whatever its status (as
            /// [`Client::wait`]): see [`Prediction::into_result`]($crate::Prediction::into_result).
            pub $($async_)? fn wait(&self) -> Result<$crate::Prediction, $crate::Error> {
                self.client
                    .drive($crate::Wait::from_prediction(
                        self.client.config().clone(),
                        self.prediction.clone(),
                        self.client.wait_options(),
                    ))
                    $($await_)*
            }

            /// Waits until the prediction is terminal and returns its output; a failed,
            /// canceled or aborted prediction is the matching error (as [`Client::run`]).
            pub $($async_)? fn output(&self) -> Result<::serde_json::Value, $crate::Error> {
                Ok(self.wait() $($await_)* ?.into_result()?.output)
            }

            /// Asks the API to cancel the prediction and returns its state then (canceling a
            /// prediction that already finished changes nothing).
            pub $($async_)? fn cancel(&self) -> Result<$crate::Prediction, $crate::Error> {
                self.client.cancel(&self.prediction.id) $($await_)*
            }
        }
    };
}

/// Expands, in an adapter's batch module, to `Client::batch`, `Client::batch_create`, the
/// `BatchBuilder` they return with its setters, and what the adapter's batch drivers share:
/// `BatchBuilder::prepare`, which opens (or resumes) the journal file and builds the
/// scheduler, and `append_record`, which appends one record and makes it durable. Blocking with
/// `;`, async with `async; .await`. The module must import `File` and `OpenOptions` (of
/// `std::fs` or `tokio::fs`) and the traits giving files `read_to_end`, `write_all`, `flush`
/// and `seek` (`std::io::{Read, Seek, Write}`, or tokio's `AsyncReadExt`, `AsyncSeekExt`,
/// `AsyncWriteExt`). The adapter writes the driver (`BatchBuilder::run` or `stream`).
#[doc(hidden)]
#[macro_export]
// `crate::Client` and `crate::now` are the invoking adapter's, on purpose.
#[allow(clippy::crate_in_macro_def)]
macro_rules! batch_methods {
    ($($async_:ident)?; $($await_:tt)*) => {
        impl crate::Client {
            /// A batch of predictions of `model` (`owner/name`, `owner/name:version` or a
            /// version id), one per input, to configure and start (see [`BatchBuilder`]): paced
            /// under the rate limit, never created twice, resumable from a journal file.
            pub fn batch(&self, model: &str, inputs: Vec<::serde_json::Value>) -> BatchBuilder {
                let settings = $crate::Target::parse(model).map(|target| {
                    $crate::settings::BatchSettings::new(
                        $crate::CreatePrediction::new(target),
                        inputs,
                        &self.inner.settings,
                    )
                });
                BatchBuilder {
                    client: self.clone(),
                    settings,
                }
            }

            /// A batch of `create` (its target, webhook, `Cancel-After`...; its input and sync
            /// mode are ignored), one prediction per input: see [`Client::batch`].
            pub fn batch_create(
                &self,
                create: $crate::CreatePrediction,
                inputs: Vec<::serde_json::Value>,
            ) -> BatchBuilder {
                BatchBuilder {
                    client: self.clone(),
                    settings: Ok($crate::settings::BatchSettings::new(
                        create,
                        inputs,
                        &self.inner.settings,
                    )),
                }
            }
        }

        /// A batch to configure, then start: see the crate documentation's "Batches" section.
        ///
        /// The scheduler's options default to [`BatchOptions::default`]($crate::BatchOptions)
        /// with the client's retry and poll policies.
        #[derive(Debug, Clone)]
        #[must_use = "a batch does nothing until it is started"]
        pub struct BatchBuilder {
            client: crate::Client,
            settings: Result<$crate::settings::BatchSettings, $crate::Error>,
        }

        impl BatchBuilder {
            fn with(mut self, f: impl FnOnce(&mut $crate::settings::BatchSettings)) -> Self {
                if let Ok(settings) = &mut self.settings {
                    f(settings);
                }
                self
            }

            /// The most predictions started and not finished at once
            /// ([`BatchOptions::max_in_flight`]($crate::BatchOptions::max_in_flight), default
            /// 32).
            pub fn concurrency(self, predictions: usize) -> Self {
                self.with(|s| s.options.max_in_flight = predictions)
            }

            /// The most requests in flight at once, which is the size of the pool driving them
            /// ([`BatchOptions::max_requests`]($crate::BatchOptions::max_requests), default 8).
            pub fn max_requests(self, requests: usize) -> Self {
                self.with(|s| s.options.max_requests = requests)
            }

            /// Keeps a journal in this file, so that the batch can be resumed: an append-only
            /// JSON Lines file ([`batch::journal`]($crate::batch::JournalRecord)), each record
            /// appended and made durable (`sync_data`) before the scheduler goes on. An existing
            /// journal of the same batch is resumed (its torn last line, if any, truncated
            /// away); one of another batch is refused with
            /// [`BatchError::Journal`]($crate::settings::BatchError::Journal), the file left as
            /// it was.
            pub fn journal(self, path: impl Into<::std::path::PathBuf>) -> Self {
                let path = path.into();
                self.with(|s| s.journal = Some(path))
            }

            /// What identifies the inputs in the journal's header (default: the SHA-256 of the
            /// inputs, [`inputs_digest`]($crate::batch::inputs_digest)), e.g. the name and
            /// modification time of an inputs file.
            pub fn inputs_id(self, id: impl Into<String>) -> Self {
                let id = id.into();
                self.with(|s| s.inputs_id = Some(id))
            }

            /// Gives every create this webhook URL and these events.
            pub fn webhook(self, url: impl Into<String>, events: &[$crate::WebhookEvent]) -> Self {
                let url = url.into();
                self.with(|s| s.create = s.create.clone().webhook(url, events))
            }

            /// How items learn that their prediction finished: polling (the default), or
            /// webhook deliveries fed through [`BatchHandle::feed_webhook`], with a safety poll
            /// every `safety_interval` ([`Completion::Webhook`]($crate::Completion::Webhook);
            /// the creates must carry a webhook, see [`BatchBuilder::webhook`]).
            pub fn completion(self, completion: $crate::Completion) -> Self {
                self.with(|s| s.options.completion = completion)
            }

            /// Replaces every option of the scheduler (concurrency, rates, retry and poll
            /// policies, lost-create lookups, seed), including those set before.
            pub fn options(self, options: $crate::BatchOptions) -> Self {
                self.with(|s| s.options = options)
            }

            /// The settings so far, or the error the batch will fail to start with.
            pub fn settings(&self) -> Result<&$crate::settings::BatchSettings, &$crate::Error> {
                self.settings.as_ref()
            }

            /// Opens (or resumes) the journal and builds the scheduler.
            $($async_)? fn prepare(
                self,
            ) -> Result<
                (crate::Client, $crate::settings::BatchSettings, $crate::Batch, Option<File>),
                $crate::settings::BatchError,
            > {
                let settings = self.settings.map_err($crate::settings::BatchError::Start)?;
                let cfg = self.client.config().clone();
                let clock = $crate::Clock::new(crate::now(), ::std::time::SystemTime::now());
                let Some(path) = settings.journal.clone() else {
                    let batch = settings.start(&cfg, None, clock)?;
                    return Ok((self.client, settings, batch, None));
                };
                let io = |e| settings.io_error(e);
                let mut file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&path)
                    $($await_)*
                    .map_err(io)?;
                // A regular file of bounded size: never a device or a pipe read without end.
                let meta = file.metadata() $($await_)* .map_err(io)?;
                if !meta.is_file() || meta.len() > $crate::settings::MAX_JOURNAL_BYTES {
                    return Err(io(::std::io::Error::other(format!(
                        "a journal is a regular file of at most {} bytes",
                        $crate::settings::MAX_JOURNAL_BYTES
                    ))));
                }
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes) $($await_)* .map_err(io)?;
                let journal = settings.read_journal(&bytes)?;
                // Checked against the batch before the file is touched.
                let batch = settings.start(&cfg, journal.as_ref(), clock)?;
                let keep = journal.as_ref().map_or(0, |j| j.valid_len) as u64;
                if keep != bytes.len() as u64 {
                    // A torn last line (or a torn header): the next record must start a line.
                    file.set_len(keep) $($await_)* .map_err(io)?;
                    file.sync_data() $($await_)* .map_err(io)?;
                }
                file.seek(::std::io::SeekFrom::Start(keep)) $($await_)* .map_err(io)?;
                ::tracing::debug!(
                    target: LOG_TARGET,
                    records = journal.as_ref().map_or(0, |j| j.records.len()),
                    torn = keep != bytes.len() as u64,
                    "replicate: batch journal opened"
                );
                Ok((self.client, settings, batch, Some(file)))
            }
        }

        /// Appends one record to the journal and makes it durable.
        $($async_)? fn append_record(
            file: &mut File,
            record: &$crate::JournalRecord,
        ) -> ::std::io::Result<()> {
            file.write_all(record.to_line().as_bytes()) $($await_)* ?;
            file.flush() $($await_)* ?;
            file.sync_data() $($await_)*
        }
    };
}
