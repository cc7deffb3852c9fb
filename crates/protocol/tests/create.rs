//! Create options: targets, sync mode, `Cancel-After`, and model references.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{body_json, proxy_cfg};
use replicate_protocol::{
    CancelAfter, CreatePrediction, Endpoint, Error, ModelRef, RetryClass, SyncWait, Target,
    is_version_id,
};
use serde_json::json;

const HEX: &str = "2a6b576af31790b470f0a8442e1e9791213fa13799cbb65a9fc1436e96389574";

#[test]
fn sync_wait_bounds() {
    assert!(matches!(SyncWait::seconds(0), Err(Error::InvalidInput(_))));
    assert!(matches!(SyncWait::seconds(61), Err(Error::InvalidInput(_))));
    assert!(matches!(
        SyncWait::seconds(u64::MAX),
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(SyncWait::seconds(1).unwrap(), SyncWait::Seconds(1));
    assert_eq!(SyncWait::seconds(60).unwrap(), SyncWait::Seconds(60));
    assert_eq!(SyncWait::Max.duration(), Duration::from_secs(60));
    assert_eq!(
        SyncWait::seconds(7).unwrap().duration(),
        Duration::from_secs(7)
    );
}

#[test]
fn sync_wait_sets_server_hold() {
    let c = CreatePrediction::new(Target::parse("a/b").unwrap());
    assert_eq!(c.server_hold(), None);
    assert_eq!(Endpoint::server_hold(&c), None);
    let c = c.sync(SyncWait::seconds(15).unwrap());
    assert_eq!(c.server_hold(), Some(Duration::from_secs(15)));
    assert_eq!(Endpoint::server_hold(&c), Some(Duration::from_secs(15)));
    assert_eq!(c.retry_class(), RetryClass::CreateOnce);
}

fn ca(s: &str) -> Result<CancelAfter, Error> {
    s.parse::<CancelAfter>()
}

#[test]
fn cancel_after_parse_and_format() {
    for (input, secs, shown) in [
        ("30s", 30, "30s"),
        ("5m", 300, "5m"),
        ("1h", 3600, "1h"),
        ("1h30m", 5400, "1h30m"),
        ("1h30m45s", 5445, "1h30m45s"),
        ("90", 90, "1m30s"),
        ("5", 5, "5s"),
        ("3600", 3600, "1h"),
        ("1h0m5s", 3605, "1h5s"),
        ("90m", 5400, "1h30m"),
        ("  2m  ", 120, "2m"),
    ] {
        let d = ca(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(d.duration(), Duration::from_secs(secs), "{input:?}");
        assert_eq!(d.to_string(), shown, "{input:?}");
        // What is displayed parses back to the same value.
        assert_eq!(ca(shown).unwrap(), d, "{shown:?}");
    }
}

#[test]
fn cancel_after_rejections() {
    for input in [
        "4s", "4", "0", "0s", "", " ", "garbage", "1x", "1.5s", "-5s", "s", "m5", "5ms", "30S",
        "1h1h", "30s1m", "1m 30s", "1h30", "5 s", "1d",
    ] {
        assert!(
            matches!(ca(input), Err(Error::InvalidInput(_))),
            "{input:?} should be rejected"
        );
    }
}

#[test]
fn cancel_after_overflow_is_an_error() {
    for input in [
        "99999999999999999999",
        "99999999999999999999s",
        "5124095576030432h",
        "307445734561825861m",
        "5124095576030431h59m",
        "18446744073709551615h",
    ] {
        assert!(
            matches!(ca(input), Err(Error::InvalidInput(_))),
            "{input:?} should overflow"
        );
    }
    // The largest number of seconds is fine.
    assert_eq!(
        ca("18446744073709551615").unwrap().duration().as_secs(),
        u64::MAX
    );
}

#[test]
fn cancel_after_from_duration() {
    assert!(CancelAfter::new(Duration::from_millis(4999)).is_err());
    let d = CancelAfter::new(Duration::from_millis(5999)).unwrap();
    assert_eq!(d.duration(), Duration::from_secs(5));
    assert_eq!(CancelAfter::MIN, Duration::from_secs(5));
    let req = CreatePrediction::new(Target::parse("a/b").unwrap())
        .cancel_after(CancelAfter::new(Duration::from_secs(90)).unwrap())
        .request(&proxy_cfg())
        .unwrap();
    assert_eq!(req.headers()["cancel-after"], "1m30s");
}

#[test]
fn target_parse() {
    assert_eq!(
        Target::parse("black-forest-labs/flux-schnell").unwrap(),
        Target::Model {
            owner: "black-forest-labs".into(),
            name: "flux-schnell".into()
        }
    );
    // owner/name:version is sent as the bare version.
    assert_eq!(
        Target::parse(&format!("lucataco/flux-schnell-lora:{HEX}")).unwrap(),
        Target::Version(HEX.into())
    );
    assert_eq!(Target::parse(HEX).unwrap(), Target::Version(HEX.into()));
    assert_eq!(
        Target::parse("dp-4d0bcc010b3049749a251855f12800be").unwrap(),
        Target::Version("dp-4d0bcc010b3049749a251855f12800be".into())
    );
    assert_eq!(
        "meta/llama-3.1_8b".parse::<Target>().unwrap(),
        Target::Model {
            owner: "meta".into(),
            name: "llama-3.1_8b".into()
        }
    );
    for bad in [
        "",
        "/",
        "owner/",
        "/name",
        "a/b/c",
        "a/b:",
        "a/b:c:d",
        "a b/c",
        "a/b c",
        "a/b:v w",
        "has space",
        ":abc",
        "a/b?x=1",
        "ö/b",
        "../x",
        "a/..",
    ] {
        assert!(
            matches!(Target::parse(bad), Err(Error::InvalidInput(_))),
            "{bad:?} should be rejected, got {:?}",
            Target::parse(bad)
        );
    }
}

#[test]
fn target_deployment() {
    assert_eq!(
        Target::deployment("acme/upscaler-prod").unwrap(),
        Target::Deployment {
            owner: "acme".into(),
            name: "upscaler-prod".into()
        }
    );
    assert!(Target::deployment("acme/upscaler:abc").is_err());
    assert!(Target::deployment("upscaler").is_err());
}

#[test]
fn model_ref_round_trip() {
    let r: ModelRef = format!("lucataco/flux-schnell-lora:{HEX}").parse().unwrap();
    assert_eq!(r.owner, "lucataco");
    assert_eq!(r.name, "flux-schnell-lora");
    assert_eq!(r.version.as_deref(), Some(HEX));
    assert_eq!(r.to_string(), format!("lucataco/flux-schnell-lora:{HEX}"));
    let plain = ModelRef::new("a", "b");
    assert_eq!(plain.to_string(), "a/b");
    assert_eq!(
        Target::from(plain),
        Target::Model {
            owner: "a".into(),
            name: "b".into()
        }
    );
}

#[test]
fn version_ids() {
    assert!(is_version_id(HEX));
    assert!(is_version_id("dp-4d0bcc010b3049749a251855f12800be"));
    assert!(!is_version_id("a/b"));
    assert!(!is_version_id(""));
    assert!(!is_version_id("a b"));
    assert!(!is_version_id(&"a".repeat(257)));
}

#[test]
fn create_body_shapes() {
    let cfg = proxy_cfg();
    let by_version = CreatePrediction::new(Target::Version(HEX.into()))
        .input_field("prompt", "a cat")
        .input_field("steps", 4)
        .request(&cfg)
        .unwrap();
    assert_eq!(
        body_json(&by_version),
        json!({"version": HEX, "input": {"prompt": "a cat", "steps": 4}})
    );
    let by_model = CreatePrediction::new(Target::parse("a/b").unwrap())
        .request(&cfg)
        .unwrap();
    assert_eq!(body_json(&by_model), json!({"input": {}}));
    assert!(by_model.headers().get("prefer").is_none());
    assert!(by_model.headers().get("cancel-after").is_none());
    // Model path segments are encoded.
    let odd = CreatePrediction::new(Target::Model {
        owner: "a b".into(),
        name: "c/d".into(),
    })
    .request(&cfg)
    .unwrap();
    assert_eq!(
        odd.uri(),
        "https://proxy.example/replicate/v1/models/a%20b/c%2Fd/predictions"
    );
}

#[test]
fn create_rejects_non_object_input() {
    for input in [json!([1, 2]), json!("prompt"), json!(null), json!(3)] {
        let err = CreatePrediction::new(Target::parse("a/b").unwrap())
            .input(input.clone())
            .request(&proxy_cfg())
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{input}");
    }
    // input_field replaces a non-object input with an object.
    let c = CreatePrediction::new(Target::parse("a/b").unwrap())
        .input(json!([1]))
        .input_field("x", 1);
    assert_eq!(c.input, json!({"x": 1}));
}
