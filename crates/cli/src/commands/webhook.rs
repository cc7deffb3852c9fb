//! `replicate webhook verify`: check a delivery's signature offline.

use std::time::{Duration, SystemTime};

use replicate_protocol::webhook::{
    WebhookError, WebhookHeaders, WebhookSecret, unix_timestamp, verify_with_tolerance,
};

use crate::args::{VerifyArgs, WebhookCommand};
use crate::exit::{CliError, PREDICTION};
use crate::input::{read_capped, size};
use crate::output;

/// The most bytes of body read from stdin: 32 MiB (Replicate's deliveries are far smaller).
pub const MAX_WEBHOOK_BODY_BYTES: u64 = 32 * 1024 * 1024;

/// Runs a `webhook` subcommand.
pub fn run(cmd: WebhookCommand) -> Result<(), CliError> {
    match cmd {
        WebhookCommand::Verify(args) => verify(args),
    }
}

/// Verifies stdin against the headers: prints `valid` (exit 0), or `invalid: <reason>` (exit 1).
///
/// The arguments are checked before stdin is read, so that a malformed one fails at once (exit
/// 2) instead of after a long or endless body.
fn verify(args: VerifyArgs) -> Result<(), CliError> {
    let secret = WebhookSecret::parse(&args.secret).map_err(|e| CliError::usage(e.to_string()))?;
    if args.id.trim().is_empty() {
        return Err(CliError::usage("--id: the webhook-id header is empty"));
    }
    let signature = args.signature.join(" ");
    let headers = WebhookHeaders::new(&args.id, &args.timestamp, &signature);
    // The syntax of the timestamp and of the signatures does not depend on the body: checked
    // against an empty one, without the freshness check.
    match verify_with_tolerance(&secret, &headers, b"", 0, None) {
        Err(WebhookError::InvalidTimestamp) => {
            return Err(CliError::usage(
                "--timestamp: expected the webhook-timestamp header, in Unix seconds",
            ));
        }
        Err(WebhookError::MalformedSignatureHeader) => {
            return Err(CliError::usage(
                "--signature: expected the webhook-signature header, \"v1,BASE64 [v1,BASE64 ...]\" with 32-byte signatures",
            ));
        }
        _ => {}
    }
    let body = read_capped(std::io::stdin().lock(), MAX_WEBHOOK_BODY_BYTES)
        .map_err(|e| CliError::io("cannot read the body from stdin", e))?
        .ok_or_else(|| {
            CliError::usage(format!(
                "the body on stdin is larger than the limit of {}",
                size(MAX_WEBHOOK_BODY_BYTES)
            ))
        })?;
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
