//! Pagination: cursors, next pages on the configured base, and loop protection.
#![allow(clippy::unwrap_used)]

mod common;

use common::{fixture, proxy_cfg, resp};
use replicate_protocol::{
    Endpoint, ListPredictions, Page, Paginated, Prediction, Status, cursor_of,
};

const CURSOR: &str = "cD0yMDI1LTAxLTE1KzEwJTNBMDMlM0EzOS44OTYwMDAlMkIwMCUzQTAw";

fn page(rel: &str) -> Page<Prediction> {
    ListPredictions::new()
        .parse(resp(200, fixture(rel)))
        .unwrap()
}

#[test]
fn cursor_of_urls() {
    assert_eq!(
        cursor_of(&format!(
            "https://api.replicate.com/v1/predictions?cursor={CURSOR}"
        ))
        .as_deref(),
        Some(CURSOR)
    );
    // Percent-encoded cursors are decoded once.
    assert_eq!(
        cursor_of("https://api.replicate.com/v1/predictions?cursor=cj0xJnA9MjAy%3D%3D").as_deref(),
        Some("cj0xJnA9MjAy==")
    );
    assert_eq!(
        cursor_of("https://api.replicate.com/v1/predictions?cursor=a%2Bb%2Fc").as_deref(),
        Some("a+b/c")
    );
    // Form encoding: '+' is a space.
    assert_eq!(
        cursor_of("https://x/v1/p?cursor=a+b").as_deref(),
        Some("a b")
    );
    // Other parameters, in any order; fragments ignored.
    assert_eq!(
        cursor_of("https://x/v1/p?created_after=2025-01-01&cursor=abc&limit=10").as_deref(),
        Some("abc")
    );
    assert_eq!(
        cursor_of("https://x/v1/p?cursor=abc#frag").as_deref(),
        Some("abc")
    );
    // No cursor.
    for url in [
        "https://x/v1/p",
        "https://x/v1/p?",
        "https://x/v1/p?cursor=",
        "https://x/v1/p?cursor",
        "https://x/v1/p?xcursor=abc",
        "https://x/v1/p?page=2",
        "",
    ] {
        assert_eq!(cursor_of(url), None, "{url:?}");
    }
}

#[test]
fn next_page_goes_to_the_configured_base() {
    let first = page("pages/predictions_page1.json");
    assert!(
        first
            .next
            .as_deref()
            .unwrap()
            .starts_with("https://api.replicate.com/")
    );
    let list = ListPredictions::new();
    let next = list.next_page(&first).unwrap();
    assert_eq!(next.cursor(), Some(CURSOR));
    let req = next.request(&proxy_cfg()).unwrap();
    assert_eq!(
        req.uri(),
        format!("https://proxy.example/replicate/v1/predictions?cursor={CURSOR}").as_str()
    );
    assert_eq!(req.headers()["authorization"], "Bearer hk-your-key");
}

#[test]
fn next_page_keeps_filters_and_reencodes_the_cursor() {
    let body = br#"{"next":"https://api.replicate.com/v1/predictions?cursor=cj0x%3D%3D","previous":null,"results":[]}"#;
    let page: Page<Prediction> = ListPredictions::new()
        .parse(resp(200, body.to_vec()))
        .unwrap();
    let list = ListPredictions {
        created_after: Some(time::macros::datetime!(2025-01-01 00:00 UTC)),
        ..ListPredictions::new()
    };
    let next = list.next_page(&page).unwrap();
    assert_eq!(next.cursor.as_deref(), Some("cj0x=="));
    assert_eq!(next.created_after, list.created_after);
    assert_eq!(
        next.request(&proxy_cfg()).unwrap().uri(),
        "https://proxy.example/replicate/v1/predictions?cursor=cj0x%3D%3D&created_after=2025-01-01T00%3A00%3A00Z"
    );
}

#[test]
fn last_page_has_no_next() {
    let last = page("pages/predictions_last.json");
    assert_eq!(last.next, None);
    assert!(ListPredictions::new().next_page(&last).is_none());
    assert_eq!(last.results[0].status, Status::Succeeded);
    assert_eq!(last.results[0].logs, None);
}

#[test]
fn same_cursor_twice_stops() {
    let first = page("pages/predictions_page1.json");
    let second_request = ListPredictions::new().next_page(&first).unwrap();
    // The server answers the second request with a page pointing at the same cursor again.
    assert!(second_request.next_page(&first).is_none());
}

#[test]
fn page_items_parse_with_list_shape() {
    let first = page("pages/predictions_page1.json");
    assert_eq!(first.results.len(), 2);
    assert_eq!(first.previous, None);
    assert_eq!(first.previous_cursor(), None);
    let sources: Vec<_> = first.results.iter().map(|p| p.source.as_deref()).collect();
    assert_eq!(sources, [Some("api"), Some("web")]);
    assert!(first.results.iter().all(|p| p.logs.is_none()));
}

#[test]
fn page_errors() {
    let list = ListPredictions::new();
    assert_eq!(
        list.parse(resp(401, fixture("errors/401.json")))
            .unwrap_err()
            .status(),
        Some(401)
    );
    assert!(matches!(
        list.parse(resp(200, b"[]".to_vec())),
        Err(replicate_protocol::Error::Decode { .. })
    ));
    // A page without next/previous is a last page.
    let bare = list
        .parse(resp(200, br#"{"results":[]}"#.to_vec()))
        .unwrap();
    assert_eq!((bare.next, bare.previous), (None, None));
}
