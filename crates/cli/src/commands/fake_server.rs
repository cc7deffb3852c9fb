//! `replicate fake-server`: the bundled Replicate-compatible fake server, until killed.

use std::time::Duration;

use replicate_fake::{BlockingFakeServer, DEFAULT_TOKEN, Options, RateLimit};

use crate::args::FakeServerArgs;
use crate::exit::CliError;
use crate::output;

/// Starts the fake server with the scripted failures and faults, prints where it is and its
/// token, and serves until the process is killed (Ctrl-C).
pub fn run(args: FakeServerArgs) -> Result<(), CliError> {
    let token = match &args.token {
        Some(t) if t.expose().trim().is_empty() => {
            return Err(CliError::usage("fake-server: --token must not be empty"));
        }
        Some(t) => t.expose().trim().to_owned(),
        None => DEFAULT_TOKEN.to_owned(),
    };
    let server = BlockingFakeServer::start_with(Options {
        port: args.port,
        files_port: args.files_port,
        prefix: args.prefix,
        token,
        tick: Duration::from_millis(args.tick_ms),
        rate_limit: args.rate_limit.map(RateLimit::per_second),
        connection_rate: args.connection_rate,
        ..Options::default()
    })
    .map_err(|e| CliError::io("cannot start the fake server", e))?;
    // Scripted before the address is printed: the first request already meets them.
    for f in &args.fail_models {
        server.set_model(&f.model, f.script());
    }
    for rule in args.faults {
        server.push_fault(rule);
    }
    let base = server.prefixed_base_url();
    let token = server.token();
    let mut scripted = String::new();
    for f in &args.fail_models {
        scripted.push_str(&format!("failing model: {}\n", f.model));
    }
    let faults = server.pending_faults().len();
    if faults > 0 {
        scripted.push_str(&format!("fault rules: {faults}\n"));
    }
    if let Some(n) = args.rate_limit {
        scripted.push_str(&format!("rate limit: {n} requests per second\n"));
    }
    if let Some(n) = args.connection_rate {
        scripted.push_str(&format!("connection rate: {n} bytes per second\n"));
    }
    output::out(&format!(
        "base_url: {base}\n\
         token: {token}\n\
         files_url: {files}\n\
         {scripted}\
         \n\
         Try:\n  replicate --base-url {base} --token {token} run black-forest-labs/flux-schnell -i prompt=\"a cat\"\n\
         \n\
         Serving until killed (Ctrl-C).\n",
        files = server.files_base_url(),
    ))?;
    loop {
        std::thread::park();
    }
}
