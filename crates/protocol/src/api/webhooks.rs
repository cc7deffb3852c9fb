//! `GET /v1/webhooks/default/secret`: the key that signs webhook deliveries.

use http::{Method, Request, Response};

use crate::endpoint::{Endpoint, check_status};
use crate::webhook::{WebhookSecret, parse_default_secret};
use crate::{Config, Error};

/// `GET /v1/webhooks/default/secret`: the signing secret of the default webhook, ready for
/// [`crate::webhook::Verifier`].
///
/// A body that is not `{"key": "whsec_…"}` becomes [`Error::Decode`] whose excerpt is empty: the
/// body holds the secret, so no part of it is ever copied into an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GetDefaultWebhookSecret;

impl GetDefaultWebhookSecret {
    /// Gets the default webhook's signing secret.
    pub fn new() -> Self {
        GetDefaultWebhookSecret
    }
}

impl Endpoint for GetDefaultWebhookSecret {
    type Output = WebhookSecret;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        cfg.request(Method::GET, "/webhooks/default/secret", None)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<WebhookSecret, Error> {
        check_status(&resp)?;
        parse_default_secret(resp.body().as_ref()).map_err(|e| Error::Decode {
            status: resp.status().as_u16(),
            reason: e.to_string(),
            excerpt: String::new(),
        })
    }
}
