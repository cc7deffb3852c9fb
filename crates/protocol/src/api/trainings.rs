//! Trainings: create one on a model version, get, list and cancel.
//!
//! Waiting for a training is [`Wait::new(..).for_training()`](crate::Wait::for_training): the
//! same machine as for predictions, polling `/v1/trainings/{id}`.

use http::{Method, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{json_body, segment, with_cursor};
use crate::endpoint::{Endpoint, RetryClass, parse_json};
use crate::pagination::Page;
use crate::{Config, Error, ModelRef, Prediction, WebhookEvent};

/// A training.
///
/// Trainings share the prediction object's shape (`id`, `model`, `version`, `input`, `output`,
/// `logs`, `error`, `status`, timestamps, `urls`, `metrics`) and its status machine
/// (`starting → processing → succeeded | failed | canceled | aborted`), so they are the same
/// type: every helper of [`Prediction`] applies, and the wait machine is reused with
/// [`Wait::for_training`](crate::Wait::for_training). A succeeded training's output is a
/// [`TrainingOutput`]: read it with `training.output_as::<TrainingOutput>()`. Fields a training
/// has and a prediction lacks (such as `destination`) are kept in `extra`.
pub type Training = Prediction;

/// The output of a succeeded training: the new version and its weights.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TrainingOutput {
    /// The id of the version the training created (at its destination), possibly as
    /// `owner/name:id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The URL of the trained weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<String>,
    /// Every field this SDK does not know, kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `POST /v1/models/{model_owner}/{model_name}/versions/{version_id}/trainings`: trains a model
/// version; the result is pushed as a new version of `destination`.
///
/// A create: never re-sent once its answer may have been lost
/// ([`RetryClass::CreateOnce`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CreateTraining {
    /// The trained model's owner.
    pub owner: String,
    /// The trained model's name.
    pub name: String,
    /// The trained version's id.
    pub version: String,
    /// Where the new version goes: an existing model `owner/name` of yours.
    pub destination: String,
    /// The input of the model's `train()` (a JSON object).
    pub input: Value,
    /// A URL to receive webhooks.
    pub webhook: Option<String>,
    /// Which events the webhook gets (all when empty).
    pub webhook_events_filter: Vec<WebhookEvent>,
}

#[derive(Serialize)]
struct CreateTrainingBody<'a> {
    destination: &'a str,
    input: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    webhook_events_filter: &'a [WebhookEvent],
}

impl CreateTraining {
    /// Trains version `version` of `owner/name` into `destination` (`owner/name`), with an empty
    /// input.
    pub fn new(
        owner: impl Into<String>,
        name: impl Into<String>,
        version: impl Into<String>,
        destination: impl Into<String>,
    ) -> Self {
        CreateTraining {
            owner: owner.into(),
            name: name.into(),
            version: version.into(),
            destination: destination.into(),
            input: Value::Object(Map::new()),
            webhook: None,
            webhook_events_filter: Vec::new(),
        }
    }

    /// Trains `model`, which must name a version (`owner/name:version`), into `destination`.
    pub fn for_version(model: &ModelRef, destination: impl Into<String>) -> Result<Self, Error> {
        let version = model.version.as_deref().ok_or_else(|| {
            Error::InvalidInput(format!(
                "training {model}: a training needs a version (owner/name:version)"
            ))
        })?;
        Ok(Self::new(&model.owner, &model.name, version, destination))
    }

    /// Sets the whole input (must be a JSON object; checked when the request is built).
    pub fn input(mut self, input: Value) -> Self {
        self.input = input;
        self
    }

    /// Sets one input field.
    pub fn input_field(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        crate::api::predictions::insert_field(&mut self.input, key.into(), value.into());
        self
    }

    /// Sends webhooks to `url` for `events` (every event when empty).
    pub fn webhook(mut self, url: impl Into<String>, events: &[WebhookEvent]) -> Self {
        self.webhook = Some(url.into());
        self.webhook_events_filter = events.to_vec();
        self
    }
}

impl Endpoint for CreateTraining {
    type Output = Training;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        if !self.input.is_object() {
            return Err(Error::InvalidInput(
                "the training input must be a JSON object".to_owned(),
            ));
        }
        let destination: ModelRef = self.destination.parse()?;
        if destination.version.is_some() {
            return Err(Error::InvalidInput(format!(
                "training destination {:?}: expected owner/name, without a version",
                self.destination
            )));
        }
        let path = format!(
            "/models/{}/{}/versions/{}/trainings",
            segment(&self.owner)?,
            segment(&self.name)?,
            segment(&self.version)?
        );
        let body = json_body(&CreateTrainingBody {
            destination: &self.destination,
            input: &self.input,
            webhook: self.webhook.as_deref(),
            webhook_events_filter: &self.webhook_events_filter,
        })?;
        cfg.request(Method::POST, &path, body)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Training, Error> {
        parse_json(&resp)
    }
    fn retry_class(&self) -> RetryClass {
        RetryClass::CreateOnce
    }
}

/// `GET /v1/trainings/{training_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetTraining {
    /// The training id.
    pub id: String,
}

impl GetTraining {
    /// Gets a training by id.
    pub fn new(id: impl Into<String>) -> Self {
        GetTraining { id: id.into() }
    }
}

impl Endpoint for GetTraining {
    type Output = Training;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        let path = format!("/trainings/{}", segment(&self.id)?);
        cfg.request(Method::GET, &path, None)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Training, Error> {
        parse_json(&resp)
    }
}

/// `POST /v1/trainings/{training_id}/cancel`. Canceling twice is harmless, so it is retried like
/// a GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelTraining {
    /// The training id.
    pub id: String,
}

impl CancelTraining {
    /// Cancels a training by id.
    pub fn new(id: impl Into<String>) -> Self {
        CancelTraining { id: id.into() }
    }
}

impl Endpoint for CancelTraining {
    type Output = Training;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        let path = format!("/trainings/{}/cancel", segment(&self.id)?);
        cfg.request(Method::POST, &path, None)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Training, Error> {
        parse_json(&resp)
    }
}

/// `GET /v1/trainings`: your trainings, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListTrainings {
    /// The page cursor (from a previous page's `next`).
    pub cursor: Option<String>,
}

impl ListTrainings {
    /// The first page of trainings.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Endpoint for ListTrainings {
    type Output = Page<Training>;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        let path = with_cursor("/trainings".to_owned(), self.cursor.as_deref());
        cfg.request(Method::GET, &path, None)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Page<Training>, Error> {
        parse_json(&resp)
    }
}

paginated!(ListTrainings, Training);
