//! Runs a Replicate-compatible fake server on 127.0.0.1 until Ctrl-C.

use std::io::Write as _;
use std::time::Duration;

use clap::Parser;
use replicate_fake::{FailModel, FakeServer, FaultRule, Options, RateLimit};

/// A Replicate-compatible fake HTTP server for tests and demos.
#[derive(Parser, Debug)]
#[command(name = "replicate-fake", version, about, after_help = replicate_fake::SPEC_HELP)]
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
    /// Make every prediction of this model fail with MESSAGE (repeatable; see below).
    #[arg(long = "fail-model", value_name = "OWNER/NAME[:MESSAGE]")]
    fail_models: Vec<FailModel>,
    /// Inject a fault into matching requests (repeatable, tried in order; see below).
    #[arg(long = "fault", value_name = "METHOD:PATH_SUBSTRING:FAULT[:TIMES]")]
    faults: Vec<FaultRule>,
    /// Throttle the API origin to N requests per second, like Replicate (429 beyond it).
    #[arg(long, value_name = "N")]
    rate_limit: Option<u32>,
    /// Send each connection's file bodies (output files, file downloads) at most this many
    /// bytes per second.
    #[arg(long, value_name = "BYTES_PER_SEC")]
    connection_rate: Option<u64>,
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
        rate_limit: args.rate_limit.map(RateLimit::per_second),
        connection_rate: args.connection_rate,
        ..Options::default()
    })
    .await?;
    // Scripted before anyone knows the address: the first request already meets them.
    for f in &args.fail_models {
        server.set_model(&f.model, f.script());
    }
    for rule in args.faults {
        server.push_fault(rule);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "base_url: {}", server.base_url())?;
    writeln!(out, "prefixed_base_url: {}", server.prefixed_base_url())?;
    writeln!(out, "files_base_url: {}", server.files_base_url())?;
    writeln!(out, "token: {}", server.token())?;
    for f in &args.fail_models {
        writeln!(out, "failing model: {}", f.model)?;
    }
    let faults = server.pending_faults().len();
    if faults > 0 {
        writeln!(out, "fault rules: {faults}")?;
    }
    if let Some(n) = args.rate_limit {
        writeln!(out, "rate limit: {n} requests per second")?;
    }
    if let Some(n) = server.options().connection_rate {
        writeln!(out, "connection rate: {n} bytes per second")?;
    }
    writeln!(out, "Press Ctrl-C to stop.")?;
    out.flush()?;
    drop(out);
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
