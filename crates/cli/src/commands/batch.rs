//! `replicate batch MODEL --inputs FILE.jsonl --out RESULTS.jsonl`: one prediction per input
//! line, driven by the client's batches ([`Client::batch_create`]), with one result line per
//! input line and a journal beside the results.
//!
//! # What makes it resumable
//!
//! - The client's journal (`RESULTS.jsonl.journal`) records each create's intent, durably,
//!   before the create is sent, then the prediction's id, then the item's end. Resumed, the
//!   batch never creates an input twice (see `replicate_protocol::batch`).
//! - A result line is written (and synced) before the next item is asked for, which is when the
//!   client records the item done: an item done in the journal has its result line, and one
//!   whose result line was written but whose `done` record was not is yielded again by the
//!   resumed batch, and skipped here (results are deduplicated by line).
//! - A line whose `done` record is in the journal but which is missing from the results (a
//!   results file cut by hand) is rebuilt from its prediction (`GET`) before the batch goes on.
//! - A torn last line of the results (a kill in the middle of a write) is cut away on resume.
//!
//! Items are the selected (non-blank, in-shard) lines in file order; the journal's header
//! identifies them by the digest of their `[line, input]` pairs and the shard, so a journal
//! of an edited file, or of another shard, is refused.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use replicate_protocol::batch::{Journal, JournalRecord, inputs_digest};
use replicate_protocol::download::temp_file_name;
use replicate_protocol::output::{
    DEFAULT_MAX_OUTPUT_FILES, OutputRef, extension_for_mime, file_name_for, output_refs_capped,
};
use replicate_protocol::{BatchSummary, CancelAfter, CreateOutcome, CreatePrediction, Target};
use replicate_ureq::{BatchError, Client, Error, ItemResult, Prediction, Status};
use serde::Serialize;
use serde_json::Value;

use super::{Ctx, interrupt};
use crate::args::{BatchArgs, Shard};
use crate::exit::{self, CliError};
use crate::input::size;
use crate::output::note;
use crate::text::{safe_line, secret};

/// The longest input line read, in bytes (its newline excluded).
pub const MAX_LINE_BYTES: u64 = 16 * 1024 * 1024;
/// The most bytes read from the inputs, blank lines included.
pub const MAX_INPUTS_BYTES: u64 = 256 * 1024 * 1024;
/// The create rate of an unsharded batch: Replicate's 600 creates a minute.
const DEFAULT_CREATE_RATE: f64 = 10.0;

/// One line of the results file.
#[derive(Debug, Serialize)]
struct ResultLine {
    line: usize,
    id: Option<String>,
    status: &'static str,
    output: Value,
    error: Value,
    files: Vec<String>,
    create: Option<&'static str>,
}

impl ResultLine {
    /// Whether the line counts as a success for the exit code.
    fn ok(&self) -> bool {
        self.status == "succeeded" && self.error.is_null()
    }
}

/// Runs a batch.
pub fn run(ctx: &Ctx, args: BatchArgs) -> Result<(), CliError> {
    // Everything that can be checked locally is, before anything is sent.
    let usage = |e: Error| CliError::usage(e.to_string());
    let target = match (&args.deployment, &args.model) {
        (Some(d), model) => {
            if let Some(m) = model {
                Target::parse(m).map_err(usage)?;
            }
            Target::deployment(d).map_err(usage)?
        }
        (None, Some(m)) => Target::parse(m).map_err(usage)?,
        (None, None) => return Err(CliError::usage("give MODEL[:VERSION] or --deployment")),
    };
    let cancel_after = args
        .timeout
        .map(|t| CancelAfter::new(t.duration()))
        .transpose()
        .map_err(|e| CliError::usage(format!("--timeout: {e}")))?;
    let shard = args.shard.unwrap_or(Shard { k: 1, n: 1 });
    let items: Vec<(usize, Value)> = read_inputs(&args.inputs)?
        .into_iter()
        .filter(|(line, _)| shard.takes(*line))
        .collect();
    let lines: Vec<usize> = items.iter().map(|(line, _)| *line).collect();
    let index_of: HashMap<usize, usize> = lines.iter().enumerate().map(|(i, l)| (*l, i)).collect();

    let journal_path = journal_path(&args.out);
    let shown_out = safe_line(&args.out.display().to_string());
    if !args.resume {
        for path in [&args.out, &journal_path] {
            if fs::symlink_metadata(path).is_ok() {
                return Err(CliError::usage(format!(
                    "{} exists: it is not overwritten",
                    safe_line(&path.display().to_string())
                ))
                .hint("continue that batch with --resume, or choose another --out"));
            }
        }
    }
    let dir = if args.no_download {
        None
    } else {
        let dir = args
            .output_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("outputs"));
        Some(super::run::prepare_output_dir(Some(&dir))?)
    };
    let client = ctx.client()?;
    if !args.no_validate
        && let Some(schema) =
            super::schema::for_target(&client, args.model.as_deref(), args.deployment.as_deref())
                .map_err(|e| {
                    e.hint("reading the model's schema failed before any create: fix it, then run the same command again (with --resume if this batch had started)")
                })?
    {
        check_lines(&schema, &items, &args.inputs)?;
    }
    let mut results = Results::open(&args.out, args.resume, &index_of)?;
    // The journal as it is now: which items ended, which are running (for the counts).
    let journal = read_journal(&journal_path);

    let mut create = CreatePrediction::new(target);
    if let Some(c) = cancel_after {
        create = create.cancel_after(c);
    }
    let pairs: Vec<Value> = items
        .iter()
        .map(|(line, input)| serde_json::json!([line, input]))
        .collect();
    let inputs_id = format!("replicate batch shard {shard}: {}", inputs_digest(&pairs));
    drop(pairs);
    let inputs: Vec<Value> = items.into_iter().map(|(_, input)| input).collect();
    let total = inputs.len();
    let builder = client
        .batch_create(create, inputs)
        .journal(&journal_path)
        .inputs_id(inputs_id);
    let mut options = builder
        .settings()
        .map(|s| s.options.clone())
        .map_err(|e| CliError::usage(e.to_string()))?;
    options.max_in_flight = args.concurrency;
    options.max_requests = options.max_requests.min(args.concurrency).max(1);
    options.create_rate = args.create_rate.unwrap_or(DEFAULT_CREATE_RATE) / shard.n as f64;
    if let Some(ms) = args.lost_grace_ms {
        options.lost_grace = Duration::from_millis(ms);
    }
    let builder = builder.options(options);

    interrupt::set_batch(&args.out);
    interrupt::install();
    let mut iter = builder.run().map_err(start_error)?;

    // Lines the journal says are over but the results miss: rebuilt from their predictions.
    let mut running_before = 0;
    if let Some(journal) = &journal {
        let (done, outcomes, running) = journal_items(journal);
        running_before = running;
        for (index, id, status, error) in done {
            let Some(&line) = lines.get(index) else {
                continue;
            };
            if results.has(line) {
                continue;
            }
            let outcome = outcomes.get(&index).copied();
            let row = match id {
                Some(id) => {
                    let p = client.get(&id).map_err(|e| {
                        CliError::from(e).hint(format!(
                            "line {line} is over but not in {shown_out}: run again with --resume"
                        ))
                    })?;
                    result_line(&client, line, Some(id), outcome, Ok(p), dir.as_deref())
                }
                None => ResultLine {
                    line,
                    id: None,
                    status: status_name(status.as_deref().unwrap_or("failed")),
                    output: Value::Null,
                    error: error.map_or(Value::Null, Value::String),
                    files: Vec::new(),
                    create: None,
                },
            };
            results.write(&row)?;
        }
    }

    let mut meter = Meter::new(total, results.lines(), running_before);
    let mut failure = None;
    while let Some(next) = iter.next() {
        match next {
            Ok(item) => {
                let Some(&line) = lines.get(item.index) else {
                    continue;
                };
                if results.has(line) {
                    // Written before a kill; the journal had not recorded it done.
                    continue;
                }
                let ItemResult {
                    prediction_id,
                    outcome,
                    result,
                    ..
                } = item;
                let row = result_line(
                    &client,
                    line,
                    prediction_id,
                    outcome,
                    result,
                    dir.as_deref(),
                );
                if !row.ok() {
                    meter.println(&format!(
                        "line {line}: {}{}",
                        row.status,
                        match &row.error {
                            Value::Null => String::new(),
                            e => format!(": {}", one_line(e)),
                        }
                    ));
                }
                results.write(&row)?;
                meter.show(&results, iter.progress(), false);
            }
            Err(e) => failure = Some(e),
        }
    }
    meter.show(&results, iter.progress(), true);
    meter.finish();

    if let Some(e) = failure {
        let written = results.lines();
        let err = match e {
            BatchError::Failed(e) => CliError::from(e),
            e => CliError::runtime(e.to_string()),
        };
        let mut err = CliError::new(exit::RUNTIME, format!("the batch stopped: {}", err.message));
        err = err.hint(format!(
            "{written} of {total} line(s) are in {shown_out}; the journal is kept: run the same command with --resume to continue"
        ));
        return Err(err);
    }
    let missing = total - results.lines().min(total);
    if missing > 0 {
        return Err(CliError::runtime(format!(
            "the batch ended with {missing} line(s) not in {shown_out}"
        ))
        .hint("run the same command with --resume to continue"));
    }
    let bad = results.not_ok();
    if bad > 0 {
        return Err(CliError::prediction(format!(
            "{bad} of {total} line(s) did not succeed: see their result lines in {shown_out}"
        )));
    }
    Ok(())
}

/// The journal beside the results: the --out path with `.journal` appended.
/// The most problem lines `check_lines` prints (the count says how many more).
const MAX_PROBLEM_LINES: usize = 20;

/// Checks every selected line against the schema before anything is created: any problem is
/// exit 2, one stderr line per problem (at most [`MAX_PROBLEM_LINES`]) naming its line number;
/// inputs the schema does not declare are sent, with one warning per input name.
fn check_lines(
    schema: &super::schema::RunSchema,
    items: &[(usize, Value)],
    file: &Path,
) -> Result<(), CliError> {
    let mut problems: Vec<(usize, String)> = Vec::new();
    let mut bad_lines = 0;
    // Unknown input name -> (lines, first line).
    let mut unknown: Vec<(String, usize, usize)> = Vec::new();
    for (line, input) in items {
        let mut bad = false;
        for p in schema.input.check(input) {
            if p.kind.is_unknown_field() {
                match unknown.iter_mut().find(|(name, _, _)| *name == p.field) {
                    Some(entry) => entry.1 += 1,
                    None => unknown.push((p.field.clone(), 1, *line)),
                }
            } else {
                bad = true;
                problems.push((*line, p.to_string()));
            }
        }
        bad_lines += usize::from(bad);
    }
    let label = safe_line(&schema.label);
    for (name, count, first) in &unknown {
        note(&format!(
            "warning: {}: not an input of {label} ({count} line{}, the first {first}); sent as given",
            safe_line(name),
            if *count == 1 { "" } else { "s" }
        ));
    }
    if problems.is_empty() {
        return Ok(());
    }
    let name = safe_line(&file.display().to_string());
    note(&format!(
        "error: {bad_lines} line{} of {name} do{} not match the schema of {label} ({} problem{}); nothing was created",
        if bad_lines == 1 { "" } else { "s" },
        if bad_lines == 1 { "es" } else { "" },
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
    ));
    for (line, p) in problems.iter().take(MAX_PROBLEM_LINES) {
        note(&format!(
            "  line {line}: {}",
            crate::output::shorten(&safe_line(p), 400)
        ));
    }
    if problems.len() > MAX_PROBLEM_LINES {
        note(&format!(
            "  ... and {} more",
            problems.len() - MAX_PROBLEM_LINES
        ));
    }
    let model = schema.label.split(':').next().unwrap_or_default();
    note(&format!(
        "hint: `replicate model schema {}` lists the inputs; --no-validate sends the lines unchecked",
        safe_line(model)
    ));
    Err(CliError::quiet(exit::USAGE))
}

fn journal_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".journal");
    PathBuf::from(s)
}

/// The error of a batch that cannot start.
fn start_error(e: BatchError) -> CliError {
    match e {
        BatchError::Start(e) => CliError::usage(e.to_string()),
        e @ BatchError::Journal { .. } => CliError::usage(e.to_string())
            .hint("the journal belongs to another batch (other inputs, model or --shard): choose another --out"),
        e => CliError::runtime(e.to_string()),
    }
}

/// Reads the inputs: `(line number, input object)` of each non-blank line, or a usage error
/// naming the first line that is not a JSON object.
fn read_inputs(path: &Path) -> Result<Vec<(usize, Value)>, CliError> {
    let stdin = path.as_os_str() == "-";
    let name = if stdin {
        "stdin".to_owned()
    } else {
        safe_line(&path.display().to_string())
    };
    let cannot =
        |e: std::io::Error| CliError::usage(format!("--inputs {name}: cannot read it: {e}"));
    let mut reader: Box<dyn BufRead> = if stdin {
        Box::new(std::io::stdin().lock())
    } else {
        // A FIFO would block: regular files only (use - for a pipe).
        let meta = fs::metadata(path).map_err(cannot)?;
        if !meta.is_file() {
            return Err(CliError::usage(format!(
                "--inputs {name}: not a regular file (use - to read stdin)"
            )));
        }
        Box::new(BufReader::new(File::open(path).map_err(cannot)?))
    };
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut total = 0u64;
    let mut number = 0usize;
    loop {
        buf.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES + 2)
            .read_until(b'\n', &mut buf)
            .map_err(cannot)?;
        if read == 0 {
            break;
        }
        number += 1;
        total += read as u64;
        if total > MAX_INPUTS_BYTES {
            return Err(CliError::usage(format!(
                "--inputs {name}: larger than the limit of {}",
                size(MAX_INPUTS_BYTES)
            )));
        }
        let mut line: &[u8] = &buf;
        if let Some(rest) = line.strip_suffix(b"\n") {
            line = rest.strip_suffix(b"\r").unwrap_or(rest);
        }
        if line.len() as u64 > MAX_LINE_BYTES {
            return Err(CliError::usage(format!(
                "--inputs {name} line {number}: longer than the limit of {}",
                size(MAX_LINE_BYTES)
            )));
        }
        if number == 1 {
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Value>(line) {
            Ok(v @ Value::Object(_)) => out.push((number, v)),
            Ok(_) => {
                return Err(CliError::usage(format!(
                    "--inputs {name} line {number}: not a JSON object (each line is a prediction's input object)"
                )));
            }
            Err(e) => {
                return Err(CliError::usage(format!(
                    "--inputs {name} line {number}: invalid JSON: {e}"
                )));
            }
        }
    }
    Ok(out)
}

/// The journal file as it is, when it exists and parses (otherwise the batch's own opening
/// reports what is wrong).
fn read_journal(path: &Path) -> Option<Journal> {
    let bytes = fs::read(path).ok()?;
    if !bytes.contains(&b'\n') {
        return None;
    }
    Journal::parse(&bytes).ok()
}

/// An item the journal says is over: its index, and its prediction's id, status and error.
type DoneItem = (usize, Option<String>, Option<String>, Option<String>);

/// What a journal says: the items over (in journal order), how each item with a prediction got
/// it, and how many of those are not over (running).
fn journal_items(journal: &Journal) -> (Vec<DoneItem>, HashMap<usize, CreateOutcome>, usize) {
    let mut done = Vec::new();
    let mut done_set = HashSet::new();
    let mut created = HashMap::new();
    for record in &journal.records {
        match record {
            JournalRecord::Created { item, outcome, .. } => {
                created.insert(*item, *outcome);
            }
            JournalRecord::Done {
                item,
                id,
                status,
                error,
            } if done_set.insert(*item) => {
                done.push((*item, id.clone(), status.clone(), error.clone()));
            }
            _ => {}
        }
    }
    let running = created.keys().filter(|i| !done_set.contains(i)).count();
    (done, created, running)
}

/// The status word of a result line.
fn status_name(status: &str) -> &'static str {
    match status {
        "succeeded" => "succeeded",
        "failed" => "failed",
        "canceled" => "canceled",
        "aborted" => "aborted",
        _ => "unknown",
    }
}

/// The `create` word of a result line.
fn create_name(outcome: Option<CreateOutcome>) -> Option<&'static str> {
    outcome.map(|o| match o {
        CreateOutcome::Created => "created",
        CreateOutcome::Adopted => "adopted",
        CreateOutcome::Resent => "resent",
    })
}

/// An error value on one line, shortened, for stderr.
fn one_line(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    crate::output::shorten(&safe_line(&s), 200)
}

/// The result line of an item that ended, its outputs downloaded into `dir` when it succeeded.
fn result_line(
    client: &Client,
    line: usize,
    id: Option<String>,
    outcome: Option<CreateOutcome>,
    result: Result<Prediction, Error>,
    dir: Option<&Path>,
) -> ResultLine {
    let create = create_name(outcome);
    match result {
        Ok(p) => {
            let status = match p.status {
                Status::Succeeded | Status::Failed | Status::Canceled | Status::Aborted => {
                    status_name(p.status.as_str())
                }
                _ => "unknown",
            };
            let mut error = p.error.clone();
            let mut files = Vec::new();
            if status == "succeeded"
                && let Some(dir) = dir
            {
                let (written, failed) = save_outputs(client, &p, line, dir);
                files = written.iter().map(|f| f.display().to_string()).collect();
                if let Some(e) = failed {
                    error = Value::String(format!("the outputs were not all saved: {e}"));
                }
            }
            ResultLine {
                line,
                id: id.or(Some(p.id)),
                status,
                output: p.output,
                error,
                files,
                create,
            }
        }
        Err(e) => {
            let status = match (&e, &id) {
                (Error::CreateOutcomeUnknown(_), _) | (_, Some(_)) => "unknown",
                _ => "failed",
            };
            ResultLine {
                line,
                id,
                status,
                output: Value::Null,
                error: Value::String(e.to_string()),
                files: Vec::new(),
                create,
            }
        }
    }
}

/// Numbers this process's temporary download files.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// Saves a prediction's outputs into `dir` as `LINE-INDEX.ext`: the paths written, and the
/// error that stopped it, if any.
fn save_outputs(
    client: &Client,
    p: &Prediction,
    line: usize,
    dir: &Path,
) -> (Vec<PathBuf>, Option<String>) {
    let mut written = Vec::new();
    let refs = match output_refs_capped(p, DEFAULT_MAX_OUTPUT_FILES) {
        Ok(refs) => refs,
        Err(e) => return (written, Some(e.to_string())),
    };
    interrupt::set_download_dir(Some(dir));
    let mut failed = None;
    for (index, output) in refs.iter().enumerate() {
        let tmp = dir.join(temp_file_name(NEXT_TEMP.fetch_add(1, Ordering::Relaxed)));
        let fetched = fetch_to(client, output, index, &tmp);
        let placed = fetched.and_then(|ext| {
            place(&tmp, dir, &format!("{line}-{index}"), &ext).map_err(|e| e.to_string())
        });
        let _ = fs::remove_file(&tmp);
        match placed {
            Ok(path) => written.push(path),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    interrupt::set_download_dir(None);
    (written, failed)
}

/// Writes one output into `tmp`; returns its extension (`.png`, or empty).
fn fetch_to(
    client: &Client,
    output: &OutputRef,
    index: usize,
    tmp: &Path,
) -> Result<String, String> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let mut sink = BufWriter::new(file);
    let ext = match output {
        OutputRef::Url(url) => {
            let done = client
                .download_to(url, &mut sink)
                .map_err(|e| e.to_string())?;
            extension(&file_name_for(url, index), done.content_type.as_deref())
        }
        OutputRef::DataUri { mime, bytes } => {
            sink.write_all(bytes)
                .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
            extension("", Some(mime))
        }
    };
    let file = sink
        .into_inner()
        .map_err(|e| format!("cannot write {}: {}", tmp.display(), e.error()))?;
    file.sync_all()
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    Ok(ext)
}

/// The extension of an output: the URL's file name's when it has a plain one, else the
/// content type's; `.` included, or empty.
fn extension(name: &str, content_type: Option<&str>) -> String {
    let from_name = name
        .rsplit_once('.')
        .map(|(stem, ext)| (stem, ext.to_ascii_lowercase()))
        .filter(|(stem, ext)| {
            !stem.is_empty()
                && !ext.is_empty()
                && ext.len() <= 10
                && ext.bytes().all(|b| b.is_ascii_alphanumeric())
        })
        .map(|(_, ext)| ext);
    from_name
        .or_else(|| content_type.and_then(extension_for_mime).map(str::to_owned))
        .map_or_else(String::new, |e| format!(".{e}"))
}

/// Gives the complete file `tmp` its name `{stem}{ext}` in `dir`, never replacing a file: an
/// identical existing file is kept (a resumed line); a different one makes it
/// `{stem}-1{ext}`, `{stem}-2{ext}`, ...
fn place(tmp: &Path, dir: &Path, stem: &str, ext: &str) -> std::io::Result<PathBuf> {
    for n in 0u32..1000 {
        let name = if n == 0 {
            format!("{stem}{ext}")
        } else {
            format!("{stem}-{n}{ext}")
        };
        let target = dir.join(&name);
        match fs::hard_link(tmp, &target) {
            Ok(()) => return Ok(target),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if same_content(tmp, &target)? {
                    return Ok(target);
                }
                if n == 0 {
                    note(&format!(
                        "{} exists with other content: it is kept, the output is written under another name",
                        safe_line(&target.display().to_string())
                    ));
                }
            }
            // No hard links on this file system: a rename when nothing is there.
            Err(_) if fs::symlink_metadata(&target).is_err() => {
                fs::rename(tmp, &target)?;
                return Ok(target);
            }
            Err(_) => {
                if same_content(tmp, &target)? {
                    return Ok(target);
                }
            }
        }
    }
    Err(std::io::Error::other(format!(
        "no free name for {stem}{ext} in {}",
        dir.display()
    )))
}

/// Whether two files hold the same bytes.
fn same_content(a: &Path, b: &Path) -> std::io::Result<bool> {
    let (fa, fb) = (File::open(a)?, File::open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let (mut ra, mut rb) = (BufReader::new(fa), BufReader::new(fb));
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = ra.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        rb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

/// The results file: the lines written (this run and earlier ones), appended one whole line
/// at a time.
struct Results {
    file: File,
    path: PathBuf,
    /// Line number -> whether it succeeded.
    done: HashMap<usize, bool>,
}

impl Results {
    /// Creates the file (it must not exist), or with `resume` reads the lines already there
    /// (a torn last line cut away); every line must be one of `lines`.
    fn open(path: &Path, resume: bool, lines: &HashMap<usize, usize>) -> Result<Self, CliError> {
        let shown = safe_line(&path.display().to_string());
        let cannot = |e: std::io::Error| CliError::usage(format!("--out {shown}: {e}"));
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(resume)
            .create_new(!resume)
            .open(path)
            .map_err(cannot)?;
        if !file.metadata().map_err(cannot)?.is_file() {
            return Err(CliError::usage(format!(
                "--out {shown}: not a regular file"
            )));
        }
        let mut done = HashMap::new();
        let mut reader = BufReader::new(&mut file);
        let mut buf = Vec::new();
        let mut valid = 0u64;
        let mut number = 0usize;
        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf).map_err(cannot)?;
            if n == 0 || !buf.ends_with(b"\n") {
                break;
            }
            number += 1;
            valid += n as u64;
            let bad = |why: &str| {
                CliError::usage(format!("--out {shown} line {number}: {why}")).hint(
                    "it is not the results of this batch (another input file, --shard or --out?)",
                )
            };
            let v: Value = serde_json::from_slice(&buf).map_err(|_| bad("not a result line"))?;
            let line = v
                .get("line")
                .and_then(Value::as_u64)
                .ok_or_else(|| bad("not a result line"))? as usize;
            if !lines.contains_key(&line) {
                return Err(bad(&format!("input line {line} is not one of this batch")));
            }
            let ok = v.get("status").and_then(Value::as_str) == Some("succeeded")
                && v.get("error").is_none_or(Value::is_null);
            done.insert(line, ok);
        }
        drop(reader);
        let len = file.metadata().map_err(cannot)?.len();
        if len != valid {
            // A line cut by a kill: it is written again whole.
            file.set_len(valid).map_err(cannot)?;
            file.sync_data().map_err(cannot)?;
        }
        file.seek(SeekFrom::End(0)).map_err(cannot)?;
        Ok(Results {
            file,
            path: path.to_path_buf(),
            done,
        })
    }

    fn has(&self, line: usize) -> bool {
        self.done.contains_key(&line)
    }

    fn lines(&self) -> usize {
        self.done.len()
    }

    fn not_ok(&self) -> usize {
        self.done.values().filter(|ok| !**ok).count()
    }

    /// Appends one result line and makes it durable (at most once per line).
    fn write(&mut self, row: &ResultLine) -> Result<(), CliError> {
        if self.has(row.line) {
            return Ok(());
        }
        let mut value = serde_json::to_value(row)
            .map_err(|e| CliError::runtime(format!("cannot encode a result: {e}")))?;
        if let Some(s) = secret() {
            replicate_protocol::text::redact_value(&mut value, s);
        }
        let mut text = value.to_string();
        text.push('\n');
        let shown = safe_line(&self.path.display().to_string());
        let _whole = interrupt::hold();
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.flush())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| {
                CliError::io(format!("cannot write {shown}"), e)
                    .hint("the results so far and the journal are kept: fix it, then run the same command with --resume")
            })?;
        self.done.insert(row.line, row.ok());
        Ok(())
    }
}

/// The progress on stderr: a bar on a terminal, else a line at most once a second.
struct Meter {
    bar: Option<ProgressBar>,
    start: Instant,
    last_line: Option<Instant>,
    total: usize,
    /// Lines in the results when the run began.
    before: usize,
    /// Predictions running when the run began (resumed from the journal).
    running_before: usize,
}

impl Meter {
    fn new(total: usize, before: usize, running_before: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total as u64);
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner:.cyan} [{bar:30.cyan/blue}] {pos}/{len} {msg}",
            ) {
                bar.set_style(style);
            }
            bar.set_position(before as u64);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Meter {
            bar,
            start: Instant::now(),
            last_line: None,
            total,
            before,
            running_before,
        }
    }

    fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(crate::text::safe_text(line)),
            None => note(line),
        }
    }

    fn show(&mut self, results: &Results, p: &BatchSummary, last: bool) {
        let done = results.lines();
        let failed = results.not_ok();
        let started = p.created + p.adopted + p.resent + self.running_before;
        let ended = p.succeeded + p.failed + p.errors;
        let in_flight = started.saturating_sub(ended);
        let elapsed = self.start.elapsed().as_secs_f64().max(0.001);
        let per_minute = (p.created + p.adopted + p.resent) as f64 * 60.0 / elapsed;
        let this_run = done.saturating_sub(self.before);
        let left = self.total.saturating_sub(done);
        let eta = if left == 0 {
            "0s".to_owned()
        } else if this_run == 0 {
            "?".to_owned()
        } else {
            let secs = left as f64 * elapsed / this_run as f64;
            format_secs(secs)
        };
        let msg = format!(
            "{failed} failed, {in_flight} in flight, {per_minute:.0} creates/min, ETA {eta}"
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(done as u64);
                bar.set_message(msg);
            }
            None => {
                let due = self
                    .last_line
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
                if last || due {
                    self.last_line = Some(Instant::now());
                    note(&format!("batch: {done}/{} done, {msg}", self.total));
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `75s` as `1m15s`.
fn format_secs(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_come_from_the_name_then_the_type() {
        assert_eq!(extension("out-0.PNG", None), ".png");
        assert_eq!(extension("output-3", Some("image/webp")), ".webp");
        assert_eq!(extension("output-3", None), "");
        assert_eq!(extension("a.b$c", Some("image/png")), ".png");
        assert_eq!(extension(".hidden", None), "");
    }

    #[test]
    fn journal_path_appends_journal() {
        assert_eq!(
            journal_path(Path::new("dir/r.jsonl")),
            PathBuf::from("dir/r.jsonl.journal")
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(format_secs(5.2), "5s");
        assert_eq!(format_secs(75.0), "1m15s");
        assert_eq!(format_secs(7300.0), "2h01m");
    }
}
