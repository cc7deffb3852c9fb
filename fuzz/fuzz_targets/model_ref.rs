//! The string parsers on any text: `ModelRef` (parse → Display → parse), `Target::parse` and
//! `Target::deployment`, `CancelAfter` (parse → Display → parse), `BaseUrl::parse` (idempotent:
//! `parse(parse(x).as_str()) == parse(x)` unless the prefix ends in `/v1`), `RetryAfter::parse`, `Status::parse` and `cursor_of`.
//! Whatever parses must also build a valid request.
#![no_main]

use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use replicate_protocol::{
    BaseUrl, CancelAfter, Config, CreatePrediction, Endpoint, GetPrediction, ModelRef, RetryAfter,
    Status, Target, cursor_of, is_version_id,
};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let cfg = Config::new("r8_fuzz");

    // ModelRef: Display gives back the input, and parses to the same reference.
    let model = ModelRef::from_str(s);
    if let Ok(m) = &model {
        let shown = m.to_string();
        assert_eq!(shown, s);
        assert_eq!(ModelRef::from_str(&shown).as_ref(), Ok(m));
        assert!(!m.owner.is_empty() && !m.name.is_empty());
    }

    // Target: a string with '/' is a target exactly when it is a model reference.
    let target = Target::parse(s);
    if s.contains('/') {
        assert_eq!(target.is_ok(), model.is_ok());
    } else {
        assert_eq!(target.is_ok(), is_version_id(s));
    }
    if let Ok(t) = target {
        // Any target builds a create request against the configured host.
        let req = CreatePrediction::new(t)
            .request(&cfg)
            .expect("a create request builds");
        assert!(cfg.base_url().is_same_origin(&req.uri().to_string()));
    }
    if let Ok(Target::Deployment { owner, name }) = Target::deployment(s) {
        assert_eq!(format!("{owner}/{name}"), s);
        let req = CreatePrediction::new(Target::Deployment { owner, name })
            .request(&cfg)
            .expect("a deployment create request builds");
        assert!(cfg.base_url().is_same_origin(&req.uri().to_string()));
    }

    // Any non-dot id builds a get request to the configured host.
    if !s.is_empty() && s != "." && s != ".." {
        let req = GetPrediction::new(s)
            .request(&cfg)
            .expect("a get request builds");
        assert!(cfg.base_url().is_same_origin(&req.uri().to_string()));
        assert!(req.uri().path().starts_with("/v1/predictions/"));
    }

    // CancelAfter: at least 5 s, and Display parses back to the same duration.
    if let Ok(c) = CancelAfter::from_str(s) {
        assert!(c.duration() >= CancelAfter::MIN);
        let shown = c.to_string();
        assert_eq!(
            shown.parse::<CancelAfter>().as_ref(),
            Ok(&c),
            "shown as {shown:?}"
        );
        assert!(http::HeaderValue::from_str(&shown).is_ok());
    }

    // BaseUrl: normalising is idempotent, and a normalised base builds requests to itself.
    //
    // `parse` drops one trailing `/v1` only, on purpose: a proxy prefix may itself end in `/v1`
    // (`https://h/v1/v1` is the prefix `/v1`; see tests/props.rs and tests/config.rs). Such a
    // base's `as_str()` (`https://h/v1`) reads as the public layout, so `parse(as_str())` is
    // compared only when the prefix does not end in `/v1`. The base written with the `/v1` that
    // requests add, `api_url("")`, always parses back to the same base.
    if let Ok(base) = BaseUrl::parse(s) {
        let with_v1 = base.api_url("");
        assert_eq!(
            BaseUrl::parse(&with_v1).as_ref(),
            Ok(&base),
            "reparse of {with_v1:?}"
        );
        if !base.prefix().ends_with("/v1") {
            let again = BaseUrl::parse(base.as_str());
            assert_eq!(again.as_ref(), Ok(&base), "reparse of {:?}", base.as_str());
        }
        assert_eq!(format!("{}{}", base.origin(), base.prefix()), base.as_str());
        assert!(base.prefix().is_empty() || base.prefix().starts_with('/'));
        assert!(!base.prefix().ends_with('/'));
        let cfg = cfg
            .with_base_url(s)
            .expect("an accepted base URL configures");
        let req = GetPrediction::new("abc")
            .request(&cfg)
            .expect("a request builds");
        let url = req.uri().to_string();
        assert_eq!(url, base.api_url("/predictions/abc"));
        assert!(
            base.is_same_origin(&url),
            "{url} is not on {}",
            base.origin()
        );
    } else {
        let _ = BaseUrl::parse(s).map_err(|e| e.to_string());
    }

    // Assorted parsers: never panic.
    let _ = RetryAfter::parse(s);
    let status = Status::parse(s);
    if s != "cancelled" {
        assert_eq!(status.as_str(), s);
    }
    let _ = cursor_of(s);
});
