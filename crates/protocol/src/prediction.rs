//! Predictions: the data types, the status machine, and what a finished prediction means.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::Error;

/// The status of a prediction (or training).
///
/// ```text
/// starting ──► processing ──► succeeded | failed | canceled
///     │                                   ▲
///     └──────────────► aborted, failed, canceled, succeeded
/// ```
///
/// Unknown statuses are kept as [`Status::Unknown`] and treated as non-terminal, so a newer API
/// never breaks an older client.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Status {
    /// Queued or booting.
    Starting,
    /// The model is running.
    Processing,
    /// Finished with an output.
    Succeeded,
    /// The model raised an error.
    Failed,
    /// Canceled by a user or by its `Cancel-After` deadline.
    Canceled,
    /// Its deadline passed before it started; not billed.
    Aborted,
    /// A status this version of the SDK does not know.
    Unknown(String),
}

impl Status {
    /// The wire form, e.g. `"succeeded"`.
    pub fn as_str(&self) -> &str {
        match self {
            Status::Starting => "starting",
            Status::Processing => "processing",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Canceled => "canceled",
            Status::Aborted => "aborted",
            Status::Unknown(s) => s,
        }
    }

    /// Parses the wire form; anything unknown becomes [`Status::Unknown`].
    pub fn parse(s: &str) -> Status {
        match s {
            "starting" => Status::Starting,
            "processing" => Status::Processing,
            "succeeded" => Status::Succeeded,
            "failed" => Status::Failed,
            "canceled" | "cancelled" => Status::Canceled,
            "aborted" => Status::Aborted,
            other => Status::Unknown(other.to_owned()),
        }
    }

    /// Whether no further change will happen.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Status::Succeeded | Status::Failed | Status::Canceled | Status::Aborted
        )
    }

    /// Whether a prediction may go from `self` to `next`. Staying in the same status is legal;
    /// a terminal status never changes; `aborted` only follows `starting`; unknown statuses may go
    /// anywhere and come from anywhere non-terminal.
    pub fn can_transition_to(&self, next: &Status) -> bool {
        if self == next {
            return true;
        }
        match (self, next) {
            (s, _) if s.is_terminal() => false,
            (Status::Unknown(_), _) | (_, Status::Unknown(_)) => true,
            (Status::Starting, _) => true,
            (Status::Processing, Status::Starting | Status::Aborted) => false,
            (Status::Processing, _) => true,
            _ => false,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Status::parse(&s))
    }
}

/// A prediction, with every field the API documents and any other field kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Its id, e.g. `ctdwaehfz1rm80cmd5nsjd8114`.
    pub id: String,
    /// `owner/name` of the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The version id; may be `"hidden"` or an opaque id such as `dp-…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The input it was created with (`{}` once data is removed).
    #[serde(default)]
    pub input: Value,
    /// The output: any JSON. `null` until there is some, or once data is removed.
    #[serde(default)]
    pub output: Value,
    /// Logs so far. List items may omit them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
    /// The error, when failed. Usually a string.
    #[serde(default)]
    pub error: Value,
    /// The status.
    pub status: Status,
    /// When it was created.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// When it started running.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub started_at: Option<OffsetDateTime>,
    /// When it finished.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub completed_at: Option<OffsetDateTime>,
    /// When it will be canceled or aborted (set by `Cancel-After`).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub deadline: Option<OffsetDateTime>,
    /// Related URLs. They name the public hosts even through a proxy: never follow them with the
    /// API token; this crate builds follow-ups from the configured base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<PredictionUrls>,
    /// Timing metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
    /// Whether input and output were removed (about an hour after completion).
    #[serde(default)]
    pub data_removed: bool,
    /// `api` or `web`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The deployment it ran on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// Every field this SDK does not know, kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `urls` object of a prediction.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PredictionUrls {
    /// The API URL of the prediction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub get: Option<String>,
    /// The API URL to cancel it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel: Option<String>,
    /// The server-sent events URL, for models that stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// The web page of the prediction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<String>,
    /// Any other URL.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `metrics` object of a prediction.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Metrics {
    /// Seconds the model ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predict_time: Option<f64>,
    /// Seconds from creation to completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_time: Option<f64>,
    /// Any other metric (e.g. `image_count`), kept as is.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl Prediction {
    /// A prediction known only by its id, status [`Status::Starting`] (e.g. the subject of an
    /// error raised before any of its state was read).
    pub fn with_id(id: impl Into<String>) -> Self {
        Prediction {
            id: id.into(),
            model: None,
            version: None,
            input: Value::Null,
            output: Value::Null,
            logs: None,
            error: Value::Null,
            status: Status::Starting,
            created_at: None,
            started_at: None,
            completed_at: None,
            deadline: None,
            urls: None,
            metrics: None,
            data_removed: false,
            source: None,
            deployment: None,
            extra: Map::new(),
        }
    }

    /// Removes every occurrence of `secret` (the API token) from the text the server wrote:
    /// `logs`, `error`, `output`, `input` and unknown fields ([`crate::text::redact`]).
    pub fn redact(&mut self, secret: &str) {
        if let Some(logs) = &mut self.logs {
            crate::text::redact_in_place(logs, secret);
        }
        for v in [&mut self.error, &mut self.output, &mut self.input] {
            crate::text::redact_value(v, secret);
        }
        for v in self.extra.values_mut() {
            crate::text::redact_value(v, secret);
        }
    }

    /// How far the prediction got, from the last progress bar in its logs (see
    /// [`crate::progress`]); `None` without logs or a bar in them.
    pub fn progress(&self) -> Option<crate::Progress> {
        crate::Progress::from_logs(self.logs.as_deref()?)
    }

    /// The error message, when `error` is a string (or the JSON text of a structured error).
    pub fn error_message(&self) -> Option<&str> {
        match &self.error {
            Value::String(s) => Some(s),
            Value::Null => None,
            _ => Some("structured error (see the prediction's `error` field)"),
        }
    }

    /// The output as a single URL: a string output, or the first string of a list.
    pub fn output_url(&self) -> Option<&str> {
        match &self.output {
            Value::String(s) => Some(s),
            Value::Array(items) => items.iter().find_map(Value::as_str),
            _ => None,
        }
    }

    /// The output as a list of URLs (or `data:` URIs): every string of a list output, or the one
    /// string output. Empty for JSON outputs.
    pub fn output_urls(&self) -> Vec<&str> {
        match &self.output {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// The output as text: a string, or a list of string tokens joined (the shape of language
    /// models). `None` for other outputs.
    pub fn output_text(&self) -> Option<String> {
        match &self.output {
            Value::String(s) => Some(s.clone()),
            Value::Array(items) if items.iter().all(Value::is_string) => {
                Some(items.iter().filter_map(Value::as_str).collect())
            }
            _ => None,
        }
    }

    /// Deserializes the output into your own type.
    pub fn output_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(&self.output).map_err(|e| {
            Error::output(
                crate::OutputErrorKind::InvalidReference,
                format!("unexpected output: {e}"),
            )
        })
    }

    /// What this prediction means to a caller: `Ok(self)` when it succeeded, the matching error
    /// when it failed, was canceled or aborted, and [`Error::NotFinished`] while it runs.
    pub fn into_result(self) -> Result<Prediction, Error> {
        match self.status {
            Status::Succeeded => Ok(self),
            Status::Failed => Err(Error::PredictionFailed(Box::new(self))),
            Status::Canceled => Err(Error::PredictionCanceled(Box::new(self))),
            Status::Aborted => Err(Error::PredictionAborted(Box::new(self))),
            _ => Err(Error::NotFinished {
                status: self.status.clone(),
                id: self.id,
            }),
        }
    }

    /// The stream URL, if the model streams.
    pub fn stream_url(&self) -> Option<&str> {
        self.urls.as_ref()?.stream.as_deref()
    }
}

/// A model reference `owner/name` with an optional `:version`.
///
/// ```
/// use replicate_protocol::ModelRef;
/// let r: ModelRef = "lucataco/flux-schnell-lora:2a6b576a".parse().unwrap();
/// assert_eq!((r.owner.as_str(), r.name.as_str(), r.version.as_deref()), ("lucataco", "flux-schnell-lora", Some("2a6b576a")));
/// assert_eq!(r.to_string(), "lucataco/flux-schnell-lora:2a6b576a");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelRef {
    /// The owner (user or organisation).
    pub owner: String,
    /// The model name.
    pub name: String,
    /// The version id, if pinned.
    pub version: Option<String>,
}

impl ModelRef {
    /// A reference to the latest version of `owner/name`.
    pub fn new(owner: impl Into<String>, name: impl Into<String>) -> Self {
        ModelRef {
            owner: owner.into(),
            name: name.into(),
            version: None,
        }
    }
}

fn valid_part(s: &str) -> bool {
    // "." and ".." would be resolved as dot segments in a URL path.
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.len() <= 256
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl FromStr for ModelRef {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::InvalidInput(format!("model reference {s:?}: {why}"));
        let (path, version) = match s.split_once(':') {
            Some((p, v)) => (p, Some(v)),
            None => (s, None),
        };
        let (owner, name) = path
            .split_once('/')
            .ok_or_else(|| bad("expected owner/name or owner/name:version"))?;
        if !valid_part(owner) || !valid_part(name) {
            return Err(bad(
                "owner and name must be non-empty and use only letters, digits, '-', '_' and '.'",
            ));
        }
        if let Some(v) = version
            && !valid_part(v)
        {
            return Err(bad(
                "the version must be non-empty and use only letters, digits, '-', '_' and '.'",
            ));
        }
        Ok(ModelRef {
            owner: owner.to_owned(),
            name: name.to_owned(),
            version: version.map(str::to_owned),
        })
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)?;
        if let Some(v) = &self.version {
            write!(f, ":{v}")?;
        }
        Ok(())
    }
}

/// Whether a string looks like a bare version id (64 hex digits, or an opaque id such as
/// `dp-4d0bcc010b3049749a251855f12800be`) rather than a model reference.
pub fn is_version_id(s: &str) -> bool {
    valid_part(s) && !s.contains('/')
}
