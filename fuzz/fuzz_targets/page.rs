//! `Page<Prediction>` parsing and cursors: never panics; a page round-trips through JSON; the next
//! page's request carries exactly the cursor of `next`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use replicate_protocol::{
    Config, Endpoint, ListPredictions, Page, Paginated, Prediction, cursor_of, parse_json,
};
use replicate_protocol_fuzz::{plain, response};

fuzz_target!(|data: &[u8]| {
    // The cursor extractor on arbitrary text (a `next` URL as a server might write it).
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(c) = cursor_of(text) {
            assert!(!c.is_empty());
        }
    }
    let Some(resp) = response(data) else {
        return;
    };
    let parsed = parse_json::<Page<Prediction>, _>(&resp);
    assert_eq!(
        ListPredictions::new().parse(resp.map(|b| b.to_vec())),
        parsed
    );
    let Ok(page) = parsed else {
        return;
    };

    let json = serde_json::to_vec(&page).expect("a parsed page serialises");
    let again: Page<Prediction> = parse_json(&plain(200, &json)).expect("a serialised page parses");
    assert_eq!(
        again,
        page,
        "re-parse of {}",
        String::from_utf8_lossy(&json)
    );

    let _ = page.previous_cursor();
    let cfg = Config::new("r8_fuzz");
    for list in [
        ListPredictions::new(),
        ListPredictions::new().with_cursor(Some("c".into())),
    ] {
        let Some(next) = list.next_page(&page) else {
            continue;
        };
        let cursor = next.cursor().expect("a next page has a cursor").to_owned();
        assert_eq!(Some(cursor.as_str()), page.next_cursor().as_deref());
        let req = next.request(&cfg).expect("the next page's request builds");
        // The cursor survives the trip through the query string unchanged.
        assert_eq!(cursor_of(&req.uri().to_string()), Some(cursor));
        // And the request goes to the configured host, never to the one in the body.
        assert!(cfg.base_url().is_same_origin(&req.uri().to_string()));
    }
});
