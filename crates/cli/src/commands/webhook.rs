//! `replicate webhook verify`: check a delivery's signature offline.

use std::io::Read;
use std::time::{Duration, SystemTime};

use replicate_protocol::webhook::{
    WebhookHeaders, WebhookSecret, unix_timestamp, verify_with_tolerance,
};

use crate::args::{VerifyArgs, WebhookCommand};
use crate::exit::{CliError, PREDICTION};
use crate::output;

/// Runs a `webhook` subcommand.
pub fn run(cmd: WebhookCommand) -> Result<(), CliError> {
    match cmd {
        WebhookCommand::Verify(args) => verify(args),
    }
}

/// Verifies stdin against the headers: prints `valid` (exit 0), or `invalid: <reason>` (exit 1).
fn verify(args: VerifyArgs) -> Result<(), CliError> {
    let secret = WebhookSecret::parse(&args.secret).map_err(|e| CliError::usage(e.to_string()))?;
    let signature = args.signature.join(" ");
    let mut body = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut body)
        .map_err(|e| CliError::io("cannot read the body from stdin", e))?;
    let headers = WebhookHeaders::new(&args.id, &args.timestamp, &signature);
    let tolerance = Some(Duration::from_secs(args.tolerance));
    let now = unix_timestamp(SystemTime::now());
    match verify_with_tolerance(&secret, &headers, &body, now, tolerance) {
        Ok(()) => output::outln("valid"),
        Err(e) => {
            output::outln(&format!("invalid: {e}"))?;
            Err(CliError::quiet(PREDICTION))
        }
    }
}
