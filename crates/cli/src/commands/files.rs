//! `replicate files upload|list|get|delete`.

use replicate_protocol::input::{file_name_of, guess_mime};
use replicate_ureq::FileObject;
use serde_json::Value;

use super::{Ctx, print_list};
use crate::args::FilesCommand;
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
