//! The subcommands, and what they share: building the client and following a prediction.

use std::time::{Duration, Instant};

use replicate_protocol::{Flow, PollPolicy, Step, TransportError, Wait};
use replicate_ureq::{Client, Error, Prediction};

use crate::args::{Cli, Command, GlobalArgs};
use crate::exit::CliError;
use crate::output::Progress;

pub mod account;
pub mod demo;
pub mod fake_server;
pub mod files;
pub mod model;
pub mod prediction;
pub mod run;
pub mod stream;
pub mod webhook;

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> Result<(), CliError> {
    let ctx = Ctx { global: cli.global };
    match cli.command {
        Command::Run(args) => run::run(&ctx, args),
        Command::Prediction(cmd) => prediction::run(&ctx, cmd),
        Command::Stream(args) => stream::run(&ctx, args),
        Command::Files(cmd) => files::run(&ctx, cmd),
        Command::Model(cmd) => model::run(&ctx, cmd),
        Command::Account(args) => account::run(&ctx, args),
        Command::Webhook(cmd) => webhook::run(cmd),
        Command::FakeServer(args) => fake_server::run(args),
        Command::Demo(args) => demo::run(&ctx, args),
    }
}

/// What every command may need: the global options.
#[derive(Debug)]
pub struct Ctx {
    /// `--token`, `--base-url`, `--poll-interval-ms` (or their environment variables).
    pub global: GlobalArgs,
}

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

    /// A client for the configured base URL and token. No token is a usage error (exit 2).
    pub fn client(&self) -> Result<Client, CliError> {
        let token = self
            .global
            .token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
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
        Ok(builder.build()?)
    }
}

/// A [`Wait`] that shows each snapshot of the prediction on a [`Progress`].
struct Watched<'a> {
    wait: Wait,
    progress: &'a mut Progress,
}

impl Flow for Watched<'_> {
    type Output = Result<Prediction, Error>;

    fn poll(&mut self, now: Instant) -> Step<Self::Output> {
        self.wait.poll(now)
    }

    fn handle_response(&mut self, response: http::Response<Vec<u8>>, now: Instant) {
        self.wait.handle_response(response, now);
        if let Some(p) = self.wait.last() {
            self.progress.update(p);
        }
    }

    fn handle_error(&mut self, error: TransportError, now: Instant) {
        self.wait.handle_error(error, now);
    }

    fn stream_hint(&self) -> Option<&str> {
        self.wait.stream_hint()
    }

    fn wake(&mut self) {
        self.wait.wake();
    }
}

/// Polls a prediction until it is terminal, showing its progress. `first` is a snapshot already
/// fetched (the create's answer): the first poll then comes after one interval.
pub fn follow(
    client: &Client,
    id: &str,
    first: Option<Prediction>,
    progress: &mut Progress,
) -> Result<Prediction, Error> {
    let opts = client.wait_options(None);
    let cfg = client.config().clone();
    let wait = match first {
        Some(p) => {
            progress.update(&p);
            Wait::from_prediction(cfg, p, opts)
        }
        None => Wait::new(cfg, id, opts),
    };
    let result = client.drive(Watched { wait, progress });
    progress.finish();
    result
}
