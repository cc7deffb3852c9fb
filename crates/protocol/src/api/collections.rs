//! Collections of models: `GET /v1/collections` and `GET /v1/collections/{slug}`.

use http::{Method, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::models::Model;
use super::{segment, with_cursor};
use crate::endpoint::{Endpoint, parse_json};
use crate::pagination::Page;
use crate::{Config, Error};

/// A collection as listed by `GET /v1/collections` (without its models).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionSummary {
    /// The slug, e.g. `super-resolution`.
    pub slug: String,
    /// The name, e.g. `Super resolution`.
    pub name: String,
    /// A short description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Every field this SDK does not know, kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A collection with its models (`GET /v1/collections/{slug}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collection {
    /// The slug, e.g. `super-resolution`.
    pub slug: String,
    /// The name, e.g. `Super resolution`.
    pub name: String,
    /// A short description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The full description, in Markdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_description: Option<String>,
    /// The models of the collection.
    #[serde(default)]
    pub models: Vec<Model>,
    /// Every field this SDK does not know, kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `GET /v1/collections`: every collection, one page at a time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListCollections {
    /// The page cursor (from a previous page's `next`).
    pub cursor: Option<String>,
}

impl ListCollections {
    /// The first page of collections.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Endpoint for ListCollections {
    type Output = Page<CollectionSummary>;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        let path = with_cursor("/collections".to_owned(), self.cursor.as_deref());
        cfg.request(Method::GET, &path, None)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Self::Output, Error> {
        parse_json(&resp)
    }
}

paginated!(ListCollections, CollectionSummary);

/// `GET /v1/collections/{collection_slug}`: a collection and its models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetCollection {
    /// The slug, e.g. `super-resolution`.
    pub slug: String,
}

impl GetCollection {
    /// Gets the collection `slug`.
    pub fn new(slug: impl Into<String>) -> Self {
        GetCollection { slug: slug.into() }
    }
}

impl Endpoint for GetCollection {
    type Output = Collection;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        let path = format!("/collections/{}", segment(&self.slug)?);
        cfg.request(Method::GET, &path, None)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Collection, Error> {
        parse_json(&resp)
    }
}
