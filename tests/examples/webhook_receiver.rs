//! A webhook receiver in [axum](https://docs.rs/axum) that verifies Replicate's signatures.
//!
//! Runs offline, against the fake server started in-process:
//!
//! ```text
//! cargo run -p replicate-tests --example webhook_receiver
//! ```
//!
//! It fetches the signing secret from the API with the async client
//! (`GET /v1/webhooks/default/secret`), serves `POST /webhooks/replicate` on 127.0.0.1 (a free
//! port), creates a prediction with that URL as its `webhook`, and prints each delivery that
//! passes [`replicate_protocol::webhook::verify_http`]; it exits once the prediction's final
//! (`completed`) delivery arrives, or fails after 10 s. A delivery whose signature does not check
//! out is answered `401` and never trusted.
//!
//! A valid signature does not make a delivery new: Replicate retries a delivery with the same
//! `webhook-id`, and a captured delivery replayed within the tolerance window verifies again.
//! The receiver acts once per `webhook-id` (a bounded set of recent ids, [`RecentIds`]) and
//! answers a repeat `204` without acting on it again.
//!
//! Against Replicate itself, the receiver must be reachable from the internet, and the secret is
//! the one of your account: everything else is the same.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use replicate_fake::{FakeServer, Options};
use replicate_protocol::api::GetDefaultWebhookSecret;
use replicate_protocol::webhook::{self, WebhookSecret};
use replicate_protocol::{CreatePrediction, Prediction, Target};
use tokio::sync::mpsc;

/// How long to wait for the final delivery before giving up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(10);

/// How many delivery ids are remembered: more than the deliveries one tolerance window (5 min)
/// can bring to this receiver.
const REMEMBERED_IDS: usize = 10_000;

/// The ids of recent deliveries, oldest dropped first: bounded memory, and a repeat within the
/// tolerance window is recognised.
#[derive(Default)]
struct RecentIds {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl RecentIds {
    /// Whether `id` is new (and remembers it).
    fn first_time(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() >= REMEMBERED_IDS
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.set.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        true
    }
}

/// What the handler needs: the secret, the ids seen, and where to hand verified predictions.
struct Receiver {
    secret: WebhookSecret,
    seen: Mutex<RecentIds>,
    verified: mpsc::UnboundedSender<(String, Prediction)>,
}

/// `POST /webhooks/replicate`: verify first, then parse.
async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let now = webhook::unix_timestamp(SystemTime::now());
    if let Err(e) = webhook::verify_http(&receiver.secret, &headers, &body, now) {
        eprintln!("rejected a delivery: {e}");
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(prediction) = serde_json::from_slice::<Prediction>(&body) else {
        eprintln!("a verified delivery whose body is not a prediction");
        return StatusCode::BAD_REQUEST;
    };
    let id = headers
        .get(webhook::HEADER_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    // Verified, but maybe seen already (a retry, or a replay inside the tolerance window).
    let first = receiver
        .seen
        .lock()
        .map(|mut seen| seen.first_time(&id))
        .unwrap_or(false);
    if !first {
        eprintln!("delivery {id} seen already: acknowledged, not acted on again");
        return StatusCode::NO_CONTENT;
    }
    let _ = receiver.verified.send((id, prediction));
    StatusCode::NO_CONTENT
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The fake server stands in for api.replicate.com; it delivers webhooks to loopback URLs.
    let fake = FakeServer::start_with(Options {
        tick: Duration::from_millis(50),
        ..Options::default()
    })
    .await?;
    let client = replicate_reqwest::Client::builder()
        .token(fake.token())
        .base_url(fake.base_url())
        .build()?;

    let secret = client.execute(GetDefaultWebhookSecret::new()).await?;
    let (verified, mut deliveries) = mpsc::unbounded_channel();
    let app = Router::new()
        .route("/webhooks/replicate", post(receive))
        .with_state(Arc::new(Receiver {
            secret,
            seen: Mutex::new(RecentIds::default()),
            verified,
        }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/webhooks/replicate", listener.local_addr()?);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("the receiver stopped: {e}");
        }
    });
    println!("receiving webhooks at {url}");

    // No filter: `start`, `output`, `logs` (at most every 500 ms) and `completed`.
    let create = CreatePrediction::new(Target::parse("fake/text")?)
        .input(serde_json::json!({"prompt": "Say hello"}))
        .webhook(url, &[]);
    let prediction = client.create(create).await?;
    println!("created prediction {}", prediction.id);

    let finished = tokio::time::timeout(GIVE_UP_AFTER, async {
        while let Some((id, p)) = deliveries.recv().await {
            println!(
                "verified {id}: status {}, output {}, {} log line(s)",
                p.status,
                p.output,
                p.logs.as_deref().map_or(0, |l| l.lines().count())
            );
            if p.status.is_terminal() {
                return Some(p);
            }
        }
        None
    })
    .await;
    fake.shutdown().await;
    match finished {
        Ok(Some(p)) => {
            println!("completed: prediction {} {}", p.id, p.status);
            Ok(())
        }
        Ok(None) => Err("the receiver stopped before the completed webhook".into()),
        Err(_) => Err(format!("no completed webhook within {GIVE_UP_AFTER:?}").into()),
    }
}
