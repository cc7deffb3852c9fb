//! `replicate prediction get|cancel|list|wait`.

use super::{Ctx, Deadline, follow, print_list, timeout_error};
use crate::args::PredictionCommand;
use crate::exit::CliError;
use crate::output::{self, OutputKind, Progress};
use crate::text::safe_line;

/// Runs a `prediction` subcommand.
pub fn run(ctx: &Ctx, cmd: PredictionCommand) -> Result<(), CliError> {
    match cmd {
        PredictionCommand::Get(args) => {
            let client = ctx.client()?;
            let mut p = client.get(&args.id)?;
            ctx.redact(&mut p);
            if args.json {
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
            print_list(items, args.json, "No predictions.", |p| {
                let created = p.created_at.map(output::timestamp).unwrap_or_default();
                format!(
                    "{}  {:<10}  {}  {}",
                    safe_line(&p.id),
                    safe_line(p.status.as_str()),
                    safe_line(p.model.as_deref().unwrap_or("-")),
                    created
                )
            })
        }
        PredictionCommand::Wait(args) => {
            let deadline = args.timeout.map(|t| Deadline::after(t, false));
            let client = ctx.client_with_timeout(args.timeout)?;
            let mut progress = Progress::new(args.json);
            let mut done = follow(&client, &args.id, None, &mut progress, deadline.as_ref())
                .map_err(|e| {
                    let id = safe_line(&args.id);
                    // A 4xx other than 429 (unknown id, bad token) will not go away by waiting.
                    let transient = e
                        .api()
                        .is_none_or(|a| a.status == 429 || !(400..500).contains(&a.status));
                    let mut err = timeout_error(e, deadline.as_ref());
                    if transient && err.hints.is_empty() {
                        err = err.hint(format!(
                            "the prediction may still be running: try `replicate prediction wait {id}` again"
                        ));
                    }
                    err
                })?;
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
    }
}
