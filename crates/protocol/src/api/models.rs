//! Models, their versions, examples and README: everything under `/v1/models`.
//!
//! Running a model is [`CreatePrediction`](crate::CreatePrediction) with
//! [`Target::Model`](crate::Target::Model); searching is in [`super::search`].

use std::fmt;
use std::str::FromStr;

use http::{Method, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{json_body, segment, set_accept, with_cursor};
use crate::endpoint::{Endpoint, RetryClass, check_status, parse_empty, parse_json};
use crate::pagination::Page;
use crate::{Config, Error, Prediction};

/// A model (`GET /v1/models/{owner}/{name}` and every list of models).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// The user or organization that owns it.
    pub owner: String,
    /// Its name, unique among its owner's models.
    pub name: String,
    /// Its web page, e.g. `https://replicate.com/replicate/hello-world`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `public` or `private`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    /// Its source code on GitHub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github_url: Option<String>,
    /// Its paper.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper_url: Option<String>,
    /// Its license.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_url: Option<String>,
    /// How many times it has run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_count: Option<u64>,
    /// Its cover image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover_image_url: Option<String>,
    /// Its default example: a prediction made with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_example: Option<Prediction>,
    /// Its most recently pushed version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_version: Option<ModelVersion>,
    /// Whether Replicate maintains it (official models run without a version id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_official: Option<bool>,
    /// Every field this SDK does not know, kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Model {
    /// `owner/name`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

/// A version of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    /// The version id (64 hex digits).
    pub id: String,
    /// When it was pushed.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_at: Option<OffsetDateTime>,
    /// The Cog version that built it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cog_version: Option<String>,
    /// The OpenAPI schema of its input and output (`components.schemas.Input` and `Output`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openapi_schema: Option<Value>,
    /// Every field this SDK does not know, kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ModelVersion {
    /// The input schema, `openapi_schema.components.schemas.Input`.
    pub fn input_schema(&self) -> Option<&Value> {
        self.openapi_schema
            .as_ref()?
            .pointer("/components/schemas/Input")
    }

    /// The output schema, `openapi_schema.components.schemas.Output`.
    pub fn output_schema(&self) -> Option<&Value> {
        self.openapi_schema
            .as_ref()?
            .pointer("/components/schemas/Output")
    }
}

/// Who may see and run a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Anyone.
    Public,
    /// Only the owner (and its organization's members).
    Private,
}

impl Visibility {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }
}

impl fmt::Display for Visibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Visibility {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "public" => Ok(Visibility::Public),
            "private" => Ok(Visibility::Private),
            _ => Err(Error::InvalidInput(format!(
                "visibility must be public or private, got {s:?}"
            ))),
        }
    }
}

/// What [`ListModels`] sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelSort {
    /// When the model was created.
    ModelCreatedAt,
    /// When its latest version was created (the server's default).
    LatestVersionCreatedAt,
}

impl ModelSort {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelSort::ModelCreatedAt => "model_created_at",
            ModelSort::LatestVersionCreatedAt => "latest_version_created_at",
        }
    }
}

/// A sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortDirection {
    /// Oldest first.
    Asc,
    /// Newest first (the server's default).
    Desc,
}

impl SortDirection {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            SortDirection::Asc => "asc",
            SortDirection::Desc => "desc",
        }
    }
}

fn model_path(owner: &str, name: &str) -> Result<String, Error> {
    Ok(format!("/models/{}/{}", segment(owner)?, segment(name)?))
}

macro_rules! owner_name_new {
    ($ty:ident, $doc:literal) => {
        impl $ty {
            #[doc = $doc]
            pub fn new(owner: impl Into<String>, name: impl Into<String>) -> Self {
                $ty {
                    owner: owner.into(),
                    name: name.into(),
                }
            }
        }
    };
}

/// `GET /v1/models/{model_owner}/{model_name}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetModel {
    /// The model's owner.
    pub owner: String,
    /// The model's name.
    pub name: String,
}

owner_name_new!(GetModel, "Gets the model `owner/name`.");

impl Endpoint for GetModel {
    type Output = Model;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        cfg.request(Method::GET, &model_path(&self.owner, &self.name)?, None)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Model, Error> {
        parse_json(&resp)
    }
}

/// `GET /v1/models`: public models, one page at a time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListModels {
    /// The page cursor (from a previous page's `next`).
    pub cursor: Option<String>,
    /// `sort_by` (the server's default is [`ModelSort::LatestVersionCreatedAt`]).
    pub sort_by: Option<ModelSort>,
    /// `sort_direction` (the server's default is [`SortDirection::Desc`]).
    pub sort_direction: Option<SortDirection>,
}

impl ListModels {
    /// The first page of public models, in the server's default order.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sorts by `by`, in `direction`.
    pub fn sort(mut self, by: ModelSort, direction: SortDirection) -> Self {
        self.sort_by = Some(by);
        self.sort_direction = Some(direction);
        self
    }
}

impl Endpoint for ListModels {
    type Output = Page<Model>;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        let mut path = with_cursor("/models".to_owned(), self.cursor.as_deref());
        if let Some(by) = self.sort_by {
            crate::endpoint::push_query(&mut path, "sort_by", by.as_str());
        }
        if let Some(dir) = self.sort_direction {
            crate::endpoint::push_query(&mut path, "sort_direction", dir.as_str());
        }
        cfg.request(Method::GET, &path, None)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Page<Model>, Error> {
        parse_json(&resp)
    }
}

paginated!(ListModels, Model);

/// `POST /v1/models`: creates a model (without versions: push one with Cog).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreateModel {
    /// The owner: the user or organization of the API token.
    pub owner: String,
    /// The name, unique among the owner's models.
    pub name: String,
    /// Who may see and run it.
    pub visibility: Visibility,
    /// The hardware SKU it runs on (see [`super::ListHardware`]), e.g. `cpu`.
    pub hardware: String,
    /// A description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its source code on GitHub.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github_url: Option<String>,
    /// Its paper.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paper_url: Option<String>,
    /// Its license.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license_url: Option<String>,
    /// Its cover image (an image URL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cover_image_url: Option<String>,
}

impl CreateModel {
    /// A model `owner/name` with the required fields only.
    pub fn new(
        owner: impl Into<String>,
        name: impl Into<String>,
        visibility: Visibility,
        hardware: impl Into<String>,
    ) -> Self {
        CreateModel {
            owner: owner.into(),
            name: name.into(),
            visibility,
            hardware: hardware.into(),
            description: None,
            github_url: None,
            paper_url: None,
            license_url: None,
            cover_image_url: None,
        }
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the GitHub URL.
    pub fn github_url(mut self, url: impl Into<String>) -> Self {
        self.github_url = Some(url.into());
        self
    }

    /// Sets the paper URL.
    pub fn paper_url(mut self, url: impl Into<String>) -> Self {
        self.paper_url = Some(url.into());
        self
    }

    /// Sets the license URL.
    pub fn license_url(mut self, url: impl Into<String>) -> Self {
        self.license_url = Some(url.into());
        self
    }

    /// Sets the cover image URL.
    pub fn cover_image_url(mut self, url: impl Into<String>) -> Self {
        self.cover_image_url = Some(url.into());
        self
    }
}

impl Endpoint for CreateModel {
    type Output = Model;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        segment(&self.owner)?;
        segment(&self.name)?;
        cfg.request(Method::POST, "/models", json_body(self)?)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Model, Error> {
        parse_json(&resp)
    }
    fn retry_class(&self) -> RetryClass {
        RetryClass::CreateOnce
    }
}

/// `PATCH /v1/models/{model_owner}/{model_name}`: updates a model's metadata. Only the fields
/// that are set are sent; at least one must be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdateModel {
    /// The model's owner.
    #[serde(skip)]
    pub owner: String,
    /// The model's name.
    #[serde(skip)]
    pub name: String,
    /// A new description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A new README (Markdown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readme: Option<String>,
    /// A new GitHub URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github_url: Option<String>,
    /// A new paper URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paper_url: Option<String>,
    /// A new weights URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights_url: Option<String>,
    /// A new license URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license_url: Option<String>,
}

impl UpdateModel {
    /// An update of `owner/name` that changes nothing yet.
    pub fn new(owner: impl Into<String>, name: impl Into<String>) -> Self {
        UpdateModel {
            owner: owner.into(),
            name: name.into(),
            description: None,
            readme: None,
            github_url: None,
            paper_url: None,
            weights_url: None,
            license_url: None,
        }
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the README.
    pub fn readme(mut self, readme: impl Into<String>) -> Self {
        self.readme = Some(readme.into());
        self
    }

    /// Sets the GitHub URL.
    pub fn github_url(mut self, url: impl Into<String>) -> Self {
        self.github_url = Some(url.into());
        self
    }

    /// Sets the paper URL.
    pub fn paper_url(mut self, url: impl Into<String>) -> Self {
        self.paper_url = Some(url.into());
        self
    }

    /// Sets the weights URL.
    pub fn weights_url(mut self, url: impl Into<String>) -> Self {
        self.weights_url = Some(url.into());
        self
    }

    /// Sets the license URL.
    pub fn license_url(mut self, url: impl Into<String>) -> Self {
        self.license_url = Some(url.into());
        self
    }

    fn is_empty(&self) -> bool {
        [
            &self.description,
            &self.readme,
            &self.github_url,
            &self.paper_url,
            &self.weights_url,
            &self.license_url,
        ]
        .iter()
        .all(|f| f.is_none())
    }
}

impl Endpoint for UpdateModel {
    type Output = Model;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        let path = model_path(&self.owner, &self.name)?;
        if self.is_empty() {
            return Err(Error::InvalidInput(
                "a model update must set at least one field".to_owned(),
            ));
        }
        cfg.request(Method::PATCH, &path, json_body(self)?)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Model, Error> {
        parse_json(&resp)
    }
}

/// `DELETE /v1/models/{model_owner}/{model_name}`: deletes a private model without versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteModel {
    /// The model's owner.
    pub owner: String,
    /// The model's name.
    pub name: String,
}

owner_name_new!(DeleteModel, "Deletes the model `owner/name`.");

impl Endpoint for DeleteModel {
    type Output = ();
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        cfg.request(Method::DELETE, &model_path(&self.owner, &self.name)?, None)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<(), Error> {
        parse_empty(&resp)
    }
}

/// `GET /v1/models/{model_owner}/{model_name}/versions`: a model's versions, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListModelVersions {
    /// The model's owner.
    pub owner: String,
    /// The model's name.
    pub name: String,
    /// The page cursor (from a previous page's `next`).
    pub cursor: Option<String>,
}

impl ListModelVersions {
    /// The first page of the versions of `owner/name`.
    pub fn new(owner: impl Into<String>, name: impl Into<String>) -> Self {
        ListModelVersions {
            owner: owner.into(),
            name: name.into(),
            cursor: None,
        }
    }
}

impl Endpoint for ListModelVersions {
    type Output = Page<ModelVersion>;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        let path = with_cursor(
            format!("{}/versions", model_path(&self.owner, &self.name)?),
            self.cursor.as_deref(),
        );
        cfg.request(Method::GET, &path, None)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Page<ModelVersion>, Error> {
        parse_json(&resp)
    }
}

paginated!(ListModelVersions, ModelVersion);

/// `GET /v1/models/{model_owner}/{model_name}/versions/{version_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetModelVersion {
    /// The model's owner.
    pub owner: String,
    /// The model's name.
    pub name: String,
    /// The version id.
    pub version: String,
}

impl GetModelVersion {
    /// Gets the version `version` of `owner/name`.
    pub fn new(
        owner: impl Into<String>,
        name: impl Into<String>,
        version: impl Into<String>,
    ) -> Self {
        GetModelVersion {
            owner: owner.into(),
            name: name.into(),
            version: version.into(),
        }
    }
}

impl Endpoint for GetModelVersion {
    type Output = ModelVersion;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        let path = format!(
            "{}/versions/{}",
            model_path(&self.owner, &self.name)?,
            segment(&self.version)?
        );
        cfg.request(Method::GET, &path, None)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<ModelVersion, Error> {
        parse_json(&resp)
    }
}

/// `DELETE /v1/models/{model_owner}/{model_name}/versions/{version_id}`: asks for a version's
/// deletion (answered 202; it may take a few minutes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteModelVersion {
    /// The model's owner.
    pub owner: String,
    /// The model's name.
    pub name: String,
    /// The version id.
    pub version: String,
}

impl DeleteModelVersion {
    /// Deletes the version `version` of `owner/name`.
    pub fn new(
        owner: impl Into<String>,
        name: impl Into<String>,
        version: impl Into<String>,
    ) -> Self {
        DeleteModelVersion {
            owner: owner.into(),
            name: name.into(),
            version: version.into(),
        }
    }
}

impl Endpoint for DeleteModelVersion {
    type Output = ();
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        let path = format!(
            "{}/versions/{}",
            model_path(&self.owner, &self.name)?,
            segment(&self.version)?
        );
        cfg.request(Method::DELETE, &path, None)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<(), Error> {
        parse_empty(&resp)
    }
}

/// `GET /v1/models/{model_owner}/{model_name}/examples`: the example predictions its author
/// saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListModelExamples {
    /// The model's owner.
    pub owner: String,
    /// The model's name.
    pub name: String,
    /// The page cursor (from a previous page's `next`).
    pub cursor: Option<String>,
}

impl ListModelExamples {
    /// The first page of the examples of `owner/name`.
    pub fn new(owner: impl Into<String>, name: impl Into<String>) -> Self {
        ListModelExamples {
            owner: owner.into(),
            name: name.into(),
            cursor: None,
        }
    }
}

impl Endpoint for ListModelExamples {
    type Output = Page<Prediction>;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        let path = with_cursor(
            format!("{}/examples", model_path(&self.owner, &self.name)?),
            self.cursor.as_deref(),
        );
        cfg.request(Method::GET, &path, None)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Page<Prediction>, Error> {
        parse_json(&resp)
    }
}

paginated!(ListModelExamples, Prediction);

/// `GET /v1/models/{model_owner}/{model_name}/readme`: the README, as Markdown text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetModelReadme {
    /// The model's owner.
    pub owner: String,
    /// The model's name.
    pub name: String,
}

owner_name_new!(GetModelReadme, "Gets the README of `owner/name`.");

impl Endpoint for GetModelReadme {
    type Output = String;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        let path = format!("{}/readme", model_path(&self.owner, &self.name)?);
        let mut req = cfg.request(Method::GET, &path, None)?;
        set_accept(&mut req, "text/markdown, text/plain, */*;q=0.1");
        Ok(req)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<String, Error> {
        check_status(&resp)?;
        let body = resp.body().as_ref();
        String::from_utf8(body.to_vec()).map_err(|e| Error::decode(resp.status().as_u16(), e, body))
    }
}

// Here rather than in `schema`, which knows nothing of the API's objects.
impl crate::schema::VersionSchema {
    /// The schemas of `version` (all `None` when it has no `openapi_schema`).
    pub fn of(version: &ModelVersion) -> Self {
        version
            .openapi_schema
            .as_ref()
            .map(Self::parse)
            .unwrap_or_default()
    }
}
