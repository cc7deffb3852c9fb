//! A batch whose items complete from webhooks: an [axum](https://docs.rs/axum) endpoint
//! verifies each delivery and feeds it to the batch, which then stops polling that item.
//!
//! Runs offline, against the fake server started in-process:
//!
//! ```text
//! cargo run -p replicate-tests --example batch_webhooks
//! ```
//!
//! The batch's creates carry the receiver's URL as their `webhook` (only the `completed`
//! event), and the batch runs with [`Completion::Webhook`]: an item in flight is polled only
//! every `safety_interval` (in case a delivery is lost), and ends as soon as its verified
//! delivery is fed through [`BatchHandle::feed_webhook`]. The receiver verifies the signature
//! first ([`Client::verify_webhook`]), answers `401` to a delivery that does not verify, and
//! never feeds an unverified body. Feeding the same delivery twice (a retry) is harmless: the
//! item has ended already.
//!
//! Against Replicate itself, the receiver must be reachable from the internet; the secret is the
//! one of your account (`Client::webhook_secret`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use replicate_fake::{FakeServer, Options};
use replicate_protocol::webhook::WebhookSecret;
use replicate_reqwest::{BatchHandle, Client, Completion, StreamExt, WebhookEvent};

/// How many inputs the batch runs.
const ITEMS: usize = 20;

/// What the handler needs: the secret, and the batch to feed (set once the batch exists).
struct Receiver {
    secret: WebhookSecret,
    batch: Mutex<Option<BatchHandle>>,
}

/// `POST /webhooks/replicate`: verify, then feed the batch.
async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let prediction = match Client::verify_webhook(&receiver.secret, &headers, &body) {
        Ok(prediction) => prediction,
        Err(e) => {
            eprintln!("rejected a delivery: {e}");
            return StatusCode::UNAUTHORIZED;
        }
    };
    if let Ok(batch) = receiver.batch.lock()
        && let Some(batch) = batch.as_ref()
    {
        batch.feed_webhook(prediction);
    }
    StatusCode::NO_CONTENT
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fake = FakeServer::start_with(Options {
        tick: Duration::from_millis(20),
        ..Options::default()
    })
    .await?;
    let client = Client::builder()
        .token(fake.token())
        .base_url(fake.base_url())
        .build()?;

    let receiver = Arc::new(Receiver {
        secret: client.webhook_secret().await?,
        batch: Mutex::new(None),
    });
    let app = Router::new()
        .route("/webhooks/replicate", post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/webhooks/replicate", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let inputs = (0..ITEMS)
        .map(|i| serde_json::json!({"prompt": format!("item {i}")}))
        .collect();
    let mut batch = client
        .batch("fake/json", inputs)
        .webhook(url, &[WebhookEvent::Completed])
        .completion(Completion::Webhook {
            safety_interval: Duration::from_secs(30),
        })
        .stream()
        .await?;
    // Before the first create goes out: no delivery can come earlier.
    if let Ok(mut slot) = receiver.batch.lock() {
        *slot = Some(batch.handle());
    }
    let mut done = 0;
    let run = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(item) = batch.next().await {
            let item = item?;
            let prediction = item.result?;
            done += 1;
            println!(
                "item {:>2}: {} {}",
                item.index, prediction.id, prediction.status
            );
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })
    .await;
    server.abort();
    run.map_err(|_| "the batch did not end within 20 s")??;
    let summary = batch.summary().ok_or("no summary")?;
    println!(
        "{done} items done from webhooks; {} polls sent (safety polls only)",
        summary.polls_sent
    );
    if done != ITEMS || summary.polls_sent > 0 {
        return Err("every item should have ended from its webhook, without a poll".into());
    }
    Ok(())
}
