//! One API operation = one [`Endpoint`]: how to build its request and parse its response.

use std::time::Duration;

use http::{Method, Request, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::{encode_query, encode_segment};
use crate::error::ApiError;
use crate::{Config, Error, Prediction};

/// How a request may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// Sending it twice has the same effect as once (GET, DELETE, cancel): retried after 429, 5xx
    /// and transport errors.
    Idempotent,
    /// A create: sent again only when the server certainly did not act on it (a 429, or a
    /// connection that was never established). A lost answer becomes
    /// [`Error::CreateOutcomeUnknown`].
    CreateOnce,
}

/// A single API operation.
///
/// Adapters execute any endpoint with one generic function (see [`crate::Call`]); there is no
/// per-endpoint code in a client.
pub trait Endpoint {
    /// What a successful response parses into.
    type Output;

    /// Builds the request against the configured base URL.
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error>;

    /// Parses a response (any status: non-success statuses become [`Error::Api`]).
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Self::Output, Error>;

    /// How this request may be retried. Idempotent unless overridden.
    fn retry_class(&self) -> RetryClass {
        RetryClass::Idempotent
    }

    /// How long the server may deliberately hold the response (sync mode); adapters extend their
    /// read timeout by this much.
    fn server_hold(&self) -> Option<Duration> {
        None
    }
}

impl<E: Endpoint + ?Sized> Endpoint for &E {
    type Output = E::Output;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        (**self).request(cfg)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Self::Output, Error> {
        (**self).parse(resp)
    }
    fn retry_class(&self) -> RetryClass {
        (**self).retry_class()
    }
    fn server_hold(&self) -> Option<Duration> {
        (**self).server_hold()
    }
}

/// Turns a non-success response into [`Error::Api`]; `Ok(())` for 2xx.
pub fn check_status<B: AsRef<[u8]>>(resp: &Response<B>) -> Result<(), Error> {
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(Error::Api(Box::new(ApiError::from_response(
            resp.status(),
            resp.headers(),
            resp.body().as_ref(),
        ))))
    }
}

/// Parses a JSON success body into `T`, or the error the response stands for.
pub fn parse_json<T: DeserializeOwned, B: AsRef<[u8]>>(resp: &Response<B>) -> Result<T, Error> {
    check_status(resp)?;
    let body = resp.body().as_ref();
    serde_json::from_slice(body).map_err(|e| Error::decode(resp.status().as_u16(), e, body))
}

/// Parses an empty success (204 and friends).
pub fn parse_empty<B: AsRef<[u8]>>(resp: &Response<B>) -> Result<(), Error> {
    check_status(resp)
}

/// Parses a prediction response (`GET /v1/predictions/{id}`, a create, a cancel).
pub fn parse_prediction<B: AsRef<[u8]>>(resp: &Response<B>) -> Result<Prediction, Error> {
    parse_json(resp)
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
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        let path = format!("/predictions/{}/cancel", checked_id(&self.id)?);
        cfg.request(Method::POST, &path, None)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Prediction, Error> {
        parse_json(&resp)
    }
}

/// An id used as a path segment: non-empty, percent-encoded.
pub(crate) fn checked_id(id: &str) -> Result<impl std::fmt::Display + '_, Error> {
    if id.is_empty() {
        return Err(Error::InvalidInput("an id must not be empty".to_owned()));
    }
    // Percent-encoding leaves "." and "..", which a URL parser would resolve as dot segments.
    if id == "." || id == ".." {
        return Err(Error::InvalidInput(format!("invalid id {id:?}")));
    }
    Ok(encode_segment(id))
}

/// One page of a list: `{"previous": url|null, "next": url|null, "results": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items, newest first.
    pub results: Vec<T>,
    /// The absolute URL of the next page, as the server wrote it. Never requested as is: see
    /// [`Page::next_cursor`].
    #[serde(default)]
    pub next: Option<String>,
    /// The absolute URL of the previous page, as the server wrote it.
    #[serde(default)]
    pub previous: Option<String>,
}

impl<T> Page<T> {
    /// The opaque cursor of the next page, taken from the `cursor` query parameter of `next`.
    /// Only the cursor is kept, so the next request goes to the configured base URL (a proxy),
    /// not to the host written in the body.
    pub fn next_cursor(&self) -> Option<String> {
        self.next.as_deref().and_then(cursor_of)
    }

    /// The cursor of the previous page.
    pub fn previous_cursor(&self) -> Option<String> {
        self.previous.as_deref().and_then(cursor_of)
    }
}

/// Extracts and percent-decodes the `cursor` query parameter of a URL.
pub fn cursor_of(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == "cursor" && !v.is_empty()).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// A list endpoint that can be asked for another page by cursor.
pub trait Paginated: Endpoint<Output = Page<Self::Item>> + Sized {
    /// The item type.
    type Item;

    /// The same list, at another cursor.
    fn with_cursor(&self, cursor: Option<String>) -> Self;

    /// The cursor this request asks for.
    fn cursor(&self) -> Option<&str>;

    /// The request for the page after `page`, or `None` when it was the last. A page whose next
    /// cursor equals the current one ends the listing rather than looping forever.
    fn next_page(&self, page: &Page<Self::Item>) -> Option<Self> {
        let next = page.next_cursor()?;
        if self.cursor() == Some(next.as_str()) {
            return None;
        }
        Some(self.with_cursor(Some(next)))
    }
}

/// Appends `key=value` to a query string being built.
pub(crate) fn push_query(path: &mut String, key: &str, value: &str) {
    path.push(if path.contains('?') { '&' } else { '?' });
    path.push_str(key);
    path.push('=');
    path.push_str(&encode_query(value).to_string());
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
