//! The rest of the API, one scenario per group, run against both clients and the fake server:
//! models, versions, examples and READMEs, search, trainings, deployments, collections, hardware,
//! account, files and the webhook secret. Each scenario asserts on what the client returned and
//! on the server's request log.

use std::time::{Duration, SystemTime};

use replicate_fake::{FLUX_SCHNELL_VERSION, ModelScript, Options, Output, RecordedRequest};
use replicate_protocol::api::{
    CancelTraining, CreateDeployment, CreateFile, CreateModel, CreateTraining, DeleteDeployment,
    DeleteFile, DeleteModel, DeleteModelVersion, GetAccount, GetCollection,
    GetDefaultWebhookSecret, GetDeployment, GetFile, GetModel, GetModelReadme, GetModelVersion,
    GetTraining, ListCollections, ListDeployments, ListFiles, ListHardware, ListModelExamples,
    ListModelVersions, ListModels, ListTrainings, Search, SearchModels, TrainingOutput,
    UpdateDeployment, UpdateModel, Visibility,
};
use replicate_protocol::webhook::{Verifier, WebhookHeaders, unix_timestamp};
use replicate_protocol::{CreatePrediction, Error, Status, Target, WebhookEvent};
use replicate_tests::{Env, Which, fast_options};
use serde_json::{Value, json};

/// Declares a scenario once; it runs as one test per client.
macro_rules! scenario {
    ($name:ident, |$env:ident| $body:block) => {
        scenario!($name, fast_options(), |$env| $body);
    };
    ($name:ident, $opts:expr, |$env:ident| $body:block) => {
        mod $name {
            use super::*;
            fn body(which: Which) {
                #[allow(unused_mut)]
                let mut $env = Env::with(which, $opts, |_, _| {});
                $body
            }
            #[test]
            fn ureq() {
                body(Which::Ureq)
            }
            #[test]
            fn reqwest() {
                body(Which::Reqwest)
            }
        }
    };
}

/// The API requests of the log (not file downloads or streams), as `METHOD path?query`.
fn api_log(env: &Env) -> Vec<String> {
    env.fake
        .requests()
        .iter()
        .filter(|r| r.origin == replicate_fake::Origin::Api)
        .map(|r| format!("{} {}", r.method, r.target()))
        .collect()
}

/// The recorded requests with this method whose path ends like this.
fn find(env: &Env, method: &str, path_suffix: &str) -> Vec<RecordedRequest> {
    env.fake
        .requests()
        .into_iter()
        .filter(|r| r.method == method && r.path.ends_with(path_suffix))
        .collect()
}

fn status_of(err: &Error) -> Option<u16> {
    err.status()
}

fn full_names(models: &[replicate_protocol::api::Model]) -> Vec<String> {
    models.iter().map(|m| m.full_name()).collect()
}

/// Options for list scenarios: small pages, and bodies naming the public host (as a
/// pass-through proxy leaves them), so following `next` verbatim would leave the fake.
fn proxy_options(page_size: usize) -> Options {
    Options {
        page_size,
        api_host_in_bodies: Some("https://api.replicate.com".into()),
        ..fast_options()
    }
}

scenario!(
    models_through_the_replicate_prefix,
    proxy_options(4),
    |env| {
        let prefixed = env.fake.prefixed_base_url();
        env.rebuild(|s| s.base_url = prefixed);

        // List: every page, the cursor of each `next` sent to the prefixed base.
        let models = env.collect_all(ListModels::new()).expect("list");
        let mut builtins: Vec<String> = replicate_fake::BUILTIN_MODELS
            .iter()
            .map(|m| (*m).to_owned())
            .collect();
        builtins.reverse();
        assert_eq!(full_names(&models), builtins);
        let list_requests = find(&env, "GET", "/v1/models");
        assert_eq!(list_requests.len(), builtins.len().div_ceil(4));
        assert!(list_requests[0].query.is_none());
        assert!(
            list_requests[1..]
                .iter()
                .all(|r| r.query.as_deref().is_some_and(|q| q.starts_with("cursor=")))
        );

        // Get.
        let flux = env
            .execute(GetModel::new("black-forest-labs", "flux-schnell"))
            .expect("get");
        assert_eq!(flux.is_official, Some(true));
        let latest = flux.latest_version.expect("a latest version");
        assert_eq!(latest.id, FLUX_SCHNELL_VERSION);
        assert!(latest.input_schema().is_some());

        // Create, update, README, delete.
        let created = env
            .execute(
                CreateModel::new("fake", "hot-dog-detector", Visibility::Private, "cpu")
                    .description("Detect hot dogs"),
            )
            .expect("create");
        assert_eq!(created.full_name(), "fake/hot-dog-detector");
        assert_eq!(created.visibility.as_deref(), Some("private"));
        assert!(created.latest_version.is_none());
        let err = env
            .execute(CreateModel::new(
                "fake",
                "hot-dog-detector",
                Visibility::Private,
                "cpu",
            ))
            .expect_err("exists");
        assert_eq!(status_of(&err), Some(409));
        let updated = env
            .execute(
                UpdateModel::new("fake", "hot-dog-detector")
                    .description("Hot dog or not")
                    .readme("# Hot dog detector\n\n🌭\n"),
            )
            .expect("update");
        assert_eq!(updated.description.as_deref(), Some("Hot dog or not"));
        let readme = env
            .execute(GetModelReadme::new("fake", "hot-dog-detector"))
            .expect("readme");
        assert_eq!(readme, "# Hot dog detector\n\n🌭\n");
        env.execute(DeleteModel::new("fake", "hot-dog-detector"))
            .expect("delete");
        let err = env
            .execute(GetModel::new("fake", "hot-dog-detector"))
            .expect_err("gone");
        assert_eq!(status_of(&err), Some(404));
        let problem = err.api().and_then(|a| a.problem.as_ref()).expect("problem");
        assert_eq!(problem.detail.as_deref(), Some("Model not found"));
        // A public model cannot be deleted.
        let err = env
            .execute(DeleteModel::new("fake", "json"))
            .expect_err("public");
        assert_eq!(status_of(&err), Some(403));

        // Every request went under the prefix, with the token, and the writes carried JSON.
        let log = env.fake.requests();
        assert!(
            log.iter().all(|r| r.path.starts_with("/replicate/v1/")),
            "{:?}",
            api_log(&env)
        );
        let bearer = format!("Bearer {}", env.fake.token());
        assert!(
            log.iter()
                .all(|r| r.header("authorization") == Some(bearer.as_str()))
        );
        let tail: Vec<String> = api_log(&env)
            .into_iter()
            .skip(list_requests.len())
            .collect();
        assert_eq!(
            tail,
            [
                "GET /replicate/v1/models/black-forest-labs/flux-schnell",
                "POST /replicate/v1/models",
                "POST /replicate/v1/models",
                "PATCH /replicate/v1/models/fake/hot-dog-detector",
                "GET /replicate/v1/models/fake/hot-dog-detector/readme",
                "DELETE /replicate/v1/models/fake/hot-dog-detector",
                "GET /replicate/v1/models/fake/hot-dog-detector",
                "DELETE /replicate/v1/models/fake/json",
            ]
        );
        let create = &find(&env, "POST", "/v1/models")[0];
        assert_eq!(create.header("content-type"), Some("application/json"));
        assert_eq!(
            create.json().expect("json"),
            json!({"owner": "fake", "name": "hot-dog-detector", "visibility": "private",
               "hardware": "cpu", "description": "Detect hot dogs"})
        );
        let patch = &find(&env, "PATCH", "/models/fake/hot-dog-detector")[0];
        assert_eq!(
            patch.json().expect("json"),
            json!({"description": "Hot dog or not", "readme": "# Hot dog detector\n\n🌭\n"})
        );
        let readme_req = &find(&env, "GET", "/readme")[0];
        assert!(
            readme_req
                .header("accept")
                .is_some_and(|a| a.contains("text/markdown"))
        );
    }
);

scenario!(model_search_by_query_method, proxy_options(3), |env| {
    // QUERY /v1/models with a text/plain body, every page.
    let found = env.collect_all(SearchModels::new("fake")).expect("search");
    assert_eq!(found.len(), replicate_fake::BUILTIN_MODELS.len());
    let queries = find(&env, "QUERY", "/v1/models");
    assert_eq!(queries.len(), found.len().div_ceil(3));
    for (i, q) in queries.iter().enumerate() {
        assert_eq!(q.path, "/v1/models");
        assert_eq!(q.header("content-type"), Some("text/plain"));
        assert_eq!(q.body, b"fake", "every page repeats the text");
        assert_eq!(q.query.is_some(), i > 0, "later pages carry the cursor");
    }
    let one = env
        .collect_all(SearchModels::new("flux schnell"))
        .expect("search");
    assert_eq!(full_names(&one), ["black-forest-labs/flux-schnell"]);
});

scenario!(search_models_collections_and_docs, |env| {
    // GET /v1/search.
    let results = env
        .execute(Search::new("flux schnell").limit(5))
        .expect("search");
    assert_eq!(results.query, "flux schnell");
    assert_eq!(results.models.len(), 1);
    assert_eq!(
        results.models[0].model.full_name(),
        "black-forest-labs/flux-schnell"
    );
    assert!(
        results.models[0]
            .metadata
            .tags
            .contains(&"text-to-image".to_owned())
    );
    assert!(results.models[0].metadata.score.is_some_and(|s| s > 0.0));
    let docs = env.execute(Search::new("webhooks")).expect("search");
    assert_eq!(docs.pages.len(), 1);
    assert_eq!(docs.pages[0].href, "/docs/topics/webhooks");
    let collections = env.execute(Search::new("language")).expect("search");
    assert_eq!(collections.collections[0].slug, "language-models");
    let gets = find(&env, "GET", "/v1/search");
    assert_eq!(gets.len(), 3);
    let q = gets[0].query.as_deref().expect("query");
    assert!(
        q == "query=flux%20schnell&limit=5" || q == "query=flux+schnell&limit=5",
        "{q}"
    );
});

scenario!(
    model_versions_examples_and_readme,
    proxy_options(1),
    |env| {
        let old = "a".repeat(64);
        let new = "b".repeat(64);
        env.fake.set_model(
            "acme/versioned",
            ModelScript::succeed(Output::Json(json!("ok")))
                .version(new.as_str())
                .also_version(old.as_str()),
        );
        // Versions: newest first, one per page.
        let versions = env
            .collect_all(ListModelVersions::new("acme", "versioned"))
            .expect("versions");
        let ids: Vec<&str> = versions.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(ids, [new.as_str(), old.as_str()]);
        let v = env
            .execute(GetModelVersion::new("acme", "versioned", &old))
            .expect("get version");
        assert_eq!(v.id, old);
        assert!(v.output_schema().is_some());
        env.execute(DeleteModelVersion::new("acme", "versioned", &old))
            .expect("delete version");
        let err = env
            .execute(GetModelVersion::new("acme", "versioned", &old))
            .expect_err("deleted");
        assert_eq!(status_of(&err), Some(404));
        let left = env
            .collect_all(ListModelVersions::new("acme", "versioned"))
            .expect("versions");
        assert_eq!(left.len(), 1);

        // Examples: the model's succeeded predictions, newest first.
        let mut ran = Vec::new();
        for _ in 0..2 {
            let p = env
                .driver
                .run_with(
                    CreatePrediction::new(Target::parse("acme/versioned").expect("target"))
                        .input(json!({"prompt": "hi"})),
                    env.driver.wait_options(),
                )
                .expect("run");
            ran.push(p.id);
        }
        let examples = env
            .collect_all(ListModelExamples::new("acme", "versioned"))
            .expect("examples");
        let got: Vec<&str> = examples.iter().map(|p| p.id.as_str()).collect();
        let want: Vec<&str> = ran.iter().rev().map(String::as_str).collect();
        assert_eq!(got, want);
        assert!(examples.iter().all(|p| p.status == Status::Succeeded));

        let readme = env
            .execute(GetModelReadme::new("acme", "versioned"))
            .expect("readme");
        assert!(readme.starts_with("# acme/versioned\n"), "{readme}");

        let log = api_log(&env);
        assert_eq!(
            log.iter()
                .filter(|l| l.starts_with("GET /v1/models/acme/versioned/versions"))
                .count(),
            2 + 1 + 2,
            "{log:?}"
        );
        assert!(log.contains(&format!("DELETE /v1/models/acme/versioned/versions/{old}")));
        assert_eq!(
            log.iter()
                .filter(|l| l.starts_with("GET /v1/models/acme/versioned/examples"))
                .count(),
            2
        );
    }
);

scenario!(trainings_create_wait_list_cancel, proxy_options(1), |env| {
    env.execute(CreateModel::new(
        "fake",
        "my-flux",
        Visibility::Private,
        "gpu-t4",
    ))
    .expect("destination");
    let training = env
        .execute(
            CreateTraining::new(
                "black-forest-labs",
                "flux-schnell",
                FLUX_SCHNELL_VERSION,
                "fake/my-flux",
            )
            .input_field("input_images", "https://example.com/images.zip"),
        )
        .expect("create training");
    assert_eq!(training.status, Status::Starting);
    assert_eq!(
        training.model.as_deref(),
        Some("black-forest-labs/flux-schnell")
    );
    assert_eq!(training.version.as_deref(), Some(FLUX_SCHNELL_VERSION));

    // The shared wait machine, polling /v1/trainings/{id}.
    let done = env
        .wait_training(
            &training.id,
            env.driver.wait_options_within(Duration::from_secs(10)),
        )
        .expect("wait");
    assert_eq!(done.status, Status::Succeeded);
    let out: TrainingOutput = done.output_as().expect("training output");
    let version = out.version.expect("output.version");
    let (dest, vid) = version.split_once(':').expect("owner/name:id");
    assert_eq!(dest, "fake/my-flux");
    assert!(
        out.weights
            .as_deref()
            .is_some_and(|w| w.starts_with(&env.fake.files_base_url()))
    );
    let polls = find(&env, "GET", &format!("/v1/trainings/{}", training.id));
    assert!(!polls.is_empty());
    assert!(find(&env, "GET", &format!("/v1/predictions/{}", training.id)).is_empty());
    // The new version is on the destination.
    let v = env
        .execute(GetModelVersion::new("fake", "my-flux", vid))
        .expect("trained version");
    assert_eq!(v.id, vid);
    let again = env.execute(GetTraining::new(&training.id)).expect("get");
    assert_eq!(again.output, done.output);

    // Cancel a slow one.
    let slow_version = env.fake.model_version("fake/slow");
    let slow = env
        .execute(CreateTraining::new(
            "fake",
            "slow",
            &slow_version,
            "fake/my-flux",
        ))
        .expect("create slow");
    let canceled = env.execute(CancelTraining::new(&slow.id)).expect("cancel");
    assert_eq!(canceled.status, Status::Canceled);

    // List: newest first, one per page.
    let all = env.collect_all(ListTrainings::new()).expect("list");
    let ids: Vec<&str> = all.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, [slow.id.as_str(), training.id.as_str()]);

    let create = &find(&env, "POST", "/trainings")[0];
    assert_eq!(
        create.path,
        format!(
            "/v1/models/black-forest-labs/flux-schnell/versions/{FLUX_SCHNELL_VERSION}/trainings"
        )
    );
    assert_eq!(
        create.json().expect("json"),
        json!({"destination": "fake/my-flux",
               "input": {"input_images": "https://example.com/images.zip"}})
    );
    assert_eq!(
        find(&env, "POST", &format!("/v1/trainings/{}/cancel", slow.id)).len(),
        1
    );
    assert_eq!(find(&env, "GET", "/v1/trainings").len(), 2);
});

scenario!(deployments_crud_and_a_prediction, proxy_options(1), |env| {
    env.fake.set_deployment("acme/legacy", "fake/json");
    let version = env.fake.model_version("fake/json");
    let d = env
        .execute(CreateDeployment::new(
            "my-app",
            "fake/json",
            &version,
            "gpu-t4",
            0,
            2,
        ))
        .expect("create");
    assert_eq!(d.owner, "fake");
    assert_eq!(d.name, "my-app");
    let rel = d.current_release.as_ref().expect("release");
    assert_eq!(rel.number, Some(1));
    assert_eq!(rel.version.as_deref(), Some(version.as_str()));
    assert_eq!(
        rel.created_by.as_ref().map(|a| a.username.as_str()),
        Some("fake")
    );
    let got = env
        .execute(GetDeployment::new("fake", "my-app"))
        .expect("get");
    assert_eq!(got, d);
    let all = env.collect_all(ListDeployments::new()).expect("list");
    let names: Vec<String> = all
        .iter()
        .map(|d| format!("{}/{}", d.owner, d.name))
        .collect();
    assert_eq!(names, ["fake/my-app", "acme/legacy"]);

    let updated = env
        .execute(
            UpdateDeployment::new("fake", "my-app")
                .min_instances(1)
                .max_instances(4)
                .hardware("gpu-a40-large"),
        )
        .expect("update");
    let rel = updated.current_release.expect("release");
    assert_eq!(rel.number, Some(2));
    let conf = rel.configuration.expect("configuration");
    assert_eq!(conf.hardware.as_deref(), Some("gpu-a40-large"));
    assert_eq!((conf.min_instances, conf.max_instances), (Some(1), Some(4)));

    // A prediction through the deployment.
    let p = env
        .driver
        .run_with(
            CreatePrediction::new(Target::deployment("fake/my-app").expect("target"))
                .input(json!({"prompt": "hi"})),
            env.driver.wait_options(),
        )
        .expect("run");
    assert_eq!(p.output["answer"], 42);
    assert_eq!(p.version.as_deref(), Some(version.as_str()));
    assert_eq!(p.deployment.as_deref(), Some("fake/my-app"));

    env.execute(DeleteDeployment::new("fake", "my-app"))
        .expect("delete");
    let err = env
        .execute(GetDeployment::new("fake", "my-app"))
        .expect_err("gone");
    assert_eq!(status_of(&err), Some(404));

    let log = api_log(&env);
    let crud: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("/v1/deployments") && !l.contains("cursor="))
        .collect();
    assert_eq!(
        crud,
        [
            "POST /v1/deployments",
            "GET /v1/deployments/fake/my-app",
            "GET /v1/deployments",
            "PATCH /v1/deployments/fake/my-app",
            "POST /v1/deployments/fake/my-app/predictions",
            "DELETE /v1/deployments/fake/my-app",
            "GET /v1/deployments/fake/my-app",
        ]
    );
    assert_eq!(
        find(&env, "POST", "/v1/deployments")[0]
            .json()
            .expect("json"),
        json!({"name": "my-app", "model": "fake/json", "version": version,
               "hardware": "gpu-t4", "min_instances": 0, "max_instances": 2})
    );
    assert_eq!(
        find(&env, "PATCH", "/v1/deployments/fake/my-app")[0]
            .json()
            .expect("json"),
        json!({"hardware": "gpu-a40-large", "min_instances": 1, "max_instances": 4})
    );
});

scenario!(collections_list_and_get, proxy_options(2), |env| {
    let all = env.collect_all(ListCollections::new()).expect("list");
    let slugs: Vec<&str> = all.iter().map(|c| c.slug.as_str()).collect();
    assert_eq!(
        slugs,
        ["fake-behaviours", "language-models", "text-to-image"]
    );
    assert!(all.iter().all(|c| c.description.is_some()));
    let c = env
        .execute(GetCollection::new("text-to-image"))
        .expect("get");
    assert_eq!(c.name, "Text to image");
    assert!(c.full_description.is_some());
    assert_eq!(c.models[0].full_name(), "black-forest-labs/flux-schnell");
    let err = env
        .execute(GetCollection::new("nope"))
        .expect_err("unknown");
    assert_eq!(status_of(&err), Some(404));
    assert_eq!(
        api_log(&env)
            .iter()
            .filter(|l| l.starts_with("GET /v1/collections?") || *l == "GET /v1/collections")
            .count(),
        2
    );
});

scenario!(hardware_and_account, |env| {
    let hardware = env.execute(ListHardware::new()).expect("hardware");
    let skus: Vec<&str> = hardware.iter().map(|h| h.sku.as_str()).collect();
    assert_eq!(skus, ["cpu", "gpu-t4", "gpu-a40-large", "gpu-a100-large"]);
    assert!(hardware.iter().all(|h| h.name.is_some()));
    let account = env.execute(GetAccount::new()).expect("account");
    assert_eq!(account.username, "fake");
    assert!(!account.is_organization());
    assert_eq!(api_log(&env), ["GET /v1/hardware", "GET /v1/account"]);
});

scenario!(
    files_upload_get_list_delete,
    Options {
        page_size: 1,
        ..fast_options()
    },
    |env| {
        let a = env
            .execute(
                CreateFile::new(b"hello world".to_vec(), "hello.txt").metadata(json!({"ref": 7})),
            )
            .expect("upload");
        assert_eq!(a.name.as_deref(), Some("hello.txt"));
        assert_eq!(a.content_type.as_deref(), Some("text/plain"));
        assert_eq!(a.size, Some(11));
        assert_eq!(a.metadata, json!({"ref": 7}));
        assert_eq!(
            a.checksums.sha256.as_deref(),
            Some("b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9")
        );
        let b = env
            .execute(CreateFile::new(vec![1u8, 2, 3], "data.bin"))
            .expect("upload");
        assert_eq!(env.execute(GetFile::new(&a.id)).expect("get"), a);
        let all = env.collect_all(ListFiles::new()).expect("list");
        let ids: Vec<&str> = all.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, [b.id.as_str(), a.id.as_str()]);
        env.execute(DeleteFile::new(&a.id)).expect("delete");
        let err = env.execute(GetFile::new(&a.id)).expect_err("gone");
        assert_eq!(status_of(&err), Some(404));

        let uploads = find(&env, "POST", "/v1/files");
        assert_eq!(uploads.len(), 2);
        assert!(
            uploads[0]
                .header("content-type")
                .is_some_and(|ct| ct.starts_with("multipart/form-data; boundary="))
        );
        let log = api_log(&env);
        assert_eq!(log[2], format!("GET /v1/files/{}", a.id));
        assert_eq!(log[3], "GET /v1/files");
        assert!(log[4].starts_with("GET /v1/files?cursor="));
        assert_eq!(log[log.len() - 2], format!("DELETE /v1/files/{}", a.id));
    }
);

scenario!(
    webhook_default_secret_verifies_the_fakes_signatures,
    Options {
        webhook_attempts: 1,
        ..fast_options()
    },
    |env| {
        let secret = env.execute(GetDefaultWebhookSecret::new()).expect("secret");
        assert_eq!(secret.expose_whsec(), env.fake.webhook_secret());
        assert_eq!(api_log(&env), ["GET /v1/webhooks/default/secret"]);

        // A delivery the fake signed (to a closed loopback port: the attempt is still recorded).
        let p = env
            .driver
            .run_with(
                CreatePrediction::new(Target::parse("fake/json").expect("target"))
                    .input(json!({}))
                    .webhook("http://127.0.0.1:9/hook", &[WebhookEvent::Completed]),
                env.driver.wait_options(),
            )
            .expect("run");
        let mut deliveries = env.fake.webhook_deliveries();
        for _ in 0..200 {
            if !deliveries.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
            deliveries = env.fake.webhook_deliveries();
        }
        let d = deliveries.first().expect("a delivery");
        assert_eq!(d.event, "completed");
        let body: Value = serde_json::from_slice(&d.body).expect("json");
        assert_eq!(body["id"], p.id.as_str());
        let verifier = Verifier::new(secret);
        let ts = d.timestamp.to_string();
        let headers = WebhookHeaders::new(&d.webhook_id, &ts, &d.signature);
        let now = unix_timestamp(SystemTime::now());
        verifier.verify(&headers, &d.body, now).expect("verifies");
        assert!(verifier.verify(&headers, b"{}", now).is_err());

        // And one signed with the fake's helper.
        let sig =
            replicate_fake::sign_webhook(env.fake.webhook_secret(), "msg_1", 1_700_000_000, b"{}");
        let headers = WebhookHeaders::new("msg_1", "1700000000", &sig);
        verifier
            .verify(&headers, b"{}", 1_700_000_000)
            .expect("verifies");
    }
);
