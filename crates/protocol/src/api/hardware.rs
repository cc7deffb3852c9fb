//! `GET /v1/hardware`: the hardware a model or deployment can run on.

use http::{Method, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::endpoint::{Endpoint, parse_json};
use crate::{Config, Error};

/// A hardware SKU, e.g. `{"name": "Nvidia T4 GPU", "sku": "gpu-t4"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hardware {
    /// The SKU to pass as `hardware` when creating a model or deployment, e.g. `gpu-t4`.
    pub sku: String,
    /// A human-readable name, e.g. `Nvidia T4 GPU`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Every field this SDK does not know, kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `GET /v1/hardware`: every available hardware SKU.
///
/// The answer is a bare JSON array, not a page: this list is not
/// [`Paginated`](crate::Paginated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListHardware;

impl ListHardware {
    /// Lists the hardware.
    pub fn new() -> Self {
        ListHardware
    }
}

impl Endpoint for ListHardware {
    type Output = Vec<Hardware>;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        cfg.request(Method::GET, "/hardware", None)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Vec<Hardware>, Error> {
        parse_json(&resp)
    }
}
