//! Start a prediction, watch it change, and print its output: the README's "start now, watch,
//! steer" example. Against the public API (`REPLICATE_API_TOKEN`), or the bundled fake server:
//!
//! ```sh
//! cargo run -p replicate-ureq --example watch
//! ```

use replicate_ureq::{Client, CreatePrediction, Target, Update};
use serde_json::json;

fn main() -> Result<(), replicate_ureq::Error> {
    let client = Client::from_env()?;
    let create = CreatePrediction::new(Target::parse("black-forest-labs/flux-schnell")?)
        .input(json!({"prompt": "a cat"}));
    let handle = client.start(create)?; // returns at once: store handle.id()
    eprintln!("started {}", handle.id());
    for update in handle.updates() {
        match update? {
            Update::Status(s) => eprintln!("status: {s}"),
            Update::Progress(p) => eprintln!("{}%", p.percentage),
            Update::Finished(p) => println!("{}", p.output),
            _ => {}
        }
    }
    Ok(())
}
