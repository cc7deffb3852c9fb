//! The command line grammar (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Shown at the end of `replicate --help`.
const AFTER_HELP: &str = "\
Configuration:
  --token / REPLICATE_API_TOKEN      the API token (never printed)
  --base-url / REPLICATE_BASE_URL    the API base, e.g. https://proxy.example/replicate
                                     (default https://api.replicate.com); every request goes
                                     to {base}/v1/... with Authorization: Bearer <token>
  REPLICATE_POLL_INTERVAL_MS         poll interval in milliseconds (also the hidden
                                     --poll-interval-ms); default: 0.5 s, backing off to 5 s

Exit codes:
  0  success
  1  the prediction failed, was canceled or was aborted (stderr names it)
  2  usage error: bad arguments, a malformed -i, an unreadable file, or no API token;
     nothing was sent
  3  API, authentication, network or local I/O error (1 to 5 lines on stderr)

`replicate demo` needs no token and no network.";

/// The `replicate` command line: run Replicate models and manage predictions, files and models.
#[derive(Debug, Parser)]
#[command(name = "replicate", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// Options accepted before or after the subcommand.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted anywhere on the command line.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// API token (default: $REPLICATE_API_TOKEN). A missing token is a usage error (exit 2).
    #[arg(
        long,
        global = true,
        env = "REPLICATE_API_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// API base URL, e.g. https://proxy.example/replicate (default: $REPLICATE_BASE_URL, else
    /// https://api.replicate.com).
    #[arg(long, global = true, env = "REPLICATE_BASE_URL", value_name = "URL")]
    pub base_url: Option<String>,
    /// Poll interval in milliseconds (for tests and slow links).
    #[arg(
        long,
        global = true,
        hide = true,
        env = "REPLICATE_POLL_INTERVAL_MS",
        value_name = "MS",
        value_parser = clap::value_parser!(u64).range(1..=600_000)
    )]
    pub poll_interval_ms: Option<u64>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a model: create a prediction, follow it, print or download its output.
    Run(RunArgs),
    /// Get, cancel, list or wait for predictions.
    #[command(subcommand)]
    Prediction(PredictionCommand),
    /// Follow a prediction's output stream (SSE) and print each output event as it arrives.
    Stream(StreamArgs),
    /// Upload, list, get and delete files.
    #[command(subcommand)]
    Files(FilesCommand),
    /// Show a model or its versions.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Show the account the token belongs to.
    Account(JsonFlag),
    /// Webhook helpers.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Run the bundled Replicate-compatible fake server until killed.
    FakeServer(FakeServerArgs),
    /// Run the seed guide's flux-schnell example end to end on an in-process fake server (no
    /// token, no network) and write the output image.
    Demo(DemoArgs),
}

/// `replicate run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The model: owner/name (latest version) or owner/name:version.
    #[arg(value_name = "MODEL[:VERSION]")]
    pub model: String,
    /// An input field, key=value: true/false become booleans, integers and decimals numbers,
    /// anything else a string; key=@path sends a file (inlined when small, uploaded when large).
    /// Repeatable.
    #[arg(short = 'i', long = "input", value_name = "KEY=VALUE")]
    pub inputs: Vec<String>,
    /// A JSON file holding an input object; -i fields are set on top of it.
    #[arg(long, value_name = "FILE")]
    pub input_json: Option<PathBuf>,
    /// Where URL outputs are downloaded (default: the current directory; created if missing).
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Do not download URL outputs (their URLs are printed instead).
    #[arg(long)]
    pub no_download: bool,
    /// Print the final prediction as one JSON object on stdout, and nothing else.
    #[arg(long, conflicts_with = "stream")]
    pub json: bool,
    /// Follow the prediction's output stream and print each output event as it arrives.
    #[arg(long)]
    pub stream: bool,
    /// Sync mode: ask the server to hold the create response up to SECS (1-60) seconds, then poll
    /// if the prediction is not finished yet.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u8).range(1..=60))]
    pub wait: Option<u8>,
}

/// `replicate prediction ...`.
#[derive(Debug, Subcommand)]
pub enum PredictionCommand {
    /// Show a prediction.
    Get(IdJson),
    /// Cancel a prediction.
    Cancel(IdArg),
    /// List every prediction, newest first (all pages).
    List(JsonFlag),
    /// Wait until a prediction finishes; exit 1 if it failed, was canceled or aborted.
    Wait(IdJson),
}

/// One id.
#[derive(Debug, Args)]
pub struct IdArg {
    /// The id.
    pub id: String,
}

/// One id and `--json`.
#[derive(Debug, Args)]
pub struct IdJson {
    /// The id.
    pub id: String,
    /// Print the JSON object returned by the API.
    #[arg(long)]
    pub json: bool,
}

/// `--json` alone.
#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON (one object, or one array for lists).
    #[arg(long)]
    pub json: bool,
}

/// `replicate stream`.
#[derive(Debug, Args)]
pub struct StreamArgs {
    /// The prediction id.
    pub id: String,
}

/// `replicate files ...`.
#[derive(Debug, Subcommand)]
pub enum FilesCommand {
    /// Upload a file.
    Upload(UploadArgs),
    /// List every file (all pages).
    List(JsonFlag),
    /// Show a file.
    Get(IdJson),
    /// Delete a file.
    Delete(IdArg),
}

/// `replicate files upload`.
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The file to upload.
    pub path: PathBuf,
    /// Metadata to store with it: a JSON object.
    #[arg(long, value_name = "JSON")]
    pub metadata: Option<String>,
    /// Print the file object as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `replicate model ...`.
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Show a model.
    Get(ModelArgs),
    /// List a model's versions, newest first (all pages).
    Versions(ModelArgs),
}

/// A model name.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// The model.
    #[arg(value_name = "OWNER/NAME")]
    pub model: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `replicate webhook ...`.
#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Check a webhook delivery's signature; the body is read from stdin, byte for byte. Exit 0
    /// and print "valid" when any signature matches, exit 1 with the reason otherwise.
    Verify(VerifyArgs),
}

/// `replicate webhook verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The signing secret, whsec_...
    #[arg(long, value_name = "SECRET")]
    pub secret: String,
    /// The webhook-id header.
    #[arg(long, value_name = "ID")]
    pub id: String,
    /// The webhook-timestamp header (Unix seconds).
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub timestamp: String,
    /// The webhook-signature header: "v1,SIG [v1,SIG2 ...]" (repeatable).
    #[arg(long, value_name = "SIGNATURES", required = true)]
    pub signature: Vec<String>,
    /// Allowed clock difference in seconds, both directions; 0 disables the check.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub tolerance: u64,
}

/// `replicate fake-server`.
#[derive(Debug, Args)]
pub struct FakeServerArgs {
    /// Port of the API on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Port of the files and streams origin (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub files_port: u16,
    /// Path prefix under which the API is also served, like the seed's proxy ("" for none).
    #[arg(long, default_value = "/replicate")]
    pub prefix: String,
    /// Scheduling tick of the scripted models, in milliseconds.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub tick_ms: u64,
}

/// `replicate demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to write the output image.
    #[arg(long, value_name = "DIR", default_value = "replicate-demo-output")]
    pub output_dir: PathBuf,
}
