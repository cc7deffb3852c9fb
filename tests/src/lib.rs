//! Shared harness for the cross-client scenario tests: one [`Driver`] trait that both clients
//! implement, so every scenario runs unchanged against the blocking and the async client.

use std::time::Duration;

use replicate_fake::{BlockingFakeServer, Options};
use replicate_protocol::{
    CreatePrediction, Error, PollPolicy, Prediction, RetryPolicy, SyncWait, WaitOptions,
};
use serde_json::Value;

/// The operations a scenario uses, implemented by both clients.
pub trait Driver {
    /// `ureq` or `reqwest`.
    fn name(&self) -> &'static str;
    /// `Client::run`.
    fn run(&self, model: &str, input: Value) -> Result<Value, Error>;
    /// `Client::run_with`.
    fn run_with(&self, create: CreatePrediction, opts: WaitOptions) -> Result<Prediction, Error>;
    /// `Client::create`.
    fn create(&self, create: CreatePrediction) -> Result<Prediction, Error>;
    /// `Client::get`.
    fn get(&self, id: &str) -> Result<Prediction, Error>;
    /// `Client::cancel`.
    fn cancel(&self, id: &str) -> Result<Prediction, Error>;
    /// Every prediction, through `Client::list`.
    fn list_all(&self) -> Result<Vec<Prediction>, Error>;
    /// `Client::wait_with`.
    fn wait_with(&self, id: &str, opts: WaitOptions) -> Result<Prediction, Error>;
    /// `Client::wait_options`.
    fn wait_options(&self, timeout: Option<Duration>) -> WaitOptions;
}

/// How the clients under test are configured: fast polls and retries so scenarios take
/// milliseconds.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base URL (the fake's, possibly with its `/replicate` prefix).
    pub base_url: String,
    /// Token.
    pub token: String,
    /// Sync mode for `run`.
    pub sync_wait: Option<SyncWait>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Poll policy.
    pub poll: PollPolicy,
    /// Retry policy.
    pub retry: RetryPolicy,
}

impl Settings {
    /// Settings for a fake server: 20 ms polls, 10 ms backoff, 3 retries, 2 s timeout, sync off.
    pub fn for_fake(fake: &BlockingFakeServer) -> Settings {
        Settings {
            base_url: fake.base_url(),
            token: fake.token().to_owned(),
            sync_wait: None,
            timeout: Duration::from_secs(2),
            poll: PollPolicy::fixed(Duration::from_millis(20)),
            retry: RetryPolicy {
                max_retries: 3,
                initial_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(100),
                max_retry_after: Duration::from_secs(5),
            },
        }
    }
}

/// The blocking client.
pub struct Ureq(pub replicate_ureq::Client);

impl Ureq {
    /// Builds it.
    pub fn new(s: &Settings) -> Ureq {
        let client = replicate_ureq::Client::builder()
            .token(&s.token)
            .base_url(&s.base_url)
            .timeout(s.timeout)
            .poll_policy(s.poll.clone())
            .retry_policy(s.retry.clone())
            .sync_wait(s.sync_wait)
            .build()
            .expect("ureq client");
        Ureq(client)
    }
}

impl Driver for Ureq {
    fn name(&self) -> &'static str {
        "ureq"
    }
    fn run(&self, model: &str, input: Value) -> Result<Value, Error> {
        self.0.run(model, input)
    }
    fn run_with(&self, create: CreatePrediction, opts: WaitOptions) -> Result<Prediction, Error> {
        self.0.run_with(create, opts)
    }
    fn create(&self, create: CreatePrediction) -> Result<Prediction, Error> {
        self.0.create(create)
    }
    fn get(&self, id: &str) -> Result<Prediction, Error> {
        self.0.get(id)
    }
    fn cancel(&self, id: &str) -> Result<Prediction, Error> {
        self.0.cancel(id)
    }
    fn list_all(&self) -> Result<Vec<Prediction>, Error> {
        self.0.list().collect()
    }
    fn wait_with(&self, id: &str, opts: WaitOptions) -> Result<Prediction, Error> {
        self.0.wait_with(id, opts)
    }
    fn wait_options(&self, timeout: Option<Duration>) -> WaitOptions {
        self.0.wait_options(timeout)
    }
}

/// The async client, driven from a current-thread runtime.
pub struct Reqwest {
    client: replicate_reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl Reqwest {
    /// Builds it.
    pub fn new(s: &Settings) -> Reqwest {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = replicate_reqwest::Client::builder()
            .token(&s.token)
            .base_url(&s.base_url)
            .timeout(s.timeout)
            .poll_policy(s.poll.clone())
            .retry_policy(s.retry.clone())
            .sync_wait(s.sync_wait)
            .build()
            .expect("reqwest client");
        Reqwest { client, rt }
    }

    /// The client.
    pub fn client(&self) -> &replicate_reqwest::Client {
        &self.client
    }

    /// The runtime.
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.rt
    }
}

impl Driver for Reqwest {
    fn name(&self) -> &'static str {
        "reqwest"
    }
    fn run(&self, model: &str, input: Value) -> Result<Value, Error> {
        self.rt.block_on(self.client.run(model, input))
    }
    fn run_with(&self, create: CreatePrediction, opts: WaitOptions) -> Result<Prediction, Error> {
        self.rt.block_on(self.client.run_with(create, opts))
    }
    fn create(&self, create: CreatePrediction) -> Result<Prediction, Error> {
        self.rt.block_on(self.client.create(create))
    }
    fn get(&self, id: &str) -> Result<Prediction, Error> {
        self.rt.block_on(self.client.get(id))
    }
    fn cancel(&self, id: &str) -> Result<Prediction, Error> {
        self.rt.block_on(self.client.cancel(id))
    }
    fn list_all(&self) -> Result<Vec<Prediction>, Error> {
        use futures_util::TryStreamExt;
        self.rt.block_on(self.client.list().try_collect())
    }
    fn wait_with(&self, id: &str, opts: WaitOptions) -> Result<Prediction, Error> {
        self.rt.block_on(self.client.wait_with(id, opts))
    }
    fn wait_options(&self, timeout: Option<Duration>) -> WaitOptions {
        self.client.wait_options(timeout)
    }
}

/// Which client a scenario runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// `replicate-ureq`.
    Ureq,
    /// `replicate-reqwest`.
    Reqwest,
}

/// A fake server and a client of the chosen kind pointed at it.
pub struct Env {
    /// The fake server.
    pub fake: BlockingFakeServer,
    /// The settings the client was built with.
    pub settings: Settings,
    /// The client.
    pub driver: Box<dyn Driver>,
    which: Which,
}

impl Env {
    /// A fake with short ticks (5 ms) and a client on its plain base URL.
    pub fn new(which: Which) -> Env {
        Env::with(which, fast_options(), |_, _| {})
    }

    /// A fake with these options, and client settings adjusted by `tweak`.
    pub fn with(
        which: Which,
        opts: Options,
        tweak: impl FnOnce(&BlockingFakeServer, &mut Settings),
    ) -> Env {
        let fake = BlockingFakeServer::start_with(opts).expect("fake server");
        let mut settings = Settings::for_fake(&fake);
        tweak(&fake, &mut settings);
        let driver = make_driver(which, &settings);
        Env {
            fake,
            settings,
            driver,
            which,
        }
    }

    /// Rebuilds the client with other settings, on the same fake.
    pub fn rebuild(&mut self, tweak: impl FnOnce(&mut Settings)) {
        tweak(&mut self.settings);
        self.driver = make_driver(self.which, &self.settings);
    }

    /// The recorded API requests whose path ends like this and with this method.
    pub fn count(&self, method: &str, path_suffix: &str) -> usize {
        self.fake
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path.ends_with(path_suffix))
            .count()
    }
}

fn make_driver(which: Which, s: &Settings) -> Box<dyn Driver> {
    match which {
        Which::Ureq => Box::new(Ureq::new(s)),
        Which::Reqwest => Box::new(Reqwest::new(s)),
    }
}

/// Fake server options for fast tests: 5 ms ticks.
pub fn fast_options() -> Options {
    Options {
        tick: Duration::from_millis(5),
        ..Options::default()
    }
}
