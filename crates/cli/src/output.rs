//! Everything written to stdout and stderr: results, JSON, and the progress of a prediction.
//!
//! Results go to stdout; progress, notes and errors to stderr. Writes to stdout are flushed at
//! once (a stream's tokens appear as they arrive), and a closed stdout (`| head`) ends the
//! command quietly instead of panicking.
//!
//! Two rules hold for everything written here, whatever its source:
//!
//! - the API token (see [`set_secret`](crate::text::set_secret)) is replaced by `***` ([`text::redact`]), JSON included;
//! - text is made inert for a terminal: control characters and direction overrides are shown
//!   escaped ([`text::clean_text`]; one-line fields use [`text::clean_line`] at their call
//!   sites). JSON stays exact JSON: the few such characters serde writes raw (DEL, C1 controls,
//!   direction marks) are written as `\uXXXX` escapes, which decode to the same value.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use replicate_protocol::{TransferProgress, text};
use replicate_ureq::{Prediction, Progress as LogProgress, Status, Update};
use serde::Serialize;
use serde_json::Value;

use crate::exit::{CliError, SUCCESS};
use crate::text::{held_back, redact, safe_line, safe_text, secret};

/// Writes `text` to stdout as is and flushes it.
fn write_stdout(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(stdout_error)
}

/// Writes `text` to stdout (redacted, control characters escaped) and flushes it.
pub fn out(text: &str) -> Result<(), CliError> {
    write_stdout(&safe_text(text))
}

/// Writes one line to stdout.
pub fn outln(line: &str) -> Result<(), CliError> {
    let mut s = String::with_capacity(line.len() + 1);
    s.push_str(line);
    s.push('\n');
    out(&s)
}

/// A value as pretty JSON text: its strings (and keys) redacted, and the characters that could
/// drive a terminal escaped the JSON way.
pub fn json_text<T: Serialize + ?Sized>(value: &T) -> Result<String, CliError> {
    let encode = |e: serde_json::Error| CliError::runtime(format!("cannot encode JSON: {e}"));
    let mut value = serde_json::to_value(value).map_err(encode)?;
    if let Some(s) = secret() {
        text::redact_value(&mut value, s);
    }
    let text = serde_json::to_string_pretty(&value).map_err(encode)?;
    Ok(escape_json(text))
}

/// Writes `\uXXXX` for every unsafe character left raw in serialized JSON (serde escapes C0
/// controls itself; DEL, C1 controls and direction marks stay raw). Outside strings, serialized
/// JSON holds no such character but the newlines of pretty printing, which are kept.
fn escape_json(text: String) -> String {
    if !text.chars().any(|c| c != '\n' && text::is_unsafe_char(c)) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c != '\n' && text::is_unsafe_char(c) {
            // Every unsafe character is in the Basic Multilingual Plane: one \uXXXX escape.
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes a value as pretty JSON (one document) to stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<(), CliError> {
    let mut text = json_text(value)?;
    text.push('\n');
    write_stdout(&text)
}

/// A JSON array written to stdout one item at a time, exactly as the whole array would be
/// pretty-printed at once.
#[derive(Debug, Default)]
pub struct JsonArray {
    count: usize,
}

impl JsonArray {
    /// Writes one more item.
    pub fn push<T: Serialize + ?Sized>(&mut self, item: &T) -> Result<(), CliError> {
        let text = json_text(item)?;
        let mut s = String::with_capacity(text.len() + 64);
        s.push_str(if self.count == 0 { "[\n" } else { ",\n" });
        for (i, line) in text.lines().enumerate() {
            if i > 0 {
                s.push('\n');
            }
            s.push_str("  ");
            s.push_str(line);
        }
        self.count += 1;
        write_stdout(&s)
    }

    /// Closes the array.
    pub fn finish(self) -> Result<(), CliError> {
        write_stdout(if self.count == 0 { "[]\n" } else { "\n]\n" })
    }
}

/// Writes one line to stderr, redacted and with control characters escaped (a closed stderr is
/// ignored: there is nowhere left to complain).
pub fn note(line: &str) {
    let line = safe_text(line);
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{line}");
}

/// Writes a stream's text to stdout as it arrives, redacted and made inert, exactly otherwise.
///
/// A chunk may end in the middle of the token, or between a carriage return and its newline:
/// only that tail is held back until the next chunk (or [`StreamPrinter::finish`]), so text
/// still appears as it arrives.
#[derive(Debug, Default)]
pub struct StreamPrinter {
    pending: String,
    printed: bool,
    ends_with_newline: bool,
}

impl StreamPrinter {
    /// Writes what can be written of `chunk`.
    pub fn push(&mut self, chunk: &str) -> Result<(), CliError> {
        self.pending.push_str(chunk);
        let text = redact(&self.pending).into_owned();
        let keep = held_back(&text);
        let (ready, rest) = text.split_at(text.len() - keep);
        let ready = ready.to_owned();
        self.pending = rest.to_owned();
        self.write(&ready)
    }

    /// Writes what was held back.
    pub fn finish(&mut self) -> Result<(), CliError> {
        let rest = redact(&std::mem::take(&mut self.pending)).into_owned();
        self.write(&rest)
    }

    /// Whether any text was written, and whether it ended with a newline.
    pub fn printed(&self) -> (bool, bool) {
        (self.printed, self.ends_with_newline)
    }

    fn write(&mut self, text: &str) -> Result<(), CliError> {
        if text.is_empty() {
            return Ok(());
        }
        let clean = text::clean_text(text);
        self.printed = true;
        self.ends_with_newline = clean.ends_with('\n');
        write_stdout(&clean)
    }
}

fn stdout_error(err: std::io::Error) -> CliError {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        CliError::quiet(SUCCESS)
    } else {
        CliError::io("cannot write to stdout", err)
    }
}

/// What a prediction's output is, for printing.
#[derive(Debug, PartialEq)]
pub enum OutputKind<'a> {
    /// No output.
    None,
    /// One or more file URLs (`http(s)://` or `data:`).
    Urls(Vec<&'a str>),
    /// Text: a string, or string tokens joined.
    Text(String),
    /// Any other JSON.
    Json(&'a Value),
}

/// Whether a string is a file URL the CLI downloads.
pub fn is_file_url(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("data:")
}

/// Classifies a prediction's output.
pub fn classify(p: &Prediction) -> OutputKind<'_> {
    match &p.output {
        Value::Null => OutputKind::None,
        Value::String(s) if is_file_url(s) => OutputKind::Urls(vec![s.as_str()]),
        Value::Array(items)
            if !items.is_empty() && items.iter().all(|v| v.as_str().is_some_and(is_file_url)) =>
        {
            OutputKind::Urls(items.iter().filter_map(Value::as_str).collect())
        }
        other => match p.output_text() {
            Some(text) => OutputKind::Text(text),
            None => OutputKind::Json(other),
        },
    }
}

/// Prints a text or JSON output on stdout; URL outputs are handled by the caller (downloads).
pub fn print_text_or_json(kind: &OutputKind<'_>) -> Result<(), CliError> {
    match kind {
        OutputKind::Text(text) => {
            if text.ends_with('\n') {
                out(text)
            } else {
                outln(text)
            }
        }
        OutputKind::Json(v) => json(v),
        OutputKind::None | OutputKind::Urls(_) => Ok(()),
    }
}

/// A human-readable summary of a prediction, for `prediction get` and `prediction wait`.
pub fn summary(p: &Prediction) -> String {
    let mut s = String::new();
    let mut field = |name: &str, value: &str| {
        s.push_str(&format!("{name:<12} {}\n", safe_line(value)));
    };
    field("id:", &p.id);
    if let Some(m) = &p.model {
        field("model:", m);
    }
    if let Some(v) = &p.version {
        field("version:", v);
    }
    field("status:", p.status.as_str());
    if let Some(t) = p.created_at {
        field("created_at:", &timestamp(t));
    }
    if let Some(t) = p.completed_at {
        field("completed_at:", &timestamp(t));
    }
    if let Some(secs) = p.metrics.as_ref().and_then(|m| m.predict_time) {
        field("predict_time:", &format!("{secs:.2}s"));
    }
    if let Some(e) = p.error_message() {
        field("error:", e);
    }
    match classify(p) {
        OutputKind::None => {}
        OutputKind::Urls(urls) => {
            for u in urls {
                field("output:", &shorten(u, 200));
            }
        }
        OutputKind::Text(t) => field("output:", &shorten(&t, 2000)),
        OutputKind::Json(v) => field("output:", &shorten(&v.to_string(), 2000)),
    }
    if p.data_removed {
        field("data_removed:", "true");
    }
    let logs = p.logs.as_deref().unwrap_or("");
    let tail: Vec<&str> = logs.lines().rev().take(5).collect();
    if !tail.is_empty() {
        s.push_str("logs (last lines):\n");
        for line in tail.into_iter().rev() {
            s.push_str("  ");
            s.push_str(&safe_line(last_segment(line)));
            s.push('\n');
        }
    }
    s
}

/// A timestamp in RFC 3339, as the API writes them.
pub fn timestamp(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// Rows of cells as aligned lines: every column but the last padded to its widest cell (in
/// characters), at most `max_width` (a longer cell runs into the next column of its row only);
/// two spaces between columns; no trailing spaces. The cells are printed as given: make them
/// safe first.
pub fn aligned(rows: &[Vec<String>], max_width: usize) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
                .min(max_width)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                if c + 1 < row.len() {
                    let pad = widths[c].saturating_sub(cell.chars().count());
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            line.trim_end().to_owned()
        })
        .collect()
}

/// At most `max` characters of `s`, with `…` when cut.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

/// What a terminal shows of a line with carriage returns (progress bars redraw with `\r`).
fn last_segment(line: &str) -> &str {
    line.trim_end_matches('\r')
        .rsplit('\r')
        .next()
        .unwrap_or(line)
}

/// The template of the spinner: status, time elapsed, newest log line.
const SPINNER_TEMPLATE: &str = "{spinner:.cyan} {prefix:.bold} {elapsed:>4} {wide_msg}";

/// The template of the progress bar, once the logs carry one: the same, with the bar and its
/// percentage (the position, out of 100).
const BAR_TEMPLATE: &str =
    "{spinner:.cyan} {prefix:.bold} {elapsed:>4} [{bar:25.cyan/blue}] {pos:>3}% {wide_msg}";

/// Shows the progress of a prediction on stderr, from the [`Update`]s of its watch: its status,
/// the time elapsed, its newest log lines and, when its logs carry a `tqdm` progress bar, the
/// percentage. An indicatif spinner (a bar once there is a percentage) when stderr is a
/// terminal; plain lines otherwise, a progress line only when the whole percentage changes.
#[derive(Debug)]
pub struct Progress {
    start: Instant,
    bar: Option<ProgressBar>,
    quiet: bool,
    to_stdout: bool,
    id: String,
    status: Option<Status>,
    seen_statuses: Vec<Status>,
    /// A terminal status, shown once the last log lines are ([`Update::Finished`]).
    final_status: Option<Status>,
    /// Log text after the last newline: a line that may still grow.
    partial: String,
    /// The newest complete log line, shown next to the spinner.
    newest: Option<String>,
    /// The percentage last shown, once the logs carry a progress bar.
    percentage: Option<u32>,
    /// `current/total` of the progress bar, shown before the newest log line.
    steps: Option<String>,
}

impl Progress {
    /// A progress display for a prediction; `quiet` shows nothing (but still records statuses).
    pub fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template(SPINNER_TEMPLATE) {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Progress::with(bar, quiet, false)
    }

    /// A progress display in plain lines on stdout (the demo's narrative).
    #[cfg(feature = "fake")]
    pub fn on_stdout() -> Self {
        Progress::with(None, false, true)
    }

    fn with(bar: Option<ProgressBar>, quiet: bool, to_stdout: bool) -> Self {
        Progress {
            start: Instant::now(),
            bar,
            quiet,
            to_stdout,
            id: String::new(),
            status: None,
            seen_statuses: Vec::new(),
            final_status: None,
            partial: String::new(),
            newest: None,
            percentage: None,
            steps: None,
        }
    }

    /// Every distinct status seen, in order.
    #[cfg(feature = "fake")]
    pub fn statuses(&self) -> &[Status] {
        &self.seen_statuses
    }

    /// Time since the progress display was created.
    #[cfg(feature = "fake")]
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Sets the id of the prediction shown (named in the plain lines on stderr).
    pub fn set_id(&mut self, id: &str) {
        self.id = safe_line(id);
    }

    /// A line above the spinner, or a plain line (redacted, control characters escaped).
    pub fn println(&self, line: &str) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(safe_text(line)),
            // A closed stdout is reported by the next result written there.
            None if self.to_stdout => {
                let _ = outln(line);
            }
            None => note(line),
        }
    }

    /// Shows one change of the prediction.
    pub fn show(&mut self, update: &Update) {
        let elapsed = self.start.elapsed().as_secs_f64();
        match update {
            Update::Status(status) => {
                if self.status.as_ref() != Some(status) {
                    self.status = Some(status.clone());
                    self.seen_statuses.push(status.clone());
                }
                // A new status comes before the logs written in it; a final one after the
                // last logs.
                if status.is_terminal() {
                    self.final_status = Some(status.clone());
                } else {
                    self.show_status(status, elapsed);
                }
            }
            Update::Logs(text) => self.show_logs(text),
            Update::Progress(progress) => self.show_progress(progress, elapsed),
            Update::Finished(p) => {
                // The last line, even unfinished.
                let rest = std::mem::take(&mut self.partial);
                if !rest.is_empty() {
                    self.show_log_line(&rest);
                }
                let status = self.final_status.take().unwrap_or_else(|| p.status.clone());
                self.show_status(&status, elapsed);
            }
            // Outputs are printed once the prediction is finished.
            _ => {}
        }
    }

    fn show_status(&self, status: &Status, elapsed: f64) {
        let status = safe_line(status.as_str());
        if let Some(bar) = &self.bar {
            bar.set_prefix(status);
        } else if self.to_stdout {
            self.println(&format!("   [{elapsed:4.1}s] {status}"));
        } else {
            self.println(&format!("[{elapsed:5.1}s] {}: {status}", self.id));
        }
    }

    /// Shows the log lines `text` completes (new log text, as the watch yields it).
    fn show_logs(&mut self, text: &str) {
        for line in complete_lines(&mut self.partial, text).lines() {
            self.show_log_line(line);
        }
    }

    fn show_log_line(&mut self, line: &str) {
        // A log line is server text: one line, inert, without the token.
        let text = safe_line(last_segment(line));
        if self.to_stdout {
            self.println(&format!("            | {text}"));
        } else {
            self.println(&format!("  | {text}"));
        }
        self.newest = Some(text);
        self.set_message();
    }

    /// Shows a new position of the progress bar: the bar itself on a terminal, else a plain
    /// line when the whole percentage changed.
    fn show_progress(&mut self, progress: &LogProgress, elapsed: f64) {
        let changed = self.percentage != Some(progress.percentage);
        let first = self.percentage.is_none();
        self.percentage = Some(progress.percentage);
        self.steps = Some(format!("{}/{}", progress.current, progress.total));
        if let Some(bar) = &self.bar {
            if first {
                bar.set_length(100);
                if let Ok(style) = ProgressStyle::with_template(BAR_TEMPLATE) {
                    bar.set_style(style.progress_chars("=> "));
                }
            }
            bar.set_position(u64::from(progress.percentage.min(100)));
            self.set_message();
        } else if changed {
            let line = progress_line(progress);
            if self.to_stdout {
                self.println(&format!("   [{elapsed:4.1}s] {line}"));
            } else {
                self.println(&format!("[{elapsed:5.1}s] {}: {line}", self.id));
            }
        }
    }

    /// The spinner's message: the bar's steps, then the newest log line.
    fn set_message(&self) {
        let Some(bar) = &self.bar else {
            return;
        };
        let newest = self.newest.as_deref().map(|l| shorten(l, 120));
        let message = match (&self.steps, newest) {
            (Some(steps), Some(line)) => format!("{steps}  {line}"),
            (Some(steps), None) => steps.clone(),
            (None, Some(line)) => line,
            (None, None) => String::new(),
        };
        bar.set_message(message);
    }

    /// Removes the spinner.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// A position of a progress bar in words: `75% (3/4)`.
pub fn progress_line(progress: &LogProgress) -> String {
    format!(
        "{}% ({}/{})",
        progress.percentage, progress.current, progress.total
    )
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Adds `text` to the log text held in `partial` and takes out the lines it completes (ended by
/// `\n`). A line not ended yet may still grow: it stays in `partial`.
fn complete_lines(partial: &mut String, text: &str) -> String {
    partial.push_str(text);
    match partial.rfind('\n') {
        Some(end) => {
            let rest = partial.split_off(end + 1);
            std::mem::replace(partial, rest)
        }
        None => String::new(),
    }
}

/// Writes a value to stdout as one line of compact JSON: redacted and escaped as [`json_text`].
pub fn json_line<T: Serialize + ?Sized>(value: &T) -> Result<(), CliError> {
    let encode = |e: serde_json::Error| CliError::runtime(format!("cannot encode JSON: {e}"));
    let mut value = serde_json::to_value(value).map_err(encode)?;
    if let Some(s) = secret() {
        text::redact_value(&mut value, s);
    }
    let mut line = escape_json(serde_json::to_string(&value).map_err(encode)?);
    line.push('\n');
    write_stdout(&line)
}

/// The JSON object `prediction watch --json` prints for an update (`None` for a kind of update
/// this version does not know):
///
/// - `{"type":"status","status":"processing"}`
/// - `{"type":"logs","text":"new log text\n"}`: the text as the model wrote it since the last
///   update (all of the logs when they were rewritten rather than extended)
/// - `{"type":"output","output":...}`: the whole output, when it changed
/// - `{"type":"output_chunk","text":...}`: an `output` event of the prediction's event stream
///   (an LLM's next tokens), as the model sent it
/// - `{"type":"progress","percentage":75,"current":3,"total":4}`: the last progress bar of the
///   logs, when it moved
/// - `{"type":"finished","prediction":{...}}`: the terminal prediction, always the last line
pub fn update_json(update: &Update) -> Option<Value> {
    Some(match update {
        Update::Status(status) => serde_json::json!({"type": "status", "status": status.as_str()}),
        Update::Logs(text) => serde_json::json!({"type": "logs", "text": text}),
        Update::Output(output) => serde_json::json!({"type": "output", "output": output}),
        Update::OutputChunk(text) => serde_json::json!({"type": "output_chunk", "text": text}),
        Update::Progress(p) => serde_json::json!({
            "type": "progress",
            "percentage": p.percentage,
            "current": p.current,
            "total": p.total,
        }),
        Update::Finished(p) => serde_json::json!({"type": "finished", "prediction": p}),
        _ => return None,
    })
}

/// Prints the updates of `prediction watch` on stdout as they happen, one line each: plain
/// (`status: processing`, `log: ...` for each complete log line, `output: ...`,
/// `progress: 75% (3/4)`, `finished: succeeded`) or, with `json`, one [`update_json`] object a
/// line. Server text is redacted and made inert, as everything printed.
#[derive(Debug, Default)]
pub struct UpdateLines {
    json: bool,
    /// Plain lines: log text after the last newline, printed once complete (or finished).
    partial: String,
}

impl UpdateLines {
    /// A printer of plain lines, or of JSON lines with `json`.
    pub fn new(json: bool) -> Self {
        UpdateLines {
            json,
            partial: String::new(),
        }
    }

    /// Prints one update.
    pub fn print(&mut self, update: &Update) -> Result<(), CliError> {
        if self.json {
            return match update_json(update) {
                Some(line) => json_line(&line),
                None => Ok(()),
            };
        }
        match update {
            Update::Status(status) => outln(&format!("status: {}", safe_line(status.as_str()))),
            Update::Logs(text) => {
                let lines = complete_lines(&mut self.partial, text);
                lines.lines().try_for_each(|line| self.log_line(line))
            }
            Update::Output(output) => {
                let text = match output {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                outln(&format!("output: {}", shorten(&safe_line(&text), 2000)))
            }
            Update::OutputChunk(text) => outln(&format!("chunk: {}", safe_line(text))),
            Update::Progress(p) => outln(&format!("progress: {}", progress_line(p))),
            Update::Finished(p) => {
                let rest = std::mem::take(&mut self.partial);
                if !rest.is_empty() {
                    self.log_line(&rest)?;
                }
                outln(&format!("finished: {}", safe_line(p.status.as_str())))
            }
            _ => Ok(()),
        }
    }

    fn log_line(&self, line: &str) -> Result<(), CliError> {
        outln(&format!("log: {}", safe_line(last_segment(line))))
    }
}

/// The template of a download's byte bar: bytes, rate and time left.
const TRANSFER_TEMPLATE: &str = "{spinner:.cyan} {prefix:.bold} [{bar:25.cyan/blue}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}";

/// The same, while a file's length is not known yet.
const TRANSFER_SPINNER_TEMPLATE: &str =
    "{spinner:.cyan} {prefix:.bold} {bytes} {binary_bytes_per_sec} {msg}";

/// Runs `f` (a download that counts in its [`TransferProgress`]) with a byte progress bar on
/// stderr when stderr is a terminal and not `quiet`: size, rate and time left, redrawn from the
/// counters ten times a second by a thread that ends with `f`. Otherwise just runs `f`.
pub fn with_transfer_bar<T>(quiet: bool, f: impl FnOnce(&TransferProgress) -> T) -> T {
    let progress = TransferProgress::default();
    if quiet || !std::io::stderr().is_terminal() {
        return f(&progress);
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template(TRANSFER_SPINNER_TEMPLATE) {
        bar.set_style(style);
    }
    bar.set_prefix("downloading");
    let done = std::sync::atomic::AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut sized = false;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let now = progress.snapshot();
                if let Some(total) = now.total.filter(|t| *t > 0) {
                    if !sized && let Ok(style) = ProgressStyle::with_template(TRANSFER_TEMPLATE) {
                        bar.set_style(style);
                        sized = true;
                    }
                    bar.set_length(total);
                }
                bar.set_position(now.bytes);
                bar.set_message(format!("{}/{} files", now.files_done, now.files));
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let result = f(&progress);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        result
    });
    bar.finish_and_clear();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pred(output: Value) -> Prediction {
        serde_json::from_value(json!({"id": "p", "status": "succeeded", "output": output}))
            .expect("prediction")
    }

    #[test]
    fn classifies_outputs() {
        let p = pred(json!(["https://x/out-0.jpg"]));
        assert_eq!(classify(&p), OutputKind::Urls(vec!["https://x/out-0.jpg"]));
        let p = pred(json!("data:image/png;base64,AAAA"));
        assert_eq!(
            classify(&p),
            OutputKind::Urls(vec!["data:image/png;base64,AAAA"])
        );
        let p = pred(json!(["Hello", " world", "!"]));
        assert_eq!(classify(&p), OutputKind::Text("Hello world!".into()));
        let p = pred(json!("done"));
        assert_eq!(classify(&p), OutputKind::Text("done".into()));
        let p = pred(json!({"answer": 42}));
        assert_eq!(classify(&p), OutputKind::Json(&json!({"answer": 42})));
        let p = pred(json!([]));
        assert_eq!(classify(&p), OutputKind::Text(String::new()));
        let p = pred(Value::Null);
        assert_eq!(classify(&p), OutputKind::None);
    }

    #[test]
    fn carriage_returns_show_the_last_redraw() {
        assert_eq!(last_segment("  0%|\r 50%|\r100%|"), "100%|");
        assert_eq!(last_segment("plain"), "plain");
    }

    #[test]
    fn json_stays_exact_and_inert() {
        let v = json!({"log": "a\u{1b}[2Jb\u{9b}c\u{202e}d\u{7f}", "n": [1, {"k": []}]});
        let text = json_text(&v).expect("json");
        assert!(
            !text.chars().any(|c| c != '\n' && text::is_unsafe_char(c)),
            "{text}"
        );
        let back: Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(back, v);
        assert_eq!(text, {
            let plain = serde_json::to_string_pretty(&v).expect("json");
            escape_json(plain)
        });
    }

    #[test]
    fn log_text_is_shown_by_complete_lines() {
        let mut partial = String::new();
        assert_eq!(complete_lines(&mut partial, "a\nb"), "a\n");
        assert_eq!(partial, "b");
        assert_eq!(complete_lines(&mut partial, "c"), "");
        assert_eq!(complete_lines(&mut partial, "\nd\ne\n"), "bc\nd\ne\n");
        assert_eq!(partial, "");
    }

    #[test]
    fn updates_have_one_json_shape_each() {
        let progress = LogProgress {
            percentage: 75,
            current: 3,
            total: 4,
        };
        assert_eq!(
            update_json(&Update::Status(Status::Processing)),
            Some(json!({"type": "status", "status": "processing"}))
        );
        assert_eq!(
            update_json(&Update::Logs("a\n".into())),
            Some(json!({"type": "logs", "text": "a\n"}))
        );
        assert_eq!(
            update_json(&Update::Output(json!(["x"]))),
            Some(json!({"type": "output", "output": ["x"]}))
        );
        assert_eq!(
            update_json(&Update::Progress(progress)),
            Some(json!({"type": "progress", "percentage": 75, "current": 3, "total": 4}))
        );
        let done = pred(json!("ok"));
        let v = update_json(&Update::Finished(Box::new(done))).expect("finished");
        assert_eq!(v["type"], "finished");
        assert_eq!(v["prediction"]["status"], "succeeded");
        assert_eq!(v["prediction"]["output"], "ok");
        assert_eq!(progress_line(&progress), "75% (3/4)");
    }

    #[test]
    fn summary_names_the_status_and_error() {
        let p: Prediction = serde_json::from_value(json!({
            "id": "p1", "status": "failed", "error": "boom", "logs": "a\nb\n"
        }))
        .expect("prediction");
        let s = summary(&p);
        assert!(s.contains("status:      failed"), "{s}");
        assert!(s.contains("error:       boom"), "{s}");
        assert!(s.contains("  b\n"), "{s}");
    }
}
