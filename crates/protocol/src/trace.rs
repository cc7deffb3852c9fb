//! The tracing span every flow runs in, written once for every driver.
//!
//! A driver creates a [`FlowSpan`] when it starts a flow, enters it whenever it works on the
//! flow (so its `replicate: sending request` events, and anything a transport logs, are inside
//! it), and calls [`FlowSpan::observe`] after each step so that the prediction id is recorded as
//! soon as the flow learns it. Both clients of this workspace do; a driver of your own can too.
//!
//! The span is named `replicate`, has the target `replicate`, the level `INFO`, and these fields:
//!
//! | field           | value                                                                  |
//! |-----------------|------------------------------------------------------------------------|
//! | `operation`     | [`FlowInfo::operation`](crate::FlowInfo::operation): `create`, `get`, `cancel`, `run`, `wait`, `watch`, `stream`, `download`, `list`, `upload`, or an endpoint's type name |
//! | `model`         | `owner/name`, `owner/name:version`, a version id or `deployment owner/name`, when the flow runs a model |
//! | `prediction_id` | the prediction's id, from the start or as soon as the create is answered |
//!
//! Nothing else is recorded: no input, no output, no URL with a query, no token. When no
//! subscriber wants the span, building it costs one check and nothing is described.
//!
//! ```
//! use replicate_protocol::{Config, FlowSpan, Wait, WaitOptions};
//!
//! let wait = Wait::new(Config::new("r8_token"), "p1", WaitOptions::default());
//! let mut span = FlowSpan::new(&wait);
//! let _entered = span.span().clone().entered();
//! // ... drive the flow; after each step:
//! span.observe(&wait);
//! ```

use tracing::Span;
use tracing::field::Empty;

use crate::Flow;

/// The span of one flow, and whether its prediction id is recorded yet. See the
/// [module documentation](self).
#[derive(Debug)]
pub struct FlowSpan {
    span: Span,
    id_recorded: bool,
}

impl FlowSpan {
    /// The span of `flow`, described when a subscriber wants it.
    pub fn new<F: Flow + ?Sized>(flow: &F) -> Self {
        let span = tracing::info_span!(
            target: "replicate",
            "replicate",
            operation = Empty,
            model = Empty,
            prediction_id = Empty
        );
        let mut this = FlowSpan {
            id_recorded: span.is_disabled(),
            span,
        };
        if !this.span.is_disabled() {
            let info = flow.describe();
            this.span.record("operation", info.operation);
            if let Some(model) = &info.model {
                this.span.record("model", model.as_str());
            }
            if let Some(id) = &info.prediction_id {
                this.span.record("prediction_id", id.as_str());
                this.id_recorded = true;
            }
        }
        this
    }

    /// The span, to enter or to instrument a future with.
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// Records the flow's prediction id once it is known (cheap once recorded, or when nothing
    /// listens).
    pub fn observe<F: Flow + ?Sized>(&mut self, flow: &F) {
        if !self.id_recorded
            && let Some(id) = flow.prediction_id()
        {
            self.span.record("prediction_id", id);
            self.id_recorded = true;
        }
    }
}
