//! The files API (upload, get, list, delete) and file inputs.

use std::path::Path;
use std::time::Instant;

use replicate_protocol::api::{CreateFile, DeleteFile, FileObject, GetFile, ListFiles};
use replicate_protocol::input::{self, FileInput, Prepared};
use replicate_protocol::{Call, Error, Flow, Outgoing, Step, TransportError};
use serde_json::Value;

use crate::{Client, Pages, classify};

impl Client {
    /// Uploads a file (`POST /v1/files`). `mime` defaults to a guess from the name's
    /// extension, `metadata` to `{}`. The upload is sent once (never repeated when its answer is
    /// lost), with per-read and per-write timeouts rather than a total one, so large files have
    /// time to go. The API accepts files up to about 100 MiB.
    pub fn upload_file(
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
        self.upload(file)
    }

    /// Uploads the file at `path`, named after it, its media type guessed from its extension.
    pub fn upload_path(&self, path: &Path, metadata: Option<Value>) -> Result<FileObject, Error> {
        let bytes = read_input(path)?;
        let name = input::file_name_of(path);
        self.upload_file(bytes, &name, Some(input::guess_mime(path)), metadata)
    }

    /// Sends an upload request built by hand.
    pub fn upload(&self, file: CreateFile) -> Result<FileObject, Error> {
        let mut call = Call::with_policy(
            file,
            self.inner.settings.cfg.clone(),
            self.inner.settings.retry.clone(),
            None,
        );
        loop {
            match call.poll(Instant::now()) {
                Step::Send(out) => match self.send_upload(out) {
                    Ok(resp) => call.handle_response(resp, Instant::now()),
                    Err(err) => call.handle_error(err, Instant::now()),
                },
                Step::Sleep(until) => {
                    std::thread::sleep(until.saturating_duration_since(Instant::now()))
                }
                Step::Done(out) => return out,
            }
        }
    }

    /// Gets a file's details (`GET /v1/files/{id}`).
    pub fn get_file(&self, id: &str) -> Result<FileObject, Error> {
        self.execute(GetFile::new(id))
    }

    /// Every file, newest first, fetching pages as the iterator advances.
    pub fn list_files(&self) -> Pages<ListFiles> {
        self.paginate(ListFiles::new())
    }

    /// Deletes a file (`DELETE /v1/files/{id}`).
    pub fn delete_file(&self, id: &str) -> Result<(), Error> {
        self.execute(DeleteFile::new(id))
    }

    /// The input value for the file at `path`: a `data:` URL when it is at most the upload
    /// threshold ([`ClientBuilder::upload_threshold`](crate::ClientBuilder::upload_threshold),
    /// 256 KiB by default), otherwise the file is uploaded and its `urls.get` returned.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), replicate_ureq::Error> {
    /// let client = replicate_ureq::Client::from_env()?;
    /// let image = client.prepare_input_file("photo.jpg".as_ref())?;
    /// let output = client.run("owner/upscaler", serde_json::json!({"image": image}))?;
    /// # Ok(()) }
    /// ```
    pub fn prepare_input_file(&self, path: &Path) -> Result<Value, Error> {
        let bytes = read_input(path)?;
        let input =
            FileInput::from_bytes(input::file_name_of(path), input::guess_mime(path), bytes);
        self.prepare_input(input)
    }

    /// [`Client::prepare_input_file`] for bytes in memory.
    pub fn prepare_input(&self, input: FileInput) -> Result<Value, Error> {
        match input.prepare(self.inner.settings.upload_threshold) {
            Prepared::DataUrl(url) => Ok(Value::String(url)),
            Prepared::Upload => {
                let file = self.upload(input.into_upload())?;
                input::uploaded_value(file)
            }
        }
    }

    /// Sends an upload: per-read and per-write timeouts, no total timeout, no redirects.
    fn send_upload(&self, out: Outgoing) -> Result<http::Response<Vec<u8>>, TransportError> {
        use ureq::RequestExt;
        let timeout = out.timeout(self.inner.settings.timeout);
        let resp = out
            .request
            .with_agent(&self.inner.agent)
            .configure()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(None)
            .timeout_per_call(None)
            .timeout_send_body(None)
            .timeout_recv_body(None)
            .timeout_recv_response(Some(timeout))
            .timeout_per_read(Some(timeout))
            .timeout_per_write(Some(timeout))
            .run()
            .map_err(classify)?;
        let (parts, mut body) = resp.into_parts();
        let bytes = body
            .with_config()
            .limit(self.inner.settings.max_response_bytes)
            .read_to_vec()
            .map_err(classify)?;
        Ok(http::Response::from_parts(parts, bytes))
    }
}

/// Reads an input file: a regular file only, refused over the files API's limit before
/// reading it, and read at most to that limit plus one byte (a file growing while read is
/// refused rather than read without end).
fn read_input(path: &Path) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let cannot = |e: std::io::Error| input::unreadable(path, &e);
    // Checked before opening too: opening a FIFO for reading blocks until a writer comes.
    input::check_input_file(path, &std::fs::metadata(path).map_err(cannot)?)?;
    let file = std::fs::File::open(path).map_err(cannot)?;
    let metadata = file.metadata().map_err(cannot)?;
    input::check_input_file(path, &metadata)?;
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(input::MAX_UPLOAD_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    input::check_input_size(path, bytes.len() as u64)?;
    Ok(bytes)
}
