//! Files: upload (multipart), get, list, delete and download.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{Method, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{segment, set_accept, with_cursor};
use crate::endpoint::{Endpoint, RetryClass, check_status, parse_empty, parse_json, push_query};
use crate::pagination::Page;
use crate::{Config, Error};

/// A file stored by the API (`POST /v1/files` and friends).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileObject {
    /// Its id, e.g. `cneqzikepnug6xezperrr4z55o`.
    pub id: String,
    /// Its file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its content type, e.g. `application/zip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Its length in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Its entity tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Its checksums, by algorithm.
    #[serde(default)]
    pub checksums: FileChecksums,
    /// The metadata given when it was created.
    #[serde(default)]
    pub metadata: Value,
    /// When it was created.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_at: Option<OffsetDateTime>,
    /// When it expires.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at: Option<OffsetDateTime>,
    /// Related URLs. `get` names the public API host even through a proxy: use [`GetFile`] with
    /// the id rather than following it with the token.
    #[serde(default)]
    pub urls: FileUrls,
    /// Every field this SDK does not know, kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `checksums` object of a file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FileChecksums {
    /// The SHA-256 of the content, in hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Any other checksum, kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl FileChecksums {
    /// The SHA-256, when present and 64 hex digits: what
    /// [`Download::expect_sha256`](crate::download::Download::expect_sha256) takes.
    pub fn sha256_digest(&self) -> Option<crate::download::Sha256Digest> {
        self.sha256
            .as_deref()
            .and_then(|hex| crate::download::Sha256Digest::from_hex(hex).ok())
    }
}

/// The `urls` object of a file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FileUrls {
    /// The API URL of the file resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub get: Option<String>,
    /// Any other URL, kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The longest file name the API accepts, in bytes.
pub const MAX_FILENAME_LEN: usize = 255;

/// `POST /v1/files`: uploads a file as `multipart/form-data`.
///
/// The body has four parts: `content` (the bytes, with the file name and content type),
/// `filename` and `type` (the same, as plain fields, as the API document lists them) and
/// `metadata` (a JSON object, `{}` by default).
///
/// The multipart boundary is [`CreateFile::boundary`] when set (the request fails if the
/// content contains it), otherwise `replicate-rust-boundary-{counter}` from a process-wide
/// counter, skipping any value that occurs in the content.
///
/// ```
/// use replicate_protocol::{Config, Endpoint};
/// use replicate_protocol::api::CreateFile;
///
/// let upload = CreateFile::new(b"hello".to_vec(), "hello.txt").boundary("XyZ");
/// let req = upload.request(&Config::new("r8_x")).unwrap();
/// assert_eq!(req.headers()["content-type"], "multipart/form-data; boundary=XyZ");
/// let body = String::from_utf8(req.into_body()).unwrap();
/// assert!(body.starts_with(
///     "--XyZ\r\ncontent-disposition: form-data; name=\"content\"; filename=\"hello.txt\"\r\n\
///      content-type: text/plain\r\n\r\nhello\r\n"
/// ));
/// assert!(body.ends_with("--XyZ--\r\n"));
/// ```
#[derive(Clone, PartialEq)]
pub struct CreateFile {
    /// The file's bytes.
    pub content: Vec<u8>,
    /// Its name (1 to 255 bytes, no control characters).
    pub filename: String,
    /// Its content type.
    pub content_type: String,
    /// Metadata to store with it (a JSON object).
    pub metadata: Value,
    /// A fixed multipart boundary (1 to 70 characters among letters, digits and `'()+_,-./:=?`).
    pub boundary: Option<String>,
}

static NEXT_BOUNDARY: AtomicU64 = AtomicU64::new(0);

impl CreateFile {
    /// Uploads `content` as `filename`, with a content type guessed from the file name's
    /// extension (see [`content_type_for`]) and empty metadata.
    pub fn new(content: impl Into<Vec<u8>>, filename: impl Into<String>) -> Self {
        let filename = filename.into();
        CreateFile {
            content: content.into(),
            content_type: content_type_for(&filename).to_owned(),
            filename,
            metadata: Value::Object(Map::new()),
            boundary: None,
        }
    }

    /// Sets the content type.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = content_type.into();
        self
    }

    /// Sets the metadata (a JSON object; checked when the request is built).
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }

    /// Uses a fixed multipart boundary (for reproducible requests).
    pub fn boundary(mut self, boundary: impl Into<String>) -> Self {
        self.boundary = Some(boundary.into());
        self
    }

    fn validate(&self) -> Result<String, Error> {
        let bad = |why: String| Err(Error::InvalidInput(why));
        if self.filename.is_empty() || self.filename.len() > MAX_FILENAME_LEN {
            return bad(format!(
                "the file name must be 1 to {MAX_FILENAME_LEN} bytes, got {}",
                self.filename.len()
            ));
        }
        if self.content_type.is_empty()
            || !self
                .content_type
                .bytes()
                .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
        {
            return bad(format!("invalid content type {:?}", self.content_type));
        }
        if !self.metadata.is_object() {
            return bad("the file metadata must be a JSON object".to_owned());
        }
        serde_json::to_string(&self.metadata)
            .map_err(|e| Error::InvalidInput(format!("cannot encode the file metadata: {e}")))
    }

    fn occurs(&self, boundary: &str, metadata: &str) -> bool {
        let delimiter = format!("--{boundary}");
        let needle = delimiter.as_bytes();
        [
            self.content.as_slice(),
            self.filename.as_bytes(),
            self.content_type.as_bytes(),
            metadata.as_bytes(),
        ]
        .iter()
        .any(|hay| hay.windows(needle.len()).any(|w| w == needle))
    }

    fn pick_boundary(&self, metadata: &str) -> Result<String, Error> {
        if let Some(b) = &self.boundary {
            let valid = !b.is_empty()
                && b.len() <= 70
                && b.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"'()+_,-./:=?".contains(&c));
            if !valid {
                return Err(Error::InvalidInput(format!(
                    "invalid multipart boundary {b:?}: use 1 to 70 letters, digits or '()+_,-./:=?"
                )));
            }
            if self.occurs(b, metadata) {
                return Err(Error::InvalidInput(format!(
                    "the multipart boundary {b:?} occurs in the file"
                )));
            }
            return Ok(b.clone());
        }
        loop {
            let n = NEXT_BOUNDARY.fetch_add(1, Ordering::Relaxed);
            let b = format!("replicate-rust-boundary-{n:016x}");
            if !self.occurs(&b, metadata) {
                return Ok(b);
            }
        }
    }

    /// The multipart body and its boundary.
    pub fn body(&self) -> Result<(Vec<u8>, String), Error> {
        let metadata = self.validate()?;
        let boundary = self.pick_boundary(&metadata)?;
        // Control characters and direction overrides cannot travel in a header: they become `_`
        // (in the `filename` field too, so both name the same file).
        let clean = upload_file_name(&self.filename);
        let name = escape_quoted(&clean);
        let mut body = Vec::with_capacity(self.content.len() + 512 + metadata.len());
        let mut part = |headers: String, value: &[u8]| {
            body.extend_from_slice(format!("--{boundary}\r\n{headers}\r\n").as_bytes());
            body.extend_from_slice(value);
            body.extend_from_slice(b"\r\n");
        };
        part(
            format!(
                "content-disposition: form-data; name=\"content\"; filename=\"{name}\"\r\n\
                 content-type: {}\r\n",
                self.content_type
            ),
            &self.content,
        );
        part(
            "content-disposition: form-data; name=\"filename\"\r\n".to_owned(),
            clean.as_bytes(),
        );
        part(
            "content-disposition: form-data; name=\"type\"\r\n".to_owned(),
            self.content_type.as_bytes(),
        );
        part(
            "content-disposition: form-data; name=\"metadata\"\r\n\
             content-type: application/json\r\n"
                .to_owned(),
            metadata.as_bytes(),
        );
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        Ok((body, boundary))
    }
}

/// Escapes a quoted `content-disposition` parameter as browsers do (`"` → `%22`).
/// The file name as sent: every [unsafe character](crate::text::is_unsafe_char) (controls,
/// direction overrides) replaced by `_`.
pub fn upload_file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if crate::text::is_unsafe_char(c) {
                '_'
            } else {
                c
            }
        })
        .collect()
}

fn escape_quoted(s: &str) -> String {
    s.replace('"', "%22")
}

/// A content type for a file name, from its extension (`application/octet-stream` when unknown).
pub fn content_type_for(filename: &str) -> &'static str {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        "txt" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "tar" => "application/x-tar",
        "gz" => "application/gzip",
        _ => "application/octet-stream",
    }
}

impl fmt::Debug for CreateFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateFile")
            .field("content", &format_args!("[{} bytes]", self.content.len()))
            .field("filename", &self.filename)
            .field("content_type", &self.content_type)
            .field("metadata", &self.metadata)
            .field("boundary", &self.boundary)
            .finish()
    }
}

impl Endpoint for CreateFile {
    type Output = FileObject;
    fn describe(&self) -> crate::FlowInfo {
        crate::FlowInfo::new("upload")
    }
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        let (body, boundary) = self.body()?;
        let content_type = format!("multipart/form-data; boundary={boundary}");
        cfg.request(Method::POST, "/files", Some((body, Some(&content_type))))
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<FileObject, Error> {
        parse_json(&resp)
    }
    fn long_transfer(&self) -> bool {
        true
    }
    fn retry_class(&self) -> RetryClass {
        RetryClass::CreateOnce
    }
}

/// `GET /v1/files/{file_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetFile {
    /// The file id.
    pub id: String,
}

impl GetFile {
    /// Gets a file's details by id.
    pub fn new(id: impl Into<String>) -> Self {
        GetFile { id: id.into() }
    }
}

impl Endpoint for GetFile {
    type Output = FileObject;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        cfg.request(Method::GET, &format!("/files/{}", segment(&self.id)?), None)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<FileObject, Error> {
        parse_json(&resp)
    }
}

/// `DELETE /v1/files/{file_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteFile {
    /// The file id.
    pub id: String,
}

impl DeleteFile {
    /// Deletes a file by id.
    pub fn new(id: impl Into<String>) -> Self {
        DeleteFile { id: id.into() }
    }
}

impl Endpoint for DeleteFile {
    type Output = ();
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        cfg.request(
            Method::DELETE,
            &format!("/files/{}", segment(&self.id)?),
            None,
        )
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<(), Error> {
        parse_empty(&resp)
    }
}

/// `GET /v1/files`: your files, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListFiles {
    /// The page cursor (from a previous page's `next`).
    pub cursor: Option<String>,
}

impl ListFiles {
    /// The first page of files.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Endpoint for ListFiles {
    type Output = Page<FileObject>;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        let path = with_cursor("/files".to_owned(), self.cursor.as_deref());
        cfg.request(Method::GET, &path, None)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Page<FileObject>, Error> {
        parse_json(&resp)
    }
}

paginated!(ListFiles, FileObject);

/// `GET /v1/files/{file_id}/download?owner=&expiry=&signature=`: a file's content, through a
/// signed link. The output is the raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadFile {
    /// The file id.
    pub id: String,
    /// The username of the file's owner.
    pub owner: String,
    /// When the link expires, in Unix seconds.
    pub expiry: i64,
    /// The link's signature (base64).
    pub signature: String,
}

impl DownloadFile {
    /// Downloads file `id` with a signed link's `owner`, `expiry` and `signature`.
    pub fn new(
        id: impl Into<String>,
        owner: impl Into<String>,
        expiry: i64,
        signature: impl Into<String>,
    ) -> Self {
        DownloadFile {
            id: id.into(),
            owner: owner.into(),
            expiry,
            signature: signature.into(),
        }
    }
}

/// The URL of file `id`'s content on the files API of `cfg`'s base URL
/// (`{base}/v1/files/{id}/download`), to stream with a [`Download`](crate::Download) (the
/// owner's token authorizes it; a link signed for others is a [`DownloadFile`]).
pub fn file_download_url(cfg: &Config, id: &str) -> Result<String, Error> {
    Ok(cfg
        .base_url()
        .api_url(&format!("/files/{}/download", segment(id)?)))
}

impl Endpoint for DownloadFile {
    type Output = Vec<u8>;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        let mut path = format!("/files/{}/download", segment(&self.id)?);
        push_query(&mut path, "owner", &self.owner);
        push_query(&mut path, "expiry", &self.expiry.to_string());
        push_query(&mut path, "signature", &self.signature);
        let mut req = cfg.request(Method::GET, &path, None)?;
        set_accept(&mut req, "*/*");
        Ok(req)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Vec<u8>, Error> {
        check_status(&resp)?;
        Ok(resp.body().as_ref().to_vec())
    }
}
