//! The files/streams origin: output files (see [`download`]) and server-sent events.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Method;
use tokio::sync::mpsc;

use crate::assets;
use crate::download::{self, Content};
use crate::http::{Resp, RespBody};
use crate::request::{Req, until_shutdown};
use crate::state::{Pred, Shared, Terminal, lock};
use crate::util;

/// How to serve an SSE stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamMode {
    /// As the prediction goes.
    Normal,
    /// Drop the connection after this many events.
    DropAfter(usize),
    /// Send the headers, then nothing (see [`Fault::SilentStream`](crate::Fault::SilentStream)).
    Silent,
}

/// How long a silent stream stays open at most.
const SILENT_FOR: Duration = Duration::from_secs(600);

/// Handles a request on the files origin. No authentication is required here.
pub(crate) async fn handle(shared: &Arc<Shared>, req: &Req, mode: StreamMode) -> Resp {
    if req.method != Method::GET && req.method != Method::HEAD {
        return Resp::new(405, "text/plain", "Method Not Allowed\n");
    }
    if let Some(id) = req.path.strip_prefix("/v1/streams/") {
        return match shared.find_pred(id.trim_end_matches('/')) {
            Some(p) if p.streams => stream(shared, p, req, mode),
            _ => Resp::new(404, "text/plain", "Not Found\n"),
        };
    }
    let found = lock(&shared.state).outputs.get(&req.path).cloned();
    let Some((pred, i)) = found else {
        return Resp::new(404, "text/plain", "Not Found\n");
    };
    let v = pred.view();
    if v.terminal != Some(Terminal::Succeeded) || v.data_removed {
        return Resp::new(404, "text/plain", "Not Found\n");
    }
    let (content, sha, ct) = match pred.synthetic.get(i) {
        Some(f) => match download::synthetic_sha256(shared, *f).await {
            Some(sha) => (Content::Synthetic(*f), sha, "application/octet-stream"),
            None => return Resp::new(503, "text/plain", "Shutting down\n"),
        },
        None => {
            let (bytes, ct) = assets::file_for(&req.path);
            (
                Content::Memory(Bytes::from_static(bytes)),
                util::sha256_hex(bytes),
                ct,
            )
        }
    };
    download::serve(shared, req, content, &sha, ct).header("cache-control", "public, max-age=3600")
}

/// Formats one SSE event; multi-line data becomes several `data:` lines.
pub(crate) fn sse_event(id: &str, event: &str, data: &str) -> String {
    let mut s = format!("id: {id}\nevent: {event}\n");
    for line in data.split('\n') {
        s.push_str("data: ");
        s.push_str(line);
        s.push('\n');
    }
    s.push('\n');
    s
}

fn stream(shared: &Arc<Shared>, pred: Arc<Pred>, req: &Req, mode: StreamMode) -> Resp {
    let accepts = req
        .header("accept")
        .is_some_and(|a| a.contains("text/event-stream"));
    if !accepts {
        return Resp::new(
            406,
            "text/plain",
            "Not Acceptable: send Accept: text/event-stream\n",
        );
    }
    let resume_from = req
        .header("last-event-id")
        .and_then(|v| v.rsplit(':').next())
        .and_then(|n| n.trim().parse::<usize>().ok())
        .map_or(0, |n| n + 1);
    let (tx, rx) = mpsc::channel(32);
    match mode {
        StreamMode::Silent => {
            tokio::spawn(silent_task(shared.clone(), tx));
        }
        StreamMode::Normal | StreamMode::DropAfter(_) => {
            let drop_after = match mode {
                StreamMode::DropAfter(n) => Some(n),
                _ => None,
            };
            tokio::spawn(stream_task(
                shared.clone(),
                pred,
                resume_from,
                drop_after,
                tx,
            ));
        }
    }
    Resp {
        status: 200,
        headers: vec![
            ("content-type", "text/event-stream".to_owned()),
            ("cache-control", "no-cache".to_owned()),
        ],
        body: RespBody::Channel(rx),
    }
}

type Tx = mpsc::Sender<Result<Bytes, io::Error>>;

/// Holds a stream open without sending anything, until the client goes away, the server shuts
/// down, or [`SILENT_FOR`] passes (then the stream ends).
async fn silent_task(shared: Arc<Shared>, tx: Tx) {
    tokio::select! {
        _ = tx.closed() => {}
        _ = tokio::time::sleep(SILENT_FOR) => {}
        _ = until_shutdown(shared.shutdown.clone()) => {}
    }
}

async fn stream_task(
    shared: Arc<Shared>,
    pred: Arc<Pred>,
    mut idx: usize,
    drop_after: Option<usize>,
    tx: Tx,
) {
    let stop = until_shutdown(shared.shutdown.clone());
    tokio::pin!(stop);
    if tx.send(Ok(Bytes::from_static(b": hi\n\n"))).await.is_err() {
        return;
    }
    let mut sent = 0usize;
    let dropped = |sent: usize| drop_after.is_some_and(|n| sent >= n);
    if dropped(sent) {
        drop_stream(&tx).await;
        return;
    }
    loop {
        let notified = pred.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let elapsed = pred.elapsed();
        let events = pred.stream_events(&shared.files_base);
        while idx < events.len() && events[idx].at <= elapsed {
            let ev = &events[idx];
            let id = format!(
                "{}:{idx}",
                util::unix_secs(util::wall_after(pred.created_wall, ev.at))
            );
            let chunk = sse_event(&id, ev.event, &ev.data);
            if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                return;
            }
            idx += 1;
            sent += 1;
            if dropped(sent) {
                drop_stream(&tx).await;
                return;
            }
        }
        if idx >= events.len() {
            return;
        }
        let at = util::instant_after(pred.created, events[idx].at);
        tokio::select! {
            _ = util::sleep_until_precise(at) => {}
            _ = &mut notified => {}
            _ = tx.closed() => return,
            _ = &mut stop => return,
        }
    }
}

/// Breaks the stream mid-body, once what was sent so far has reached the socket.
async fn drop_stream(tx: &Tx) {
    // hyper flushes its buffer when the body has nothing more for it: wait until the channel is
    // drained, then a little longer, so the events before the drop are really delivered.
    for _ in 0..1000 {
        if tx.capacity() == tx.max_capacity() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let _ = tx
        .send(Err(io::Error::other("stream dropped by fault")))
        .await;
}
