//! File inputs read from disk: uploaded or inlined (the rest of the files API is shared with the
//! async client, see `client_methods!`).

use std::path::Path;

use replicate_protocol::Error;
use replicate_protocol::api::FileObject;
use replicate_protocol::input::{self, FileInput};
use serde_json::Value;

use crate::Client;

impl Client {
    /// Uploads the file at `path`, named after it, its media type guessed from its extension.
    /// Only a regular file is read (a FIFO or a device is refused), at most the files API's
    /// limit.
    pub fn upload_path(&self, path: &Path, metadata: Option<Value>) -> Result<FileObject, Error> {
        let bytes = read_input(path)?;
        let name = input::file_name_of(path);
        self.upload_file(bytes, &name, Some(input::guess_mime(path)), metadata)
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
