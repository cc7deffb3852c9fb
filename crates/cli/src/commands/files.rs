//! `replicate files upload|list|get|delete`.

use replicate_ureq::FileObject;
use serde_json::Value;

use super::Ctx;
use crate::args::FilesCommand;
use crate::exit::CliError;
use crate::output::{self, note};

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
            crate::input::check_readable("upload", &args.path).map_err(CliError::usage)?;
            let client = ctx.client()?;
            let file = client.upload_path(&args.path, metadata)?;
            show(&file, args.json)
        }
        FilesCommand::List(args) => {
            let client = ctx.client()?;
            let mut all = Vec::new();
            for file in client.list_files() {
                all.push(file?);
            }
            if args.json {
                return output::json(&all);
            }
            if all.is_empty() {
                note("No files.");
            }
            for f in &all {
                output::outln(&format!(
                    "{}  {:>10}  {:<24}  {}",
                    f.id,
                    f.size.map(|s| s.to_string()).unwrap_or_default(),
                    f.content_type.as_deref().unwrap_or("-"),
                    f.name.as_deref().unwrap_or("-"),
                ))?;
            }
            Ok(())
        }
        FilesCommand::Get(args) => {
            let client = ctx.client()?;
            let file = client.get_file(&args.id)?;
            show(&file, args.json)
        }
        FilesCommand::Delete(args) => {
            let client = ctx.client()?;
            client.delete_file(&args.id)?;
            output::outln(&format!("deleted {}", args.id))
        }
    }
}

fn show(file: &FileObject, json: bool) -> Result<(), CliError> {
    if json {
        return output::json(file);
    }
    let mut s = String::new();
    let mut field = |name: &str, value: &str| s.push_str(&format!("{name:<14} {value}\n"));
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
