//! Where requests go and how they authenticate: the base URL, the API token and the user agent.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use http::{Method, Request, Uri};

use crate::Error;

/// The public Replicate API, used when no other base URL is configured.
pub const DEFAULT_BASE_URL: &str = "https://api.replicate.com";

/// The `User-Agent` sent by default: `replicate-rust/{crate version}`.
pub const DEFAULT_USER_AGENT: &str = concat!("replicate-rust/", env!("CARGO_PKG_VERSION"));

/// An API token (`r8_...` for Replicate, `hk-...` for some proxies, or any opaque string).
///
/// Its `Debug` and `Display` never show the secret; use [`ApiToken::expose`] where the raw value is
/// truly needed.
///
/// ```
/// use replicate_protocol::ApiToken;
/// let token = ApiToken::new("r8_secret");
/// assert_eq!(format!("{token:?}"), "ApiToken(***)");
/// assert_eq!(token.expose(), "r8_secret");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(Arc<str>);

impl ApiToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        ApiToken(Arc::from(token.into()))
    }

    /// The raw token. Only the request builders of this crate should need it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(***)")
    }
}

impl fmt::Display for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A normalised API base URL: scheme, authority and an optional path prefix, without a trailing
/// slash and without the `/v1` that every request adds.
///
/// `https://api.replicate.com`, `https://api.replicate.com/v1/`, and `https://proxy.example/replicate`
/// are all accepted; requests then go to `{base}/v1/...`.
///
/// ```
/// use replicate_protocol::BaseUrl;
/// let base = BaseUrl::parse("https://proxy.example/replicate/v1/").unwrap();
/// assert_eq!(base.as_str(), "https://proxy.example/replicate");
/// assert_eq!(base.api_url("/predictions"), "https://proxy.example/replicate/v1/predictions");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl {
    full: String,
    origin_len: usize,
}

impl BaseUrl {
    /// Parses and normalises a base URL. Only `http` and `https` are accepted, with a host, and
    /// without query or fragment. The URL must be ASCII: percent-encode anything else.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let shown = redact_userinfo(input);
        let bad = |why: &str| Error::InvalidBaseUrl(format!("{shown:?}: {why}"));
        let trimmed = input.trim();
        // `Uri` keeps non-ASCII bytes of the path raw; a trailing one that is Unicode whitespace
        // (U+0085, U+00A0...) would then be trimmed off when the normalised base is parsed again.
        if !trimmed.is_ascii() {
            return Err(bad("non-ASCII characters must be percent-encoded"));
        }
        if trimmed.contains('#') {
            return Err(bad("a fragment is not allowed"));
        }
        let uri: Uri = trimmed.parse().map_err(|_| bad("not a valid URL"))?;
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => "https",
            Some(s) if s.eq_ignore_ascii_case("http") => "http",
            Some(_) => return Err(bad("the scheme must be http or https")),
            None => return Err(bad("the URL must start with http:// or https://")),
        };
        let authority = uri.authority().ok_or_else(|| bad("the URL has no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad(
                "credentials in the URL are not allowed; pass a token instead",
            ));
        }
        if uri.query().is_some() {
            return Err(bad("a query string is not allowed"));
        }
        let mut path = uri.path().trim_end_matches('/');
        if let Some(stripped) = path.strip_suffix("/v1") {
            path = stripped.trim_end_matches('/');
        }
        let origin = format!("{scheme}://{}", authority.as_str().to_ascii_lowercase());
        let origin_len = origin.len();
        Ok(BaseUrl {
            full: format!("{origin}{path}"),
            origin_len,
        })
    }

    /// The normalised base, e.g. `https://proxy.example/replicate`.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The scheme and authority, e.g. `https://proxy.example`.
    pub fn origin(&self) -> &str {
        &self.full[..self.origin_len]
    }

    /// The path prefix before `/v1`, e.g. `/replicate` (empty for the public API).
    pub fn prefix(&self) -> &str {
        &self.full[self.origin_len..]
    }

    /// The absolute URL of an API path: `api_url("/predictions")` is `{base}/v1/predictions`.
    pub fn api_url(&self, path_and_query: &str) -> String {
        let mut url = String::with_capacity(self.full.len() + 3 + path_and_query.len());
        url.push_str(&self.full);
        url.push_str("/v1");
        url.push_str(path_and_query);
        url
    }

    /// Whether `url` is on the same origin (scheme, host and port) as this base. Only such URLs may
    /// receive the API token.
    pub fn is_same_origin(&self, url: &str) -> bool {
        let Ok(uri) = url.parse::<Uri>() else {
            return false;
        };
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return false;
        };
        let origin = self.origin();
        let Some((base_scheme, base_authority)) = origin.split_once("://") else {
            return false;
        };
        scheme.eq_ignore_ascii_case(base_scheme)
            && normalise_authority(scheme, authority.as_str())
                == normalise_authority(base_scheme, base_authority)
    }
}

/// The input with any `user:password@` replaced by `***@`, so that errors never echo credentials.
fn redact_userinfo(input: &str) -> std::borrow::Cow<'_, str> {
    let start = input.find("://").map_or(0, |i| i + 3);
    let rest = &input[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{}***{}", &input[..start], &rest[at..]).into(),
        None => input.into(),
    }
}

fn normalise_authority(scheme: &str, authority: &str) -> String {
    let lower = authority.to_ascii_lowercase();
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        ":443"
    } else {
        ":80"
    };
    match lower.strip_suffix(default_port) {
        Some(stripped) => stripped.to_owned(),
        None => lower,
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl std::str::FromStr for BaseUrl {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        BaseUrl::parse(s)
    }
}

/// Everything a request builder needs: base URL, token and user agent.
///
/// Cheap to clone (one reference count). `Debug` shows the base URL and user agent, never the token.
///
/// ```
/// use replicate_protocol::Config;
/// let cfg = Config::new("hk-secret").with_base_url("https://proxy.example/replicate").unwrap();
/// assert_eq!(cfg.base_url().as_str(), "https://proxy.example/replicate");
/// assert!(!format!("{cfg:?}").contains("hk-secret"));
/// ```
#[derive(Clone)]
pub struct Config {
    inner: Arc<ConfigInner>,
}

struct ConfigInner {
    base: BaseUrl,
    token: ApiToken,
    auth_header: HeaderValue,
    user_agent: HeaderValue,
    limits: Limits,
}

/// How long one exchange may take and how large an API answer may be: what the flows put in
/// every [`Outgoing`](crate::Outgoing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// One API exchange as a whole (a sync-mode create gets its hold on top); for streams,
    /// downloads and uploads, how long they may go without progress (default 30 s).
    pub timeout: Duration,
    /// The most bytes an API answer may have (default 32 MiB).
    pub max_response_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(30),
            max_response_bytes: 32 * 1024 * 1024,
        }
    }
}

impl Config {
    /// A configuration for the public API (`https://api.replicate.com`) with the given token.
    ///
    /// A token that cannot be an HTTP header value (control characters, non-ASCII) is accepted
    /// here but every request built from it fails with [`Error::InvalidToken`].
    pub fn new(token: impl Into<String>) -> Self {
        let token = ApiToken::new(token);
        let base = BaseUrl::parse(DEFAULT_BASE_URL).expect("the default base URL is valid");
        Self::from_parts(
            base,
            token,
            HeaderValue::from_static(DEFAULT_USER_AGENT),
            Limits::default(),
        )
    }

    fn from_parts(base: BaseUrl, token: ApiToken, user_agent: HeaderValue, limits: Limits) -> Self {
        // `HeaderValue` accepts tabs and non-ASCII bytes; a token must be printable ASCII.
        let printable = !token.expose().trim().is_empty()
            && token.expose().bytes().all(|b| (b' '..=b'~').contains(&b));
        let auth_header = match HeaderValue::try_from(format!("Bearer {}", token.expose())) {
            Ok(mut v) if printable => {
                v.set_sensitive(true);
                v
            }
            // An empty value marks an invalid token; `request` turns it into Error::InvalidToken.
            _ => HeaderValue::from_static(""),
        };
        Config {
            inner: Arc::new(ConfigInner {
                base,
                token,
                auth_header,
                user_agent,
                limits,
            }),
        }
    }

    /// The same configuration with another base URL (see [`BaseUrl::parse`]).
    pub fn with_base_url(&self, base_url: &str) -> Result<Self, Error> {
        let base = BaseUrl::parse(base_url)?;
        Ok(Self::from_parts(
            base,
            self.inner.token.clone(),
            self.inner.user_agent.clone(),
            self.inner.limits,
        ))
    }

    /// The same configuration with another `User-Agent`.
    pub fn with_user_agent(&self, user_agent: &str) -> Result<Self, Error> {
        let ua = HeaderValue::try_from(user_agent)
            .map_err(|_| Error::InvalidInput(format!("invalid user agent {user_agent:?}")))?;
        Ok(Self::from_parts(
            self.inner.base.clone(),
            self.inner.token.clone(),
            ua,
            self.inner.limits,
        ))
    }

    /// The same configuration with another token.
    pub fn with_token(&self, token: impl Into<String>) -> Self {
        Self::from_parts(
            self.inner.base.clone(),
            ApiToken::new(token),
            self.inner.user_agent.clone(),
            self.inner.limits,
        )
    }

    /// The same configuration with other limits.
    pub fn with_limits(&self, limits: Limits) -> Self {
        Self::from_parts(
            self.inner.base.clone(),
            self.inner.token.clone(),
            self.inner.user_agent.clone(),
            limits,
        )
    }

    /// The timeout and body cap of API exchanges.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// The API base URL.
    pub fn base_url(&self) -> &BaseUrl {
        &self.inner.base
    }

    /// The API token.
    pub fn token(&self) -> &ApiToken {
        &self.inner.token
    }

    /// The `User-Agent` header value.
    pub fn user_agent(&self) -> &str {
        self.inner.user_agent.to_str().unwrap_or(DEFAULT_USER_AGENT)
    }

    /// Builds an authenticated API request to `{base}/v1{path_and_query}`.
    ///
    /// With a body, `Content-Type` is `content_type` (JSON when `None`). The `Authorization` header
    /// is marked sensitive.
    pub fn request(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<(Vec<u8>, Option<&str>)>,
    ) -> Result<Request<Vec<u8>>, Error> {
        if self.inner.auth_header.is_empty() {
            return Err(Error::InvalidToken);
        }
        let url = self.inner.base.api_url(path_and_query);
        let mut builder = Request::builder()
            .method(method)
            .uri(url)
            .header(AUTHORIZATION, self.inner.auth_header.clone())
            .header(USER_AGENT, self.inner.user_agent.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        let body = match body {
            Some((bytes, content_type)) => {
                let ct = content_type.unwrap_or("application/json");
                builder = builder.header(
                    CONTENT_TYPE,
                    HeaderValue::try_from(ct)
                        .map_err(|_| Error::InvalidInput(format!("invalid content type {ct:?}")))?,
                );
                bytes
            }
            None => Vec::new(),
        };
        builder
            .body(body)
            .map_err(|e| Error::InvalidInput(format!("cannot build request: {e}")))
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("base_url", &self.inner.base.as_str())
            .field("token", &self.inner.token)
            .field("user_agent", &self.user_agent())
            .finish()
    }
}

/// `Bearer {token}`, marked sensitive.
pub(crate) fn bearer(cfg: &Config) -> Result<HeaderValue, Error> {
    let mut value = HeaderValue::try_from(format!("Bearer {}", cfg.token().expose()))
        .map_err(|_| Error::InvalidToken)?;
    value.set_sensitive(true);
    Ok(value)
}

/// Checks that a URL is absolute `http`/`https` with a host and without credentials.
pub(crate) fn check_url(url: &str) -> Result<Uri, Error> {
    let bad = |why: &str| Error::InvalidInput(format!("URL {url:?}: {why}"));
    let uri: Uri = url.parse().map_err(|_| bad("not a valid URL"))?;
    match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") => {}
        _ => return Err(bad("only http and https URLs are supported")),
    }
    let authority = uri.authority().ok_or_else(|| bad("the URL has no host"))?;
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return Err(bad("credentials in the URL are not allowed"));
    }
    Ok(uri)
}

/// A URL as it may be logged: scheme, host, port and path, without the query (download links may
/// be signed), the fragment or any userinfo. `<invalid URL>` when it does not parse.
///
/// ```
/// use replicate_protocol::config::loggable_url;
/// assert_eq!(
///     loggable_url("https://user:pw@h.example:8443/x/out.png?sig=SECRET#f"),
///     "https://h.example:8443/x/out.png"
/// );
/// ```
pub fn loggable_url(url: &str) -> String {
    match url.parse::<Uri>() {
        Ok(uri) => loggable_uri(&uri),
        Err(_) => "<invalid URL>".to_owned(),
    }
}

/// [`loggable_url`] of a parsed URI.
pub fn loggable_uri(uri: &Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("");
    let host = uri.host().unwrap_or("");
    match uri.port_u16() {
        Some(port) => format!("{scheme}://{host}:{port}{}", uri.path()),
        None => format!("{scheme}://{host}{}", uri.path()),
    }
}

/// Percent-encodes one path segment (an id, an owner, a model name).
pub(crate) fn encode_segment(segment: &str) -> impl fmt::Display + '_ {
    percent_encoding::utf8_percent_encode(segment, SEGMENT)
}

/// Percent-encodes one query value.
pub(crate) fn encode_query(value: &str) -> impl fmt::Display + '_ {
    percent_encoding::utf8_percent_encode(value, QUERY)
}

const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

const QUERY: &percent_encoding::AsciiSet = SEGMENT;
