//! Response values and the body type handed to hyper.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Sleep;

use crate::content::Content;

/// A response before it goes to hyper.
pub(crate) struct Resp {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: RespBody,
}

impl Resp {
    pub(crate) fn new(status: u16, content_type: &str, body: impl Into<Bytes>) -> Self {
        Resp {
            status,
            headers: vec![("content-type", content_type.to_owned())],
            body: RespBody::full(body.into()),
        }
    }

    pub(crate) fn json(status: u16, v: &Value) -> Self {
        let bytes = serde_json::to_vec(v).unwrap_or_default();
        Resp::new(status, "application/json", bytes)
    }

    pub(crate) fn empty(status: u16) -> Self {
        Resp {
            status,
            headers: Vec::new(),
            body: RespBody::full(Bytes::new()),
        }
    }

    /// A problem-details error.
    pub(crate) fn problem(status: u16, title: &str, detail: &str) -> Self {
        let v = json!({"title": title, "detail": detail, "status": status});
        let bytes = serde_json::to_vec(&v).unwrap_or_default();
        Resp::new(status, "application/problem+json", bytes)
    }

    pub(crate) fn not_found() -> Self {
        Resp::problem(
            404,
            "Not found",
            "The requested resource could not be found.",
        )
    }

    /// A 422 listing invalid fields, Replicate style.
    pub(crate) fn invalid(lines: &[String]) -> Self {
        let detail: String = lines.iter().map(|l| format!("- {l}\n")).collect();
        Resp::problem(422, "Input validation failed", &detail)
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn into_hyper(self) -> hyper::Response<RespBody> {
        let mut b = hyper::Response::builder().status(self.status);
        for (name, value) in &self.headers {
            if let Ok(v) = hyper::header::HeaderValue::from_str(value) {
                b = b.header(*name, v);
            }
        }
        match b.body(self.body) {
            Ok(r) => r,
            Err(_) => {
                let mut r = hyper::Response::new(RespBody::full(Bytes::new()));
                *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
                r
            }
        }
    }
}

const CHUNK: usize = 64 * 1024;

/// How long a [`RespBody::Cut`] waits after its last bytes before breaking the connection, so
/// that hyper has flushed them to the socket.
const CUT_GRACE: Duration = Duration::from_millis(50);

/// The response body: in memory, fed by a channel (SSE), a generated huge body, or an
/// in-memory body spoiled by a fault.
pub(crate) enum RespBody {
    Full(Option<Bytes>),
    Channel(mpsc::Receiver<Result<Bytes, io::Error>>),
    Huge {
        total: usize,
        sent: usize,
    },
    /// `data` sent `chunk` bytes at a time, `interval` apart.
    Drip {
        data: Bytes,
        chunk: usize,
        interval: Duration,
        sleep: Option<Pin<Box<Sleep>>>,
    },
    /// Announces `total` bytes, sends `head` (fewer), then fails, which closes the connection.
    Cut {
        head: Option<Bytes>,
        total: u64,
        grace: Option<Pin<Box<Sleep>>>,
    },
    /// A file body (output files, file downloads), streamed from its [`Content`].
    Stream(Box<StreamBody>),
}

impl RespBody {
    pub(crate) fn full(b: Bytes) -> Self {
        RespBody::Full(Some(b))
    }

    /// The bytes of a full body, if that's what it is.
    pub(crate) fn as_full(&self) -> Option<&Bytes> {
        match self {
            RespBody::Full(Some(b)) => Some(b),
            _ => None,
        }
    }

    /// The first half of a full or file body, announced as complete (other bodies unchanged).
    pub(crate) fn halved(self) -> Self {
        match self {
            RespBody::Full(Some(b)) => RespBody::full(b.slice(..b.len() / 2)),
            RespBody::Stream(mut s) => {
                s.end = s.pos + (s.end - s.pos) / 2;
                RespBody::Stream(s)
            }
            other => other,
        }
    }

    /// A full or file body sent `chunk` bytes at a time, `interval` apart (other bodies
    /// unchanged).
    pub(crate) fn drip(self, interval: Duration, chunk: usize) -> Self {
        match self {
            RespBody::Full(b) => RespBody::Drip {
                data: b.unwrap_or_default(),
                chunk: chunk.max(1),
                interval,
                sleep: None,
            },
            RespBody::Stream(mut s) => {
                s.pace = Pace::Drip {
                    chunk: chunk.max(1),
                    interval,
                };
                RespBody::Stream(s)
            }
            other => other,
        }
    }

    /// A full or file body that announces its whole length but sends only its first `n`
    /// bytes, then breaks the connection (other bodies, and bodies of at most `n` bytes,
    /// unchanged).
    pub(crate) fn cut_after(self, n: usize) -> Self {
        match self {
            RespBody::Full(Some(b)) if b.len() > n => RespBody::Cut {
                total: b.len() as u64,
                head: Some(b.slice(..n)),
                grace: None,
            },
            RespBody::Stream(mut s) => {
                let at = s.pos.saturating_add(n as u64);
                if at < s.end {
                    s.cut_at = Some(at);
                }
                RespBody::Stream(s)
            }
            other => other,
        }
    }

    /// A full or file body with its byte at offset `n` (or its last byte, if it is shorter)
    /// inverted; empty and other bodies unchanged.
    pub(crate) fn corrupt(self, n: u64) -> Self {
        match self {
            RespBody::Full(Some(b)) if !b.is_empty() => {
                let mut v = b.to_vec();
                let i = usize::try_from(n).unwrap_or(usize::MAX).min(v.len() - 1);
                v[i] ^= 0xFF;
                RespBody::full(Bytes::from(v))
            }
            RespBody::Stream(mut s) => {
                if s.end > s.pos {
                    s.corrupt_at = Some(s.pos + n.min(s.end - s.pos - 1));
                }
                RespBody::Stream(s)
            }
            other => other,
        }
    }

    fn huge_chunk(total: usize, sent: usize) -> Bytes {
        // `{"padding":"xxx...xxx"}` of exactly `total` bytes (just `x`s when tiny).
        const HEAD: &[u8] = b"{\"padding\":\"";
        const TAIL: &[u8] = b"\"}";
        let framed = total >= HEAD.len() + TAIL.len();
        let remaining = total - sent;
        let n = remaining.min(CHUNK);
        let mut chunk = vec![b'x'; n];
        if framed {
            // Overlay the parts of the head and tail that fall in [sent, sent + n).
            for (i, b) in HEAD.iter().enumerate() {
                if (sent..sent + n).contains(&i) {
                    chunk[i - sent] = *b;
                }
            }
            let tail_start = total - TAIL.len();
            for (j, b) in TAIL.iter().enumerate() {
                let i = tail_start + j;
                if (sent..sent + n).contains(&i) {
                    chunk[i - sent] = *b;
                }
            }
        }
        Bytes::from(chunk)
    }
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            RespBody::Full(b) => Poll::Ready(
                b.take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b))),
            ),
            RespBody::Channel(rx) => match rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(b))) => Poll::Ready(Some(Ok(Frame::data(b)))),
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
            RespBody::Huge { total, sent } => {
                if *sent >= *total {
                    return Poll::Ready(None);
                }
                let chunk = RespBody::huge_chunk(*total, *sent);
                *sent += chunk.len();
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            RespBody::Drip {
                data,
                chunk,
                interval,
                sleep,
            } => {
                if data.is_empty() {
                    return Poll::Ready(None);
                }
                if let Some(s) = sleep {
                    if s.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    *sleep = None;
                }
                let piece = data.split_to((*chunk).min(data.len()));
                if !data.is_empty() {
                    *sleep = Some(Box::pin(tokio::time::sleep(*interval)));
                }
                Poll::Ready(Some(Ok(Frame::data(piece))))
            }
            RespBody::Stream(s) => s.poll_next(cx),
            RespBody::Cut { head, total, grace } => {
                if let Some(h) = head.take() {
                    *total -= h.len() as u64;
                    *grace = Some(Box::pin(tokio::time::sleep(CUT_GRACE)));
                    if !h.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(h))));
                    }
                }
                if let Some(g) = grace
                    && g.as_mut().poll(cx).is_pending()
                {
                    return Poll::Pending;
                }
                Poll::Ready(Some(Err(io::Error::other("body cut by fault"))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RespBody::Full(b) => b.as_ref().is_none_or(|b| b.is_empty()),
            RespBody::Channel(_) => false,
            RespBody::Huge { total, sent } => sent >= total,
            RespBody::Drip { data, .. } => data.is_empty(),
            RespBody::Cut { .. } => false,
            RespBody::Stream(s) => s.pos >= s.end,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RespBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            RespBody::Channel(_) => SizeHint::default(),
            RespBody::Huge { total, sent } => SizeHint::with_exact((total - sent) as u64),
            RespBody::Drip { data, .. } => SizeHint::with_exact(data.len() as u64),
            RespBody::Cut { total, .. } => SizeHint::with_exact(*total),
            RespBody::Stream(s) => SizeHint::with_exact(s.end - s.pos),
        }
    }
}

/// How a [`StreamBody`] spaces its frames.
#[derive(Debug)]
pub(crate) enum Pace {
    /// As fast as the connection takes them.
    Free,
    /// At most `bytes_per_sec` on average since the first frame: a frame of `n` bytes goes out
    /// no earlier than `start + (sent + n) / bytes_per_sec`.
    Rate {
        bytes_per_sec: u64,
        start: Option<Instant>,
        sent: u64,
    },
    /// `chunk` bytes per frame, `interval` apart (a [`Fault::Drip`](crate::Fault::Drip)).
    Drip { chunk: usize, interval: Duration },
}

/// A file body: the bytes `pos..end` of a [`Content`], produced a frame at a time (at most
/// [`CHUNK`] bytes; smaller when paced), so that its memory does not grow with its length.
pub(crate) struct StreamBody {
    content: Content,
    pos: u64,
    end: u64,
    /// Where a [`Fault::CutAfter`](crate::Fault::CutAfter) breaks the body (before `end`).
    cut_at: Option<u64>,
    /// The position of the byte a [`Fault::Corrupt`](crate::Fault::Corrupt) inverts.
    corrupt_at: Option<u64>,
    pace: Pace,
    sleep: Option<Pin<Box<Sleep>>>,
    /// The cut's grace period is running (or over).
    cutting: bool,
}

impl StreamBody {
    /// The bytes `start..end` of `content`, at most `rate` bytes per second when set.
    pub(crate) fn new(content: Content, start: u64, end: u64, rate: Option<u64>) -> Self {
        let end = end.min(content.len());
        StreamBody {
            content,
            pos: start.min(end),
            end,
            cut_at: None,
            corrupt_at: None,
            pace: match rate {
                Some(r) if r > 0 => Pace::Rate {
                    bytes_per_sec: r,
                    start: None,
                    sent: 0,
                },
                _ => Pace::Free,
            },
            sleep: None,
            cutting: false,
        }
    }

    /// The largest frame under the current pace.
    fn frame_limit(&self) -> usize {
        match &self.pace {
            Pace::Free => CHUNK,
            // About 20 frames a second.
            Pace::Rate { bytes_per_sec, .. } => {
                usize::try_from(bytes_per_sec / 20).map_or(CHUNK, |n| n.clamp(1, CHUNK))
            }
            Pace::Drip { chunk, .. } => (*chunk).clamp(1, CHUNK),
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        loop {
            if let Some(s) = &mut self.sleep {
                if s.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.sleep = None;
            }
            let stop = self.cut_at.unwrap_or(self.end).min(self.end);
            if self.pos >= stop {
                if self.pos >= self.end {
                    return Poll::Ready(None);
                }
                // Cut: let hyper flush what was sent, then break the connection.
                if !self.cutting {
                    self.cutting = true;
                    self.sleep = Some(Box::pin(tokio::time::sleep(CUT_GRACE)));
                    continue;
                }
                return Poll::Ready(Some(Err(io::Error::other("body cut by fault"))));
            }
            let left = usize::try_from(stop - self.pos).unwrap_or(usize::MAX);
            let n = self.frame_limit().min(left);
            if let Pace::Rate {
                bytes_per_sec,
                start,
                sent,
            } = &mut self.pace
            {
                let now = Instant::now();
                let t0 = *start.get_or_insert(now);
                let due_secs = (*sent + n as u64) as f64 / *bytes_per_sec as f64;
                let due = Duration::try_from_secs_f64(due_secs)
                    .ok()
                    .and_then(|d| t0.checked_add(d));
                match due {
                    Some(due) if due > now => {
                        self.sleep = Some(Box::pin(tokio::time::sleep_until(due.into())));
                        continue;
                    }
                    _ => *sent += n as u64,
                }
            }
            let mut chunk = self.content.chunk(self.pos, n);
            if let Some(at) = self.corrupt_at
                && (self.pos..self.pos + n as u64).contains(&at)
            {
                let mut v = chunk.to_vec();
                v[(at - self.pos) as usize] ^= 0xFF;
                chunk = Bytes::from(v);
            }
            self.pos += n as u64;
            if let Pace::Drip { interval, .. } = self.pace
                && self.pos < stop
            {
                self.sleep = Some(Box::pin(tokio::time::sleep(interval)));
            }
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_bodies_have_the_exact_size_and_frame() {
        for total in [0, 1, 13, 14, 15, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7] {
            let mut all = Vec::new();
            let mut sent = 0;
            while sent < total {
                let c = RespBody::huge_chunk(total, sent);
                sent += c.len();
                all.extend_from_slice(&c);
            }
            assert_eq!(all.len(), total);
            if total >= 14 {
                let v: Value = serde_json::from_slice(&all).expect("valid JSON");
                assert_eq!(v["padding"].as_str().map(str::len), Some(total - 14));
            }
        }
    }
}
