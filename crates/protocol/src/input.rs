//! File inputs: inline small files as `data:` URLs, upload larger ones through the files API.
//!
//! A model input that takes a file accepts a URL. A small file is sent inline as a
//! `data:<mime>;base64,...` URL (no extra request); a larger one is uploaded with
//! [`CreateFile`] (`POST /v1/files`) and the returned file's `urls.get`
//! is used as the input. [`FileInput::prepare`] decides, by size, against a threshold
//! ([`DEFAULT_UPLOAD_THRESHOLD`], 256 KiB, by default).
//!
//! ```
//! use replicate_protocol::input::{FileInput, Prepared, guess_mime};
//!
//! let small = FileInput::from_bytes("mask.png", guess_mime("mask.png"), vec![1, 2, 3]);
//! assert_eq!(small.prepare(256 * 1024), Prepared::DataUrl("data:image/png;base64,AQID".into()));
//!
//! let large = FileInput::from_bytes("clip.mp4", "video/mp4", vec![0; 300 * 1024]);
//! assert_eq!(large.prepare(256 * 1024), Prepared::Upload);
//! let upload = large.into_upload(); // send it, then use file.urls.get as the input
//! assert_eq!(upload.content_type, "video/mp4");
//! ```

use std::fmt;
use std::path::Path;

use base64::Engine as _;

use crate::Error;
use crate::api::CreateFile;

/// Files up to this size (256 KiB) are inlined as `data:` URLs by default; larger ones are
/// uploaded.
pub const DEFAULT_UPLOAD_THRESHOLD: usize = 256 * 1024;

/// About the largest file the files API accepts (100 MiB; larger uploads answer 413).
pub const MAX_UPLOAD_BYTES: u64 = 100 * 1024 * 1024;

/// A file to give a model as input.
#[derive(Clone, PartialEq, Eq)]
pub struct FileInput {
    /// Its file name (used when uploading).
    pub name: String,
    /// Its media type, e.g. `image/png`.
    pub mime: String,
    /// Its content.
    pub bytes: Vec<u8>,
}

/// What to do with a [`FileInput`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// Use this `data:<mime>;base64,...` URL as the input value.
    DataUrl(String),
    /// Upload the file through the files API ([`FileInput::into_upload`]) and use the returned
    /// file's `urls.get` as the input value.
    Upload,
}

impl FileInput {
    /// A file input from its name, media type and content. An empty or malformed media type
    /// becomes `application/octet-stream`.
    pub fn from_bytes(
        name: impl Into<String>,
        mime: impl Into<String>,
        bytes: impl Into<Vec<u8>>,
    ) -> Self {
        FileInput {
            name: name.into(),
            mime: clean_mime(mime.into()),
            bytes: bytes.into(),
        }
    }

    /// Inline as a `data:` URL when the content is at most `threshold` bytes, otherwise upload.
    pub fn prepare(&self, threshold: usize) -> Prepared {
        prepare(&self.bytes, &self.mime, threshold)
    }

    /// The `data:<mime>;base64,...` URL of the content.
    pub fn data_url(&self) -> String {
        data_url(&self.mime, &self.bytes)
    }

    /// The upload request of this file (metadata empty; set it with
    /// [`CreateFile::metadata`]).
    pub fn into_upload(self) -> CreateFile {
        let name = if self.name.trim().is_empty() {
            "file".to_owned()
        } else {
            self.name
        };
        CreateFile::new(self.bytes, name).content_type(self.mime)
    }
}

impl fmt::Debug for FileInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileInput")
            .field("name", &self.name)
            .field("mime", &self.mime)
            .field("bytes", &format_args!("[{} bytes]", self.bytes.len()))
            .finish()
    }
}

/// Inline `bytes` as a `data:` URL when there are at most `threshold` of them, otherwise
/// upload.
pub fn prepare(bytes: &[u8], mime: &str, threshold: usize) -> Prepared {
    if bytes.len() <= threshold {
        Prepared::DataUrl(data_url(mime, bytes))
    } else {
        Prepared::Upload
    }
}

/// `data:<mime>;base64,<content>`.
pub fn data_url(mime: &str, bytes: &[u8]) -> String {
    let mime = clean_mime(mime.to_owned());
    let mut url = String::with_capacity(13 + mime.len() + bytes.len().div_ceil(3) * 4);
    url.push_str("data:");
    url.push_str(&mime);
    url.push_str(";base64,");
    base64::engine::general_purpose::STANDARD.encode_string(bytes, &mut url);
    url
}

/// A media type as given, or `application/octet-stream` when it is empty or could break a
/// `data:` URL or a header (a `,`, spaces, control characters, no `/`).
fn clean_mime(mime: String) -> String {
    let trimmed = mime.trim();
    let ok = trimmed.contains('/')
        && trimmed
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b',' && b != b'"');
    if ok {
        trimmed.to_owned()
    } else {
        "application/octet-stream".to_owned()
    }
}

/// The media type of a file from its extension, case-insensitively: `png`, `jpg`/`jpeg`,
/// `webp`, `gif`, `mp3`, `wav`, `mp4`, `json`, `txt`, `pdf`, `zip` and the few others of
/// [`content_type_for`](crate::api::files::content_type_for); `application/octet-stream`
/// otherwise.
///
/// ```
/// use replicate_protocol::input::guess_mime;
/// assert_eq!(guess_mime("photos/cat.JPG"), "image/jpeg");
/// assert_eq!(guess_mime("notes"), "application/octet-stream");
/// ```
pub fn guess_mime(path: impl AsRef<Path>) -> &'static str {
    match path.as_ref().file_name().and_then(|n| n.to_str()) {
        Some(name) => crate::api::files::content_type_for(name),
        None => "application/octet-stream",
    }
}

/// The name a file input is uploaded under: the last component of `path`, or `file`.
pub fn file_name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "file".to_owned())
}

/// Refuses a file input of `len` bytes at `path` when it is over the files API's limit, before
/// anything is read or sent.
pub fn check_input_size(path: &Path, len: u64) -> Result<(), Error> {
    if len > MAX_UPLOAD_BYTES {
        return Err(Error::InvalidInput(format!(
            "{} is {len} bytes, more than the files API accepts (about {MAX_UPLOAD_BYTES} bytes)",
            path.display()
        )));
    }
    Ok(())
}

/// Refuses a file input that is not a regular file (a FIFO, a device such as `/dev/zero`, a
/// directory): its reported length says nothing of what a read would return. Call it with the
/// metadata of the opened file, then read at most [`MAX_UPLOAD_BYTES`] + 1 bytes and check the
/// count with [`check_input_size`]: a file that grew past the limit is refused too.
pub fn check_input_file(path: &Path, metadata: &std::fs::Metadata) -> Result<(), Error> {
    if !metadata.is_file() {
        return Err(Error::InvalidInput(format!(
            "{} is not a regular file (a pipe, a device or a directory): only regular files can be sent",
            path.display()
        )));
    }
    check_input_size(path, metadata.len())
}

/// The error for a file input that cannot be read.
pub fn unreadable(path: &Path, error: &std::io::Error) -> Error {
    Error::InvalidInput(format!("cannot read {}: {error}", path.display()))
}

/// The input value of an uploaded file: its `urls.get`.
pub fn uploaded_value(file: crate::api::FileObject) -> Result<serde_json::Value, Error> {
    let id = file.id;
    file.urls
        .get
        .map(serde_json::Value::String)
        .ok_or_else(|| Error::decode(201, format!("the uploaded file {id} has no urls.get"), b""))
}
