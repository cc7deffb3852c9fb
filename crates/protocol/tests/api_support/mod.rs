//! Helpers shared by the `api_*` tests: a proxy configuration, a stable rendering of requests for
//! snapshots, fixtures and canned responses.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

use http::{Request, Response};
use replicate_protocol::{Config, Endpoint, Page, Paginated};

/// The proxy base every test request goes through.
pub const BASE: &str = "https://proxy.example/replicate";

/// A configuration for the proxy base, with a fixed user agent so snapshots do not change with
/// the crate version.
pub fn cfg() -> Config {
    Config::new("hk-secret-token")
        .with_base_url(BASE)
        .unwrap()
        .with_user_agent("replicate-rust-tests")
        .unwrap()
}

/// Builds an endpoint's request against [`cfg`].
pub fn build<E: Endpoint>(endpoint: &E) -> Request<Vec<u8>> {
    endpoint.request(&cfg()).unwrap()
}

/// Renders a request for a snapshot: method and URI, headers sorted by name (the token
/// redacted), a blank line and the body: pretty JSON, or text with `\r` shown as `␍` and other
/// control characters escaped.
pub fn render(req: &Request<Vec<u8>>) -> String {
    let mut out = format!("{} {}\n", req.method(), req.uri());
    let mut headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            let value = if k == http::header::AUTHORIZATION {
                assert_eq!(v.to_str().unwrap(), "Bearer hk-secret-token");
                assert!(
                    v.is_sensitive(),
                    "the Authorization header must be sensitive"
                );
                "Bearer [REDACTED]".to_owned()
            } else {
                v.to_str().unwrap().to_owned()
            };
            (k.as_str().to_owned(), value)
        })
        .collect();
    headers.sort();
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\n"));
    }
    let body = req.body();
    if !body.is_empty() {
        out.push('\n');
        let ct = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("");
        if ct.starts_with("application/json") {
            let v: serde_json::Value = serde_json::from_slice(body).unwrap();
            out.push_str(&serde_json::to_string_pretty(&v).unwrap());
            out.push('\n');
        } else {
            for c in String::from_utf8_lossy(body).chars() {
                match c {
                    '\r' => out.push('␍'),
                    '\n' | '\t' => out.push(c),
                    c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                    c => out.push(c),
                }
            }
        }
    }
    out
}

/// The path of a fixture under `fixtures/api/`.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/api")
        .join(name)
}

/// A fixture's bytes.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// A response with a status and a body.
pub fn response(status: u16, body: impl Into<Vec<u8>>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

/// Parses a fixture with an endpoint, as a 200 answer.
pub fn parse_fixture<E: Endpoint>(endpoint: &E, name: &str) -> E::Output {
    endpoint.parse(response(200, fixture(name))).unwrap()
}

/// Checks the pagination of a list: the next request keeps only the cursor of the server's
/// `next` URL (not its host, path or other parameters), goes to the proxy base with the same
/// path as the first request, and a page pointing at the current cursor ends the listing.
pub fn check_pagination<E: Paginated>(first: E) {
    let first_req = build(&first);
    let first_uri = first_req.uri().clone();
    assert!(
        first_uri.to_string().starts_with(&format!("{BASE}/v1/")),
        "{first_uri}"
    );
    assert!(first.cursor().is_none());

    let page: Page<E::Item> = Page {
        results: Vec::new(),
        next: Some(
            "https://api.replicate.com/v1/elsewhere?evil=1&cursor=cD0y%2FMDI%3D&limit=5".to_owned(),
        ),
        previous: None,
    };
    let second = first.next_page(&page).expect("a next page");
    assert_eq!(second.cursor(), Some("cD0y/MDI="));
    let req = build(&second);
    let uri = req.uri();
    assert_eq!(uri.scheme_str(), Some("https"));
    assert_eq!(uri.authority().unwrap().as_str(), "proxy.example");
    assert_eq!(uri.path(), first_uri.path(), "same path as the first page");
    assert_eq!(req.method(), first_req.method());
    assert_eq!(req.body(), first_req.body());
    let query = uri.query().unwrap();
    let mut params: Vec<&str> = query.split('&').collect();
    assert!(params.contains(&"cursor=cD0y%2FMDI%3D"), "{query}");
    params.retain(|p| !p.starts_with("cursor="));
    let mut own: Vec<&str> = first_uri.query().unwrap_or("").split('&').collect();
    own.retain(|p| !p.is_empty());
    assert_eq!(params, own, "only the cursor is added: {query}");
    assert!(
        !query.contains("evil") && !query.contains("limit"),
        "{query}"
    );

    // The same cursor again ends the listing instead of looping.
    let again: Page<E::Item> = Page {
        results: Vec::new(),
        next: Some("https://api.replicate.com/v1/x?cursor=cD0y%2FMDI%3D".to_owned()),
        previous: None,
    };
    assert!(second.next_page(&again).is_none());
    let last: Page<E::Item> = Page {
        results: Vec::new(),
        next: None,
        previous: Some("https://api.replicate.com/v1/x?cursor=prev".to_owned()),
    };
    assert!(first.next_page(&last).is_none());
}
