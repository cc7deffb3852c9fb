//! Server-sent events: an incremental `text/event-stream` decoder and the
//! typed events of a Replicate prediction stream.
//!
//! [`Decoder`] follows the WHATWG HTML "event stream interpretation" rules:
//!
//! - a UTF-8 byte order mark at the very start of the stream is skipped, even
//!   when it arrives split across chunks;
//! - lines end with CRLF, a lone LF or a lone CR; a CRLF split across two
//!   chunks is one line ending;
//! - a line starting with `:` is a comment; otherwise the field name runs up to
//!   the first `:` and one space after it is dropped from the value; a line
//!   without `:` is a field name with an empty value; unknown fields are
//!   ignored;
//! - `data` lines are joined with `\n`; `event` sets the event type (default
//!   `message`); `id` sets the last event ID unless it contains a NUL; `retry`
//!   sets the reconnection time when it is made of ASCII digits only;
//! - a blank line dispatches the event, unless no `data` line was seen: then
//!   nothing is emitted, but an `id` in that block still becomes the last event
//!   ID (see [`Decoder::last_event_id`]);
//! - at the end of the stream ([`Decoder::finish`]) any unterminated line and
//!   any event without its closing blank line are discarded.
//!
//! The decoder is sans-IO: feed it bytes with [`Decoder::feed`] in chunks of
//! any size, and drain events with [`Decoder::next_event`] (or the
//! [`Decoder::events`] iterator). The events produced never depend on how the
//! stream was cut into chunks.
//!
//! # Text decoding
//!
//! Invalid UTF-8 is not an error: as in browsers, each line is decoded with
//! replacement, every maximal invalid sequence becoming U+FFFD. Bytes are
//! buffered until a line is complete, so a multi-byte character split across
//! chunks is decoded intact. Decoding a whole line at once gives the same text
//! as decoding the whole stream at once, as the specification does, because
//! line endings and `:` are ASCII.
//!
//! # Memory
//!
//! Memory is bounded by [`Limits`]: an unterminated line is kept up to
//! [`Limits::max_line_bytes`] and an event's data up to
//! [`Limits::max_event_bytes`]. A line or an event over its limit is reported
//! once as [`SseError::LineTooLong`] or [`SseError::EventTooLarge`], at the
//! place in the event sequence where it occurred, and the decoder recovers: the
//! event it belongs to is dropped (its remaining `data` and `event` lines are
//! ignored up to the next blank line) and decoding carries on with the next
//! event. `id` and `retry` lines of the dropped event still take effect, so a
//! reconnection with [`Decoder::last_event_id`] resumes after it instead of
//! receiving it again. Decoded events wait in a queue until drained: drain
//! after each [`Decoder::feed`] to keep that queue short.
//!
//! # Example
//!
//! ```
//! use replicate_protocol::sse::{Decoder, DoneReason, ReplicateEvent};
//!
//! // Chunks may cut lines, line endings and characters anywhere.
//! let chunks: [&[u8]; 3] = [
//!     b": hi\n\nevent: output\nid: 1700000000:0\nda",
//!     b"ta: Hello\r",
//!     b"\n\nevent: done\nid: 1700000000:1\ndata: {\"reason\": \"canceled\"}\n\n",
//! ];
//!
//! let mut decoder = Decoder::new();
//! let mut events = Vec::new();
//! for chunk in chunks {
//!     decoder.feed(chunk);
//!     while let Some(event) = decoder.next_event() {
//!         events.push(ReplicateEvent::from_event(event?));
//!     }
//! }
//! decoder.finish();
//!
//! assert_eq!(
//!     events,
//!     [
//!         ReplicateEvent::Output("Hello".to_owned()),
//!         ReplicateEvent::Done(Some(DoneReason::Canceled)),
//!     ]
//! );
//! // Send this as `Last-Event-ID` when reconnecting.
//! assert_eq!(decoder.last_event_id(), Some("1700000000:1"));
//! # Ok::<(), replicate_protocol::sse::SseError>(())
//! ```

use std::borrow::Cow;
use std::collections::VecDeque;
use std::mem;

/// The UTF-8 encoding of U+FEFF, skipped at the start of a stream.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// The event type of an event without an `event` field.
const DEFAULT_EVENT_TYPE: &str = "message";

/// Size limits that keep a [`Decoder`]'s memory bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// The longest line accepted, in bytes, line ending excluded. Comment
    /// lines count too.
    ///
    /// A longer line yields [`SseError::LineTooLong`].
    pub max_line_bytes: usize,
    /// The largest data of one event accepted, in bytes of decoded UTF-8,
    /// counting the `\n` that join its `data` lines.
    ///
    /// Larger data yields [`SseError::EventTooLarge`].
    pub max_event_bytes: usize,
}

impl Limits {
    /// The default limits: 1 MiB per line, 8 MiB per event.
    pub const DEFAULT: Limits = Limits {
        max_line_bytes: 1 << 20,
        max_event_bytes: 8 << 20,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One dispatched server-sent event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Event {
    /// The event type: the last `event` field of the event, or `message`.
    pub event: String,
    /// The `data` lines of the event joined with `\n`.
    pub data: String,
    /// The last event ID in effect when the event was dispatched: set by this
    /// event's `id` field or carried forward from an earlier one. `None` when
    /// no ID was set or the last one was empty.
    pub id: Option<String>,
    /// The reconnection time in milliseconds in effect when the event was
    /// dispatched: the last valid `retry` field seen so far in the stream.
    pub retry: Option<u64>,
}

/// An error reported by [`Decoder`] in place of an event.
///
/// The decoder recovers from every error: see the [module
/// documentation](self#memory).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SseError {
    /// A line was longer than [`Limits::max_line_bytes`]; it was dropped with
    /// the event it belongs to.
    #[error("server-sent events line longer than {limit} bytes")]
    LineTooLong {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// The data of an event grew over [`Limits::max_event_bytes`]; the event
    /// was dropped.
    #[error("server-sent event data larger than {limit} bytes")]
    EventTooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
}

/// Where the decoder stands with respect to the start of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// At the start: this many bytes of a byte order mark were seen (0 to 2).
    Bom(usize),
    /// Past the start: bytes are stream content.
    Past,
}

/// An incremental, sans-IO decoder of a `text/event-stream` body.
///
/// Feed bytes as they arrive with [`feed`](Self::feed), drain events with
/// [`next_event`](Self::next_event) or [`events`](Self::events), and call
/// [`finish`](Self::finish) when the stream ends. See the [module
/// documentation](self) for the rules followed and an example.
///
/// One decoder can follow a stream across reconnections: after
/// [`finish`](Self::finish) it keeps [`last_event_id`](Self::last_event_id) and
/// [`retry`](Self::retry) and is ready for the bytes of the next connection.
#[derive(Debug, Clone)]
pub struct Decoder {
    limits: Limits,
    start: Start,
    /// The last byte processed was a CR ending a line: skip an LF right after.
    pending_cr: bool,
    /// The start of a line not yet terminated. Never longer than the line limit.
    line: Vec<u8>,
    /// The current line went over the limit: skip bytes up to its end.
    discarding_line: bool,
    /// The data buffer, without its trailing `\n`.
    data: String,
    /// At least one `data` line was seen for the current event.
    has_data: bool,
    /// The event type buffer.
    event_type: String,
    /// The current event went over a limit: ignore its `data` and `event` lines.
    poisoned: bool,
    /// The last event ID buffer: set by `id` lines.
    id_buffer: String,
    /// The last event ID string: the buffer as of the last blank line.
    last_event_id: String,
    /// The reconnection time in milliseconds.
    retry: Option<u64>,
    /// Decoded events and errors, oldest first.
    queue: VecDeque<Result<Event, SseError>>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// Creates a decoder with the [default limits](Limits::DEFAULT).
    pub fn new() -> Self {
        Self::with_limits(Limits::DEFAULT)
    }

    /// Creates a decoder with the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        Self {
            limits,
            start: Start::Bom(0),
            pending_cr: false,
            line: Vec::new(),
            discarding_line: false,
            data: String::new(),
            has_data: false,
            event_type: String::new(),
            poisoned: false,
            id_buffer: String::new(),
            last_event_id: String::new(),
            retry: None,
            queue: VecDeque::new(),
        }
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The last event ID: the value of the last `id` field (without NUL) whose
    /// block was closed by a blank line, whether or not that block dispatched
    /// an event. `None` if no ID was set or the last one was empty.
    ///
    /// Send it as the `Last-Event-ID` header when reconnecting.
    pub fn last_event_id(&self) -> Option<&str> {
        non_empty(&self.last_event_id)
    }

    /// The reconnection time in milliseconds set by the last valid `retry`
    /// field, if any. It takes effect as soon as the field's line is complete.
    ///
    /// A `retry` value that is empty, has anything but ASCII digits, or does not
    /// fit in a `u64` is ignored.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// Feeds the next bytes of the stream.
    ///
    /// Complete events become available from [`next_event`](Self::next_event).
    /// Chunks may be of any size, including empty, and may cut lines, line
    /// endings and UTF-8 characters anywhere.
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut bytes = bytes;
        if let Start::Bom(seen) = self.start {
            let mut matched = seen;
            let mut consumed = 0;
            while let (Some(&expected), Some(&byte)) = (BOM.get(matched), bytes.get(consumed)) {
                if byte != expected {
                    break;
                }
                matched += 1;
                consumed += 1;
            }
            let rest = bytes.get(consumed..).unwrap_or_default();
            if matched == BOM.len() {
                // A whole byte order mark: skip it.
                self.start = Start::Past;
            } else if rest.is_empty() {
                // Still possibly a byte order mark: wait for more bytes.
                self.start = Start::Bom(matched);
                return;
            } else {
                // Not a byte order mark: the bytes held back are content.
                self.start = Start::Past;
                self.process(BOM.get(..matched).unwrap_or_default());
            }
            bytes = rest;
        }
        self.process(bytes);
    }

    /// Takes the next decoded event, or the next error, in stream order.
    ///
    /// Returns `None` when more bytes are needed.
    pub fn next_event(&mut self) -> Option<Result<Event, SseError>> {
        self.queue.pop_front()
    }

    /// An iterator that takes the decoded events and errors, in stream order,
    /// until more bytes are needed.
    pub fn events(&mut self) -> Events<'_> {
        Events { decoder: self }
    }

    /// Marks the end of the stream (the connection closed).
    ///
    /// As the specification requires, an unterminated last line and an event
    /// without its closing blank line are discarded; an `id` seen in that
    /// incomplete event does not become the last event ID. Events already
    /// decoded stay available from [`next_event`](Self::next_event).
    ///
    /// The decoder is then ready for a new stream, such as the body of a
    /// reconnection: [`last_event_id`](Self::last_event_id) and
    /// [`retry`](Self::retry) are kept, and a byte order mark is skipped again
    /// at the start of the next bytes fed.
    pub fn finish(&mut self) {
        self.start = Start::Bom(0);
        self.pending_cr = false;
        self.line.clear();
        self.discarding_line = false;
        self.data.clear();
        self.has_data = false;
        self.event_type.clear();
        self.poisoned = false;
        self.id_buffer.clone_from(&self.last_event_id);
    }

    /// Splits stream content into lines and processes them.
    fn process(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        if rest.is_empty() {
            return;
        }
        if mem::take(&mut self.pending_cr)
            && let Some(after_lf) = rest.strip_prefix(b"\n")
        {
            rest = after_lf;
        }
        if self.discarding_line {
            let Some(end) = find_eol(rest) else {
                return;
            };
            self.discarding_line = false;
            rest = self.skip_eol(rest, end);
        }
        if !self.line.is_empty() {
            let Some(end) = find_eol(rest) else {
                self.buffer_partial_line(rest);
                return;
            };
            let tail = rest.get(..end).unwrap_or_default();
            if self.line.len().saturating_add(tail.len()) > self.limits.max_line_bytes {
                self.line.clear();
                self.line_too_long();
            } else {
                let mut line = mem::take(&mut self.line);
                line.extend_from_slice(tail);
                self.process_line(&line);
                line.clear();
                self.line = line;
            }
            rest = self.skip_eol(rest, end);
        }
        while let Some(end) = find_eol(rest) {
            let line = rest.get(..end).unwrap_or_default();
            if line.len() > self.limits.max_line_bytes {
                self.line_too_long();
            } else {
                self.process_line(line);
            }
            rest = self.skip_eol(rest, end);
        }
        self.buffer_partial_line(rest);
    }

    /// Returns what follows the line ending at `rest[end]`, remembering a CR
    /// that ends the chunk so that an LF starting the next chunk is skipped.
    fn skip_eol<'a>(&mut self, rest: &'a [u8], end: usize) -> &'a [u8] {
        let after = rest.get(end + 1..).unwrap_or_default();
        if rest.get(end) != Some(&b'\r') {
            return after;
        }
        match after.first() {
            Some(b'\n') => after.get(1..).unwrap_or_default(),
            Some(_) => after,
            None => {
                self.pending_cr = true;
                after
            }
        }
    }

    /// Keeps the start of a line until its end arrives, within the limit.
    fn buffer_partial_line(&mut self, partial: &[u8]) {
        if partial.is_empty() {
            return;
        }
        if self.line.len().saturating_add(partial.len()) > self.limits.max_line_bytes {
            self.line.clear();
            self.discarding_line = true;
            self.line_too_long();
        } else {
            self.line.extend_from_slice(partial);
        }
    }

    fn line_too_long(&mut self) {
        self.queue.push_back(Err(SseError::LineTooLong {
            limit: self.limits.max_line_bytes,
        }));
        self.poison();
    }

    /// Drops the current event's data and type and ignores its remaining
    /// `data` and `event` lines.
    fn poison(&mut self) {
        self.poisoned = true;
        self.data.clear();
        self.has_data = false;
        self.event_type.clear();
    }

    /// Processes one complete line, line ending excluded.
    fn process_line(&mut self, line: &[u8]) {
        if line.is_empty() {
            self.dispatch();
            return;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            // A comment.
            Some(0) => return,
            Some(colon) => {
                let value = line.get(colon + 1..).unwrap_or_default();
                (
                    line.get(..colon).unwrap_or_default(),
                    value.strip_prefix(b" ").unwrap_or(value),
                )
            }
            None => (line, &[][..]),
        };
        match name {
            b"data" => self.push_data(value),
            b"event" if !self.poisoned => {
                self.event_type.clear();
                push_lossy(&mut self.event_type, value);
            }
            b"id" if !value.contains(&0) => {
                self.id_buffer.clear();
                push_lossy(&mut self.id_buffer, value);
            }
            b"retry" => {
                if let Some(retry) = parse_retry(value) {
                    self.retry = Some(retry);
                }
            }
            _ => {}
        }
    }

    fn push_data(&mut self, value: &[u8]) {
        if self.poisoned {
            return;
        }
        let text = match std::str::from_utf8(value) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => Cow::Owned(String::from_utf8_lossy(value).into_owned()),
        };
        let size = self
            .data
            .len()
            .saturating_add(usize::from(self.has_data))
            .saturating_add(text.len());
        if size > self.limits.max_event_bytes {
            self.queue.push_back(Err(SseError::EventTooLarge {
                limit: self.limits.max_event_bytes,
            }));
            self.poison();
            return;
        }
        if self.has_data {
            self.data.push('\n');
        }
        self.data.push_str(&text);
        self.has_data = true;
    }

    /// Handles a blank line.
    fn dispatch(&mut self) {
        if self.last_event_id != self.id_buffer {
            self.last_event_id.clone_from(&self.id_buffer);
        }
        if self.poisoned || !self.has_data {
            self.poisoned = false;
            self.data.clear();
            self.has_data = false;
            self.event_type.clear();
            return;
        }
        let event = if self.event_type.is_empty() {
            DEFAULT_EVENT_TYPE.to_owned()
        } else {
            mem::take(&mut self.event_type)
        };
        self.has_data = false;
        self.queue.push_back(Ok(Event {
            event,
            data: mem::take(&mut self.data),
            id: non_empty(&self.last_event_id).map(str::to_owned),
            retry: self.retry,
        }));
    }
}

/// The iterator returned by [`Decoder::events`]: takes decoded events and
/// errors until more bytes are needed.
#[derive(Debug)]
pub struct Events<'a> {
    decoder: &'a mut Decoder,
}

impl Iterator for Events<'_> {
    type Item = Result<Event, SseError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.decoder.next_event()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = self.decoder.queue.len();
        (len, Some(len))
    }
}

impl ExactSizeIterator for Events<'_> {}

fn non_empty(s: &str) -> Option<&str> {
    if s.is_empty() { None } else { Some(s) }
}

/// Appends `bytes` decoded as UTF-8, each maximal invalid sequence replaced by
/// U+FFFD.
fn push_lossy(dst: &mut String, bytes: &[u8]) {
    // `str::from_utf8` is much faster than `utf8_chunks` on valid text.
    if let Ok(text) = std::str::from_utf8(bytes) {
        dst.push_str(text);
        return;
    }
    for chunk in bytes.utf8_chunks() {
        dst.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            dst.push(char::REPLACEMENT_CHARACTER);
        }
    }
}

/// Parses a `retry` value: ASCII digits only, fitting in a `u64`.
fn parse_retry(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// The position of the first CR or LF in `hay`.
///
/// Scans eight bytes at a time with word-sized bit tricks (no `unsafe`).
fn find_eol(hay: &[u8]) -> Option<usize> {
    const LO: u64 = u64::from_ne_bytes([0x01; 8]);
    const HI: u64 = u64::from_ne_bytes([0x80; 8]);
    const CR: u64 = u64::from_ne_bytes([b'\r'; 8]);
    const LF: u64 = u64::from_ne_bytes([b'\n'; 8]);
    // Flags the zero bytes of `v` in their high bit. Bytes above a zero byte may
    // be flagged falsely (borrow), never bytes below it, so the lowest flag is
    // exact.
    fn zero_bytes(v: u64) -> u64 {
        v.wrapping_sub(LO) & !v & HI
    }

    let mut words = hay.chunks_exact(8);
    let mut offset = 0;
    for word in words.by_ref() {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(word);
        let v = u64::from_le_bytes(bytes);
        let found = zero_bytes(v ^ CR) | zero_bytes(v ^ LF);
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .map(|i| offset + i)
}

/// The reason a Replicate stream ended, from the data of its `done` event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DoneReason {
    /// `{"reason": "canceled"}`: the prediction was canceled.
    Canceled,
    /// `{"reason": "error"}`: the prediction failed.
    Error,
    /// Any other reason, kept as sent.
    Other(String),
}

impl DoneReason {
    /// The reason as sent by the server.
    pub fn as_str(&self) -> &str {
        match self {
            DoneReason::Canceled => "canceled",
            DoneReason::Error => "error",
            DoneReason::Other(reason) => reason,
        }
    }

    fn parse(reason: String) -> Self {
        match reason.as_str() {
            "canceled" => DoneReason::Canceled,
            "error" => DoneReason::Error,
            _ => DoneReason::Other(reason),
        }
    }
}

/// The content of a Replicate `error` event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamErrorDetail {
    /// The `detail` string of the JSON data, or the whole data when it is not
    /// a JSON object with a string `detail`.
    pub detail: String,
    /// The event data as received.
    pub raw: String,
}

/// A typed event of a Replicate prediction stream.
///
/// Built from any [`Event`] with [`ReplicateEvent::from_event`] (or `From`),
/// which never fails: an unknown event type becomes [`ReplicateEvent::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReplicateEvent {
    /// An `output` event: a text chunk, a file URL or JSON text, as sent.
    Output(String),
    /// A `logs` event: log text.
    Logs(String),
    /// An `error` event: the prediction failed.
    Error(StreamErrorDetail),
    /// A `done` event: the stream is complete. `None` when the data gives no
    /// reason (`{}`, an empty or non-string `reason`, or data that is not a
    /// JSON object), as after a successful prediction.
    Done(Option<DoneReason>),
    /// An event of another type, kept for forward compatibility.
    Other {
        /// The event type.
        event: String,
        /// The event data.
        data: String,
    },
}

impl ReplicateEvent {
    /// Interprets a decoded event as a Replicate stream event.
    pub fn from_event(event: Event) -> Self {
        let Event { event, data, .. } = event;
        match event.as_str() {
            "output" => ReplicateEvent::Output(data),
            "logs" => ReplicateEvent::Logs(data),
            "error" => ReplicateEvent::Error(parse_error(data)),
            "done" => ReplicateEvent::Done(parse_done(&data)),
            _ => ReplicateEvent::Other { event, data },
        }
    }
}

impl From<Event> for ReplicateEvent {
    fn from(event: Event) -> Self {
        Self::from_event(event)
    }
}

fn parse_error(raw: String) -> StreamErrorDetail {
    let detail = match serde_json::from_str::<serde_json::Value>(&raw) {
        Ok(serde_json::Value::Object(mut body)) => match body.remove("detail") {
            Some(serde_json::Value::String(detail)) => detail,
            _ => raw.clone(),
        },
        _ => raw.clone(),
    };
    StreamErrorDetail { detail, raw }
}

fn parse_done(data: &str) -> Option<DoneReason> {
    let serde_json::Value::Object(mut body) = serde_json::from_str(data).ok()? else {
        return None;
    };
    match body.remove("reason")? {
        serde_json::Value::String(reason) if !reason.is_empty() => Some(DoneReason::parse(reason)),
        _ => None,
    }
}
