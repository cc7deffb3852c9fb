//! One API operation = one [`Endpoint`]: how to build its request and parse its response.

use std::time::Duration;

use http::{Request, Response};
use serde::de::DeserializeOwned;

use crate::config::{encode_query, encode_segment};
use crate::error::ApiError;
use crate::{Config, Error, FlowInfo, Prediction};

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

    /// How long the server may deliberately hold the response (sync mode); the request's
    /// timeout is extended by this much.
    fn server_hold(&self) -> Option<Duration> {
        None
    }

    /// Whether the request body may take long to send (an upload): an idle timeout then applies
    /// instead of a total one.
    fn long_transfer(&self) -> bool {
        false
    }

    /// What a call of this endpoint is about, for its tracing span (see [`crate::trace`]): by
    /// default its type's name.
    fn describe(&self) -> FlowInfo {
        FlowInfo::new(crate::flow::short_type_name::<Self>())
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
    fn long_transfer(&self) -> bool {
        (**self).long_transfer()
    }
    fn describe(&self) -> FlowInfo {
        (**self).describe()
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

/// Appends `key=value` to a query string being built.
pub(crate) fn push_query(path: &mut String, key: &str, value: &str) {
    path.push(if path.contains('?') { '&' } else { '?' });
    path.push_str(key);
    path.push('=');
    path.push_str(&encode_query(value).to_string());
}
