//! The rest of the API: models, versions, trainings, deployments, collections, hardware,
//! account, files, search and the webhook secret.
//!
//! Every operation of Replicate's OpenAPI document has an [`Endpoint`](crate::Endpoint) here or
//! at the crate root (predictions); [`operations`] lists them all, and a test builds each one and
//! checks it against the document, so coverage cannot silently regress.
//!
//! The conventions are those of the crate root:
//!
//! - every request goes to the configured base URL (a proxy such as
//!   `https://proxy.example/replicate` works), and path segments are percent-encoded;
//! - every list is a [`Paginated`](crate::Paginated) endpoint returning a [`Page`](crate::Page):
//!   only the cursor of the server's `next` URL is kept, never its host;
//! - every response type keeps the fields this SDK does not know in `extra`;
//! - creates ([`CreateModel`], [`CreateDeployment`], [`CreateTraining`], [`CreateFile`]) are
//!   [`RetryClass::CreateOnce`](crate::RetryClass::CreateOnce): never re-sent when their answer
//!   was lost.
//!
//! ```
//! use replicate_protocol::{Config, Endpoint, Paginated, Page};
//! use replicate_protocol::api::{ListModelVersions, ModelVersion};
//!
//! let cfg = Config::new("hk-key").with_base_url("https://proxy.example/replicate").unwrap();
//! let list = ListModelVersions::new("replicate", "hello-world");
//! let req = list.request(&cfg).unwrap();
//! assert_eq!(req.uri(), "https://proxy.example/replicate/v1/models/replicate/hello-world/versions");
//!
//! // The server names the public host in `next`; only its cursor is used.
//! let page: Page<ModelVersion> = Page {
//!     results: vec![],
//!     next: Some("https://api.replicate.com/v1/models/replicate/hello-world/versions?cursor=abc".into()),
//!     previous: None,
//! };
//! let next = list.next_page(&page).unwrap().request(&cfg).unwrap();
//! assert_eq!(
//!     next.uri(),
//!     "https://proxy.example/replicate/v1/models/replicate/hello-world/versions?cursor=abc"
//! );
//! ```

use serde::Serialize;

use crate::Error;
use crate::endpoint::checked_id;

/// Implements [`crate::Paginated`] for a list endpoint with a `cursor: Option<String>` field.
macro_rules! paginated {
    ($ty:ty, $item:ty) => {
        impl $crate::pagination::Paginated for $ty {
            type Item = $item;
            fn with_cursor(&self, cursor: Option<String>) -> Self {
                let mut next = self.clone();
                next.cursor = cursor;
                next
            }
            fn cursor(&self) -> Option<&str> {
                self.cursor.as_deref()
            }
        }
    };
}

pub mod account;
pub mod collections;
pub mod deployments;
pub mod files;
pub mod hardware;
pub mod models;
pub mod predictions;
pub mod search;
pub mod trainings;
pub mod webhooks;

pub use account::{Account, GetAccount};
pub use collections::{Collection, CollectionSummary, GetCollection, ListCollections};
pub use deployments::{
    CreateDeployment, DeleteDeployment, Deployment, DeploymentConfiguration, DeploymentRelease,
    GetDeployment, ListDeployments, UpdateDeployment,
};
pub use files::{
    CreateFile, DeleteFile, DownloadFile, FileChecksums, FileObject, FileUrls, GetFile, ListFiles,
    file_download_url,
};
pub use hardware::{Hardware, ListHardware};
pub use models::{
    CreateModel, DeleteModel, DeleteModelVersion, GetModel, GetModelReadme, GetModelVersion,
    ListModelExamples, ListModelVersions, ListModels, Model, ModelSort, ModelVersion,
    SortDirection, UpdateModel, Visibility,
};
pub use search::{
    Search, SearchCollection, SearchModelMetadata, SearchModelResult, SearchModels, SearchPage,
    SearchResults,
};
pub use trainings::{
    CancelTraining, CreateTraining, GetTraining, ListTrainings, Training, TrainingOutput,
};
pub use webhooks::GetDefaultWebhookSecret;

/// One operation of the API: its method, its path template (with the OpenAPI document's
/// parameter names) and the endpoint that implements it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Operation {
    /// The HTTP method, e.g. `GET` or `QUERY`.
    pub method: &'static str,
    /// The path template under the base URL, e.g. `/v1/models/{model_owner}/{model_name}`.
    pub path: &'static str,
    /// The OpenAPI `operationId` (for operations the document does not list, a name in the same
    /// style).
    pub operation_id: &'static str,
    /// The endpoint type that builds the request, e.g. `api::GetModel`.
    pub endpoint: &'static str,
}

const fn op(
    method: &'static str,
    path: &'static str,
    operation_id: &'static str,
    endpoint: &'static str,
) -> Operation {
    Operation {
        method,
        path,
        operation_id,
        endpoint,
    }
}

static OPERATIONS: &[Operation] = &[
    op("GET", "/v1/account", "account.get", "api::GetAccount"),
    op(
        "GET",
        "/v1/collections",
        "collections.list",
        "api::ListCollections",
    ),
    op(
        "GET",
        "/v1/collections/{collection_slug}",
        "collections.get",
        "api::GetCollection",
    ),
    op(
        "GET",
        "/v1/deployments",
        "deployments.list",
        "api::ListDeployments",
    ),
    op(
        "POST",
        "/v1/deployments",
        "deployments.create",
        "api::CreateDeployment",
    ),
    op(
        "GET",
        "/v1/deployments/{deployment_owner}/{deployment_name}",
        "deployments.get",
        "api::GetDeployment",
    ),
    op(
        "PATCH",
        "/v1/deployments/{deployment_owner}/{deployment_name}",
        "deployments.update",
        "api::UpdateDeployment",
    ),
    op(
        "DELETE",
        "/v1/deployments/{deployment_owner}/{deployment_name}",
        "deployments.delete",
        "api::DeleteDeployment",
    ),
    op(
        "POST",
        "/v1/deployments/{deployment_owner}/{deployment_name}/predictions",
        "deployments.predictions.create",
        "CreatePrediction (Target::Deployment)",
    ),
    op("GET", "/v1/files", "files.list", "api::ListFiles"),
    op("POST", "/v1/files", "files.create", "api::CreateFile"),
    op("GET", "/v1/files/{file_id}", "files.get", "api::GetFile"),
    op(
        "DELETE",
        "/v1/files/{file_id}",
        "files.delete",
        "api::DeleteFile",
    ),
    op(
        "GET",
        "/v1/files/{file_id}/download",
        "files.download",
        "api::DownloadFile",
    ),
    op("GET", "/v1/hardware", "hardware.list", "api::ListHardware"),
    op("GET", "/v1/models", "models.list", "api::ListModels"),
    op("POST", "/v1/models", "models.create", "api::CreateModel"),
    op("QUERY", "/v1/models", "models.search", "api::SearchModels"),
    op(
        "GET",
        "/v1/models/{model_owner}/{model_name}",
        "models.get",
        "api::GetModel",
    ),
    op(
        "PATCH",
        "/v1/models/{model_owner}/{model_name}",
        "models.update",
        "api::UpdateModel",
    ),
    op(
        "DELETE",
        "/v1/models/{model_owner}/{model_name}",
        "models.delete",
        "api::DeleteModel",
    ),
    op(
        "GET",
        "/v1/models/{model_owner}/{model_name}/examples",
        "models.examples.list",
        "api::ListModelExamples",
    ),
    op(
        "POST",
        "/v1/models/{model_owner}/{model_name}/predictions",
        "models.predictions.create",
        "CreatePrediction (Target::Model)",
    ),
    op(
        "GET",
        "/v1/models/{model_owner}/{model_name}/readme",
        "models.readme.get",
        "api::GetModelReadme",
    ),
    op(
        "GET",
        "/v1/models/{model_owner}/{model_name}/versions",
        "models.versions.list",
        "api::ListModelVersions",
    ),
    op(
        "GET",
        "/v1/models/{model_owner}/{model_name}/versions/{version_id}",
        "models.versions.get",
        "api::GetModelVersion",
    ),
    op(
        "DELETE",
        "/v1/models/{model_owner}/{model_name}/versions/{version_id}",
        "models.versions.delete",
        "api::DeleteModelVersion",
    ),
    op(
        "POST",
        "/v1/models/{model_owner}/{model_name}/versions/{version_id}/trainings",
        "trainings.create",
        "api::CreateTraining",
    ),
    op(
        "GET",
        "/v1/predictions",
        "predictions.list",
        "ListPredictions",
    ),
    op(
        "POST",
        "/v1/predictions",
        "predictions.create",
        "CreatePrediction (Target::Version)",
    ),
    op(
        "GET",
        "/v1/predictions/{prediction_id}",
        "predictions.get",
        "GetPrediction",
    ),
    op(
        "POST",
        "/v1/predictions/{prediction_id}/cancel",
        "predictions.cancel",
        "CancelPrediction",
    ),
    op("GET", "/v1/search", "search", "api::Search"),
    op(
        "GET",
        "/v1/trainings",
        "trainings.list",
        "api::ListTrainings",
    ),
    op(
        "GET",
        "/v1/trainings/{training_id}",
        "trainings.get",
        "api::GetTraining",
    ),
    op(
        "POST",
        "/v1/trainings/{training_id}/cancel",
        "trainings.cancel",
        "api::CancelTraining",
    ),
    op(
        "GET",
        "/v1/webhooks/default/secret",
        "webhooks.default.secret.get",
        "api::GetDefaultWebhookSecret",
    ),
];

/// Every operation this crate implements, one entry per method and path.
///
/// It covers the whole OpenAPI document (checked by a test that builds each request), plus
/// `QUERY /v1/models` (model search with a `text/plain` body), which the document omits.
///
/// ```
/// let ops = replicate_protocol::api::operations();
/// assert!(ops.iter().any(|o| o.method == "QUERY" && o.path == "/v1/models"));
/// ```
pub fn operations() -> &'static [Operation] {
    OPERATIONS
}

/// One path segment (an owner, a name, an id): non-empty, not `.` or `..` (which a URL library
/// could resolve away), percent-encoded.
pub(crate) fn segment(value: &str) -> Result<String, Error> {
    if value == "." || value == ".." {
        return Err(Error::InvalidInput(format!(
            "{value:?} cannot be used as a path segment"
        )));
    }
    Ok(checked_id(value)?.to_string())
}

/// A request body and its content type (JSON when `None`), as [`crate::Config::request`] takes
/// it.
pub(crate) type Body = Option<(Vec<u8>, Option<&'static str>)>;

/// A JSON request body.
pub(crate) fn json_body<T: Serialize>(value: &T) -> Result<Body, Error> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| Error::InvalidInput(format!("cannot encode the request body: {e}")))?;
    Ok(Some((bytes, None)))
}

/// Appends `cursor=` to a list path when there is one.
pub(crate) fn with_cursor(mut path: String, cursor: Option<&str>) -> String {
    if let Some(c) = cursor {
        crate::endpoint::push_query(&mut path, "cursor", c);
    }
    path
}

/// Replaces the `Accept` header of a built request.
pub(crate) fn set_accept(req: &mut http::Request<Vec<u8>>, accept: &'static str) {
    req.headers_mut()
        .insert(http::header::ACCEPT, http::HeaderValue::from_static(accept));
}
