//! `replicate batch` against the fake server: one result per input line, exit codes, shards,
//! downloads, and resuming after a kill -9 without creating anything twice.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use replicate_fake::{FakeHandle, ModelScript, Output};
use serde_json::{Value, json};

/// The input of line `n`.
fn input(n: usize) -> Value {
    json!({"prompt": format!("line {n}")})
}

/// Writes `n` lines of inputs (line `k` is `input(k)`), the lines in `blank` left blank;
/// returns the non-blank line numbers.
fn write_inputs(path: &Path, n: usize, blank: &[usize]) -> Vec<usize> {
    let mut text = String::new();
    let mut lines = Vec::new();
    for k in 1..=n {
        if blank.contains(&k) {
            text.push_str("  \n");
        } else {
            text.push_str(&input(k).to_string());
            text.push('\n');
            lines.push(k);
        }
    }
    std::fs::write(path, text).expect("write the inputs");
    lines
}

/// The result lines of a results file.
fn results(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("read the results");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON result line"))
        .collect()
}

/// The `line` of each result, sorted, checked unique.
fn lines_of(results: &[Value]) -> Vec<usize> {
    let mut lines: Vec<usize> = results
        .iter()
        .map(|r| r["line"].as_u64().expect("line") as usize)
        .collect();
    lines.sort_unstable();
    let before = lines.len();
    lines.dedup();
    assert_eq!(lines.len(), before, "a line written twice: {results:#?}");
    lines
}

/// How many creates the server applied, per input (faulted, throttled and unauthenticated
/// ones left out).
fn creates_per_input(server: &FakeHandle) -> HashMap<String, usize> {
    let mut by_input = HashMap::new();
    let bearer = format!("Bearer {}", server.token());
    for r in creates(server) {
        if r.fault.is_some() || r.rate_limited || r.header("authorization") != Some(&bearer) {
            continue;
        }
        let input = r.json().map(|b| b["input"].to_string()).unwrap_or_default();
        *by_input.entry(input).or_insert(0) += 1;
    }
    by_input
}

/// Asserts that the input of each of `lines` was created exactly once, and nothing else.
fn assert_created_once(server: &FakeHandle, lines: &[usize]) {
    let by_input = creates_per_input(server);
    for &n in lines {
        let count = by_input.get(&input(n).to_string()).copied().unwrap_or(0);
        assert_eq!(count, 1, "line {n} created {count} times");
    }
    assert_eq!(
        by_input.len(),
        lines.len(),
        "creates of other inputs: {by_input:?}"
    );
}

/// `replicate batch MODEL --inputs in.jsonl --out results.jsonl` with fast pacing.
fn batch(server: &FakeHandle, dir: &Path, model: &str) -> assert_cmd::Command {
    let mut cmd = cli(server, dir);
    cmd.args([
        "batch",
        model,
        "--inputs",
        "in.jsonl",
        "--out",
        "results.jsonl",
    ])
    .args(["--create-rate", "500", "--lost-grace-ms", "200"]);
    cmd
}

#[test]
fn every_non_blank_line_gets_exactly_one_result() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = write_inputs(&dir.path().join("in.jsonl"), 31, &[10]);
    let out = batch(&server.handle(), dir.path(), "fake/json")
        .arg("--no-download")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let results = results(&dir.path().join("results.jsonl"));
    assert_eq!(lines_of(&results), lines);
    assert_eq!(results.len(), 30);
    for r in &results {
        assert_eq!(r["status"], "succeeded", "{r}");
        assert_eq!(r["create"], "created", "{r}");
        assert_eq!(r["output"]["answer"], 42, "{r}");
        assert_eq!(r["error"], Value::Null, "{r}");
        assert_eq!(r["files"], json!([]), "{r}");
        assert!(r["id"].as_str().is_some_and(|id| !id.is_empty()), "{r}");
        let keys: BTreeSet<&str> = r
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from(["line", "id", "status", "output", "error", "files", "create"])
        );
    }
    assert_created_once(&server.handle(), &lines);
    // The journal is beside the results; progress went to stderr, nothing to stdout.
    assert!(dir.path().join("results.jsonl.journal").is_file());
    assert!(stderr(&out).contains("30/30 done"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
}

#[test]
fn a_failing_model_exits_1_with_each_line_recorded() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = write_inputs(&dir.path().join("in.jsonl"), 5, &[]);
    let out = batch(&server.handle(), dir.path(), "fake/fail")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let results = results(&dir.path().join("results.jsonl"));
    assert_eq!(lines_of(&results), lines);
    for r in &results {
        assert_eq!(r["status"], "failed", "{r}");
        assert!(
            r["error"]
                .as_str()
                .is_some_and(|e| e.contains("Fake failure")),
            "{r}"
        );
        assert_eq!(r["files"], json!([]), "{r}");
    }
    let err = stderr(&out);
    assert!(err.contains("5 of 5 line(s) did not succeed"), "{err}");
    assert_clean(&err);
}

#[test]
fn a_line_that_is_not_an_object_exits_2_naming_it_before_any_create() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    for (bad, what) in [
        ("[1, 2]", "not a JSON object"),
        ("{\"a\": ", "invalid JSON"),
    ] {
        let mut text = String::new();
        for k in 1..=6 {
            text.push_str(&if k == 4 {
                bad.to_owned()
            } else {
                input(k).to_string()
            });
            text.push('\n');
        }
        std::fs::write(dir.path().join("in.jsonl"), text).expect("write");
        let out = batch(&server.handle(), dir.path(), "fake/json")
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("line 4"), "{err}");
        assert!(err.contains(what), "{err}");
        assert_short_error(&out);
        assert!(creates(&server.handle()).is_empty(), "no create sent");
        assert!(!dir.path().join("results.jsonl").exists());
        assert!(!dir.path().join("results.jsonl.journal").exists());
    }
}

#[test]
fn lines_that_do_not_match_the_schema_exit_2_naming_them_before_any_create() {
    let server = fake();
    let handle = server.handle();
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = [
        json!({"prompt": "a cat"}),
        json!({"prompt": "a dog", "num_outputs": 99}),
        json!({"prompt": "a fox", "sead": 1}),
        json!({"aspect_ratio": "7:3"}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.path().join("in.jsonl"), &text).expect("write");
    let out = batch(&handle, dir.path(), "black-forest-labs/flux-schnell")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    // Line 2: out of range; line 4: missing prompt and not in the enum; line 3 only warns.
    assert!(err.contains("2 lines of in.jsonl do not match"), "{err}");
    assert!(err.contains("line 2: num_outputs"), "{err}");
    assert_eq!(err.matches("  line 4: ").count(), 2, "{err}");
    assert!(
        !err.contains("  line 1: ") && !err.contains("  line 3: "),
        "{err}"
    );
    assert!(err.contains("warning: sead: not an input"), "{err}");
    assert!(creates(&handle).is_empty(), "no create sent");
    assert!(!dir.path().join("results.jsonl").exists());
    assert!(!dir.path().join("results.jsonl.journal").exists());

    // --no-validate sends them: the server refuses the bad ones, each recorded as failed.
    let out = batch(&handle, dir.path(), "black-forest-labs/flux-schnell")
        .args(["--no-validate", "--no-download"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rows = results(&dir.path().join("results.jsonl"));
    let failed: BTreeSet<u64> = rows
        .iter()
        .filter(|r| r["status"] != "succeeded")
        .filter_map(|r| r["line"].as_u64())
        .collect();
    assert_eq!(failed, BTreeSet::from([2, 4]), "{rows:#?}");
}

#[test]
fn three_shards_cover_every_line_exactly_once() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = write_inputs(&dir.path().join("in.jsonl"), 20, &[7]);
    let mut all = Vec::new();
    for k in 1..=3usize {
        let out_name = format!("shard-{k}.jsonl");
        let out = cli(&server.handle(), dir.path())
            .args([
                "batch",
                "fake/json",
                "--inputs",
                "in.jsonl",
                "--no-download",
            ])
            .args(["--out", &out_name, "--shard", &format!("{k}/3")])
            .args(["--create-rate", "500"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let shard = lines_of(&results(&dir.path().join(&out_name)));
        // Line n belongs to shard K when n % 3 == K % 3.
        assert!(shard.iter().all(|n| n % 3 == k % 3), "shard {k}: {shard:?}");
        all.extend(shard);
    }
    all.sort_unstable();
    assert_eq!(all, lines, "every line exactly once across the shards");
    assert_created_once(&server.handle(), &lines);

    for bad in ["0/3", "4/3", "1/0", "a/b", "3", "1/3/2", "-1/3"] {
        let out = cli(&server.handle(), dir.path())
            .args([
                "batch",
                "fake/json",
                "--inputs",
                "in.jsonl",
                "--out",
                "x.jsonl",
            ])
            .arg(format!("--shard={bad}"))
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(2),
            "--shard {bad}: {}",
            stderr(&out)
        );
    }
    assert!(!dir.path().join("x.jsonl").exists());
}

/// `replicate batch` as a child process, to be killed.
fn spawn_batch(server: &FakeHandle, dir: &Path, extra: &[&str]) -> Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_replicate"))
        .env_remove("REPLICATE_API_TOKEN")
        .env_remove("REPLICATE_BASE_URL")
        .env("REPLICATE_POLL_INTERVAL_MS", "20")
        .current_dir(dir)
        .args([
            "--base-url",
            &server.prefixed_base_url(),
            "--token",
            server.token(),
        ])
        .args([
            "batch",
            "test/slow",
            "--inputs",
            "in.jsonl",
            "--out",
            "results.jsonl",
        ])
        .args(["--no-download", "--concurrency", "6", "--create-rate", "40"])
        .args(["--lost-grace-ms", "200"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn replicate batch")
}

/// Kills the child on drop, so that a failing test leaves nothing running.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until `done` holds, at most `limit`.
fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The number of complete lines of a file (0 when it does not exist).
fn complete_lines(path: &Path) -> usize {
    std::fs::read(path).map_or(0, |b| b.iter().filter(|c| **c == b'\n').count())
}

/// The fake with `test/slow`, whose predictions take 300 ms: a batch is still running when the
/// tests interrupt it.
fn slow_fake() -> replicate_fake::BlockingFakeServer {
    let server = fake();
    server.handle().set_model(
        "test/slow",
        ModelScript::succeed(Output::Json(json!("ok"))).processing_time(Duration::from_millis(300)),
    );
    server
}

#[test]
fn resume_after_kill_9_creates_nothing_twice_and_writes_each_line_once() {
    let server = slow_fake();
    let handle = server.handle();
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = write_inputs(&dir.path().join("in.jsonl"), 30, &[5, 17]);
    let out_path = dir.path().join("results.jsonl");
    let journal = dir.path().join("results.jsonl.journal");

    // Killed (SIGKILL) once some items are over and others are being created or running.
    let mut child = Killed(spawn_batch(&handle, dir.path(), &[]));
    wait_until(Duration::from_secs(15), "results", || {
        complete_lines(&out_path) >= 3
    });
    child.0.kill().expect("kill -9");
    let _ = child.0.wait();
    let first = lines_of(&results(&out_path));
    assert!(
        first.len() < lines.len(),
        "killed before the end: {first:?}"
    );
    assert!(complete_lines(&journal) > first.len());

    // Without --resume: refused, nothing overwritten.
    let out = batch(&handle, dir.path(), "test/slow")
        .arg("--no-download")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--resume"), "{}", stderr(&out));
    assert_eq!(lines_of(&results(&out_path)), first);

    let out = batch(&handle, dir.path(), "test/slow")
        .args(["--no-download", "--resume", "--concurrency", "6"])
        .timeout(Duration::from_secs(60))
        .output()
        .expect("resume");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let all = results(&out_path);
    assert_eq!(lines_of(&all), lines, "every line exactly once");
    for r in &all {
        assert_eq!(r["status"], "succeeded", "{r}");
        assert!(
            ["created", "adopted", "resent"].contains(&r["create"].as_str().unwrap_or("")),
            "{r}"
        );
    }
    assert_created_once(&handle, &lines);

    // Resuming a finished batch: nothing sent, nothing written.
    let before = std::fs::read(&out_path).expect("results");
    let creates_before = creates(&handle).len();
    let out = batch(&handle, dir.path(), "test/slow")
        .args(["--no-download", "--resume"])
        .output()
        .expect("resume again");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read(&out_path).expect("results"), before);
    assert_eq!(creates(&handle).len(), creates_before);
}

#[test]
fn resume_rewrites_a_torn_result_line_and_skips_lines_already_written() {
    let server = fake();
    let handle = server.handle();
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = write_inputs(&dir.path().join("in.jsonl"), 6, &[]);
    let out = batch(&handle, dir.path(), "fake/json")
        .arg("--no-download")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The last result line cut in two, and the journal without its last `done` record: as if
    // killed while writing.
    let out_path = dir.path().join("results.jsonl");
    let text = std::fs::read_to_string(&out_path).expect("results");
    let cut = text.trim_end().rfind('\n').expect("several lines") + 1;
    let torn_line: Value = serde_json::from_str(text[cut..].trim_end()).expect("the last line");
    std::fs::write(&out_path, &text[..cut + 10]).expect("tear");
    let journal_path = dir.path().join("results.jsonl.journal");
    let journal = std::fs::read_to_string(&journal_path).expect("journal");
    let kept: Vec<&str> = journal.lines().collect();
    let last_done = kept
        .iter()
        .rposition(|l| l.contains("\"done\""))
        .expect("a done record");
    let mut rewritten: String = kept
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != last_done)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    rewritten.push_str("{\"type\":\"do");
    std::fs::write(&journal_path, rewritten).expect("journal");

    let out = batch(&handle, dir.path(), "fake/json")
        .args(["--no-download", "--resume"])
        .output()
        .expect("resume");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let all = results(&out_path);
    assert_eq!(lines_of(&all), lines);
    let again = all
        .iter()
        .find(|r| r["line"] == torn_line["line"])
        .expect("the torn line, written again");
    assert_eq!(
        again["id"], torn_line["id"],
        "the same prediction, not a new one"
    );
    assert_created_once(&handle, &lines);
}

#[test]
fn downloads_are_named_line_index_ext_and_never_replace_a_different_file() {
    let server = fake();
    let handle = server.handle();
    let dir = tempfile::tempdir().expect("tempdir");
    write_inputs(&dir.path().join("in.jsonl"), 3, &[2]);
    std::fs::create_dir(dir.path().join("outputs")).expect("outputs");
    std::fs::write(dir.path().join("outputs/3-1.png"), b"mine").expect("a file of mine");
    let out = batch(&handle, dir.path(), "fake/urls")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let results = results(&dir.path().join("results.jsonl"));
    assert_eq!(lines_of(&results), vec![1, 3]);
    for r in &results {
        let line = r["line"].as_u64().expect("line");
        let want: Vec<String> = (0..3)
            .map(|i| {
                if line == 3 && i == 1 {
                    "outputs/3-1-1.png".to_owned()
                } else {
                    format!("outputs/{line}-{i}.png")
                }
            })
            .collect();
        assert_eq!(r["files"], json!(want), "{r}");
        assert_eq!(r["output"].as_array().map(Vec::len), Some(3), "{r}");
        for f in &want {
            let bytes = std::fs::read(dir.path().join(f)).expect("downloaded");
            assert!(bytes.starts_with(b"\x89PNG"), "{f} is a PNG");
        }
    }
    assert_eq!(
        std::fs::read(dir.path().join("outputs/3-1.png")).expect("mine"),
        b"mine",
        "an existing file is not replaced"
    );
    assert!(stderr(&out).contains("other content"), "{}", stderr(&out));
    // No temporary file left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path().join("outputs"))
        .expect("outputs")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    assert_eq!(names.len(), 7, "{names:?}");

    // --no-download: the URLs only, no directory.
    let dir = tempfile::tempdir().expect("tempdir");
    write_inputs(&dir.path().join("in.jsonl"), 2, &[]);
    let out = batch(&handle, dir.path(), "fake/urls")
        .arg("--no-download")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for r in results_of(dir.path()) {
        assert_eq!(r["files"], json!([]), "{r}");
        assert!(
            r["output"][0]
                .as_str()
                .is_some_and(|u| u.starts_with("http")),
            "{r}"
        );
    }
    assert!(!dir.path().join("outputs").exists());

    // --output-dir, and a data: URI output.
    let dir = tempfile::tempdir().expect("tempdir");
    write_inputs(&dir.path().join("in.jsonl"), 1, &[]);
    let out = batch(&handle, dir.path(), "fake/data-uri")
        .args(["--output-dir", "imgs"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r = &results_of(dir.path())[0];
    assert_eq!(r["files"], json!(["imgs/1-0.png"]), "{r}");
    assert!(dir.path().join("imgs/1-0.png").is_file());
}

fn results_of(dir: &Path) -> Vec<Value> {
    results(&dir.join("results.jsonl"))
}

#[test]
fn existing_results_or_journal_without_resume_exit_2() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    write_inputs(&dir.path().join("in.jsonl"), 3, &[]);
    for existing in ["results.jsonl", "results.jsonl.journal"] {
        let _ = std::fs::remove_file(dir.path().join("results.jsonl"));
        let _ = std::fs::remove_file(dir.path().join("results.jsonl.journal"));
        std::fs::write(dir.path().join(existing), b"precious\n").expect("write");
        let out = batch(&server.handle(), dir.path(), "fake/json")
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("--resume"), "{err}");
        assert!(err.contains(existing), "{err}");
        assert_short_error(&out);
        assert_eq!(
            std::fs::read(dir.path().join(existing)).expect("kept"),
            b"precious\n"
        );
    }
    assert!(creates(&server.handle()).is_empty());
}

#[test]
fn inputs_from_stdin() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!("{}\n\n{}\n", input(1), input(3));
    let out = cli(&server.handle(), dir.path())
        .args(["batch", "fake/json", "--inputs", "-", "--out", "r.jsonl"])
        .write_stdin(text)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(lines_of(&results(&dir.path().join("r.jsonl"))), vec![1, 3]);
    assert_created_once(&server.handle(), &[1, 3]);
}

#[test]
fn a_refused_token_exits_3_and_resume_goes_on() {
    let server = fake();
    let handle = server.handle();
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = write_inputs(&dir.path().join("in.jsonl"), 4, &[]);
    let out = bare(dir.path())
        .args([
            "--base-url",
            &handle.prefixed_base_url(),
            "--token",
            "r8_wrong",
        ])
        .args([
            "batch",
            "fake/json",
            "--inputs",
            "in.jsonl",
            "--out",
            "results.jsonl",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("--resume"), "{err}");
    assert_short_error(&out);
    assert!(!err.contains("r8_wrong"), "{err}");
    let out = batch(&handle, dir.path(), "fake/json")
        .arg("--resume")
        .output()
        .expect("resume");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(lines_of(&results(&dir.path().join("results.jsonl"))), lines);
    assert_created_once(&handle, &lines);
}

#[test]
fn a_deployment_runs_instead_of_a_model() {
    let server = fake();
    let handle = server.handle();
    handle.set_deployment("acme/prod", "fake/json");
    let dir = tempfile::tempdir().expect("tempdir");
    write_inputs(&dir.path().join("in.jsonl"), 2, &[]);
    let out = cli(&handle, dir.path())
        .args(["batch", "--deployment", "acme/prod", "--inputs", "in.jsonl"])
        .args(["--out", "results.jsonl", "--timeout", "45"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let creates = creates(&handle);
    assert_eq!(creates.len(), 2);
    for c in &creates {
        assert_eq!(c.path, "/replicate/v1/deployments/acme/prod/predictions");
        assert_eq!(c.header("cancel-after"), Some("45s"), "{c:?}");
    }
    // Neither MODEL nor --deployment: a usage error; a --timeout under 5 s too.
    let out = cli(&handle, dir.path())
        .args(["batch", "--inputs", "in.jsonl", "--out", "x.jsonl"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = cli(&handle, dir.path())
        .args([
            "batch",
            "fake/json",
            "--inputs",
            "in.jsonl",
            "--out",
            "x.jsonl",
        ])
        .args(["--timeout", "2"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!dir.path().join("x.jsonl").exists());
}

#[test]
fn help_documents_the_result_line_and_the_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = bare(dir.path())
        .args(["batch", "--help"])
        .output()
        .expect("help");
    assert!(out.status.success());
    let help = stdout(&out);
    for want in [
        "--inputs",
        "--out",
        "--shard",
        "--resume",
        "\"line\"",
        "\"create\"",
        "LINE-INDEX.ext",
        "RESULTS.jsonl.journal",
        "Exit codes",
        "130",
    ] {
        assert!(help.contains(want), "{want} in:\n{help}");
    }
    assert!(!help.contains("--create-rate"), "hidden option shown");
}

#[cfg(unix)]
#[test]
fn sigterm_exits_130_and_resume_finishes_the_batch() {
    let server = slow_fake();
    let handle = server.handle();
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = write_inputs(&dir.path().join("in.jsonl"), 20, &[]);
    let out_path = dir.path().join("results.jsonl");
    let mut child = Killed(spawn_batch(&handle, dir.path(), &[]));
    wait_until(Duration::from_secs(15), "results", || {
        complete_lines(&out_path) >= 2
    });
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(sent.success());
    let mut code = None;
    wait_until(Duration::from_secs(10), "the exit", || {
        code = child.0.try_wait().expect("try_wait").map(|s| s.code());
        code.is_some()
    });
    assert_eq!(code, Some(Some(130)));
    let first = lines_of(&results(&out_path));
    assert!(first.len() < lines.len(), "{first:?}");

    let out = batch(&handle, dir.path(), "test/slow")
        .args(["--no-download", "--resume"])
        .timeout(Duration::from_secs(60))
        .output()
        .expect("resume");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(lines_of(&results(&out_path)), lines);
    assert_created_once(&handle, &lines);
}
