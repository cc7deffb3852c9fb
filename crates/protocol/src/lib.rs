#![doc = include_str!("../README.md")]
//!
//! # Contents
//!
//! - [`Config`]: base URL (the public API or a proxy such as `https://proxy.example/replicate`),
//!   token, user agent.
//! - [`Endpoint`]: one operation = a request builder + a parser. [`Call`] runs one with the retry
//!   rules ([`RetryPolicy`], [`RetryClass`]).
//! - [`Prediction`], [`Status`]: the data and the status machine.
//! - [`Wait`], [`Run`]: the waiting and running state machines; [`Pager`], [`StreamSession`],
//!   [`Download`]: listings, event streams and downloads, the same way ([`Flow`], [`Step`]).
//! - [`Batch`]: thousands of predictions of one target, paced, resumable from a journal, never
//!   created twice ([`batch`]).
//! - [`schema`]: a model version's input and output schemas, local input validation
//!   ([`InputSchema::validate`]) and command-line coercion; [`validate`]: the same check before
//!   a create, its schema fetched and cached ([`Validated`], [`Validation`]).
//! - [`sse`]: an incremental server-sent-events decoder; [`webhook`]: signature verification.
//!
//! # Driving a flow
//!
//! Every multi-step operation is a [`Flow`]: a call with its retries ([`Call`]), a wait
//! ([`Wait`]), a run ([`Run`]), a listing ([`Pager`]), an event stream ([`StreamSession`]), a
//! download ([`Download`]). The driver asks it for a [`Step`] and does what it says; the rule is
//! written once, with a diagram, in [`flow`]. [`drive()`] is that rule with a closure as the
//! transport, as in the example above.
//!
//! `tests/examples/custom_transport.rs` in the repository does the same over a bare
//! `TcpStream`, against the bundled fake server.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod adapter;
pub mod api;
pub mod batch;
pub mod call;
pub mod config;
pub mod download;
pub mod drive;
pub mod endpoint;
pub mod error;
pub mod flow;
pub mod input;
pub mod output;
pub mod pagination;
pub mod prediction;
pub mod progress;
pub mod retry;
pub mod schema;
pub mod settings;
pub mod sse;
pub mod stream;
pub mod text;
pub mod trace;
pub mod validate;
pub mod wait;
pub mod watch;
pub mod webhook;

pub use api::predictions::{
    CancelAfter, CancelPrediction, CreatePrediction, GetPrediction, ListPredictions, SyncWait,
    Target, WebhookEvent,
};
pub use batch::{
    Batch, BatchOptions, BatchSpec, BatchStep, BatchSummary, Clock, Completion, CreateOutcome,
    ItemResult, Journal, JournalError, JournalRecord, RequestId,
};
pub use call::Call;
pub use config::{ApiToken, BaseUrl, Config, DEFAULT_BASE_URL, DEFAULT_USER_AGENT, Limits};
pub use download::{
    Download, DownloadItem, DownloadLimits, Downloaded, TransferProgress, TransferSnapshot,
};
pub use drive::{drive, drive_items};
pub use endpoint::{Endpoint, RetryClass, check_status, parse_empty, parse_json, parse_prediction};
pub use error::{
    ApiError, Error, OutputError, OutputErrorKind, PaginationError, Problem, RateLimit, RetryAfter,
    StreamError, StreamErrorKind, TransportError, TransportErrorKind,
};
pub use flow::{
    BodyRead, Flow, FlowInfo, Outgoing, SERVER_HOLD_MARGIN, SleepReason, Step, Timeout,
};
pub use input::{FileInput, Prepared};
pub use output::{OutputRef, SaveOptions};
pub use pagination::{DEFAULT_MAX_PAGES, Page, Pager, Paginated, cursor_of};
pub use prediction::{Metrics, ModelRef, Prediction, PredictionUrls, Status, is_version_id};
pub use progress::Progress;
pub use retry::{RetryPolicy, transport_failure};
pub use schema::{
    FieldProblem, FieldType, InputField, InputSchema, Mode, OutputSchema, OutputShape, ProblemKind,
    ValidationErrors, VersionSchema,
};
pub use settings::{ClientSettings, EffectiveSettings};
pub use stream::{OutputText, StreamAuth, StreamOptions, StreamSession};
pub use trace::FlowSpan;
pub use validate::{SchemaCache, Validated, Validation};
pub use wait::{JobKind, PollPolicy, Run, Wait, WaitOptions};
pub use watch::{Update, Watch};
