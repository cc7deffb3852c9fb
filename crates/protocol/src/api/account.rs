//! `GET /v1/account`: who the token belongs to.

use http::{Method, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::endpoint::{Endpoint, parse_json};
use crate::{Config, Error};

/// A user or organization: the owner of the token (`GET /v1/account`), or the creator of a
/// deployment release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// `user` or `organization`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The username, e.g. `acme`.
    pub username: String,
    /// The display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The GitHub URL of the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github_url: Option<String>,
    /// The avatar URL of the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    /// Every field this SDK does not know, kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Account {
    /// Whether this is an organization rather than a user.
    pub fn is_organization(&self) -> bool {
        self.type_ == "organization"
    }
}

/// `GET /v1/account`: the user or organization the API token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GetAccount;

impl GetAccount {
    /// Gets the authenticated account.
    pub fn new() -> Self {
        GetAccount
    }
}

impl Endpoint for GetAccount {
    type Output = Account;
    fn request(&self, cfg: &Config) -> Result<Request<Vec<u8>>, Error> {
        cfg.request(Method::GET, "/account", None)
    }
    fn parse<B: AsRef<[u8]>>(&self, resp: Response<B>) -> Result<Account, Error> {
        parse_json(&resp)
    }
}
