//! Blocking quickstart: run a model and print its output.
//!
//! ```sh
//! REPLICATE_API_TOKEN=r8_... cargo run -p replicate-ureq --example quickstart
//! # or through a proxy:
//! REPLICATE_API_TOKEN=hk-... REPLICATE_BASE_URL=https://proxy.example/replicate \
//!     cargo run -p replicate-ureq --example quickstart
//! ```

use replicate_ureq::{Client, Error};
use serde_json::json;

fn main() -> Result<(), Error> {
    let client = Client::from_env()?;
    let output = client.run(
        "black-forest-labs/flux-schnell",
        json!({"prompt": "an astronaut riding a horse", "num_outputs": 1}),
    )?;
    for url in output.as_array().into_iter().flatten() {
        println!("{url}");
    }
    Ok(())
}
