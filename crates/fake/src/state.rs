//! Shared state: predictions, models, files, and the schedule arithmetic.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value, json};
use tokio::sync::{Notify, watch};

use crate::fault::{Fault, FaultRule};
use crate::options::{Options, RateLimit};
use crate::origin::Origin;
use crate::record::{RecordedRequest, WebhookDelivery};
use crate::script::{BUILTIN_MODELS, ModelScript, Outcome, Output, builtin_script};
use crate::synthetic::SyntheticFile;
use crate::util;

pub(crate) use crate::util::lock;

/// Everything the server tasks and handles share.
pub(crate) struct Shared {
    pub opts: Options,
    pub api_base: String,
    pub files_base: String,
    pub state: Mutex<State>,
    /// The request log: a ring of at most `opts.request_log_capacity` entries.
    pub requests: Mutex<VecDeque<RecordedRequest>>,
    /// Entries the request log dropped because it was full.
    pub dropped_requests: AtomicUsize,
    pub faults: Mutex<Vec<FaultRule>>,
    /// The webhook delivery log, bounded like the request log.
    pub deliveries: Mutex<VecDeque<WebhookDelivery>>,
    pub api_conns: AtomicUsize,
    pub files_conns: AtomicUsize,
    /// Connections open now, on both origins.
    pub open_conns: AtomicUsize,
    pub shutdown: watch::Receiver<bool>,
    /// When the server started: the origin of the rate limit's windows.
    pub started: Instant,
    /// The rate limit's current window (index since `started`) and requests counted in it.
    pub rate_window: Mutex<(u64, u32)>,
    /// The window of [`Options::create_rate_limit`](crate::Options::create_rate_limit).
    pub create_window: Mutex<(u64, u32)>,
}

/// What the rate limit says about one request.
pub(crate) enum RateDecision {
    /// Served: requests left in the window, and whole seconds until it resets.
    Allowed { remaining: u32, reset_secs: u64 },
    /// Throttled: whole seconds until the window resets.
    Throttled { reset_secs: u64 },
}

/// Mutable server state.
#[derive(Default)]
pub(crate) struct State {
    pub preds: HashMap<String, Arc<Pred>>,
    pub order: Vec<Arc<Pred>>,
    pub models: HashMap<String, Arc<ModelScript>>,
    pub versions: HashMap<String, String>,
    pub deployments: HashMap<String, DeploymentRec>,
    pub deployment_seq: usize,
    /// Deployments deleted through the API: their predictions answer 404.
    pub deleted_deployments: HashSet<String>,
    pub outputs: HashMap<String, (Arc<Pred>, usize)>,
    pub files: HashMap<String, Arc<Upload>>,
    pub file_order: Vec<Arc<Upload>>,
    /// Catalog entries of the models, by `owner/name`.
    pub meta: HashMap<String, ModelMeta>,
    pub meta_seq: usize,
    /// Models deleted through the API: they answer 404 even when unknown models exist.
    pub deleted_models: HashSet<String>,
    pub trainings: HashMap<String, usize>,
    pub training_order: Vec<TrainingRec>,
}

/// The catalog entry of a model: what `GET /v1/models/...` shows besides its script.
pub(crate) struct ModelMeta {
    pub seq: usize,
    pub description: Option<String>,
    pub visibility: String,
    pub github_url: Option<String>,
    pub paper_url: Option<String>,
    pub license_url: Option<String>,
    pub cover_image_url: Option<String>,
    pub readme: Option<String>,
    /// Created through `POST /v1/models`: it has no versions until a training pushes one.
    pub created: bool,
    /// Its versions, oldest first.
    pub versions: Vec<VersionRec>,
}

/// A version of a model.
#[derive(Clone)]
pub(crate) struct VersionRec {
    pub id: String,
    pub created_at: String,
    /// Pushed by a training (kept when the model is scripted again).
    pub trained: bool,
}

/// A training: a job with a prediction's schedule, plus where its version goes.
pub(crate) struct TrainingRec {
    pub job: Arc<Pred>,
    pub destination: String,
    pub new_version: String,
    /// Whether the new version was added to the destination (once the training succeeded).
    pub pushed: bool,
}

/// A deployment.
#[derive(Clone)]
pub(crate) struct DeploymentRec {
    pub seq: usize,
    pub owner: String,
    pub name: String,
    pub model: String,
    /// The version it runs; `None` follows the model's script version.
    pub version: Option<String>,
    pub hardware: String,
    pub min_instances: u64,
    pub max_instances: u64,
    pub release: u64,
    pub release_at: SystemTime,
}

/// The script versions' creation time.
pub(crate) const SCRIPT_VERSION_CREATED_AT: &str = "2025-01-01T00:00:00.000000Z";

/// An uploaded file.
pub(crate) struct Upload {
    pub seq: usize,
    pub id: String,
    pub name: String,
    pub content_type: String,
    pub data: bytes::Bytes,
    pub sha256: String,
    pub metadata: Value,
    pub created: SystemTime,
}

impl Shared {
    /// The host written in API URLs inside bodies.
    pub(crate) fn body_host(&self) -> &str {
        self.opts
            .api_host_in_bodies
            .as_deref()
            .unwrap_or(&self.api_base)
    }

    /// Takes the first fault rule matching this request, decrementing its count.
    pub(crate) fn take_fault(
        &self,
        origin: Origin,
        method: &str,
        target: &str,
        is_stream: bool,
    ) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        if faults.is_empty() {
            return None;
        }
        faults.retain(|r| r.times > 0);
        let idx = faults.iter().position(|r| {
            r.matcher.matches(origin, method, target) && (is_stream || !r.fault.stream_only())
        })?;
        let rule = &mut faults[idx];
        rule.times -= 1;
        let fault = rule.fault.clone();
        if rule.times == 0 {
            faults.remove(idx);
        }
        Some(fault)
    }

    /// Whether requests are recorded at all.
    pub(crate) fn recording(&self) -> bool {
        self.opts.record_requests && self.opts.request_log_capacity > 0
    }

    /// Appends to the request log, dropping the oldest entry when it is full.
    pub(crate) fn record(&self, r: RecordedRequest) {
        if !self.recording() {
            return;
        }
        let cap = self.opts.request_log_capacity;
        let mut log = lock(&self.requests);
        while log.len() >= cap {
            log.pop_front();
            self.dropped_requests.fetch_add(1, Ordering::Relaxed);
        }
        log.push_back(r);
    }

    /// Appends to the webhook delivery log, dropping the oldest entry when it is full.
    pub(crate) fn record_delivery(&self, d: WebhookDelivery) {
        let cap = self.opts.request_log_capacity;
        if cap == 0 {
            return;
        }
        let mut log = lock(&self.deliveries);
        while log.len() >= cap {
            log.pop_front();
        }
        log.push_back(d);
    }

    /// Counts a request against the rate limits there are: the create limit first for a
    /// create (a create it throttles does not count against the other), then the limit of the
    /// whole API. The headers tell the tighter of the two.
    pub(crate) fn rate_check(&self, create: bool) -> Option<RateDecision> {
        let creates = match self.opts.create_rate_limit {
            Some(rl) if create => Some(self.window_check(rl, &self.create_window)),
            _ => None,
        };
        if let Some(throttled @ RateDecision::Throttled { .. }) = creates {
            return Some(throttled);
        }
        let all = self
            .opts
            .rate_limit
            .map(|rl| self.window_check(rl, &self.rate_window));
        match (creates, all) {
            (
                Some(RateDecision::Allowed {
                    remaining: a,
                    reset_secs: ra,
                }),
                Some(RateDecision::Allowed {
                    remaining: b,
                    reset_secs: rb,
                }),
            ) => Some(if a <= b {
                RateDecision::Allowed {
                    remaining: a,
                    reset_secs: ra,
                }
            } else {
                RateDecision::Allowed {
                    remaining: b,
                    reset_secs: rb,
                }
            }),
            (c, a) => a.or(c),
        }
    }

    /// Counts a request in the current window of `rl`.
    fn window_check(&self, rl: RateLimit, window_state: &Mutex<(u64, u32)>) -> RateDecision {
        let window = rl.window.as_nanos().max(1);
        let elapsed = self.started.elapsed().as_nanos();
        let idx = u64::try_from(elapsed / window).unwrap_or(u64::MAX);
        let left_ns = window - elapsed % window;
        let reset_secs = u64::try_from(left_ns.div_ceil(1_000_000_000))
            .unwrap_or(u64::MAX)
            .max(1);
        let mut w = lock(window_state);
        if w.0 != idx {
            *w = (idx, 0);
        }
        if w.1 >= rl.requests {
            return RateDecision::Throttled { reset_secs };
        }
        w.1 += 1;
        RateDecision::Allowed {
            remaining: rl.requests - w.1,
            reset_secs,
        }
    }

    /// The script of a model, if the model exists. Registers its versions.
    pub(crate) fn model_script(&self, name: &str) -> Option<Arc<ModelScript>> {
        let (owner, model) = name.split_once('/')?;
        if owner.is_empty() || model.is_empty() || model.contains('/') {
            return None;
        }
        let mut st = lock(&self.state);
        if st.deleted_models.contains(name) {
            return None;
        }
        if let Some(s) = st.models.get(name) {
            return Some(s.clone());
        }
        if !self.opts.unknown_models_exist {
            return None;
        }
        let script = Arc::new(ModelScript::default());
        st.register_model(name, script.clone());
        Some(script)
    }

    pub(crate) fn find_pred(&self, id: &str) -> Option<Arc<Pred>> {
        lock(&self.state).preds.get(id).cloned()
    }
}

impl State {
    pub(crate) fn with_builtins() -> Self {
        let mut st = State::default();
        for name in BUILTIN_MODELS {
            if let Some(s) = builtin_script(name) {
                st.register_model(name, Arc::new(s));
            }
        }
        st
    }

    pub(crate) fn register_model(&mut self, name: &str, script: Arc<ModelScript>) {
        self.deleted_models.remove(name);
        self.ensure_meta(name, false);
        let created = self.meta.get(name).is_some_and(|m| m.created);
        if !created {
            let mut ids: Vec<String> = script.extra_versions.clone();
            ids.push(version_of(name, &script));
            for v in &ids {
                self.versions.insert(v.clone(), name.to_owned());
            }
            if let Some(meta) = self.meta.get_mut(name) {
                let trained: Vec<VersionRec> =
                    meta.versions.drain(..).filter(|v| v.trained).collect();
                let mut seen = HashSet::new();
                meta.versions = ids
                    .into_iter()
                    .filter(|id| seen.insert(id.clone()))
                    .map(|id| VersionRec {
                        id,
                        created_at: SCRIPT_VERSION_CREATED_AT.to_owned(),
                        trained: false,
                    })
                    .chain(trained)
                    .collect();
            }
        }
        self.models.insert(name.to_owned(), script);
    }

    /// Adds a catalog entry for `name` if it has none (public, no versions).
    pub(crate) fn ensure_meta(&mut self, name: &str, created: bool) {
        if self.meta.contains_key(name) {
            return;
        }
        let seq = self.meta_seq;
        self.meta_seq += 1;
        self.meta.insert(
            name.to_owned(),
            ModelMeta {
                seq,
                description: None,
                visibility: "public".to_owned(),
                github_url: None,
                paper_url: None,
                license_url: None,
                cover_image_url: None,
                readme: None,
                created,
                versions: Vec::new(),
            },
        );
    }

    /// Forgets a model: its script, catalog entry and version ids.
    pub(crate) fn remove_model(&mut self, name: &str) {
        self.models.remove(name);
        self.meta.remove(name);
        self.versions.retain(|_, m| m != name);
        self.deleted_models.insert(name.to_owned());
    }

    /// Pushes the versions of trainings that succeeded since the last call to their
    /// destinations.
    pub(crate) fn settle_trainings(&mut self) {
        let mut pushes = Vec::new();
        for t in &mut self.training_order {
            if !t.pushed && t.job.view().terminal == Some(Terminal::Succeeded) {
                t.pushed = true;
                let at = util::wall_after(t.job.created_wall, t.job.end().0);
                pushes.push((t.destination.clone(), t.new_version.clone(), at));
            }
        }
        for (dest, id, at) in pushes {
            if self.deleted_models.contains(&dest) {
                continue;
            }
            if !self.models.contains_key(&dest) {
                self.register_model(&dest, Arc::new(ModelScript::default()));
            }
            self.versions.insert(id.clone(), dest.clone());
            if let Some(meta) = self.meta.get_mut(&dest) {
                meta.versions.push(VersionRec {
                    id,
                    created_at: util::rfc3339_ns(at),
                    trained: true,
                });
            }
        }
    }

    /// The version a deployment runs now.
    pub(crate) fn deployment_version(&self, d: &DeploymentRec) -> String {
        match &d.version {
            Some(v) => v.clone(),
            None => match self.models.get(&d.model) {
                Some(s) => version_of(&d.model, s),
                None => version_of(&d.model, &ModelScript::default()),
            },
        }
    }
}

/// The version id of a model.
pub(crate) fn version_of(name: &str, script: &ModelScript) -> String {
    script
        .version
        .clone()
        .unwrap_or_else(|| util::sha256_hex(name.as_bytes()))
}

/// How a prediction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Terminal {
    Succeeded,
    Failed,
    Canceled,
    Aborted,
}

impl Terminal {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Terminal::Succeeded => "succeeded",
            Terminal::Failed => "failed",
            Terminal::Canceled => "canceled",
            Terminal::Aborted => "aborted",
        }
    }
}

/// Webhook settings of a prediction.
pub(crate) struct WebhookCfg {
    pub url: String,
    pub events: Vec<String>,
}

const NOT_CANCELED: u64 = u64::MAX;

/// A prediction. Everything is fixed at creation but the cancel instant; its state at any time
/// follows from the schedule.
pub(crate) struct Pred {
    pub kind: JobKind,
    pub seq: usize,
    pub id: String,
    pub model: String,
    pub version: String,
    pub deployment: Option<String>,
    pub input: Value,
    pub created: Instant,
    pub created_wall: SystemTime,
    pub script: Arc<ModelScript>,
    pub logs: Vec<String>,
    pub starting: Duration,
    pub processing: Duration,
    /// Deadline, as elapsed time since creation.
    pub deadline: Option<Duration>,
    pub deadline_wall: Option<SystemTime>,
    canceled_at: AtomicU64,
    /// Paths of output files on the files origin.
    pub output_paths: Vec<String>,
    /// The contents of the output files, for an [`Output::Synthetic`] model (else empty).
    pub synthetic: Vec<SyntheticFile>,
    pub streams: bool,
    pub notify: Notify,
    pub webhook: Option<WebhookCfg>,
    pub ttl: Duration,
}

/// The state of a prediction at one instant.
#[derive(Clone, Copy, Debug)]
pub(crate) struct View {
    pub elapsed: Duration,
    pub terminal: Option<Terminal>,
    pub started: bool,
    pub end: Duration,
    pub logs_n: usize,
    pub tokens_n: usize,
    pub data_removed: bool,
}

/// One event of a prediction's stream timeline.
pub(crate) struct StreamEvent {
    pub at: Duration,
    pub event: &'static str,
    pub data: String,
}

/// What a job is: its URLs differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JobKind {
    Prediction,
    Training,
}

/// Inputs of [`Pred::new`].
pub(crate) struct NewPred {
    pub kind: JobKind,
    pub model: String,
    pub version: String,
    pub deployment: Option<String>,
    pub input: Value,
    pub script: Arc<ModelScript>,
    pub deadline: Option<Duration>,
    pub webhook: Option<WebhookCfg>,
    /// The validated input `num_outputs`, for an [`Output::Urls`] or [`Output::Synthetic`]
    /// model.
    pub num_outputs: Option<usize>,
    /// The validated input `output_bytes`, for an [`Output::Synthetic`] model.
    pub output_bytes: Option<u64>,
    /// The validated input `seed`, for an [`Output::Synthetic`] model.
    pub seed: Option<u64>,
}

impl Pred {
    pub(crate) fn new(seq: usize, n: NewPred, opts: &Options) -> Pred {
        let created = Instant::now();
        let created_wall = SystemTime::now();
        let id = util::new_id();
        let ext = if n.script.file_extension.is_empty() {
            "bin".to_owned()
        } else {
            n.script.file_extension.clone()
        };
        let output_paths = match &n.script.outcome {
            Outcome::Succeed(Output::Url) => {
                vec![format!("/xezq/{}/output.{ext}", util::new_file_token())]
            }
            Outcome::Succeed(Output::Urls(k)) => {
                let token = util::new_file_token();
                (0..n.num_outputs.unwrap_or(*k))
                    .map(|i| format!("/xezq/{token}/out-{i}.{ext}"))
                    .collect()
            }
            Outcome::Succeed(Output::Synthetic { files, .. }) => {
                let token = util::new_file_token();
                (0..n.num_outputs.unwrap_or(*files))
                    .map(|i| format!("/xezq/{token}/out-{i}.bin"))
                    .collect()
            }
            _ => Vec::new(),
        };
        let synthetic = match &n.script.outcome {
            Outcome::Succeed(Output::Synthetic { bytes, .. }) => {
                let len = n.output_bytes.unwrap_or(*bytes);
                let seed = n.seed.unwrap_or(0);
                (0..output_paths.len() as u64)
                    .map(|i| SyntheticFile::new(seed.wrapping_add(i), len))
                    .collect()
            }
            _ => Vec::new(),
        };
        Pred {
            kind: n.kind,
            seq,
            id,
            model: n.model,
            version: n.version,
            deployment: n.deployment,
            input: n.input,
            created,
            created_wall,
            logs: n.script.all_logs(),
            starting: n.script.starting.resolve(opts.tick),
            processing: n.script.processing.resolve(opts.tick),
            streams: n.script.is_streaming(),
            script: n.script,
            deadline: n.deadline,
            deadline_wall: n.deadline.map(|d| util::wall_after(created_wall, d)),
            canceled_at: AtomicU64::new(NOT_CANCELED),
            output_paths,
            synthetic,
            notify: Notify::new(),
            webhook: n.webhook,
            ttl: opts.output_ttl,
        }
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.created.elapsed()
    }

    fn canceled_at(&self) -> Option<Duration> {
        match self.canceled_at.load(Ordering::Acquire) {
            NOT_CANCELED => None,
            n => Some(Duration::from_nanos(n)),
        }
    }

    fn tokens(&self) -> &[String] {
        match &self.script.outcome {
            Outcome::Succeed(Output::Text(t)) => t,
            _ => &[],
        }
    }

    /// When and how the prediction ends (as elapsed time), given cancels and deadline so far.
    pub(crate) fn end(&self) -> (Duration, Terminal) {
        let s = self.starting;
        let done = s.saturating_add(self.processing);
        let natural = match &self.script.outcome {
            Outcome::Succeed(_) => (done, Terminal::Succeeded),
            Outcome::Fail { .. } => (done, Terminal::Failed),
            Outcome::Cancel => (done, Terminal::Canceled),
            Outcome::Abort => (s, Terminal::Aborted),
        };
        let mut best = natural;
        if let Some(c) = self.canceled_at()
            && c < best.0
        {
            best = (c, Terminal::Canceled);
        }
        if let Some(d) = self.deadline
            && d < best.0
        {
            best = (
                d,
                if d < s {
                    Terminal::Aborted
                } else {
                    Terminal::Canceled
                },
            );
        }
        best
    }

    fn log_at(&self, i: usize) -> Duration {
        let n = self.logs.len().max(1) as u64;
        self.starting
            .saturating_add(util::fraction(self.processing, i as u64, n))
    }

    fn token_at(&self, i: usize) -> Duration {
        let m = self.tokens().len() as u64;
        self.starting
            .saturating_add(util::fraction(self.processing, i as u64 + 1, m + 1))
    }

    pub(crate) fn view_at(&self, elapsed: Duration) -> View {
        let (end, kind) = self.end();
        let terminal = (elapsed >= end).then_some(kind);
        let started = elapsed >= self.starting && end > self.starting;
        let horizon = elapsed.min(end);
        let visible = |t: Duration| t <= horizon && t < end;
        let logs_n = (0..self.logs.len())
            .take_while(|&i| visible(self.log_at(i)))
            .count();
        let tokens_n = (0..self.tokens().len())
            .take_while(|&i| visible(self.token_at(i)))
            .count();
        View {
            elapsed,
            terminal,
            started,
            end,
            logs_n,
            tokens_n,
            data_removed: terminal.is_some() && elapsed >= end.saturating_add(self.ttl),
        }
    }

    pub(crate) fn view(&self) -> View {
        self.view_at(self.elapsed())
    }

    /// Cancels the prediction if it is not finished. Returns whether it changed.
    pub(crate) fn cancel(&self) -> bool {
        let now = self.elapsed();
        if self.view_at(now).terminal.is_some() {
            return false;
        }
        let nanos = u64::try_from(now.as_nanos()).unwrap_or(NOT_CANCELED - 1);
        let changed = self
            .canceled_at
            .compare_exchange(NOT_CANCELED, nanos, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if changed {
            self.notify.notify_waiters();
        }
        changed
    }

    pub(crate) fn status_str(&self, v: &View) -> String {
        match v.terminal {
            Some(t) => t.as_str().to_owned(),
            None if v.started => self
                .script
                .running_status
                .clone()
                .unwrap_or_else(|| "processing".to_owned()),
            None => "starting".to_owned(),
        }
    }

    pub(crate) fn output_urls(&self, files_base: &str) -> Vec<String> {
        self.output_paths
            .iter()
            .map(|p| format!("{files_base}{p}"))
            .collect()
    }

    /// The `output` field at this view.
    pub(crate) fn output_value(&self, v: &View, files_base: &str) -> Value {
        if v.data_removed {
            return Value::Null;
        }
        if let Outcome::Succeed(Output::Text(tokens)) = &self.script.outcome {
            if v.tokens_n == 0 && v.terminal != Some(Terminal::Succeeded) {
                return Value::Null;
            }
            return Value::Array(
                tokens[..v.tokens_n]
                    .iter()
                    .map(|t| Value::String(t.clone()))
                    .collect(),
            );
        }
        if v.terminal != Some(Terminal::Succeeded) {
            return Value::Null;
        }
        match &self.script.outcome {
            Outcome::Succeed(Output::Url) => self
                .output_urls(files_base)
                .into_iter()
                .next()
                .map_or(Value::Null, Value::String),
            Outcome::Succeed(Output::Urls(_) | Output::Synthetic { .. }) => Value::Array(
                self.output_urls(files_base)
                    .into_iter()
                    .map(Value::String)
                    .collect(),
            ),
            Outcome::Succeed(Output::Json(j)) => j.clone(),
            Outcome::Succeed(Output::DataUri) => Value::String(crate::assets::png_data_uri()),
            _ => Value::Null,
        }
    }

    pub(crate) fn logs_string(&self, v: &View) -> String {
        let mut s = String::new();
        for line in &self.logs[..v.logs_n] {
            s.push_str(line);
            s.push('\n');
        }
        s
    }

    pub(crate) fn error_value(&self, v: &View) -> Value {
        match (&self.script.outcome, v.terminal) {
            (Outcome::Fail { error, .. }, Some(Terminal::Failed)) => Value::String(error.clone()),
            _ => Value::Null,
        }
    }

    pub(crate) fn get_url(&self, host: &str) -> String {
        match self.kind {
            JobKind::Prediction => format!("{host}/v1/predictions/{}", self.id),
            JobKind::Training => format!("{host}/v1/trainings/{}", self.id),
        }
    }

    pub(crate) fn stream_url(&self, files_base: &str) -> String {
        format!("{files_base}/v1/streams/{}", self.id)
    }

    /// The prediction JSON, shaped like the seed's. List items omit `logs` and add `source`.
    pub(crate) fn to_json(&self, v: &View, shared: &Shared, list_item: bool) -> Value {
        let host = shared.body_host();
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("model".into(), json!(self.model));
        m.insert("version".into(), json!(self.version));
        if let Some(d) = &self.deployment {
            m.insert("deployment".into(), json!(d));
        }
        let input = if v.data_removed {
            json!({})
        } else {
            self.input.clone()
        };
        m.insert("input".into(), input);
        if !list_item {
            m.insert("logs".into(), json!(self.logs_string(v)));
        }
        m.insert("output".into(), self.output_value(v, &shared.files_base));
        m.insert("data_removed".into(), json!(v.data_removed));
        m.insert("error".into(), self.error_value(v));
        if list_item {
            m.insert("source".into(), json!("api"));
        }
        m.insert("status".into(), json!(self.status_str(v)));
        m.insert(
            "created_at".into(),
            json!(util::rfc3339_ms(self.created_wall)),
        );
        if v.started {
            m.insert(
                "started_at".into(),
                json!(util::rfc3339_ns(util::wall_after(
                    self.created_wall,
                    self.starting
                ))),
            );
        }
        if v.terminal.is_some() {
            m.insert(
                "completed_at".into(),
                json!(util::rfc3339_ns(util::wall_after(self.created_wall, v.end))),
            );
        }
        if let Some(d) = self.deadline_wall {
            m.insert("deadline".into(), json!(util::rfc3339_ms(d)));
        }
        let get = self.get_url(host);
        let mut urls = Map::new();
        urls.insert("cancel".into(), json!(format!("{get}/cancel")));
        urls.insert("get".into(), json!(get));
        if self.streams {
            urls.insert("stream".into(), json!(self.stream_url(&shared.files_base)));
        }
        urls.insert(
            "web".into(),
            json!(format!("https://replicate.com/p/{}", self.id)),
        );
        m.insert("urls".into(), Value::Object(urls));
        if v.terminal.is_some() {
            let mut metrics = Map::new();
            if v.started {
                let predict = v.end.saturating_sub(self.starting).as_secs_f64();
                metrics.insert("predict_time".into(), json!(predict));
            }
            metrics.insert("total_time".into(), json!(v.end.as_secs_f64()));
            if v.terminal == Some(Terminal::Succeeded) {
                let urls = matches!(self.script.outcome, Outcome::Succeed(Output::Urls(_)));
                for (k, val) in &self.script.extra_metrics {
                    let val = if urls && k == "image_count" {
                        json!(self.output_paths.len())
                    } else {
                        val.clone()
                    };
                    metrics.insert(k.clone(), val);
                }
            }
            m.insert("metrics".into(), Value::Object(metrics));
        }
        Value::Object(m)
    }

    /// The whole stream timeline for the current end; events after `v.elapsed` are in the future.
    pub(crate) fn stream_events(&self, files_base: &str) -> Vec<StreamEvent> {
        let (end, kind) = self.end();
        let mut evs: Vec<StreamEvent> = Vec::new();
        for (i, line) in self.logs.iter().enumerate() {
            let at = self.log_at(i);
            if at < end {
                evs.push(StreamEvent {
                    at,
                    event: "logs",
                    data: line.clone(),
                });
            }
        }
        for (i, tok) in self.tokens().iter().enumerate() {
            let at = self.token_at(i);
            if at < end {
                evs.push(StreamEvent {
                    at,
                    event: "output",
                    data: tok.clone(),
                });
            }
        }
        evs.sort_by_key(|e| e.at);
        match kind {
            Terminal::Succeeded => {
                let v = self.view_at(end);
                match &self.script.outcome {
                    Outcome::Succeed(Output::Text(_)) => {}
                    Outcome::Succeed(Output::Urls(_) | Output::Synthetic { .. }) => {
                        for url in self.output_urls(files_base) {
                            evs.push(StreamEvent {
                                at: end,
                                event: "output",
                                data: url,
                            });
                        }
                    }
                    _ => {
                        let out = self.output_value(&v, files_base);
                        let data = match out {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        evs.push(StreamEvent {
                            at: end,
                            event: "output",
                            data,
                        });
                    }
                }
                evs.push(StreamEvent {
                    at: end,
                    event: "done",
                    data: "{}".into(),
                });
            }
            Terminal::Failed => {
                let detail = match &self.script.outcome {
                    Outcome::Fail { error, .. } => error.clone(),
                    _ => String::new(),
                };
                evs.push(StreamEvent {
                    at: end,
                    event: "error",
                    data: json!({ "detail": detail }).to_string(),
                });
                evs.push(StreamEvent {
                    at: end,
                    event: "done",
                    data: json!({"reason": "error"}).to_string(),
                });
            }
            Terminal::Canceled | Terminal::Aborted => evs.push(StreamEvent {
                at: end,
                event: "done",
                data: json!({"reason": "canceled"}).to_string(),
            }),
        }
        evs
    }

    /// The next instant (elapsed) at which the visible state changes, if any.
    pub(crate) fn next_change_after(&self, elapsed: Duration) -> Option<Duration> {
        let (end, _) = self.end();
        let mut cands: Vec<Duration> = vec![self.starting, end, end.saturating_add(self.ttl)];
        cands.extend((0..self.logs.len()).map(|i| self.log_at(i)));
        cands.extend((0..self.tokens().len()).map(|i| self.token_at(i)));
        cands.into_iter().filter(|&t| t > elapsed).min()
    }
}
