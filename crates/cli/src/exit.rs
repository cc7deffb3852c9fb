//! Exit codes, and the mapping from errors to them.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the prediction failed, was canceled or aborted (or a webhook signature is invalid) |
//! | 2 | usage error: bad arguments, malformed `-i`, an input the schema refuses, unreadable file, no token; nothing was created |
//! | 3 | API, authentication, network, timeout or local I/O error |
//! | 130 | interrupted (Ctrl-C, SIGTERM) |

use std::fmt;

use replicate_ureq::Error;

/// Success.
pub const SUCCESS: u8 = 0;
/// The prediction failed, was canceled or aborted; a webhook signature did not verify.
pub const PREDICTION: u8 = 1;
/// Usage error; nothing was sent.
pub const USAGE: u8 = 2;
/// API, authentication, network, timeout or local I/O error.
pub const RUNTIME: u8 = 3;
/// Interrupted by Ctrl-C or SIGTERM.
pub const INTERRUPTED: i32 = 130;

/// At most this many lines of error text are written to stderr.
pub const MAX_LINES: usize = 5;

/// A failure of a command: an exit code and what to tell the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// The exit code.
    pub code: u8,
    /// What went wrong (the first line is prefixed with `error: `).
    pub message: String,
    /// Extra lines of advice.
    pub hints: Vec<String>,
}

impl CliError {
    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError::new(USAGE, message)
    }

    /// A prediction that did not succeed (exit 1).
    pub fn prediction(message: impl Into<String>) -> Self {
        CliError::new(PREDICTION, message)
    }

    /// An API, network or I/O error (exit 3).
    pub fn runtime(message: impl Into<String>) -> Self {
        CliError::new(RUNTIME, message)
    }

    /// An error with this code.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        CliError {
            code,
            message: message.into(),
            hints: Vec::new(),
        }
    }

    /// Adds a line of advice.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    /// Ends the command with `code` and prints nothing (what had to be said was said).
    pub fn quiet(code: u8) -> Self {
        CliError::new(code, "")
    }

    /// A local I/O failure while doing `what`.
    pub fn io(what: impl fmt::Display, err: std::io::Error) -> Self {
        CliError::runtime(format!("{what}: {err}"))
    }

    /// The lines written to stderr: `error: ...` then the hints, at most [`MAX_LINES`] lines,
    /// without the API token and with control characters escaped.
    /// A quiet error (nothing was printed) is empty: see [`CliError::quiet`].
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        if self.message.is_empty() && self.hints.is_empty() {
            return lines;
        }
        for (i, line) in self.message.lines().enumerate() {
            let line = clean(line);
            if i == 0 {
                lines.push(format!("error: {line}"));
            } else if !line.trim().is_empty() {
                lines.push(format!("  {line}"));
            }
        }
        if lines.is_empty() {
            lines.push("error: unknown error".to_owned());
        }
        lines.extend(self.hints.iter().map(|h| format!("hint: {}", clean(h))));
        lines.truncate(MAX_LINES);
        lines
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines().join("\n"))
    }
}

/// Takes the API token out, escapes control characters (a server's message must not drive
/// the terminal) and caps the length of one line.
fn clean(line: &str) -> String {
    const MAX: usize = 400;
    let line = crate::text::safe_line(line);
    let mut s: String = line.chars().take(MAX).collect();
    if line.chars().count() > MAX {
        s.push('…');
    }
    s
}

/// The exit code of an SDK error.
pub fn code_for(err: &Error) -> u8 {
    match err {
        Error::PredictionFailed(_)
        | Error::PredictionCanceled(_)
        | Error::PredictionAborted(_)
        | Error::PredictionStreamError(_) => PREDICTION,
        // Rejected before anything was sent.
        Error::InvalidInput(_)
        | Error::InvalidBaseUrl(_)
        | Error::InvalidToken
        | Error::MissingToken => USAGE,
        // Something was sent (the create): never a usage error.
        Error::AfterCreate { source, .. } => match code_for(source) {
            USAGE => RUNTIME,
            code => code,
        },
        _ => RUNTIME,
    }
}

/// How to go on with a prediction that exists and may still be running.
pub fn resume_hints(id: &str) -> [String; 2] {
    [
        format!(
            "prediction {id} exists and may still be running (running the command again would create another one)"
        ),
        format!(
            "resume with `replicate prediction wait {id}`, or cancel it with `replicate prediction cancel {id}`"
        ),
    ]
}

/// Whether an error ends a prediction for good (failed, canceled, aborted): nothing to resume.
fn is_final(err: &Error) -> bool {
    matches!(
        err,
        Error::PredictionFailed(_) | Error::PredictionCanceled(_) | Error::PredictionAborted(_)
    )
}

impl From<Error> for CliError {
    fn from(err: Error) -> Self {
        let code = code_for(&err);
        let mut out = CliError::new(code, err.to_string());
        // A failure after the create: say which prediction exists and how to go on with it.
        if !is_final(&err)
            && let Some(id) = err.prediction_id()
        {
            let canceled = matches!(
                err,
                Error::DeadlineExceeded {
                    cancel_sent: true,
                    ..
                }
            );
            if !canceled {
                for hint in resume_hints(id) {
                    out = out.hint(hint);
                }
            }
        }
        if let Error::CreateOutcomeUnknown(_) = &err {
            out = out.hint(
                "it was not sent again; look for it with `replicate prediction list` before retrying",
            );
        }
        out.config_hint(&err)
    }
}

impl CliError {
    /// An error of a command about something other than a prediction (a training, a
    /// deployment): the SDK error's message and exit code, with the configuration hint it calls
    /// for, and no advice about predictions.
    pub fn general(err: &Error) -> Self {
        CliError::new(code_for(err), err.to_string()).config_hint(err)
    }

    /// Adds the hint an error about the configuration calls for: check the token (401, 403) or
    /// the base URL (a redirect, a connection that could not be made).
    fn config_hint(self, err: &Error) -> Self {
        match err {
            Error::Api(api) if api.status == 401 || api.status == 403 => {
                self.hint("check the API token (--token or REPLICATE_API_TOKEN)")
            }
            Error::Api(api) if (300..400).contains(&api.status) => {
                self.hint("check the base URL (--base-url or REPLICATE_BASE_URL)")
            }
            Error::Transport(t) if t.kind.certainly_not_sent() => {
                self.hint("check the base URL (--base-url or REPLICATE_BASE_URL)")
            }
            _ => self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use replicate_protocol::{ApiError, Prediction, TransportError, TransportErrorKind};
    use serde_json::json;

    fn prediction(status: &str) -> Box<Prediction> {
        Box::new(
            serde_json::from_value(json!({
                "id": "p1", "status": status, "error": "boom"
            }))
            .expect("prediction"),
        )
    }

    fn api(status: u16) -> Error {
        Error::Api(Box::new(ApiError::from_response(
            http::StatusCode::from_u16(status).expect("status"),
            &http::HeaderMap::new(),
            br#"{"title":"Unauthenticated","detail":"You did not pass a valid authentication token","status":401}"#,
        )))
    }

    #[test]
    fn predictions_that_did_not_succeed_exit_1() {
        assert_eq!(code_for(&Error::PredictionFailed(prediction("failed"))), 1);
        assert_eq!(
            code_for(&Error::PredictionCanceled(prediction("canceled"))),
            1
        );
        assert_eq!(
            code_for(&Error::PredictionAborted(prediction("aborted"))),
            1
        );
        assert_eq!(code_for(&Error::PredictionStreamError("x".into())), 1);
        let e = CliError::from(Error::PredictionFailed(prediction("failed")));
        assert_eq!(e.code, PREDICTION);
        assert!(e.lines()[0].contains("boom"), "{:?}", e.lines());
    }

    #[test]
    fn local_rejections_exit_2() {
        assert_eq!(code_for(&Error::InvalidInput("bad".into())), 2);
        assert_eq!(code_for(&Error::InvalidBaseUrl("ftp://x".into())), 2);
        assert_eq!(code_for(&Error::InvalidToken), 2);
        assert_eq!(CliError::usage("x").code, USAGE);
    }

    #[test]
    fn api_and_network_errors_exit_3() {
        assert_eq!(code_for(&api(401)), 3);
        assert_eq!(code_for(&api(404)), 3);
        assert_eq!(code_for(&api(500)), 3);
        let t = TransportError::new(TransportErrorKind::Io, "connection reset");
        assert_eq!(code_for(&Error::Transport(t.clone())), 3);
        assert_eq!(code_for(&Error::CreateOutcomeUnknown(t.clone())), 3);
        let e = CliError::from(Error::CreateOutcomeUnknown(t));
        assert!(e.to_string().contains("may have been created"), "{e}");
        assert_eq!(
            code_for(&Error::Decode {
                status: 200,
                reason: "x".into(),
                excerpt: String::new()
            }),
            3
        );
    }

    #[test]
    fn auth_errors_get_a_hint() {
        let e = CliError::from(api(401));
        let lines = e.lines();
        assert!(
            lines[0].starts_with("error: the API answered HTTP 401"),
            "{lines:?}"
        );
        assert!(lines.iter().any(|l| l.starts_with("hint:")), "{lines:?}");
    }

    #[test]
    fn at_most_five_clean_lines() {
        let e = CliError::runtime("a\nb\nc\nd\ne\nf\u{1b}[31m").hint("h");
        let lines = e.lines();
        assert_eq!(lines.len(), MAX_LINES);
        assert!(lines.iter().all(|l| !l.chars().any(char::is_control)));
        let e = CliError::runtime("x\u{1b}[2Jy");
        assert_eq!(e.lines(), vec!["error: x\\u{1b}[2Jy".to_owned()]);
    }

    #[test]
    fn failures_after_the_create_say_how_to_resume() {
        let t = TransportError::new(TransportErrorKind::Io, "connection reset");
        let err = Error::AfterCreate {
            prediction: prediction("processing"),
            source: Box::new(Error::Transport(t)),
        };
        assert_eq!(code_for(&err), RUNTIME);
        let lines = CliError::from(err).lines();
        assert!(lines[0].contains("p1"), "{lines:?}");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("replicate prediction wait p1")),
            "{lines:?}"
        );
        // A failed prediction is over: nothing to resume.
        let lines = CliError::from(Error::PredictionFailed(prediction("failed"))).lines();
        assert!(!lines.iter().any(|l| l.contains("resume")), "{lines:?}");
    }
}
