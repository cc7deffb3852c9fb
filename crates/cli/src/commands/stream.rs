//! `replicate stream ID`: follow a prediction's output stream.

use std::io::IsTerminal;

use replicate_protocol::sse::{DoneReason, ReplicateEvent};
use replicate_ureq::Error;

use super::Ctx;
use crate::args::StreamArgs;
use crate::exit::CliError;
use crate::output;

/// Writes each `output` event of the prediction's stream to stdout as it arrives. Exit 1 when the
/// stream reports an error or a cancellation.
pub fn run(ctx: &Ctx, args: StreamArgs) -> Result<(), CliError> {
    let client = ctx.client()?;
    let prediction = client.get(&args.id)?;
    if prediction.stream_url().is_none() {
        return Err(CliError::runtime(format!(
            "prediction {} has no output stream (its model does not stream)",
            prediction.id
        ))
        .hint(format!("use `replicate prediction wait {}`", prediction.id)));
    }
    let mut printed_any = false;
    let mut ends_with_newline = false;
    let mut failure = None;
    for event in client.stream(&prediction)? {
        let event = match event {
            Ok(event) => event,
            // An `error` event: the prediction failed.
            Err(Error::PredictionStreamError(detail)) => {
                failure = Some(format!("prediction {} failed: {detail}", prediction.id));
                break;
            }
            Err(e) => return Err(e.into()),
        };
        match event {
            ReplicateEvent::Output(data) => {
                output::out(&data)?;
                if !data.is_empty() {
                    printed_any = true;
                    ends_with_newline = data.ends_with('\n');
                }
            }
            ReplicateEvent::Error(detail) => {
                failure = Some(format!(
                    "prediction {} failed: {}",
                    prediction.id, detail.detail
                ));
            }
            ReplicateEvent::Done(reason) => {
                match reason {
                    Some(DoneReason::Canceled) => {
                        failure.get_or_insert(format!("prediction {} was canceled", prediction.id));
                    }
                    Some(DoneReason::Error) => {
                        failure.get_or_insert(format!("prediction {} failed", prediction.id));
                    }
                    _ => {}
                }
                break;
            }
            _ => {}
        }
    }
    if printed_any && !ends_with_newline && std::io::stdout().is_terminal() {
        output::out("\n")?;
    }
    match failure {
        Some(message) => Err(CliError::prediction(message)),
        None => Ok(()),
    }
}
