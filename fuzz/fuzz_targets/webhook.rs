//! Webhook verification with arbitrary headers, body and secret: never panics. And with any secret,
//! id, timestamp and body: sign then verify passes (also next to junk signature entries, and
//! through an `http::HeaderMap`); a changed body, a stale timestamp and a different secret fail.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use replicate_protocol::webhook::{
    self, DEFAULT_TOLERANCE, WebhookError, WebhookHeaders, WebhookSecret, parse_default_secret,
    sign, verify, verify_http, verify_with_tolerance,
};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    secret: &'a str,
    id: &'a str,
    timestamp: &'a [u8],
    signature: &'a [u8],
    now: i64,
    tolerance: Option<u64>,
    sign_at: u64,
    body: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let Input {
        secret,
        id,
        timestamp,
        signature,
        now,
        tolerance,
        sign_at,
        body,
    } = input;
    let _ = parse_default_secret(body);

    // Any secret string: parsed, or its bytes used as a raw key.
    let parsed = WebhookSecret::parse(secret);
    if let Ok(s) = &parsed {
        // The `whsec_` form parses back to the same key.
        let again = WebhookSecret::parse(&s.expose_whsec()).expect("expose_whsec parses");
        assert_eq!(again.expose_whsec(), s.expose_whsec());
        assert_eq!(format!("{s:?}"), "WebhookSecret(***)");
    }
    let key = match parsed.or_else(|_| WebhookSecret::from_key_bytes(secret.as_bytes())) {
        Ok(k) => k,
        Err(e) => {
            assert!(secret.is_empty(), "only an empty key is refused, got {e:?}");
            return;
        }
    };

    // Arbitrary headers: any error, never a panic.
    let headers = WebhookHeaders::from_bytes(id.as_bytes(), timestamp, signature);
    let tolerance = tolerance.map(Duration::from_secs);
    let r = verify_with_tolerance(&key, &headers, body, now, tolerance);
    let _ = verify(&key, &headers, body, now);
    if r.is_ok() {
        // Only a real signature passes (a fuzzer cannot forge HMAC-SHA256): it must be the one
        // `sign` computes, so the timestamp is canonical digits.
        let ts: i64 = std::str::from_utf8(timestamp).unwrap().parse().unwrap();
        let expected = sign(&key, id, ts, body);
        assert_eq!(ts.to_string().as_bytes(), timestamp);
        assert!(
            signature
                .split(u8::is_ascii_whitespace)
                .any(|entry| entry == expected.as_bytes())
        );
    }
    let _ = r.map_err(|e| e.to_string());

    // Sign then verify.
    let ts = i64::try_from(sign_at >> 1).unwrap();
    let ts_text = ts.to_string();
    let sig = sign(&key, id, ts, body);
    let good = WebhookHeaders::new(id, &ts_text, &sig);
    assert_eq!(verify(&key, &good, body, ts), Ok(()));
    assert_eq!(verify_with_tolerance(&key, &good, body, now, None), Ok(()));
    // Next to other entries (whatever they are) in the header.
    let mut crowded = signature.to_vec();
    crowded.push(b' ');
    crowded.extend_from_slice(sig.as_bytes());
    crowded.extend_from_slice(b" v2,abc");
    let crowded_headers = WebhookHeaders::from_bytes(id.as_bytes(), ts_text.as_bytes(), &crowded);
    assert_eq!(verify(&key, &crowded_headers, body, ts), Ok(()));
    // Through an http::HeaderMap, when the id can be a header value.
    if let Ok(id_value) = http::HeaderValue::from_str(id) {
        let mut map = http::HeaderMap::new();
        map.insert(webhook::HEADER_ID, id_value);
        map.insert(webhook::HEADER_TIMESTAMP, ts_text.parse().unwrap());
        map.insert(webhook::HEADER_SIGNATURE, sig.parse().unwrap());
        assert_eq!(verify_http(&key, &map, body, ts), Ok(()));
    }

    // A changed body fails.
    let mut tampered = body.to_vec();
    tampered.push(b'\n');
    assert_eq!(
        verify(&key, &good, &tampered, ts),
        Err(WebhookError::NoMatchingSignature)
    );
    // A stale or future timestamp fails.
    let slack = DEFAULT_TOLERANCE.as_secs() as i64;
    if let Some(late) = ts.checked_add(slack) {
        assert_eq!(verify(&key, &good, body, late), Ok(()));
    }
    if let Some(too_late) = ts.checked_add(slack + 1) {
        assert_eq!(
            verify(&key, &good, body, too_late),
            Err(WebhookError::TimestampTooOld)
        );
    }
    assert_eq!(
        verify(&key, &good, body, ts - slack - 1),
        Err(WebhookError::TimestampTooNew)
    );
    assert_eq!(
        verify(&key, &good, body, i64::MIN),
        Err(WebhookError::TimestampTooNew)
    );
    // Another key fails. Its raw bytes are the `whsec_` text of this one plus a byte: longer than
    // this key, so not equal to it even after HMAC's zero padding.
    let other = WebhookSecret::from_key_bytes(format!("{}x", key.expose_whsec())).unwrap();
    assert_eq!(
        verify(&other, &good, body, ts),
        Err(WebhookError::NoMatchingSignature)
    );
    // A negative timestamp is never accepted.
    if ts > 0 {
        let neg = sign(&key, id, -ts, body);
        let neg_text = (-ts).to_string();
        let h = WebhookHeaders::new(id, &neg_text, &neg);
        assert_eq!(
            verify_with_tolerance(&key, &h, body, -ts, None),
            Err(WebhookError::InvalidTimestamp)
        );
    }
});
