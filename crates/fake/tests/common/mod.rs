//! A tiny blocking HTTP/1.1 client over `std::net::TcpStream`, for the fake's own tests.
#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use replicate_fake::{BlockingFakeServer, Options};
use serde_json::Value;

/// Options for fast tests.
pub fn fast() -> Options {
    Options {
        tick: Duration::from_millis(10),
        ..Options::default()
    }
}

pub fn start(opts: Options) -> BlockingFakeServer {
    BlockingFakeServer::start_with(opts).expect("start fake server")
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Splits `http://host:port/path...` into (`host:port`, `/path...`).
pub fn split_url(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    match rest.find('/') {
        Some(i) => (rest[..i].to_owned(), rest[i..].to_owned()),
        None => (rest.to_owned(), "/".to_owned()),
    }
}

/// One keep-alive connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
    host: String,
}

impl Conn {
    pub fn open(host: &str) -> io::Result<Conn> {
        let s = TcpStream::connect(host)?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        s.set_nodelay(true)?;
        Ok(Conn {
            reader: BufReader::new(s),
            host: host.to_owned(),
        })
    }

    /// The socket, once everything the server sent so far was read (anything still buffered
    /// is lost).
    pub fn into_stream(self) -> TcpStream {
        self.reader.into_inner()
    }

    pub fn write_request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<()> {
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let s = self.reader.get_mut();
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        s.flush()
    }

    /// Reads the status line and headers.
    pub fn read_head(&mut self) -> io::Result<(u16, Vec<(String, String)>)> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no response"));
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let mut l = String::new();
            if self.reader.read_line(&mut l)? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "eof in head"));
            }
            let l = l.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((n, v)) = l.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        Ok((status, headers))
    }

    /// Reads the next chunk of a chunked body; `Ok(None)` at the terminating chunk.
    pub fn read_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut size_line = String::new();
        if self.reader.read_line(&mut size_line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "eof in chunked body",
            ));
        }
        let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| io::Error::other(format!("bad chunk size {size_line:?}")))?;
        if size == 0 {
            let mut crlf = String::new();
            self.reader.read_line(&mut crlf)?;
            return Ok(None);
        }
        let mut data = vec![0; size];
        self.reader.read_exact(&mut data)?;
        let mut crlf = [0u8; 2];
        self.reader.read_exact(&mut crlf)?;
        Ok(Some(data))
    }

    pub fn read_body(
        &mut self,
        method: &str,
        status: u16,
        headers: &[(String, String)],
    ) -> io::Result<Vec<u8>> {
        let h = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        if method == "HEAD" || status == 204 || status == 304 {
            return Ok(Vec::new());
        }
        if h("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            let mut body = Vec::new();
            while let Some(c) = self.read_chunk()? {
                body.extend_from_slice(&c);
            }
            return Ok(body);
        }
        if let Some(len) = h("content-length").and_then(|v| v.parse::<usize>().ok()) {
            let mut body = vec![0; len];
            self.reader.read_exact(&mut body)?;
            return Ok(body);
        }
        let mut body = Vec::new();
        self.reader.read_to_end(&mut body)?;
        Ok(body)
    }

    /// Reads up to `len` body bytes, in pieces handed to `f` (constant memory); returns how many
    /// came before the connection ended (an EOF or a reset ends it quietly).
    pub fn stream_body(&mut self, len: u64, mut f: impl FnMut(&[u8])) -> io::Result<u64> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0u64;
        while got < len {
            let want = usize::try_from(len - got)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            match self.reader.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => {
                    f(&buf[..n]);
                    got += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }

    pub fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Resp> {
        self.write_request(method, target, headers, body)?;
        let (status, headers) = self.read_head()?;
        let body = self.read_body(method, status, &headers)?;
        Ok(Resp {
            status,
            headers,
            body,
        })
    }
}

/// Sends one request to an absolute URL on a fresh connection.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> io::Result<Resp> {
    let (host, target) = split_url(url);
    Conn::open(&host)?.send(method, &target, headers, body)
}

/// Sends `GET url` (plus `headers`) with `Connection: close`, and reads the head and whatever
/// body arrives until the server closes (or resets) the connection, however short of its
/// `Content-Length`.
pub fn get_to_close(url: &str, headers: &[(&str, &str)]) -> io::Result<Resp> {
    let (host, target) = split_url(url);
    let mut conn = Conn::open(&host)?;
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    all.push(("Connection", "close"));
    conn.write_request("GET", &target, &all, b"")?;
    let (status, headers) = conn.read_head()?;
    let mut body = Vec::new();
    conn.stream_body(u64::MAX, |b| body.extend_from_slice(b))?;
    Ok(Resp {
        status,
        headers,
        body,
    })
}

/// An authenticated API client for a base URL.
pub struct Api {
    pub base: String,
    pub token: String,
}

impl Api {
    pub fn new(server: &BlockingFakeServer) -> Api {
        Api {
            base: server.base_url(),
            token: server.token().to_owned(),
        }
    }

    pub fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    pub fn get(&self, path: &str) -> Resp {
        let auth = self.auth();
        request(
            "GET",
            &format!("{}{path}", self.base),
            &[("Authorization", &auth)],
            b"",
        )
        .unwrap()
    }

    pub fn post(&self, path: &str, body: &Value) -> Resp {
        self.post_with(path, body, &[])
    }

    pub fn post_with(&self, path: &str, body: &Value, extra: &[(&str, &str)]) -> Resp {
        let auth = self.auth();
        let mut headers = vec![
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        headers.extend_from_slice(extra);
        let bytes = serde_json::to_vec(body).unwrap();
        request("POST", &format!("{}{path}", self.base), &headers, &bytes).unwrap()
    }

    /// Creates a prediction of `model` with a small input; returns the JSON.
    pub fn create(&self, model: &str) -> Value {
        let r = self.post(
            &format!("/v1/models/{model}/predictions"),
            &serde_json::json!({"input": {"prompt": "hi"}}),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()
    }

    /// Polls a prediction until it is terminal (or panics after `limit`).
    pub fn wait(&self, id: &str, limit: Duration) -> Value {
        let until = Instant::now() + limit;
        loop {
            let p = self.get(&format!("/v1/predictions/{id}")).json();
            let s = p["status"].as_str().unwrap_or("").to_owned();
            if ["succeeded", "failed", "canceled", "aborted"].contains(&s.as_str()) {
                return p;
            }
            assert!(Instant::now() < until, "still {s} after {limit:?}: {p}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Whether `s` looks like `2025-01-15T10:03:40.584470194Z` with `digits` fractional digits.
pub fn is_rfc3339(s: &str, digits: usize) -> bool {
    let b = s.as_bytes();
    b.len() == 21 + digits
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'.'
        && s.ends_with('Z')
        && b[20..20 + digits].iter().all(u8::is_ascii_digit)
}
