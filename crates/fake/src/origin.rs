//! The fake's two origins.

use std::fmt;

/// Which of the fake's two origins a request arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// The API origin (`base_url`), serving `/v1/...` and `{prefix}/v1/...`.
    Api,
    /// The files and streams origin (`files_base_url`, `stream_base_url`), like
    /// `replicate.delivery` and `stream.replicate.com`.
    Files,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Api => "api",
            Origin::Files => "files",
        })
    }
}
