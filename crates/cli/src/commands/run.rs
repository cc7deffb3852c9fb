//! `replicate run MODEL[:VERSION] [-i key=value ...]`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use replicate_protocol::sse::ReplicateEvent;
use replicate_protocol::{CreatePrediction, SyncWait, Target};
use replicate_ureq::{Client, Error, Prediction, Status};
use serde_json::{Map, Value};

use super::{Ctx, follow};
use crate::args::RunArgs;
use crate::exit::CliError;
use crate::input::{self, InputValue};
use crate::output::{self, OutputKind, Progress, note};

/// Runs a model.
pub fn run(ctx: &Ctx, args: RunArgs) -> Result<(), CliError> {
    // Everything that can be checked locally is checked before anything is sent.
    let target = Target::parse(&args.model).map_err(|e| CliError::usage(e.to_string()))?;
    let pairs = input::parse_pairs(&args.inputs).map_err(CliError::usage)?;
    let mut fields = match &args.input_json {
        Some(path) => input::read_input_json(path).map_err(CliError::usage)?,
        None => Map::new(),
    };
    for pair in &pairs {
        if let InputValue::File(path) = &pair.value {
            input::check_readable(&format!("input {}", pair.key), path).map_err(CliError::usage)?;
        }
    }
    let sync = args
        .wait
        .map(|n| SyncWait::seconds(n.into()))
        .transpose()
        .map_err(|e| CliError::usage(e.to_string()))?;
    let client = ctx.client()?;

    for pair in pairs {
        let value = match pair.value {
            InputValue::Json(v) => v,
            InputValue::File(path) => client.prepare_input_file(&path)?,
        };
        fields.insert(pair.key, value);
    }
    let mut create = CreatePrediction::new(target).input(Value::Object(fields));
    if let Some(s) = sync {
        create = create.sync(s);
    }

    let created = client.create(create)?;
    note(&format!(
        "Created prediction {} ({})",
        created.id, created.status
    ));

    let mut streamed = false;
    let done = if args.stream && created.stream_url().is_some() {
        streamed = true;
        stream_then_wait(&client, created)?
    } else {
        if args.stream {
            note("This prediction has no output stream: waiting for its output.");
        }
        let mut progress = Progress::new(false);
        let id = created.id.clone();
        follow(&client, &id, Some(created), &mut progress)?
    };
    finish(&client, done, &args, streamed)
}

/// Follows the output stream, writing each output event to stdout as it arrives, then waits for
/// the final state of the prediction. If the stream breaks, what it missed is printed from the
/// final output when that output is text.
fn stream_then_wait(client: &Client, created: Prediction) -> Result<Prediction, CliError> {
    let id = created.id.clone();
    let mut printed = String::new();
    let mut broken = false;
    match client.stream(&created) {
        Ok(events) => {
            for event in events {
                match event {
                    Ok(ReplicateEvent::Output(data)) => {
                        output::out(&data)?;
                        printed.push_str(&data);
                    }
                    Ok(ReplicateEvent::Done(_)) => break,
                    Ok(_) => {}
                    // The model failed: the final state of the prediction says how.
                    Err(Error::PredictionStreamError(_)) => break,
                    Err(e) => {
                        note(&format!(
                            "The stream broke ({e}); waiting for the prediction."
                        ));
                        broken = true;
                        break;
                    }
                }
            }
        }
        Err(e) => {
            note(&format!(
                "Cannot follow the stream ({e}); waiting for the prediction."
            ));
            broken = true;
        }
    }
    let mut progress = Progress::new(true);
    let done = follow(client, &id, None, &mut progress)?;
    if broken
        && done.status == Status::Succeeded
        && let Some(text) = done.output_text()
        && let Some(rest) = text.strip_prefix(printed.as_str())
    {
        output::out(rest)?;
        printed.push_str(rest);
    }
    if !printed.is_empty() && !printed.ends_with('\n') && std::io::stdout().is_terminal() {
        output::out("\n")?;
    }
    Ok(done)
}

/// Prints (or downloads) the output of a finished prediction, and maps its status to the exit
/// code.
fn finish(
    client: &Client,
    done: Prediction,
    args: &RunArgs,
    streamed: bool,
) -> Result<(), CliError> {
    let dir = args
        .output_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    if args.json {
        output::json(&done)?;
        let urls = matches!(output::classify(&done), OutputKind::Urls(_));
        if done.status == Status::Succeeded && urls && !args.no_download {
            for path in download(client, &done, &dir)? {
                note(&format!("Saved {}", path.display()));
            }
        }
        return outcome(done);
    }
    if done.status != Status::Succeeded {
        return outcome(done);
    }
    match output::classify(&done) {
        OutputKind::Urls(urls) => {
            if args.no_download {
                if !streamed {
                    for url in urls {
                        output::outln(url)?;
                    }
                }
            } else {
                let paths = download(client, &done, &dir)?;
                for path in paths {
                    if streamed {
                        note(&format!("Saved {}", path.display()));
                    } else {
                        output::outln(&path.display().to_string())?;
                    }
                }
            }
        }
        kind if !streamed => output::print_text_or_json(&kind)?,
        _ => {}
    }
    Ok(())
}

fn download(client: &Client, done: &Prediction, dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    Ok(client.download_outputs(done, dir)?)
}

/// Exit 0 when the prediction succeeded, 1 (with its error or status) otherwise.
pub fn outcome(done: Prediction) -> Result<(), CliError> {
    done.into_result().map(|_| ()).map_err(CliError::from)
}
