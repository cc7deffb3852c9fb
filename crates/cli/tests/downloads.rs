//! Output files on disk: `prediction download`, `files download` (SHA-256 checked), and the
//! memory `run` takes for a large output.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use replicate_fake::{Fault, FaultRule, Matcher, SyntheticFile};
use replicate_ureq::{Client, CreatePrediction, Status, Target};
use serde_json::json;

fn client(server: &replicate_fake::FakeHandle) -> Client {
    Client::builder()
        .token(server.token())
        .base_url(server.prefixed_base_url())
        .build()
        .expect("client")
}

/// Whether the file at `path` holds exactly the bytes of `file`, compared a chunk at a time.
fn same_as(path: &Path, file: SyntheticFile) -> bool {
    let mut on_disk = std::fs::File::open(path).expect("open");
    let mut expected = file.reader();
    let (mut a, mut b) = (vec![0; 1 << 16], vec![0; 1 << 16]);
    loop {
        let n = on_disk.read(&mut a).expect("read");
        let m = expected.read(&mut b[..n.max(1)]).expect("read");
        if n == 0 {
            return m == 0;
        }
        if a[..n] != b[..m] || n != m {
            return false;
        }
    }
}

fn no_partial_files(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .all(|e| !e.file_name().to_string_lossy().ends_with(".part"))
}

#[test]
fn prediction_download_saves_each_output_in_order() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let api = client(&server);
    let create = CreatePrediction::new(Target::parse("fake/large-files").expect("target"))
        .input(json!({"num_outputs": 3, "output_bytes": 300_000, "seed": 40}));
    let created = api.create(create).expect("create");

    // Not finished yet: nothing to download, and it says what to do.
    let early = api.get(&created.id).expect("get");
    if !early.status.is_terminal() {
        let out = cli(&server, dir.path())
            .args(["prediction", "download", &created.id])
            .output()
            .expect("run");
        // It may finish between the `get` and the command: then the command downloads.
        match out.status.code() {
            Some(3) => assert!(stderr(&out).contains("prediction wait"), "{}", stderr(&out)),
            Some(0) => {
                let now = api.get(&created.id).expect("get");
                assert!(now.status.is_terminal(), "exit 0 on {:?}", now.status);
            }
            other => panic!("exit {other:?}: {}", stderr(&out)),
        }
    }
    let done = api.wait(&created.id, None).expect("wait");
    assert_eq!(done.status, Status::Succeeded);

    let out = cli(&server, dir.path())
        .args([
            "prediction",
            "download",
            &created.id,
            "--output-dir",
            "saved",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = stdout(&out);
    let paths: Vec<&str> = printed.lines().map(str::trim).collect();
    assert_eq!(paths.len(), 3, "{}", stdout(&out));
    for (i, path) in paths.iter().enumerate() {
        assert!(path.ends_with(&format!("out-{i}.bin")), "{path}");
        let file = SyntheticFile::new(40 + i as u64, 300_000);
        assert!(same_as(&dir.path().join(path), file), "{path}");
    }
    assert!(no_partial_files(&dir.path().join("saved")));

    // Again: nothing is replaced, the new files get new names.
    let again = cli(&server, dir.path())
        .args([
            "prediction",
            "download",
            &created.id,
            "--output-dir",
            "saved",
        ])
        .output()
        .expect("run");
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(stdout(&again).contains("out-0-1.bin"), "{}", stdout(&again));
}

#[test]
fn files_download_checks_the_sha256_and_leaves_nothing_on_a_mismatch() {
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let content: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let file = client(&server)
        .upload_file(content.clone(), "weights.bin", None, None)
        .expect("upload");
    assert!(file.checksums.sha256.is_some());

    let out = cli(&server, dir.path())
        .args(["files", "download", &file.id, "-o", "copy.bin"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(dir.path().join("copy.bin")).expect("read"),
        content
    );
    assert!(stderr(&out).contains("verified"), "{}", stderr(&out));

    // An existing file is not replaced.
    let out = cli(&server, dir.path())
        .args(["files", "download", &file.id, "-o", "copy.bin"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // Bytes that do not match the checksum: exit 3, no file, no partial file.
    server.push_fault(FaultRule::new(
        Matcher::new("GET", &format!("/files/{}/download", file.id)),
        Fault::Corrupt(1000),
    ));
    let out = cli(&server, dir.path())
        .args(["files", "download", &file.id, "-o", "bad.bin"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).to_lowercase().contains("sha-256") || stderr(&out).contains("sha256"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("bad.bin").exists());
    assert!(no_partial_files(dir.path()));
}

/// The peak resident memory (`VmHWM`) of a running process, in KiB.
fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn run_of_a_512_mib_output_keeps_the_cli_under_64_mib() {
    const BYTES: u64 = 512 << 20;
    let server = fake();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("replicate"))
        .env_remove("REPLICATE_API_TOKEN")
        .env_remove("REPLICATE_BASE_URL")
        .env("REPLICATE_POLL_INTERVAL_MS", "20")
        .current_dir(dir.path())
        .args([
            "--base-url",
            &server.prefixed_base_url(),
            "--token",
            server.token(),
        ])
        .args([
            "run",
            "fake/large-files",
            "-i",
            "prompt=p",
            "-i",
            &format!("output_bytes={BYTES}"),
        ])
        .args(["-i", "seed=3", "--output-dir", "out"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    // Sampled while it runs (bounded: the download is a few seconds to a minute in debug).
    let mut peak = 0;
    let give_up = std::time::Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(kib) = peak_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > give_up {
            let _ = child.kill();
            panic!("replicate run did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child.stderr.take().map(|mut e| e.read_to_string(&mut err));
    assert!(status.success(), "{err}");
    let saved = dir.path().join("out").join("out-0.bin");
    assert_eq!(std::fs::metadata(&saved).expect("saved").len(), BYTES);
    assert!(same_as(&saved, SyntheticFile::new(3, BYTES)));
    eprintln!("peak RSS of replicate run: {peak} KiB");
    assert!(peak > 0, "VmHWM was read");
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB for a 512 MiB output");
}
