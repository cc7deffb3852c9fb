//! Local validation of a create's input against its model version's schema, before anything
//! is sent.
//!
//! [`Validated`] wraps the flow of a create — a [`Run`], or a [`Call`] of a
//! [`CreatePrediction`] — and, before the create is sent, checks its input against the `Input`
//! schema of the version it runs ([`InputSchema::check`]). When the input has a problem, the
//! flow ends with [`Error::Validation`] (every problem at once, one line per field) and nothing
//! is created. Both clients wrap every create in it (`create`, `run`, `start`, `stream_run`,
//! ...; not the creates of a batch), so they validate alike; [`Validation::Off`], the default,
//! makes the wrapper a no-op.
//!
//! # Where the schema comes from
//!
//! | the create runs | the schema is read from |
//! |---|---|
//! | a model, `owner/name` | `GET /v1/models/{owner}/{name}`: its `latest_version` (the one an official model's create runs) |
//! | a version of a known model, `owner/name:id` | `GET /v1/models/{owner}/{name}/versions/{id}` |
//! | a bare version id | nowhere: the API has no endpoint for a version without its model, so the input is not validated, and a `tracing` warning says so (name the model, `owner/name:id`, or set [`CreatePrediction::version_of`]) |
//! | a deployment, `owner/name` | `GET /v1/deployments/{owner}/{name}`: its current release names a model and a version (the deployment object carries no schema), whose schema is read as above; a release without them is not validated (a `debug` event) |
//!
//! Schemas are kept in a [`SchemaCache`] (the client's, shared by its clones): a version's
//! schema is fetched once (a version never changes) and kept among the
//! [`SCHEMA_CACHE_CAPACITY`] most recently used; what a model name or a deployment resolves to
//! is kept [`SCHEMA_CACHE_TTL`] (5 minutes), then asked again, so that a new version is picked
//! up. N creates of one model within that time cost one schema request. Creates of a new
//! version that start at the same time may each fetch it.
//!
//! A version without an `Input` schema is not validated (a `debug` event). A lookup that fails
//! ends the flow with its error and nothing is created: a 404 (the model, version or deployment
//! does not exist: the create would fail alike), a 401/403, or a network failure once the retry
//! policy gave up.
//!
//! The events (a bare version id, unknown inputs in [`Validation::Warn`] at `warn`; a schema
//! fetched, or missing, at `debug`) have the target `replicate_protocol::validate` and name the
//! model and the input keys, never their values.
//!
//! # Rules
//!
//! Missing required inputs, values of the wrong type, numbers out of range and values outside
//! an enum are errors in [`Validation::Warn`] and [`Validation::Strict`]. Inputs the schema does
//! not list are sent with a `tracing` warning in [`Validation::Warn`] (the API ignores them,
//! which hides a typo) and are errors in [`Validation::Strict`].
//!
//! ```
//! use std::sync::Arc;
//! use replicate_protocol::validate::{SchemaCache, Validated, Validation};
//! use replicate_protocol::{Call, Config, CreatePrediction, Error, TransportError};
//! use serde_json::json;
//!
//! let cfg = Config::new("r8_token");
//! let create = CreatePrediction::parse("acme/upscaler")?.input(json!({"scale": 9}));
//! let call = Call::new(create, cfg.clone());
//! let flow = Validated::new(cfg, call, Validation::Warn, Arc::new(SchemaCache::new()));
//! let transport = |request: http::Request<Vec<u8>>, _timeout| -> Result<_, TransportError> {
//!     // The model, with its latest version's schema; the create is never sent.
//!     assert_eq!(request.uri(), "https://api.replicate.com/v1/models/acme/upscaler");
//!     let body = json!({"owner": "acme", "name": "upscaler", "latest_version": {
//!         "id": "v1", "openapi_schema": {"components": {"schemas": {"Input": {
//!             "type": "object",
//!             "properties": {"scale": {"type": "integer", "minimum": 1, "maximum": 4}}
//!         }}}}
//!     }});
//!     Ok(http::Response::builder().status(200).body(body.to_string().into_bytes()).unwrap())
//! };
//! let err = replicate_protocol::drive(flow, transport).unwrap_err();
//! assert!(err.is_invalid_input());
//! assert_eq!(err.to_string(), "invalid input (1 problem)\n  - scale: 9 is out of range (must be >= 1 and <= 4)");
//! # Ok::<(), Error>(())
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http::Response;

use crate::api::deployments::{Deployment, GetDeployment};
use crate::api::models::{GetModel, GetModelVersion, Model, ModelVersion};
use crate::call::Call;
use crate::flow::{Flow, FlowInfo, Step};
use crate::schema::{InputSchema, Mode};
use crate::{Config, CreatePrediction, Error, RetryPolicy, Run, Target, TransportError};

/// How many version schemas a [`SchemaCache`] keeps (the least recently used is dropped first),
/// and how many model and deployment names.
pub const SCHEMA_CACHE_CAPACITY: usize = 64;

/// How long a [`SchemaCache`] keeps what a model name (its latest version) or a deployment (its
/// current release) resolves to: 5 minutes.
pub const SCHEMA_CACHE_TTL: Duration = Duration::from_secs(300);

/// Whether a create's input is checked against its model version's schema before it is sent,
/// and how strictly. See the [module documentation](self).
///
/// Off by default: checking costs one more request (`GET` of the model, its version or the
/// deployment) the first time a client creates with each model, version or deployment, and again
/// every [`SCHEMA_CACHE_TTL`] for names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Validation {
    /// No check: nothing is fetched, the API checks the input (a `422` for a bad one).
    #[default]
    Off,
    /// Missing required inputs, wrong types, numbers out of range and values outside an enum
    /// are an [`Error::Validation`] and nothing is sent; inputs the schema does not list are
    /// sent, with a `tracing` warning.
    Warn,
    /// As [`Validation::Warn`], and inputs the schema does not list are errors too.
    Strict,
}

/// What a model or deployment name resolves to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum NameKey {
    Model(String, String),
    Deployment(String, String),
}

#[derive(Debug)]
struct VersionEntry {
    schema: Option<Arc<InputSchema>>,
    used: u64,
}

#[derive(Debug)]
struct NameEntry {
    version: String,
    resolved_at: Instant,
    used: u64,
}

#[derive(Debug, Default)]
struct CacheState {
    versions: HashMap<String, VersionEntry>,
    names: HashMap<NameKey, NameEntry>,
    /// A counter that orders uses (least recently used first out).
    clock: u64,
}

impl CacheState {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }
}

/// The input schemas a client has fetched, by version id, and what model names and deployments
/// resolve to. See the [module documentation](self#where-the-schema-comes-from).
///
/// Bounded: at most `capacity` versions and `capacity` names (the least recently used dropped
/// first); a name is resolved again once older than the time to live. Safe to share between
/// threads and flows (`Arc<SchemaCache>`).
pub struct SchemaCache {
    capacity: usize,
    ttl: Duration,
    state: Mutex<CacheState>,
}

impl Default for SchemaCache {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SchemaCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.lock();
        f.debug_struct("SchemaCache")
            .field("capacity", &self.capacity)
            .field("ttl", &self.ttl)
            .field("versions", &st.versions.len())
            .field("names", &st.names.len())
            .finish()
    }
}

impl SchemaCache {
    /// A cache of [`SCHEMA_CACHE_CAPACITY`] entries whose names live [`SCHEMA_CACHE_TTL`].
    pub fn new() -> Self {
        Self::with_limits(SCHEMA_CACHE_CAPACITY, SCHEMA_CACHE_TTL)
    }

    /// A cache of `capacity` versions and `capacity` names (at least 1), whose names are
    /// resolved again after `ttl`.
    pub fn with_limits(capacity: usize, ttl: Duration) -> Self {
        SchemaCache {
            capacity: capacity.max(1),
            ttl,
            state: Mutex::new(CacheState::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CacheState> {
        // The state is consistent between statements: a panic elsewhere leaves it usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many version schemas are kept.
    pub fn len(&self) -> usize {
        self.lock().versions.len()
    }

    /// Whether no version schema is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets everything: the next create of each model fetches its schema again.
    pub fn clear(&self) {
        let mut st = self.lock();
        st.versions.clear();
        st.names.clear();
    }

    /// The schema of version `id`: `None` when not cached, `Some(None)` when the version has
    /// no input schema.
    fn version(&self, id: &str) -> Option<Option<Arc<InputSchema>>> {
        let mut st = self.lock();
        let now = st.tick();
        let entry = st.versions.get_mut(id)?;
        entry.used = now;
        Some(entry.schema.clone())
    }

    /// The version `key` resolved to, unless that is older than the time to live.
    fn name(&self, key: &NameKey, now: Instant) -> Option<String> {
        let mut st = self.lock();
        let tick = st.tick();
        let ttl = self.ttl;
        let entry = st.names.get_mut(key)?;
        if now.saturating_duration_since(entry.resolved_at) >= ttl {
            st.names.remove(key);
            return None;
        }
        entry.used = tick;
        Some(entry.version.clone())
    }

    fn insert_version(&self, id: &str, schema: Option<Arc<InputSchema>>) {
        let mut st = self.lock();
        let used = st.tick();
        make_room(&mut st.versions, id, self.capacity, |e| e.used);
        st.versions
            .insert(id.to_owned(), VersionEntry { schema, used });
    }

    fn insert_name(&self, key: NameKey, version: &str, now: Instant) {
        let mut st = self.lock();
        let used = st.tick();
        make_room(&mut st.names, &key, self.capacity, |e| e.used);
        st.names.insert(
            key,
            NameEntry {
                version: version.to_owned(),
                resolved_at: now,
                used,
            },
        );
    }
}

/// Drops the least recently used entry of `map` when it is full and `key` is not in it, so that
/// inserting `key` keeps it within `capacity`.
fn make_room<K, Q, V>(map: &mut HashMap<K, V>, key: &Q, capacity: usize, used: impl Fn(&V) -> u64)
where
    K: std::borrow::Borrow<Q> + Clone + Eq + std::hash::Hash,
    Q: Eq + std::hash::Hash + ?Sized,
{
    if map.contains_key(key) || map.len() < capacity {
        return;
    }
    let oldest = map
        .iter()
        .min_by_key(|(_, v)| used(v))
        .map(|(k, _)| k.clone());
    if let Some(oldest) = oldest {
        map.remove::<K>(&oldest);
    }
}

/// Where the schema of a create's input is read from (see the
/// [module documentation](self#where-the-schema-comes-from)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SchemaSource {
    /// The latest version of the model `owner/name`: `GET /v1/models/{owner}/{name}`.
    Model {
        /// The model's owner.
        owner: String,
        /// The model's name.
        name: String,
    },
    /// A version of a known model: `GET /v1/models/{owner}/{name}/versions/{id}`.
    Version {
        /// The model's owner.
        owner: String,
        /// The model's name.
        name: String,
        /// The version id.
        id: String,
    },
    /// A version id without its model: no schema can be fetched.
    BareVersion(String),
    /// The current release of a deployment: `GET /v1/deployments/{owner}/{name}`, then its
    /// version.
    Deployment {
        /// The deployment's owner.
        owner: String,
        /// The deployment's name.
        name: String,
    },
}

impl SchemaSource {
    /// Where the schema of `create` comes from: its target, and for a version the model it
    /// belongs to when known ([`CreatePrediction::version_of`]).
    pub fn of(create: &CreatePrediction) -> SchemaSource {
        match &create.target {
            Target::Model { owner, name } => SchemaSource::Model {
                owner: owner.clone(),
                name: name.clone(),
            },
            Target::Deployment { owner, name } => SchemaSource::Deployment {
                owner: owner.clone(),
                name: name.clone(),
            },
            Target::Version(id) => match create.version_of.as_deref().and_then(split_model) {
                Some((owner, name)) => SchemaSource::Version {
                    owner: owner.to_owned(),
                    name: name.to_owned(),
                    id: id.clone(),
                },
                None => SchemaSource::BareVersion(id.clone()),
            },
        }
    }
}

/// `owner/name`, split; `None` unless both parts are non-empty and there is no other `/`.
fn split_model(s: &str) -> Option<(&str, &str)> {
    let (owner, name) = s.split_once('/')?;
    (!owner.is_empty() && !name.is_empty() && !name.contains('/')).then_some((owner, name))
}

impl fmt::Display for SchemaSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaSource::Model { owner, name } => write!(f, "{owner}/{name}"),
            SchemaSource::Version { owner, name, id } => write!(f, "{owner}/{name}:{id}"),
            SchemaSource::BareVersion(id) => f.write_str(id),
            SchemaSource::Deployment { owner, name } => write!(f, "deployment {owner}/{name}"),
        }
    }
}

/// A flow whose first request is a create, and which can say what it is about to create: a
/// [`Run`], or a [`Call`] of a [`CreatePrediction`]. [`Validated`] wraps such flows.
pub trait CreateFlow: Flow {
    /// The create this flow sends first. [`Validated`] asks before the flow runs; once the
    /// create was sent, the answer may be `None`.
    fn pending_create(&self) -> Option<&CreatePrediction>;
}

impl CreateFlow for Call<CreatePrediction> {
    fn pending_create(&self) -> Option<&CreatePrediction> {
        Some(self.endpoint())
    }
}

impl CreateFlow for Run {
    fn pending_create(&self) -> Option<&CreatePrediction> {
        self.create()
    }
}

/// A schema lookup in progress.
#[derive(Debug)]
enum Lookup {
    Model(Box<Call<GetModel>>),
    /// The version, and the deployment that resolved to it (to remember once it is known).
    Version(Box<Call<GetModelVersion>>, Option<NameKey>),
    Deployment(Box<Call<GetDeployment>>),
}

/// What a lookup found.
enum Found {
    Model(Box<Model>),
    Version(Box<ModelVersion>, Option<NameKey>),
    Deployment(Box<Deployment>),
}

/// A step of a lookup (which only sends, sleeps and ends) as a step of any flow.
fn relay<Y, O, T, U>(
    step: Step<Infallible, T>,
    done: impl FnOnce(T) -> U,
) -> Result<Step<Y, O>, U> {
    match step {
        Step::Send(out) => Ok(Step::Send(out)),
        Step::Receive => Ok(Step::Receive),
        Step::Sleep { until, reason } => Ok(Step::Sleep { until, reason }),
        Step::Yield(never) => match never {},
        Step::Done(output) => Err(done(output)),
    }
}

impl Lookup {
    fn poll<Y, O>(&mut self, now: Instant) -> Result<Step<Y, O>, Result<Found, Error>> {
        match self {
            Lookup::Model(call) => relay(call.poll(now), |r| r.map(|m| Found::Model(Box::new(m)))),
            Lookup::Version(call, key) => relay(call.poll(now), |r| {
                r.map(|v| Found::Version(Box::new(v), key.take()))
            }),
            Lookup::Deployment(call) => relay(call.poll(now), |r| {
                r.map(|d| Found::Deployment(Box::new(d)))
            }),
        }
    }

    fn handle_response(&mut self, response: Response<Vec<u8>>, now: Instant) {
        match self {
            Lookup::Model(call) => call.handle_response(response, now),
            Lookup::Version(call, _) => call.handle_response(response, now),
            Lookup::Deployment(call) => call.handle_response(response, now),
        }
    }

    fn handle_error(&mut self, error: TransportError, now: Instant) {
        match self {
            Lookup::Model(call) => call.handle_error(error, now),
            Lookup::Version(call, _) => call.handle_error(error, now),
            Lookup::Deployment(call) => call.handle_error(error, now),
        }
    }
}

#[derive(Debug)]
enum Phase {
    /// Nothing done yet: the cache is asked at the first poll.
    Start,
    /// A schema is being fetched.
    Lookup(Lookup),
    /// Validated (or not to be): the inner flow runs.
    Inner,
    /// The input is invalid, or its schema could not be fetched.
    Failed(Option<Error>),
}

/// A create's flow ([`Run`], or a [`Call`] of a [`CreatePrediction`]) that first checks the
/// create's input against its version's schema, and ends with [`Error::Validation`] before
/// sending anything when the input is invalid. See the [module documentation](self).
///
/// The validation is the create's own ([`CreatePrediction::validate`]) or, when it sets none,
/// the one given here; with [`Validation::Off`] the wrapper only runs the inner flow.
#[derive(Debug)]
pub struct Validated<F> {
    cfg: Config,
    retry: RetryPolicy,
    deadline: Option<Instant>,
    cache: Arc<SchemaCache>,
    validation: Validation,
    source: Option<SchemaSource>,
    phase: Phase,
    inner: F,
}

impl<F: CreateFlow> Validated<F> {
    /// `inner`, its create checked first unless `validation` (or the create's own setting) is
    /// [`Validation::Off`]. Schemas are fetched with `cfg` and kept in `cache`. Lookups are
    /// retried with the default [`RetryPolicy`] and have no deadline unless set.
    pub fn new(cfg: Config, inner: F, validation: Validation, cache: Arc<SchemaCache>) -> Self {
        let create = inner.pending_create();
        let validation = create.and_then(|c| c.validation).unwrap_or(validation);
        let source = match validation {
            Validation::Off => None,
            _ => create.map(SchemaSource::of),
        };
        Validated {
            cfg,
            retry: RetryPolicy::default(),
            deadline: None,
            cache,
            validation,
            phase: if source.is_some() {
                Phase::Start
            } else {
                Phase::Inner
            },
            source,
            inner,
        }
    }

    /// Retries the schema lookups with this policy.
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// No schema lookup is sent or retried past this instant (a run's deadline).
    pub fn deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// The validation this flow applies (the create's own, or the one given).
    pub fn validation(&self) -> Validation {
        self.validation
    }

    /// The inner flow.
    pub fn inner(&self) -> &F {
        &self.inner
    }

    fn call<E: crate::Endpoint>(&self, endpoint: E) -> Box<Call<E>> {
        Box::new(Call::with_policy(
            endpoint,
            self.cfg.clone(),
            self.retry.clone(),
            self.deadline,
        ))
    }

    /// The first phase: validate with a cached schema, or fetch it.
    fn start(&self, now: Instant) -> Phase {
        let Some(source) = &self.source else {
            return Phase::Inner;
        };
        match source {
            SchemaSource::Model { owner, name } => {
                let key = NameKey::Model(owner.clone(), name.clone());
                match self.cached(&key, now) {
                    Some(schema) => self.check(schema),
                    None => Phase::Lookup(Lookup::Model(self.call(GetModel::new(owner, name)))),
                }
            }
            SchemaSource::Version { owner, name, id } => match self.cache.version(id) {
                Some(schema) => self.check(schema),
                None => Phase::Lookup(Lookup::Version(
                    self.call(GetModelVersion::new(owner, name, id)),
                    None,
                )),
            },
            SchemaSource::BareVersion(id) => {
                tracing::warn!(
                    version = %id,
                    "replicate: input not validated: the schema of a bare version id cannot be \
                     fetched without its model (name it owner/name:version)"
                );
                Phase::Inner
            }
            SchemaSource::Deployment { owner, name } => {
                let key = NameKey::Deployment(owner.clone(), name.clone());
                match self.cached(&key, now) {
                    Some(schema) => self.check(schema),
                    None => Phase::Lookup(Lookup::Deployment(
                        self.call(GetDeployment::new(owner, name)),
                    )),
                }
            }
        }
    }

    /// The cached schema of the version `key` resolves to.
    fn cached(&self, key: &NameKey, now: Instant) -> Option<Option<Arc<InputSchema>>> {
        let version = self.cache.name(key, now)?;
        self.cache.version(&version)
    }

    /// Keeps what a lookup found, and validates or looks further.
    fn found(&self, found: Found, now: Instant) -> Phase {
        match found {
            Found::Model(model) => {
                let Some(version) = model.latest_version else {
                    tracing::debug!(model = %DisplaySource(&self.source), "replicate: input not validated: the model has no version");
                    return Phase::Inner;
                };
                let schema = self.keep(&version);
                if let Some(SchemaSource::Model { owner, name }) = &self.source {
                    self.cache.insert_name(
                        NameKey::Model(owner.clone(), name.clone()),
                        &version.id,
                        now,
                    );
                }
                self.check(schema)
            }
            Found::Version(version, key) => {
                let schema = self.keep(&version);
                if let Some(key) = key {
                    self.cache.insert_name(key, &version.id, now);
                }
                self.check(schema)
            }
            Found::Deployment(deployment) => {
                let release = deployment.current_release.as_ref();
                let version = release.and_then(|r| r.version.as_deref());
                let model = release
                    .and_then(|r| r.model.as_deref())
                    .and_then(split_model);
                let key = NameKey::Deployment(deployment.owner.clone(), deployment.name.clone());
                let cached = version.and_then(|id| self.cache.version(id));
                match (version, model, cached) {
                    (Some(id), _, Some(schema)) => {
                        self.cache.insert_name(key, id, now);
                        self.check(schema)
                    }
                    (Some(id), Some((owner, name)), None) => Phase::Lookup(Lookup::Version(
                        self.call(GetModelVersion::new(owner, name, id)),
                        Some(key),
                    )),
                    _ => {
                        tracing::debug!(
                            model = %DisplaySource(&self.source),
                            "replicate: input not validated: the deployment's release names no model version"
                        );
                        Phase::Inner
                    }
                }
            }
        }
    }

    /// Parses and caches a version's input schema.
    fn keep(&self, version: &ModelVersion) -> Option<Arc<InputSchema>> {
        let schema = version
            .openapi_schema
            .as_ref()
            .and_then(InputSchema::from_openapi)
            .map(Arc::new);
        tracing::debug!(
            model = %DisplaySource(&self.source),
            version = %version.id,
            has_schema = schema.is_some(),
            "replicate: fetched the version's input schema"
        );
        self.cache.insert_version(&version.id, schema.clone());
        schema
    }

    /// Checks the create's input against `schema`.
    fn check(&self, schema: Option<Arc<InputSchema>>) -> Phase {
        let Some(schema) = schema else {
            tracing::debug!(model = %DisplaySource(&self.source), "replicate: input not validated: the version has no input schema");
            return Phase::Inner;
        };
        let Some(create) = self.inner.pending_create() else {
            return Phase::Inner;
        };
        let Err(problems) = schema.validate_with(&create.input, Mode::Strict) else {
            return Phase::Inner;
        };
        if self.validation == Validation::Strict {
            return Phase::Failed(Some(Error::Validation(problems)));
        }
        let unknown: Vec<&str> = problems
            .iter()
            .filter(|p| p.kind.is_unknown_field())
            .map(|p| p.field.as_str())
            .collect();
        if !unknown.is_empty() {
            tracing::warn!(
                model = %DisplaySource(&self.source),
                fields = ?unknown,
                "replicate: inputs not in the model's schema (sent anyway; the model ignores \
                 them; Validation::Strict refuses them)"
            );
        }
        match schema.validate_with(&create.input, Mode::Lenient) {
            Ok(()) => Phase::Inner,
            Err(problems) => Phase::Failed(Some(Error::Validation(problems))),
        }
    }
}

/// The source, or nothing, for a log line.
struct DisplaySource<'a>(&'a Option<SchemaSource>);

impl fmt::Display for DisplaySource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(source) => source.fmt(f),
            None => Ok(()),
        }
    }
}

impl<F, T> Flow for Validated<F>
where
    F: CreateFlow<Output = Result<T, Error>>,
{
    type Item = F::Item;
    type Output = F::Output;

    fn poll(&mut self, now: Instant) -> Step<F::Item, F::Output> {
        loop {
            self.phase = match &mut self.phase {
                Phase::Inner => return self.inner.poll(now),
                Phase::Failed(error) => {
                    let error = error
                        .take()
                        .unwrap_or(Error::InvalidState("polled after it finished"));
                    return Step::Done(Err(error));
                }
                Phase::Start => self.start(now),
                Phase::Lookup(lookup) => match lookup.poll(now) {
                    Ok(step) => return step,
                    Err(Ok(found)) => self.found(found, now),
                    Err(Err(error)) => Phase::Failed(Some(error)),
                },
            };
        }
    }

    fn handle_response(&mut self, response: Response<Vec<u8>>, now: Instant) {
        match &mut self.phase {
            Phase::Lookup(lookup) => lookup.handle_response(response, now),
            Phase::Inner => self.inner.handle_response(response, now),
            Phase::Start | Phase::Failed(_) => {}
        }
    }

    fn handle_error(&mut self, error: TransportError, now: Instant) {
        match &mut self.phase {
            Phase::Lookup(lookup) => lookup.handle_error(error, now),
            Phase::Inner => self.inner.handle_error(error, now),
            Phase::Start | Phase::Failed(_) => {}
        }
    }

    fn handle_head(&mut self, status: http::StatusCode, headers: &http::HeaderMap, now: Instant) {
        if let Phase::Inner = self.phase {
            self.inner.handle_head(status, headers, now);
        }
    }

    fn handle_chunk(&mut self, chunk: &[u8], now: Instant) {
        if let Phase::Inner = self.phase {
            self.inner.handle_chunk(chunk, now);
        }
    }

    fn handle_chunk_owned(&mut self, chunk: Vec<u8>, now: Instant) {
        if let Phase::Inner = self.phase {
            self.inner.handle_chunk_owned(chunk, now);
        }
    }

    fn handle_end(&mut self, now: Instant) {
        if let Phase::Inner = self.phase {
            self.inner.handle_end(now);
        }
    }

    fn stream_hint(&self) -> Option<&str> {
        match self.phase {
            Phase::Inner => self.inner.stream_hint(),
            _ => None,
        }
    }

    fn wake(&mut self) {
        if let Phase::Inner = self.phase {
            self.inner.wake();
        }
    }

    fn describe(&self) -> FlowInfo {
        self.inner.describe()
    }

    fn prediction_id(&self) -> Option<&str> {
        self.inner.prediction_id()
    }
}
