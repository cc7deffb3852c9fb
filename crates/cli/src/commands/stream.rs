//! `replicate stream ID`: follow a prediction's output stream.

use std::io::IsTerminal;
use std::sync::mpsc::{Receiver, sync_channel};

use replicate_protocol::sse::{DoneReason, ReplicateEvent};
use replicate_ureq::{Client, Error, Prediction};

use super::{Ctx, Deadline, Received, recv_until};
use crate::args::StreamArgs;
use crate::exit::{self, CliError};
use crate::output::{self, StreamPrinter};
use crate::text::safe_line;

/// How many events may wait between the reading thread and stdout.
const EVENT_BACKLOG: usize = 64;

/// Reads a prediction's event stream on its own thread, so that the caller can bound the whole
/// read by a deadline. The receiver yields each event; an `Err` (the stream could not be opened,
/// broke, or reported an error) is the last item. The thread ends with the stream, or when the
/// receiver is dropped.
pub fn spawn_events(
    client: &Client,
    prediction: &Prediction,
) -> Receiver<Result<ReplicateEvent, Error>> {
    let (tx, rx) = sync_channel(EVENT_BACKLOG);
    let client = client.clone();
    let prediction = prediction.clone();
    std::thread::spawn(move || match client.stream(&prediction) {
        Ok(events) => {
            for event in events {
                let last = event.is_err();
                if tx.send(event).is_err() || last {
                    break;
                }
            }
        }
        Err(e) => {
            let _ = tx.send(Err(e));
        }
    });
    rx
}

/// Writes each `output` event of the prediction's stream to stdout as it arrives. Exit 1 when the
/// stream reports an error or a cancellation; exit 3 at `--timeout`.
pub fn run(ctx: &Ctx, args: StreamArgs) -> Result<(), CliError> {
    let deadline = args.timeout.map(|t| Deadline::after(t, false));
    let client = ctx.client_with_timeout(args.timeout)?;
    let prediction = client.get(&args.id)?;
    let id = safe_line(&prediction.id);
    if prediction.stream_url().is_none() {
        return Err(CliError::runtime(format!(
            "prediction {id} has no output stream (its model does not stream)"
        ))
        .hint(format!("use `replicate prediction wait {id}`")));
    }
    let events = spawn_events(&client, &prediction);
    let mut printer = StreamPrinter::default();
    let mut failure = None;
    loop {
        let event = match recv_until(&events, deadline.map(|d| d.at)) {
            Received::Value(Ok(event)) => event,
            // An `error` event: the prediction failed.
            Received::Value(Err(Error::PredictionStreamError(detail))) => {
                failure = Some(format!("prediction {id} failed: {detail}"));
                break;
            }
            Received::Value(Err(e)) => {
                printer.finish()?;
                return Err(e.into());
            }
            Received::End => break,
            Received::TimedOut => {
                printer.finish()?;
                let secs = deadline.map(|d| d.secs.to_string()).unwrap_or_default();
                let mut err = CliError::runtime(format!(
                    "timed out after {secs} streaming the output of prediction {id}"
                ));
                for hint in exit::resume_hints(&id) {
                    err = err.hint(hint);
                }
                return Err(err);
            }
        };
        match event {
            ReplicateEvent::Output(data) => printer.push(&data)?,
            ReplicateEvent::Error(detail) => {
                failure = Some(format!("prediction {id} failed: {}", detail.detail));
            }
            ReplicateEvent::Done(reason) => {
                match reason {
                    Some(DoneReason::Canceled) => {
                        failure.get_or_insert(format!("prediction {id} was canceled"));
                    }
                    Some(DoneReason::Error) => {
                        failure.get_or_insert(format!("prediction {id} failed"));
                    }
                    _ => {}
                }
                break;
            }
            _ => {}
        }
    }
    printer.finish()?;
    let (any, ends_with_newline) = printer.printed();
    if any && !ends_with_newline && std::io::stdout().is_terminal() {
        output::out("\n")?;
    }
    match failure {
        Some(message) => Err(CliError::prediction(message)),
        None => Ok(()),
    }
}
