//! What both clients write the same way, blocking and async, generated once: the parts of an
//! adapter that only move bytes to files (`download_methods!`). The builder setters
//! (`client_settings_setters!`), constructors (`client_constructors!`) and thin wrappers
//! (`client_methods!`) live in [`crate::settings`].
//!
//! A macro takes `; ` in a blocking client and `async; .await` in an async one, and expects the
//! invoking module to have brought the file-system items it uses into scope: `fs` (`std::fs` or
//! `tokio::fs`), `File` and `OpenOptions` of that module, and the traits that give files
//! `write_all`, `flush`, `seek` and `sync_all`.

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
/// `Client::download_outputs`, `Client::download_outputs_with`, and the temporary files they
/// write through. See the [module documentation](self) for what the module must import.
#[doc(hidden)]
#[macro_export]
// `crate::driver` is the invoking adapter's driver, on purpose.
#[allow(clippy::crate_in_macro_def)]
macro_rules! download_methods {
    ($($async_:ident)?; $($await_:tt)*) => {
        static NEXT_TEMP: ::std::sync::atomic::AtomicU64 = ::std::sync::atomic::AtomicU64::new(0);

        /// Where a download goes.
        enum Sink<'a> {
            Memory(&'a mut Vec<u8>),
            File(&'a mut File),
        }

        impl Sink<'_> {
            $($async_)? fn write(&mut self, bytes: &[u8]) -> ::std::io::Result<()> {
                match self {
                    Sink::Memory(buf) => {
                        buf.extend_from_slice(bytes);
                        Ok(())
                    }
                    Sink::File(file) => file.write_all(bytes) $($await_)*,
                }
            }

            /// Empties it before a retry from the start.
            $($async_)? fn reset(&mut self) -> ::std::io::Result<()> {
                match self {
                    Sink::Memory(buf) => {
                        buf.clear();
                        Ok(())
                    }
                    Sink::File(file) => {
                        file.flush() $($await_)* ?;
                        file.set_len(0) $($await_)* ?;
                        file.seek(::std::io::SeekFrom::Start(0)) $($await_)* .map(drop)
                    }
                }
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
            /// retried with the client's retry policy. There is no total timeout: the client's
            /// timeout applies to the response head and between two chunks of the body, and a
            /// body must keep up the minimum progress
            /// ([`ClientBuilder::min_download_progress`](crate::ClientBuilder::min_download_progress)).
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
                        let mut bytes = Vec::new();
                        self.fetch(&url, None, Sink::Memory(&mut bytes)) $($await_)* ?;
                        Ok(bytes)
                    }
                }
            }

            /// Downloads every file output of a prediction (each `http(s)` URL or `data:` URI
            /// in its output, at any depth) into `dir`, created if missing, and returns the
            /// paths in output order.
            ///
            /// Each file is streamed to a temporary file in `dir` (the cap enforced while
            /// streaming), then renamed to a safe name derived from the URL
            /// ([`output::file_name_for`]($crate::output::file_name_for)), made unique within
            /// the batch. An existing file is never replaced: the output is written as
            /// `name-1.ext`, `name-2.ext`, ... instead (the paths returned are the ones
            /// written). At most
            /// [`DEFAULT_MAX_OUTPUT_FILES`]($crate::output::DEFAULT_MAX_OUTPUT_FILES) files are
            /// written; over that, nothing is. See [`Client::download_outputs_with`] to change
            /// either. A prediction whose data was removed fails before any request. On an
            /// error, files already downloaded stay and the partial one is removed (also when
            /// the call is abandoned).
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
                let refs = $crate::output::output_refs_capped(prediction, options.max_files)?;
                if refs.is_empty() {
                    return Ok(Vec::new());
                }
                fs::create_dir_all(dir) $($await_)* .map_err(|e| write_error(dir, &e))?;
                let limits = self.download_limits();
                let mut names = $crate::output::FileNames::new();
                let mut paths = Vec::with_capacity(refs.len());
                for (index, output) in refs.iter().enumerate() {
                    let mut temp = TempFile::create(dir) $($await_)* ?;
                    let temp_path = temp.path.clone();
                    let sink = match temp.file.as_mut() {
                        Some(file) => Sink::File(file),
                        None => return Err($crate::Error::InvalidState("temporary file closed")),
                    };
                    let content_type = match output {
                        $crate::OutputRef::DataUri { bytes, .. } => {
                            limits.check_received(bytes.len() as u64)?;
                            let mut sink = sink;
                            sink.write(bytes) $($await_)* .map_err(|e| write_error(&temp_path, &e))?;
                            None
                        }
                        $crate::OutputRef::Url(url) => {
                            self.fetch(url, Some(prediction), sink) $($await_)* ?.content_type
                        }
                    };
                    let name = $crate::download::output_file_name(
                        &mut names,
                        output,
                        index,
                        content_type.as_deref(),
                    );
                    paths.push(
                        temp.persist(dir, name, &mut names, options.overwrite) $($await_)* ?,
                    );
                }
                Ok(paths)
            }

            /// Fetches a URL into `sink`: the [`Download`]($crate::Download) flow, driven by
            /// this client; a restart (a retry after some bytes) empties the sink.
            $($async_)? fn fetch(
                &self,
                url: &str,
                prediction: Option<&$crate::Prediction>,
                mut sink: Sink<'_>,
            ) -> Result<$crate::Downloaded, $crate::Error> {
                let mut flow = $crate::Download::new(self.config(), url)?
                    .limits(self.download_limits())
                    .retry_policy(self.inner.settings.retry.clone());
                if let Some(p) = prediction {
                    flow = flow.for_prediction(p);
                }
                let failed = |e: ::std::io::Error| {
                    $crate::Error::output(
                        $crate::OutputErrorKind::Write,
                        format!(
                            "cannot write the output of {}: {e}",
                            $crate::config::loggable_url(url)
                        ),
                    )
                };
                let mut driver = crate::driver::Driver::new(self.clone(), flow);
                loop {
                    match driver.next_event() $($await_)* {
                        crate::driver::Event::Item($crate::DownloadItem::Chunk(bytes)) => {
                            sink.write(&bytes) $($await_)*
                        }
                        crate::driver::Event::Item($crate::DownloadItem::Restart) => {
                            sink.reset() $($await_)*
                        }
                        crate::driver::Event::Done(result) => {
                            let done = result?;
                            if let Sink::File(file) = &mut sink {
                                file.flush() $($await_)* .map_err(failed)?;
                            }
                            return Ok(done);
                        }
                        crate::driver::Event::Stopped => {
                            return Err($crate::Error::InvalidState("download abandoned"));
                        }
                    }
                    .map_err(failed)?;
                }
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
            /// `None` once closed to be persisted.
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

            /// Flushes to disk, closes, and gives the file its name in `dir`: `name`, or
            /// (unless `overwrite`) the next free `name-N.ext` when a file of that name exists.
            /// Returns the path written.
            $($async_)? fn persist(
                mut self,
                dir: &::std::path::Path,
                mut name: String,
                names: &mut $crate::output::FileNames,
                overwrite: bool,
            ) -> Result<::std::path::PathBuf, $crate::Error> {
                if let Some(mut file) = self.file.take() {
                    file.flush() $($await_)* .map_err(|e| write_error(&self.path, &e))?;
                    file.sync_all() $($await_)* .map_err(|e| write_error(&self.path, &e))?;
                }
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
                let create = $crate::CreatePrediction::new($crate::Target::parse(model)?).input(input);
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
                let create = $crate::CreatePrediction::new($crate::Target::parse(model)?).input(input);
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
