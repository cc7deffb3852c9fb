//! `replicate fake-server`: the bundled Replicate-compatible fake server, until killed.

use std::time::Duration;

use replicate_fake::{BlockingFakeServer, Options};

use crate::args::FakeServerArgs;
use crate::exit::CliError;
use crate::output;

/// Starts the fake server, prints where it is and its token, and serves until the process is
/// killed (Ctrl-C).
pub fn run(args: FakeServerArgs) -> Result<(), CliError> {
    let server = BlockingFakeServer::start_with(Options {
        port: args.port,
        files_port: args.files_port,
        prefix: args.prefix,
        tick: Duration::from_millis(args.tick_ms),
        ..Options::default()
    })
    .map_err(|e| CliError::io("cannot start the fake server", e))?;
    let base = server.prefixed_base_url();
    let token = server.token();
    output::out(&format!(
        "base_url: {base}\n\
         token: {token}\n\
         files_url: {files}\n\
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
