//! Tests of the server-sent events decoder (`replicate_protocol::sse`).
//!
//! Three kinds of checks: explicit expectations for each rule of the WHATWG
//! "event stream interpretation" algorithm, chunking invariance (the same
//! events however the bytes are cut), and a differential comparison with a
//! slow, non-incremental transcription of the specification (`reference`).

use std::path::PathBuf;

use proptest::prelude::*;
use replicate_protocol::sse::{
    Decoder, DoneReason, Event, Limits, ReplicateEvent, SseError, StreamErrorDetail,
};

type Item = Result<Event, SseError>;

const BOM: &[u8] = b"\xEF\xBB\xBF";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn ev(event: &str, data: &str, id: Option<&str>, retry: Option<u64>) -> Item {
    Ok(Event {
        event: event.to_owned(),
        data: data.to_owned(),
        id: id.map(str::to_owned),
        retry,
    })
}

fn msg(data: &str) -> Item {
    ev("message", data, None, None)
}

/// Feeds the chunks in order, draining after each, then finishes the stream.
fn decode_chunks<'a>(limits: Limits, chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Item> {
    let mut decoder = Decoder::with_limits(limits);
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.feed(chunk);
        out.extend(decoder.events());
    }
    decoder.finish();
    out.extend(decoder.events());
    out
}

fn decode(bytes: &[u8]) -> Vec<Item> {
    decode_chunks(Limits::default(), [bytes])
}

fn decode_with(limits: Limits, bytes: &[u8]) -> Vec<Item> {
    decode_chunks(limits, [bytes])
}

/// Cuts `bytes` at the given positions (clamped, in any order).
fn cut_at(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(bytes.len())).collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for cut in cuts {
        chunks.push(bytes[start..cut].to_vec());
        start = cut;
    }
    chunks.push(bytes[start..].to_vec());
    chunks
}

fn decode_cut(limits: Limits, bytes: &[u8], cuts: &[usize]) -> Vec<Item> {
    let chunks = cut_at(bytes, cuts);
    decode_chunks(limits, chunks.iter().map(Vec::as_slice))
}

fn decode_bytewise(limits: Limits, bytes: &[u8]) -> Vec<Item> {
    decode_chunks(limits, bytes.chunks(1))
}

/// Asserts that every two-chunk split and the byte-at-a-time feed of `bytes`
/// give `expected`.
fn assert_chunking_invariant(limits: Limits, bytes: &[u8], expected: &[Item]) {
    for at in 0..=bytes.len() {
        assert_eq!(
            decode_cut(limits, bytes, &[at]),
            expected,
            "split at {at} of {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    assert_eq!(
        decode_bytewise(limits, bytes),
        expected,
        "byte at a time: {:?}",
        String::from_utf8_lossy(bytes)
    );
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/sse")
}

fn fixture(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every `*.txt` fixture, by name.
fn all_fixtures() -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures/sse exists")
        .map(|entry| {
            entry
                .expect("readable entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".txt"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let bytes = fixture(&name);
            (name, bytes)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Reference: a direct, non-incremental transcription of the specification
// ---------------------------------------------------------------------------

/// What the specification says a stream (or a prefix of one, read so far)
/// produces.
#[derive(Debug, PartialEq)]
struct Reference {
    events: Vec<Item>,
    last_event_id: Option<String>,
    retry: Option<u64>,
}

fn reference(bytes: &[u8]) -> Reference {
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    let text = String::from_utf8_lossy(bytes);

    // Lines terminated by CRLF, LF or CR; an unterminated last line is not a line.
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                lines.push(std::mem::take(&mut line));
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
            }
            '\n' => lines.push(std::mem::take(&mut line)),
            c => line.push(c),
        }
    }

    let mut events = Vec::new();
    let (mut data, mut event_type, mut id_buffer) = (String::new(), String::new(), String::new());
    let mut last_event_id = String::new();
    let mut retry = None;
    for line in lines {
        if line.is_empty() {
            last_event_id = id_buffer.clone();
            if data.is_empty() {
                event_type.clear();
                continue;
            }
            if data.ends_with('\n') {
                data.pop();
            }
            events.push(Ok(Event {
                event: if event_type.is_empty() {
                    "message".to_owned()
                } else {
                    event_type.clone()
                },
                data: std::mem::take(&mut data),
                id: (!last_event_id.is_empty()).then(|| last_event_id.clone()),
                retry,
            }));
            event_type.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (name, value) = match line.find(':') {
            Some(i) => (
                &line[..i],
                line[i + 1..].strip_prefix(' ').unwrap_or(&line[i + 1..]),
            ),
            None => (&line[..], ""),
        };
        match name {
            "event" => event_type = value.to_owned(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => id_buffer = value.to_owned(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(ms) = value.parse() {
                    retry = Some(ms);
                }
            }
            _ => {}
        }
    }
    Reference {
        events,
        last_event_id: (!last_event_id.is_empty()).then_some(last_event_id),
        retry,
    }
}

/// Feeds `bytes` without finishing and reports what the decoder has produced.
fn observe_prefix(decoder: &mut Decoder, bytes: &[u8]) -> Reference {
    decoder.feed(bytes);
    Reference {
        events: decoder.events().collect(),
        last_event_id: decoder.last_event_id().map(str::to_owned),
        retry: decoder.retry(),
    }
}

/// For every prefix of `bytes`, the decoder has emitted exactly what the
/// reference yields for that prefix: nothing early, nothing late.
fn assert_prefixes_match_reference(bytes: &[u8]) {
    let mut decoder = Decoder::new();
    let mut so_far = Reference {
        events: Vec::new(),
        last_event_id: None,
        retry: None,
    };
    for end in 0..=bytes.len() {
        let start = end.saturating_sub(1);
        let step = observe_prefix(&mut decoder, &bytes[start..end]);
        so_far.events.extend(step.events);
        so_far.last_event_id = step.last_event_id;
        so_far.retry = step.retry;
        assert_eq!(
            so_far,
            reference(&bytes[..end]),
            "prefix of {end} bytes of {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

fn tokens_expected() -> Vec<Item> {
    vec![
        ev("output", "Once", Some("1700000000:0"), None),
        ev("output", " upon", Some("1700000000:1"), None),
        ev("output", " a time", Some("1700000000:2"), None),
        ev(
            "logs",
            "Generated 3 tokens in 0.12s",
            Some("1700000000:3"),
            None,
        ),
        ev("done", "{}", Some("1700000000:4"), None),
    ]
}

#[test]
fn fixtures_are_present() {
    let names: Vec<String> = all_fixtures().into_iter().map(|(name, _)| name).collect();
    for expected in [
        "canceled.txt",
        "error.txt",
        "mixed_endings.txt",
        "multiline.txt",
        "tokens.txt",
        "tokens_bom.txt",
        "tokens_cr.txt",
        "tokens_crlf.txt",
        "truncated.txt",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "missing fixture {expected}"
        );
    }
    // The variants really differ in their bytes.
    assert!(fixture("tokens_crlf.txt").windows(2).any(|w| w == b"\r\n"));
    assert!(!fixture("tokens_cr.txt").contains(&b'\n'));
    assert!(fixture("tokens_cr.txt").contains(&b'\r'));
    assert!(fixture("tokens_bom.txt").starts_with(BOM));
    assert!(!fixture("truncated.txt").ends_with(b"\n"));
}

#[test]
fn every_fixture_is_chunking_invariant() {
    let fixtures = all_fixtures();
    assert!(fixtures.len() >= 9);
    for (name, bytes) in fixtures {
        let whole = decode(&bytes);
        assert!(!whole.is_empty(), "{name} yields events");
        assert!(whole.iter().all(Result::is_ok), "{name} has no errors");
        for at in 0..=bytes.len() {
            assert_eq!(
                decode_cut(Limits::default(), &bytes, &[at]),
                whole,
                "{name} split at {at}"
            );
        }
        assert_eq!(
            decode_bytewise(Limits::default(), &bytes),
            whole,
            "{name} byte at a time"
        );
    }
}

#[test]
fn every_fixture_matches_the_reference_at_every_prefix() {
    for (name, bytes) in all_fixtures() {
        assert_eq!(decode(&bytes), reference(&bytes).events, "{name}");
        assert_prefixes_match_reference(&bytes);
    }
}

#[test]
fn fixture_tokens_and_its_variants() {
    let expected = tokens_expected();
    for name in [
        "tokens.txt",
        "tokens_crlf.txt",
        "tokens_cr.txt",
        "tokens_bom.txt",
    ] {
        assert_eq!(decode(&fixture(name)), expected, "{name}");
    }
    let typed: Vec<ReplicateEvent> = expected
        .into_iter()
        .map(|item| ReplicateEvent::from_event(item.expect("event")))
        .collect();
    assert_eq!(
        typed,
        [
            ReplicateEvent::Output("Once".into()),
            ReplicateEvent::Output(" upon".into()),
            ReplicateEvent::Output(" a time".into()),
            ReplicateEvent::Logs("Generated 3 tokens in 0.12s".into()),
            ReplicateEvent::Done(None),
        ]
    );
}

#[test]
fn fixture_tokens_last_event_id() {
    let mut decoder = Decoder::new();
    decoder.feed(&fixture("tokens.txt"));
    decoder.finish();
    assert_eq!(decoder.last_event_id(), Some("1700000000:4"));
    assert_eq!(decoder.retry(), None);
}

#[test]
fn fixture_multiline() {
    let r = Some(3000);
    assert_eq!(
        decode(&fixture("multiline.txt")),
        [
            ev(
                "logs",
                "Loading pipeline components...\n100%|##########| 7/7 [00:02<00:00]",
                Some("1700000001:0"),
                r
            ),
            ev(
                "output",
                "def hello():\n    print(\"héllo, 世界 🦀\")\n\nhello()",
                Some("1700000001:1"),
                r
            ),
            ev(
                "output",
                "https://replicate.delivery/xezq/abc/out-0.webp",
                Some("1700000001:2"),
                r
            ),
            ev(
                "output",
                r#"{"text": "a\nb", "score": 0.5}"#,
                Some("1700000001:3"),
                r
            ),
            ev("start", r#"{"future": true}"#, Some("1700000001:4"), r),
            // The id-only block dispatches nothing, but its id is carried forward.
            ev("done", "{}", Some("1700000001:5"), r),
        ]
    );
}

#[test]
fn fixture_error() {
    let events: Vec<ReplicateEvent> = decode(&fixture("error.txt"))
        .into_iter()
        .map(|item| item.expect("event").into())
        .collect();
    assert_eq!(
        events,
        [
            ReplicateEvent::Output("Partial".into()),
            ReplicateEvent::Error(StreamErrorDetail {
                detail: "CUDA out of memory. Tried to allocate 2.00 GiB".into(),
                raw: r#"{"detail": "CUDA out of memory. Tried to allocate 2.00 GiB"}"#.into(),
            }),
            ReplicateEvent::Done(Some(DoneReason::Error)),
        ]
    );
}

#[test]
fn fixture_canceled() {
    let items = decode(&fixture("canceled.txt"));
    assert_eq!(
        items,
        [
            ev("output", "The", Some("1700000003:0"), None),
            ev("output", " quick", Some("1700000003:1"), None),
            ev(
                "done",
                r#"{"reason": "canceled"}"#,
                Some("1700000003:2"),
                None
            ),
        ]
    );
    let last = items
        .into_iter()
        .last()
        .expect("an event")
        .expect("not an error");
    assert_eq!(
        ReplicateEvent::from_event(last),
        ReplicateEvent::Done(Some(DoneReason::Canceled))
    );
}

#[test]
fn fixture_truncated_discards_the_incomplete_event() {
    let bytes = fixture("truncated.txt");
    assert_eq!(
        decode(&bytes),
        [ev("output", "Hello", Some("1700000004:0"), None)]
    );
    let mut decoder = Decoder::new();
    decoder.feed(&bytes);
    decoder.finish();
    // The id of the incomplete event never became the last event ID.
    assert_eq!(decoder.last_event_id(), Some("1700000004:0"));
}

#[test]
fn fixture_mixed_endings() {
    assert_eq!(
        decode(&fixture("mixed_endings.txt")),
        [
            ev("output", "one", Some("1700000005:0"), None),
            // `id: …\r\r` ends with a blank line: the event type is reset there.
            ev("message", "two", Some("1700000005:1"), None),
            ev("done", "{}", Some("1700000005:2"), None),
        ]
    );
}

// ---------------------------------------------------------------------------
// Byte order mark
// ---------------------------------------------------------------------------

#[test]
fn bom_is_stripped() {
    let stream = [BOM, b"data: x\n\n"].concat();
    assert_eq!(decode(&stream), [msg("x")]);
    assert_chunking_invariant(Limits::default(), &stream, &[msg("x")]);
}

#[test]
fn bom_split_across_chunks() {
    let expected = [msg("x")];
    let chunks: [&[&[u8]]; 4] = [
        &[b"\xEF", b"\xBB\xBFdata: x\n\n"],
        &[b"\xEF", b"\xBB", b"\xBF", b"data: x\n\n"],
        &[b"\xEF\xBB", b"\xBFdata: x\n\n"],
        &[
            b"",
            b"\xEF",
            b"",
            b"\xBB",
            b"",
            b"\xBF",
            b"",
            b"data: x\n\n",
        ],
    ];
    for chunks in chunks {
        assert_eq!(
            decode_chunks(Limits::default(), chunks.iter().copied()),
            expected
        );
    }
}

#[test]
fn bom_only_at_start() {
    // A second BOM makes the first field name "\u{FEFF}data": unknown, ignored.
    assert_eq!(decode(&[BOM, BOM, b"data: x\n\n"].concat()), []);
    // A BOM at the start of a later line is part of its field name.
    assert_eq!(
        decode(&[b"data: a\n\n", BOM, b"data: b\n\n"].concat()),
        [msg("a")]
    );
    // A BOM inside a value is kept.
    assert_eq!(
        decode(&[b"data: ", BOM, b"x\n\n"].concat()),
        [msg("\u{FEFF}x")]
    );
    // A stream that starts with a line ending then a BOM keeps the BOM.
    assert_eq!(decode(&[b"\n", BOM, b"data: x\n\n"].concat()), []);
}

#[test]
fn partial_bom_is_content() {
    // The held-back bytes are replayed as content: the field name becomes
    // "\u{FFFD}data", so nothing is dispatched (dropping them would yield "x").
    for prefix in [&b"\xEF"[..], b"\xEF\xBB"] {
        let stream = [prefix, b"data: x\n\ndata: y\n\n"].concat();
        assert_eq!(decode(&stream), [msg("y")]);
        assert_chunking_invariant(Limits::default(), &stream, &[msg("y")]);
    }
    // A partial BOM followed by a line ending is a line of its own.
    assert_eq!(decode(b"\xEF\xBB\n\ndata: z\n\n"), [msg("z")]);
    // A partial BOM then the end of the stream: nothing.
    assert_eq!(decode(b"\xEF\xBB"), []);
}

#[test]
fn bom_is_stripped_again_after_finish() {
    let mut decoder = Decoder::new();
    decoder.feed(b"\xEF\xBB\xBFdata: a\n\n");
    decoder.finish();
    decoder.feed(b"\xEF");
    decoder.feed(b"\xBB\xBFdata: b\n\n");
    let events: Vec<Item> = decoder.events().collect();
    assert_eq!(events, [msg("a"), msg("b")]);
}

// ---------------------------------------------------------------------------
// Line endings
// ---------------------------------------------------------------------------

#[test]
fn line_endings_crlf_lf_cr() {
    for stream in [
        &b"data: a\r\ndata: b\r\n\r\n"[..],
        b"data: a\ndata: b\n\n",
        b"data: a\rdata: b\r\r",
        b"data: a\rdata: b\n\r\n",
    ] {
        assert_eq!(decode(stream), [msg("a\nb")], "{stream:?}");
        assert_chunking_invariant(Limits::default(), stream, &[msg("a\nb")]);
    }
}

#[test]
fn crlf_split_across_chunks_is_one_line_ending() {
    // Two line endings would make the LF a blank line and dispatch "a" alone.
    let chunks: [&[u8]; 2] = [b"data: a\r", b"\ndata: b\r\n\r\n"];
    assert_eq!(decode_chunks(Limits::default(), chunks), [msg("a\nb")]);
    let chunks: [&[u8]; 4] = [b"data: a\r", b"", b"\n", b"data: b\r\n\r\n"];
    assert_eq!(decode_chunks(Limits::default(), chunks), [msg("a\nb")]);
}

#[test]
fn cr_then_cr_is_a_blank_line() {
    let chunks: [&[u8]; 2] = [b"data: a\r", b"\rdata: b\r\r"];
    assert_eq!(
        decode_chunks(Limits::default(), chunks),
        [msg("a"), msg("b")]
    );
    // LF then CR is two line endings too.
    assert_eq!(decode(b"data: a\n\rdata: b\n\r"), [msg("a"), msg("b")]);
}

#[test]
fn lone_cr_dispatches_without_waiting_for_a_possible_lf() {
    let mut decoder = Decoder::new();
    decoder.feed(b"data: a\r\r");
    assert_eq!(decoder.next_event(), Some(msg("a")));
    decoder.feed(b"\ndata: b\n\n");
    assert_eq!(decoder.next_event(), Some(msg("b")));
    assert_eq!(decoder.next_event(), None);
}

// ---------------------------------------------------------------------------
// Fields
// ---------------------------------------------------------------------------

#[test]
fn data_leading_space_handling() {
    assert_eq!(decode(b"data:x\n\n"), [msg("x")]);
    assert_eq!(decode(b"data: x\n\n"), [msg("x")]);
    assert_eq!(decode(b"data:  x\n\n"), [msg(" x")]);
    assert_eq!(decode(b"data:\tx\n\n"), [msg("\tx")]);
    assert_eq!(decode(b"data: x \n\n"), [msg("x ")]);
    assert_eq!(decode(b"data: a:b: c\n\n"), [msg("a:b: c")]);
}

#[test]
fn multi_line_data() {
    assert_eq!(decode(b"data: a\ndata: b\ndata: c\n\n"), [msg("a\nb\nc")]);
    assert_eq!(decode(b"data: a\ndata:\ndata: b\n\n"), [msg("a\n\nb")]);
    // Only one trailing newline is removed.
    assert_eq!(decode(b"data: a\ndata:\n\n"), [msg("a\n")]);
    assert_eq!(decode(b"data:\ndata:\n\n"), [msg("\n")]);
    // Data lines are not separated by other fields.
    assert_eq!(
        decode(b"data: a\n: note\nevent: e\ndata: b\n\n"),
        [ev("e", "a\nb", None, None)]
    );
}

#[test]
fn empty_data_still_dispatches() {
    assert_eq!(decode(b"data:\n\n"), [msg("")]);
    assert_eq!(decode(b"data\n\n"), [msg("")]);
}

#[test]
fn field_without_colon_has_an_empty_value() {
    assert_eq!(decode(b"data\ndata\n\n"), [msg("\n")]);
    // `event` with no value resets the type to the default.
    assert_eq!(decode(b"event: x\nevent\ndata: d\n\n"), [msg("d")]);
    // `id` with no value resets the last event ID.
    assert_eq!(
        decode(b"id: 1\ndata: a\n\nid\ndata: b\n\n"),
        [ev("message", "a", Some("1"), None), msg("b")]
    );
}

#[test]
fn field_names_are_exact() {
    assert_eq!(
        decode(b"Data: a\ndata : b\n data: c\ndatum: d\ndata: e\n\n"),
        [msg("e")]
    );
    assert_eq!(decode(b"foo: bar\nfoo\n\n"), []);
}

#[test]
fn comments_are_ignored() {
    assert_eq!(decode(b": hi\n\n"), []);
    assert_eq!(decode(b":\n:data: x\n\n"), []);
    assert_eq!(
        decode(b": hi\ndata: a\n: mid\ndata: b\n:\n\n"),
        [msg("a\nb")]
    );
}

#[test]
fn event_type() {
    assert_eq!(
        decode(b"event: output\ndata: x\n\n"),
        [ev("output", "x", None, None)]
    );
    // The last `event` field wins.
    assert_eq!(
        decode(b"event: a\nevent: b\ndata: x\n\n"),
        [ev("b", "x", None, None)]
    );
    // The type is reset after each dispatch.
    assert_eq!(
        decode(b"event: output\ndata: x\n\ndata: y\n\n"),
        [ev("output", "x", None, None), msg("y")]
    );
    // An event-only block dispatches nothing and resets the type.
    assert_eq!(decode(b"event: output\n\ndata: y\n\n"), [msg("y")]);
    assert_eq!(decode(b"event:\ndata: y\n\n"), [msg("y")]);
}

#[test]
fn id_only_block_is_not_dispatched_but_sets_the_last_event_id() {
    let mut decoder = Decoder::new();
    decoder.feed(b"id: 1700000000:7\n");
    // Not yet: the ID takes effect at the blank line.
    assert_eq!(decoder.last_event_id(), None);
    decoder.feed(b"\n");
    assert_eq!(decoder.next_event(), None);
    assert_eq!(decoder.last_event_id(), Some("1700000000:7"));
    decoder.feed(b"data: a\n\ndata: b\n\n");
    let events: Vec<Item> = decoder.events().collect();
    assert_eq!(
        events,
        [
            ev("message", "a", Some("1700000000:7"), None),
            ev("message", "b", Some("1700000000:7"), None),
        ]
    );
}

#[test]
fn id_is_carried_forward_and_replaced() {
    assert_eq!(
        decode(b"id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\nid:\ndata: d\n\n"),
        [
            ev("message", "a", Some("1"), None),
            ev("message", "b", Some("1"), None),
            ev("message", "c", Some("2"), None),
            msg("d"),
        ]
    );
    // The `id` field may come after the data.
    assert_eq!(
        decode(b"data: a\nid: 9\n\n"),
        [ev("message", "a", Some("9"), None)]
    );
    // Only one space after the colon is dropped.
    assert_eq!(
        decode(b"id:  9\ndata: a\n\n"),
        [ev("message", "a", Some(" 9"), None)]
    );
}

#[test]
fn id_with_nul_is_ignored() {
    assert_eq!(
        decode(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\nid: \x00\ndata: c\n\n"),
        [
            ev("message", "a", Some("1"), None),
            ev("message", "b", Some("1"), None),
            ev("message", "c", Some("1"), None),
        ]
    );
}

#[test]
fn retry_with_digits_only() {
    let mut decoder = Decoder::new();
    decoder.feed(b"retry: 1500\n");
    // Takes effect at once, without a blank line.
    assert_eq!(decoder.retry(), Some(1500));
    decoder.feed(b"\ndata: a\n\n");
    assert_eq!(
        decoder.next_event(),
        Some(ev("message", "a", None, Some(1500)))
    );
    for ignored in [
        &b"retry: 15x0\n"[..],
        b"retry: -1\n",
        b"retry: 1.5\n",
        b"retry: +15\n",
        b"retry:  1500\n",
        b"retry: 1500 \n",
        b"retry:\n",
        b"retry\n",
        b"retry: \xEF\xBC\x91\n",
        b"retry: 99999999999999999999999\n",
    ] {
        decoder.feed(ignored);
        assert_eq!(
            decoder.retry(),
            Some(1500),
            "{:?}",
            String::from_utf8_lossy(ignored)
        );
    }
    decoder.feed(b"retry: 0\n");
    assert_eq!(decoder.retry(), Some(0));
    decoder.feed(b"retry:18446744073709551615\ndata: b\n\n");
    assert_eq!(decoder.retry(), Some(u64::MAX));
    assert_eq!(
        decoder.next_event(),
        Some(ev("message", "b", None, Some(u64::MAX)))
    );
}

#[test]
fn retry_in_an_incomplete_event_still_applies() {
    let mut decoder = Decoder::new();
    decoder.feed(b"retry: 250\ndata: x\n");
    decoder.finish();
    assert_eq!(decoder.retry(), Some(250));
    assert_eq!(decoder.next_event(), None);
}

// ---------------------------------------------------------------------------
// Text decoding
// ---------------------------------------------------------------------------

#[test]
fn invalid_utf8_is_replaced() {
    assert_eq!(decode(b"data: a\xFFb\n\n"), [msg("a\u{FFFD}b")]);
    // A truncated sequence is one replacement character.
    assert_eq!(decode(b"data: \xE2\x82\n\n"), [msg("\u{FFFD}")]);
    assert_eq!(decode(b"data: \xE2\x82x\n\n"), [msg("\u{FFFD}x")]);
    // Surrogates and overlong forms are invalid, byte by byte.
    assert_eq!(
        decode(b"data: \xED\xA0\x80\n\n"),
        [msg("\u{FFFD}\u{FFFD}\u{FFFD}")]
    );
    assert_eq!(decode(b"data: \xC0\xAF\n\n"), [msg("\u{FFFD}\u{FFFD}")]);
    assert_eq!(
        decode(b"event: \xFF\ndata: x\n\n"),
        [ev("\u{FFFD}", "x", None, None)]
    );
    assert_eq!(
        decode(b"id: \xFF\ndata: x\n\n"),
        [ev("message", "x", Some("\u{FFFD}"), None)]
    );
    // An invalid field name matches nothing.
    assert_eq!(decode(b"dat\xE1: x\n\n"), []);
    // Each case agrees with decoding the whole stream at once.
    for stream in [
        &b"data: a\xFFb\n\n"[..],
        b"data: \xE2\x82\n\n",
        b"data: \xF0\x9F\xA6\n\xA0\n\n",
    ] {
        assert_eq!(decode(stream), reference(stream).events);
    }
}

#[test]
fn multi_byte_characters_split_across_chunks() {
    let stream = "event: ☃\nid: ünï\ndata: 🦀 é 日本語 \u{10FFFF}\n\n".as_bytes();
    let expected = [ev("☃", "🦀 é 日本語 \u{10FFFF}", Some("ünï"), None)];
    assert_eq!(decode(stream), expected);
    assert_chunking_invariant(Limits::default(), stream, &expected);
}

// ---------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------

fn limits(max_line_bytes: usize, max_event_bytes: usize) -> Limits {
    Limits {
        max_line_bytes,
        max_event_bytes,
    }
}

#[test]
fn default_limits() {
    assert_eq!(Limits::default(), Limits::DEFAULT);
    assert_eq!(Limits::DEFAULT.max_line_bytes, 1 << 20);
    assert_eq!(Limits::DEFAULT.max_event_bytes, 8 << 20);
    assert_eq!(Decoder::new().limits(), Limits::DEFAULT);
    assert_eq!(Decoder::default().limits(), Limits::DEFAULT);
    assert_eq!(Decoder::with_limits(limits(3, 4)).limits(), limits(3, 4));
}

#[test]
fn line_cap() {
    let lim = limits(16, 1024);
    let too_long = Err(SseError::LineTooLong { limit: 16 });
    // Exactly 16 bytes: accepted. 17: rejected, then decoding recovers.
    let stream = b"data: 0123456789\n\ndata: 0123456789a\n\ndata: ok\n\n";
    let expected = [msg("0123456789"), too_long.clone(), msg("ok")];
    assert_eq!(decode_with(lim, stream), expected);
    assert_chunking_invariant(lim, stream, &expected);

    // The event the long line belongs to is dropped, whatever comes after it.
    let stream = b"data: a\ndata: 0123456789abcdef\ndata: b\nevent: x\n\ndata: c\n\n";
    let expected = [too_long.clone(), msg("c")];
    assert_eq!(decode_with(lim, stream), expected);
    assert_chunking_invariant(lim, stream, &expected);

    // A long comment counts too; the line ending (even CRLF) does not.
    let stream = b": 0123456789abcdef\r\ndata: 0123456789\r\n\r\n";
    assert_eq!(decode_with(lim, stream), std::slice::from_ref(&too_long));
    assert_chunking_invariant(lim, stream, std::slice::from_ref(&too_long));

    // The ID of the dropped event still applies, for reconnection.
    let stream = b"id: 5\ndata: 0123456789abcdef\nid: 6\n\ndata: c\n\n";
    let expected = [too_long, ev("message", "c", Some("6"), None)];
    assert_eq!(decode_with(lim, stream), expected);
    assert_chunking_invariant(lim, stream, &expected);
}

#[test]
fn line_cap_bounds_an_endless_line() {
    let mut decoder = Decoder::with_limits(limits(64, 1024));
    decoder.feed(b"data: ");
    let chunk = [b'a'; 1000];
    for _ in 0..10_000 {
        decoder.feed(&chunk);
    }
    // Reported once, as soon as the limit is passed.
    let errors: Vec<Item> = decoder.events().collect();
    assert_eq!(errors, [Err(SseError::LineTooLong { limit: 64 })]);
    decoder.feed(b"\r");
    decoder.feed(b"\n\r\ndata: ok\n\n");
    assert_eq!(decoder.next_event(), Some(msg("ok")));
    assert_eq!(decoder.next_event(), None);
}

#[test]
fn event_cap() {
    let lim = limits(1024, 10);
    let too_large = Err(SseError::EventTooLarge { limit: 10 });
    // "12345\n6789" is 10 bytes: accepted; "12345\n67890" is 11: rejected.
    let stream = b"data: 12345\ndata: 6789\n\ndata: 12345\ndata: 67890\ndata: more\n\ndata: ok\n\n";
    let expected = [msg("12345\n6789"), too_large.clone(), msg("ok")];
    assert_eq!(decode_with(lim, stream), expected);
    assert_chunking_invariant(lim, stream, &expected);

    // The limit counts decoded bytes: three invalid bytes are 9 bytes of U+FFFD, four are 12.
    assert_eq!(
        decode_with(lim, b"data: \xFF\xFF\xFF\n\n"),
        [msg("\u{FFFD}\u{FFFD}\u{FFFD}")]
    );
    assert_eq!(
        decode_with(lim, b"data: \xFF\xFF\xFF\xFF\n\n"),
        std::slice::from_ref(&too_large)
    );

    // Many empty data lines grow the data too.
    let stream = b"data\n".repeat(12);
    assert_eq!(
        decode_with(lim, &[&stream[..], b"\n"].concat()),
        [too_large]
    );
}

#[test]
fn zero_limits_never_panic() {
    let lim = limits(0, 0);
    assert_eq!(decode_with(lim, b"\n\n\r\n"), []);
    assert_eq!(
        decode_with(lim, b"data\n\nx\n"),
        [
            Err(SseError::LineTooLong { limit: 0 }),
            Err(SseError::LineTooLong { limit: 0 })
        ]
    );
}

#[test]
fn errors_display() {
    assert_eq!(
        SseError::LineTooLong { limit: 16 }.to_string(),
        "server-sent events line longer than 16 bytes"
    );
    assert_eq!(
        SseError::EventTooLarge { limit: 10 }.to_string(),
        "server-sent event data larger than 10 bytes"
    );
}

// ---------------------------------------------------------------------------
// End of stream
// ---------------------------------------------------------------------------

#[test]
fn eof_discards_the_incomplete_event() {
    // The final event lacks its blank line.
    assert_eq!(decode(b"data: a\n\ndata: b\n"), [msg("a")]);
    // The final line lacks its ending.
    assert_eq!(decode(b"data: a\n\ndata: b"), [msg("a")]);
    assert_eq!(decode(b"data: a\n\n\n"), [msg("a")]);
    // A trailing CR ends the line: the blank line is complete.
    assert_eq!(decode(b"data: a\r\r"), [msg("a")]);
}

#[test]
fn eof_keeps_the_committed_id_and_queued_events() {
    let mut decoder = Decoder::new();
    decoder.feed(b"id: 1\ndata: a\n\nid: 2\ndata: b\n");
    decoder.finish();
    assert_eq!(decoder.last_event_id(), Some("1"));
    assert_eq!(
        decoder.next_event(),
        Some(ev("message", "a", Some("1"), None))
    );
    assert_eq!(decoder.next_event(), None);

    // A reconnection: the new stream starts afresh, the last event ID is kept.
    decoder.feed(b"data: c\n\n");
    assert_eq!(
        decoder.next_event(),
        Some(ev("message", "c", Some("1"), None))
    );
    // Nothing of the incomplete event survived: no "b" and no type.
    decoder.feed(b"event: x\ndata: q");
    decoder.finish();
    decoder.feed(b"data: d\n\n");
    assert_eq!(
        decoder.next_event(),
        Some(ev("message", "d", Some("1"), None))
    );
}

#[test]
fn finish_forgets_a_pending_cr_and_a_long_line() {
    let mut decoder = Decoder::with_limits(limits(8, 64));
    decoder.feed(b"data: a\r");
    decoder.finish();
    // The LF starts the new stream: a blank line, not the end of a CRLF.
    decoder.feed(b"\ndata: b\n\n");
    assert_eq!(decoder.events().collect::<Vec<_>>(), [msg("b")]);

    decoder.feed(b"data: 0123456789");
    decoder.finish();
    decoder.feed(b"data: c\n\n");
    assert_eq!(
        decoder.events().collect::<Vec<_>>(),
        [Err(SseError::LineTooLong { limit: 8 }), msg("c")]
    );
}

#[test]
fn nothing_is_emitted_before_the_blank_line() {
    let mut decoder = Decoder::new();
    for byte in b"event: output\nid: 1\ndata: x\n" {
        decoder.feed(&[*byte]);
        assert_eq!(decoder.next_event(), None);
    }
    decoder.feed(b"\n");
    assert_eq!(
        decoder.next_event(),
        Some(ev("output", "x", Some("1"), None))
    );
}

#[test]
fn events_iterator_reports_its_length() {
    let mut decoder = Decoder::new();
    decoder.feed(b"data: a\n\ndata: b\n\ndata: c");
    let events = decoder.events();
    assert_eq!(events.len(), 2);
    assert_eq!(events.collect::<Vec<_>>(), [msg("a"), msg("b")]);
    assert_eq!(decoder.events().len(), 0);
}

// ---------------------------------------------------------------------------
// Replicate events
// ---------------------------------------------------------------------------

fn typed(event: &str, data: &str) -> ReplicateEvent {
    ReplicateEvent::from_event(Event {
        event: event.to_owned(),
        data: data.to_owned(),
        id: Some("1700000000:0".to_owned()),
        retry: None,
    })
}

#[test]
fn replicate_output_and_logs() {
    assert_eq!(
        typed("output", " token"),
        ReplicateEvent::Output(" token".into())
    );
    assert_eq!(
        typed("output", "https://replicate.delivery/x.png"),
        ReplicateEvent::Output("https://replicate.delivery/x.png".into())
    );
    assert_eq!(
        typed("output", r#"{"a": 1}"#),
        ReplicateEvent::Output(r#"{"a": 1}"#.into())
    );
    assert_eq!(
        typed("logs", "step 1\nstep 2"),
        ReplicateEvent::Logs("step 1\nstep 2".into())
    );
}

#[test]
fn replicate_error() {
    let error = |detail: &str, raw: &str| {
        ReplicateEvent::Error(StreamErrorDetail {
            detail: detail.into(),
            raw: raw.into(),
        })
    };
    assert_eq!(
        typed("error", r#"{"detail": "boom"}"#),
        error("boom", r#"{"detail": "boom"}"#)
    );
    assert_eq!(
        typed("error", r#"{"detail": "line \"1\"\nline 2", "extra": 1}"#),
        error(
            "line \"1\"\nline 2",
            r#"{"detail": "line \"1\"\nline 2", "extra": 1}"#
        )
    );
    // Not JSON, or JSON without a string `detail`: the raw text is the detail.
    for raw in [
        "prediction failed",
        "",
        r#"{"message": "x"}"#,
        r#"{"detail": 42}"#,
        r#"["boom"]"#,
        "{",
    ] {
        assert_eq!(typed("error", raw), error(raw, raw), "{raw:?}");
    }
}

#[test]
fn replicate_done() {
    assert_eq!(typed("done", "{}"), ReplicateEvent::Done(None));
    assert_eq!(
        typed("done", r#"{"reason": "canceled"}"#),
        ReplicateEvent::Done(Some(DoneReason::Canceled))
    );
    assert_eq!(
        typed("done", r#"{"reason":"error"}"#),
        ReplicateEvent::Done(Some(DoneReason::Error))
    );
    assert_eq!(
        typed("done", r#"{"reason": "timeout", "x": 1}"#),
        ReplicateEvent::Done(Some(DoneReason::Other("timeout".into())))
    );
    for data in [
        "",
        "not json",
        r#"{"reason": null}"#,
        r#"{"reason": ""}"#,
        r#"{"reason": 3}"#,
        r#"["canceled"]"#,
    ] {
        assert_eq!(typed("done", data), ReplicateEvent::Done(None), "{data:?}");
    }
    assert_eq!(DoneReason::Canceled.as_str(), "canceled");
    assert_eq!(DoneReason::Error.as_str(), "error");
    assert_eq!(DoneReason::Other("timeout".into()).as_str(), "timeout");
}

#[test]
fn replicate_unknown_events_are_kept() {
    assert_eq!(
        typed("message", "hi"),
        ReplicateEvent::Other {
            event: "message".into(),
            data: "hi".into()
        }
    );
    assert_eq!(
        typed("Output", "x"),
        ReplicateEvent::Other {
            event: "Output".into(),
            data: "x".into()
        }
    );
    assert_eq!(
        typed("metrics", r#"{"predict_time": 1.5}"#),
        ReplicateEvent::Other {
            event: "metrics".into(),
            data: r#"{"predict_time": 1.5}"#.into()
        }
    );
    let event = Event {
        event: "logs".into(),
        data: "l".into(),
        id: None,
        retry: None,
    };
    assert_eq!(
        ReplicateEvent::from(event),
        ReplicateEvent::Logs("l".into())
    );
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

/// Stream pieces: fields of every kind, line endings, awkward bytes.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    let fixed: Vec<&'static [u8]> = vec![
        b"data: x",
        b"data:x",
        b"data:  y",
        b"data",
        b"data:",
        b"event: output",
        b"event: done",
        b"event:",
        b"event",
        b"id: 1700000000:1",
        b"id: 2",
        b"id",
        b"id: a\x00b",
        b"retry: 1500",
        b"retry: 15x",
        b"retry: 99999999999999999999999",
        b": hi",
        b":",
        b"unknown: v",
        b" data: z",
        "data: é🦀日本".as_bytes(),
        "☃".as_bytes(),
        b"\xFF\xFE",
        b"\xE2\x82",
        b"\xEF\xBB\xBF",
        b"\xEF",
        b"\n",
        b"\n",
        b"\r",
        b"\r\n",
        b"\n\n",
        b"\r\n\r\n",
    ];
    prop_oneof![
        4 => proptest::sample::select(fixed).prop_map(<[u8]>::to_vec),
        1 => any::<u8>().prop_map(|b| vec![b]),
    ]
}

fn stream() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::sample::select(vec![&b""[..], BOM, b"\xEF", b"\xEF\xBB"]),
        proptest::collection::vec(piece(), 0..40),
    )
        .prop_map(|(start, pieces)| [&[start.to_vec()][..], &pieces[..]].concat().concat())
}

/// Arbitrary bytes, biased towards the ones that matter to the parser.
fn noisy_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        1 => any::<u8>(),
        3 => proptest::sample::select(b"\r\n:: dataevntiry0\x00\xEF\xBB\xBF\xFF".to_vec()),
    ];
    proptest::collection::vec(byte, 0..400)
}

fn cuts() -> impl Strategy<Value = Vec<proptest::sample::Index>> {
    proptest::collection::vec(any::<proptest::sample::Index>(), 0..12)
}

fn positions(bytes: &[u8], cuts: &[proptest::sample::Index]) -> Vec<usize> {
    cuts.iter().map(|i| i.index(bytes.len() + 1)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn fixtures_under_arbitrary_chunkings(
        which in any::<proptest::sample::Index>(),
        cuts in cuts(),
    ) {
        let fixtures = all_fixtures();
        let (name, bytes) = &fixtures[which.index(fixtures.len())];
        let whole = decode(bytes);
        let cut = positions(bytes, &cuts);
        prop_assert_eq!(decode_cut(Limits::default(), bytes, &cut), whole, "{} cut at {:?}", name, cut);
    }

    #[test]
    fn generated_streams_under_arbitrary_chunkings(bytes in stream(), cuts in cuts()) {
        let whole = decode(&bytes);
        prop_assert_eq!(&whole, &reference(&bytes).events);
        prop_assert_eq!(decode_cut(Limits::default(), &bytes, &positions(&bytes, &cuts)), whole);
    }

    #[test]
    fn generated_streams_match_the_reference_state(bytes in stream(), cuts in cuts()) {
        // Without `finish`, the decoder's state equals the reference's.
        let mut decoder = Decoder::new();
        let mut seen = Reference { events: Vec::new(), last_event_id: None, retry: None };
        for chunk in cut_at(&bytes, &positions(&bytes, &cuts)) {
            let step = observe_prefix(&mut decoder, &chunk);
            seen.events.extend(step.events);
            seen.last_event_id = step.last_event_id;
            seen.retry = step.retry;
        }
        prop_assert_eq!(seen, reference(&bytes));
    }

    #[test]
    fn small_limits_are_chunking_invariant(
        bytes in stream(),
        cuts in cuts(),
        max_line in 0usize..40,
        max_event in 0usize..60,
    ) {
        let lim = limits(max_line, max_event);
        let whole = decode_with(lim, &bytes);
        prop_assert_eq!(decode_cut(lim, &bytes, &positions(&bytes, &cuts)), whole.clone());
        prop_assert_eq!(decode_bytewise(lim, &bytes), whole.clone());
        for item in whole {
            match item {
                Ok(event) => prop_assert!(event.data.len() <= max_event),
                Err(SseError::LineTooLong { limit }) => prop_assert_eq!(limit, max_line),
                Err(SseError::EventTooLarge { limit }) => prop_assert_eq!(limit, max_event),
                Err(other) => prop_assert!(false, "unexpected error {:?}", other),
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in noisy_bytes(),
        cuts in cuts(),
        max_line in 0usize..64,
        max_event in 0usize..128,
    ) {
        let lim = limits(max_line, max_event);
        let whole = decode_with(lim, &bytes);
        prop_assert_eq!(decode_cut(lim, &bytes, &positions(&bytes, &cuts)), whole);
        // With room enough, the decoder agrees with the specification.
        let big = decode_cut(Limits::default(), &bytes, &positions(&bytes, &cuts));
        prop_assert_eq!(big, reference(&bytes).events);
        // And the typed layer accepts anything.
        for event in decode(&bytes).into_iter().flatten() {
            let _ = ReplicateEvent::from_event(event);
        }
    }
}
