//! Runs several predictions at once with one shared client.
//!
//! ```sh
//! export REPLICATE_API_TOKEN=r8_...
//! # optional: export REPLICATE_BASE_URL=https://proxy.example/replicate
//! cargo run -p replicate-reqwest --example quickstart_async -- "a cat" "a dog" "a fox"
//! ```

use replicate_reqwest::Client;
use serde_json::json;
use tokio::task::JoinSet;

const MODEL: &str = "black-forest-labs/flux-schnell";

#[tokio::main]
async fn main() -> Result<(), replicate_reqwest::Error> {
    // REPLICATE_API_TOKEN, and REPLICATE_BASE_URL when set.
    let client = Client::from_env()?;

    let mut prompts: Vec<String> = std::env::args().skip(1).collect();
    if prompts.is_empty() {
        prompts = vec!["a cat".into(), "a dog".into(), "a fox".into()];
    }

    // One task per prediction; the clones share one connection pool.
    let mut tasks = JoinSet::new();
    for prompt in prompts {
        let client = client.clone();
        tasks.spawn(async move {
            let output = client.run(MODEL, json!({ "prompt": prompt })).await;
            (prompt, output)
        });
    }

    let mut failures = 0;
    while let Some(joined) = tasks.join_next().await {
        let Ok((prompt, output)) = joined else {
            failures += 1;
            continue;
        };
        match output {
            Ok(output) => println!("{prompt}: {output}"),
            Err(e) => {
                failures += 1;
                eprintln!("{prompt}: {e}");
            }
        }
    }
    if failures > 0 {
        std::process::exit(1);
    }
    Ok(())
}
