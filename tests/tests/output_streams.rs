//! Outputs as streams, against both clients: `download_to` and `open_output` move a large
//! synthetic output (`fake/large-files`) through one chunk at a time and end with an error,
//! never short; `download_outputs` saves a prediction's files concurrently, named in output
//! order, through `.part` files; a cut download still ends with the right bytes; an error in
//! one download stops the others and leaves no `.part` file and nothing running. The bytes are
//! checked against the fake's own [`SyntheticFile`]s as they arrive (no copy of a whole file,
//! no hashing).
//!
//! The constant-memory check is alone in `output_memory.rs`, so that no other test disturbs
//! the process's memory.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use replicate_fake::{Fault, FaultRule, Matcher, Options, Origin, SyntheticFile, SyntheticReader};
use replicate_protocol::{
    CreatePrediction, Error, OutputErrorKind, Prediction, Target, TransportErrorKind,
};
use replicate_tests::{Env, Settings, driver, fast_options, scenario};
use serde_json::json;

/// Runs `fake/large-files` with this input and returns the prediction and its URLs.
fn large_files(env: &Env, num_outputs: usize, bytes: u64, seed: u64) -> (Prediction, Vec<String>) {
    let create = CreatePrediction::new(Target::parse("fake/large-files").expect("target"))
        .input(json!({"num_outputs": num_outputs, "output_bytes": bytes, "seed": seed}));
    let prediction = env
        .driver
        .run_with(
            create,
            env.driver.wait_options_within(Duration::from_secs(20)),
        )
        .expect("run");
    let urls: Vec<String> = prediction
        .output
        .as_array()
        .expect("a list")
        .iter()
        .map(|u| u.as_str().expect("a URL").to_owned())
        .collect();
    assert_eq!(urls.len(), num_outputs);
    for (i, url) in urls.iter().enumerate() {
        assert_eq!(
            env.fake.synthetic_file(url),
            Some(SyntheticFile::new(seed + i as u64, bytes))
        );
    }
    (prediction, urls)
}

/// A writer that compares what it receives with a synthetic file as it comes, holding one
/// chunk: it never fails, it notes the first difference.
struct Checker {
    expected: SyntheticReader,
    scratch: Vec<u8>,
    received: u64,
    first_difference: Option<u64>,
}

impl Checker {
    fn new(file: SyntheticFile) -> Checker {
        Checker {
            expected: file.reader(),
            scratch: Vec::new(),
            received: 0,
            first_difference: None,
        }
    }

    /// What it received is a prefix of the file (maybe all of it).
    fn assert_prefix(&self) {
        assert_eq!(
            self.first_difference, None,
            "the bytes differ from the file's at this offset"
        );
    }

    /// It received the whole file, exactly.
    fn assert_whole(&self, file: SyntheticFile) {
        self.assert_prefix();
        assert_eq!(self.received, file.len(), "bytes received");
    }
}

impl Write for Checker {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.scratch.resize(buf.len(), 0);
        let mut got = 0;
        while got < buf.len() {
            match self.expected.read(&mut self.scratch[got..])? {
                0 => break,
                n => got += n,
            }
        }
        if self.first_difference.is_none() {
            let same = got == buf.len() && self.scratch[..got] == *buf;
            if !same {
                let at = buf
                    .iter()
                    .zip(&self.scratch[..got])
                    .position(|(a, b)| a != b)
                    .unwrap_or(got);
                self.first_difference = Some(self.received + at as u64);
            }
        }
        self.received += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The file at `path` is exactly `file`.
fn assert_file(path: &Path, file: SyntheticFile) {
    let mut checker = Checker::new(file);
    let mut on_disk = std::fs::File::open(path).expect("open a saved file");
    std::io::copy(&mut on_disk, &mut checker).expect("read a saved file");
    checker.assert_whole(file);
}

/// The names in `dir`, sorted.
fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn file_names(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect()
}

/// Fake options: short ticks, and each connection paced at `rate` bytes per second.
fn paced(rate: u64) -> Options {
    Options {
        connection_rate: Some(rate),
        ..fast_options()
    }
}

/// A cut (`cut=N`) on every request for this output file, `times` times.
fn cut(env: &Env, file: &str, after: usize, times: usize) {
    env.fake.push_fault(
        FaultRule::new(
            Matcher::new("GET", file).origin(Origin::Files),
            Fault::CutAfter(after),
        )
        .times(times),
    );
}

// ----------------------------------------------------------------------------------------------
// download_to and open_output
// ----------------------------------------------------------------------------------------------

scenario!(download_to_and_open_output_stream_a_large_output, |env| {
    const BYTES: u64 = 24 << 20;
    let (_, urls) = large_files(&env, 1, BYTES, 11);
    let file = SyntheticFile::new(11, BYTES);

    let mut checker = Checker::new(file);
    let done = env
        .driver
        .download_to(&urls[0], &mut checker)
        .expect("download_to");
    checker.assert_whole(file);
    assert_eq!(done.bytes, BYTES);

    let mut checker = Checker::new(file);
    let (read, done) = env
        .driver
        .open_output_into(&urls[0], &mut checker)
        .expect("open_output");
    checker.assert_whole(file);
    assert_eq!(read, BYTES);
    assert_eq!(done.expect("downloaded() at the end").bytes, BYTES);
});

scenario!(open_output_reads_exactly_the_file, |env| {
    // Small enough to compare whole: the bytes read equal the file's.
    let (_, urls) = large_files(&env, 2, 300_001, 5);
    let mut read = Vec::new();
    let (n, _) = env
        .driver
        .open_output_into(&urls[1], &mut read)
        .expect("open_output");
    assert_eq!(n, 300_001);
    assert_eq!(read, SyntheticFile::new(6, 300_001).bytes(0, 300_001));
    // `download` is `download_to` into memory.
    assert_eq!(
        env.driver.download(&urls[1]).expect("download"),
        read,
        "download"
    );
});

scenario!(open_output_fails_rather_than_ending_short, |env| {
    const BYTES: u64 = 4 << 20;
    let (_, urls) = large_files(&env, 1, BYTES, 21);
    let file = SyntheticFile::new(21, BYTES);

    // Refused from the start: an error of the open itself.
    env.fake.push_fault(FaultRule::new(
        Matcher::new("GET", "/out-0.bin").origin(Origin::Files),
        Fault::status(404),
    ));
    let mut checker = Checker::new(file);
    let e = env
        .driver
        .open_output_into(&urls[0], &mut checker)
        .expect_err("an expired link");
    assert!(
        matches!(&e, Error::Output(o) if o.kind == OutputErrorKind::Expired),
        "{e:?}"
    );
    assert_eq!(checker.received, 0);

    // Cut on every attempt, too early for the retries to complete it even when each resumes
    // where the last stopped: the reader ends with an error, after a correct prefix.
    let attempts = env.settings.retry.max_retries as usize + 1;
    assert!((attempts as u64) << 16 < BYTES);
    cut(&env, "/out-0.bin", 1 << 16, attempts * 4);
    let mut checker = Checker::new(file);
    let e = env
        .driver
        .open_output_into(&urls[0], &mut checker)
        .expect_err("never a silent short read");
    checker.assert_prefix();
    assert!(checker.received < BYTES);
    assert!(
        matches!(&e, Error::Output(o) if o.kind == OutputErrorKind::Write)
            || matches!(&e, Error::Transport(t) if t.kind == TransportErrorKind::Io),
        "a restart after bytes were read, or the cut once retries are exhausted: {e:?}"
    );
    env.fake.clear_faults();

    // So does download_to.
    cut(&env, "/out-0.bin", 1 << 16, attempts * 4);
    let mut checker = Checker::new(file);
    env.driver
        .download_to(&urls[0], &mut checker)
        .expect_err("never a silent short write");
    checker.assert_prefix();
    assert!(checker.received < BYTES);
    env.fake.clear_faults();

    // A data: URI holds its content: neither downloads it.
    let data = "data:text/plain;base64,aGk=";
    for e in [
        env.driver.open_output_into(data, &mut Vec::new()).map(drop),
        env.driver.download_to(data, &mut Vec::new()).map(drop),
    ] {
        assert!(matches!(e, Err(Error::InvalidInput(_))), "{e:?}");
    }
});

scenario!(a_cut_download_ends_with_the_right_bytes, |env| {
    // Cut once after 1 MiB: the download resumes or starts over; either way the bytes are
    // right in the end, and a writer that cannot take bytes back says so rather than holding
    // a wrong file.
    const BYTES: u64 = 3 << 20;
    let (prediction, urls) = large_files(&env, 1, BYTES, 31);
    let file = SyntheticFile::new(31, BYTES);

    cut(&env, "/out-0.bin", 1 << 20, 1);
    let bytes = env.driver.download(&urls[0]).expect("download");
    assert!(bytes == file.bytes(0, BYTES as usize), "download's bytes");

    cut(&env, "/out-0.bin", 1 << 20, 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = env
        .driver
        .download_outputs(&prediction, dir.path())
        .expect("download_outputs");
    assert_eq!(file_names(&paths), ["out-0.bin"]);
    assert_file(&paths[0], file);
    assert_eq!(list_dir(dir.path()), ["out-0.bin"], "no .part file left");

    cut(&env, "/out-0.bin", 1 << 20, 1);
    let mut checker = Checker::new(file);
    match env.driver.download_to(&urls[0], &mut checker) {
        Ok(done) => {
            checker.assert_whole(file);
            assert_eq!(done.bytes, BYTES);
        }
        Err(e) => {
            assert!(
                matches!(&e, Error::Output(o) if o.kind == OutputErrorKind::Write
                    && o.message.contains("start over")),
                "{e:?}"
            );
            checker.assert_prefix();
        }
    }

    cut(&env, "/out-0.bin", 1 << 20, 1);
    let mut checker = Checker::new(file);
    match env.driver.open_output_into(&urls[0], &mut checker) {
        Ok((read, _)) => {
            checker.assert_whole(file);
            assert_eq!(read, BYTES);
        }
        Err(e) => {
            assert!(
                matches!(&e, Error::Output(o) if o.kind == OutputErrorKind::Write),
                "{e:?}"
            );
            checker.assert_prefix();
        }
    }
});

// ----------------------------------------------------------------------------------------------
// download_outputs
// ----------------------------------------------------------------------------------------------

scenario!(
    download_outputs_saves_files_concurrently_in_output_order,
    // 2 MiB at 16 MiB/s: each file takes about 125 ms, so downloads overlap.
    paced(16 << 20),
    |env| {
        const FILES: usize = 8;
        const BYTES: u64 = 2 << 20;
        // The client's default concurrency (4).
        env.rebuild(|s| s.download_concurrency = None);
        let (prediction, _) = large_files(&env, FILES, BYTES, 100);
        let dir = tempfile::tempdir().expect("tempdir");

        // The most connections open at once on the fake while the files download.
        let done = Arc::new(AtomicBool::new(false));
        let most = Arc::new(AtomicUsize::new(0));
        let watcher = {
            let (done, most, fake) = (done.clone(), most.clone(), env.fake.handle());
            std::thread::spawn(move || {
                while !done.load(Ordering::Acquire) {
                    most.fetch_max(fake.open_connections(), Ordering::AcqRel);
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        let paths = env
            .driver
            .download_outputs(&prediction, dir.path())
            .expect("download_outputs");
        done.store(true, Ordering::Release);
        watcher.join().expect("watcher");

        let expected: Vec<String> = (0..FILES).map(|i| format!("out-{i}.bin")).collect();
        assert_eq!(file_names(&paths), expected, "output i is out-i.bin");
        for (i, path) in paths.iter().enumerate() {
            assert_eq!(path.parent(), Some(dir.path()));
            assert_file(path, SyntheticFile::new(100 + i as u64, BYTES));
        }
        assert_eq!(list_dir(dir.path()), expected, "no .part file left");
        let most = most.load(Ordering::Acquire);
        assert!(
            most >= 2,
            "the downloads overlapped: at most {most} connections open"
        );

        // Again into the same directory: nothing is replaced, and the new names are as
        // deterministic as the first ones.
        let again = env
            .driver
            .download_outputs(&prediction, dir.path())
            .expect("download_outputs again");
        let renamed: Vec<String> = (0..FILES).map(|i| format!("out-{i}-1.bin")).collect();
        assert_eq!(file_names(&again), renamed);
        for (i, path) in paths.iter().chain(&again).enumerate() {
            assert_file(path, SyntheticFile::new(100 + (i % FILES) as u64, BYTES));
        }
        assert_eq!(list_dir(dir.path()).len(), 2 * FILES);
    }
);

scenario!(download_outputs_one_at_a_time, |env| {
    env.rebuild(|s| s.download_concurrency = Some(1));
    let (prediction, _) = large_files(&env, 3, 100_000, 7);
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = env
        .driver
        .download_outputs(&prediction, dir.path())
        .expect("download_outputs");
    assert_eq!(file_names(&paths), ["out-0.bin", "out-1.bin", "out-2.bin"]);
    for (i, path) in paths.iter().enumerate() {
        assert_file(path, SyntheticFile::new(7 + i as u64, 100_000));
    }
});

scenario!(
    an_error_stops_the_other_downloads,
    // 4 MiB at 64 KiB/s: a download takes 64 s, so the others are in flight when output 2
    // fails, and one that went on would keep its connection open for a minute: the wait below
    // is a guard against a hang, far from anything the test depends on.
    paced(64 << 10),
    |env| {
        const FILES: usize = 6;
        const BYTES: u64 = 4 << 20;
        let (prediction, _) = large_files(&env, FILES, BYTES, 200);
        // The client that ran the prediction goes, with its pooled connection.
        let settings = Settings {
            download_concurrency: None,
            ..env.settings.clone()
        };
        env.rebuild(|_| {});
        wait_for_no_connection(&env);

        env.fake.push_fault(
            FaultRule::new(
                Matcher::new("GET", "/out-2.bin").origin(Origin::Files),
                Fault::status(404),
            )
            .times(10),
        );
        let client = driver(env.which(), &settings);
        let dir = tempfile::tempdir().expect("tempdir");
        let e = client
            .download_outputs(&prediction, dir.path())
            .expect_err("output 2 is gone");
        assert!(
            matches!(&e, Error::Output(o) if o.kind == OutputErrorKind::Expired),
            "{e:?}"
        );
        // Nothing is left: no .part file, and no output was complete (each takes 64 s, output 2
        // failed at once): the others were stopped, not waited for.
        let left = list_dir(dir.path());
        assert!(left.is_empty(), "{left:?}");
        // The other downloads stopped: their connections close while the client lives on
        // (at most one idle connection stays in its pool), long before a download would have
        // ended. The async client's runtime is run meanwhile (its connection tasks close the
        // sockets), and has no task left but hyper's pool's: one per connection, and the one
        // that closes idle connections. The blocking client's threads were scoped.
        let deadline = Instant::now() + Duration::from_secs(30);
        let tasks = loop {
            let tasks = client.background_tasks();
            let open = env.fake.open_connections();
            if open <= 1 {
                break tasks;
            }
            assert!(
                Instant::now() < deadline,
                "{open} connections still open: a download goes on"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let open = env.fake.open_connections();
        assert!(
            tasks <= open + 1,
            "{tasks} tasks alive for {open} connections"
        );
        drop(client);
        wait_for_no_connection(&env);
    }
);

scenario!(an_error_keeps_the_outputs_before_it, |env| {
    // Output 3 fails (500 on every attempt, after retries); the others are small and quick.
    // What stays is outputs 0 to k - 1, named as a successful call names them; an output saved
    // ahead of one that did not complete goes with the temporary files.
    const FILES: usize = 4;
    const BYTES: u64 = 100_000;
    env.rebuild(|s| s.download_concurrency = None);
    let (prediction, _) = large_files(&env, FILES, BYTES, 300);
    env.fake.push_fault(
        FaultRule::new(
            Matcher::new("GET", "/out-3.bin").origin(Origin::Files),
            Fault::status(500),
        )
        .times(100),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let e = env
        .driver
        .download_outputs(&prediction, dir.path())
        .expect_err("output 3 fails");
    assert!(matches!(&e, Error::Api(a) if a.status == 500), "{e:?}");
    let left = list_dir(dir.path());
    let prefix: Vec<String> = (0..left.len()).map(|i| format!("out-{i}.bin")).collect();
    assert_eq!(left, prefix, "outputs 0 to k - 1, and no .part file");
    assert!(left.len() < FILES);
    for (i, name) in left.iter().enumerate() {
        assert_file(
            &dir.path().join(name),
            SyntheticFile::new(300 + i as u64, BYTES),
        );
    }
});

/// Waits until the fake has no connection open (a few seconds at most).
fn wait_for_no_connection(env: &Env) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while env.fake.open_connections() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} connections still open: a download goes on",
            env.fake.open_connections()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_async_methods_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let c = replicate_reqwest::Client::new("r8_x").expect("client");
    let p: Prediction =
        serde_json::from_value(json!({"id": "p", "status": "succeeded"})).expect("prediction");
    let mut sink = Vec::new();
    assert_send(&c.download_to("https://example.com/x", &mut sink));
    assert_send(&c.open_output("https://example.com/x"));
    assert_send(&c.download_outputs(&p, Path::new("out")));
    fn assert_stream<S: futures_util::Stream + Send + Unpin>() {}
    assert_stream::<replicate_reqwest::OutputStream>();
}

// ----------------------------------------------------------------------------------------------
// Resumed and verified
// ----------------------------------------------------------------------------------------------

/// A client that checks content-hash ETags (the fake's are the SHA-256 of each file) and saves
/// four files at once.
fn verifying(which: replicate_tests::Which) -> Env {
    Env::with(which, fast_options(), |_, s| {
        s.verify_etag_sha256 = true;
        s.download_concurrency = Some(4);
    })
}

/// The `Range` headers of the requests for `file` on the files origin, in order.
fn ranges(env: &Env, file: &str) -> Vec<Option<String>> {
    env.fake
        .requests()
        .into_iter()
        .filter(|r| r.origin == Origin::Files && r.path.ends_with(file))
        .map(|r| {
            r.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("range"))
                .map(|(_, v)| v.clone())
        })
        .collect()
}

fn resumed_and_verified(which: replicate_tests::Which) {
    const BYTES: u64 = 3 << 20;
    let env = verifying(which);
    let (prediction, urls) = large_files(&env, 1, BYTES, 51);
    let file = SyntheticFile::new(51, BYTES);

    // Cut once after 1 MiB: the next request asks for the rest only, and the file is whole.
    cut(&env, "/out-0.bin", 1 << 20, 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = env
        .driver
        .download_outputs(&prediction, dir.path())
        .expect("download_outputs");
    assert_file(&paths[0], file);
    assert_eq!(
        ranges(&env, "/out-0.bin"),
        [None, Some(format!("bytes={}-", 1 << 20))],
        "resumed where the cut left it"
    );

    // One byte changed on the way: refused with a typed error, and no file is left, not even
    // the partial one.
    for _ in 0..2 {
        env.fake.push_fault(FaultRule::new(
            Matcher::new("GET", "/out-0.bin").origin(Origin::Files),
            Fault::Corrupt(12_345),
        ));
    }
    let bad = tempfile::tempdir().expect("tempdir");
    let e = env
        .driver
        .download_outputs(&prediction, bad.path())
        .expect_err("a corrupt file");
    assert!(
        matches!(&e, Error::Output(o) if o.kind == OutputErrorKind::ChecksumMismatch),
        "{e:?}"
    );
    assert!(
        list_dir(bad.path()).is_empty(),
        "{:?}",
        list_dir(bad.path())
    );

    // The same through a writer.
    let mut sink = Vec::new();
    let e = env
        .driver
        .download_to(&urls[0], &mut sink)
        .expect_err("a corrupt body");
    assert!(
        matches!(&e, Error::Output(o) if o.kind == OutputErrorKind::ChecksumMismatch),
        "{e:?}"
    );
}

#[test]
fn a_cut_download_resumes_with_range_and_a_corrupt_one_is_refused_ureq() {
    resumed_and_verified(replicate_tests::Which::Ureq);
}

#[test]
fn a_cut_download_resumes_with_range_and_a_corrupt_one_is_refused_reqwest() {
    resumed_and_verified(replicate_tests::Which::Reqwest);
}
