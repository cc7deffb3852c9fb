//! `parse_prediction` on any response: never panics; a parsed prediction serialises, and parsing
//! that JSON again gives an equal prediction.
#![no_main]

use libfuzzer_sys::fuzz_target;
use replicate_protocol::{Endpoint, Error, GetPrediction, Prediction, Status, parse_prediction};
use replicate_protocol_fuzz::{plain, response};

fuzz_target!(|data: &[u8]| {
    let Some(resp) = response(data) else {
        return;
    };
    let parsed = parse_prediction(&resp);
    // The endpoint parser is the same function behind the trait.
    assert_eq!(
        GetPrediction::new("x").parse(resp.map(|b| b.to_vec())),
        parsed
    );
    match parsed {
        Ok(p) => round_trip(p),
        Err(e) => {
            let _ = e.to_string();
            let _ = e.status();
            let _ = e.api().map(|a| (a.retry_delay(), a.is_retryable()));
        }
    }
});

fn round_trip(p: Prediction) {
    let json = serde_json::to_vec(&p).expect("a parsed prediction serialises");
    let again = parse_prediction(&plain(200, &json)).expect("a serialised prediction parses");
    assert_eq!(again, p, "re-parse of {}", String::from_utf8_lossy(&json));

    // Accessors never panic.
    let _ = (
        p.error_message(),
        p.output_url(),
        p.output_urls(),
        p.output_text(),
    );
    let _ = (p.stream_url(), p.status.is_terminal(), p.status.to_string());
    let _ = p.output_as::<serde_json::Value>();
    for next in [
        Status::Starting,
        Status::Processing,
        Status::Succeeded,
        Status::Canceled,
    ] {
        let _ = p.status.can_transition_to(&next);
    }
    // The wire form of a status parses back to itself.
    assert_eq!(Status::parse(p.status.as_str()), p.status);
    match p.clone().into_result() {
        Ok(done) => assert_eq!(done, p),
        Err(e) => {
            let _ = e.to_string();
            if let Some(q) = e.prediction() {
                assert_eq!(q, &p);
            }
            if let Error::NotFinished { id, status } = e {
                assert_eq!((id, status), (p.id.clone(), p.status.clone()));
            }
        }
    }
}
