//! `replicate run MODEL[:VERSION] [-i key=value ...]`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use replicate_protocol::input::{file_name_of, guess_mime};
use replicate_protocol::schema::FieldProblem;
use replicate_protocol::sse::ReplicateEvent;
use replicate_protocol::{Call, CreatePrediction, FileInput, SyncWait, Target};
use replicate_ureq::{Client, Error, Prediction, SaveOptions, Status};
use serde_json::{Map, Value};

use super::schema::{self, RunSchema};
use super::stream::spawn_events;
use super::{Ctx, Deadline, Received, follow, interrupt, recv_until, timeout_error};
use crate::args::{InputArgs, RunArgs};
use crate::chain;
use crate::exit::CliError;
use crate::input::{self, MAX_FILE_INPUT_BYTES, RawValue};
use crate::output::{self, OutputKind, Progress, StreamPrinter, note};
use crate::text::safe_line;
use crate::typed::{self, Typed, Typing};
use crate::web;

/// An input value once read locally: sent as is, or a file (or a list of one file) still to
/// inline or upload.
enum Pending {
    Ready(Value),
    File(FileInput),
    FileList(FileInput),
}

/// The input of a prediction or a training as written (`-i`, `--input-json`), its placeholders
/// resolved from stdin, before its values are typed: everything checked locally before any
/// request.
pub(super) struct RawInput {
    pairs: Vec<input::RawPair>,
    fields: Map<String, Value>,
}

impl RawInput {
    /// Reads `-i` (split, not typed yet) and `--input-json`, and resolves the placeholders.
    pub(super) fn read(args: &InputArgs) -> Result<Self, CliError> {
        let mut pairs = input::split_pairs(&args.inputs).map_err(CliError::usage)?;
        resolve_placeholders(&mut pairs, args.input_json.as_deref())?;
        let fields = match &args.input_json {
            Some(path) => input::read_input_json(path).map_err(CliError::usage)?,
            None => Map::new(),
        };
        Ok(RawInput { pairs, fields })
    }
}

/// The input of a prediction or a training, typed, checked and read locally before anything
/// is created: files read (with a cap) so that an unreadable, special or too large file is a
/// usage error with nothing sent.
pub(super) struct LocalInput {
    fields: Map<String, Value>,
    pending: Vec<(String, Pending)>,
}

impl LocalInput {
    /// Reads and types `-i` and `--input-json` by the rules without a schema.
    pub(super) fn read(args: &InputArgs) -> Result<Self, CliError> {
        Self::typed(RawInput::read(args)?, None)
    }

    /// Types the `-i` values (by `schema` when given, see [`crate::typed`]) and, with a schema,
    /// checks the whole input (`--input-json`'s fields as they are): unknown fields are a
    /// warning on stderr; any other problem is a usage error (exit 2), one line per problem on
    /// stderr, before any file is read or anything created. Then reads the files.
    pub(super) fn typed(raw: RawInput, schema: Option<&RunSchema>) -> Result<Self, CliError> {
        let RawInput { pairs, fields } = raw;
        let mut typing = Vec::new();
        let mut values = Vec::with_capacity(pairs.len());
        for pair in pairs {
            let key = pair.key.clone();
            match typed::pair(schema.map(|s| &s.input), pair).map_err(CliError::usage)? {
                Typing::Typed(value) => values.push((key, value)),
                Typing::Unfit(problem) => typing.push(problem),
            }
        }
        if let Some(schema) = schema {
            let mut stand_in = fields.clone();
            for (key, value) in &values {
                stand_in.insert(key.clone(), value.stand_in());
            }
            let checked = typed::check(&schema.input, &stand_in, typing);
            for w in &checked.warnings {
                note(&format!(
                    "warning: {}; it is sent as given",
                    safe_line(&w.to_string())
                ));
            }
            if !checked.errors.is_empty() {
                return Err(invalid_input(&schema.label, &checked.errors));
            }
        }
        let mut pending = Vec::with_capacity(values.len());
        for (key, value) in values {
            let file = |path: &Path| {
                let bytes = input::read_file(&format!("input {key}"), path, MAX_FILE_INPUT_BYTES)
                    .map_err(CliError::usage)?;
                Ok::<_, CliError>(FileInput::from_bytes(
                    file_name_of(path),
                    guess_mime(path),
                    bytes,
                ))
            };
            let value = match value {
                Typed::Value(v) => Pending::Ready(v),
                Typed::File(path) => Pending::File(file(&path)?),
                Typed::FileList(path) => Pending::FileList(file(&path)?),
            };
            pending.push((key, value));
        }
        Ok(LocalInput { fields, pending })
    }

    /// The input object, its files inlined or uploaded (`-i` fields over `--input-json`'s).
    pub(super) fn prepare(self, client: &Client) -> Result<Value, CliError> {
        let mut fields = self.fields;
        for (key, value) in self.pending {
            let value = match value {
                Pending::Ready(v) => v,
                Pending::File(file) => client.prepare_input(file)?,
                Pending::FileList(file) => Value::Array(vec![client.prepare_input(file)?]),
            };
            fields.insert(key, value);
        }
        Ok(Value::Object(fields))
    }
}

/// The most characters of one problem line (an enum may list many values).
const MAX_PROBLEM_CHARS: usize = 400;

/// Says, one line per problem on stderr, why the input does not fit the schema; the error that
/// ends the command (exit 2, nothing more to print).
fn invalid_input(label: &str, problems: &[FieldProblem]) -> CliError {
    let n = problems.len();
    note(&format!(
        "error: the input does not match the schema of {} ({n} problem{}); nothing was created",
        safe_line(label),
        if n == 1 { "" } else { "s" }
    ));
    for p in problems {
        note(&format!(
            "  {}",
            output::shorten(&safe_line(&p.to_string()), MAX_PROBLEM_CHARS)
        ));
    }
    let model = label.split(':').next().unwrap_or(label);
    note(&format!(
        "hint: `replicate model schema {}` lists the inputs; --no-validate sends the input unchecked",
        safe_line(model)
    ));
    CliError::quiet(crate::exit::USAGE)
}

/// Replaces the `{{.path}}` placeholders of `-i` values from the JSON piped on stdin (read only
/// when there is a placeholder; see [`chain`]). A resolved value is sent as found.
fn resolve_placeholders(
    pairs: &mut [input::RawPair],
    input_json: Option<&Path>,
) -> Result<(), CliError> {
    let has = |p: &input::RawPair| match &p.value {
        RawValue::Text(s) | RawValue::Escaped(s) => chain::has_placeholder(s),
        _ => false,
    };
    if !pairs.iter().any(has) {
        return Ok(());
    }
    if input_json.is_some_and(|p| p.as_os_str() == "-") {
        return Err(CliError::usage(
            "stdin cannot feed both --input-json - and the -i placeholders: pass the input JSON as a file",
        ));
    }
    let doc = chain::read_stdin_document().map_err(CliError::usage)?;
    for pair in pairs.iter_mut() {
        if let RawValue::Text(s) | RawValue::Escaped(s) = &pair.value
            && chain::has_placeholder(s)
        {
            let value = chain::resolve(s, &doc)
                .map_err(|e| CliError::usage(format!("input {}: {e}", pair.key)))?;
            pair.value = RawValue::Resolved(value);
        }
    }
    Ok(())
}

/// Runs a model.
pub fn run(ctx: &Ctx, args: RunArgs) -> Result<(), CliError> {
    let deadline = args.timeout.map(|t| Deadline::after(t, !args.no_cancel));
    // Everything that can be checked locally is checked before anything is sent.
    let usage = |e: Error| CliError::usage(e.to_string());
    let target = match (&args.deployment, &args.model) {
        (Some(d), _) => Target::deployment(d).map_err(usage)?,
        (None, Some(m)) => Target::parse(m).map_err(usage)?,
        (None, None) => return Err(CliError::usage("give MODEL[:VERSION] or --deployment")),
    };
    let raw = RawInput::read(&args.input)?;
    let sync = args
        .wait
        .map(|n| {
            // The server does not hold the answer longer than the timeout.
            let n = match args.timeout {
                Some(t) => u64::from(n).min(t.secs.ceil() as u64).max(1),
                None => u64::from(n),
            };
            SyncWait::seconds(n)
        })
        .transpose()
        .map_err(|e| CliError::usage(e.to_string()))?;
    let dir = if args.no_download {
        None
    } else {
        Some(prepare_output_dir(args.output_dir.as_deref())?)
    };
    let client = ctx.client_with_timeout(args.timeout)?;
    interrupt::install();
    // The schema is read (a GET) before anything is created; a failed check creates nothing.
    let schema = schema::for_run(&client, &args)?;
    let local = LocalInput::typed(raw, schema.as_ref())?;

    let mut create = CreatePrediction::new(target).input(local.prepare(&client)?);
    if let Some(s) = sync {
        create = create.sync(s);
    }
    if let Some(after) = args.cancel_after {
        create = create.cancel_after(after);
    }

    interrupt::set_creating();
    let created = create_within(&client, create, deadline.as_ref())?;
    interrupt::set_running(Some(&created.id));
    note(&format!(
        "Created prediction {} ({})",
        safe_line(&created.id),
        safe_line(created.status.as_str())
    ));
    if args.web {
        // stdout holds the results: the page goes to stderr.
        match web::web_url(&created) {
            Ok(url) => {
                note(&format!("Web: {url}"));
                web::open(&url);
            }
            Err(why) => note(&format!("--web: {why}")),
        }
    }

    let mut streamed = false;
    let done = if args.stream && created.stream_url().is_some() {
        streamed = true;
        stream_then_wait(&client, created, deadline.as_ref())?
    } else {
        if args.stream {
            note("This prediction has no output stream: waiting for its output.");
        }
        let mut progress = Progress::new(false);
        let id = created.id.clone();
        let snapshot = created.clone();
        follow(
            &client,
            &id,
            Some(created),
            &mut progress,
            deadline.as_ref(),
        )
        .map_err(|e| after_create(&snapshot, e, deadline.as_ref()))?
    };
    interrupt::set_running(None);
    finish(ctx, &client, done, &args, dir.as_deref(), streamed)
}

/// The output directory, checked before anything is sent: created when missing; an existing
/// non-directory is a usage error.
pub(super) fn prepare_output_dir(dir: Option<&Path>) -> Result<PathBuf, CliError> {
    let dir = dir.map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let shown = || safe_line(&dir.display().to_string());
    match std::fs::metadata(&dir) {
        Ok(meta) if meta.is_dir() => Ok(dir),
        Ok(_) => Err(CliError::usage(format!(
            "--output-dir {}: exists and is not a directory",
            shown()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::create_dir_all(&dir) {
            Ok(()) => Ok(dir),
            Err(e) => Err(CliError::usage(format!(
                "--output-dir {}: cannot create it: {e}",
                shown()
            ))),
        },
        Err(e) => Err(CliError::usage(format!(
            "--output-dir {}: cannot use it: {e}",
            shown()
        ))),
    }
}

/// Sends the create, its retries bounded by the deadline.
fn create_within(
    client: &Client,
    create: CreatePrediction,
    deadline: Option<&Deadline>,
) -> Result<Prediction, CliError> {
    let Some(d) = deadline else {
        return Ok(client.create(create)?);
    };
    let retry = client.wait_options().retry;
    let call = Call::with_policy(create, client.config().clone(), retry, Some(d.at));
    client.drive(call).map_err(|e| {
        let mut e = CliError::from(e);
        if Instant::now() >= d.at {
            e.message = format!(
                "timed out after {} creating the prediction: {}",
                d.secs, e.message
            );
        }
        e
    })
}

/// The error of a failure after the create: names the prediction, says how to go on with it.
fn after_create(created: &Prediction, err: Error, deadline: Option<&Deadline>) -> CliError {
    match err {
        e @ Error::DeadlineExceeded { .. } => timeout_error(e, deadline),
        e if e.prediction_id().is_some() => CliError::from(e),
        e => CliError::from(Error::AfterCreate {
            prediction: Box::new(created.clone()),
            source: Box::new(e),
        }),
    }
}

/// Follows the output stream, writing each output event to stdout as it arrives, then waits for
/// the final state of the prediction. If the stream breaks, what it missed is printed from the
/// final output when that output is text. The stream is read on its own thread, so that the
/// deadline bounds it.
fn stream_then_wait(
    client: &Client,
    created: Prediction,
    deadline: Option<&Deadline>,
) -> Result<Prediction, CliError> {
    let id = created.id.clone();
    let events = spawn_events(client, &created);
    let mut printer = StreamPrinter::default();
    let mut printed = String::new();
    let mut broken = false;
    loop {
        match recv_until(&events, deadline.map(|d| d.at)) {
            Received::Value(Ok(ReplicateEvent::Output(data))) => {
                printer.push(&data)?;
                printed.push_str(&data);
            }
            Received::Value(Ok(ReplicateEvent::Done(_))) | Received::End => break,
            Received::Value(Ok(_)) => {}
            // The model failed: the final state of the prediction says how.
            Received::Value(Err(Error::PredictionStreamError(_))) => break,
            Received::Value(Err(e)) => {
                note(&format!(
                    "The stream failed ({e}); waiting for the prediction."
                ));
                broken = true;
                break;
            }
            // The wait below reaches the deadline at once (and cancels, unless --no-cancel).
            Received::TimedOut => break,
        }
    }
    let mut progress = Progress::new(true);
    let done = follow(client, &id, None, &mut progress, deadline)
        .map_err(|e| after_create(&created, e, deadline))?;
    if broken
        && done.status == Status::Succeeded
        && let Some(text) = done.output_text()
        && let Some(rest) = text.strip_prefix(printed.as_str())
    {
        printer.push(rest)?;
    }
    printer.finish()?;
    let (any, ends_with_newline) = printer.printed();
    if any && !ends_with_newline && std::io::stdout().is_terminal() {
        output::out("\n")?;
    }
    Ok(done)
}

/// Prints (or downloads) the output of a finished prediction, and maps its status to the exit
/// code.
fn finish(
    ctx: &Ctx,
    client: &Client,
    done: Prediction,
    args: &RunArgs,
    dir: Option<&Path>,
    streamed: bool,
) -> Result<(), CliError> {
    let save = SaveOptions {
        overwrite: args.overwrite,
        max_files: args.max_files,
    };
    if args.json {
        let mut shown = done.clone();
        ctx.redact(&mut shown);
        output::json(&shown)?;
        let urls = matches!(output::classify(&done), OutputKind::Urls(_));
        if done.status == Status::Succeeded
            && urls
            && let Some(dir) = dir
        {
            // The URLs are in the JSON above.
            for path in download(client, &done, dir, save, false)? {
                note(&format!("Saved {}", safe_line(&path.display().to_string())));
            }
        }
        return outcome(done);
    }
    if done.status != Status::Succeeded {
        return outcome(done);
    }
    match output::classify(&done) {
        OutputKind::Urls(urls) => match dir {
            None => {
                if !streamed {
                    for url in urls {
                        output::outln(&safe_line(url))?;
                    }
                }
            }
            Some(dir) => {
                for path in download(client, &done, dir, save, true)? {
                    let path = safe_line(&path.display().to_string());
                    if streamed {
                        note(&format!("Saved {path}"));
                    } else {
                        output::outln(&path)?;
                    }
                }
            }
        },
        kind if !streamed => output::print_text_or_json(&kind)?,
        _ => {}
    }
    Ok(())
}

/// Downloads the outputs into `dir` (never replacing a file unless asked, at most
/// `save.max_files` files). When that fails, the prediction still succeeded: its output URLs
/// are printed on stdout (with `print_urls`) and the error explains.
pub(super) fn download(
    client: &Client,
    done: &Prediction,
    dir: &Path,
    save: SaveOptions,
    print_urls: bool,
) -> Result<Vec<PathBuf>, CliError> {
    interrupt::set_download_dir(Some(dir));
    let result = output::with_transfer_bar(false, |progress| {
        client.download_outputs_with_progress(done, dir, save, progress)
    });
    interrupt::set_download_dir(None);
    result.map_err(|e| {
        let id = safe_line(&done.id);
        // Outputs are only downloaded when they are a list of URLs (see `finish`).
        let over_cap = matches!(e, Error::Output(_))
            && matches!(output::classify(done), OutputKind::Urls(urls) if urls.len() > save.max_files);
        let mut err = CliError::from(e);
        if over_cap {
            err = err.hint("raise --max-files to save them all");
        }
        if print_urls && let OutputKind::Urls(urls) = output::classify(done) {
            for url in urls {
                // stdout is the only place left to say it; a closed stdout is reported below.
                let _ = output::outln(&safe_line(url));
            }
            err = err.hint(format!(
                "prediction {id} succeeded: its output URLs are printed on stdout (they expire after about an hour)"
            ));
        } else {
            err = err.hint(format!(
                "prediction {id} succeeded: `replicate prediction get {id}` shows its output"
            ));
        }
        err
    })
}

/// Exit 0 when the prediction succeeded, 1 (with its error or status) otherwise.
pub fn outcome(done: Prediction) -> Result<(), CliError> {
    done.into_result().map(|_| ()).map_err(CliError::from)
}
