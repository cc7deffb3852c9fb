//! Shared harness for the cross-client scenario tests: one [`Driver`] trait that both clients
//! implement, so every scenario runs unchanged against the blocking and the async client.

use std::sync::Arc;
use std::time::Duration;

use replicate_fake::{BlockingFakeServer, Options};
use replicate_protocol::{
    Config, CreatePrediction, Endpoint, Error, Flow, Paginated, PollPolicy, Prediction,
    RetryPolicy, SyncWait, Wait, WaitOptions,
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
    rt: Arc<tokio::runtime::Runtime>,
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
        Reqwest {
            client,
            rt: Arc::new(rt),
        }
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
    client: AnyClient,
}

/// The concrete client behind [`Env::driver`], for generic calls (endpoints, flows, pages).
enum AnyClient {
    Ureq(replicate_ureq::Client),
    Reqwest(replicate_reqwest::Client, Arc<tokio::runtime::Runtime>),
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
        let (driver, client) = make_clients(which, &settings);
        Env {
            fake,
            settings,
            driver,
            which,
            client,
        }
    }

    /// Rebuilds the client with other settings, on the same fake.
    pub fn rebuild(&mut self, tweak: impl FnOnce(&mut Settings)) {
        tweak(&mut self.settings);
        (self.driver, self.client) = make_clients(self.which, &self.settings);
    }

    /// Which client this environment drives.
    pub fn which(&self) -> Which {
        self.which
    }

    /// The client's protocol configuration (base URL, token).
    pub fn config(&self) -> Config {
        match &self.client {
            AnyClient::Ureq(c) => c.config().clone(),
            AnyClient::Reqwest(c, _) => c.config().clone(),
        }
    }

    /// Executes any endpoint with the client's `execute` (blocking on it for `reqwest`).
    pub fn execute<E: Endpoint>(&self, endpoint: E) -> Result<E::Output, Error> {
        match &self.client {
            AnyClient::Ureq(c) => c.execute(endpoint),
            AnyClient::Reqwest(c, rt) => rt.block_on(c.execute(endpoint)),
        }
    }

    /// Drives any flow with the client's `drive`.
    pub fn drive<F: Flow>(&self, flow: F) -> F::Output {
        match &self.client {
            AnyClient::Ureq(c) => c.drive(flow),
            AnyClient::Reqwest(c, rt) => rt.block_on(c.drive(flow)),
        }
    }

    /// Every item of a paginated list, through the client's `paginate`.
    pub fn collect_all<P>(&self, first: P) -> Result<Vec<P::Item>, Error>
    where
        P: Paginated + Send + Sync + 'static,
        P::Item: Send + 'static,
    {
        match &self.client {
            AnyClient::Ureq(c) => c.paginate(first).collect(),
            AnyClient::Reqwest(c, rt) => {
                use futures_util::TryStreamExt;
                rt.block_on(c.paginate(first).try_collect())
            }
        }
    }

    /// Waits for a training with the shared wait machine:
    /// `drive(Wait::new(cfg, id, opts).for_training())`.
    pub fn wait_training(&self, id: &str, opts: WaitOptions) -> Result<Prediction, Error> {
        self.drive(Wait::new(self.config(), id, opts).for_training())
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

fn make_clients(which: Which, s: &Settings) -> (Box<dyn Driver>, AnyClient) {
    match which {
        Which::Ureq => {
            let d = Ureq::new(s);
            let c = AnyClient::Ureq(d.0.clone());
            (Box::new(d), c)
        }
        Which::Reqwest => {
            let d = Reqwest::new(s);
            let c = AnyClient::Reqwest(d.client.clone(), d.rt.clone());
            (Box::new(d), c)
        }
    }
}

/// Fake server options for fast tests: 5 ms ticks.
pub fn fast_options() -> Options {
    Options {
        tick: Duration::from_millis(5),
        ..Options::default()
    }
}
