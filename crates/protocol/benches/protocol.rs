//! Micro-benchmarks of the sans-IO protocol core: parsing a prediction, building a create
//! request, decoding a server-sent events stream and verifying a webhook.
//!
//! Run with `cargo bench -p replicate-protocol`; CI only builds them (`cargo bench --no-run`).
//! `BENCHMARKS.md` at the top of the workspace records the figures.

use std::hint::black_box;

use base64::Engine as _;
use criterion::{BatchSize, Criterion, Throughput, criterion_main};
use hmac::{Hmac, Mac};
use replicate_protocol::sse::{Decoder, ReplicateEvent};
use replicate_protocol::webhook::{WebhookHeaders, WebhookSecret, verify};
use replicate_protocol::{
    Config, CreatePrediction, Endpoint, Prediction, SyncWait, Target, parse_prediction,
};
use serde_json::Value;

/// The seed's `GET /v1/predictions/{id}` answer for a succeeded flux-schnell prediction.
const GET_RESPONSE: &[u8] = include_bytes!("../../../fixtures/seed/get_response.json");
/// The seed's create-by-model request body (its `input` is what the create benchmark sends).
const CREATE_REQUEST: &[u8] = include_bytes!("../../../fixtures/seed/create_by_model_request.json");

/// The Standard Webhooks public test vector.
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WEBHOOK_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const WEBHOOK_TIMESTAMP: &str = "1614265330";
const WEBHOOK_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
const WEBHOOK_BODY: &[u8] = br#"{"test": 2432232314}"#;

/// Size of the generated token stream.
const STREAM_BYTES: usize = 1 << 20;
/// The read size a client typically gets from a socket when a stream is backed up.
const CHUNK_BYTES: usize = 16 * 1024;

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Bytes(GET_RESPONSE.len() as u64));
    let response = http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(GET_RESPONSE.to_vec())
        .expect("response");
    // What every client does with a `GET /v1/predictions/{id}` answer.
    g.bench_function("get_response_typed", |b| {
        b.iter(|| parse_prediction(black_box(&response)).expect("parses"))
    });
    // Baseline: the same bytes into an untyped value.
    g.bench_function("get_response_value", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(GET_RESPONSE)).expect("parses"))
    });
    // The typed parse without the status check and error mapping of `parse_prediction`.
    g.bench_function("get_response_serde_typed", |b| {
        b.iter(|| serde_json::from_slice::<Prediction>(black_box(GET_RESPONSE)).expect("parses"))
    });
    g.finish();
}

fn create(c: &mut Criterion) {
    let mut g = c.benchmark_group("create");
    let cfg = Config::new("r8_0123456789abcdefghijklmnopqrstuvwxyzABCD");
    let body: Value = serde_json::from_slice(CREATE_REQUEST).expect("seed request");
    let input = body.get("input").cloned().expect("seed input");
    let target: Target = "black-forest-labs/flux-schnell".parse().expect("target");
    let create = CreatePrediction::new(target)
        .input(input.clone())
        .sync(SyncWait::Max);
    // Building the request from a ready `CreatePrediction` (what `run` does once per call).
    g.bench_function("build_request", |b| {
        b.iter(|| {
            black_box(&create)
                .request(black_box(&cfg))
                .expect("request")
        })
    });
    // Parsing the target and building the create from an input value too, as `Client::run` does.
    g.bench_function("parse_target_and_build", |b| {
        b.iter_batched(
            || input.clone(),
            |input| {
                let target =
                    Target::parse(black_box("black-forest-labs/flux-schnell")).expect("target");
                CreatePrediction::new(target)
                    .input(input)
                    .sync(SyncWait::Max)
                    .request(&cfg)
                    .expect("request")
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// A language model's token stream: `output` events with `<unix>:<n>` ids, a `logs` event every
/// 500 tokens, and a final `done`, about `STREAM_BYTES` long.
fn token_stream() -> (Vec<u8>, usize) {
    const WORDS: &[&str] = &[
        " the",
        " model",
        " answered",
        " with",
        " a",
        " long",
        ",",
        " detailed",
        " reply",
        ".",
        " It",
        " streams",
        " tokens",
        " one",
        " by",
        " one",
        " over",
        " server-sent",
        " events",
        "\u{e9}t\u{e9}",
        " \u{1f600}",
    ];
    let mut out = Vec::with_capacity(STREAM_BYTES + 256);
    out.extend_from_slice(b": hi\n\n");
    let mut n = 0usize;
    while out.len() < STREAM_BYTES {
        let word = WORDS.get(n % WORDS.len()).copied().unwrap_or(" x");
        out.extend_from_slice(
            format!("event: output\nid: 1700000000:{n}\ndata: {word}\n\n").as_bytes(),
        );
        n += 1;
        if n.is_multiple_of(500) {
            out.extend_from_slice(
                format!("event: logs\nid: 1700000000:{n}\ndata: generated {n} tokens\n\n")
                    .as_bytes(),
            );
            n += 1;
        }
    }
    out.extend_from_slice(format!("event: done\nid: 1700000000:{n}\ndata: {{}}\n\n").as_bytes());
    (out, n + 1)
}

/// Splits the stream after each event (the common case on a live stream: one event per read).
fn per_event_chunks(stream: &[u8]) -> Vec<&[u8]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 1 < stream.len() {
        if stream.get(i..i + 2) == Some(b"\n\n") {
            chunks.push(stream.get(start..i + 2).unwrap_or_default());
            start = i + 2;
            i += 2;
        } else {
            i += 1;
        }
    }
    if start < stream.len() {
        chunks.push(stream.get(start..).unwrap_or_default());
    }
    chunks
}

fn sse(c: &mut Criterion) {
    let (stream, events) = token_stream();
    let per_event = per_event_chunks(&stream);
    let mut g = c.benchmark_group("sse");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.sample_size(30);
    g.bench_function("decode_whole", |b| {
        b.iter(|| {
            let mut d = Decoder::new();
            d.feed(black_box(&stream));
            let n = d.events().count();
            assert_eq!(n, events);
            n
        })
    });
    g.bench_function("decode_16k_chunks", |b| {
        b.iter(|| {
            let mut d = Decoder::new();
            let mut n = 0;
            for chunk in black_box(&stream).chunks(CHUNK_BYTES) {
                d.feed(chunk);
                n += d.events().count();
            }
            assert_eq!(n, events);
            n
        })
    });
    // One read per event, each turned into a typed event: what a client following a live
    // stream does.
    g.bench_function("replicate_events_per_event_chunks", |b| {
        b.iter(|| {
            let mut d = Decoder::new();
            let mut text = 0usize;
            for chunk in black_box(&per_event) {
                d.feed(chunk);
                while let Some(event) = d.next_event() {
                    if let ReplicateEvent::Output(s) =
                        ReplicateEvent::from_event(event.expect("event"))
                    {
                        text += s.len();
                    }
                }
            }
            text
        })
    });
    g.finish();
}

fn webhook(c: &mut Criterion) {
    let mut g = c.benchmark_group("webhook");
    let secret: WebhookSecret = WEBHOOK_SECRET.parse().expect("secret");
    let headers = WebhookHeaders::new(WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE);
    let now = 1_614_265_330;
    g.bench_function("verify_test_vector", |b| {
        b.iter(|| {
            verify(
                black_box(&secret),
                black_box(&headers),
                black_box(WEBHOOK_BODY),
                now,
            )
            .expect("valid")
        })
    });
    // A realistic delivery: the seed prediction as the body.
    let key = base64::engine::general_purpose::STANDARD
        .decode(WEBHOOK_SECRET.trim_start_matches("whsec_"))
        .expect("key");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("hmac");
    mac.update(format!("{WEBHOOK_ID}.{WEBHOOK_TIMESTAMP}.").as_bytes());
    mac.update(GET_RESPONSE);
    let signature = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    let headers = WebhookHeaders::new(WEBHOOK_ID, WEBHOOK_TIMESTAMP, &signature);
    g.throughput(Throughput::Bytes(GET_RESPONSE.len() as u64));
    g.bench_function("verify_prediction_body", |b| {
        b.iter(|| {
            verify(
                black_box(&secret),
                black_box(&headers),
                black_box(GET_RESPONSE),
                now,
            )
            .expect("valid")
        })
    });
    g.finish();
}

/// The benchmark group (the macro's function has no doc comment of its own).
mod group {
    #![allow(missing_docs)]
    use super::{create, parse, sse, webhook};
    criterion::criterion_group!(benches, parse, create, sse, webhook);
}
criterion_main!(group::benches);
