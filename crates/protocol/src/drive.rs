//! A blocking driver for a transport of your own: the whole driver rule in one loop, with a
//! closure as the transport.
//!
//! ```
//! use replicate_protocol::{Config, Flow, GetPrediction, Call, TransportError};
//! use replicate_protocol::drive::drive;
//!
//! let cfg = Config::new("r8_token");
//! // The transport: any function from a request (and its timeout) to a whole response.
//! let transport = |request: http::Request<Vec<u8>>, _timeout| -> Result<_, TransportError> {
//!     assert_eq!(request.uri(), "https://api.replicate.com/v1/predictions/abc");
//!     let body = br#"{"id":"abc","status":"succeeded","output":"https://x/out.png"}"#;
//!     Ok(http::Response::builder().status(200).body(body.to_vec()).unwrap())
//! };
//! let prediction = drive(Call::new(GetPrediction::new("abc"), cfg), transport)?;
//! assert_eq!(prediction.output_url(), Some("https://x/out.png"));
//! # Ok::<(), replicate_protocol::Error>(())
//! ```
//!
//! It reads the clock and sleeps the thread, so it is for programs, not for the state machines
//! of this crate (which do neither). A streamed answer is handed to the flow as its head, one
//! chunk holding the whole body, and its end: a transport that can stream should drive the
//! flow itself, following the rule in [`crate::flow`].

use std::time::Instant;

use http::{Request, Response};

use crate::TransportError;
use crate::flow::{BodyRead, Flow, Step, Timeout, body_too_large};

/// Drives `flow` to its end with `transport`, dropping the items it yields. See the
/// [module documentation](self).
pub fn drive<F, T>(flow: F, transport: T) -> F::Output
where
    F: Flow,
    T: FnMut(Request<Vec<u8>>, Timeout) -> Result<Response<Vec<u8>>, TransportError>,
{
    drive_items(flow, transport, |_| {})
}

/// [`drive`], handing every item the flow yields to `on_item` (list items, stream events, chunks
/// of a download).
pub fn drive_items<F, T, I>(mut flow: F, mut transport: T, mut on_item: I) -> F::Output
where
    F: Flow,
    T: FnMut(Request<Vec<u8>>, Timeout) -> Result<Response<Vec<u8>>, TransportError>,
    I: FnMut(F::Item),
{
    // The rest of a streamed body not handed to the flow yet: `Some(None)` once it ended.
    let mut open: Option<Option<Vec<u8>>> = None;
    loop {
        let step = flow.poll(Instant::now());
        if !matches!(step, Step::Receive | Step::Yield(_)) {
            open = None;
        }
        match step {
            Step::Send(out) => {
                let result = transport(out.request, out.timeout);
                let now = Instant::now();
                match (result, out.read) {
                    (Err(e), _) => flow.handle_error(e, now),
                    (Ok(resp), BodyRead::Buffered { max_bytes }) => {
                        let len = resp.body().len() as u64;
                        if len > max_bytes {
                            flow.handle_error(body_too_large(len, max_bytes), now);
                        } else {
                            flow.handle_response(resp, now);
                        }
                    }
                    (Ok(resp), BodyRead::Streamed) => {
                        let (parts, body) = resp.into_parts();
                        flow.handle_head(parts.status, &parts.headers, now);
                        open = Some(Some(body));
                    }
                }
            }
            Step::Receive => match open.as_mut() {
                Some(rest @ Some(_)) => {
                    let chunk = rest.take().unwrap_or_default();
                    if chunk.is_empty() {
                        flow.handle_end(Instant::now());
                    } else {
                        flow.handle_chunk(&chunk, Instant::now());
                    }
                }
                _ => {
                    open = None;
                    flow.handle_end(Instant::now());
                }
            },
            Step::Sleep { until, .. } => {
                std::thread::sleep(until.saturating_duration_since(Instant::now()));
            }
            Step::Yield(item) => on_item(item),
            Step::Done(output) => return output,
        }
    }
}
