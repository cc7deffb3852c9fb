//! `replicate files upload|list|get|delete|download`.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use replicate_protocol::TransferProgress;
use replicate_protocol::download::temp_file_name;
use replicate_protocol::input::{file_name_of, guess_mime};
use replicate_protocol::output::sanitize_file_name;
use replicate_ureq::FileObject;
use serde_json::Value;

use super::{Ctx, interrupt, print_list};
use crate::args::{FileDownloadArgs, FilesCommand};
use crate::exit::CliError;
use crate::input::{self, MAX_FILE_INPUT_BYTES};
use crate::output;
use crate::text::safe_line;

/// Runs a `files` subcommand.
pub fn run(ctx: &Ctx, cmd: FilesCommand) -> Result<(), CliError> {
    match cmd {
        FilesCommand::Upload(args) => {
            // Checked before anything is sent.
            let metadata = match &args.metadata {
                Some(text) => match serde_json::from_str::<Value>(text) {
                    Ok(v @ Value::Object(_)) => Some(v),
                    Ok(_) => return Err(CliError::usage("--metadata must be a JSON object")),
                    Err(e) => {
                        return Err(CliError::usage(format!("--metadata: invalid JSON: {e}")));
                    }
                },
                None => None,
            };
            // Read now, with a cap: an unreadable, special or too large file is a usage error
            // with nothing sent.
            let bytes = input::read_file("upload", &args.path, MAX_FILE_INPUT_BYTES)
                .map_err(CliError::usage)?;
            let client = ctx.client()?;
            let file = client.upload_file(
                bytes,
                &file_name_of(&args.path),
                Some(guess_mime(&args.path)),
                metadata,
            )?;
            show(&file, args.json)
        }
        FilesCommand::List(args) => {
            let client = ctx.client_with(|b| b.max_pages(args.max_pages))?;
            print_list(client.list_files(), args.json, "No files.", |f| {
                format!(
                    "{}  {:>10}  {:<24}  {}",
                    safe_line(&f.id),
                    f.size.map(|s| s.to_string()).unwrap_or_default(),
                    safe_line(f.content_type.as_deref().unwrap_or("-")),
                    safe_line(f.name.as_deref().unwrap_or("-")),
                )
            })
        }
        FilesCommand::Get(args) => {
            let client = ctx.client()?;
            let file = client.get_file(&args.id)?;
            show(&file, args.json)
        }
        FilesCommand::Delete(args) => {
            let client = ctx.client()?;
            client.delete_file(&args.id)?;
            output::outln(&format!("deleted {}", safe_line(&args.id)))
        }
        FilesCommand::Download(args) => download(ctx, &args),
    }
}

/// `files download`: the file streamed to a temporary file beside its target, checked against
/// its SHA-256 when the API gives one, then renamed; the temporary file goes on any failure.
fn download(ctx: &Ctx, args: &FileDownloadArgs) -> Result<(), CliError> {
    let client = ctx.client()?;
    let file = client.get_file(&args.id)?;
    let target = match &args.output {
        Some(path) => path.clone(),
        None => PathBuf::from(
            file.name
                .as_deref()
                .and_then(sanitize_file_name)
                .or_else(|| sanitize_file_name(&file.id))
                .unwrap_or_else(|| "download".to_owned()),
        ),
    };
    if !args.overwrite && target.exists() {
        return Err(CliError::usage(format!(
            "{} exists (--overwrite replaces it)",
            safe_line(&target.display().to_string())
        )));
    }
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = dir.join(temp_file_name(0));
    let write_error = |e: std::io::Error| {
        CliError::io(
            format!("cannot write {}", safe_line(&temp.display().to_string())),
            e,
        )
    };
    interrupt::set_download_dir(Some(&dir));
    let result = (|| {
        let mut out = std::io::BufWriter::new(File::create_new(&temp).map_err(write_error)?);
        let done = output::with_transfer_bar(false, |progress| {
            progress.start_file();
            if let Some(size) = file.size {
                progress.expect_bytes(size);
            }
            let mut counted = Counted {
                inner: &mut out,
                progress,
            };
            client.download_file_to(&file, &mut counted)
        })?;
        out.into_inner()
            .map_err(|e| write_error(e.into_error()))?
            .sync_all()
            .map_err(write_error)?;
        std::fs::rename(&temp, &target).map_err(write_error)?;
        Ok::<_, CliError>(done)
    })();
    interrupt::set_download_dir(None);
    let done = result.inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })?;
    if let Some(sha) = done.sha256 {
        output::note(&format!("sha256 {sha} verified"));
    }
    output::outln(&safe_line(&target.display().to_string()))
}

/// A writer counting what goes through it into a progress bar's counters.
struct Counted<'a, W> {
    inner: &'a mut W,
    progress: &'a TransferProgress,
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.add_bytes(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn show(file: &FileObject, json: bool) -> Result<(), CliError> {
    if json {
        return output::json(file);
    }
    let mut s = String::new();
    let mut field =
        |name: &str, value: &str| s.push_str(&format!("{name:<14} {}\n", safe_line(value)));
    field("id:", &file.id);
    if let Some(n) = &file.name {
        field("name:", n);
    }
    if let Some(c) = &file.content_type {
        field("content_type:", c);
    }
    if let Some(size) = file.size {
        field("size:", &format!("{size} bytes"));
    }
    if let Some(sha) = &file.checksums.sha256 {
        field("sha256:", sha);
    }
    if file.metadata.as_object().is_some_and(|m| !m.is_empty()) {
        field("metadata:", &file.metadata.to_string());
    }
    if let Some(t) = file.created_at {
        field("created_at:", &output::timestamp(t));
    }
    if let Some(t) = file.expires_at {
        field("expires_at:", &output::timestamp(t));
    }
    if let Some(u) = &file.urls.get {
        field("url:", u);
    }
    output::out(&s)
}
