//! Runs a Replicate-compatible fake server on 127.0.0.1 until Ctrl-C.

use std::io::Write as _;
use std::time::Duration;

use clap::Parser;
use replicate_fake::{FakeServer, Options};

/// A Replicate-compatible fake HTTP server for tests and demos.
#[derive(Parser, Debug)]
#[command(name = "replicate-fake", version, about)]
struct Args {
    /// Port of the API origin on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Port of the files/streams origin (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    files_port: u16,
    /// Path prefix under which the API is also served.
    #[arg(long, default_value = "/replicate")]
    prefix: String,
    /// Bearer token the API requires.
    #[arg(long, default_value = replicate_fake::DEFAULT_TOKEN)]
    token: String,
    /// Scheduling tick in milliseconds.
    #[arg(long, default_value_t = 100)]
    tick_ms: u64,
    /// Write this host in API URLs inside bodies, e.g. https://api.replicate.com.
    #[arg(long)]
    api_host_in_bodies: Option<String>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let server = FakeServer::start_with(Options {
        port: args.port,
        files_port: args.files_port,
        prefix: args.prefix,
        token: args.token,
        tick: Duration::from_millis(args.tick_ms.max(1)),
        api_host_in_bodies: args.api_host_in_bodies,
        ..Options::default()
    })
    .await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "base_url: {}", server.base_url())?;
    writeln!(out, "prefixed_base_url: {}", server.prefixed_base_url())?;
    writeln!(out, "files_base_url: {}", server.files_base_url())?;
    writeln!(out, "token: {}", server.token())?;
    writeln!(out, "Press Ctrl-C to stop.")?;
    out.flush()?;
    drop(out);
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
