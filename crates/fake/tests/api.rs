//! API behaviour: auth, routes, prediction lifecycle, lists, files.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Api, Conn, fast, is_rfc3339, request, split_url, start};
use replicate_fake::{FLUX_SCHNELL_VERSION, ModelScript, Options, Origin};
use serde_json::{Value, json};

#[test]
fn auth_is_required_with_problem_details() {
    let s = start(fast());
    for (path, auth) in [
        ("/v1/account", None),
        ("/v1/predictions", Some("Bearer wrong")),
        ("/replicate/v1/account", Some("Token hk-fake-token")),
        ("/v1/nope", None),
    ] {
        let mut headers = vec![];
        if let Some(a) = auth {
            headers.push(("Authorization", a));
        }
        let r = request("GET", &format!("{}{path}", s.base_url()), &headers, b"").unwrap();
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        assert_eq!(
            r.json(),
            json!({"title":"Unauthenticated","detail":"You did not pass a valid authentication token","status":401})
        );
    }
    let api = Api::new(&s);
    assert_eq!(
        api.get("/v1/account").json(),
        json!({"type":"user","username":"fake","name":"Fake User","github_url":null})
    );
    // The prefix serves the same API.
    let (_, prefix_path) = split_url(&s.prefixed_base_url());
    assert_eq!(prefix_path, "/replicate");
    let r = api.get("/replicate/v1/account");
    assert_eq!(r.status, 200);
    let r = api.get("/v1/nope");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.json()["status"], 404);
    assert_eq!(
        api.get("/v1/webhooks/default/secret").json()["key"],
        json!(s.webhook_secret())
    );
    assert!(s.webhook_secret().starts_with("whsec_"));
    // Every request was recorded, on the API origin, with lowercase headers.
    let reqs = s.requests();
    assert_eq!(reqs.len(), 8);
    assert!(reqs.iter().all(|r| r.origin == Origin::Api));
    assert_eq!(reqs[1].header("Authorization"), Some("Bearer wrong"));
    assert!(reqs[1].headers.iter().any(|(n, _)| n == "authorization"));
    s.clear_requests();
    assert!(s.requests().is_empty());
}

#[test]
fn seed_shaped_lifecycle_of_flux_schnell() {
    let s = start(fast());
    let api = Api::new(&s);
    let input = json!({"prompt": "anime", "num_outputs": 1, "go_fast": true});
    let r = api.post(
        "/replicate/v1/models/black-forest-labs/flux-schnell/predictions",
        &json!({ "input": input }),
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let p = r.json();
    let id = p["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 26);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    );
    let keys: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "model",
            "version",
            "input",
            "logs",
            "output",
            "data_removed",
            "error",
            "status",
            "created_at",
            "urls"
        ]
    );
    assert_eq!(p["model"], "black-forest-labs/flux-schnell");
    assert_eq!(p["version"], FLUX_SCHNELL_VERSION);
    assert_eq!(p["input"], input);
    assert_eq!(p["logs"], "");
    assert_eq!(p["output"], Value::Null);
    assert_eq!(p["status"], "starting");
    assert!(is_rfc3339(p["created_at"].as_str().unwrap(), 3));
    let base = s.base_url();
    assert_eq!(p["urls"]["get"], format!("{base}/v1/predictions/{id}"));
    assert_eq!(
        p["urls"]["cancel"],
        format!("{base}/v1/predictions/{id}/cancel")
    );
    assert_eq!(
        p["urls"]["stream"],
        format!("{}/v1/streams/{id}", s.stream_base_url())
    );
    assert_eq!(p["urls"]["web"], format!("https://replicate.com/p/{id}"));

    let done = api.wait(&id, Duration::from_secs(5));
    assert_eq!(done["status"], "succeeded");
    assert!(is_rfc3339(done["started_at"].as_str().unwrap(), 9));
    assert!(is_rfc3339(done["completed_at"].as_str().unwrap(), 9));
    assert!(
        done["logs"]
            .as_str()
            .unwrap()
            .starts_with("Using seed: 62182\nrunning quantized prediction\n")
    );
    assert!(
        done["logs"]
            .as_str()
            .unwrap()
            .ends_with("Total safe images: 1 out of 1\n")
    );
    assert!(done["metrics"]["predict_time"].as_f64().unwrap() > 0.0);
    assert!(
        done["metrics"]["total_time"].as_f64().unwrap()
            >= done["metrics"]["predict_time"].as_f64().unwrap()
    );
    assert_eq!(done["metrics"]["image_count"], 1);
    let outs = done["output"].as_array().unwrap();
    assert_eq!(outs.len(), 1);
    let url = outs[0].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/xezq/", s.files_base_url())),
        "{url}"
    );
    assert!(url.ends_with("/out-0.jpg"));
    assert_ne!(s.files_base_url(), s.base_url());

    // The file is served without auth on the files origin.
    let f = request("GET", url, &[], b"").unwrap();
    assert_eq!(f.status, 200);
    assert_eq!(f.header("content-type"), Some("image/jpeg"));
    assert_eq!(&f.body[..3], &[0xFF, 0xD8, 0xFF]);
    let last = s.requests().pop().unwrap();
    assert_eq!(last.origin, Origin::Files);
    assert_eq!(last.header("authorization"), None);
}

#[test]
fn create_by_version_forms_and_deployments() {
    let s = start(fast());
    let api = Api::new(&s);
    // Version of an arbitrary model, via GET model.
    let m = api.get("/v1/models/acme/hello/").json();
    assert_eq!(m["owner"], "acme");
    assert_eq!(m["name"], "hello");
    let vid = m["latest_version"]["id"].as_str().unwrap().to_owned();
    assert_eq!(vid.len(), 64);
    assert_eq!(vid, s.model_version("acme/hello"));
    assert!(m["latest_version"]["openapi_schema"]["components"]["schemas"]["Input"].is_object());
    let versions = api.get("/v1/models/acme/hello/versions").json();
    assert_eq!(versions["results"][0]["id"], vid.as_str());
    assert_eq!(
        api.get(&format!("/v1/models/acme/hello/versions/{vid}"))
            .status,
        200
    );
    assert_eq!(api.get("/v1/models/acme/hello/versions/nope").status, 404);

    for (version, model) in [
        (vid.clone(), "acme/hello"),
        (format!("acme/hello:{vid}"), "acme/hello"),
        (
            FLUX_SCHNELL_VERSION.to_owned(),
            "black-forest-labs/flux-schnell",
        ),
        ("fake/json".to_owned(), "fake/json"),
    ] {
        // flux-schnell requires a prompt, like the real model.
        let input = json!({"prompt": "a cat"});
        let r = api.post(
            "/v1/predictions",
            &json!({"version": version, "input": input}),
        );
        assert_eq!(r.status, 201, "{version}: {}", r.text());
        assert_eq!(r.json()["model"], model);
    }
    let r = api.post(
        "/v1/predictions",
        &json!({"version": "f".repeat(64), "input": {}}),
    );
    assert_eq!(r.status, 422);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));

    // Deployments.
    s.set_deployment("acme/prod", "fake/json");
    let r = api.post(
        "/v1/deployments/acme/prod/predictions",
        &json!({"input": {}}),
    );
    assert_eq!(r.status, 201);
    let p = r.json();
    assert_eq!(p["model"], "fake/json");
    assert_eq!(p["deployment"], "acme/prod");
    let done = api.wait(p["id"].as_str().unwrap(), Duration::from_secs(5));
    assert_eq!(done["output"]["answer"], 42);
}

#[test]
fn validation_errors() {
    let s = start(fast());
    let api = Api::new(&s);
    let cases = [
        ("/v1/models/a/b/predictions", json!({})),
        ("/v1/models/a/b/predictions", json!({"input": "x"})),
        (
            "/v1/models/a/b/predictions",
            json!({"input": {}, "extra": 1}),
        ),
        (
            "/v1/models/a/b/predictions",
            json!({"input": {}, "version": "x"}),
        ),
        (
            "/v1/models/a/b/predictions",
            json!({"input": {}, "webhook_events_filter": ["nope"]}),
        ),
        ("/v1/predictions", json!({"input": {}})),
        ("/v1/predictions", json!([])),
    ];
    for (path, body) in cases {
        let r = api.post(path, &body);
        assert_eq!(r.status, 422, "{body}: {}", r.text());
        let j = r.json();
        assert_eq!(j["status"], 422);
        assert!(j["detail"].as_str().unwrap().starts_with("- "), "{j}");
    }
    let r = api.post_with(
        "/v1/models/a/b/predictions",
        &json!({"input": {}}),
        &[("Cancel-After", "4s")],
    );
    assert_eq!(r.status, 422);
    let r = api.post_with(
        "/v1/models/a/b/predictions",
        &json!({"input": {}}),
        &[("Prefer", "wait=61")],
    );
    assert_eq!(r.status, 422);
    assert_eq!(api.get("/v1/predictions/doesnotexist").status, 404);
    assert_eq!(
        api.post("/v1/predictions/doesnotexist/cancel", &json!({}))
            .status,
        404
    );
    assert_eq!(s.prediction_count(), 0);

    let strict = start(Options {
        unknown_models_exist: false,
        ..fast()
    });
    let api = Api::new(&strict);
    assert_eq!(
        api.post("/v1/models/a/b/predictions", &json!({"input": {}}))
            .status,
        404
    );
    assert_eq!(api.get("/v1/models/a/b").status, 404);
    assert_eq!(
        api.post("/v1/models/fake/json/predictions", &json!({"input": {}}))
            .status,
        201
    );
}

#[test]
fn builtin_models_end_as_scripted() {
    let s = start(fast());
    let api = Api::new(&s);
    let ids: Vec<(String, &str)> = [
        "fake/fail",
        "fake/cancel",
        "fake/abort",
        "fake/text",
        "fake/json",
        "fake/urls",
        "fake/data-uri",
        "acme/anything",
    ]
    .into_iter()
    .map(|m| (api.create(m)["id"].as_str().unwrap().to_owned(), m))
    .collect();
    for (id, model) in ids {
        let p = api.wait(&id, Duration::from_secs(5));
        match model {
            "fake/fail" => {
                assert_eq!(p["status"], "failed");
                assert!(p["error"].as_str().unwrap().contains("Fake failure"));
                assert!(p["logs"].as_str().unwrap().contains("Traceback"));
                assert_eq!(p["output"], Value::Null);
            }
            "fake/cancel" => {
                assert_eq!(p["status"], "canceled");
                assert!(p.get("started_at").is_some());
            }
            "fake/abort" => {
                assert_eq!(p["status"], "aborted");
                assert!(p.get("started_at").is_none(), "{p}");
                assert!(p["metrics"].get("predict_time").is_none());
            }
            "fake/text" => {
                assert_eq!(p["output"], json!(["Hello", " world", "!"]));
                assert!(p["urls"]["stream"].is_string());
            }
            "fake/json" => assert_eq!(p["output"]["nested"]["ok"], true),
            "fake/urls" => {
                let urls = p["output"].as_array().unwrap();
                assert_eq!(urls.len(), 3);
                for u in urls {
                    let f = request("GET", u.as_str().unwrap(), &[], b"").unwrap();
                    assert_eq!(f.status, 200);
                    assert_eq!(&f.body[1..4], b"PNG");
                }
                assert!(p["urls"].get("stream").is_none());
            }
            "fake/data-uri" => {
                assert!(
                    p["output"]
                        .as_str()
                        .unwrap()
                        .starts_with("data:image/png;base64,")
                )
            }
            _ => {
                assert_eq!(p["status"], "succeeded");
                assert!(p["output"].as_str().unwrap().ends_with("/output.png"));
            }
        }
    }
}

#[test]
fn partial_output_and_unknown_status_while_running() {
    let s = start(fast());
    s.set_model(
        "acme/words",
        ModelScript::text(["a", "b", "c", "d"])
            .starting_ticks(1)
            .processing_ticks(40),
    );
    let api = Api::new(&s);
    let id = api.create("acme/words")["id"].as_str().unwrap().to_owned();
    let mut seen_partial = false;
    loop {
        let p = api.get(&format!("/v1/predictions/{id}")).json();
        if p["status"] == "processing"
            && let Some(a) = p["output"].as_array()
            && (1..4).contains(&a.len())
        {
            seen_partial = true;
        }
        if p["status"] == "succeeded" {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(seen_partial);

    // A slower tick, so polling sees every phase even on a loaded machine.
    let slow = start(Options {
        tick: Duration::from_millis(40),
        ..Options::default()
    });
    let api = Api::new(&slow);
    let id = api.create("fake/unknown-status")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut statuses = vec![];
    loop {
        let p = api.get(&format!("/v1/predictions/{id}")).json();
        let st = p["status"].as_str().unwrap().to_owned();
        if statuses.last() != Some(&st) {
            statuses.push(st.clone());
        }
        if st == "succeeded" {
            break;
        }
        std::thread::sleep(Duration::from_millis(3));
    }
    assert_eq!(statuses, ["starting", "quantum", "succeeded"]);
}

#[test]
fn prefer_wait_and_cancel() {
    let s = start(Options {
        header_time_scale: 0.1,
        ..fast()
    });
    let api = Api::new(&s);
    let r = api.post_with(
        "/v1/models/fake/json/predictions",
        &json!({"input": {}}),
        &[("Prefer", "wait")],
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["status"], "succeeded");
    assert_eq!(r.json()["output"]["answer"], 42);

    // wait=1 scaled to 100 ms; fake/slow needs 520 ms.
    let r = api.post_with(
        "/v1/models/fake/slow/predictions",
        &json!({"input": {}}),
        &[("Prefer", "wait=1")],
    );
    assert_eq!(r.status, 202);
    let p = r.json();
    let id = p["id"].as_str().unwrap();
    assert_eq!(
        r.header("location"),
        Some(format!("{}/v1/predictions/{id}", s.base_url()).as_str())
    );
    assert!(["starting", "processing"].contains(&p["status"].as_str().unwrap()));

    let c = api.post(&format!("/v1/predictions/{id}/cancel"), &json!({}));
    assert_eq!(c.status, 200);
    assert_eq!(c.json()["status"], "canceled");
    assert!(c.json()["completed_at"].is_string());
    std::thread::sleep(Duration::from_millis(30));
    let p = api.get(&format!("/v1/predictions/{id}")).json();
    assert_eq!(p["status"], "canceled");
    // Terminal stays terminal.
    let done = api.create("fake/json");
    let done = api.wait(done["id"].as_str().unwrap(), Duration::from_secs(5));
    let c = api.post(
        &format!("/v1/predictions/{}/cancel", done["id"].as_str().unwrap()),
        &json!({}),
    );
    assert_eq!(c.json()["status"], "succeeded");

    // A cancel while a Prefer: wait is held ends the wait.
    s.set_model(
        "acme/long",
        ModelScript::default().processing_time(Duration::from_secs(30)),
    );
    let handle = s.handle();
    let canceler = std::thread::spawn(move || {
        let api = Api {
            base: handle.base_url(),
            token: handle.token().to_owned(),
        };
        loop {
            std::thread::sleep(Duration::from_millis(20));
            let list = api.get("/v1/predictions").json();
            if let Some(p) = list["results"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["model"] == "acme/long")
            {
                api.post(
                    &format!("/v1/predictions/{}/cancel", p["id"].as_str().unwrap()),
                    &json!({}),
                );
                return;
            }
        }
    });
    let r = api.post_with(
        "/v1/models/acme/long/predictions",
        &json!({"input": {}}),
        &[("Prefer", "wait=60")],
    );
    canceler.join().unwrap();
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["status"], "canceled");
}

#[test]
fn cancel_after_sets_deadline_and_ends_predictions() {
    let s = start(Options {
        header_time_scale: 0.01,
        ..fast()
    });
    s.set_model(
        "acme/late-start",
        ModelScript::default().starting_time(Duration::from_secs(5)),
    );
    s.set_model(
        "acme/long",
        ModelScript::default()
            .starting_ticks(0)
            .processing_time(Duration::from_secs(5)),
    );
    let api = Api::new(&s);
    let a = api.post_with(
        "/v1/models/acme/late-start/predictions",
        &json!({"input": {}}),
        &[("Cancel-After", "5s")],
    );
    assert_eq!(a.status, 201);
    let a = a.json();
    assert!(is_rfc3339(a["deadline"].as_str().unwrap(), 3));
    let b = api.post_with(
        "/v1/models/acme/long/predictions",
        &json!({"input": {}}),
        &[("Cancel-After", "0h0m6s")],
    );
    assert_eq!(b.status, 201);
    let a = api.wait(a["id"].as_str().unwrap(), Duration::from_secs(3));
    assert_eq!(a["status"], "aborted");
    assert!(a.get("started_at").is_none());
    let b = api.wait(b.json()["id"].as_str().unwrap(), Duration::from_secs(3));
    assert_eq!(b["status"], "canceled");
    assert!(b.get("started_at").is_some());
}

#[test]
fn list_pagination_with_absolute_urls() {
    for host in [None, Some("https://api.replicate.com")] {
        let s = start(Options {
            page_size: 3,
            api_host_in_bodies: host.map(str::to_owned),
            ..fast()
        });
        let api = Api::new(&s);
        let created: Vec<String> = (0..8)
            .map(|_| api.create("fake/json")["id"].as_str().unwrap().to_owned())
            .collect();
        let expected_host = host.map_or(s.base_url(), str::to_owned);
        let mut seen = Vec::new();
        let mut page = api.get("/replicate/v1/predictions").json();
        assert_eq!(page["previous"], Value::Null);
        let mut pages = 1;
        loop {
            for p in page["results"].as_array().unwrap() {
                assert_eq!(p["source"], "api");
                assert!(p.get("logs").is_none());
                assert!(
                    p["urls"]["get"]
                        .as_str()
                        .unwrap()
                        .starts_with(&expected_host)
                );
                seen.push(p["id"].as_str().unwrap().to_owned());
            }
            let Some(next) = page["next"].as_str() else {
                break;
            };
            let prefix = format!("{expected_host}/v1/predictions?cursor=");
            assert!(next.starts_with(&prefix), "{next}");
            // Follow the cursor on the fake's own base URL, as clients should.
            let cursor = &next[prefix.len()..];
            page = api.get(&format!("/v1/predictions?cursor={cursor}")).json();
            assert!(
                page["previous"]
                    .as_str()
                    .unwrap()
                    .starts_with(&expected_host)
            );
            pages += 1;
        }
        assert_eq!(pages, 3);
        let newest_first: Vec<String> = created.into_iter().rev().collect();
        assert_eq!(seen, newest_first);
        assert_eq!(api.get("/v1/predictions?cursor=garbage!").status, 400);
        if host.is_some() {
            let p = api.create("fake/json");
            assert_eq!(
                p["urls"]["get"],
                format!(
                    "https://api.replicate.com/v1/predictions/{}",
                    p["id"].as_str().unwrap()
                )
            );
        }
    }
}

#[test]
fn outputs_expire() {
    let s = start(Options {
        output_ttl: Duration::from_millis(500),
        ..fast()
    });
    let api = Api::new(&s);
    let p = api.create("fake/urls");
    let id = p["id"].as_str().unwrap();
    let done = api.wait(id, Duration::from_secs(5));
    assert_eq!(done["data_removed"], false);
    let url = done["output"][0].as_str().unwrap().to_owned();
    assert_eq!(request("GET", &url, &[], b"").unwrap().status, 200);
    std::thread::sleep(Duration::from_millis(600));
    let gone = api.get(&format!("/v1/predictions/{id}")).json();
    assert_eq!(gone["data_removed"], true);
    assert_eq!(gone["output"], Value::Null);
    assert_eq!(gone["input"], json!({}));
    assert_eq!(request("GET", &url, &[], b"").unwrap().status, 404);
}

#[test]
fn files_api_roundtrip() {
    let s = start(Options {
        page_size: 1,
        ..fast()
    });
    let api = Api::new(&s);
    let boundary = "----fakeboundary42";
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"content\"; filename=\"hello.txt\"\r\nContent-Type: text/plain\r\n\r\n").as_bytes());
    body.extend_from_slice(b"hello world");
    body.extend_from_slice(format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n{{\"ref\": 7}}\r\n--{boundary}--\r\n").as_bytes());
    let ct = format!("multipart/form-data; boundary={boundary}");
    let auth = api.auth();
    let r = request(
        "POST",
        &format!("{}/v1/files", s.base_url()),
        &[("Authorization", &auth), ("Content-Type", &ct)],
        &body,
    )
    .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let f = r.json();
    assert_eq!(f["name"], "hello.txt");
    assert_eq!(f["content_type"], "text/plain");
    assert_eq!(f["size"], 11);
    assert_eq!(f["metadata"], json!({"ref": 7}));
    assert_eq!(
        f["checksums"]["sha256"],
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    );
    let id = f["id"].as_str().unwrap();
    assert_eq!(f["urls"]["get"], format!("{}/v1/files/{id}", s.base_url()));
    assert_eq!(api.get(&format!("/v1/files/{id}")).json()["id"], id);
    assert_eq!(
        api.get(&format!("/v1/files/{id}/download")).body,
        b"hello world"
    );
    // A second file, so the list has two pages of one.
    let r2 = request(
        "POST",
        &format!("{}/v1/files", s.base_url()),
        &[("Authorization", &auth), ("Content-Type", &ct)],
        &body,
    )
    .unwrap();
    assert_eq!(r2.status, 201);
    let page = api.get("/v1/files").json();
    assert_eq!(page["results"].as_array().unwrap().len(), 1);
    assert!(page["next"].as_str().unwrap().contains("/v1/files?cursor="));
    let del = request(
        "DELETE",
        &format!("{}/v1/files/{id}", s.base_url()),
        &[("Authorization", &auth)],
        b"",
    )
    .unwrap();
    assert_eq!(del.status, 204);
    assert_eq!(api.get(&format!("/v1/files/{id}")).status, 404);
}

#[test]
fn keep_alive_connections_are_reused() {
    let s = start(fast());
    let (host, _) = split_url(&s.base_url());
    let mut conn = Conn::open(&host).unwrap();
    let auth = format!("Bearer {}", s.token());
    for _ in 0..50 {
        let r = conn
            .send("GET", "/v1/account", &[("Authorization", &auth)], b"")
            .unwrap();
        assert_eq!(r.status, 200);
    }
    assert_eq!(s.connections_accepted(), 1);
    let reqs = s.requests();
    assert_eq!(reqs.len(), 50);
    assert!(reqs.iter().all(|r| r.connection == 1));
}
