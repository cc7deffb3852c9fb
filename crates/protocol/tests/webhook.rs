//! Tests for webhook signature verification.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use replicate_protocol::webhook::{
    DEFAULT_TOLERANCE, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, Verifier, WebhookError,
    WebhookHeaders, WebhookSecret, parse_default_secret, sign, unix_timestamp, verify, verify_http,
    verify_http_with_tolerance, verify_with_tolerance,
};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const KEY_B64: &str = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TS: &str = "1614265330";
const TS_N: i64 = 1_614_265_330;
const BODY: &[u8] = br#"{"test": 2432232314}"#;
const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn secret() -> WebhookSecret {
    WebhookSecret::parse(SECRET).unwrap()
}

fn check(id: &str, ts: &str, sig: &str, body: &[u8], now: i64) -> Result<(), WebhookError> {
    verify(&secret(), &WebhookHeaders::new(id, ts, sig), body, now)
}

fn header_map(id: Option<&str>, ts: Option<&str>, sig: Option<&str>) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in [
        (HEADER_ID, id),
        (HEADER_TIMESTAMP, ts),
        (HEADER_SIGNATURE, sig),
    ] {
        if let Some(value) = value {
            map.insert(name, HeaderValue::from_str(value).unwrap());
        }
    }
    map
}

// --- the public test vector -------------------------------------------------

#[test]
fn test_vector_verifies() {
    assert_eq!(check(ID, TS, SIG, BODY, TS_N), Ok(()));
}

#[test]
fn test_vector_verifies_via_header_map() {
    let map = header_map(Some(ID), Some(TS), Some(SIG));
    assert_eq!(verify_http(&secret(), &map, BODY, TS_N), Ok(()));
}

#[test]
fn sign_reproduces_test_vector() {
    assert_eq!(sign(&secret(), ID, TS_N, BODY), SIG);
}

#[test]
fn secret_without_prefix_is_whole_base64() {
    let bare = WebhookSecret::parse(KEY_B64).unwrap();
    let headers = WebhookHeaders::new(ID, TS, SIG);
    assert_eq!(verify(&bare, &headers, BODY, TS_N), Ok(()));
}

#[test]
fn secret_surrounding_whitespace_is_ignored() {
    let s = WebhookSecret::parse(&format!("  {SECRET}\n")).unwrap();
    assert_eq!(sign(&s, ID, TS_N, BODY), SIG);
}

// --- tampering ----------------------------------------------------------------

#[test]
fn body_changed_by_one_byte_fails() {
    let mut body = BODY.to_vec();
    *body.last_mut().unwrap() ^= 1;
    assert_eq!(
        check(ID, TS, SIG, &body, TS_N),
        Err(WebhookError::NoMatchingSignature)
    );
}

#[test]
fn body_with_extra_byte_fails() {
    let mut body = BODY.to_vec();
    body.push(b'\n');
    assert_eq!(
        check(ID, TS, SIG, &body, TS_N),
        Err(WebhookError::NoMatchingSignature)
    );
}

#[test]
fn timestamp_changed_fails() {
    assert_eq!(
        check(ID, "1614265331", SIG, BODY, TS_N),
        Err(WebhookError::NoMatchingSignature)
    );
}

#[test]
fn id_changed_fails() {
    assert_eq!(
        check("msg_p5jXN8AQM9LWM0D4loKWxJeK", TS, SIG, BODY, TS_N),
        Err(WebhookError::NoMatchingSignature)
    );
}

#[test]
fn wrong_secret_fails() {
    let other = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSx").unwrap();
    let headers = WebhookHeaders::new(ID, TS, SIG);
    assert_eq!(
        verify(&other, &headers, BODY, TS_N),
        Err(WebhookError::NoMatchingSignature)
    );
}

#[test]
fn signature_bit_flip_fails() {
    let sig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=";
    assert_eq!(
        check(ID, TS, sig, BODY, TS_N),
        Err(WebhookError::NoMatchingSignature)
    );
}

#[test]
fn truncated_or_extended_signature_is_malformed() {
    // Valid base64, but of 30 and 33 bytes: not an HMAC-SHA256 tag.
    for sig in [
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OEA",
    ] {
        assert_eq!(
            check(ID, TS, sig, BODY, TS_N),
            Err(WebhookError::MalformedSignatureHeader),
            "{sig}"
        );
    }
}

// --- secrets ----------------------------------------------------------------

#[test]
fn invalid_secrets_are_rejected() {
    for bad in [
        "",
        "whsec_",
        "   ",
        "whsec_not base64!",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",
        "sk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "r8_abcdef",
    ] {
        assert_eq!(
            WebhookSecret::parse(bad).unwrap_err(),
            WebhookError::InvalidSecret,
            "{bad:?}"
        );
        assert_eq!(
            bad.parse::<WebhookSecret>().unwrap_err(),
            WebhookError::InvalidSecret
        );
    }
}

#[test]
fn empty_key_bytes_are_rejected() {
    assert_eq!(
        WebhookSecret::from_key_bytes(Vec::new()).unwrap_err(),
        WebhookError::InvalidSecret
    );
}

#[test]
fn expose_whsec_round_trips() {
    let s = secret();
    assert_eq!(s.expose_whsec(), SECRET);
    let raw = WebhookSecret::from_key_bytes(b"0123456789".to_vec()).unwrap();
    let again = WebhookSecret::parse(&raw.expose_whsec()).unwrap();
    assert_eq!(sign(&raw, ID, TS_N, BODY), sign(&again, ID, TS_N, BODY));
}

#[test]
fn debug_of_secret_hides_the_key() {
    let s = secret();
    let debug = format!("{s:?}");
    assert_eq!(debug, "WebhookSecret(***)");
    assert!(!debug.contains(KEY_B64));
    let verifier = format!("{:?}", Verifier::new(s));
    assert!(verifier.contains("WebhookSecret(***)"));
    assert!(!verifier.contains(KEY_B64));
    assert!(!verifier.contains("whsec_"));
}

#[test]
fn error_messages_do_not_leak_the_secret() {
    let errors = [
        WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!").unwrap_err(),
        parse_default_secret(br#"{"key": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!"}"#).unwrap_err(),
        parse_default_secret(br#"{"key": 1, "x": "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}"#)
            .unwrap_err(),
        parse_default_secret(br#"["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]"#).unwrap_err(),
    ];
    for e in errors {
        let msg = format!("{e} {e:?}");
        assert!(!msg.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS"), "{msg}");
    }
}

#[test]
fn parse_default_secret_response() {
    let s = parse_default_secret(format!(r#"{{"key": "{SECRET}"}}"#).as_bytes()).unwrap();
    assert_eq!(sign(&s, ID, TS_N, BODY), SIG);
    // Unknown fields are ignored.
    let s = parse_default_secret(format!(r#"{{"extra": 1, "key": "{SECRET}"}}"#).as_bytes());
    assert!(s.is_ok());
}

#[test]
fn parse_default_secret_errors() {
    for bad in [
        &b""[..],
        b"{}",
        b"null",
        br#"{"key": null}"#,
        br#"{"key": 42}"#,
        b"\xff\xfe",
        br#"{"key": "whsec_"#,
    ] {
        assert_eq!(
            parse_default_secret(bad).unwrap_err(),
            WebhookError::InvalidSecretResponse,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(
        parse_default_secret(br#"{"key": "whsec_%%%"}"#).unwrap_err(),
        WebhookError::InvalidSecret
    );
    assert_eq!(
        parse_default_secret(br#"{"key": ""}"#).unwrap_err(),
        WebhookError::InvalidSecret
    );
}

// --- signature header ---------------------------------------------------------

#[test]
fn only_other_versions_is_malformed() {
    assert_eq!(
        check(
            ID,
            TS,
            "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            BODY,
            TS_N
        ),
        Err(WebhookError::MalformedSignatureHeader)
    );
    assert_eq!(
        check(
            ID,
            TS,
            "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= V1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            BODY,
            TS_N
        ),
        Err(WebhookError::MalformedSignatureHeader)
    );
}

#[test]
fn garbage_signature_header_is_malformed() {
    for garbage in [
        "garbage",
        "v1",
        "v1,",
        ",,,",
        "v1,!!!notbase64!!!",
        "v1:g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",
        "v1,abc v1,%%%% v2,abcd",
        "v1,AAAA",
        "v1,bm90IHRoZSBzaWduYXR1cmU=",
    ] {
        assert_eq!(
            check(ID, TS, garbage, BODY, TS_N),
            Err(WebhookError::MalformedSignatureHeader),
            "{garbage:?}"
        );
    }
}

#[test]
fn empty_signature_header_is_malformed() {
    assert_eq!(
        check(ID, TS, "", BODY, TS_N),
        Err(WebhookError::MalformedSignatureHeader)
    );
    assert_eq!(
        check(ID, TS, "   ", BODY, TS_N),
        Err(WebhookError::MalformedSignatureHeader)
    );
}

#[test]
fn second_of_several_entries_matches() {
    let header = format!("v1,bm90IHRoZSBzaWduYXR1cmUsIDMyIGJ5dGVzIGxvbmc= {SIG}");
    assert_eq!(check(ID, TS, &header, BODY, TS_N), Ok(()));
    let header = format!("v2,whatever v1,%%% {SIG} v1,AAAA");
    assert_eq!(check(ID, TS, &header, BODY, TS_N), Ok(()));
}

#[test]
fn several_entries_none_matching() {
    // Two well-formed 32-byte v1 tags that are wrong, plus the right tag under v2.
    let header = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
        v1,bm90IHRoZSBzaWduYXR1cmUsIDMyIGJ5dGVzIGxvbmc= \
        v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    assert_eq!(
        check(ID, TS, header, BODY, TS_N),
        Err(WebhookError::NoMatchingSignature)
    );
}

// --- timestamps ---------------------------------------------------------------

#[test]
fn tolerance_boundaries() {
    assert_eq!(check(ID, TS, SIG, BODY, TS_N + 300), Ok(()));
    assert_eq!(check(ID, TS, SIG, BODY, TS_N - 300), Ok(()));
    assert_eq!(DEFAULT_TOLERANCE, Duration::from_secs(300));
}

#[test]
fn stale_timestamp_is_too_old() {
    assert_eq!(
        check(ID, TS, SIG, BODY, TS_N + 301),
        Err(WebhookError::TimestampTooOld)
    );
    assert_eq!(
        check(ID, TS, SIG, BODY, i64::MAX),
        Err(WebhookError::TimestampTooOld)
    );
}

#[test]
fn future_timestamp_is_too_new() {
    assert_eq!(
        check(ID, TS, SIG, BODY, TS_N - 301),
        Err(WebhookError::TimestampTooNew)
    );
    assert_eq!(
        check(ID, TS, SIG, BODY, i64::MIN),
        Err(WebhookError::TimestampTooNew)
    );
}

#[test]
fn custom_tolerance() {
    let headers = WebhookHeaders::new(ID, TS, SIG);
    let ten = Some(Duration::from_secs(10));
    assert_eq!(
        verify_with_tolerance(&secret(), &headers, BODY, TS_N + 10, ten),
        Ok(())
    );
    assert_eq!(
        verify_with_tolerance(&secret(), &headers, BODY, TS_N + 11, ten),
        Err(WebhookError::TimestampTooOld)
    );
    assert_eq!(
        verify_with_tolerance(&secret(), &headers, BODY, TS_N - 11, ten),
        Err(WebhookError::TimestampTooNew)
    );
    let huge = Some(Duration::MAX);
    assert_eq!(
        verify_with_tolerance(&secret(), &headers, BODY, i64::MIN, huge),
        Ok(())
    );
}

#[test]
fn disabled_tolerance_accepts_stale_and_future() {
    let headers = WebhookHeaders::new(ID, TS, SIG);
    for tolerance in [None, Some(Duration::ZERO)] {
        for now in [TS_N + 301, TS_N + 10_000_000, TS_N - 10_000, i64::MAX, 0] {
            assert_eq!(
                verify_with_tolerance(&secret(), &headers, BODY, now, tolerance),
                Ok(()),
                "{tolerance:?} {now}"
            );
        }
        let verifier = Verifier::new(secret()).with_tolerance(tolerance);
        assert_eq!(verifier.verify(&headers, BODY, TS_N + 301), Ok(()));
        let map = header_map(Some(ID), Some(TS), Some(SIG));
        assert_eq!(verifier.verify_http(&map, BODY, TS_N + 301), Ok(()));
        assert_eq!(
            verify_http_with_tolerance(&secret(), &map, BODY, TS_N + 301, tolerance),
            Ok(())
        );
    }
}

#[test]
fn disabled_tolerance_still_checks_signature() {
    let headers = WebhookHeaders::new(ID, TS, SIG);
    assert_eq!(
        verify_with_tolerance(&secret(), &headers, b"{}", TS_N + 301, None),
        Err(WebhookError::NoMatchingSignature)
    );
}

#[test]
fn default_verifier_rejects_stale() {
    let verifier = Verifier::new(secret());
    let headers = WebhookHeaders::new(ID, TS, SIG);
    assert_eq!(verifier.verify(&headers, BODY, TS_N), Ok(()));
    assert_eq!(
        verifier.verify(&headers, BODY, TS_N + 301),
        Err(WebhookError::TimestampTooOld)
    );
}

#[test]
fn invalid_timestamps() {
    for bad in [
        "",
        "abc",
        "1614265330.5",
        "-1614265330",
        "+1614265330",
        " 1614265330",
        "1614265330 ",
        "1e9",
        "99999999999999999999999",
        "2021-02-25T15:02:10Z",
    ] {
        // Disabled tolerance too: syntax is checked regardless.
        let headers = WebhookHeaders::new(ID, bad, SIG);
        assert_eq!(
            verify_with_tolerance(&secret(), &headers, BODY, TS_N, None),
            Err(WebhookError::InvalidTimestamp),
            "{bad:?}"
        );
    }
}

#[test]
fn timestamp_checked_before_signature() {
    assert_eq!(
        check(ID, "nope", "garbage", BODY, TS_N),
        Err(WebhookError::InvalidTimestamp)
    );
    assert_eq!(
        check(ID, TS, "garbage", BODY, TS_N + 301),
        Err(WebhookError::TimestampTooOld)
    );
}

// --- headers ------------------------------------------------------------------

#[test]
fn missing_each_header() {
    let cases = [
        (header_map(None, Some(TS), Some(SIG)), HEADER_ID),
        (header_map(Some(ID), None, Some(SIG)), HEADER_TIMESTAMP),
        (header_map(Some(ID), Some(TS), None), HEADER_SIGNATURE),
        (header_map(None, None, None), HEADER_ID),
    ];
    for (map, name) in cases {
        assert_eq!(
            verify_http(&secret(), &map, BODY, TS_N),
            Err(WebhookError::MissingHeader(name))
        );
        assert_eq!(
            WebhookHeaders::from_header_map(&map).unwrap_err(),
            WebhookError::MissingHeader(name)
        );
    }
    assert_eq!(HEADER_ID, "webhook-id");
    assert_eq!(HEADER_TIMESTAMP, "webhook-timestamp");
    assert_eq!(HEADER_SIGNATURE, "webhook-signature");
}

#[test]
fn header_names_are_case_insensitive() {
    let mut map = HeaderMap::new();
    map.insert("Webhook-Id", HeaderValue::from_static(ID));
    map.insert("WEBHOOK-TIMESTAMP", HeaderValue::from_static(TS));
    map.insert("Webhook-Signature", HeaderValue::from_static(SIG));
    assert_eq!(verify_http(&secret(), &map, BODY, TS_N), Ok(()));
    let headers = WebhookHeaders::from_header_map(&map).unwrap();
    assert_eq!(headers.id(), ID.as_bytes());
}

#[test]
fn non_utf8_header_values() {
    let mut map = header_map(Some(ID), Some(TS), Some(SIG));
    map.insert(
        HEADER_TIMESTAMP,
        HeaderValue::from_bytes(b"16142\xff65330").unwrap(),
    );
    assert_eq!(
        verify_http(&secret(), &map, BODY, TS_N),
        Err(WebhookError::InvalidTimestamp)
    );

    let mut map = header_map(Some(ID), Some(TS), Some(SIG));
    map.insert(
        HEADER_SIGNATURE,
        HeaderValue::from_bytes(b"v1,\xff\xfe\xfd").unwrap(),
    );
    assert_eq!(
        verify_http(&secret(), &map, BODY, TS_N),
        Err(WebhookError::MalformedSignatureHeader)
    );

    // A non-UTF-8 id is signed as raw bytes.
    let mut map = header_map(Some(ID), Some(TS), Some(SIG));
    map.insert(HEADER_ID, HeaderValue::from_bytes(b"msg_\xe9").unwrap());
    assert_eq!(
        verify_http(&secret(), &map, BODY, TS_N),
        Err(WebhookError::NoMatchingSignature)
    );
}

#[test]
fn huge_headers_do_not_panic() {
    let huge_sig = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= ".repeat(20_000);
    assert_eq!(
        check(ID, TS, &huge_sig, BODY, TS_N),
        Err(WebhookError::NoMatchingSignature)
    );
    let huge_ts = "9".repeat(100_000);
    assert_eq!(
        check(ID, &huge_ts, SIG, BODY, TS_N),
        Err(WebhookError::InvalidTimestamp)
    );
    let huge_id = "x".repeat(1_000_000);
    assert_eq!(
        check(&huge_id, TS, SIG, BODY, TS_N),
        Err(WebhookError::NoMatchingSignature)
    );
}

// --- sign / round trip ----------------------------------------------------------

#[test]
fn sign_round_trips_with_verify() {
    let s = secret();
    let sig = sign(&s, "msg_123", 1_700_000_000, b"hello");
    assert!(sig.starts_with("v1,"));
    let headers = WebhookHeaders::new("msg_123", "1700000000", &sig);
    assert_eq!(verify(&s, &headers, b"hello", 1_700_000_000), Ok(()));
    assert_eq!(
        verify(&s, &headers, b"hellO", 1_700_000_000),
        Err(WebhookError::NoMatchingSignature)
    );
}

#[test]
fn unix_timestamp_conversion() {
    assert_eq!(unix_timestamp(UNIX_EPOCH), 0);
    assert_eq!(
        unix_timestamp(UNIX_EPOCH + Duration::from_millis(1_614_265_330_999)),
        TS_N
    );
    assert_eq!(unix_timestamp(UNIX_EPOCH - Duration::from_secs(5)), -5);
    assert_eq!(
        unix_timestamp(UNIX_EPOCH - Duration::from_millis(4_500)),
        -5
    );
    let _ = unix_timestamp(SystemTime::now());
}

#[test]
fn errors_display() {
    assert_eq!(
        WebhookError::MissingHeader("webhook-id").to_string(),
        "missing webhook header `webhook-id`"
    );
    assert_eq!(
        WebhookError::NoMatchingSignature.to_string(),
        "no matching webhook signature"
    );
}

// --- properties -----------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn verify_never_panics_on_strings(
        id in ".*",
        ts in ".*",
        sig in ".*",
        body in proptest::collection::vec(any::<u8>(), 0..256),
        now in any::<i64>(),
        tol in proptest::option::of(any::<u64>()),
    ) {
        let headers = WebhookHeaders::new(&id, &ts, &sig);
        let tolerance = tol.map(Duration::from_secs);
        let _ = verify_with_tolerance(&secret(), &headers, &body, now, tolerance);
        let _ = verify(&secret(), &headers, &body, now);
    }

    #[test]
    fn verify_never_panics_on_signature_like_strings(
        sig in "(v[0-9],[A-Za-z0-9+/=]{0,50}[ ]?){0,6}",
        ts in "[0-9]{0,25}",
        now in any::<i64>(),
    ) {
        let headers = WebhookHeaders::new(ID, &ts, &sig);
        let result = verify(&secret(), &headers, BODY, now);
        prop_assert!(result.is_err() || sig.contains(&SIG[3..]));
    }

    #[test]
    fn verify_never_panics_on_raw_bytes(
        id in proptest::collection::vec(any::<u8>(), 0..64),
        ts in proptest::collection::vec(any::<u8>(), 0..32),
        sig in proptest::collection::vec(any::<u8>(), 0..128),
        body in proptest::collection::vec(any::<u8>(), 0..128),
        now in any::<i64>(),
    ) {
        let headers = WebhookHeaders::from_bytes(&id, &ts, &sig);
        let _ = verify(&secret(), &headers, &body, now);

        let mut map = HeaderMap::new();
        for (name, value) in [(HEADER_ID, &id), (HEADER_TIMESTAMP, &ts), (HEADER_SIGNATURE, &sig)] {
            if let Ok(value) = HeaderValue::from_bytes(value) {
                map.insert(name, value);
            }
        }
        let _ = verify_http(&secret(), &map, &body, now);
    }

    #[test]
    fn secret_parse_never_panics(s in ".*") {
        if let Ok(secret) = WebhookSecret::parse(&s) {
            prop_assert_eq!(format!("{secret:?}"), "WebhookSecret(***)");
        }
        let _ = parse_default_secret(s.as_bytes());
    }

    #[test]
    fn sign_verify_round_trip(
        key in proptest::collection::vec(any::<u8>(), 1..100),
        id in ".*",
        ts in 0..=i64::MAX,
        body in proptest::collection::vec(any::<u8>(), 0..1024),
        skew in -300i64..=300,
    ) {
        let secret = WebhookSecret::from_key_bytes(key).unwrap();
        let sig = sign(&secret, &id, ts, &body);
        let ts_str = ts.to_string();
        let headers = WebhookHeaders::new(&id, &ts_str, &sig);
        let now = ts.saturating_add(skew);
        prop_assert_eq!(verify(&secret, &headers, &body, now), Ok(()));

        // Same via the whsec_ form and a HeaderMap (when the id is a valid header value).
        let reparsed = WebhookSecret::parse(&secret.expose_whsec()).unwrap();
        prop_assert_eq!(verify(&reparsed, &headers, &body, now), Ok(()));
        if let Ok(id_value) = HeaderValue::from_str(&id) {
            let mut map = HeaderMap::new();
            map.insert(HEADER_ID, id_value);
            map.insert(HEADER_TIMESTAMP, HeaderValue::from_str(&ts_str).unwrap());
            map.insert(HEADER_SIGNATURE, HeaderValue::from_str(&sig).unwrap());
            prop_assert_eq!(verify_http(&secret, &map, &body, now), Ok(()));
        }
    }

    #[test]
    fn round_trip_detects_body_tampering(
        body in proptest::collection::vec(any::<u8>(), 1..256),
        idx in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let secret = secret();
        let sig = sign(&secret, ID, TS_N, &body);
        let mut tampered = body.clone();
        let i = idx.index(tampered.len());
        tampered[i] ^= flip;
        let headers = WebhookHeaders::new(ID, TS, &sig);
        prop_assert_eq!(verify(&secret, &headers, &body, TS_N), Ok(()));
        prop_assert_eq!(
            verify(&secret, &headers, &tampered, TS_N),
            Err(WebhookError::NoMatchingSignature)
        );
    }
}
