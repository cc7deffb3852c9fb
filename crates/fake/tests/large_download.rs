//! A 256 MiB synthetic output is served whole, in constant memory, and hashes to its `ETag`.
//! (Alone in its test binary: it measures the process's memory.)
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Api, Conn, fast, split_url, start};
use serde_json::json;

/// The resident set size of this process (the server runs in it), in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[test]
fn a_256_mib_output_streams_in_constant_memory_and_matches_its_digest() {
    const LEN: u64 = 256 << 20;
    let s = start(fast());
    let api = Api::new(&s);
    let r = api.post(
        "/v1/models/fake/large-files/predictions",
        &json!({"input": {"output_bytes": LEN, "seed": 2024}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let p = api.wait(r.json()["id"].as_str().unwrap(), Duration::from_secs(20));
    let url = p["output"][0].as_str().unwrap().to_owned();

    let before = rss();
    let (host, target) = split_url(&url);
    let mut conn = Conn::open(&host).unwrap();
    // Generous: the first response waits for the file's digest (a pass over 256 MiB).
    conn.write_request("GET", &target, &[], b"").unwrap();
    let (status, headers) = conn.read_head().unwrap();
    assert_eq!(status, 200);
    let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert_eq!(header("content-length"), Some(LEN.to_string()));
    assert_eq!(header("transfer-encoding"), None);
    let etag = header("etag").unwrap();

    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut peak = before;
    let mut since_sample = 0u64;
    let got = conn
        .stream_body(LEN, |b| {
            ctx.update(b);
            since_sample += b.len() as u64;
            if since_sample >= 8 << 20 {
                since_sample = 0;
                peak = peak.max(rss());
            }
        })
        .unwrap();
    assert_eq!(got, LEN);
    let digest: String = ctx
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(etag, format!("\"{digest}\""));
    let file = s.synthetic_file(&url).unwrap();
    assert_eq!(file.sha256_hex(), digest);

    // The connection is still usable: the body ended where it said.
    let r = conn
        .send("GET", &target, &[("Range", "bytes=-4")], b"")
        .unwrap();
    assert_eq!(r.status, 206);
    assert_eq!(r.body, file.bytes(LEN - 4, 4));

    let growth = peak.saturating_sub(before);
    assert!(
        growth < 64 << 20,
        "the process grew by {} MiB while serving 256 MiB",
        growth >> 20
    );
}
