//! Following a prediction as it changes: `prediction watch` (plain and `--json`), and the
//! progress `run` and `prediction wait` show on stderr when the logs carry a tqdm bar.
//!
//! Two kinds of server: the fake (`replicate-fake`), whose predictions move with time, so the
//! assertions hold whichever states the polls happen to see; and a scripted loopback server that
//! answers the n-th poll with the n-th state, so the exact sequence of lines is known.

mod common;

use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::raw::{RawRequest, RawServer, respond, respond_json};
use common::*;
use replicate_fake::{FakeHandle, ModelScript, Output};
use replicate_protocol::{CreatePrediction, Target};
use replicate_ureq::{Client, Prediction};
use serde_json::{Value, json};

/// The log lines of the progress model: a tqdm bar between other lines.
const PROGRESS_LOGS: [&str; 5] = [
    "Loading model",
    "  0%|          | 0/4 [00:00<?, ?it/s]",
    " 50%|█████     | 2/4 [00:01<00:01,  2.00it/s]",
    "100%|██████████| 4/4 [00:02<00:00,  2.00it/s]",
    "Done",
];

/// A fake whose model `test/progress` logs [`PROGRESS_LOGS`] over half a second of processing,
/// and succeeds with the output `"done"`.
fn progress_fake() -> replicate_fake::BlockingFakeServer {
    let server = fake();
    server.set_model(
        "test/progress",
        ModelScript::succeed(Output::Json(json!("done")))
            .starting_ticks(5)
            .processing_ticks(50)
            .logs(PROGRESS_LOGS),
    );
    server
}

/// Creates a prediction directly with the library.
fn create(server: &FakeHandle, model: &str) -> Prediction {
    let client = Client::builder()
        .token(server.token())
        .base_url(server.prefixed_base_url())
        .build()
        .expect("client");
    let target = Target::parse(model).expect("target");
    client
        .create(CreatePrediction::new(target).input(json!({"prompt": "x"})))
        .expect("create")
}

/// Each line of stdout as a JSON object.
fn json_lines(out: &std::process::Output) -> Vec<Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l:?}")))
        .collect()
}

/// The values of `field` of the lines of this `type`.
fn of_type<'a>(lines: &'a [Value], kind: &str, field: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l["type"] == kind)
        .map(|l| &l[field])
        .collect()
}

/// Where a status comes in the fake's lifecycle.
fn rank(status: &str) -> usize {
    ["starting", "processing", "succeeded", "failed"]
        .iter()
        .position(|s| *s == status)
        .unwrap_or_else(|| panic!("unexpected status {status}"))
}

#[test]
fn prediction_watch_json_follows_a_fake_prediction_to_its_end() {
    let server = progress_fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let p = create(&server, "test/progress");
    let out = cli(&server, dir.path())
        .args(["prediction", "watch", &p.id, "--json"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert!(lines.len() >= 4, "{lines:#?}");
    assert_eq!(lines[0]["type"], "status", "the first line is the status");

    // The statuses, in the order the fake goes through them, each once, ending succeeded.
    let statuses: Vec<&str> = of_type(&lines, "status", "status")
        .iter()
        .map(|s| s.as_str().expect("a status string"))
        .collect();
    assert!(
        statuses.windows(2).all(|w| rank(w[0]) < rank(w[1])),
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&"succeeded"), "{statuses:?}");

    // The log text, in order and whole: the pieces add up to the final logs.
    let logs: String = of_type(&lines, "logs", "text")
        .iter()
        .map(|t| t.as_str().expect("a text string"))
        .collect();
    let expected: String = PROGRESS_LOGS.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(logs, expected);

    // Progress: only the bars the logs show, never backwards, last 100% of 4/4; each after the
    // log text that carries it.
    let mut seen_logs = String::new();
    let mut progress = Vec::new();
    for line in &lines {
        match line["type"].as_str() {
            Some("logs") => seen_logs.push_str(line["text"].as_str().unwrap_or("")),
            Some("progress") => {
                let pct = line["percentage"].as_u64().expect("percentage");
                let current = line["current"].as_u64().expect("current");
                assert_eq!(line["total"], 4, "{line}");
                assert!(
                    seen_logs.contains(&format!("{pct:>3}%|")),
                    "{pct}% before its bar: {seen_logs:?}"
                );
                assert_eq!(current * 25, pct, "{line}");
                progress.push(pct);
            }
            _ => {}
        }
    }
    assert!(progress.windows(2).all(|w| w[0] < w[1]), "{progress:?}");
    assert_eq!(progress.last(), Some(&100), "{lines:#?}");

    // The output, and last the terminal prediction, once.
    assert_eq!(of_type(&lines, "output", "output"), vec![&json!("done")]);
    let finished = of_type(&lines, "finished", "prediction");
    assert_eq!(finished.len(), 1, "{lines:#?}");
    let last = lines.last().expect("a last line");
    assert_eq!(last["type"], "finished");
    assert_eq!(last["prediction"]["id"], json!(p.id));
    assert_eq!(last["prediction"]["status"], "succeeded");
    assert_eq!(last["prediction"]["logs"], json!(expected));
    // Nothing but updates on stdout; no progress display on stderr.
    assert!(!stderr(&out).contains('%'), "{}", stderr(&out));
}

#[test]
fn prediction_watch_prints_plain_lines_of_a_fake_prediction() {
    let server = progress_fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let p = create(&server, "test/progress");
    let out = cli(&server, dir.path())
        .args(["prediction", "watch", &p.id])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines {
        assert!(
            ["status: ", "log: ", "output: ", "progress: ", "finished: "]
                .iter()
                .any(|p| line.starts_with(p)),
            "{line:?} in:\n{text}"
        );
    }
    let logs: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("log: "))
        .collect();
    assert_eq!(logs, PROGRESS_LOGS, "{text}");
    assert!(lines.contains(&"progress: 100% (4/4)"), "{text}");
    assert!(lines.contains(&"output: done"), "{text}");
    assert!(lines.contains(&"status: succeeded"), "{text}");
    assert_eq!(lines.last(), Some(&"finished: succeeded"), "{text}");
}

#[test]
fn prediction_watch_of_a_failed_prediction_exits_1() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let p = create(&server, "fake/fail");
    let out = cli(&server, dir.path())
        .args(["prediction", "watch", &p.id, "--json"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let lines = json_lines(&out);
    let last = lines.last().expect("a last line");
    assert_eq!(last["type"], "finished");
    assert_eq!(last["prediction"]["status"], "failed");
    let logs: String = of_type(&lines, "logs", "text")
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert!(
        logs.contains("Traceback (most recent call last):"),
        "{logs}"
    );
    let err = stderr(&out);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("Fake failure"), "{err}");
    assert_clean(&err);

    // Plain: the same exit code, the last line says how it ended.
    let out = cli(&server, dir.path())
        .args(["prediction", "watch", &p.id])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().last(), Some("finished: failed"));

    // A canceled prediction: exit 1 too.
    let out = cli(&server, dir.path())
        .args(["prediction", "watch", &create(&server, "fake/cancel").id])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().last(), Some("finished: canceled"));
}

#[test]
fn prediction_watch_errors_exit_3_with_nothing_on_stdout() {
    let server = fake();
    server.set_model(
        "test/slow",
        ModelScript::succeed(Output::Json(json!(1)))
            .processing_time(std::time::Duration::from_secs(60)),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cli(&server, dir.path())
        .args(["prediction", "watch", "no-such-prediction", "--json"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "{}", stdout(&out));
    assert_short_error(&out);

    // A timeout: the updates seen so far, then exit 3 saying what timed out; never a cancel.
    let p = create(&server, "test/slow");
    let out = cli(&server, dir.path())
        .args(["prediction", "watch", &p.id, "--timeout", "0.3"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("status: "), "{}", stdout(&out));
    assert!(!stdout(&out).contains("finished"), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "timed out after 0.3 s waiting for prediction {}",
            p.id
        )),
        "{err}"
    );
    let cancels = api_requests(&server)
        .iter()
        .filter(|r| r.path.ends_with("/cancel"))
        .count();
    assert_eq!(cancels, 0);
}

#[test]
fn run_prints_progress_lines_on_stderr_when_the_logs_carry_a_bar() {
    let server = progress_fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cli(&server, dir.path())
        .args(["run", "test/progress", "-i", "prompt=p"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "done\n");
    let err = stderr(&out);
    // `[  0.4s] ID: 50% (2/4)`: the percentage and the steps, after the id.
    let progress: Vec<&str> = err
        .lines()
        .filter_map(|l| l.split_once("]").map(|(_, rest)| rest))
        .filter(|rest| rest.contains("% ("))
        .collect();
    assert!(
        progress.last().is_some_and(|l| l.ends_with(": 100% (4/4)")),
        "{err}"
    );
    assert!(progress.len() <= 3, "one line per percentage: {err}");
    assert!(err.contains("  | Loading model"), "{err}");

    // Without a bar in the logs, no progress line.
    let out = cli(&server, dir.path())
        .args(["run", "fake/json", "-i", "prompt=p"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("% ("), "{}", stderr(&out));
}

// ---------------------------------------------------------------------------------------------
// A scripted server: the n-th poll of the prediction sees the n-th state (the last one from
// then on), so the exact lines are known.

/// Serves `GET /v1/predictions/p1` with `states` in turn.
fn scripted(states: Vec<Value>) -> RawServer {
    let polls = Arc::new(AtomicUsize::new(0));
    RawServer::start(200, move |req: &RawRequest, stream: &mut TcpStream| {
        if req.method != "GET" || req.path() != "/v1/predictions/p1" {
            return respond(
                stream,
                404,
                "application/json",
                br#"{"detail":"Not found"}"#,
            );
        }
        let n = polls.fetch_add(1, Ordering::SeqCst).min(states.len() - 1);
        respond_json(stream, 200, &states[n]);
    })
}

fn state(status: &str, logs: &str, output: Value) -> Value {
    json!({"id": "p1", "status": status, "logs": logs, "output": output, "input": {}})
}

/// A prediction that logs a bar redrawn with carriage returns, the last line written at the end.
fn bar_states() -> Vec<Value> {
    let first = "Loading model\n  0%|          | 0/4 [00:00<?, ?it/s]";
    let second = format!("{first}\r 50%|█████     | 2/4 [00:01<00:01,  2.00it/s]");
    let last = format!("{second}\r100%|██████████| 4/4 [00:02<00:00,  2.00it/s]\nDone\n");
    vec![
        state("starting", "", Value::Null),
        state("processing", first, Value::Null),
        state("processing", &second, Value::Null),
        state("succeeded", &last, json!("ok")),
    ]
}

/// `replicate` against the scripted server.
fn raw_cli(server: &RawServer, dir: &std::path::Path) -> assert_cmd::Command {
    let mut cmd = bare(dir);
    cmd.args(["--base-url", &server.base_url(), "--token", "r8_scripted"]);
    cmd
}

#[test]
fn prediction_watch_json_prints_each_change_in_order() {
    let server = scripted(bar_states());
    let dir = tempfile::tempdir().expect("tempdir");
    let out = raw_cli(&server, dir.path())
        .args(["prediction", "watch", "p1", "--json"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut lines = json_lines(&out);
    let finished = lines.pop().expect("a finished line");
    assert_eq!(finished["type"], "finished");
    assert_eq!(finished["prediction"]["status"], "succeeded");
    assert_eq!(finished["prediction"]["output"], "ok");
    assert_eq!(
        lines,
        vec![
            json!({"type": "status", "status": "starting"}),
            json!({"type": "status", "status": "processing"}),
            json!({"type": "logs", "text": "Loading model\n  0%|          | 0/4 [00:00<?, ?it/s]"}),
            json!({"type": "progress", "percentage": 0, "current": 0, "total": 4}),
            json!({"type": "logs", "text": "\r 50%|█████     | 2/4 [00:01<00:01,  2.00it/s]"}),
            json!({"type": "progress", "percentage": 50, "current": 2, "total": 4}),
            json!({"type": "status", "status": "succeeded"}),
            json!({"type": "logs", "text": "\r100%|██████████| 4/4 [00:02<00:00,  2.00it/s]\nDone\n"}),
            json!({"type": "output", "output": "ok"}),
            json!({"type": "progress", "percentage": 100, "current": 4, "total": 4}),
        ]
    );
}

#[test]
fn prediction_watch_plain_prints_complete_log_lines_as_a_terminal_shows_them() {
    let server = scripted(bar_states());
    let dir = tempfile::tempdir().expect("tempdir");
    let out = raw_cli(&server, dir.path())
        .args(["prediction", "watch", "p1"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "status: starting\n\
         status: processing\n\
         log: Loading model\n\
         progress: 0% (0/4)\n\
         progress: 50% (2/4)\n\
         status: succeeded\n\
         log: 100%|██████████| 4/4 [00:02<00:00,  2.00it/s]\n\
         log: Done\n\
         output: ok\n\
         progress: 100% (4/4)\n\
         finished: succeeded\n"
    );
}

#[test]
fn server_text_in_watched_updates_is_inert_and_never_the_token() {
    let token = "r8_scripted";
    let evil = format!("a\u{1b}[2Jb {token} \u{202e}c\n");
    let server = scripted(vec![
        state("processing", &evil, Value::Null),
        state("succeeded", &evil, json!(format!("out \u{7} {token}"))),
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    for json in [false, true] {
        let mut cmd = raw_cli(&server, dir.path());
        cmd.args(["prediction", "watch", "p1"]);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().expect("run");
        let (text, err) = (stdout(&out), stderr(&out));
        for t in [&text, &err] {
            assert!(!t.contains(token), "{t}");
            assert!(
                !t.chars()
                    .any(|c| c != '\n' && (c.is_control() || c == '\u{202e}')),
                "{t:?}"
            );
        }
        if json {
            // Still exact JSON: the escapes decode to the text, the token taken out.
            let lines = json_lines(&out);
            assert_eq!(lines[1]["text"], "a\u{1b}[2Jb *** \u{202e}c\n", "{text}");
        } else {
            assert!(text.contains("log: a\\u{1b}[2Jb *** "), "{text}");
        }
    }
}

#[test]
fn progress_lines_on_stderr_change_with_the_whole_percentage_only() {
    let bar = |n: u32| format!("{:>3}%|          | {n}/300 [00:00<?, ?it/s]", n / 3);
    let mut logs = String::from("Loading model\n");
    let mut states = vec![state("starting", "", Value::Null)];
    for n in [1, 2, 3, 4, 6] {
        logs.push('\r');
        logs.push_str(&bar(n));
        states.push(state("processing", &logs, Value::Null));
    }
    states.push(state("succeeded", &format!("{logs}\n"), json!("ok")));
    for args in [
        &["prediction", "wait", "p1"][..],
        &["prediction", "wait", "p1", "--json"],
    ] {
        let server = scripted(states.clone());
        let dir = tempfile::tempdir().expect("tempdir");
        let out = raw_cli(&server, dir.path())
            .args(args)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let err = stderr(&out);
        let progress: Vec<&str> = err
            .lines()
            .filter_map(|l| l.split_once("] p1: "))
            .map(|(_, rest)| rest)
            .filter(|rest| rest.contains('%'))
            .collect();
        if args.contains(&"--json") {
            // --json shows no progress at all.
            assert!(progress.is_empty(), "{err}");
        } else {
            // 1/300 and 2/300 are both 0%: one line; 3/300 and 4/300 1%; 6/300 2%.
            assert_eq!(
                progress,
                ["0% (1/300)", "1% (3/300)", "2% (6/300)"],
                "{err}"
            );
        }
    }
}
