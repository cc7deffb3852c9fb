//! Sans-IO core of a Replicate API client.
//!
//! This crate builds [`http::Request`]s and parses [`http::Response`]s for the
//! [Replicate HTTP API](https://replicate.com/docs/reference/http), and models every multi-step
//! operation (waiting for a prediction, running one, retrying, paginating) as a state machine
//! that takes the time as input. It performs no I/O, reads no clock and needs no async runtime:
//! `replicate-ureq` and `replicate-reqwest` drive it, and so can any transport of yours.
//!
//! - [`Config`]: base URL (the public API or a proxy such as `https://proxy.example/replicate`),
//!   token, user agent.
//! - [`Endpoint`]: one operation = a request builder + a parser. [`Call`] runs one with the retry
//!   rules ([`RetryPolicy`], [`RetryClass`]).
//! - [`Prediction`], [`Status`]: the data and the status machine.
//! - [`Wait`], [`Run`]: the waiting and running state machines ([`Flow`], [`Step`]).
//! - [`sse`]: an incremental server-sent-events decoder; [`webhook`]: signature verification.
//!
//! # Driving a flow
//!
//! ```
//! use std::time::Instant;
//! use replicate_protocol::{Config, CreatePrediction, Flow, Run, Step, SyncWait, WaitOptions};
//! use serde_json::json;
//!
//! let cfg = Config::new("r8_token");
//! let create = CreatePrediction::new("black-forest-labs/flux-schnell".parse().unwrap())
//!     .input(json!({"prompt": "a cat"}))
//!     .sync(SyncWait::Max);
//! let mut run = Run::new(cfg, create, WaitOptions::default());
//! let now = Instant::now();
//! match run.poll(now) {
//!     Step::Send(out) => {
//!         assert_eq!(out.request.method(), "POST");
//!         // ... send `out.request` with a timeout of at least `out.timeout(default)`, then
//!         // call run.handle_response(response, now) or run.handle_error(error, now).
//!     }
//!     _ => unreachable!(),
//! }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod config;
pub mod create;
pub mod download_plan;
pub mod endpoint;
pub mod error;
pub mod flow;
pub mod input;
pub mod output;
pub mod prediction;
pub mod settings;
pub mod sse;
pub mod stream;
pub mod text;
pub mod wait;
pub mod webhook;

pub mod api;

pub use config::{ApiToken, BaseUrl, Config, DEFAULT_BASE_URL, DEFAULT_USER_AGENT};
pub use create::{CancelAfter, CreatePrediction, SyncWait, Target, WebhookEvent};
pub use endpoint::{
    CancelPrediction, Endpoint, GetPrediction, ListPredictions, Page, Paginated, RetryClass,
    check_status, cursor_of, parse_empty, parse_json, parse_prediction,
};
pub use error::{
    ApiError, Error, PaginationError, Problem, RateLimit, RetryAfter, TransportError,
    TransportErrorKind,
};
pub use flow::{Call, Flow, Outgoing, RetryPolicy, SERVER_HOLD_MARGIN, Step, transport_failure};
pub use input::{FileInput, Prepared};
pub use output::{DownloadLimits, OutputRef};
pub use prediction::{Metrics, ModelRef, Prediction, PredictionUrls, Status, is_version_id};
pub use settings::{ClientSettings, DEFAULT_MAX_PAGES, Pager, PagerStep, Resolved};
pub use stream::{OutputText, StreamAuth, StreamOptions, StreamSession, StreamStep};
pub use wait::{JobKind, PollPolicy, Run, Wait, WaitOptions};
