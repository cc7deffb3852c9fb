//! `replicate demo`: the seed guide's flux-schnell example, end to end, offline.
//!
//! It starts the fake server in-process with the seed proxy's `/replicate` prefix, then goes
//! through the same client path as `replicate run`: create by model path, poll, download the
//! output file without the Authorization header. It needs no token and no network.

use std::time::Duration;

use replicate_fake::{BlockingFakeServer, Options, Origin};
use replicate_protocol::{CreatePrediction, PollPolicy, Target};
use replicate_ureq::Client;
use serde_json::{Value, json};

use super::{Ctx, follow};
use crate::args::DemoArgs;
use crate::exit::CliError;
use crate::output::{self, Progress, outln};

/// The model of the seed's first example.
pub const MODEL_OWNER: &str = "black-forest-labs";
/// The model of the seed's first example.
pub const MODEL_NAME: &str = "flux-schnell";

/// The input of the seed's first example ("Méthode par chemin"), exactly as documented, in the
/// same order.
pub fn seed_input() -> Value {
    json!({
        "prompt": "Japanese cartoon anime style, (1 person) (Gender: Male, Age: 30, Hair: Short black hair, Outfit: Dark blue hunting attire, includes a fitted jacket and trousers.) (A dimly lit room filled with tension, is questioning Female, 27 years old, long black hair, pink tulle dress., who stands nervously in her pink dress, the sound of rain pattering against the window.)",
        "go_fast": true,
        "megapixels": "1",
        "num_outputs": 1,
        "aspect_ratio": "1:1",
        "output_format": "jpg",
        "output_quality": 80,
        "num_inference_steps": 4
    })
}

/// Runs the demo.
pub fn run(_ctx: &Ctx, args: DemoArgs) -> Result<(), CliError> {
    outln(
        "replicate demo: the seed guide's flux-schnell example, end to end, on a local fake server",
    )?;
    outln("(no token, no network: nothing leaves 127.0.0.1)")?;
    outln("")?;

    let server = BlockingFakeServer::start_with(Options {
        tick: Duration::from_millis(150),
        ..Options::default()
    })
    .map_err(|e| CliError::io("cannot start the fake server", e))?;
    let base = server.prefixed_base_url();
    outln(&format!(
        "1. Started a fake Replicate API at {base}\n   (the guide's {{{{BASE_URL}}}}/replicate; it accepts only its own test token)"
    ))?;

    let client = Client::builder()
        .token(server.token())
        .base_url(&base)
        .poll_policy(PollPolicy::fixed(Duration::from_millis(100)))
        .build()?;

    let input = seed_input();
    outln(&format!(
        "2. POST {base}/v1/models/{MODEL_OWNER}/{MODEL_NAME}/predictions with the guide's input:"
    ))?;
    if let Value::Object(fields) = &input {
        for (k, v) in fields {
            outln(&format!(
                "     {k}: {}",
                output::shorten(&v.to_string(), 72)
            ))?;
        }
    }
    let create = CreatePrediction::new(Target::Model {
        owner: MODEL_OWNER.to_owned(),
        name: MODEL_NAME.to_owned(),
    })
    .input(input);
    let created = client.create(create)?;
    outln(&format!(
        "   Created prediction {} (status {}, version {})",
        created.id,
        created.status,
        created.version.as_deref().unwrap_or("-")
    ))?;

    outln(&format!(
        "3. Polling GET {base}/v1/predictions/{} until it is finished:",
        created.id
    ))?;
    let mut progress = Progress::on_stdout();
    let id = created.id.clone();
    let done = follow(&client, &id, Some(created), &mut progress, None)?;
    let statuses: Vec<&str> = progress.statuses().iter().map(|s| s.as_str()).collect();
    outln(&format!(
        "   Statuses seen: {} (in {:.1}s)",
        statuses.join(" -> "),
        progress.elapsed().as_secs_f64()
    ))?;
    let done = done.into_result()?;

    let url = done
        .output_url()
        .ok_or_else(|| CliError::runtime("the prediction succeeded without an output URL"))?
        .to_owned();
    outln(&format!("4. Output URL: {url}"))?;

    let paths = client.download_outputs(&done, &args.output_dir)?;
    let path = paths
        .first()
        .ok_or_else(|| CliError::runtime("no output file was written"))?;
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::io(format!("cannot read back {}", path.display()), e))?;
    let kind = if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "a JPEG image"
    } else {
        "not a JPEG image"
    };
    outln(&format!(
        "5. Downloaded it without the Authorization header: {} ({} bytes, {kind})",
        path.display(),
        bytes.len()
    ))?;

    check_requests(&server, &id)?;

    let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    outln("")?;
    outln(&format!("Done. The output is at {}", shown.display()))?;
    Ok(())
}

/// Checks in the fake's request log what the narrative claims: every API request went under
/// `/replicate/v1` with the bearer token, the output file was fetched without it.
fn check_requests(server: &BlockingFakeServer, id: &str) -> Result<(), CliError> {
    let requests = server.requests();
    let bearer = format!("Bearer {}", server.token());
    let api: Vec<_> = requests
        .iter()
        .filter(|r| r.origin == Origin::Api)
        .collect();
    let creates = api.iter().filter(|r| r.method == "POST").count();
    let polls = api
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with(id))
        .count();
    let api_ok = api.iter().all(|r| {
        r.path.starts_with("/replicate/v1/") && r.header("authorization") == Some(&bearer)
    });
    let files: Vec<_> = requests
        .iter()
        .filter(|r| r.origin == Origin::Files)
        .collect();
    let files_ok = !files.is_empty() && files.iter().all(|r| r.header("authorization").is_none());
    if !api_ok || !files_ok {
        return Err(CliError::runtime(
            "the fake server's request log contradicts the demo (a request went to the wrong path or with the wrong credentials)",
        ));
    }
    outln(&format!(
        "6. The fake server's request log agrees: {} API request(s) ({creates} create, {polls} poll(s)), all under /replicate/v1 with the bearer token; {} file request(s), none with an Authorization header.",
        api.len(),
        files.len()
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_is_the_seeds_exactly() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/seed/create_by_model_request.json"
        ))
        .expect("the seed's request fixture");
        let body: Value = serde_json::from_str(&text).expect("seed JSON");
        assert_eq!(body["input"], seed_input());
        // Same order of fields too.
        let keys = |v: &Value| -> Vec<String> {
            v.as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default()
        };
        assert_eq!(keys(&body["input"]), keys(&seed_input()));
    }
}
