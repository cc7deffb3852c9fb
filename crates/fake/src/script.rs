//! Scripted model behaviour.

use std::time::Duration;

use serde_json::{Map, Value, json};

/// A length of time in a script: a number of [`Options::tick`](crate::Options::tick)s or a fixed
/// duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span {
    /// This many scheduling ticks.
    Ticks(u32),
    /// This fixed duration, whatever the tick.
    Time(Duration),
}

impl Span {
    /// The duration this span lasts with the given tick.
    pub fn resolve(self, tick: Duration) -> Duration {
        match self {
            Span::Ticks(n) => tick.saturating_mul(n),
            Span::Time(d) => d,
        }
    }
}

/// What a successful prediction outputs.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// One URL string to a small image on the files origin (the input `num_outputs` is
    /// ignored; see [`Urls`](Output::Urls)).
    Url,
    /// A list of URLs to small images on the files origin: this many by default.
    ///
    /// Like a real image model, a prediction's input `num_outputs` chooses how many: an integer
    /// from 1 to [`MAX_NUM_OUTPUTS`]. Any other value (a string, a decimal, 0, 11, ...) makes the
    /// create fail with `422 Input validation failed`
    /// (`- input.num_outputs: Must be an integer from 1 to 10`), as Replicate answers input that
    /// does not match the model's schema. `null` counts as absent. The versions of such a model
    /// list `num_outputs` in their input schema, and a `metrics.image_count` of the script
    /// reports the number of files made.
    Urls(usize),
    /// This JSON value, as is.
    Json(Value),
    /// A list of string tokens that appear one by one while processing (partial output) and are
    /// streamed as `output` events. The model streams.
    Text(Vec<String>),
    /// A small `data:image/png;base64,...` URI string.
    DataUri,
    /// A list of URLs to large generated files on the files origin, `out-0.bin`,
    /// `out-1.bin`, ... (`application/octet-stream`), each a [`SyntheticFile`] served in
    /// constant memory whatever its size, with `Accept-Ranges`, `ETag` and `Range` support (see
    /// the crate docs).
    ///
    /// By default a prediction makes `files` files of `bytes` bytes, file `i` with seed `i`; a
    /// prediction's input chooses otherwise:
    ///
    /// - `num_outputs`: how many files, an integer from 1 to [`MAX_NUM_OUTPUTS`];
    /// - `output_bytes`: the length of each file, an integer from 0 to [`MAX_OUTPUT_BYTES`];
    /// - `seed`: an integer from 0 to 2^64 - 1; file `i` is
    ///   `SyntheticFile::new(seed + i, output_bytes)` (wrapping).
    ///
    /// Other values make the create fail with `422 Input validation failed`, like
    /// [`Urls`](Output::Urls)' `num_outputs`; `null` counts as absent. The versions of such a
    /// model list the three in their input schema. The built-in `fake/large-files` model
    /// outputs one file of 1 MiB by default.
    ///
    /// [`SyntheticFile`]: crate::SyntheticFile
    Synthetic {
        /// How many files by default.
        files: usize,
        /// The length of each file by default.
        bytes: u64,
    },
}

/// How a prediction ends.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// `succeeded` with this output.
    Succeed(Output),
    /// `failed` with this `error`; `logs` are appended to the script's log lines.
    Fail {
        /// The `error` string of the failed prediction.
        error: String,
        /// Extra log lines, emitted after the script's own.
        logs: Vec<String>,
    },
    /// `canceled` by itself at the end of processing.
    Cancel,
    /// `aborted` at the end of the starting phase: it never starts (no `started_at`).
    Abort,
}

/// The behaviour of a model: schedule, logs and outcome.
///
/// A prediction is `starting` for [`starting`](Self::starting), then `processing` for
/// [`processing`](Self::processing), then ends per [`outcome`](Self::outcome), all measured from
/// its creation. Log lines appear evenly spread over processing (the first when it begins), and
/// text tokens likewise (the last before it ends).
///
/// ```
/// use replicate_fake::{ModelScript, Output};
/// let script = ModelScript::succeed(Output::Text(vec!["a".into(), "b".into()]))
///     .starting_ticks(1)
///     .processing_ticks(4)
///     .logs(["loading", "running"]);
/// # let _ = script;
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ModelScript {
    /// How long the prediction stays `starting` (default 2 ticks).
    pub starting: Span,
    /// How long it stays `processing` (default 3 ticks).
    pub processing: Span,
    /// How it ends (default succeeds with one URL).
    pub outcome: Outcome,
    /// Log lines written while processing.
    pub logs: Vec<String>,
    /// The version id of the model; `None` derives a stable 64-hex id from the model name.
    pub version: Option<String>,
    /// Extra version ids that resolve to this model in `POST /v1/predictions`.
    pub extra_versions: Vec<String>,
    /// Whether predictions get `urls.stream`; `None` means "streams iff the output is
    /// [`Output::Text`]".
    pub streams: Option<bool>,
    /// A status reported instead of `processing` while processing (e.g. `"quantum"`), to test
    /// clients against statuses they don't know.
    pub running_status: Option<String>,
    /// The extension of output files (default `"png"`; `"jpg"`, `"png"` serve real tiny images).
    /// [`Output::Synthetic`] files are always `.bin`.
    pub file_extension: String,
    /// Extra entries of `metrics` once finished (e.g. `image_count`).
    pub extra_metrics: Map<String, Value>,
    /// Whether the model is an official one (`is_official` in `GET /v1/models/...`).
    pub official: bool,
    /// The `openapi_schema` its versions publish, in place of the one derived from the
    /// outcome (for example a real model's schema from a fixture). `None` keeps the derived one.
    pub openapi_schema: Option<Value>,
}

impl Default for ModelScript {
    fn default() -> Self {
        ModelScript {
            starting: Span::Ticks(2),
            processing: Span::Ticks(3),
            outcome: Outcome::Succeed(Output::Url),
            logs: vec!["Loading model".to_owned(), "Running prediction".to_owned()],
            version: None,
            extra_versions: Vec::new(),
            streams: None,
            running_status: None,
            file_extension: "png".to_owned(),
            extra_metrics: Map::new(),
            official: false,
            openapi_schema: None,
        }
    }
}

impl ModelScript {
    /// A default script that succeeds with `output`.
    pub fn succeed(output: Output) -> Self {
        ModelScript {
            outcome: Outcome::Succeed(output),
            ..Default::default()
        }
    }

    /// A default script that fails with this error message.
    pub fn fail(error: impl Into<String>) -> Self {
        ModelScript {
            outcome: Outcome::Fail {
                error: error.into(),
                logs: Vec::new(),
            },
            ..Default::default()
        }
    }

    /// A default script that cancels itself at the end of processing.
    pub fn cancel() -> Self {
        ModelScript {
            outcome: Outcome::Cancel,
            ..Default::default()
        }
    }

    /// A default script that is aborted before it starts.
    pub fn abort() -> Self {
        ModelScript {
            outcome: Outcome::Abort,
            ..Default::default()
        }
    }

    /// A default script that streams these text tokens.
    pub fn text<S: Into<String>>(tokens: impl IntoIterator<Item = S>) -> Self {
        Self::succeed(Output::Text(tokens.into_iter().map(Into::into).collect()))
    }

    /// Makes its versions publish this `openapi_schema` (a whole OpenAPI document, as
    /// `GET /v1/models/{owner}/{name}/versions/{id}` returns it) in place of the derived one.
    pub fn openapi_schema(mut self, doc: Value) -> Self {
        self.openapi_schema = Some(doc);
        self
    }

    /// Sets the outcome.
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// Sets the starting phase to `n` ticks.
    pub fn starting_ticks(mut self, n: u32) -> Self {
        self.starting = Span::Ticks(n);
        self
    }

    /// Sets the processing phase to `n` ticks.
    pub fn processing_ticks(mut self, n: u32) -> Self {
        self.processing = Span::Ticks(n);
        self
    }

    /// Sets the starting phase to a fixed duration.
    pub fn starting_time(mut self, d: Duration) -> Self {
        self.starting = Span::Time(d);
        self
    }

    /// Sets the processing phase to a fixed duration.
    pub fn processing_time(mut self, d: Duration) -> Self {
        self.processing = Span::Time(d);
        self
    }

    /// Sets the log lines.
    pub fn logs<S: Into<String>>(mut self, lines: impl IntoIterator<Item = S>) -> Self {
        self.logs = lines.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the model's version id.
    pub fn version(mut self, id: impl Into<String>) -> Self {
        self.version = Some(id.into());
        self
    }

    /// Adds a version id that also resolves to this model (e.g. a real model's 64-hex version).
    pub fn also_version(mut self, id: impl Into<String>) -> Self {
        self.extra_versions.push(id.into());
        self
    }

    /// Forces whether predictions stream.
    pub fn streams(mut self, yes: bool) -> Self {
        self.streams = Some(yes);
        self
    }

    /// Reports this status instead of `processing` while processing.
    pub fn running_status(mut self, status: impl Into<String>) -> Self {
        self.running_status = Some(status.into());
        self
    }

    /// Sets the extension of output files.
    pub fn file_extension(mut self, ext: impl Into<String>) -> Self {
        self.file_extension = ext.into();
        self
    }

    /// Whether predictions of this model get `urls.stream`.
    pub fn is_streaming(&self) -> bool {
        self.streams
            .unwrap_or(matches!(self.outcome, Outcome::Succeed(Output::Text(_))))
    }

    /// Whether the model honours the input `num_outputs` (its output is [`Output::Urls`] or
    /// [`Output::Synthetic`]).
    pub(crate) fn takes_num_outputs(&self) -> bool {
        matches!(
            self.outcome,
            Outcome::Succeed(Output::Urls(_) | Output::Synthetic { .. })
        )
    }

    /// Whether the model makes synthetic files (it honours `output_bytes` and `seed`).
    pub(crate) fn makes_synthetic_files(&self) -> bool {
        matches!(self.outcome, Outcome::Succeed(Output::Synthetic { .. }))
    }

    /// All log lines, including a failure's extra lines.
    pub(crate) fn all_logs(&self) -> Vec<String> {
        let mut v = self.logs.clone();
        if let Outcome::Fail { logs, .. } = &self.outcome {
            v.extend(logs.iter().cloned());
        }
        v
    }
}

/// The largest `num_outputs` an [`Output::Urls`] or [`Output::Synthetic`] model accepts in a
/// prediction's input.
pub const MAX_NUM_OUTPUTS: usize = 10;

/// The largest `output_bytes` an [`Output::Synthetic`] model accepts in a prediction's input:
/// 16 GiB per file.
pub const MAX_OUTPUT_BYTES: u64 = 16 << 30;

/// The default file length of the built-in `fake/large-files` model: 1 MiB.
pub const LARGE_FILES_DEFAULT_BYTES: u64 = 1 << 20;

/// The version id of the `black-forest-labs/flux-schnell` mimic, as in the seed.
pub const FLUX_SCHNELL_VERSION: &str = "dp-4d0bcc010b3049749a251855f12800be";

/// The names of the built-in scripted models, available without
/// [`set_model`](crate::FakeHandle::set_model).
pub const BUILTIN_MODELS: &[&str] = &[
    "black-forest-labs/flux-schnell",
    "fake/fail",
    "fake/cancel",
    "fake/abort",
    "fake/text",
    "fake/text-multiline",
    "fake/json",
    "fake/urls",
    "fake/slow",
    "fake/data-uri",
    "fake/unknown-status",
    "fake/large-files",
];

/// The tokens of `fake/text`.
pub const TEXT_TOKENS: &[&str] = &["Hello", " world", "!"];

/// The tokens of `fake/text-multiline`: a token with an inner newline, a token made of two
/// newlines, and a plain one.
pub const MULTILINE_TOKENS: &[&str] = &["first line\nsecond line", "\n\n", "after a blank line"];

/// The built-in script of `name`, if it is one of [`BUILTIN_MODELS`].
pub fn builtin_script(name: &str) -> Option<ModelScript> {
    let s = match name {
        "black-forest-labs/flux-schnell" => {
            let mut m = Map::new();
            m.insert("image_count".to_owned(), json!(1));
            ModelScript {
                outcome: Outcome::Succeed(Output::Urls(1)),
                logs: [
                    "Using seed: 62182",
                    "running quantized prediction",
                    "Using seed: 62182",
                    "  0%|          | 0/4 [00:00<?, ?it/s]",
                    " 75%|███████▌  | 3/4 [00:00<00:00, 15.38it/s]",
                    "100%|██████████| 4/4 [00:00<00:00, 13.43it/s]",
                    "Total safe images: 1 out of 1",
                ]
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
                version: Some(FLUX_SCHNELL_VERSION.to_owned()),
                streams: Some(true),
                file_extension: "jpg".to_owned(),
                extra_metrics: m,
                official: true,
                openapi_schema: Some(crate::cog::flux_schnell_schema(MAX_NUM_OUTPUTS)),
                ..Default::default()
            }
        }
        "fake/fail" => ModelScript {
            outcome: Outcome::Fail {
                error: "Fake failure: the model raised an exception".to_owned(),
                logs: vec![
                    "Traceback (most recent call last):".to_owned(),
                    "RuntimeError: Fake failure: the model raised an exception".to_owned(),
                ],
            },
            ..Default::default()
        },
        "fake/cancel" => ModelScript::cancel(),
        "fake/abort" => ModelScript::abort(),
        "fake/text" => ModelScript::text(TEXT_TOKENS.iter().copied())
            .processing_ticks(4)
            .logs(["Generating text"]),
        "fake/text-multiline" => ModelScript::text(MULTILINE_TOKENS.iter().copied())
            .processing_ticks(4)
            .logs(["Generating text"]),
        "fake/json" => ModelScript::succeed(Output::Json(json!({
            "answer": 42,
            "label": "cat",
            "scores": [0.9, 0.1],
            "nested": {"ok": true, "none": null}
        }))),
        "fake/urls" => ModelScript::succeed(Output::Urls(3)),
        "fake/slow" => ModelScript::default().processing_ticks(50),
        "fake/data-uri" => ModelScript::succeed(Output::DataUri),
        "fake/unknown-status" => ModelScript::succeed(Output::Json(json!("done")))
            .processing_ticks(4)
            .running_status("quantum"),
        "fake/large-files" => ModelScript::succeed(Output::Synthetic {
            files: 1,
            bytes: LARGE_FILES_DEFAULT_BYTES,
        })
        .logs(["Generating files"]),
        _ => return None,
    };
    Some(s)
}
