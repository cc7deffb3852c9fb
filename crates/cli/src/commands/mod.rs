//! The subcommands, and what they share: building the client, following a prediction, printing
//! a listing as its pages arrive, and deadlines.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use replicate_protocol::{
    ApiToken, Call, GetPrediction, PaginationError, PollPolicy, Update, Wait, WaitOptions, Watch,
};
use replicate_ureq::{Client, ClientBuilder, DEFAULT_TIMEOUT, Error, Items, Prediction};
use serde::Serialize;

use crate::args::{Cli, Command, GlobalArgs, Secs};
use crate::exit::{self, CliError};
use crate::output::{self, JsonArray, Progress};
use crate::text;

pub mod account;
pub mod batch;
pub mod catalog;
pub mod completions;
#[cfg(feature = "fake")]
pub mod demo;
pub mod deployment;
#[cfg(feature = "fake")]
pub mod fake_server;
pub mod files;
pub mod interrupt;
pub mod model;
pub mod prediction;
pub mod run;
pub mod schema;
pub mod stream;
pub mod training;
pub mod webhook;

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> Result<(), CliError> {
    let ctx = Ctx { global: cli.global };
    // Whatever a server echoes back, the token is not printed. (The fake server and the demo
    // print tokens of their own and never use this one.)
    if uses_the_token(&cli.command)
        && let Some(token) = ctx.token()
    {
        text::set_secret(token.expose().trim());
    }
    match cli.command {
        Command::Run(args) => run::run(&ctx, args),
        Command::Batch(args) => batch::run(&ctx, args),
        Command::Prediction(cmd) => prediction::run(&ctx, cmd),
        Command::Stream(args) => stream::run(&ctx, args),
        Command::Files(cmd) => files::run(&ctx, cmd),
        Command::Model(cmd) => model::run(&ctx, cmd),
        Command::Hardware(args) => catalog::hardware(&ctx, args),
        Command::Collection(cmd) => catalog::collection(&ctx, cmd),
        Command::Search(args) => catalog::search(&ctx, args),
        Command::Training(cmd) => training::run(&ctx, cmd),
        Command::Deployment(cmd) => deployment::run(&ctx, cmd),
        Command::Codegen(args) => schema::codegen(&ctx, args),
        Command::Account(args) => account::run(&ctx, args),
        Command::Completions(args) => completions::run(args),
        Command::Webhook(cmd) => webhook::run(cmd),
        #[cfg(feature = "fake")]
        Command::FakeServer(args) => fake_server::run(args),
        #[cfg(feature = "fake")]
        Command::Demo(args) => demo::run(&ctx, args),
    }
}

/// Whether the command calls the API with the global token (the fake server and the demo
/// print tokens of their own and never use it; completions call nothing).
fn uses_the_token(command: &Command) -> bool {
    match command {
        #[cfg(feature = "fake")]
        Command::FakeServer(_) | Command::Demo(_) => false,
        Command::Completions(_) => false,
        _ => true,
    }
}

/// What every command may need: the global options.
///
/// `Debug` never shows the token: [`GlobalArgs`] holds it as an [`ApiToken`].
#[derive(Debug)]
pub struct Ctx {
    /// `--token`, `--base-url`, `--poll-interval-ms` (or their environment variables).
    pub global: GlobalArgs,
}

/// The shortest exchange timeout a `--timeout` sets: a short `--timeout` still leaves a local
/// request time to answer (the deadline itself is kept by the wait).
const MIN_EXCHANGE_TIMEOUT: Duration = Duration::from_secs(2);

/// The message of a missing token.
pub const NO_TOKEN: &str = "no API token: pass --token TOKEN or set REPLICATE_API_TOKEN";

impl Ctx {
    /// The poll policy: the default, or a fixed interval when one was given.
    pub fn poll_policy(&self) -> PollPolicy {
        match self.global.poll_interval_ms {
            Some(ms) => PollPolicy::fixed(Duration::from_millis(ms)),
            None => PollPolicy::default(),
        }
    }

    /// The token, when one was given and is not blank.
    pub fn token(&self) -> Option<&ApiToken> {
        self.global
            .token
            .as_ref()
            .filter(|t| !t.expose().trim().is_empty())
    }

    /// A client for the configured base URL and token. No token is a usage error (exit 2).
    pub fn client(&self) -> Result<Client, CliError> {
        self.client_with(|b| b)
    }

    /// [`Ctx::client`], with more settings.
    pub fn client_with(
        &self,
        configure: impl FnOnce(ClientBuilder) -> ClientBuilder,
    ) -> Result<Client, CliError> {
        let token = self
            .token()
            .map(|t| t.expose().trim())
            .ok_or_else(|| CliError::usage(NO_TOKEN))?;
        let mut builder = Client::builder()
            .token(token)
            .poll_policy(self.poll_policy());
        if let Some(url) = self
            .global
            .base_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            builder = builder.base_url(url);
        }
        Ok(configure(builder).build()?)
    }

    /// A client whose requests each end within `timeout` (at most the default exchange timeout),
    /// so that a hung request cannot outlast a `--timeout` for long.
    pub fn client_with_timeout(&self, timeout: Option<Secs>) -> Result<Client, CliError> {
        self.client_with(|b| match timeout {
            Some(t) => b.timeout(t.duration().clamp(MIN_EXCHANGE_TIMEOUT, DEFAULT_TIMEOUT)),
            None => b,
        })
    }

    /// Takes the token out of a prediction before it is printed (a second line of defence; every
    /// write also redacts).
    pub fn redact(&self, prediction: &mut Prediction) {
        if let Some(token) = self.token() {
            prediction.redact(token.expose().trim());
        }
    }
}

/// A `--timeout`: when it ends, and whether the prediction is then canceled.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    /// When it passes.
    pub at: Instant,
    /// The timeout as given.
    pub secs: Secs,
    /// Whether to cancel the prediction when it passes.
    pub cancel: bool,
}

impl Deadline {
    /// A deadline `secs` from now (a day from now in the unlikely case the clock cannot
    /// represent that).
    pub fn after(secs: Secs, cancel: bool) -> Self {
        let now = Instant::now();
        let at = now
            .checked_add(secs.duration())
            .or_else(|| now.checked_add(Duration::from_secs(24 * 3600)))
            .unwrap_or(now);
        Deadline { at, secs, cancel }
    }
}

/// The error of a wait that reached its `--timeout`: says what timed out, whether the
/// prediction was canceled, and how to go on. Other errors are converted as usual.
pub fn timeout_error(err: Error, deadline: Option<&Deadline>) -> CliError {
    let (
        Some(deadline),
        Error::DeadlineExceeded {
            id,
            last,
            cancel_sent,
        },
    ) = (deadline, &err)
    else {
        return CliError::from(err);
    };
    let status = last
        .as_ref()
        .map_or("unknown", |p| p.status.as_str())
        .to_owned();
    let message = format!(
        "timed out after {} waiting for prediction {id} (last status: {})",
        deadline.secs,
        text::safe_line(&status)
    );
    let mut e = CliError::runtime(message);
    if *cancel_sent {
        e = e.hint(format!(
            "prediction {id} was canceled (--no-cancel leaves it running)"
        ));
    } else {
        if deadline.cancel {
            e = e.hint(format!(
                "the cancel request failed: prediction {id} may still be running"
            ));
        }
        for hint in exit::resume_hints(id) {
            e = e.hint(hint);
        }
    }
    e
}

/// What [`recv_until`] got.
#[derive(Debug)]
pub enum Received<T> {
    /// A value.
    Value(T),
    /// The sender is gone: nothing more will come.
    End,
    /// The deadline passed first.
    TimedOut,
}

/// The next value from `rx`, waiting at most until `deadline`.
pub fn recv_until<T>(rx: &Receiver<T>, deadline: Option<Instant>) -> Received<T> {
    let result = match deadline {
        None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
    };
    match result {
        Ok(v) => Received::Value(v),
        Err(RecvTimeoutError::Disconnected) => Received::End,
        Err(RecvTimeoutError::Timeout) => Received::TimedOut,
    }
}

/// Prints a listing as its pages arrive: one `row` per item, or with `json` one JSON array
/// written item by item (closed even when the listing fails, so that stdout stays valid JSON).
/// `empty` is noted on stderr when there is nothing. A failure (a cursor cycle, the page cap, an
/// API error) ends it after the items already printed, with exit 3.
pub fn print_list<T: Serialize>(
    items: impl Iterator<Item = Result<T, Error>>,
    json: bool,
    empty: &str,
    row: impl Fn(&T) -> String,
) -> Result<(), CliError> {
    let mut array = json.then(JsonArray::default);
    let mut count = 0usize;
    for item in items {
        let item = match item {
            Ok(item) => item,
            Err(e) => {
                if let Some(array) = array {
                    array.finish()?;
                }
                return Err(list_error(e, count));
            }
        };
        count += 1;
        match &mut array {
            Some(array) => array.push(&item)?,
            None => output::outln(&row(&item))?,
        }
    }
    match array {
        Some(array) => array.finish(),
        None => {
            if count == 0 {
                output::note(empty);
            }
            Ok(())
        }
    }
}

/// The error that ended a listing after `count` items.
fn list_error(err: Error, count: usize) -> CliError {
    let hint = match &err {
        Error::Pagination(PaginationError::TooManyPages { max_pages }) => Some(format!(
            "{count} item(s) printed from {max_pages} page(s); raise --max-pages to read further"
        )),
        Error::Pagination(_) => Some(format!(
            "{count} item(s) printed before the listing stopped; the server's pages are inconsistent"
        )),
        _ if count > 0 => Some(format!("{count} item(s) printed before the failure")),
        _ => None,
    };
    let e = CliError::from(err);
    match hint {
        Some(h) => e.hint(h),
        None => e,
    }
}

/// The updates of a prediction until it is terminal: the protocol's [`Watch`] flow, driven by
/// the client as an iterator. The last item is [`Update::Finished`] with the terminal
/// prediction, or an `Err` (with a `deadline`, [`Error::DeadlineExceeded`], after a cancel
/// request when the deadline says so).
///
/// `first` is a snapshot already fetched (the create's answer): its updates come at once and the
/// first poll one interval later. Without it the prediction is read first (see
/// [`first_snapshot`]).
pub fn updates(
    client: &Client,
    id: &str,
    first: Option<Prediction>,
    deadline: Option<&Deadline>,
) -> Result<Items<Watch>, Error> {
    let mut opts = client.wait_options();
    opts.deadline = deadline.map(|d| d.at);
    opts.cancel_at_deadline = deadline.is_some_and(|d| d.cancel);
    let first = match first {
        Some(p) => p,
        None => first_snapshot(client, id, &opts)?,
    };
    // The event stream, when there is one, brings logs and output as they are written.
    let watch =
        Watch::new(client.config().clone(), first, opts).follow_stream(client.stream_options());
    Ok(client.items(watch))
}

/// Reads the prediction `id`, its failures retried as a poll's and bounded by the deadline of
/// `opts`. Once the deadline has passed, the outcome is the wait's at its deadline:
/// [`Error::DeadlineExceeded`], after a cancel request when `opts` asks for one.
fn first_snapshot(client: &Client, id: &str, opts: &WaitOptions) -> Result<Prediction, Error> {
    let past = || opts.deadline.is_some_and(|d| Instant::now() >= d);
    if !past() {
        let get = Call::with_policy(
            GetPrediction::new(id),
            client.config().clone(),
            opts.retry.clone(),
            opts.deadline,
        );
        match client.drive(get) {
            Ok(p) => return Ok(p),
            Err(e) if !past() => return Err(e),
            // Cut short by the deadline: said as a wait would say it.
            Err(_) => {}
        }
    }
    client.drive(Wait::new(client.config().clone(), id, opts.clone()))
}

/// Follows a prediction until it is terminal, showing each of its [`updates`] on a
/// [`Progress`], and returns it, whatever its status. `first` is a snapshot already fetched (the
/// create's answer): the first poll then comes after one interval. At the `deadline`, it ends
/// with [`Error::DeadlineExceeded`] (after a cancel request when the deadline says so).
pub fn follow(
    client: &Client,
    id: &str,
    first: Option<Prediction>,
    progress: &mut Progress,
    deadline: Option<&Deadline>,
) -> Result<Prediction, Error> {
    progress.set_id(id);
    let result = updates(client, id, first, deadline).and_then(|updates| {
        for update in updates {
            let update = update?;
            progress.show(&update);
            if let Update::Finished(done) = update {
                return Ok(*done);
            }
        }
        Err(Error::InvalidState("the watch ended before the prediction"))
    });
    progress.finish();
    result
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn debug_of_the_context_does_not_show_the_token() {
        let secret = "r8_context-secret-token";
        let cli = Cli::try_parse_from(["replicate", "account", "--token", secret]).expect("parse");
        let ctx = Ctx { global: cli.global };
        assert_eq!(ctx.token().map(ApiToken::expose), Some(secret));
        let debug = format!("{ctx:?} {ctx:#?}");
        assert!(!debug.contains(secret), "{debug}");
        assert!(!debug.contains("context-secret"), "{debug}");
        // Nor does the client built from it.
        let client = ctx.client().expect("client");
        assert!(!format!("{client:?}").contains("context-secret"));
    }

    #[test]
    fn a_blank_token_is_no_token() {
        let cli = Cli::try_parse_from(["replicate", "account", "--token", "  "]).expect("parse");
        let ctx = Ctx { global: cli.global };
        assert!(ctx.token().is_none());
        assert_eq!(
            ctx.client().map(|_| ()).expect_err("no token").code,
            exit::USAGE
        );
    }
}
