//! A transport of your own: `replicate-protocol` driven by hand over a plain `std::net::TcpStream`
//! speaking HTTP/1.1, against the bundled fake server. No HTTP library at all.
//!
//! ```sh
//! cargo run -p replicate-tests --example custom_transport
//! ```
//!
//! The whole integration is one call: [`replicate_protocol::drive`] with `send` as the
//! transport. It asks the flow for each step, sends, sleeps, feeds the result back; retries,
//! polling intervals, timeouts, deadlines and the create-once rule all come from the protocol
//! crate. The output is then downloaded the same way, with the same transport. CI runs this
//! example.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use replicate_fake::BlockingFakeServer;
use replicate_protocol::{
    Config, CreatePrediction, Download, DownloadItem, PollPolicy, Run, Target, Timeout,
    TransportError, TransportErrorKind, WaitOptions,
};
use serde_json::json;

/// Sends one request over a fresh connection and reads a `Content-Length` response, under the
/// timeout the flow chose.
fn send(
    req: http::Request<Vec<u8>>,
    timeout: Timeout,
) -> Result<http::Response<Vec<u8>>, TransportError> {
    println!("-> {} {}", req.method(), req.uri());
    let io = |kind| move |e: std::io::Error| TransportError::new(kind, e.to_string());
    let uri = req.uri();
    let host = uri.host().unwrap_or("127.0.0.1");
    let port = uri.port_u16().unwrap_or(80);
    // Failing to connect means the request never left: the protocol may retry even a create.
    let mut stream = TcpStream::connect((host, port)).map_err(io(TransportErrorKind::Connect))?;
    stream
        .set_read_timeout(Some(timeout.duration()))
        .map_err(io(TransportErrorKind::Connect))?;

    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut head = format!(
        "{} {path} HTTP/1.1\r\nhost: {host}:{port}\r\nconnection: close\r\n",
        req.method()
    );
    for (name, value) in req.headers() {
        head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap_or("")));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", req.body().len()));
    // From here on, a failure is ambiguous: the server may have acted on the request.
    stream
        .write_all(head.as_bytes())
        .map_err(io(TransportErrorKind::Io))?;
    stream
        .write_all(req.body())
        .map_err(io(TransportErrorKind::Io))?;

    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(io(TransportErrorKind::Io))?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| TransportError::new(TransportErrorKind::Io, "bad status line"))?;
    let mut builder = http::Response::builder().status(status);
    let mut length = 0usize;
    loop {
        line.clear();
        reader
            .read_line(&mut line)
            .map_err(io(TransportErrorKind::Io))?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
            builder = builder.header(name.trim(), value.trim());
        }
    }
    let mut body = vec![0; length.min(32 << 20)];
    reader
        .read_exact(&mut body)
        .map_err(io(TransportErrorKind::Io))?;
    builder
        .body(body)
        .map_err(|e| TransportError::new(TransportErrorKind::Other, e.to_string()))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fake = BlockingFakeServer::start()?;
    let cfg = Config::new(fake.token()).with_base_url(&fake.prefixed_base_url())?;

    let create = CreatePrediction::new(Target::parse("black-forest-labs/flux-schnell")?)
        .input(json!({"prompt": "a lighthouse at dawn", "num_outputs": 1}));
    let opts = WaitOptions {
        poll: PollPolicy::fixed(Duration::from_millis(100)),
        ..WaitOptions::default()
    };
    let run = Run::new(cfg.clone(), create, opts);
    let prediction = replicate_protocol::drive(run, send)?.into_result()?;
    println!(
        "{} {}: {:?}",
        prediction.id,
        prediction.status,
        prediction.output_urls()
    );

    // The output, through the same transport: no token goes to the output host.
    let url = prediction.output_url().ok_or("no output URL")?;
    let mut bytes = Vec::new();
    let download = Download::new(&cfg, url)?;
    let done = replicate_protocol::drive_items(download, send, |item| match item {
        DownloadItem::Chunk(chunk) => bytes.extend_from_slice(&chunk),
        DownloadItem::Restart => bytes.clear(),
    })?;
    assert_eq!(done.bytes, bytes.len() as u64);
    println!(
        "downloaded {} bytes of {:?}",
        bytes.len(),
        done.content_type
    );
    Ok(())
}
