//! Searching: `QUERY /v1/models` (models, paginated) and `GET /v1/search` (models,
//! collections and docs; beta).

use http::{Method, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::models::Model;
use super::with_cursor;
use crate::endpoint::{Endpoint, parse_json, push_query};
use crate::pagination::Page;
use crate::{Config, Error};

/// `QUERY /v1/models`: public models matching a text, one page at a time.
///
/// The request uses the HTTP method `QUERY` (a safe method with a body) and sends the search
/// text as a `text/plain` body; further pages repeat it with the cursor.
///
/// ```
/// use replicate_protocol::{Config, Endpoint};
/// use replicate_protocol::api::SearchModels;
///
/// let req = SearchModels::new("upscaler").request(&Config::new("r8_x")).unwrap();
/// assert_eq!(req.method().as_str(), "QUERY");
/// assert_eq!(req.headers()["content-type"], "text/plain");
/// assert_eq!(req.body(), b"upscaler");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchModels {
    /// The search text.
    pub query: String,
    /// The page cursor (from a previous page's `next`).
    pub cursor: Option<String>,
}

impl SearchModels {
    /// The first page of models matching `query`.
    pub fn new(query: impl Into<String>) -> Self {
        SearchModels {
            query: query.into(),
            cursor: None,
        }
    }

    /// The `QUERY` method.
    pub fn method() -> Method {
        Method::from_bytes(b"QUERY").expect("QUERY is a valid method token")
    }
}

impl Endpoint for SearchModels {
    type Output = Page<Model>;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        if self.query.trim().is_empty() {
            return Err(Error::InvalidInput(
                "the search text must not be empty".to_owned(),
            ));
        }
        let path = with_cursor("/models".to_owned(), self.cursor.as_deref());
        cfg.request(
            Self::method(),
            &path,
            Some((self.query.clone().into_bytes(), Some("text/plain"))),
        )
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Page<Model>, Error> {
        parse_json(&resp)
    }
}

paginated!(SearchModels, Model);

/// `GET /v1/search?query=&limit=`: models, collections and documentation pages matching a text
/// (beta). Not paginated: `limit` caps the number of models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// The search text.
    pub query: String,
    /// At most this many models, 1 to 50 (the server's default is 20).
    pub limit: Option<u32>,
}

impl Search {
    /// Searches for `query`.
    pub fn new(query: impl Into<String>) -> Self {
        Search {
            query: query.into(),
            limit: None,
        }
    }

    /// Returns at most `limit` models (1 to 50; checked when the request is built).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }
}

impl Endpoint for Search {
    type Output = SearchResults;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        if self.query.trim().is_empty() {
            return Err(Error::InvalidInput(
                "the search text must not be empty".to_owned(),
            ));
        }
        let mut path = "/search".to_owned();
        push_query(&mut path, "query", &self.query);
        if let Some(limit) = self.limit {
            if !(1..=50).contains(&limit) {
                return Err(Error::InvalidInput(format!(
                    "the search limit must be 1 to 50, got {limit}"
                )));
            }
            push_query(&mut path, "limit", &limit.to_string());
        }
        cfg.request(Method::GET, &path, None)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<SearchResults, Error> {
        parse_json(&resp)
    }
}

/// The answer of [`Search`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResults {
    /// The search text the server evaluated.
    #[serde(default)]
    pub query: String,
    /// Matching models, each with search metadata.
    #[serde(default)]
    pub models: Vec<SearchModelResult>,
    /// Matching collections.
    #[serde(default)]
    pub collections: Vec<SearchCollection>,
    /// Matching documentation pages.
    #[serde(default)]
    pub pages: Vec<SearchPage>,
    /// Every field this SDK does not know, kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A model found by [`Search`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchModelResult {
    /// The model.
    pub model: Model,
    /// Why it matched.
    #[serde(default)]
    pub metadata: SearchModelMetadata,
    /// Every field this SDK does not know, kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Search metadata of a model.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SearchModelMetadata {
    /// A longer, generated description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_description: Option<String>,
    /// The relevance score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Descriptive tags, e.g. `text-to-image`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Every field this SDK does not know, kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A collection found by [`Search`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchCollection {
    /// The slug, e.g. `image-editing`.
    pub slug: String,
    /// The name.
    pub name: String,
    /// A description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its models, as `owner/name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// Every field this SDK does not know, kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A documentation page found by [`Search`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchPage {
    /// The page title.
    pub name: String,
    /// Its path on replicate.com, e.g. `/docs/guides/image-editing`.
    pub href: String,
    /// Every field this SDK does not know, kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
