//! What the clients log, captured: a tracing subscriber for the calling thread only, writing to
//! a buffer. The flows of both clients run on the calling thread (the async client's on a
//! current-thread runtime), so it sees their events.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// A writer appending to a shared buffer.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `f` with a subscriber of the events up to `level` (and of the span events given) for
/// this thread only, and returns what it printed: one event per line, with its spans' fields.
pub fn traced<T>(level: LevelFilter, spans: FmtSpan, f: impl FnOnce() -> T) -> (String, T) {
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_span_events(spans)
        .without_time()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let out = tracing::subscriber::with_default(subscriber, || {
        // A callsite first reached by another test's thread while no subscriber was in place
        // may have cached "never interested"; recompute with this subscriber in place.
        tracing::callsite::rebuild_interest_cache();
        f()
    });
    let text =
        String::from_utf8_lossy(&sink.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    (text, out)
}
