//! One table of scenarios, run against both clients and the fake server. Each scenario asserts on
//! what the client returned and on the server's request log.

use std::time::Duration;

use replicate_fake::{Fault, FaultRule, Matcher, ModelScript, Options, Origin};
use replicate_protocol::{
    CreatePrediction, Error, ModelRef, PollPolicy, Status, SyncWait, Target, WaitOptions,
};
use replicate_tests::{Env, fast_options, scenario};
use serde_json::{Value, json};

const SEED_PROMPT: &str = "Japanese cartoon anime style, (1 person) (Gender: Male, Age: 30, Hair: Short black hair, Outfit: Dark blue hunting attire, includes a fitted jacket and trousers.) (A dimly lit room filled with tension, is questioning Female, 27 years old, long black hair, pink tulle dress., who stands nervously in her pink dress, the sound of rain pattering against the window.)";
const LORA_VERSION: &str = "2a6b576af31790b470f0a8442e1e9791213fa13799cbb65a9fc1436e96389574";

fn seed_flux_input() -> Value {
    json!({
        "prompt": SEED_PROMPT,
        "go_fast": true,
        "megapixels": "1",
        "num_outputs": 1,
        "aspect_ratio": "1:1",
        "output_format": "jpg",
        "output_quality": 80,
        "num_inference_steps": 4
    })
}

fn seed_lora_input() -> Value {
    json!({
        "prompt": SEED_PROMPT,
        "hf_lora": "alvdansen/frosting_lane_flux",
        "lora_scale": 0.8,
        "num_outputs": 1,
        "aspect_ratio": "1:1",
        "output_format": "webp",
        "output_quality": 80,
        "prompt_strength": 0.8,
        "num_inference_steps": 4
    })
}

fn creates(env: &Env) -> usize {
    env.fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/predictions"))
        .count()
}

scenario!(success_by_model_path, |env| {
    let out = env
        .driver
        .run("black-forest-labs/flux-schnell", seed_flux_input())
        .expect("run succeeds");
    let urls = out.as_array().expect("a list of URLs");
    assert_eq!(urls.len(), 1);
    let url = urls[0].as_str().expect("a URL");
    assert!(url.starts_with(&env.fake.files_base_url()), "{url}");
    assert!(url.ends_with("/out-0.jpg"));
    assert_eq!(
        env.count(
            "POST",
            "/v1/models/black-forest-labs/flux-schnell/predictions"
        ),
        1
    );
    assert!(env.count("GET", "") >= 1, "it polled");
});

scenario!(success_by_version, |env| {
    env.fake.set_model(
        "lucataco/flux-schnell-lora",
        ModelScript::default().version(LORA_VERSION),
    );
    let model = format!("lucataco/flux-schnell-lora:{LORA_VERSION}");
    let out = env.driver.run(&model, seed_lora_input()).expect("run");
    assert!(out.is_array() || out.is_string(), "{out}");
    let create = env
        .fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("a create");
    assert_eq!(create.path, "/v1/predictions");
    let body = create.json().expect("JSON body");
    assert_eq!(body["version"], LORA_VERSION, "the bare id is sent");
    assert_eq!(body["input"], seed_lora_input());
});

scenario!(seed_requests_through_the_replicate_prefix, |env| {
    // The two documented calls of the seed guide, through the proxy prefix.
    env.fake.set_model(
        "lucataco/flux-schnell-lora",
        ModelScript::default().version(LORA_VERSION),
    );
    let prefixed = env.fake.prefixed_base_url();
    env.rebuild(|s| s.base_url = prefixed);
    env.driver
        .run("black-forest-labs/flux-schnell", seed_flux_input())
        .expect("by model path");
    env.driver
        .run(
            &format!("lucataco/flux-schnell-lora:{LORA_VERSION}"),
            seed_lora_input(),
        )
        .expect("by version");
    let (log, elsewhere): (Vec<_>, Vec<_>) = env
        .fake
        .requests()
        .into_iter()
        .partition(|r| r.origin == Origin::Api);
    assert!(
        log.iter().all(|r| r.path.starts_with("/replicate/v1/")),
        "every request under the prefix"
    );
    // The only requests to another origin are stream reads, and they carry no token.
    assert!(
        elsewhere
            .iter()
            .all(|r| r.path.starts_with("/v1/streams/") && r.header("authorization").is_none()),
        "{elsewhere:?}"
    );
    let posts: Vec<_> = log.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 2);
    assert_eq!(
        posts[0].path,
        "/replicate/v1/models/black-forest-labs/flux-schnell/predictions"
    );
    assert_eq!(
        posts[0].json().expect("json"),
        json!({"input": seed_flux_input()})
    );
    assert_eq!(posts[1].path, "/replicate/v1/predictions");
    assert_eq!(
        posts[1].json().expect("json"),
        json!({"version": LORA_VERSION, "input": seed_lora_input()})
    );
    let bearer = format!("Bearer {}", env.fake.token());
    for r in &log {
        assert_eq!(r.header("authorization"), Some(bearer.as_str()));
        assert_eq!(r.header("content-type").is_some(), r.method == "POST");
        if r.method == "POST" {
            assert_eq!(r.header("content-type"), Some("application/json"));
        }
        assert!(
            r.header("user-agent")
                .is_some_and(|ua| ua.starts_with("replicate-rust/"))
        );
        assert_eq!(
            r.header("prefer"),
            None,
            "sync mode is off in these settings"
        );
    }
    // Polls go to the prefix too, by id.
    assert!(
        log.iter()
            .any(|r| r.method == "GET" && r.path.starts_with("/replicate/v1/predictions/"))
    );
});

scenario!(
    follow_ups_never_go_to_the_hosts_written_in_bodies,
    Options {
        api_host_in_bodies: Some("https://api.replicate.com".into()),
        page_size: 2,
        ..fast_options()
    },
    |env| {
        for _ in 0..3 {
            env.driver.run("acme/model", json!({})).expect("run");
        }
        let all = env.driver.list_all().expect("list");
        assert_eq!(all.len(), 3);
        let p = env.driver.get(&all[0].id).expect("get");
        assert!(
            p.urls
                .as_ref()
                .and_then(|u| u.get.as_deref())
                .is_some_and(|g| g.starts_with("https://api.replicate.com/"))
        );
        // Had a client followed one of those URLs, it would have failed: no network.
    }
);

scenario!(failed_with_logs, |env| {
    let err = env.driver.run("fake/fail", json!({})).expect_err("fails");
    let Error::PredictionFailed(p) = &err else {
        panic!("expected PredictionFailed, got {err:?}");
    };
    assert_eq!(p.status, Status::Failed);
    assert!(p.error_message().is_some_and(|m| !m.is_empty()));
    assert!(
        p.logs.as_deref().is_some_and(|l| !l.is_empty()),
        "logs are kept"
    );
    assert!(err.to_string().contains("failed"));
});

scenario!(canceled, |env| {
    let err = env
        .driver
        .run("fake/cancel", json!({}))
        .expect_err("canceled");
    assert!(
        matches!(err, Error::PredictionCanceled(ref p) if p.status == Status::Canceled),
        "{err:?}"
    );
});

scenario!(aborted, |env| {
    let err = env
        .driver
        .run("fake/abort", json!({}))
        .expect_err("aborted");
    let Error::PredictionAborted(p) = &err else {
        panic!("expected PredictionAborted, got {err:?}");
    };
    assert!(p.started_at.is_none());
    assert!(err.to_string().contains("not billed"));
});

scenario!(deadline_reached_sends_a_cancel, |env| {
    let create = CreatePrediction::new(Target::parse("fake/slow").expect("target"));
    let opts = env.driver.wait_options_within(Duration::from_millis(60));
    let err = env.driver.run_with(create, opts).expect_err("deadline");
    let Error::DeadlineExceeded {
        id,
        last,
        cancel_sent,
    } = &err
    else {
        panic!("expected DeadlineExceeded, got {err:?}");
    };
    assert!(*cancel_sent);
    assert_eq!(last.as_ref().map(|p| p.id.as_str()), Some(id.as_str()));
    assert_eq!(
        env.count("POST", &format!("/v1/predictions/{id}/cancel")),
        1
    );
    assert_eq!(env.driver.get(id).expect("get").status, Status::Canceled);
});

scenario!(throttled_create_is_retried_after_retry_after, |env| {
    env.fake.push_fault(FaultRule::new(
        Matcher::new("POST", "/predictions"),
        Fault::throttled(1),
    ));
    env.driver
        .run("acme/model", json!({"x": 1}))
        .expect("succeeds after the 429");
    assert_eq!(creates(&env), 2, "one throttled create, one real");
    assert_eq!(env.fake.prediction_count(), 1);
});

scenario!(service_unavailable_poll_is_retried, |env| {
    env.fake.push_fault(
        FaultRule::new(Matcher::new("GET", "/v1/predictions/"), Fault::status(503)).times(2),
    );
    env.driver
        .run("acme/model", json!({}))
        .expect("succeeds after two 503s");
    assert_eq!(creates(&env), 1);
});

scenario!(service_unavailable_create_is_not_retried, |env| {
    env.fake.push_fault(FaultRule::new(
        Matcher::new("POST", "/predictions"),
        Fault::status(503),
    ));
    let err = env
        .driver
        .run("acme/model", json!({}))
        .expect_err("503 on create");
    // A 5xx may come after the server acted: never re-sent, and said so.
    assert!(matches!(err, Error::CreateOutcomeUnknown(_)), "{err:?}");
    assert!(err.to_string().contains("503"), "{err}");
    assert_eq!(creates(&env), 1);
});

scenario!(reset_after_create_is_never_resent, |env| {
    env.fake.push_fault(FaultRule::new(
        Matcher::new("POST", "/predictions"),
        Fault::ResetAfterRead,
    ));
    let err = env
        .driver
        .run("acme/model", json!({}))
        .expect_err("lost answer");
    assert!(matches!(err, Error::CreateOutcomeUnknown(_)), "{err:?}");
    assert!(err.to_string().contains("may have been created"), "{err}");
    assert_eq!(creates(&env), 1, "exactly one create");
    assert_eq!(env.fake.prediction_count(), 1, "and it did create one");
});

scenario!(truncated_json_is_a_decode_error, |env| {
    let p = env
        .driver
        .create(CreatePrediction::new(
            Target::parse("acme/model").expect("t"),
        ))
        .expect("create");
    env.fake.push_fault(FaultRule::new(
        Matcher::new("GET", &p.id),
        Fault::TruncatedJson,
    ));
    let err = env.driver.get(&p.id).expect_err("truncated");
    assert!(matches!(err, Error::Decode { status: 200, .. }), "{err:?}");
});

scenario!(
    pagination_over_three_pages,
    Options {
        page_size: 2,
        ..fast_options()
    },
    |env| {
        let mut ids = Vec::new();
        for i in 0..5 {
            let p = env
                .driver
                .create(
                    CreatePrediction::new(Target::parse("acme/model").expect("t"))
                        .input(json!({"i": i})),
                )
                .expect("create");
            ids.push(p.id);
        }
        let listed: Vec<String> = env
            .driver
            .list_all()
            .expect("list")
            .into_iter()
            .map(|p| p.id)
            .collect();
        ids.reverse();
        assert_eq!(listed, ids, "every prediction, newest first, once");
        let pages = env.count("GET", "/v1/predictions");
        assert_eq!(pages, 3);
    }
);

scenario!(unknown_status_does_not_panic, |env| {
    let out = env
        .driver
        .run("fake/unknown-status", json!({}))
        .expect("ends succeeded");
    assert_eq!(out, json!("done"));
});

scenario!(sync_mode_within_the_window_is_one_request, |env| {
    env.rebuild(|s| s.sync_wait = Some(SyncWait::seconds(5).expect("5")));
    env.driver.run("acme/model", json!({})).expect("run");
    let log = env.fake.requests();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].header("prefer"), Some("wait=5"));
});

scenario!(sync_mode_partial_answer_is_not_done, |env| {
    // A 1 s sync window on a model that takes longer: the 202 answer is `processing` with partial
    // output, and the client must keep polling rather than return it.
    env.fake.set_model(
        "acme/long-text",
        ModelScript::text(["a", "b", "c"]).processing_time(Duration::from_millis(1500)),
    );
    env.rebuild(|s| s.sync_wait = Some(SyncWait::seconds(1).expect("1")));
    let out = env.driver.run("acme/long-text", json!({})).expect("run");
    assert_eq!(out, json!(["a", "b", "c"]));
    assert!(env.count("GET", "") >= 1, "it polled after the sync window");
});

scenario!(wait_on_a_created_prediction, |env| {
    let p = env
        .driver
        .create(CreatePrediction::new(Target::from(ModelRef::new(
            "acme", "m",
        ))))
        .expect("create");
    assert_eq!(p.status, Status::Starting);
    let done = env
        .driver
        .wait_with(
            &p.id,
            WaitOptions {
                poll: PollPolicy::fixed(Duration::from_millis(10)),
                ..env.driver.wait_options()
            },
        )
        .expect("wait");
    assert_eq!(done.status, Status::Succeeded);
});

scenario!(cancel_a_running_prediction, |env| {
    let p = env
        .driver
        .create(CreatePrediction::new(
            Target::parse("fake/slow").expect("t"),
        ))
        .expect("create");
    let c = env.driver.cancel(&p.id).expect("cancel");
    assert_eq!(c.status, Status::Canceled);
});

scenario!(unknown_prediction_is_a_404, |env| {
    let err = env.driver.get("doesnotexist").expect_err("404");
    assert_eq!(err.status(), Some(404));
    assert!(
        err.api().and_then(|a| a.problem.as_ref()).is_some(),
        "problem details kept"
    );
});

scenario!(wrong_token_is_a_401_without_the_token_in_the_error, |env| {
    env.rebuild(|s| s.token = "r8_wrong_secret_token".into());
    let err = env.driver.get("x").expect_err("401");
    assert_eq!(err.status(), Some(401));
    assert!(!err.to_string().contains("r8_wrong_secret_token"));
    assert!(!format!("{err:?}").contains("r8_wrong_secret_token"));
});

scenario!(garbage_json_after_a_create_may_have_created_it, |env| {
    env.fake.push_fault(FaultRule::new(
        Matcher::new("POST", "/predictions"),
        Fault::GarbageJson,
    ));
    let err = env
        .driver
        .create(CreatePrediction::new(Target::parse("acme/m").expect("t")))
        .expect_err("garbage");
    assert!(matches!(err, Error::CreateOutcomeUnknown(_)), "{err:?}");
    assert!(err.to_string().contains("may have been created"), "{err}");
    assert_eq!(creates(&env), 1);
});

scenario!(garbage_json_on_a_get_is_a_decode_error, |env| {
    let p = env
        .driver
        .create(CreatePrediction::new(Target::parse("acme/m").expect("t")))
        .expect("created");
    env.fake.push_fault(FaultRule::new(
        Matcher::new("GET", "/predictions/"),
        Fault::GarbageJson,
    ));
    let err = env.driver.get(&p.id).expect_err("garbage");
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
});
