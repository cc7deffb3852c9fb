//! `replicate training create|get|list|cancel|wait`.

use replicate_protocol::api::{
    CancelTraining, CreateTraining, GetTraining, ListTrainings, TrainingOutput,
};
use replicate_protocol::{ModelRef, Wait};
use replicate_ureq::{Client, Error, Prediction, Status};

use super::model::owner_name;
use super::prediction::job_row;
use super::run::LocalInput;
use super::{Ctx, Deadline, print_list};
use crate::args::{Secs, TrainingCommand, TrainingCreateArgs};
use crate::exit::CliError;
use crate::output::{self, note};
use crate::text::safe_line;
use crate::web;

/// Runs a `training` subcommand.
pub fn run(ctx: &Ctx, cmd: TrainingCommand) -> Result<(), CliError> {
    match cmd {
        TrainingCommand::Create(a) => create(ctx, a),
        TrainingCommand::Get(a) => {
            let client = ctx.client()?;
            let mut t = client.execute(GetTraining::new(&a.id))?;
            ctx.redact(&mut t);
            if a.json {
                output::json(&t)
            } else {
                output::out(&output::summary(&t))
            }
        }
        TrainingCommand::List(a) => {
            let client = ctx.client_with(|b| b.max_pages(a.max_pages))?;
            let items = client.paginate(ListTrainings::new()).map(|item| {
                item.map(|mut t| {
                    ctx.redact(&mut t);
                    t
                })
            });
            print_list(items, a.json, "No trainings.", job_row)
        }
        TrainingCommand::Cancel(a) => {
            let client = ctx.client()?;
            let t = client.execute(CancelTraining::new(&a.id))?;
            output::outln(&format!(
                "{}: {}",
                safe_line(&t.id),
                safe_line(t.status.as_str())
            ))
        }
        TrainingCommand::Wait(a) => {
            let client = ctx.client_with_timeout(a.timeout)?;
            wait(ctx, &client, &a.id, None, a.json, a.timeout)
        }
    }
}

/// `training create`: everything checked locally first (the version, the destination, the
/// webhook URL, the input and its files), then one create, never sent twice.
fn create(ctx: &Ctx, a: TrainingCreateArgs) -> Result<(), CliError> {
    let usage = |e: Error| CliError::usage(e.to_string());
    let model: ModelRef = a.model.parse().map_err(usage)?;
    let destination = owner_name(&a.destination, "--destination")?;
    let mut create = CreateTraining::for_version(&model, destination.to_string()).map_err(usage)?;
    if let Some(url) = &a.webhook {
        let url = web::checked_url(url)
            .map_err(|why| CliError::usage(format!("--webhook: the URL {why}")))?;
        create = create.webhook(url, &[]);
    }
    let local = LocalInput::read(&a.input)?;
    let client = ctx.client_with_timeout(a.timeout)?;
    let create = create.input(local.prepare(&client)?);
    let mut created = client.execute(create).map_err(|e| match e {
        Error::CreateOutcomeUnknown(_) => CliError::general(&e).hint(
            "it was not sent again; look for it with `replicate training list` before retrying",
        ),
        e => CliError::general(&e),
    })?;
    ctx.redact(&mut created);
    let id = created.id.clone();
    note(&format!(
        "Created training {} ({})",
        safe_line(&id),
        safe_line(created.status.as_str())
    ));
    if a.wait {
        return wait(ctx, &client, &id, Some(created), a.json, a.timeout);
    }
    if a.json {
        output::json(&created)
    } else {
        output::out(&output::summary(&created))?;
        note(&format!(
            "`replicate training wait {}` waits for it.",
            safe_line(&id)
        ));
        Ok(())
    }
}

/// Waits for the training `id` (`first`: the create's answer, when there is one), then prints
/// it: with `json` the training object, otherwise its new version and weights (or its output).
/// Exit 1 when it failed, was canceled or aborted; 3 at the `timeout` (the training is never
/// canceled) or on an API error.
fn wait(
    ctx: &Ctx,
    client: &Client,
    id: &str,
    first: Option<Prediction>,
    json: bool,
    timeout: Option<Secs>,
) -> Result<(), CliError> {
    let deadline = timeout.map(|t| Deadline::after(t, false));
    let mut opts = client.wait_options();
    opts.deadline = deadline.map(|d| d.at);
    opts.cancel_at_deadline = false;
    let cfg = client.config().clone();
    let flow = match first {
        Some(p) => Wait::from_prediction(cfg, p, opts),
        None => Wait::new(cfg, id, opts),
    };
    if !json {
        note(&format!("Waiting for training {}...", safe_line(id)));
    }
    let mut done = client
        .drive(flow.for_training())
        .map_err(|e| wait_error(id, e, timeout))?;
    ctx.redact(&mut done);
    if json {
        output::json(&done)?;
    } else if done.status == Status::Succeeded {
        match done.output_as::<TrainingOutput>() {
            Ok(out) if out.version.is_some() || out.weights.is_some() => {
                let mut s = String::new();
                for (name, value) in [("version:", &out.version), ("weights:", &out.weights)] {
                    if let Some(v) = value {
                        s.push_str(&format!("{name:<9} {}\n", safe_line(v)));
                    }
                }
                output::out(&s)?;
            }
            _ => output::print_text_or_json(&output::classify(&done))?,
        }
    }
    outcome(&done)
}

/// Exit 0 when the training succeeded, 1 (with its error or status) otherwise.
fn outcome(done: &Prediction) -> Result<(), CliError> {
    let id = safe_line(&done.id);
    let message = match &done.status {
        Status::Succeeded => return Ok(()),
        Status::Failed => match done.error_message() {
            Some(e) => format!("training {id} failed: {e}"),
            None => format!("training {id} failed"),
        },
        Status::Canceled => format!("training {id} was canceled"),
        Status::Aborted => format!("training {id} was aborted"),
        other => {
            return Err(CliError::runtime(format!(
                "training {id} ended in an unknown status {:?}",
                safe_line(other.as_str())
            )));
        }
    };
    Err(CliError::prediction(message))
}

/// The error of a wait for the training `id`: a timeout says so; either way, how to go on.
fn wait_error(id: &str, err: Error, timeout: Option<Secs>) -> CliError {
    let id = safe_line(id);
    let again = format!("the training keeps running: `replicate training wait {id}` waits again");
    match (&err, timeout) {
        (Error::DeadlineExceeded { last, .. }, Some(secs)) => {
            let status = last.as_ref().map_or("unknown", |p| p.status.as_str());
            CliError::runtime(format!(
                "timed out after {secs} waiting for training {id} (last status: {})",
                safe_line(status)
            ))
            .hint(again)
        }
        // A 4xx other than 429 (an unknown id, a bad token) will not go away by waiting.
        _ if err
            .api()
            .is_some_and(|a| a.status != 429 && (400..500).contains(&a.status)) =>
        {
            CliError::general(&err)
        }
        _ => CliError::general(&err).hint(again),
    }
}
