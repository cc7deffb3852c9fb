//! Signed webhook deliveries over a minimal loopback HTTP/1.1 client.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::record::WebhookDelivery;
use crate::request::until_shutdown;
use crate::state::{Pred, Shared};
use crate::util;

/// The HMAC key of a `whsec_...` secret: the base64-decoded part after `whsec_` (or its raw bytes
/// when that is not base64).
pub fn signing_key(secret: &str) -> Vec<u8> {
    let raw = secret.strip_prefix("whsec_").unwrap_or(secret);
    base64::engine::general_purpose::STANDARD
        .decode(raw)
        .unwrap_or_else(|_| raw.as_bytes().to_vec())
}

/// The `webhook-signature` value for a delivery: `v1,` + base64(HMAC-SHA256(key,
/// `"{id}.{timestamp}.{body}"`)).
pub fn sign_webhook(secret: &str, id: &str, timestamp: u64, body: &[u8]) -> String {
    let key = signing_key(secret);
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&key) {
        Ok(m) => m,
        // HMAC accepts keys of any length; this branch cannot happen.
        Err(_) => return String::new(),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let sig = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(sig)
    )
}

/// Starts the task that sends the webhooks of `pred`.
pub(crate) fn spawn(shared: Arc<Shared>, pred: Arc<Pred>) {
    tokio::spawn(async move {
        let stop = until_shutdown(shared.shutdown.clone());
        tokio::select! {
            _ = run(&shared, &pred) => {}
            _ = stop => {}
        }
    });
}

async fn run(shared: &Arc<Shared>, pred: &Arc<Pred>) {
    let Some(cfg) = &pred.webhook else {
        return;
    };
    let wants = |e: &str| cfg.events.iter().any(|x| x == e);
    if wants("start") {
        deliver(shared, pred, "start", 1).await;
    }
    let throttle = shared.opts.webhook_throttle;
    let mut sent_logs = 0usize;
    let mut sent_tokens = 0usize;
    let mut last_sent: Option<Instant> = None;
    loop {
        let notified = pred.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let v = pred.view();
        if v.terminal.is_some() {
            if wants("completed") {
                deliver(shared, pred, "completed", shared.opts.webhook_attempts).await;
            }
            return;
        }
        let out_changed = wants("output") && v.tokens_n > sent_tokens;
        let logs_changed = wants("logs") && v.logs_n > sent_logs;
        let pending = out_changed || logs_changed;
        let free_at = last_sent.map(|t| util::instant_after(t, throttle));
        if pending && free_at.is_none_or(|t| Instant::now() >= t) {
            let event = if out_changed { "output" } else { "logs" };
            deliver(shared, pred, event, 1).await;
            sent_logs = v.logs_n;
            sent_tokens = v.tokens_n;
            last_sent = Some(Instant::now());
            continue;
        }
        let mut wake = pred
            .next_change_after(v.elapsed)
            .map(|t| util::instant_after(pred.created, t));
        if pending && let Some(t) = free_at {
            wake = Some(wake.map_or(t, |w| w.min(t)));
        }
        match wake {
            Some(t) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(t.into()) => {}
                    _ = &mut notified => {}
                }
            }
            None => notified.await,
        }
    }
}

/// Sends one event, retrying up to `attempts` times in all with the same webhook id.
async fn deliver(shared: &Shared, pred: &Pred, event: &str, attempts: usize) {
    let Some(cfg) = &pred.webhook else {
        return;
    };
    let body = serde_json::to_vec(&pred.to_json(&pred.view(), shared, false)).unwrap_or_default();
    let webhook_id = format!("msg_{}", util::new_id());
    for attempt in 1..=attempts {
        let timestamp = util::unix_secs(SystemTime::now());
        let signature = sign_webhook(&shared.opts.webhook_secret, &webhook_id, timestamp, &body);
        let status = post(&cfg.url, &webhook_id, timestamp, &signature, &body).await;
        shared.record_delivery(WebhookDelivery {
            event: event.to_owned(),
            url: cfg.url.clone(),
            webhook_id: webhook_id.clone(),
            timestamp,
            signature,
            body: body.clone(),
            status,
            attempt,
        });
        if status.is_some_and(|s| (200..300).contains(&s)) {
            return;
        }
        if attempt < attempts {
            let backoff = shared.opts.tick.saturating_mul(1 << attempt.min(6));
            tokio::time::sleep(backoff.min(Duration::from_secs(2))).await;
        }
    }
}

/// Splits `http://host:port/path` into (host, port, path) if it names a loopback host.
fn loopback_target(url: &str) -> Option<(String, u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = if let Some(h) = authority.strip_prefix('[') {
        let (h, after) = h.split_once(']')?;
        let port = after
            .strip_prefix(':')
            .map_or(Some(80), |p| p.parse().ok())?;
        (h.to_owned(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().ok()?),
            None => (authority.to_owned(), 80),
        }
    };
    let loopback = host == "localhost" || host == "::1" || host.starts_with("127.");
    loopback.then(|| (host, port, path.to_owned()))
}

/// POSTs a delivery; returns the receiver's status code.
async fn post(url: &str, id: &str, timestamp: u64, signature: &str, body: &[u8]) -> Option<u16> {
    let (host, port, path) = loopback_target(url)?;
    let connect_host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host.as_str()
    };
    let fut = async {
        let mut stream = TcpStream::connect((connect_host, port)).await.ok()?;
        let host_header = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: replicate-fake-webhook\r\nContent-Type: application/json\r\nContent-Length: {}\r\nwebhook-id: {id}\r\nwebhook-timestamp: {timestamp}\r\nwebhook-signature: {signature}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.ok()?;
        stream.write_all(body).await.ok()?;
        stream.flush().await.ok()?;
        let mut buf = Vec::with_capacity(256);
        let mut chunk = [0u8; 512];
        while !buf.windows(2).any(|w| w == b"\r\n") {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > 8192 {
                break;
            }
        }
        let line = String::from_utf8_lossy(&buf);
        line.split_whitespace().nth(1)?.parse::<u16>().ok()
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            loopback_target("http://127.0.0.1:8080/hook?x=1"),
            Some(("127.0.0.1".into(), 8080, "/hook?x=1".into()))
        );
        assert_eq!(
            loopback_target("http://localhost:9"),
            Some(("localhost".into(), 9, "/".into()))
        );
        assert_eq!(
            loopback_target("http://[::1]:7/a"),
            Some(("::1".into(), 7, "/a".into()))
        );
        assert_eq!(loopback_target("https://example.com/hook"), None);
        assert_eq!(loopback_target("http://example.com/hook"), None);
    }

    #[test]
    fn signature_is_stable() {
        let s = sign_webhook(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        // The Standard Webhooks reference example.
        assert_eq!(s, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
