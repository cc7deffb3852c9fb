//! Signed webhook deliveries to a loopback receiver.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use common::{Api, fast, start};
use hmac::{Hmac, Mac};
use replicate_fake::{ModelScript, Options};
use serde_json::{Value, json};
use sha2::Sha256;

#[derive(Debug, Clone)]
struct Got {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, n: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A receiver answering 500 to the first `fail_first` requests, then 200.
fn receiver(fail_first: usize) -> (String, Arc<Mutex<Vec<Got>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/replicate?x=1", l.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        let mut n = 0;
        for stream in l.incoming() {
            let Ok(stream) = stream else { return };
            let mut r = BufReader::new(stream);
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let path = line.split_whitespace().nth(1).unwrap().to_owned();
            let mut headers = Vec::new();
            loop {
                let mut l = String::new();
                r.read_line(&mut l).unwrap();
                let l = l.trim_end();
                if l.is_empty() {
                    break;
                }
                let (k, v) = l.split_once(':').unwrap();
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .unwrap()
                .1
                .parse()
                .unwrap();
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            sink.lock().unwrap().push(Got {
                path,
                headers,
                body,
            });
            n += 1;
            let status = if n <= fail_first {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let _ = r.get_mut().write_all(
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
        }
    });
    (url, got)
}

fn verify(secret: &str, g: &Got) {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
    let signed = format!(
        "{}.{}.",
        g.header("webhook-id"),
        g.header("webhook-timestamp")
    );
    mac.update(signed.as_bytes());
    mac.update(&g.body);
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    let sigs: Vec<&str> = g.header("webhook-signature").split(' ').collect();
    assert!(sigs.contains(&expected.as_str()), "{sigs:?} vs {expected}");
    let ts: u64 = g.header("webhook-timestamp").parse().unwrap();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(ts) < 30);
}

fn wait_for(got: &Arc<Mutex<Vec<Got>>>, pred: impl Fn(&[Got]) -> bool) -> Vec<Got> {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let v = got.lock().unwrap().clone();
        if pred(&v) {
            return v;
        }
        assert!(Instant::now() < until, "timed out: {v:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn all_events_are_signed_and_ordered() {
    let s = start(Options {
        webhook_throttle: Duration::ZERO,
        ..fast()
    });
    s.set_model(
        "acme/chat",
        ModelScript::text(["one", "two", "three"])
            .starting_ticks(1)
            .processing_ticks(20)
            .logs(["l1", "l2"]),
    );
    let api = Api::new(&s);
    let secret = api.get("/v1/webhooks/default/secret").json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (url, got) = receiver(0);
    let r = api.post(
        "/v1/models/acme/chat/predictions",
        &json!({"input": {"p": 1}, "webhook": url}),
    );
    assert_eq!(r.status, 201);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let all = wait_for(&got, |v| {
        v.last().is_some_and(|g| g.json()["status"] == "succeeded")
    });
    for g in &all {
        verify(&secret, g);
        assert_eq!(g.path, "/hooks/replicate?x=1");
        assert_eq!(g.header("content-type"), "application/json");
        assert_eq!(g.json()["id"], id.as_str());
    }
    assert_eq!(all[0].json()["status"], "starting");
    let last = all.last().unwrap().json();
    assert_eq!(last["output"], json!(["one", "two", "three"]));
    // Progress in between: output and logs deliveries.
    assert!(all.len() >= 4, "{}", all.len());
    let mut ids: Vec<&str> = all.iter().map(|g| g.header("webhook-id")).collect();
    ids.dedup();
    assert_eq!(ids.len(), all.len());
    // The server records a delivery once it has its answer, which may be after the receiver
    // saw it: wait (bounded) for the last record.
    let recorded = || -> Vec<String> {
        s.webhook_deliveries()
            .iter()
            .map(|d| d.event.clone())
            .collect()
    };
    let give_up = std::time::Instant::now() + Duration::from_secs(10);
    while recorded().last().map(String::as_str) != Some("completed")
        && std::time::Instant::now() < give_up
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let events = recorded();
    assert_eq!(events.first().map(String::as_str), Some("start"));
    assert_eq!(events.last().map(String::as_str), Some("completed"));
    assert!(events.iter().any(|e| e == "output"));
    assert!(events.iter().any(|e| e == "logs"));
    assert!(s.webhook_deliveries().iter().all(|d| d.status == Some(200)));
}

#[test]
fn filter_and_completed_retries_keep_the_id() {
    let secret = "whsec_dGVzdC1zZWNyZXQtZm9yLXdlYmhvb2tzIQ==";
    let s = start(Options {
        webhook_secret: secret.into(),
        ..fast()
    });
    let api = Api::new(&s);
    let (url, got) = receiver(1);
    let r = api.post(
        "/v1/models/fake/fail/predictions",
        &json!({"input": {}, "webhook": url, "webhook_events_filter": ["completed"]}),
    );
    assert_eq!(r.status, 201);
    let all = wait_for(&got, |v| v.len() >= 2);
    std::thread::sleep(Duration::from_millis(100));
    let all_now = got.lock().unwrap().clone();
    assert_eq!(
        all_now.len(),
        2,
        "only the completed event, attempted twice"
    );
    assert_eq!(all[0].header("webhook-id"), all[1].header("webhook-id"));
    for g in &all {
        verify(secret, g);
        assert_eq!(g.json()["status"], "failed");
    }
    let d = s.webhook_deliveries();
    assert_eq!(
        d.iter().map(|d| (d.attempt, d.status)).collect::<Vec<_>>(),
        [(1, Some(500)), (2, Some(200))]
    );
    assert_eq!(
        d[0].signature,
        replicate_fake::sign_webhook(secret, &d[0].webhook_id, d[0].timestamp, &d[0].body)
    );
}
