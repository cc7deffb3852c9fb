//! Outputs as streams take constant memory: a large synthetic output (`fake/large-files`)
//! through `download_to`, `open_output` and `download_outputs` of both clients, while the
//! process's peak resident memory (`VmHWM`) stays within a bound far below the output's size.
//!
//! Alone in its test binary (one test, the clients one after the other), so that nothing else
//! moves the process's memory. Linux only (it reads `/proc/self/status`).

use std::io::{Read, Write};
use std::time::Duration;

use replicate_fake::{SyntheticFile, SyntheticReader};
use replicate_protocol::{CreatePrediction, Target};
use replicate_tests::{Env, Which};
use serde_json::json;

/// The size of the output: more than the bound (debug builds are slow; 64 MiB keeps the test
/// within seconds, and the clients' growth is about 2 MiB).
const BYTES: u64 = 64 << 20;

/// How much the peak resident memory may grow while the output goes through: generous (the
/// fake server runs in the process too, and allocators keep freed memory), yet a client that
/// held the output would be over it.
const MAX_GROWTH: u64 = 48 << 20;

/// A value of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`).
fn status(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field}"));
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("a size in kB");
    kib * 1024
}

/// Compares what it receives with the file, holding one chunk.
struct Checker {
    expected: SyntheticReader,
    scratch: Vec<u8>,
    received: u64,
    same: bool,
}

impl Checker {
    fn new(file: SyntheticFile) -> Checker {
        Checker {
            expected: file.reader(),
            scratch: Vec::new(),
            received: 0,
            same: true,
        }
    }
}

impl Write for Checker {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.scratch.resize(buf.len(), 0);
        self.expected.read_exact(&mut self.scratch)?;
        self.same &= self.scratch == buf;
        self.received += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `what` and checks the peak memory it added.
fn within_bound(client: &str, what: &str, run: impl FnOnce()) {
    // Resets the peak to the current size (Linux 4.0 and later); where that fails, the peak
    // of an earlier step counts against this one, which only makes the check stricter.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = status("VmRSS:");
    let started = std::time::Instant::now();
    run();
    let peak = status("VmHWM:");
    let growth = peak.saturating_sub(before);
    eprintln!(
        "{client} {what}: {} KiB more at the peak, in {:?}",
        growth >> 10,
        started.elapsed()
    );
    assert!(
        growth < MAX_GROWTH,
        "{client} {what}: the peak resident memory grew by {} MiB for a {} MiB output",
        growth >> 20,
        BYTES >> 20
    );
}

fn check(which: Which) {
    let env = Env::new(which);
    let name = env.driver.name();
    let create = CreatePrediction::new(Target::parse("fake/large-files").expect("target"))
        .input(json!({"num_outputs": 1, "output_bytes": BYTES, "seed": 42}));
    let prediction = env
        .driver
        .run_with(
            create,
            env.driver.wait_options_within(Duration::from_secs(20)),
        )
        .expect("run");
    let url = prediction.output[0].as_str().expect("a URL").to_owned();
    let file = SyntheticFile::new(42, BYTES);
    // The fake's digest (its ETag) is computed before measuring.
    let _ = file.sha256();

    within_bound(name, "download_to", || {
        let mut checker = Checker::new(file);
        let done = env
            .driver
            .download_to(&url, &mut checker)
            .expect("download_to");
        assert_eq!((done.bytes, checker.received), (BYTES, BYTES));
        assert!(checker.same, "the bytes differ");
    });

    within_bound(name, "open_output", || {
        let mut checker = Checker::new(file);
        let (read, _) = env
            .driver
            .open_output_into(&url, &mut checker)
            .expect("open_output");
        assert_eq!((read, checker.received), (BYTES, BYTES));
        assert!(checker.same, "the bytes differ");
    });

    let dir = tempfile::tempdir().expect("tempdir");
    within_bound(name, "download_outputs", || {
        let paths = env
            .driver
            .download_outputs(&prediction, dir.path())
            .expect("download_outputs");
        assert_eq!(paths.len(), 1);
        let mut checker = Checker::new(file);
        let mut saved = std::fs::File::open(&paths[0]).expect("open");
        // Read back in small pieces (not `fs::read`): the check must not hold the file either.
        std::io::copy(&mut saved, &mut checker).expect("read back");
        assert_eq!(checker.received, BYTES);
        assert!(checker.same, "the file differs");
    });
}

#[test]
fn large_outputs_stream_in_constant_memory() {
    if !std::path::Path::new("/proc/self/status").exists() {
        eprintln!("skipped: no /proc/self/status");
        return;
    }
    check(Which::Ureq);
    check(Which::Reqwest);
}
