//! `replicate prediction get|cancel|list|wait|watch|download`.

use replicate_ureq::{Error, Prediction, SaveOptions, Status, Update};

use super::{Ctx, Deadline, follow, print_list, timeout_error, updates};
use crate::args::{PredictionCommand, PredictionDownloadArgs, WatchArgs};
use crate::exit::CliError;
use crate::output::{self, OutputKind, Progress, UpdateLines, note};
use crate::text::safe_line;
use crate::web;

/// Runs a `prediction` subcommand.
pub fn run(ctx: &Ctx, cmd: PredictionCommand) -> Result<(), CliError> {
    match cmd {
        PredictionCommand::Get(args) => {
            let client = ctx.client()?;
            let mut p = client.get(&args.id)?;
            ctx.redact(&mut p);
            if args.web {
                let url = web::web_url(&p).map_err(CliError::runtime)?;
                output::outln(&url)?;
                web::open(&url);
                Ok(())
            } else if args.json {
                output::json(&p)
            } else {
                output::out(&output::summary(&p))
            }
        }
        PredictionCommand::Cancel(args) => {
            let client = ctx.client()?;
            let p = client.cancel(&args.id)?;
            output::outln(&format!(
                "{}: {}",
                safe_line(&p.id),
                safe_line(p.status.as_str())
            ))
        }
        PredictionCommand::List(args) => {
            let client = ctx.client_with(|b| b.max_pages(args.max_pages))?;
            let items = client.list().map(|item| {
                item.map(|mut p| {
                    ctx.redact(&mut p);
                    p
                })
            });
            print_list(items, args.json, "No predictions.", job_row)
        }
        PredictionCommand::Wait(args) => {
            let deadline = args.timeout.map(|t| Deadline::after(t, false));
            let client = ctx.client_with_timeout(args.timeout)?;
            let mut progress = Progress::new(args.json);
            let mut done = follow(&client, &args.id, None, &mut progress, deadline.as_ref())
                .map_err(|e| wait_error("wait", &args.id, e, deadline.as_ref()))?;
            ctx.redact(&mut done);
            if args.json {
                output::json(&done)?;
            } else if done.status == replicate_ureq::Status::Succeeded {
                match output::classify(&done) {
                    OutputKind::Urls(urls) => {
                        for url in urls {
                            output::outln(&safe_line(url))?;
                        }
                    }
                    kind => output::print_text_or_json(&kind)?,
                }
            }
            super::run::outcome(done)
        }
        PredictionCommand::Watch(args) => watch(ctx, args),
        PredictionCommand::Download(args) => download(ctx, args),
    }
}

/// One line of `prediction list` and `training list`: id, status, model, creation time.
pub(super) fn job_row(p: &Prediction) -> String {
    let created = p.created_at.map(output::timestamp).unwrap_or_default();
    format!(
        "{}  {:<10}  {}  {}",
        safe_line(&p.id),
        safe_line(p.status.as_str()),
        safe_line(p.model.as_deref().unwrap_or("-")),
        created
    )
}

/// `prediction download`: the output files of a succeeded prediction, streamed to disk.
fn download(ctx: &Ctx, args: PredictionDownloadArgs) -> Result<(), CliError> {
    let dir = args
        .output_dir
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from("."));
    let client = ctx.client()?;
    let done = client.get(&args.id)?;
    let id = safe_line(&done.id);
    if !done.status.is_terminal() {
        return Err(CliError::runtime(format!(
            "prediction {id} is {}: it has no final output yet",
            safe_line(done.status.as_str())
        ))
        .hint(format!("`replicate prediction wait {id}` waits for it")));
    }
    if done.status != Status::Succeeded {
        return super::run::outcome(done);
    }
    let save = SaveOptions {
        overwrite: args.overwrite,
        max_files: args.max_files,
    };
    let paths = super::run::download(&client, &done, &dir, save, false)?;
    if paths.is_empty() {
        note(&format!("prediction {id} has no output files"));
    }
    for path in paths {
        output::outln(&safe_line(&path.display().to_string()))?;
    }
    Ok(())
}

/// `prediction watch`: prints each update on stdout as it happens (see [`UpdateLines`]), then
/// exits as `prediction wait` does.
fn watch(ctx: &Ctx, args: WatchArgs) -> Result<(), CliError> {
    let deadline = args.timeout.map(|t| Deadline::after(t, false));
    let client = ctx.client_with_timeout(args.timeout)?;
    let fail = |e: Error| wait_error("watch", &args.id, e, deadline.as_ref());
    let mut lines = UpdateLines::new(args.json);
    for update in updates(&client, &args.id, None, deadline.as_ref()).map_err(fail)? {
        match update.map_err(fail)? {
            Update::Finished(mut done) => {
                ctx.redact(&mut done);
                lines.print(&Update::Finished(done.clone()))?;
                return super::run::outcome(*done);
            }
            update => lines.print(&update)?,
        }
    }
    Err(fail(Error::InvalidState(
        "the watch ended before the prediction",
    )))
}

/// The error of `prediction {command}` (`wait`, `watch`) for the prediction `id`: a timeout says
/// what timed out; a failure that waiting may outlast says to try again.
fn wait_error(command: &str, id: &str, err: Error, deadline: Option<&Deadline>) -> CliError {
    let id = safe_line(id);
    // A 4xx other than 429 (unknown id, bad token) will not go away by waiting.
    let transient = err
        .api()
        .is_none_or(|a| a.status == 429 || !(400..500).contains(&a.status));
    let mut e = timeout_error(err, deadline);
    if transient && e.hints.is_empty() {
        e = e.hint(format!(
            "the prediction may still be running: try `replicate prediction {command} {id}` again"
        ));
    }
    e
}
