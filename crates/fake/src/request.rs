//! A request as the handlers see it, and the shutdown signal.

use bytes::Bytes;
use tokio::sync::watch;

/// A request after its body has been read.
pub(crate) struct Req {
    pub method: hyper::Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Req {
    /// The value of a header, if it is present and text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Resolves when the server is shut down (or its handle is gone).
pub(crate) async fn until_shutdown(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}
