//! A transport of your own: `replicate-protocol` driven by hand over a plain `std::net::TcpStream`
//! speaking HTTP/1.1, against the bundled fake server. No HTTP library at all.
//!
//! ```sh
//! cargo run -p replicate-tests --example custom_transport
//! ```
//!
//! The whole integration is the `loop` in `main`: ask the flow for a step, perform it, feed the
//! result back. Retries, polling intervals, deadlines and the create-once rule all come from the
//! protocol crate.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use replicate_fake::BlockingFakeServer;
use replicate_protocol::{
    Config, CreatePrediction, Flow, PollPolicy, Run, Step, Target, TransportError,
    TransportErrorKind, WaitOptions,
};
use serde_json::json;

/// Sends one request over a fresh connection and reads a `Content-Length` response.
fn send(req: &http::Request<Vec<u8>>) -> Result<http::Response<Vec<u8>>, TransportError> {
    let io = |kind| move |e: std::io::Error| TransportError::new(kind, e.to_string());
    let uri = req.uri();
    let host = uri.host().unwrap_or("127.0.0.1");
    let port = uri.port_u16().unwrap_or(80);
    // Failing to connect means the request never left: the protocol may retry even a create.
    let mut stream = TcpStream::connect((host, port)).map_err(io(TransportErrorKind::Connect))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(70)))
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
    let mut run = Run::new(cfg, create, opts);

    let prediction = loop {
        match run.poll(Instant::now()) {
            Step::Send(out) => {
                println!("-> {} {}", out.request.method(), out.request.uri());
                match send(&out.request) {
                    Ok(resp) => run.handle_response(resp, Instant::now()),
                    Err(err) => run.handle_error(err, Instant::now()),
                }
            }
            Step::Sleep(until) => {
                std::thread::sleep(until.saturating_duration_since(Instant::now()))
            }
            Step::Done(result) => break result?,
        }
    };
    println!(
        "{} {}: {:?}",
        prediction.id,
        prediction.status,
        prediction.output_urls()
    );
    Ok(())
}
