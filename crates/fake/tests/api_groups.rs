//! The rest of the API: models, versions, examples, READMEs, search, trainings, deployments,
//! collections and hardware.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Api, Resp, fast, is_rfc3339, request, start};
use replicate_fake::{BlockingFakeServer, FLUX_SCHNELL_VERSION, ModelScript, Options};
use serde_json::{Value, json};

/// Sends `method path` with the token, and a body of this content type when given.
fn call(s: &BlockingFakeServer, method: &str, path: &str, body: Option<(&str, &[u8])>) -> Resp {
    let auth = format!("Bearer {}", s.token());
    let mut headers = vec![("Authorization", auth.as_str())];
    let bytes: &[u8] = match body {
        Some((ct, b)) => {
            headers.push(("Content-Type", ct));
            b
        }
        None => b"",
    };
    request(method, &format!("{}{path}", s.base_url()), &headers, bytes).unwrap()
}

fn json_call(s: &BlockingFakeServer, method: &str, path: &str, body: &Value) -> Resp {
    let bytes = serde_json::to_vec(body).unwrap();
    call(s, method, path, Some(("application/json", &bytes)))
}

/// Asserts a problem-details error with this status.
fn assert_problem(r: &Resp, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let v = r.json();
    assert_eq!(v["status"], status);
    assert!(v["title"].is_string() && v["detail"].is_string(), "{v}");
    v
}

/// Follows `next` from `first` (a path), keeping only the cursor as clients do; returns every
/// item and the number of pages. Checks that `next` names `host`.
fn all_pages(
    s: &BlockingFakeServer,
    method: &str,
    first: &str,
    body: Option<(&str, &[u8])>,
    host: &str,
) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut path = first.to_owned();
    loop {
        let r = call(s, method, &path, body);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let page = r.json();
        pages += 1;
        items.extend(page["results"].as_array().unwrap().iter().cloned());
        let Some(next) = page["next"].as_str() else {
            return (items, pages);
        };
        assert!(next.starts_with(host), "{next} should name {host}");
        let cursor = next
            .split("cursor=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();
        let base = first.split('?').next().unwrap();
        let keep: String = first
            .split_once('?')
            .map(|(_, q)| format!("&{q}"))
            .unwrap_or_default();
        path = format!("{base}?cursor={cursor}{keep}");
        assert!(pages < 100, "runaway pagination");
    }
}

fn names(models: &[Value]) -> Vec<String> {
    models
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["owner"].as_str().unwrap(),
                m["name"].as_str().unwrap()
            )
        })
        .collect()
}

/// Polls `GET path` until the job is terminal.
fn wait_job(s: &BlockingFakeServer, path: &str) -> Value {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let j = call(s, "GET", path, None).json();
        let status = j["status"].as_str().unwrap().to_owned();
        if ["succeeded", "failed", "canceled", "aborted"].contains(&status.as_str()) {
            return j;
        }
        assert!(Instant::now() < until, "still {status}: {j}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn models_list_create_update_delete() {
    for host in [None, Some("https://api.replicate.com")] {
        let s = start(Options {
            page_size: 4,
            api_host_in_bodies: host.map(str::to_owned),
            ..fast()
        });
        let expected_host = host.map_or(s.base_url(), str::to_owned);
        let (models, pages) = all_pages(&s, "GET", "/v1/models", None, &expected_host);
        let listed = names(&models);
        // The built-in models, newest first.
        let mut builtins: Vec<String> = replicate_fake::BUILTIN_MODELS
            .iter()
            .map(|m| (*m).to_owned())
            .collect();
        builtins.reverse();
        assert_eq!(listed, builtins);
        assert_eq!(pages, builtins.len().div_ceil(4));
        let flux = &models[models.len() - 1];
        assert_eq!(flux["latest_version"]["id"], FLUX_SCHNELL_VERSION);
        assert_eq!(flux["is_official"], true);
        assert_eq!(flux["visibility"], "public");
        assert_eq!(
            flux["url"],
            "https://replicate.com/black-forest-labs/flux-schnell"
        );

        // Oldest first, with the sort kept in `next`.
        let first = call(
            &s,
            "GET",
            "/v1/models?sort_by=model_created_at&sort_direction=asc",
            None,
        )
        .json();
        assert!(
            first["next"]
                .as_str()
                .unwrap()
                .ends_with("&sort_by=model_created_at&sort_direction=asc")
        );
        let (asc, _) = all_pages(
            &s,
            "GET",
            "/v1/models?sort_by=model_created_at&sort_direction=asc",
            None,
            &expected_host,
        );
        builtins.reverse();
        assert_eq!(names(&asc), builtins);
        assert_problem(&call(&s, "GET", "/v1/models?sort_direction=up", None), 400);
        assert_problem(&call(&s, "GET", "/v1/models?sort_by=stars", None), 400);
    }

    let s = start(fast());
    let body = json!({
        "owner": "alice", "name": "hot-dog-detector", "visibility": "private",
        "hardware": "cpu", "description": "Detect hot dogs in images",
        "github_url": "https://github.com/alice/hot-dog-detector"
    });
    let r = json_call(&s, "POST", "/v1/models", &body);
    assert_eq!(r.status, 201, "{}", r.text());
    let m = r.json();
    let keys: Vec<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "url",
            "owner",
            "name",
            "description",
            "visibility",
            "github_url",
            "paper_url",
            "license_url",
            "run_count",
            "cover_image_url",
            "default_example",
            "latest_version",
            "is_official"
        ]
    );
    assert_eq!(m["owner"], "alice");
    assert_eq!(m["name"], "hot-dog-detector");
    assert_eq!(m["visibility"], "private");
    assert_eq!(m["description"], "Detect hot dogs in images");
    assert_eq!(m["latest_version"], Value::Null);
    assert_eq!(m["run_count"], 0);
    assert_eq!(
        call(&s, "GET", "/v1/models/alice/hot-dog-detector", None).json(),
        m
    );
    // A private model is not listed; a second create conflicts; bad bodies are 422.
    let listed = names(
        &call(&s, "GET", "/v1/models", None).json()["results"]
            .as_array()
            .unwrap()
            .clone(),
    );
    assert!(!listed.contains(&"alice/hot-dog-detector".to_owned()));
    assert_problem(&json_call(&s, "POST", "/v1/models", &body), 409);
    let bad = assert_problem(
        &json_call(
            &s,
            "POST",
            "/v1/models",
            &json!({"owner": "alice", "name": "x", "visibility": "secret", "hardware": "tpu", "color": 1}),
        ),
        422,
    );
    let detail = bad["detail"].as_str().unwrap();
    assert!(detail.contains("visibility"), "{detail}");
    assert!(detail.contains("hardware"), "{detail}");
    assert!(detail.contains("color"), "{detail}");
    assert_problem(
        &json_call(&s, "POST", "/v1/models", &json!({"owner": "alice"})),
        422,
    );
    assert_problem(
        &call(&s, "POST", "/v1/models", Some(("application/json", b"{"))),
        400,
    );

    // Update, README.
    assert_problem(
        &call(&s, "GET", "/v1/models/alice/hot-dog-detector/readme", None),
        404,
    );
    let r = json_call(
        &s,
        "PATCH",
        "/v1/models/alice/hot-dog-detector",
        &json!({"description": "Hot dog or not", "readme": "# Hot Dog Detector\n\n🌭\n", "license_url": "https://choosealicense.com/licenses/mit/"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let m = r.json();
    assert_eq!(m["description"], "Hot dog or not");
    assert_eq!(m["license_url"], "https://choosealicense.com/licenses/mit/");
    assert_eq!(m["github_url"], "https://github.com/alice/hot-dog-detector");
    let readme = call(&s, "GET", "/v1/models/alice/hot-dog-detector/readme", None);
    assert_eq!(readme.status, 200);
    assert_eq!(
        readme.header("content-type"),
        Some("text/markdown; charset=utf-8")
    );
    assert_eq!(readme.text(), "# Hot Dog Detector\n\n🌭\n");
    assert_problem(
        &json_call(
            &s,
            "PATCH",
            "/v1/models/alice/hot-dog-detector",
            &json!({"visibility": "public"}),
        ),
        422,
    );
    // A scripted model has a default README.
    let readme = call(&s, "GET", "/v1/models/fake/json/readme", None);
    assert_eq!(readme.status, 200);
    assert!(readme.text().starts_with("# fake/json\n"));

    // Delete: public models and models with versions cannot be deleted.
    assert_problem(&call(&s, "DELETE", "/v1/models/fake/json", None), 403);
    let r = call(&s, "DELETE", "/v1/models/alice/hot-dog-detector", None);
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    assert_problem(
        &call(&s, "GET", "/v1/models/alice/hot-dog-detector", None),
        404,
    );
    assert_problem(
        &call(&s, "DELETE", "/v1/models/alice/hot-dog-detector", None),
        404,
    );
    assert_problem(
        &call(
            &s,
            "POST",
            "/v1/models/alice/hot-dog-detector/predictions",
            Some(("application/json", b"{\"input\":{}}")),
        ),
        404,
    );
    // It can be created again.
    assert_eq!(json_call(&s, "POST", "/v1/models", &body).status, 201);
    assert_problem(
        &call(&s, "PUT", "/v1/models/alice/hot-dog-detector", None),
        405,
    );
}

#[test]
fn search_by_query_method_and_get_search() {
    let s = start(Options {
        page_size: 2,
        ..fast()
    });
    let host = s.base_url();
    let (found, pages) = all_pages(
        &s,
        "QUERY",
        "/v1/models",
        Some(("text/plain", b"fake")),
        &host,
    );
    // Every built-in model but flux-schnell is named fake/...; flux's description names the fake.
    assert_eq!(found.len(), replicate_fake::BUILTIN_MODELS.len());
    assert_eq!(pages, found.len().div_ceil(2));
    let (found, _) = all_pages(
        &s,
        "QUERY",
        "/v1/models",
        Some(("text/plain; charset=utf-8", b"FLUX schnell")),
        &host,
    );
    assert_eq!(names(&found), ["black-forest-labs/flux-schnell"]);
    let (found, _) = all_pages(
        &s,
        "QUERY",
        "/v1/models",
        Some(("text/plain", b"nothing-like-this")),
        &host,
    );
    assert!(found.is_empty());
    assert_problem(
        &call(
            &s,
            "QUERY",
            "/v1/models",
            Some(("application/json", b"\"flux\"")),
        ),
        415,
    );
    assert_problem(
        &call(&s, "QUERY", "/v1/models", Some(("text/plain", b"  "))),
        400,
    );
    let log = s.requests();
    let q = log.iter().find(|r| r.method == "QUERY").unwrap();
    assert_eq!(q.path, "/v1/models");
    assert_eq!(q.body, b"fake");

    let r = call(&s, "GET", "/v1/search?query=flux+schnell&limit=5", None);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["query"], "flux schnell");
    let models = v["models"].as_array().unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0]["model"]["name"], "flux-schnell");
    let meta = &models[0]["metadata"];
    assert!(meta["generated_description"].is_string());
    assert!(meta["score"].as_f64().unwrap() > 0.0);
    assert!(
        meta["tags"]
            .as_array()
            .unwrap()
            .contains(&json!("text-to-image"))
    );
    assert!(v["collections"].as_array().unwrap().is_empty());
    assert!(v["pages"].as_array().unwrap().is_empty());

    let v = call(&s, "GET", "/v1/search?query=text&limit=1", None).json();
    assert_eq!(v["models"].as_array().unwrap().len(), 1);
    assert_eq!(v["collections"][0]["slug"], "text-to-image");
    assert_eq!(
        v["collections"][0]["models"][0],
        "black-forest-labs/flux-schnell"
    );
    let v = call(&s, "GET", "/v1/search?query=webhooks", None).json();
    assert_eq!(
        v["pages"],
        json!([{"name": "Receive webhooks", "href": "/docs/topics/webhooks"}])
    );
    let e = assert_problem(&call(&s, "GET", "/v1/search", None), 400);
    assert_eq!(e["detail"], "Query parameter \"query\" is required");
    assert_problem(&call(&s, "GET", "/v1/search?query=a&limit=0", None), 400);
    assert_problem(&call(&s, "GET", "/v1/search?query=a&limit=51", None), 400);
}

#[test]
fn versions_examples_and_readme() {
    let s = start(Options {
        page_size: 2,
        ..fast()
    });
    let old = "a".repeat(64);
    let new = "b".repeat(64);
    s.set_model(
        "acme/versioned",
        ModelScript::succeed(replicate_fake::Output::Json(json!("ok")))
            .version(new.as_str())
            .also_version(old.as_str()),
    );
    let v = call(&s, "GET", "/v1/models/acme/versioned/versions", None).json();
    assert_eq!(v["previous"], Value::Null);
    assert_eq!(v["next"], Value::Null);
    let ids: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [new.as_str(), old.as_str()]);
    let one = call(
        &s,
        "GET",
        &format!("/v1/models/acme/versioned/versions/{old}"),
        None,
    );
    assert_eq!(one.status, 200);
    let one = one.json();
    assert_eq!(one["id"], old);
    assert_eq!(one["cog_version"], "0.13.7");
    assert!(one["openapi_schema"]["components"]["schemas"]["Input"].is_object());
    assert_eq!(
        call(&s, "GET", "/v1/models/acme/versioned", None).json()["latest_version"]["id"],
        new
    );

    // Delete the old version: 202, then it is gone.
    let r = call(
        &s,
        "DELETE",
        &format!("/v1/models/acme/versioned/versions/{old}"),
        None,
    );
    assert_eq!(r.status, 202);
    assert!(r.body.is_empty());
    assert_problem(
        &call(
            &s,
            "GET",
            &format!("/v1/models/acme/versioned/versions/{old}"),
            None,
        ),
        404,
    );
    assert_problem(
        &call(
            &s,
            "DELETE",
            &format!("/v1/models/acme/versioned/versions/{old}"),
            None,
        ),
        404,
    );
    let v = call(&s, "GET", "/v1/models/acme/versioned/versions", None).json();
    assert_eq!(v["results"].as_array().unwrap().len(), 1);
    // Its id no longer resolves for predictions.
    assert_problem(
        &json_call(
            &s,
            "POST",
            "/v1/predictions",
            &json!({"version": old, "input": {}}),
        ),
        422,
    );

    // Examples: the model's succeeded predictions, newest first, paginated.
    let api = Api::new(&s);
    let ids: Vec<String> = (0..3)
        .map(|_| {
            api.create("acme/versioned")["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let failing = api.create("fake/fail");
    for id in &ids {
        api.wait(id, Duration::from_secs(5));
    }
    api.wait(failing["id"].as_str().unwrap(), Duration::from_secs(5));
    let host = s.base_url();
    let (examples, pages) = all_pages(&s, "GET", "/v1/models/acme/versioned/examples", None, &host);
    assert_eq!(pages, 2);
    let got: Vec<&str> = examples.iter().map(|p| p["id"].as_str().unwrap()).collect();
    let want: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(got, want);
    for e in &examples {
        assert_eq!(e["status"], "succeeded");
        assert_eq!(e["output"], "ok");
        assert!(e["logs"].is_string());
    }
    let first = call(&s, "GET", "/v1/models/acme/versioned/examples", None).json();
    assert!(
        first["next"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{host}/v1/models/acme/versioned/examples?cursor="))
    );
    let none = call(&s, "GET", "/v1/models/fake/fail/examples", None).json();
    assert_eq!(none["results"], json!([]));
    assert_eq!(
        call(&s, "GET", "/v1/models/acme/versioned", None).json()["run_count"],
        3
    );
}

#[test]
fn trainings_run_like_predictions_and_push_a_version() {
    let s = start(Options {
        api_host_in_bodies: Some("https://api.replicate.com".into()),
        page_size: 2,
        ..fast()
    });
    let create = json_call(
        &s,
        "POST",
        "/v1/models",
        &json!({"owner": "fake", "name": "my-flux", "visibility": "private", "hardware": "gpu-t4"}),
    );
    assert_eq!(create.status, 201);
    let path = format!(
        "/replicate/v1/models/black-forest-labs/flux-schnell/versions/{FLUX_SCHNELL_VERSION}/trainings"
    );
    let input = json!({"input_images": "https://example.com/images.zip", "steps": 10});
    let r = json_call(
        &s,
        "POST",
        &path,
        &json!({"destination": "fake/my-flux", "input": input}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let t = r.json();
    let id = t["id"].as_str().unwrap().to_owned();
    assert_eq!(t["status"], "starting");
    assert_eq!(t["model"], "black-forest-labs/flux-schnell");
    assert_eq!(t["version"], FLUX_SCHNELL_VERSION);
    assert_eq!(t["input"], input);
    assert_eq!(t["output"], Value::Null);
    assert!(is_rfc3339(t["created_at"].as_str().unwrap(), 3));
    assert_eq!(
        t["urls"]["get"],
        format!("https://api.replicate.com/v1/trainings/{id}")
    );
    assert_eq!(
        t["urls"]["cancel"],
        format!("https://api.replicate.com/v1/trainings/{id}/cancel")
    );
    assert!(t["urls"].get("stream").is_none());
    // Not a prediction.
    assert_problem(
        &call(&s, "GET", &format!("/v1/predictions/{id}"), None),
        404,
    );

    let done = wait_job(&s, &format!("/v1/trainings/{id}"));
    assert_eq!(done["status"], "succeeded");
    assert!(done["logs"].as_str().unwrap().contains("Using seed"));
    assert!(done["metrics"]["predict_time"].is_number());
    let version = done["output"]["version"].as_str().unwrap();
    let (dest, vid) = version.split_once(':').unwrap();
    assert_eq!(dest, "fake/my-flux");
    assert_eq!(vid.len(), 64);
    let weights = done["output"]["weights"].as_str().unwrap();
    assert!(weights.starts_with(&s.files_base_url()), "{weights}");
    let w = request("GET", weights, &[], b"").unwrap();
    assert_eq!(w.status, 200);
    assert!(!w.body.is_empty());

    // The destination has the new version.
    let m = call(&s, "GET", "/v1/models/fake/my-flux", None).json();
    assert_eq!(m["latest_version"]["id"], vid);
    let got = call(
        &s,
        "GET",
        &format!("/v1/models/fake/my-flux/versions/{vid}"),
        None,
    );
    assert_eq!(got.status, 200);
    assert_problem(&call(&s, "DELETE", "/v1/models/fake/my-flux", None), 409);
    // The new version runs predictions of the destination.
    let p = json_call(
        &s,
        "POST",
        "/v1/predictions",
        &json!({"version": vid, "input": {}}),
    );
    assert_eq!(p.status, 201, "{}", p.text());
    assert_eq!(p.json()["model"], "fake/my-flux");

    // Cancel, failure, list.
    let slow_version = s.model_version("fake/slow");
    let slow = json_call(
        &s,
        "POST",
        &format!("/v1/models/fake/slow/versions/{slow_version}/trainings"),
        &json!({"destination": "fake/my-flux", "input": {}}),
    )
    .json();
    let slow_id = slow["id"].as_str().unwrap();
    let c = call(&s, "POST", &format!("/v1/trainings/{slow_id}/cancel"), None);
    assert_eq!(c.status, 200);
    assert_eq!(c.json()["status"], "canceled");
    let fail_version = s.model_version("fake/fail");
    let fail = json_call(
        &s,
        "POST",
        &format!("/v1/models/fake/fail/versions/{fail_version}/trainings"),
        &json!({"destination": "fake/my-flux", "input": {}}),
    )
    .json();
    let failed = wait_job(
        &s,
        &format!("/v1/trainings/{}", fail["id"].as_str().unwrap()),
    );
    assert_eq!(failed["status"], "failed");
    assert!(failed["error"].is_string());
    assert_eq!(failed["output"], Value::Null);

    let (all, pages) = all_pages(
        &s,
        "GET",
        "/v1/trainings",
        None,
        "https://api.replicate.com",
    );
    assert_eq!(pages, 2);
    let ids: Vec<&str> = all.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [fail["id"].as_str().unwrap(), slow_id, id.as_str()]);
    for t in &all {
        assert_eq!(t["source"], "api");
        assert!(t.get("logs").is_none());
    }

    // Errors.
    assert_problem(
        &json_call(
            &s,
            "POST",
            &format!(
                "/v1/models/black-forest-labs/flux-schnell/versions/{}/trainings",
                "0".repeat(64)
            ),
            &json!({"destination": "fake/my-flux", "input": {}}),
        ),
        404,
    );
    let e = assert_problem(
        &json_call(
            &s,
            "POST",
            &path,
            &json!({"input": [], "webhook": "ftp://x", "extra": 1}),
        ),
        422,
    );
    let detail = e["detail"].as_str().unwrap();
    for word in ["destination is required", "input", "webhook", "extra"] {
        assert!(detail.contains(word), "{word} in {detail}");
    }
    assert_problem(
        &json_call(
            &s,
            "POST",
            &path,
            &json!({"destination": "no-slash", "input": {}}),
        ),
        422,
    );
    assert_problem(&call(&s, "GET", "/v1/trainings/nope", None), 404);
    assert_problem(&call(&s, "POST", "/v1/trainings/nope/cancel", None), 404);
    assert_problem(
        &call(&s, "GET", &format!("/v1/trainings/{id}/cancel"), None),
        405,
    );

    // Without unknown models, the destination must exist.
    let strict = start(Options {
        unknown_models_exist: false,
        ..fast()
    });
    assert_problem(
        &json_call(
            &strict,
            "POST",
            &format!(
                "/v1/models/black-forest-labs/flux-schnell/versions/{FLUX_SCHNELL_VERSION}/trainings"
            ),
            &json!({"destination": "nobody/nothing", "input": {}}),
        ),
        422,
    );
}

#[test]
fn deployments_crud_and_predictions() {
    let s = start(Options {
        page_size: 1,
        ..fast()
    });
    s.set_deployment("acme/legacy", "fake/json");
    let version = s.model_version("fake/text");
    let body = json!({
        "name": "my-app", "model": "fake/text", "version": version,
        "hardware": "gpu-t4", "min_instances": 0, "max_instances": 3
    });
    let r = json_call(&s, "POST", "/v1/deployments", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let d = r.json();
    assert_eq!(d["owner"], "fake");
    assert_eq!(d["name"], "my-app");
    let rel = &d["current_release"];
    assert_eq!(rel["number"], 1);
    assert_eq!(rel["model"], "fake/text");
    assert_eq!(rel["version"], version);
    assert!(is_rfc3339(rel["created_at"].as_str().unwrap(), 9));
    assert_eq!(rel["created_by"]["username"], "fake");
    assert_eq!(rel["created_by"]["type"], "user");
    assert_eq!(
        rel["configuration"],
        json!({"hardware": "gpu-t4", "min_instances": 0, "max_instances": 3})
    );
    assert_eq!(
        call(&s, "GET", "/v1/deployments/fake/my-app", None).json(),
        d
    );
    assert_problem(&json_call(&s, "POST", "/v1/deployments", &body), 409);
    let e = assert_problem(
        &json_call(
            &s,
            "POST",
            "/v1/deployments",
            &json!({"name": "x", "model": "fake/text", "version": version, "hardware": "tpu", "min_instances": 4, "max_instances": 2}),
        ),
        422,
    );
    let detail = e["detail"].as_str().unwrap();
    assert!(
        detail.contains("hardware") && detail.contains("min_instances"),
        "{detail}"
    );
    assert_problem(
        &json_call(
            &s,
            "POST",
            "/v1/deployments",
            &json!({"name": "x", "model": "fake/text", "version": "f".repeat(64), "hardware": "cpu", "min_instances": 0, "max_instances": 1}),
        ),
        422,
    );
    assert_problem(
        &json_call(&s, "POST", "/v1/deployments", &json!({"name": "x"})),
        422,
    );

    // List: newest first, one per page.
    let host = s.base_url();
    let (all, pages) = all_pages(&s, "GET", "/v1/deployments", None, &host);
    assert_eq!(pages, 2);
    let listed: Vec<String> = all
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["owner"].as_str().unwrap(),
                d["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(listed, ["fake/my-app", "acme/legacy"]);
    assert_eq!(all[1]["current_release"]["model"], "fake/json");
    assert_eq!(
        all[1]["current_release"]["version"],
        s.model_version("fake/json")
    );

    // Update: a new release.
    let r = json_call(
        &s,
        "PATCH",
        "/v1/deployments/fake/my-app",
        &json!({"min_instances": 1, "max_instances": 5, "hardware": "gpu-a40-large"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let u = r.json();
    assert_eq!(u["current_release"]["number"], 2);
    assert_eq!(
        u["current_release"]["configuration"],
        json!({"hardware": "gpu-a40-large", "min_instances": 1, "max_instances": 5})
    );
    assert_problem(
        &json_call(
            &s,
            "PATCH",
            "/v1/deployments/fake/my-app",
            &json!({"min_instances": 9}),
        ),
        422,
    );
    assert_problem(
        &json_call(
            &s,
            "PATCH",
            "/v1/deployments/fake/my-app",
            &json!({"model": "a/b"}),
        ),
        422,
    );
    assert_problem(
        &json_call(
            &s,
            "PATCH",
            "/v1/deployments/fake/none",
            &json!({"min_instances": 1}),
        ),
        404,
    );

    // A prediction through it runs its model at its version; the version cannot be deleted.
    let p = json_call(
        &s,
        "POST",
        "/v1/deployments/fake/my-app/predictions",
        &json!({"input": {"prompt": "hi"}}),
    );
    assert_eq!(p.status, 201, "{}", p.text());
    let p = p.json();
    assert_eq!(p["model"], "fake/text");
    assert_eq!(p["version"], version);
    assert_eq!(p["deployment"], "fake/my-app");
    assert_problem(
        &call(
            &s,
            "DELETE",
            &format!("/v1/models/fake/text/versions/{version}"),
            None,
        ),
        409,
    );

    // Delete.
    let r = call(&s, "DELETE", "/v1/deployments/fake/my-app", None);
    assert_eq!(r.status, 204);
    assert_problem(&call(&s, "GET", "/v1/deployments/fake/my-app", None), 404);
    assert_problem(
        &call(&s, "DELETE", "/v1/deployments/fake/my-app", None),
        404,
    );
    assert_problem(
        &json_call(
            &s,
            "POST",
            "/v1/deployments/fake/my-app/predictions",
            &json!({"input": {}}),
        ),
        404,
    );
    assert_problem(&call(&s, "PUT", "/v1/deployments", None), 405);
}

#[test]
fn collections_and_hardware() {
    let s = start(Options {
        page_size: 2,
        ..fast()
    });
    let host = s.base_url();
    let (all, pages) = all_pages(&s, "GET", "/v1/collections", None, &host);
    assert_eq!(pages, 2);
    let slugs: Vec<&str> = all.iter().map(|c| c["slug"].as_str().unwrap()).collect();
    assert_eq!(
        slugs,
        ["fake-behaviours", "language-models", "text-to-image"]
    );
    for c in &all {
        let keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["name", "slug", "description"]);
    }
    let c = call(&s, "GET", "/v1/collections/language-models", None);
    assert_eq!(c.status, 200);
    let c = c.json();
    assert_eq!(c["name"], "Language models");
    assert!(
        c["full_description"]
            .as_str()
            .unwrap()
            .starts_with("## Overview")
    );
    assert_eq!(
        names(c["models"].as_array().unwrap()),
        ["fake/text", "fake/text-multiline"]
    );
    assert!(c["models"][0]["latest_version"]["id"].is_string());
    assert_problem(&call(&s, "GET", "/v1/collections/nope", None), 404);

    let h = call(&s, "GET", "/v1/hardware", None);
    assert_eq!(h.header("content-type"), Some("application/json"));
    let h = h.json();
    let skus: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["sku"].as_str().unwrap())
        .collect();
    assert_eq!(skus, ["cpu", "gpu-t4", "gpu-a40-large", "gpu-a100-large"]);
    assert!(h[0]["name"].is_string());
    assert_problem(
        &call(
            &s,
            "POST",
            "/v1/hardware",
            Some(("application/json", b"{}")),
        ),
        405,
    );
}
