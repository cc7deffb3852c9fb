//! The prediction endpoints: creating one (targets, options, and the request that carries them),
//! getting, canceling and listing them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use http::Method;
use serde::Serialize;
use serde_json::{Map, Value};

use http::{Request, Response};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::encode_segment;
use crate::endpoint::{Endpoint, RetryClass, checked_id, parse_json, push_query};
use crate::pagination::{Page, Paginated};
use crate::validate::Validation;
use crate::{Config, Error, ModelRef, Prediction, is_version_id};

/// What a create runs against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The latest version of an official model: `POST /v1/models/{owner}/{name}/predictions`.
    Model {
        /// Model owner.
        owner: String,
        /// Model name.
        name: String,
    },
    /// A version id: `POST /v1/predictions` with `"version"` (the bare id).
    Version(String),
    /// A deployment: `POST /v1/deployments/{owner}/{name}/predictions`.
    Deployment {
        /// Deployment owner.
        owner: String,
        /// Deployment name.
        name: String,
    },
}

impl Target {
    /// Parses what a user types: `owner/name` (a model), `owner/name:version` (that version, sent
    /// as the bare id), or a bare version id (64 hex digits or an opaque id such as `dp-…`).
    pub fn parse(s: &str) -> Result<Target, Error> {
        if s.contains('/') {
            Ok(ModelRef::from_str(s)?.into())
        } else if is_version_id(s) {
            Ok(Target::Version(s.to_owned()))
        } else {
            Err(Error::InvalidInput(format!(
                "{s:?} is neither owner/name[:version] nor a version id"
            )))
        }
    }

    /// A deployment target from `owner/name`.
    pub fn deployment(s: &str) -> Result<Target, Error> {
        let r = ModelRef::from_str(s)?;
        if r.version.is_some() {
            return Err(Error::InvalidInput(format!(
                "deployment {s:?}: a deployment has no version"
            )));
        }
        Ok(Target::Deployment {
            owner: r.owner,
            name: r.name,
        })
    }
}

/// `owner/name`, the version id, or `deployment owner/name`.
impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Model { owner, name } => write!(f, "{owner}/{name}"),
            Target::Version(id) => f.write_str(id),
            Target::Deployment { owner, name } => write!(f, "deployment {owner}/{name}"),
        }
    }
}

impl From<ModelRef> for Target {
    fn from(r: ModelRef) -> Target {
        match r.version {
            Some(v) => Target::Version(v),
            None => Target::Model {
                owner: r.owner,
                name: r.name,
            },
        }
    }
}

impl FromStr for Target {
    type Err = Error;
    fn from_str(s: &str) -> Result<Target, Error> {
        Target::parse(s)
    }
}

/// Events a webhook can be sent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookEvent {
    /// The prediction started.
    Start,
    /// New output (at most every 500 ms).
    Output,
    /// New logs (at most every 500 ms).
    Logs,
    /// It reached a terminal status.
    Completed,
}

/// Sync mode: how long the server should hold the create response (`Prefer: wait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncWait {
    /// `Prefer: wait`: the server's maximum (60 s).
    Max,
    /// `Prefer: wait=N`, N in 1..=60.
    Seconds(u8),
}

impl SyncWait {
    /// `Prefer: wait=N`; N must be in 1..=60.
    pub fn seconds(n: u64) -> Result<SyncWait, Error> {
        match n {
            1..=60 => Ok(SyncWait::Seconds(n as u8)),
            _ => Err(Error::InvalidInput(format!(
                "sync wait must be 1 to 60 seconds, got {n}"
            ))),
        }
    }

    /// How long the server may hold the response.
    pub fn duration(self) -> Duration {
        match self {
            SyncWait::Max => Duration::from_secs(60),
            SyncWait::Seconds(n) => Duration::from_secs(n.into()),
        }
    }

    fn header(self) -> String {
        match self {
            SyncWait::Max => "wait".to_owned(),
            SyncWait::Seconds(n) => format!("wait={n}"),
        }
    }
}

/// A `Cancel-After` duration: at least 5 seconds, written like `30s`, `5m`, `1h30m45s`.
///
/// ```
/// use replicate_protocol::CancelAfter;
/// let d: CancelAfter = "1h30m".parse().unwrap();
/// assert_eq!(d.duration().as_secs(), 5400);
/// assert_eq!(d.to_string(), "1h30m");
/// assert!("4s".parse::<CancelAfter>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CancelAfter(Duration);

impl CancelAfter {
    /// The shortest deadline the API accepts.
    pub const MIN: Duration = Duration::from_secs(5);

    /// Validates a duration (whole seconds are sent; at least 5 s).
    pub fn new(d: Duration) -> Result<CancelAfter, Error> {
        if d < Self::MIN {
            return Err(Error::InvalidInput(format!(
                "Cancel-After must be at least 5s, got {}ms",
                d.as_millis()
            )));
        }
        Ok(CancelAfter(Duration::from_secs(d.as_secs())))
    }

    /// The duration.
    pub fn duration(self) -> Duration {
        self.0
    }
}

impl FromStr for CancelAfter {
    type Err = Error;
    fn from_str(s: &str) -> Result<CancelAfter, Error> {
        let bad = || {
            Error::InvalidInput(format!(
                "invalid duration {s:?}: use e.g. 30s, 5m, 1h30m or a number of seconds"
            ))
        };
        let s = s.trim();
        if s.is_empty() {
            return Err(bad());
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return CancelAfter::new(Duration::from_secs(s.parse().map_err(|_| bad())?));
        }
        let mut total: u64 = 0;
        let mut num: Option<u64> = None;
        let mut last_unit = u8::MAX;
        for b in s.bytes() {
            match b {
                b'0'..=b'9' => {
                    let n = num.unwrap_or(0);
                    num = Some(
                        n.checked_mul(10)
                            .and_then(|n| n.checked_add(u64::from(b - b'0')))
                            .ok_or_else(bad)?,
                    );
                }
                b'h' | b'm' | b's' => {
                    let rank = match b {
                        b'h' => 2,
                        b'm' => 1,
                        _ => 0,
                    };
                    if rank >= last_unit {
                        return Err(bad());
                    }
                    last_unit = rank;
                    let n = num.take().ok_or_else(bad)?;
                    let secs = n
                        .checked_mul([1, 60, 3600][rank as usize])
                        .ok_or_else(bad)?;
                    total = total.checked_add(secs).ok_or_else(bad)?;
                }
                _ => return Err(bad()),
            }
        }
        if num.is_some() {
            return Err(bad());
        }
        CancelAfter::new(Duration::from_secs(total))
    }
}

impl fmt::Display for CancelAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 || secs == 0 {
            write!(f, "{s}s")?;
        }
        Ok(())
    }
}

/// A create-prediction request: target, input and options.
///
/// ```
/// use replicate_protocol::{Config, CreatePrediction, SyncWait, Endpoint};
/// use serde_json::json;
/// let cfg = Config::new("hk-key").with_base_url("https://proxy.example/replicate").unwrap();
/// let create = CreatePrediction::new("black-forest-labs/flux-schnell".parse().unwrap())
///     .input(json!({"prompt": "an astronaut"}))
///     .sync(SyncWait::seconds(10).unwrap());
/// let req = create.request(&cfg).unwrap();
/// assert_eq!(req.uri(), "https://proxy.example/replicate/v1/models/black-forest-labs/flux-schnell/predictions");
/// assert_eq!(req.headers()["prefer"], "wait=10");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CreatePrediction {
    /// What to run.
    pub target: Target,
    /// The model's input (a JSON object).
    pub input: Value,
    /// A URL to receive webhooks.
    pub webhook: Option<String>,
    /// Which events the webhook gets (all when empty).
    pub webhook_events_filter: Vec<WebhookEvent>,
    /// Ask for a stream URL (deprecated by the API: models that stream always have one).
    pub stream: Option<bool>,
    /// Sync mode (`Prefer: wait`).
    pub sync: Option<SyncWait>,
    /// `Cancel-After`.
    pub cancel_after: Option<CancelAfter>,
    /// The model (`owner/name`) a [`Target::Version`] is a version of, when known: where local
    /// validation fetches the version's schema ([`crate::validate`]). Never sent.
    /// [`CreatePrediction::parse`] keeps it from `owner/name:version`.
    pub version_of: Option<String>,
    /// Local validation of this create's input, in place of the client's
    /// ([`ClientBuilder::validate_inputs`]); `None` keeps the client's. Never sent.
    ///
    /// [`ClientBuilder::validate_inputs`]: crate::settings::ClientSettings::validate_inputs
    pub validation: Option<Validation>,
}

#[derive(Serialize)]
struct CreateBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    input: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    webhook_events_filter: &'a [WebhookEvent],
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
}

impl CreatePrediction {
    /// A create with an empty input and no options.
    pub fn new(target: Target) -> Self {
        CreatePrediction {
            target,
            input: Value::Object(Map::new()),
            webhook: None,
            webhook_events_filter: Vec::new(),
            stream: None,
            sync: None,
            cancel_after: None,
            version_of: None,
            validation: None,
        }
    }

    /// A create of what a user types: `owner/name` (a model), `owner/name:version` (that
    /// version, the model kept in [`version_of`](Self::version_of) for local validation), or a
    /// bare version id (see [`Target::parse`]).
    ///
    /// ```
    /// use replicate_protocol::{CreatePrediction, Target};
    /// let create = CreatePrediction::parse("acme/model:5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa")?;
    /// assert!(matches!(create.target, Target::Version(_)));
    /// assert_eq!(create.version_of.as_deref(), Some("acme/model"));
    /// # Ok::<(), replicate_protocol::Error>(())
    /// ```
    pub fn parse(model: &str) -> Result<Self, Error> {
        let target = Target::parse(model)?;
        let version_of = match (&target, model.split_once(':')) {
            (Target::Version(_), Some((name, _))) if name.contains('/') => Some(name.to_owned()),
            _ => None,
        };
        Ok(CreatePrediction {
            version_of,
            ..CreatePrediction::new(target)
        })
    }

    /// Names the model (`owner/name`) a [`Target::Version`] is a version of, so that local
    /// validation can fetch the version's schema ([`crate::validate`]). Nothing is sent.
    pub fn version_of(mut self, model: impl Into<String>) -> Self {
        self.version_of = Some(model.into());
        self
    }

    /// Validates this create's input locally before it is sent, in place of the client's
    /// setting ([`crate::validate`]): [`Validation::Off`] sends it unchecked whatever the
    /// client says, [`Validation::Warn`] or [`Validation::Strict`] checks it even when the
    /// client does not.
    pub fn validate(mut self, validation: Validation) -> Self {
        self.validation = Some(validation);
        self
    }

    /// Sets the whole input (must be a JSON object; checked when the request is built).
    pub fn input(mut self, input: Value) -> Self {
        self.input = input;
        self
    }

    /// Sets one input field.
    pub fn input_field(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        insert_field(&mut self.input, key.into(), value.into());
        self
    }

    /// Sends webhooks to `url` for `events` (every event when empty).
    pub fn webhook(mut self, url: impl Into<String>, events: &[WebhookEvent]) -> Self {
        self.webhook = Some(url.into());
        self.webhook_events_filter = events.to_vec();
        self
    }

    /// Asks for a stream URL.
    pub fn stream(mut self, stream: bool) -> Self {
        self.stream = Some(stream);
        self
    }

    /// Sync mode: the server holds the response up to this long.
    pub fn sync(mut self, wait: SyncWait) -> Self {
        self.sync = Some(wait);
        self
    }

    /// `Cancel-After`: the server cancels (or aborts) the prediction after this long.
    pub fn cancel_after(mut self, after: CancelAfter) -> Self {
        self.cancel_after = Some(after);
        self
    }

    /// How long the HTTP exchange may legitimately take: the sync wait when there is one. Adapters
    /// use at least this plus a margin as the read timeout.
    pub fn server_hold(&self) -> Option<Duration> {
        self.sync.map(SyncWait::duration)
    }
}

impl Endpoint for CreatePrediction {
    type Output = Prediction;

    fn describe(&self) -> crate::FlowInfo {
        crate::FlowInfo::new("create").model(self.target.to_string())
    }

    fn request(&self, cfg: &Config) -> Result<http::Request<Vec<u8>>, Error> {
        if !self.input.is_object() {
            return Err(Error::InvalidInput(
                "the input must be a JSON object".to_owned(),
            ));
        }
        let (path, version) = match &self.target {
            Target::Model { owner, name } => (
                format!(
                    "/models/{}/{}/predictions",
                    encode_segment(owner),
                    encode_segment(name)
                ),
                None,
            ),
            Target::Version(v) => ("/predictions".to_owned(), Some(v.as_str())),
            Target::Deployment { owner, name } => (
                format!(
                    "/deployments/{}/{}/predictions",
                    encode_segment(owner),
                    encode_segment(name)
                ),
                None,
            ),
        };
        let body = serde_json::to_vec(&CreateBody {
            version,
            input: &self.input,
            webhook: self.webhook.as_deref(),
            webhook_events_filter: &self.webhook_events_filter,
            stream: self.stream,
        })
        .map_err(|e| Error::InvalidInput(format!("cannot encode the input: {e}")))?;
        let mut req = cfg.request(Method::POST, &path, Some((body, None)))?;
        let headers = req.headers_mut();
        if let Some(wait) = self.sync {
            headers.insert(
                "prefer",
                http::HeaderValue::try_from(wait.header())
                    .map_err(|_| Error::InvalidState("prefer header"))?,
            );
        }
        if let Some(after) = self.cancel_after {
            headers.insert(
                "cancel-after",
                http::HeaderValue::try_from(after.to_string())
                    .map_err(|_| Error::InvalidState("cancel-after header"))?,
            );
        }
        Ok(req)
    }

    fn parse<B: AsRef<[u8]>>(&self, resp: http::Response<B>) -> Result<Prediction, Error> {
        parse_json(&resp)
    }

    fn retry_class(&self) -> RetryClass {
        RetryClass::CreateOnce
    }

    fn server_hold(&self) -> Option<Duration> {
        CreatePrediction::server_hold(self)
    }
}

/// Sets `key` in an input object, replacing a non-object input by an object first.
pub(crate) fn insert_field(input: &mut Value, key: String, value: Value) {
    if !input.is_object() {
        *input = Value::Object(Map::new());
    }
    if let Value::Object(map) = input {
        map.insert(key, value);
    }
}

/// `GET /v1/predictions/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetPrediction {
    /// The prediction id.
    pub id: String,
}

impl GetPrediction {
    /// Gets a prediction by id.
    pub fn new(id: impl Into<String>) -> Self {
        GetPrediction { id: id.into() }
    }
}

impl Endpoint for GetPrediction {
    type Output = Prediction;
    fn describe(&self) -> crate::FlowInfo {
        crate::FlowInfo::new("get").prediction(&self.id)
    }
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        let path = format!("/predictions/{}", checked_id(&self.id)?);
        cfg.request(Method::GET, &path, None)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Prediction, Error> {
        parse_json(&resp)
    }
}

/// `POST /v1/predictions/{id}/cancel`. Canceling twice is harmless, so it is retried like a GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelPrediction {
    /// The prediction id.
    pub id: String,
}

impl CancelPrediction {
    /// Cancels a prediction by id.
    pub fn new(id: impl Into<String>) -> Self {
        CancelPrediction { id: id.into() }
    }
}

impl Endpoint for CancelPrediction {
    type Output = Prediction;
    fn describe(&self) -> crate::FlowInfo {
        crate::FlowInfo::new("cancel").prediction(&self.id)
    }
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        let path = format!("/predictions/{}/cancel", checked_id(&self.id)?);
        cfg.request(Method::POST, &path, None)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Prediction, Error> {
        parse_json(&resp)
    }
}

/// `GET /v1/predictions`: your predictions, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListPredictions {
    /// The page cursor (from a previous page's `next`).
    pub cursor: Option<String>,
    /// Only predictions created at or after this time.
    pub created_after: Option<OffsetDateTime>,
    /// Only predictions created before this time.
    pub created_before: Option<OffsetDateTime>,
}

impl ListPredictions {
    /// The first page of every prediction.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Endpoint for ListPredictions {
    type Output = Page<Prediction>;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        let mut path = "/predictions".to_owned();
        if let Some(c) = &self.cursor {
            push_query(&mut path, "cursor", c);
        }
        for (key, t) in [
            ("created_after", self.created_after),
            ("created_before", self.created_before),
        ] {
            if let Some(t) = t {
                let s = t
                    .format(&Rfc3339)
                    .map_err(|e| Error::InvalidInput(format!("{key}: {e}")))?;
                push_query(&mut path, key, &s);
            }
        }
        cfg.request(Method::GET, &path, None)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Page<Prediction>, Error> {
        parse_json(&resp)
    }
}

impl Paginated for ListPredictions {
    type Item = Prediction;
    fn with_cursor(&self, cursor: Option<String>) -> Self {
        ListPredictions {
            cursor,
            ..self.clone()
        }
    }
    fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }
}
