//! The SSE decoder: the events (and errors) produced never depend on how the stream is cut into
//! chunks. Each input is decoded whole, cut at fuzzer-chosen points, cut pseudo-randomly (with
//! empty chunks), and one byte at a time; all four sequences, and the final `last_event_id` and
//! `retry`, must be equal. The events are then mapped to `ReplicateEvent`s.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use replicate_protocol::sse::{Decoder, Event, Limits, ReplicateEvent, SseError};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// Small limits (line, event), to reach the over-limit paths; `None` for the defaults.
    limits: Option<(u8, u16)>,
    /// Seed of the pseudo-random chunking (0: no pseudo-random chunking).
    seed: u32,
    /// Cut points (taken modulo the length + 1, in any order, duplicates allowed).
    cuts: Vec<u16>,
    /// The stream.
    bytes: &'a [u8],
}

type Outcome = (Vec<Result<Event, SseError>>, Option<String>, Option<u64>);

fn decode<'a>(limits: Limits, chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut d = Decoder::with_limits(limits);
    let mut out = Vec::new();
    for chunk in chunks {
        d.feed(chunk);
        out.extend(d.events());
    }
    d.finish();
    out.extend(d.events());
    (out, d.last_event_id().map(str::to_owned), d.retry())
}

fn split_at<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts = cuts.to_vec();
    cuts.sort_unstable();
    let mut chunks = Vec::with_capacity(cuts.len() + 1);
    let mut from = 0;
    for cut in cuts {
        chunks.push(&bytes[from..cut]);
        from = cut;
    }
    chunks.push(&bytes[from..]);
    chunks
}

fuzz_target!(|input: Input<'_>| {
    let Input {
        limits,
        seed,
        cuts,
        bytes,
    } = input;
    let limits = match limits {
        Some((line, event)) => Limits {
            max_line_bytes: usize::from(line),
            max_event_bytes: usize::from(event % 2048),
        },
        None => Limits::DEFAULT,
    };
    let whole = decode(limits, [bytes]);

    let cuts: Vec<usize> = cuts
        .iter()
        .map(|&c| usize::from(c) % (bytes.len() + 1))
        .collect();
    let split = decode(limits, split_at(bytes, &cuts));
    assert_eq!(split, whole, "cut at {cuts:?}");

    if seed != 0 {
        // xorshift32: chunk sizes 0..=7.
        let mut state = seed;
        let mut random_cuts = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            at = (at + (state % 8) as usize).min(bytes.len());
            random_cuts.push(at);
        }
        let random = decode(limits, split_at(bytes, &random_cuts));
        assert_eq!(random, whole, "cut at {random_cuts:?}");
    }

    let bytewise = decode(limits, bytes.chunks(1));
    assert_eq!(bytewise, whole, "fed one byte at a time");

    // What every event must look like, per the event stream rules.
    let (events, last_id, _) = whole;
    if let Some(id) = &last_id {
        assert!(!id.contains('\0'));
    }
    for event in events {
        match event {
            Ok(event) => {
                assert!(!event.event.is_empty());
                assert!(!event.event.contains(['\r', '\n']));
                assert!(!event.data.contains('\r'));
                assert!(event.data.len() <= limits.max_event_bytes);
                if let Some(id) = &event.id {
                    assert!(!id.is_empty() && !id.contains(['\0', '\r', '\n']));
                }
                let data = event.data.clone();
                let kind = event.event.clone();
                match ReplicateEvent::from_event(event) {
                    ReplicateEvent::Output(d) | ReplicateEvent::Logs(d) => assert_eq!(d, data),
                    ReplicateEvent::Error(e) => assert_eq!(e.raw, data),
                    ReplicateEvent::Done(reason) => {
                        if let Some(r) = reason {
                            assert!(!r.as_str().is_empty());
                        }
                    }
                    ReplicateEvent::Other { event, data: d } => {
                        assert_eq!((event, d), (kind, data));
                    }
                }
            }
            Err(SseError::LineTooLong { limit }) => assert_eq!(limit, limits.max_line_bytes),
            Err(SseError::EventTooLarge { limit }) => assert_eq!(limit, limits.max_event_bytes),
            Err(_) => {}
        }
    }
});
