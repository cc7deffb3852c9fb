//! The files API (upload, get, list, delete) and file inputs.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::HeaderValue;
use http::header::CONTENT_LENGTH;
use replicate_protocol::api::{CreateFile, DeleteFile, FileObject, GetFile, ListFiles};
use replicate_protocol::input::{self, FileInput, Prepared};
use replicate_protocol::{Call, Error, Flow, Outgoing, Step, TransportError};
use serde_json::Value;

use crate::{Client, Pages, classify, idle_timeout, now, read_body_with, tokio_instant};

/// Bytes handed to the connection per piece of an upload body.
const UPLOAD_CHUNK: usize = 64 * 1024;

impl Client {
    /// Uploads a file (`POST /v1/files`). `mime` defaults to a guess from the name's
    /// extension, `metadata` to `{}`. The upload is sent once (never repeated when its answer is
    /// lost), without a total timeout so large files have time to go: it fails when no progress
    /// is made for the client's timeout (no part of the body taken by the connection, no answer,
    /// no part of the answer). The API accepts files up to about 100 MiB.
    pub async fn upload_file(
        &self,
        bytes: impl Into<Vec<u8>>,
        name: &str,
        mime: Option<&str>,
        metadata: Option<Value>,
    ) -> Result<FileObject, Error> {
        let mut file = CreateFile::new(bytes, name);
        if let Some(mime) = mime {
            file = file.content_type(mime);
        }
        if let Some(metadata) = metadata {
            file = file.metadata(metadata);
        }
        self.upload(file).await
    }

    /// Uploads the file at `path`, named after it, its media type guessed from its extension.
    pub async fn upload_path(
        &self,
        path: &Path,
        metadata: Option<Value>,
    ) -> Result<FileObject, Error> {
        let bytes = read_input(path).await?;
        let name = input::file_name_of(path);
        self.upload_file(bytes, &name, Some(input::guess_mime(path)), metadata)
            .await
    }

    /// Sends an upload request built by hand.
    pub async fn upload(&self, file: CreateFile) -> Result<FileObject, Error> {
        let mut call = Call::with_policy(
            file,
            self.inner.settings.cfg.clone(),
            self.inner.settings.retry.clone(),
            None,
        );
        loop {
            match call.poll(now()) {
                Step::Send(out) => match self.send_upload(out).await {
                    Ok(response) => call.handle_response(response, now()),
                    Err(error) => call.handle_error(error, now()),
                },
                Step::Sleep(until) => tokio::time::sleep_until(tokio_instant(until)).await,
                Step::Done(output) => return output,
            }
        }
    }

    /// Gets a file's details (`GET /v1/files/{id}`).
    pub async fn get_file(&self, id: &str) -> Result<FileObject, Error> {
        self.execute(GetFile::new(id)).await
    }

    /// Every file, newest first, fetching pages as the stream is polled.
    pub fn list_files(&self) -> Pages<ListFiles> {
        self.paginate(ListFiles::new())
    }

    /// Deletes a file (`DELETE /v1/files/{id}`).
    pub async fn delete_file(&self, id: &str) -> Result<(), Error> {
        self.execute(DeleteFile::new(id)).await
    }

    /// The input value for the file at `path`: a `data:` URL when it is at most the upload
    /// threshold ([`ClientBuilder::upload_threshold`](crate::ClientBuilder::upload_threshold),
    /// 256 KiB by default), otherwise the file is uploaded and its `urls.get` returned.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), replicate_reqwest::Error> {
    /// let client = replicate_reqwest::Client::from_env()?;
    /// let image = client.prepare_input_file("photo.jpg".as_ref()).await?;
    /// let output = client
    ///     .run("owner/upscaler", serde_json::json!({"image": image}))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn prepare_input_file(&self, path: &Path) -> Result<Value, Error> {
        let bytes = read_input(path).await?;
        let input =
            FileInput::from_bytes(input::file_name_of(path), input::guess_mime(path), bytes);
        self.prepare_input(input).await
    }

    /// [`Client::prepare_input_file`] for bytes in memory.
    pub async fn prepare_input(&self, input: FileInput) -> Result<Value, Error> {
        match input.prepare(self.inner.settings.upload_threshold) {
            Prepared::DataUrl(url) => Ok(Value::String(url)),
            Prepared::Upload => {
                let file = self.upload(input.into_upload()).await?;
                input::uploaded_value(file)
            }
        }
    }

    /// Sends an upload: no total timeout but an idle one (see [`Client::upload_file`]), no
    /// redirects. The body is handed to the connection in pieces, so that a connection that
    /// stops taking it is noticed.
    async fn send_upload(&self, out: Outgoing) -> Result<http::Response<Vec<u8>>, TransportError> {
        let timeout = out.timeout(self.inner.settings.timeout);
        let (mut parts, body) = out.request.into_parts();
        // The body is streamed: give its length, so it is not sent chunked.
        parts
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        let progress = Progress::new();
        let pieces = {
            let body = Bytes::from(body);
            let progress = progress.clone();
            let starts = (0..body.len()).step_by(UPLOAD_CHUNK);
            futures_util::stream::iter(starts).map(move |start| {
                progress.touch();
                let end = body.len().min(start.saturating_add(UPLOAD_CHUNK));
                Ok::<Bytes, std::io::Error>(body.slice(start..end))
            })
        };
        let request = http::Request::from_parts(parts, reqwest::Body::wrap_stream(pieces));
        let request = reqwest::Request::try_from(request).map_err(classify)?;
        let cap = self.inner.settings.max_response_bytes;
        let exchange = async {
            let mut response = self.inner.http.execute(request).await.map_err(classify)?;
            progress.touch();
            let status = response.status();
            let version = response.version();
            let headers = std::mem::take(response.headers_mut());
            let body = read_body_with(response, cap, || progress.touch()).await?;
            let mut response = http::Response::new(body);
            *response.status_mut() = status;
            *response.version_mut() = version;
            *response.headers_mut() = headers;
            Ok(response)
        };
        progress.watch(timeout, exchange).await
    }
}

/// When an exchange last made progress, shared between the exchange and its watchdog.
#[derive(Clone)]
struct Progress {
    start: tokio::time::Instant,
    /// Nanoseconds from `start` to the last progress.
    last: Arc<AtomicU64>,
}

impl Progress {
    fn new() -> Self {
        Progress {
            start: tokio::time::Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        let elapsed = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last.fetch_max(elapsed, Ordering::Relaxed);
    }

    fn last(&self) -> tokio::time::Instant {
        self.start + Duration::from_nanos(self.last.load(Ordering::Relaxed))
    }

    /// Runs `exchange`, failing with a timeout once it made no progress for `timeout`.
    async fn watch<T>(
        &self,
        timeout: Duration,
        exchange: impl Future<Output = Result<T, TransportError>>,
    ) -> Result<T, TransportError> {
        let mut exchange = std::pin::pin!(exchange);
        loop {
            let deadline = self.last() + timeout;
            match tokio::time::timeout_at(deadline, exchange.as_mut()).await {
                Ok(result) => return result,
                Err(_) if self.last() + timeout <= tokio::time::Instant::now() => {
                    return Err(idle_timeout(timeout, "the upload"));
                }
                Err(_) => {}
            }
        }
    }
}

/// Reads an input file: a regular file only, refused over the files API's limit before
/// reading it, and read at most to that limit plus one byte (a file growing while read is
/// refused rather than read without end).
async fn read_input(path: &Path) -> Result<Vec<u8>, Error> {
    use tokio::io::AsyncReadExt;
    let cannot = |e: std::io::Error| input::unreadable(path, &e);
    // Checked before opening too: opening a FIFO for reading blocks until a writer comes.
    input::check_input_file(path, &tokio::fs::metadata(path).await.map_err(cannot)?)?;
    let file = tokio::fs::File::open(path).await.map_err(cannot)?;
    let metadata = file.metadata().await.map_err(cannot)?;
    input::check_input_file(path, &metadata)?;
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(input::MAX_UPLOAD_BYTES + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(cannot)?;
    input::check_input_size(path, bytes.len() as u64)?;
    Ok(bytes)
}
