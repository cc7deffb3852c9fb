//! Deployments: list, create, get, update and delete.
//!
//! Running a deployment is [`CreatePrediction`](crate::CreatePrediction) with
//! [`Target::Deployment`](crate::Target::Deployment).

use http::{Method, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::account::Account;
use super::{json_body, segment, with_cursor};
use crate::endpoint::{Endpoint, RetryClass, parse_empty, parse_json};
use crate::pagination::Page;
use crate::{Config, Error};

/// A deployment: a model version on dedicated, autoscaled hardware.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// The owner.
    pub owner: String,
    /// The name.
    pub name: String,
    /// The current release (configuration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_release: Option<DeploymentRelease>,
    /// Every field this SDK does not know, kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A release of a deployment: each update makes a new one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRelease {
    /// The release number (1, 2, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u64>,
    /// The model, `owner/name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The model version id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// When the release was made.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_at: Option<OffsetDateTime>,
    /// Who made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<Account>,
    /// Its hardware and scaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<DeploymentConfiguration>,
    /// Every field this SDK does not know, kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Hardware and scaling of a deployment release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentConfiguration {
    /// The hardware SKU, e.g. `gpu-t4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<String>,
    /// The minimum number of instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_instances: Option<u32>,
    /// The maximum number of instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_instances: Option<u32>,
    /// Every field this SDK does not know, kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn deployment_path(owner: &str, name: &str) -> Result<String, Error> {
    Ok(format!(
        "/deployments/{}/{}",
        segment(owner)?,
        segment(name)?
    ))
}

/// `GET /v1/deployments`: your deployments, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListDeployments {
    /// The page cursor (from a previous page's `next`).
    pub cursor: Option<String>,
}

impl ListDeployments {
    /// The first page of deployments.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Endpoint for ListDeployments {
    type Output = Page<Deployment>;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        let path = with_cursor("/deployments".to_owned(), self.cursor.as_deref());
        cfg.request(Method::GET, &path, None)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Page<Deployment>, Error> {
        parse_json(&resp)
    }
}

paginated!(ListDeployments, Deployment);

/// `POST /v1/deployments`: creates a deployment of a model version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreateDeployment {
    /// The deployment's name.
    pub name: String,
    /// The model, `owner/name`.
    pub model: String,
    /// The model version id (64 hex digits).
    pub version: String,
    /// The hardware SKU (see [`super::ListHardware`]).
    pub hardware: String,
    /// The minimum number of instances (the API accepts 0 to 5).
    pub min_instances: u32,
    /// The maximum number of instances (the API accepts 0 to 20).
    pub max_instances: u32,
}

impl CreateDeployment {
    /// A deployment `name` of `model` (`owner/name`) at `version`, on `hardware`, scaling from
    /// `min_instances` to `max_instances`.
    pub fn new(
        name: impl Into<String>,
        model: impl Into<String>,
        version: impl Into<String>,
        hardware: impl Into<String>,
        min_instances: u32,
        max_instances: u32,
    ) -> Self {
        CreateDeployment {
            name: name.into(),
            model: model.into(),
            version: version.into(),
            hardware: hardware.into(),
            min_instances,
            max_instances,
        }
    }
}

impl Endpoint for CreateDeployment {
    type Output = Deployment;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        if self.min_instances > self.max_instances {
            return Err(Error::InvalidInput(format!(
                "min_instances ({}) exceeds max_instances ({})",
                self.min_instances, self.max_instances
            )));
        }
        cfg.request(Method::POST, "/deployments", json_body(self)?)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Deployment, Error> {
        parse_json(&resp)
    }
    fn retry_class(&self) -> RetryClass {
        RetryClass::CreateOnce
    }
}

/// `GET /v1/deployments/{deployment_owner}/{deployment_name}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetDeployment {
    /// The deployment's owner.
    pub owner: String,
    /// The deployment's name.
    pub name: String,
}

impl GetDeployment {
    /// Gets the deployment `owner/name`.
    pub fn new(owner: impl Into<String>, name: impl Into<String>) -> Self {
        GetDeployment {
            owner: owner.into(),
            name: name.into(),
        }
    }
}

impl Endpoint for GetDeployment {
    type Output = Deployment;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        cfg.request(
            Method::GET,
            &deployment_path(&self.owner, &self.name)?,
            None,
        )
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Deployment, Error> {
        parse_json(&resp)
    }
}

/// `PATCH /v1/deployments/{deployment_owner}/{deployment_name}`: changes a deployment, making a
/// new release. Only the fields that are set are sent; at least one must be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdateDeployment {
    /// The deployment's owner.
    #[serde(skip)]
    pub owner: String,
    /// The deployment's name.
    #[serde(skip)]
    pub name: String,
    /// A new model version id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// A new hardware SKU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hardware: Option<String>,
    /// A new minimum number of instances.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_instances: Option<u32>,
    /// A new maximum number of instances.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_instances: Option<u32>,
}

impl UpdateDeployment {
    /// An update of `owner/name` that changes nothing yet.
    pub fn new(owner: impl Into<String>, name: impl Into<String>) -> Self {
        UpdateDeployment {
            owner: owner.into(),
            name: name.into(),
            version: None,
            hardware: None,
            min_instances: None,
            max_instances: None,
        }
    }

    /// Sets the model version.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Sets the hardware.
    pub fn hardware(mut self, hardware: impl Into<String>) -> Self {
        self.hardware = Some(hardware.into());
        self
    }

    /// Sets the minimum number of instances.
    pub fn min_instances(mut self, n: u32) -> Self {
        self.min_instances = Some(n);
        self
    }

    /// Sets the maximum number of instances.
    pub fn max_instances(mut self, n: u32) -> Self {
        self.max_instances = Some(n);
        self
    }
}

impl Endpoint for UpdateDeployment {
    type Output = Deployment;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        let path = deployment_path(&self.owner, &self.name)?;
        if self.version.is_none()
            && self.hardware.is_none()
            && self.min_instances.is_none()
            && self.max_instances.is_none()
        {
            return Err(Error::InvalidInput(
                "a deployment update must set at least one field".to_owned(),
            ));
        }
        if let (Some(min), Some(max)) = (self.min_instances, self.max_instances)
            && min > max
        {
            return Err(Error::InvalidInput(format!(
                "min_instances ({min}) exceeds max_instances ({max})"
            )));
        }
        cfg.request(Method::PATCH, &path, json_body(self)?)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Deployment, Error> {
        parse_json(&resp)
    }
}

/// `DELETE /v1/deployments/{deployment_owner}/{deployment_name}`: deletes a deployment that has
/// been offline and unused for at least 15 minutes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteDeployment {
    /// The deployment's owner.
    pub owner: String,
    /// The deployment's name.
    pub name: String,
}

impl DeleteDeployment {
    /// Deletes the deployment `owner/name`.
    pub fn new(owner: impl Into<String>, name: impl Into<String>) -> Self {
        DeleteDeployment {
            owner: owner.into(),
            name: name.into(),
        }
    }
}

impl Endpoint for DeleteDeployment {
    type Output = ();
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        cfg.request(
            Method::DELETE,
            &deployment_path(&self.owner, &self.name)?,
            None,
        )
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<(), Error> {
        parse_empty(&resp)
    }
}
