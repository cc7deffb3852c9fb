//! The command line grammar (clap derive).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

#[cfg(feature = "fake")]
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use replicate_protocol::output::DEFAULT_MAX_OUTPUT_FILES;
use replicate_protocol::{ApiToken, CancelAfter};

/// The default of `--max-pages`: how many pages a listing reads at most.
pub const DEFAULT_MAX_PAGES: usize = replicate_protocol::DEFAULT_MAX_PAGES;

/// The longest `--timeout` accepted: a year.
const MAX_TIMEOUT_SECS: f64 = 366.0 * 24.0 * 3600.0;

/// Shown at the end of `replicate --help`, followed by `$tail`.
macro_rules! after_help {
    ($tail:literal) => {
        concat!(
            "\
Configuration:
  --token / REPLICATE_API_TOKEN      the API token (never printed)
  --base-url / REPLICATE_BASE_URL    the API base, e.g. https://proxy.example/replicate
                                     (default https://api.replicate.com); every request goes
                                     to {base}/v1/... with Authorization: Bearer <token>
  REPLICATE_POLL_INTERVAL_MS         poll interval in milliseconds (also the hidden
                                     --poll-interval-ms); default: 0.5 s, backing off to 5 s

Limits:
  --input-json FILE                  at most 64 MiB, a regular file or - (stdin)
  -i key=@path                       a regular file of at most 100 MiB
  -i key={{.output}}                 a prediction JSON of at most 64 MiB on stdin
  webhook verify                     a body of at most 32 MiB on stdin
  run --max-files N                  output files written per prediction (default 1000)
  list --max-pages N                 pages read by a listing (default 1000)

Exit codes:
  0    success
  1    the prediction (or training) failed, was canceled or was aborted (stderr names it)
  2    usage error: bad arguments, a malformed -i, an input that does not match the model's
       schema (one line per problem), an unresolvable {{.placeholder}}, an unreadable or too
       large file, or no API token; nothing was created (run reads the schema first)
  3    API, authentication, network, timeout or local I/O error (1 to 5 lines on stderr;
       when the prediction was created, its id and how to resume)
  130  interrupted (Ctrl-C, SIGTERM); partial downloads were removed

Server text (logs, errors, outputs, file names) is printed with control characters escaped,
and the API token is never printed.",
            $tail
        )
    };
}

/// Shown at the end of `replicate --help`.
#[cfg(feature = "fake")]
const AFTER_HELP: &str = after_help!(" `replicate demo` needs no token and no network.");

/// Shown at the end of `replicate --help`.
#[cfg(not(feature = "fake"))]
const AFTER_HELP: &str = after_help!("");

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
///
/// `Debug` never shows the token (it is held as an [`ApiToken`]).
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// API token (default: $REPLICATE_API_TOKEN). A missing token is a usage error (exit 2).
    #[arg(
        long,
        global = true,
        env = "REPLICATE_API_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        value_parser = parse_token
    )]
    pub token: Option<ApiToken>,
    /// API base URL, e.g. https://proxy.example/replicate (default: $REPLICATE_BASE_URL, else
    /// https://api.replicate.com).
    // The value of the environment variable is not shown in --help: it may hold credentials
    // (https://user:password@host).
    #[arg(
        long,
        global = true,
        env = "REPLICATE_BASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
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
    /// Run a model once per line of a JSON Lines file: paced, resumable, never created twice;
    /// one result line per input line.
    #[command(after_help = BATCH_HELP)]
    Batch(BatchArgs),
    /// Get, cancel, list, wait for or watch predictions.
    #[command(subcommand)]
    Prediction(PredictionCommand),
    /// Follow a prediction's output stream (SSE) and print each output event as it arrives.
    Stream(StreamArgs),
    /// Upload, list, get and delete files.
    #[command(subcommand)]
    Files(FilesCommand),
    /// List, show, create and delete models; list a model's versions.
    #[command(subcommand)]
    Model(ModelCommand),
    /// List the hardware models and deployments can run on.
    Hardware(JsonFlag),
    /// List collections of models, or show one.
    #[command(subcommand)]
    Collection(CollectionCommand),
    /// Search models, collections and documentation pages.
    Search(SearchArgs),
    /// Create, get, list, cancel or wait for trainings.
    #[command(subcommand)]
    Training(TrainingCommand),
    /// List, show, create, update and delete deployments (run one with `run --deployment`).
    #[command(subcommand)]
    Deployment(DeploymentCommand),
    /// Generate a Rust module from a model version's schema: a typed `Input` with a builder that
    /// checks it, an `Output` type, `MODEL`/`VERSION` and typed `run` functions (see the
    /// replicate-codegen crate).
    Codegen(CodegenArgs),
    /// Show the account the token belongs to.
    Account(JsonFlag),
    /// Print a shell completion script on stdout (e.g. `replicate completions bash >
    /// ~/.local/share/bash-completion/completions/replicate`).
    Completions(CompletionsArgs),
    /// Webhook helpers.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Run the bundled Replicate-compatible fake server until killed: a local stand-in for the
    /// API, with scripted failures and faults.
    #[cfg(feature = "fake")]
    #[command(after_help = replicate_fake::SPEC_HELP)]
    FakeServer(FakeServerArgs),
    /// Run the seed guide's flux-schnell example end to end on an in-process fake server (no
    /// token, no network) and write the output image.
    #[cfg(feature = "fake")]
    Demo(DemoArgs),
}

/// `replicate run`.
#[derive(Debug, Args)]
#[command(after_help = CHAIN_HELP)]
pub struct RunArgs {
    /// The model: owner/name (latest version) or owner/name:version. Omitted with --deployment.
    #[arg(
        value_name = "MODEL[:VERSION]",
        required_unless_present = "deployment",
        conflicts_with = "deployment"
    )]
    pub model: Option<String>,
    /// Run on this deployment (the deployment decides the model and version).
    #[arg(long, value_name = "OWNER/NAME")]
    pub deployment: Option<String>,
    /// The inputs (-i, --input-json).
    #[command(flatten)]
    pub input: InputArgs,
    /// The server cancels the prediction if it is still running after DURATION (sent as
    /// Cancel-After): 30s, 5m, 1h30m or plain seconds, at least 5s.
    #[arg(long, value_name = "DURATION", value_parser = parse_cancel_after)]
    pub cancel_after: Option<CancelAfter>,
    /// Print the prediction's web page (on stderr, once created) and open it in a browser when
    /// stdout is a terminal and one is available (never with REPLICATE_NO_BROWSER set).
    #[arg(long)]
    pub web: bool,
    /// Where URL outputs are downloaded (default: the current directory). Created if missing,
    /// before the prediction is created; an existing non-directory is a usage error.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Replace existing files of the same name (default: an output never replaces a file; it
    /// is written as name-1.ext, name-2.ext, ... and the path written is printed).
    #[arg(long)]
    pub overwrite: bool,
    /// The most output files written for the prediction; over it nothing is written (exit 3,
    /// the output URLs are printed).
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_MAX_OUTPUT_FILES,
        value_parser = parse_count
    )]
    pub max_files: usize,
    /// Give up waiting after SECS seconds (decimals allowed): exit 3, and the prediction is
    /// canceled unless --no-cancel. Downloads are not counted.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Option<Secs>,
    /// With --timeout: leave the prediction running at the timeout instead of canceling it.
    #[arg(long, requires = "timeout")]
    pub no_cancel: bool,
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
    /// Do not fetch the model's schema: -i values are typed by the rules without a schema and
    /// the input is sent unchecked (the server may then refuse it).
    #[arg(long)]
    pub no_validate: bool,
}

/// `-i key=value ...` and `--input-json FILE`: the input of a prediction or a training.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// An input field, key=value. `run` types it by the model's schema: seed=007 is 7 for an
    /// integer input and "007" for a string one, enum values are checked, and key=@path is a
    /// file only for a file input (the text "@path" otherwise). Without a schema (run
    /// --no-validate, training create, an input the schema lacks): true/false become booleans,
    /// 64-bit integers and decimals numbers, anything else a string, and key=@path a file.
    /// A file is a regular file of at most 100 MiB (inlined when small, uploaded when large);
    /// key=@@text is the text "@text"; `{{.output}}`, `{{.output[N]}}` and `{{.id}}` take a
    /// value from the prediction JSON piped on stdin (see below). Repeatable, once per key.
    #[arg(short = 'i', long = "input", value_name = "KEY=VALUE")]
    pub inputs: Vec<String>,
    /// A JSON file holding an input object (at most 64 MiB; - reads stdin); -i fields are set
    /// on top of it.
    #[arg(long, value_name = "FILE")]
    pub input_json: Option<PathBuf>,
}

/// Shown at the end of `replicate run --help` and `replicate training create --help`.
const CHAIN_HELP: &str = r#"Chaining: when a -i value holds {{.output}}, {{.output[N]}} or {{.id}} (any {{.path}}:
.field, .field[N], .field.sub), stdin is read as a prediction JSON (the --json output of a
previous command, at most 64 MiB) and the placeholder is replaced before anything is sent:
  replicate run black-forest-labs/flux-schnell -i prompt="a cat" --json --no-download \
    | replicate run nightmareai/real-esrgan -i image={{.output[0]}}
A value that is exactly one placeholder takes the JSON value as is (a string, a number, a
list); inside other text a string is inserted as is, anything else as compact JSON. A
placeholder that cannot be resolved (no JSON on stdin, a missing field or index, a null
output) is a usage error (exit 2) with nothing sent. Stdin is read only when a placeholder is
present; {{ without a leading dot (a template in a prompt) is sent as is."#;

/// Parses `--cancel-after`: 30s, 5m, 1h30m or plain seconds; at least 5 s.
fn parse_cancel_after(s: &str) -> Result<CancelAfter, String> {
    s.parse::<CancelAfter>().map_err(|e| match e {
        replicate_protocol::Error::InvalidInput(m) => m,
        other => other.to_string(),
    })
}

/// `replicate batch`.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// The model: owner/name (latest version), owner/name:version or a version id. May be
    /// omitted with --deployment (when given with it, it is checked and otherwise ignored: the
    /// deployment decides the model).
    #[arg(value_name = "MODEL[:VERSION]", required_unless_present = "deployment")]
    pub model: Option<String>,
    /// The inputs: one JSON object per line, each a prediction's input; - reads stdin. Blank
    /// lines are skipped. Each line at most 16 MiB, the whole file at most 256 MiB.
    #[arg(long, value_name = "FILE.jsonl")]
    pub inputs: PathBuf,
    /// The results: one JSON object per input line, appended as each ends (see below). The
    /// journal is kept beside it, as RESULTS.jsonl.journal.
    #[arg(long, value_name = "RESULTS.jsonl")]
    pub out: PathBuf,
    /// The most predictions running at once.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = parse_concurrency)]
    pub concurrency: usize,
    /// Where outputs are downloaded, as LINE-INDEX.ext (default: ./outputs). Created if
    /// missing.
    #[arg(long, value_name = "DIR", conflicts_with = "no_download")]
    pub output_dir: Option<PathBuf>,
    /// Do not download outputs: the results keep their URLs (which expire after about an
    /// hour).
    #[arg(long)]
    pub no_download: bool,
    /// Continue a batch from its journal and results (after an error, Ctrl-C or a kill): no
    /// input is created twice, no line is written twice.
    #[arg(long)]
    pub resume: bool,
    /// Process only the lines n with n % N == K % N (1 <= K <= N, lines numbered from 1): run
    /// K = 1..N on N machines, each with its own --out. Each shard creates at most 1/N of the
    /// default create rate.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// Per prediction: the server cancels a prediction still running after SECS seconds (sent
    /// as Cancel-After, whole seconds, at least 5); it is recorded as canceled.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Option<Secs>,
    /// Run on this deployment instead of MODEL.
    #[arg(long, value_name = "OWNER/NAME")]
    pub deployment: Option<String>,
    /// Do not fetch the model's schema: the lines are sent unchecked (the server may then
    /// refuse some, each recorded as failed).
    #[arg(long)]
    pub no_validate: bool,
    /// Creates a second, before --shard's division (default 10, Replicate's 600 a minute).
    #[arg(long, hide = true, value_name = "PER_SEC", value_parser = parse_rate)]
    pub create_rate: Option<f64>,
    /// How long after a create whose answer was lost the batch looks it up (default 10000).
    #[arg(long, hide = true, value_name = "MS")]
    pub lost_grace_ms: Option<u64>,
}

/// `--shard K/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// K, from 1 to N.
    pub k: u64,
    /// N, at least 1.
    pub n: u64,
}

impl Shard {
    /// Whether line `line` (numbered from 1) belongs to this shard: `line % N == K % N`.
    pub fn takes(self, line: usize) -> bool {
        line as u64 % self.n == self.k % self.n
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

/// Parses `--shard K/N`.
fn parse_shard(s: &str) -> Result<Shard, String> {
    let bad = || format!("expected K/N with 1 <= K <= N (e.g. 2/3), got {s:?}");
    let (k, n) = s.trim().split_once('/').ok_or_else(bad)?;
    let parse = |x: &str| {
        let x = x.trim();
        if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        x.parse::<u64>().map_err(|_| bad())
    };
    let (k, n) = (parse(k)?, parse(n)?);
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok(Shard { k, n })
}

/// Parses `--concurrency`: 1 to 1000.
fn parse_concurrency(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=1000).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from 1 to 1000, got {s:?}")),
    }
}

/// Parses the hidden `--create-rate`: a positive number.
fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= 10_000.0 => Ok(r),
        _ => Err(format!("expected a positive number, got {s:?}")),
    }
}

/// Shown at the end of `replicate batch --help`.
const BATCH_HELP: &str = r#"Inputs (--inputs FILE.jsonl, or - for stdin): one JSON object per line, the prediction's
input. Blank lines are skipped; lines are numbered from 1 in the file, blank ones included. A
line that is not a JSON object is a usage error (exit 2, naming its line) before anything is
sent. Limits: 16 MiB a line, 256 MiB in all. Every line is then checked against the model's
schema (as `run` checks its input): a line that does not match is exit 2, one line per
problem naming its line number, before any create; --no-validate skips the check.

Results (--out RESULTS.jsonl): one JSON object per input line, appended and flushed as that
line ends (in completion order, not input order):
  {"line": 7, "id": "p1ab...", "status": "succeeded", "output": ["https://..."],
   "error": null, "files": ["outputs/7-0.png"], "create": "created"}
  line    the line number in the input file
  id      the prediction's id (null when none was created: an input the API refused)
  status  succeeded | failed | canceled | aborted | unknown (the create's outcome is not
          known, or the prediction ended in no known status)
  output  the prediction's output as the API returned it (null when none)
  error   the prediction's error, the API's refusal, or why its outputs were not saved
  files   the files written into --output-dir, LINE-INDEX.ext (e.g. 7-0.png; [] with
          --no-download or when the output holds no file)
  create  created (the first create was answered) | adopted (its answer was lost and the
          prediction was found on the server) | resent (lost, not found, sent again) | null
Every non-blank line of the input (of the shard) appears exactly once, across resumes.

Journal: RESULTS.jsonl.journal, an append-only JSON Lines file written (and synced) before each
create is sent. With --resume, lines already in the results are not written again, predictions
already created are waited for, and creates whose answer was lost are looked up first: no
input is created twice, even after a kill -9. Without --resume, an existing results file or
journal is a usage error (nothing is overwritten).

Downloads: output files go to --output-dir (default ./outputs) as LINE-INDEX.ext, the extension
from the URL or the Content-Type. An existing file is never replaced: an identical one is kept
(a resumed line), a different one makes the output LINE-INDEX-1.ext (noted on stderr).

Progress goes to stderr: a bar on a terminal, else a line at most once a second.

Exit codes:
  0    every line succeeded (the results' earlier lines included, after --resume)
  1    some lines did not succeed (failed, canceled, aborted, refused, unknown, or outputs not
       saved): each is recorded in its result line
  2    usage error: bad arguments, a malformed input line, existing results without --resume,
       a journal of another batch; nothing was sent
  3    the batch could not go on (authentication, network or server past the retries, a local
       write failure): the results and the journal written so far are valid for --resume
  130  interrupted (Ctrl-C, SIGTERM): no more creates; continue with --resume (predictions
       already created keep running on Replicate and are waited for, not created again)"#;

/// `replicate prediction ...`.
#[derive(Debug, Subcommand)]
pub enum PredictionCommand {
    /// Show a prediction (with --web: print its web page, and open it).
    Get(PredictionGetArgs),
    /// Cancel a prediction.
    Cancel(IdArg),
    /// List every prediction, newest first (all pages, printed as they arrive).
    List(ListArgs),
    /// Wait until a prediction finishes; exit 1 if it failed, was canceled or aborted.
    Wait(WaitArgs),
    /// Print each change of a prediction (status, logs, output, progress) until it finishes;
    /// exit 1 if it failed, was canceled or aborted.
    #[command(after_help = WATCH_HELP)]
    Watch(WatchArgs),
    /// Download the output files of a succeeded prediction (streamed to disk, several at once,
    /// with a byte progress bar on a terminal); prints each path written.
    Download(PredictionDownloadArgs),
}

/// `replicate prediction get`.
#[derive(Debug, Args)]
pub struct PredictionGetArgs {
    /// The id.
    pub id: String,
    /// Print the JSON object returned by the API.
    #[arg(long, conflicts_with = "web")]
    pub json: bool,
    /// Print only the prediction's web page URL, and open it in a browser when stdout is a
    /// terminal and one is available (never with REPLICATE_NO_BROWSER set).
    #[arg(long)]
    pub web: bool,
}

/// `replicate prediction download`.
#[derive(Debug, Args)]
pub struct PredictionDownloadArgs {
    /// The id.
    pub id: String,
    /// Where the files are written (default: the current directory). Created if missing.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Replace existing files of the same name (default: never; name-1.ext, ... instead).
    #[arg(long)]
    pub overwrite: bool,
    /// The most files written; over it nothing is written (exit 3).
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_MAX_OUTPUT_FILES,
        value_parser = parse_count
    )]
    pub max_files: usize,
}

/// Shown at the end of `replicate prediction watch --help`.
const WATCH_HELP: &str = r#"Each update is one line on stdout, as it happens:
  status: processing     the status, when it changed (first: the status at the start)
  log: Loading model     each new log line, once complete
  output: ["https://…"]  the whole output, when it changed: a string as is, anything else
                         as JSON (cut at 2000 characters)
  progress: 75% (3/4)    the last tqdm progress bar of the logs, when it moved
  finished: succeeded    the last line: the prediction is terminal

With --json, one JSON object per update per line:
  {"type":"status","status":"processing"}
  {"type":"logs","text":"Loading model\n"}    the new log text, exactly as written since
                                              the last update (all of it when rewritten)
  {"type":"output","output":...}              the whole output, when it changed
  {"type":"output_chunk","text":"..."}        an output event of the prediction's stream
                                              (an LLM's next tokens), as sent
  {"type":"progress","percentage":75,"current":3,"total":4}
  {"type":"finished","prediction":{...}}      the terminal prediction, always the last line

Exit codes: 0 when the prediction succeeded; 1 when it failed, was canceled or aborted; 3 on an
API, network or timeout error. Errors go to stderr: stdout holds the updates only."#;

/// `--json` and `--max-pages`, for the listings.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print one JSON array, written item by item as pages arrive.
    #[arg(long)]
    pub json: bool,
    /// Stop after reading N pages (exit 3 after the items already printed).
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_MAX_PAGES,
        value_parser = parse_count
    )]
    pub max_pages: usize,
}

/// `replicate prediction wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The id.
    pub id: String,
    /// Print the JSON object returned by the API.
    #[arg(long)]
    pub json: bool,
    /// Give up after SECS seconds (decimals allowed): exit 3; the prediction keeps running.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Option<Secs>,
}

/// `replicate prediction watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The id.
    pub id: String,
    /// Print one JSON object per update per line (see below).
    #[arg(long)]
    pub json: bool,
    /// Give up after SECS seconds (decimals allowed): exit 3; the prediction keeps running.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Option<Secs>,
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
    /// Give up after SECS seconds (decimals allowed), the whole stream included: exit 3; the
    /// prediction keeps running.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Option<Secs>,
}

/// `replicate files ...`.
#[derive(Debug, Subcommand)]
pub enum FilesCommand {
    /// Upload a file.
    Upload(UploadArgs),
    /// List every file (all pages, printed as they arrive).
    List(ListArgs),
    /// Show a file.
    Get(IdJson),
    /// Delete a file.
    Delete(IdArg),
    /// Download a file's content, checked against its SHA-256 (a mismatch: exit 3, nothing
    /// written).
    Download(FileDownloadArgs),
}

/// `replicate files download`.
#[derive(Debug, Args)]
pub struct FileDownloadArgs {
    /// The file id.
    pub id: String,
    /// Where to write it (default: the file's name, made safe, in the current directory). An
    /// existing file is not replaced unless --overwrite.
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Replace PATH when it exists.
    #[arg(long)]
    pub overwrite: bool,
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
    /// List a model's versions, newest first (all pages, printed as they arrive).
    Versions(VersionsArgs),
    /// List the public models, newest first (all pages, printed as they arrive).
    List(ListArgs),
    /// Create a model (it has no version until one is pushed or trained).
    Create(ModelCreateArgs),
    /// Delete a model (only a private model without versions can be deleted).
    Delete(ModelNameArg),
    /// Show a model version's inputs (name, type, default, constraints, description, in
    /// order) and the shape of its output.
    Schema(SchemaArgs),
}

/// `replicate model schema`.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// The model, and a version (default: the model's latest version).
    #[arg(value_name = "OWNER/NAME[:VERSION]")]
    pub model: String,
    /// Print a JSON description instead of the table (its shape is in the CLI's README).
    #[arg(long)]
    pub json: bool,
}

/// `replicate codegen`.
#[derive(Debug, Args)]
pub struct CodegenArgs {
    /// The model, and a version (default: the model's latest version; with `--schema`, the
    /// version is the saved version object's `id` unless given here).
    #[arg(value_name = "OWNER/NAME[:VERSION]")]
    pub model: String,
    /// Read the schema from this file instead of asking the API: a version's `openapi_schema`,
    /// a version object or a model object as the API returns them (at most 16 MiB).
    #[arg(long, value_name = "FILE")]
    pub schema: Option<PathBuf>,
    /// Write the module to this file (replaced only when its content changes) instead of
    /// standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `replicate model create`.
#[derive(Debug, Args)]
pub struct ModelCreateArgs {
    /// The model to create; OWNER is your user or organization.
    #[arg(value_name = "OWNER/NAME")]
    pub model: String,
    /// The hardware SKU it runs on (see `replicate hardware`), e.g. cpu or gpu-t4.
    #[arg(long, value_name = "SKU")]
    pub hardware: String,
    /// Who may see and run it.
    #[arg(long, value_enum)]
    pub visibility: VisibilityArg,
    /// A description.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Print the created model as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `--visibility`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VisibilityArg {
    /// Anyone.
    Public,
    /// Only you (and your organization).
    Private,
}

/// One model, OWNER/NAME.
#[derive(Debug, Args)]
pub struct ModelNameArg {
    /// The model.
    #[arg(value_name = "OWNER/NAME")]
    pub name: String,
}

/// One deployment, OWNER/NAME.
#[derive(Debug, Args)]
pub struct DeploymentNameArg {
    /// The deployment.
    #[arg(value_name = "OWNER/NAME")]
    pub name: String,
}

/// `replicate deployment get`.
#[derive(Debug, Args)]
pub struct DeploymentGetArgs {
    /// The deployment.
    #[arg(value_name = "OWNER/NAME")]
    pub name: String,
    /// Print the JSON object returned by the API.
    #[arg(long)]
    pub json: bool,
}

/// `replicate collection ...`.
#[derive(Debug, Subcommand)]
pub enum CollectionCommand {
    /// List every collection (all pages, printed as they arrive).
    List(ListArgs),
    /// Show a collection and its models.
    Get(SlugArgs),
}

/// `replicate collection get`.
#[derive(Debug, Args)]
pub struct SlugArgs {
    /// The collection's slug, e.g. text-to-image.
    pub slug: String,
    /// Print the JSON object returned by the API.
    #[arg(long)]
    pub json: bool,
}

/// `replicate search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// What to look for.
    pub query: String,
    /// At most N models (1 to 50; the server's default is 20).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=50))]
    pub limit: Option<u32>,
    /// Print the JSON object returned by the API ({query, models, collections, pages}).
    #[arg(long)]
    pub json: bool,
}

/// `replicate training ...`.
#[derive(Debug, Subcommand)]
pub enum TrainingCommand {
    /// Train a model version; the result is pushed as a new version of --destination.
    #[command(after_help = CHAIN_HELP)]
    Create(TrainingCreateArgs),
    /// Show a training.
    Get(IdJson),
    /// List every training, newest first (all pages, printed as they arrive).
    List(ListArgs),
    /// Cancel a training.
    Cancel(IdArg),
    /// Wait until a training finishes and print its new version and weights; exit 1 if it
    /// failed, was canceled or aborted.
    Wait(WaitArgs),
}

/// `replicate training create`.
#[derive(Debug, Args)]
pub struct TrainingCreateArgs {
    /// The model version to train.
    #[arg(value_name = "MODEL:VERSION")]
    pub model: String,
    /// The model that receives the new version: an existing model of yours.
    #[arg(long, value_name = "OWNER/NAME")]
    pub destination: String,
    /// The training input (-i, --input-json).
    #[command(flatten)]
    pub input: InputArgs,
    /// A URL (http or https) to receive the training's webhooks.
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
    /// Wait until the training finishes, then print it as `training wait` does.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up waiting after SECS seconds (exit 3; the training keeps running).
    #[arg(long, value_name = "SECS", value_parser = parse_secs, requires = "wait")]
    pub timeout: Option<Secs>,
    /// Print the training as JSON (once finished with --wait).
    #[arg(long)]
    pub json: bool,
}

/// `replicate deployment ...`.
#[derive(Debug, Subcommand)]
pub enum DeploymentCommand {
    /// List your deployments (all pages, printed as they arrive).
    List(ListArgs),
    /// Show a deployment.
    Get(DeploymentGetArgs),
    /// Create a deployment of a model version, owned by your account.
    Create(DeploymentCreateArgs),
    /// Change a deployment (each change makes a new release); give at least one option.
    Update(DeploymentUpdateArgs),
    /// Delete a deployment.
    Delete(DeploymentNameArg),
}

/// `replicate deployment create`.
#[derive(Debug, Args)]
pub struct DeploymentCreateArgs {
    /// The deployment's name (its owner is your account).
    pub name: String,
    /// The model it serves.
    #[arg(long, value_name = "OWNER/NAME")]
    pub model: String,
    /// The model version it serves.
    #[arg(long, value_name = "ID")]
    pub version: String,
    /// The hardware SKU (see `replicate hardware`).
    #[arg(long, value_name = "SKU")]
    pub hardware: String,
    /// The fewest instances kept running.
    #[arg(long, value_name = "N")]
    pub min_instances: u32,
    /// The most instances it scales to.
    #[arg(long, value_name = "N")]
    pub max_instances: u32,
    /// Print the created deployment as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `replicate deployment update`.
#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("change")
        .required(true)
        .multiple(true)
        .args(["version", "hardware", "min_instances", "max_instances"])
))]
pub struct DeploymentUpdateArgs {
    /// The deployment.
    #[arg(value_name = "OWNER/NAME")]
    pub deployment: String,
    /// A new model version (of the same model).
    #[arg(long, value_name = "ID")]
    pub version: Option<String>,
    /// A new hardware SKU.
    #[arg(long, value_name = "SKU")]
    pub hardware: Option<String>,
    /// A new minimum number of instances.
    #[arg(long, value_name = "N")]
    pub min_instances: Option<u32>,
    /// A new maximum number of instances.
    #[arg(long, value_name = "N")]
    pub max_instances: Option<u32>,
    /// Print the updated deployment as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `replicate completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `replicate model versions`.
#[derive(Debug, Args)]
pub struct VersionsArgs {
    /// The model.
    #[arg(value_name = "OWNER/NAME")]
    pub model: String,
    /// `--json` and `--max-pages`.
    #[command(flatten)]
    pub list: ListArgs,
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
    /// Check a webhook delivery's signature; the body (at most 32 MiB) is read from stdin, byte
    /// for byte, once the arguments are checked. Exit 0 and print "valid" when any signature
    /// matches, exit 1 with the reason otherwise, exit 2 on a malformed argument.
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
///
/// It serves rather than calls the API: the client options do not apply. Its `--token` is the
/// token the server accepts (the global `--token` is not propagated here, see [`parse`]), and
/// `--base-url` is refused.
#[cfg(feature = "fake")]
#[derive(Debug, Args)]
pub struct FakeServerArgs {
    /// The bearer token the server accepts, printed at start (default: hk-fake-token). Not
    /// read from REPLICATE_API_TOKEN: a real token is never served nor printed.
    #[arg(long, value_name = "TOKEN", value_parser = parse_token)]
    pub token: Option<ApiToken>,
    /// Refused: the server is not a client (its address is --port, printed at start). It takes
    /// the place of the global --base-url here, so that --help does not show it.
    #[arg(long, hide = true, value_name = "URL", value_parser = refuse_base_url)]
    pub base_url: Option<String>,
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
    /// Make every prediction of this model fail with MESSAGE (repeatable; see below).
    #[arg(long = "fail-model", value_name = "OWNER/NAME[:MESSAGE]")]
    pub fail_models: Vec<replicate_fake::FailModel>,
    /// Inject a fault into matching requests (repeatable, tried in order; see below).
    #[arg(long = "fault", value_name = "METHOD:PATH_SUBSTRING:FAULT[:TIMES]")]
    pub faults: Vec<replicate_fake::FaultRule>,
    /// Throttle the API to N requests per second, like Replicate: beyond it, 429 with
    /// Retry-After (0 throttles every request).
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u32>,
    /// Pace each connection's output and file downloads to this many bytes per second (to
    /// measure concurrent downloads on loopback).
    #[arg(long, value_name = "BYTES_PER_SEC", value_parser = clap::value_parser!(u64).range(1..))]
    pub connection_rate: Option<u64>,
}

/// `replicate demo`.
#[cfg(feature = "fake")]
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to write the output image.
    #[arg(long, value_name = "DIR", default_value = "replicate-demo-output")]
    pub output_dir: PathBuf,
}

/// A number of seconds given on the command line (`--timeout`): positive, decimals allowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Secs {
    /// As given.
    pub secs: f64,
}

impl Secs {
    /// As a duration.
    pub fn duration(self) -> Duration {
        Duration::try_from_secs_f64(self.secs).unwrap_or(Duration::ZERO)
    }
}

impl fmt::Display for Secs {
    /// `5 s`, `0.5 s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} s", self.secs)
    }
}

/// Parses `--timeout`: a positive number of seconds, at most a year.
fn parse_secs(s: &str) -> Result<Secs, String> {
    match s.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs <= MAX_TIMEOUT_SECS => Ok(Secs { secs }),
        _ => Err(format!(
            "expected a positive number of seconds (at most {MAX_TIMEOUT_SECS}), got {s:?}"
        )),
    }
}

/// Parses a count that must be at least 1 (`--max-pages`, `--max-files`).
fn parse_count(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("expected a whole number of at least 1, got {s:?}")),
    }
}

/// Wraps `--token` at once, so that no `Debug` of the arguments can show it.
fn parse_token(s: &str) -> Result<ApiToken, String> {
    Ok(ApiToken::new(s))
}

/// `fake-server --base-url`: always a usage error.
#[cfg(feature = "fake")]
fn refuse_base_url(_: &str) -> Result<String, String> {
    Err(
        "fake-server serves the API and calls no server: it takes no --base-url \
         (choose its address with --port)"
            .to_owned(),
    )
}

/// Parses the command line (exit 2 on a usage error, 0 after `--help`).
pub fn parse() -> Cli {
    let matches = Cli::command().get_matches();
    from_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// The arguments of parsed matches, with `fake-server`'s `--token` taken only from the command
/// line.
///
/// `fake-server` defines its own `--token`, which keeps clap from adding the global one to it.
/// But clap still copies the global one's value into it, and that value may come from
/// `REPLICATE_API_TOKEN`: a real token, that the server would accept and print. Only a token
/// given on the command line (after `fake-server`, or before it) is kept.
pub fn from_matches(matches: &ArgMatches) -> Result<Cli, clap::Error> {
    #[allow(unused_mut)]
    let mut cli = Cli::from_arg_matches(matches)?;
    #[cfg(feature = "fake")]
    if let Command::FakeServer(args) = &mut cli.command
        && let Some(sub) = matches.subcommand_matches("fake-server")
        && sub.value_source("token") != Some(ValueSource::CommandLine)
    {
        args.token = None;
    }
    Ok(cli)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "r8_very-secret-token-value";

    #[test]
    fn debug_of_the_arguments_does_not_show_the_token() {
        let cli = Cli::try_parse_from(["replicate", "--token", SECRET, "account"]).expect("parse");
        assert_eq!(
            cli.global.token.as_ref().map(ApiToken::expose),
            Some(SECRET)
        );
        let debug = format!("{cli:?} {:?} {:#?}", cli.global, cli.global);
        assert!(!debug.contains(SECRET), "{debug}");
        assert!(!debug.contains("very-secret"), "{debug}");
    }

    #[cfg(feature = "fake")]
    #[test]
    fn fake_server_takes_its_token_from_its_command_line_only() {
        let parse = |args: &[&str]| {
            let m = Cli::command().try_get_matches_from(args).expect("parse");
            match from_matches(&m).expect("arguments").command {
                Command::FakeServer(a) => a.token.map(|t| t.expose().to_owned()),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(parse(&["replicate", "fake-server"]), None);
        assert_eq!(
            parse(&["replicate", "fake-server", "--token", "t1"]),
            Some("t1".to_owned())
        );
        assert_eq!(
            parse(&["replicate", "--token", "t2", "fake-server"]),
            Some("t2".to_owned())
        );
        let m =
            Cli::command().try_get_matches_from(["replicate", "fake-server", "--base-url", "x"]);
        assert!(m.is_err());
        let m = Cli::command().try_get_matches_from([
            "replicate",
            "fake-server",
            "--fault",
            "POST:/predictions:503:2",
            "--fail-model",
            "a/b:boom",
            "--rate-limit",
            "5",
            "--connection-rate",
            "1048576",
        ]);
        let cli = from_matches(&m.expect("parse")).expect("arguments");
        let Command::FakeServer(a) = cli.command else {
            panic!("fake-server expected");
        };
        assert_eq!(a.faults.len(), 1);
        assert_eq!(a.faults[0].times, 2);
        assert_eq!(a.fail_models[0].error, "boom");
        assert_eq!(a.rate_limit, Some(5));
        assert_eq!(a.connection_rate, Some(1 << 20));
    }

    #[test]
    fn timeouts_and_counts() {
        assert_eq!(parse_secs("5").map(|s| s.to_string()), Ok("5 s".to_owned()));
        assert_eq!(
            parse_secs("0.5").map(|s| s.to_string()),
            Ok("0.5 s".to_owned())
        );
        for bad in ["0", "-1", "inf", "NaN", "x", "1e12"] {
            assert!(parse_secs(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_count("3"), Ok(3));
        assert!(parse_count("0").is_err());
        assert!(parse_count("-2").is_err());
    }
}
