//! Cost per call: client CPU time per get-prediction over keep-alive, with each SDK client and
//! with the same GET made by bare ureq / reqwest parsed into a `serde_json::Value`; and the
//! connections a client opens for sequential calls.

use std::hint::black_box;
use std::time::{Duration, Instant};

use http::header::{ACCEPT, AUTHORIZATION, USER_AGENT};
use replicate_protocol::DEFAULT_USER_AGENT;
use serde_json::Value;

use crate::sys;

/// Something that makes `n` get-prediction calls in a row.
pub trait Caller {
    /// The name in the report.
    fn name(&self) -> &'static str;
    /// Makes `n` calls, each parsing the whole answer.
    fn calls(&mut self, n: usize) -> Result<(), String>;
}

/// What every caller needs: where the prediction is and how to authenticate.
#[derive(Debug, Clone)]
pub struct Target {
    /// The API origin.
    pub base: String,
    /// The bearer token.
    pub token: String,
    /// The id of a succeeded prediction.
    pub id: String,
}

impl Target {
    fn url(&self) -> String {
        format!("{}/v1/predictions/{}", self.base, self.id)
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }
}

fn current_thread() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

/// `replicate_ureq::Client::get`.
pub struct SdkUreq {
    client: replicate_ureq::Client,
    id: String,
}

impl SdkUreq {
    /// A new client (a new connection pool).
    pub fn new(t: &Target) -> Result<Self, String> {
        let client = replicate_ureq::Client::builder()
            .token(&t.token)
            .base_url(&t.base)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(SdkUreq {
            client,
            id: t.id.clone(),
        })
    }
}

impl Caller for SdkUreq {
    fn name(&self) -> &'static str {
        "replicate-ureq"
    }
    fn calls(&mut self, n: usize) -> Result<(), String> {
        for _ in 0..n {
            let p = self.client.get(&self.id).map_err(|e| e.to_string())?;
            black_box(p);
        }
        Ok(())
    }
}

/// The same GET with a bare `ureq::Agent`, parsed into a `Value`.
pub struct BareUreq {
    agent: ureq::Agent,
    url: String,
    auth: String,
}

impl BareUreq {
    /// A new agent set up like the SDK's (no redirects, statuses not errors, same user agent).
    pub fn new(t: &Target) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(DEFAULT_USER_AGENT)
            .build()
            .new_agent();
        BareUreq {
            agent,
            url: t.url(),
            auth: t.auth(),
        }
    }
}

impl Caller for BareUreq {
    fn name(&self) -> &'static str {
        "bare-ureq"
    }
    fn calls(&mut self, n: usize) -> Result<(), String> {
        for _ in 0..n {
            let mut resp = self
                .agent
                .get(&self.url)
                .header(AUTHORIZATION, &self.auth)
                .header(ACCEPT, "application/json")
                .call()
                .map_err(|e| e.to_string())?;
            let bytes = resp.body_mut().read_to_vec().map_err(|e| e.to_string())?;
            let v: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
            black_box(v);
        }
        Ok(())
    }
}

/// `replicate_reqwest::Client::get` on a current-thread runtime.
pub struct SdkReqwest {
    rt: tokio::runtime::Runtime,
    client: replicate_reqwest::Client,
    id: String,
}

impl SdkReqwest {
    /// A new client (a new connection pool) and runtime.
    pub fn new(t: &Target) -> Result<Self, String> {
        let client = replicate_reqwest::Client::builder()
            .token(&t.token)
            .base_url(&t.base)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(SdkReqwest {
            rt: current_thread()?,
            client,
            id: t.id.clone(),
        })
    }
}

impl Caller for SdkReqwest {
    fn name(&self) -> &'static str {
        "replicate-reqwest"
    }
    fn calls(&mut self, n: usize) -> Result<(), String> {
        let (client, id) = (&self.client, &self.id);
        self.rt.block_on(async move {
            for _ in 0..n {
                let p = client.get(id).await.map_err(|e| e.to_string())?;
                black_box(p);
            }
            Ok(())
        })
    }
}

/// The same GET with a bare `reqwest::Client` (built like the SDK's), parsed into a `Value`.
pub struct BareReqwest {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    url: String,
    auth: String,
}

impl BareReqwest {
    /// A new client and runtime.
    pub fn new(t: &Target) -> Result<Self, String> {
        let http = replicate_reqwest::http_client_builder()
            .map_err(|e| e.to_string())?
            .build()
            .map_err(|e| e.to_string())?;
        Ok(BareReqwest {
            rt: current_thread()?,
            http,
            url: t.url(),
            auth: t.auth(),
        })
    }
}

impl Caller for BareReqwest {
    fn name(&self) -> &'static str {
        "bare-reqwest"
    }
    fn calls(&mut self, n: usize) -> Result<(), String> {
        let (http, url, auth) = (&self.http, &self.url, &self.auth);
        self.rt.block_on(async move {
            for _ in 0..n {
                let resp = http
                    .get(url)
                    .header(AUTHORIZATION, auth)
                    .header(ACCEPT, "application/json")
                    .header(USER_AGENT, DEFAULT_USER_AGENT)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
                let v: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
                black_box(v);
            }
            Ok(())
        })
    }
}

/// The four callers, in report order: each SDK client next to its bare baseline.
pub fn callers(t: &Target) -> Result<Vec<Box<dyn Caller>>, String> {
    Ok(vec![
        Box::new(SdkUreq::new(t)?),
        Box::new(BareUreq::new(t)),
        Box::new(SdkReqwest::new(t)?),
        Box::new(BareReqwest::new(t)?),
    ])
}

/// Per-call cost of one caller over the rounds.
#[derive(Debug, Clone)]
pub struct Cost {
    /// The caller's name.
    pub name: &'static str,
    /// CPU µs per call, one entry per round.
    pub cpu_us: Vec<f64>,
    /// Wall µs per call, one entry per round.
    pub wall_us: Vec<f64>,
    /// System share of the CPU time over all rounds (coarse: clock ticks), in percent.
    pub sys_percent: f64,
}

/// Runs `warmup` calls on each caller, then `rounds` rounds of `n` calls, the callers taking
/// turns within each round so that a drift of the machine affects them alike.
pub fn measure(
    callers: &mut [Box<dyn Caller>],
    n: usize,
    rounds: usize,
    warmup: usize,
) -> Result<Vec<Cost>, String> {
    let mut costs: Vec<Cost> = callers
        .iter()
        .map(|c| Cost {
            name: c.name(),
            cpu_us: Vec::new(),
            wall_us: Vec::new(),
            sys_percent: f64::NAN,
        })
        .collect();
    let mut ticks = vec![(0u64, 0u64); callers.len()];
    for c in callers.iter_mut() {
        c.calls(warmup)?;
    }
    for _ in 0..rounds {
        for ((c, cost), tick) in callers.iter_mut().zip(&mut costs).zip(&mut ticks) {
            let (u0, s0) = sys::user_sys_ticks();
            let cpu0 = sys::cpu_time();
            let wall0 = Instant::now();
            c.calls(n)?;
            let wall = wall0.elapsed();
            let cpu = sys::cpu_time().saturating_sub(cpu0);
            let (u1, s1) = sys::user_sys_ticks();
            tick.0 += u1.saturating_sub(u0);
            tick.1 += s1.saturating_sub(s0);
            cost.cpu_us.push(per_call_us(cpu, n));
            cost.wall_us.push(per_call_us(wall, n));
        }
    }
    for (cost, (u, s)) in costs.iter_mut().zip(ticks) {
        if u + s > 0 {
            cost.sys_percent = 100.0 * s as f64 / (u + s) as f64;
        }
    }
    Ok(costs)
}

fn per_call_us(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n.max(1) as f64
}
