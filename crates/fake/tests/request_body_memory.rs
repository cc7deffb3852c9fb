//! Large bodies sent to routes that reject them (unknown paths, unauthenticated requests) are
//! neither buffered nor logged: the server's memory stays flat. (Alone in its own test binary so
//! that nothing else moves the process's resident set while it measures.)
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{fast, split_url, start};

/// The resident set of this process, in bytes (Linux).
fn rss_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// POSTs `len` bytes in 1 MiB writes (never holding the body in memory here) and returns the
/// status.
fn post_streamed(host: &str, target: &str, auth: Option<&str>, len: usize) -> u16 {
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    let chunk = vec![b'a'; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len());
        s.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let text = String::from_utf8_lossy(&resp);
    text.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn rejected_large_bodies_are_not_kept_in_memory() {
    let Some(before) = rss_bytes() else {
        return; // Not Linux: nothing to measure.
    };
    let s = start(fast());
    let (host, _) = split_url(&s.base_url());
    let auth = format!("Bearer {}", s.token());
    let len = 40 << 20;
    for _ in 0..3 {
        assert_eq!(post_streamed(&host, "/unknown/path", None, len), 404);
        assert_eq!(
            post_streamed(&host, "/v1/predictions", Some("Bearer wrong"), len),
            401
        );
    }
    assert_eq!(
        post_streamed(&host, "/v1/no/such/route", Some(&auth), len),
        404
    );
    let after = rss_bytes().unwrap();
    let grown = after.saturating_sub(before);
    // 280 MiB went in; the old server kept every byte of it in its request log.
    assert!(grown < 64 << 20, "resident set grew by {} MiB", grown >> 20);
    let reqs = s.requests();
    assert_eq!(reqs.len(), 7);
    assert!(reqs.iter().all(|r| r.body.len() <= 64 * 1024));
    assert!(reqs.iter().all(|r| r.body_len == len));
}
