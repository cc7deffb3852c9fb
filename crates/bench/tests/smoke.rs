//! Runs `replicate-bench --quick` and checks that the report has every figure. Timings are never
//! asserted: a smoke run on a busy machine measures nothing meaningful.

use std::process::Command;

use serde_json::Value;

/// Every figure a run reports (the ids of the rows).
const ROWS: &[&str] = &[
    "cpu.get.replicate-ureq",
    "overhead.get.replicate-ureq",
    "cpu.get.bare-ureq",
    "cpu.get.replicate-reqwest",
    "overhead.get.replicate-reqwest",
    "cpu.get.bare-reqwest",
    "connections.replicate-ureq",
    "connections.bare-ureq",
    "connections.replicate-reqwest",
    "connections.bare-reqwest",
    "notice.sync.replicate-ureq",
    "notice.sync.replicate-reqwest",
    "notice.stream.replicate-ureq",
    "notice.stream.replicate-reqwest",
    "notice.poll-default.replicate-ureq",
    "notice.poll-default.replicate-reqwest",
    "notice.poll-fixed-500ms.replicate-ureq",
    "notice.poll-fixed-500ms.replicate-reqwest",
    "notice.sync.bare-ureq",
    "requests.sync.replicate-ureq",
    "requests.sync.replicate-reqwest",
    "requests.stream.replicate-ureq",
    "requests.stream.replicate-reqwest",
    "requests.poll-default.replicate-ureq",
    "requests.poll-default.replicate-reqwest",
    "requests.poll-fixed-500ms.replicate-ureq",
    "requests.poll-fixed-500ms.replicate-reqwest",
    "requests.sync.bare-ureq",
    "floor.timer-lateness",
];

/// The fan-out figures, reported for each mode and client.
const FANOUT_METRICS: &[&str] = &[
    "completions",
    "peak-rss",
    "bytes-per-prediction",
    "future-bytes",
    "connections",
];

#[test]
fn quick_run_reports_every_figure() {
    let out = Command::new(env!("CARGO_BIN_EXE_replicate-bench"))
        .args(["--quick", "--json"])
        .output()
        .expect("runs replicate-bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "replicate-bench failed:\n{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("the report is JSON");
    let rows = doc["rows"].as_array().expect("rows");
    let ids: Vec<&str> = rows.iter().filter_map(|r| r["id"].as_str()).collect();
    for id in ROWS {
        assert!(ids.contains(id), "no row {id} in {ids:?}");
    }
    for mode in ["sync", "poll"] {
        for client in ["replicate-reqwest", "bare-reqwest"] {
            for metric in FANOUT_METRICS {
                let id = format!("fanout.{mode}.{client}.{metric}");
                assert!(ids.contains(&id.as_str()), "no row {id} in {ids:?}");
            }
        }
    }
    for row in rows {
        let status = row["status"].as_str().expect("status");
        assert!(
            ["met", "missed", "-", "pending"].contains(&status),
            "unknown status in {row}"
        );
        // Every figure was measured (a value, even if it misses its target).
        assert!(row["value"].is_number(), "no value in {row}");
        assert!(
            !row["detail"].as_str().unwrap_or("").contains("FAILED"),
            "{row}"
        );
    }
    for key in ["cpus", "cpu_model", "memory_mib"] {
        assert!(!doc["machine"][key].is_null(), "no machine.{key}");
    }
}

#[test]
fn quick_run_prints_a_table() {
    let out = Command::new(env!("CARGO_BIN_EXE_replicate-bench"))
        .args(["--quick", "--only", "connections", "--seq-calls", "5"])
        .output()
        .expect("runs replicate-bench");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("figure"), "{table}");
    assert!(table.contains("connections.replicate-ureq"), "{table}");
    assert!(table.contains("connections.replicate-reqwest"), "{table}");
}
