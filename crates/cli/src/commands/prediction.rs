//! `replicate prediction get|cancel|list|wait`.

use super::{Ctx, follow};
use crate::args::PredictionCommand;
use crate::exit::CliError;
use crate::output::{self, OutputKind, Progress, note};

/// Runs a `prediction` subcommand.
pub fn run(ctx: &Ctx, cmd: PredictionCommand) -> Result<(), CliError> {
    let client = ctx.client()?;
    match cmd {
        PredictionCommand::Get(args) => {
            let p = client.get(&args.id)?;
            if args.json {
                output::json(&p)
            } else {
                output::out(&output::summary(&p))
            }
        }
        PredictionCommand::Cancel(args) => {
            let p = client.cancel(&args.id)?;
            output::outln(&format!("{}: {}", p.id, p.status))
        }
        PredictionCommand::List(args) => {
            let mut all = Vec::new();
            for item in client.list() {
                all.push(item?);
            }
            if args.json {
                return output::json(&all);
            }
            if all.is_empty() {
                note("No predictions.");
            }
            for p in &all {
                let created = p.created_at.map(output::timestamp).unwrap_or_default();
                output::outln(&format!(
                    "{}  {:<10}  {}  {}",
                    p.id,
                    p.status.as_str(),
                    p.model.as_deref().unwrap_or("-"),
                    created
                ))?;
            }
            Ok(())
        }
        PredictionCommand::Wait(args) => {
            let mut progress = Progress::new(args.json);
            let done = follow(&client, &args.id, None, &mut progress)?;
            if args.json {
                output::json(&done)?;
            } else if done.status == replicate_ureq::Status::Succeeded {
                match output::classify(&done) {
                    OutputKind::Urls(urls) => {
                        for url in urls {
                            output::outln(url)?;
                        }
                    }
                    kind => output::print_text_or_json(&kind)?,
                }
            }
            super::run::outcome(done)
        }
    }
}
