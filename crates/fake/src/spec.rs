//! One-line text forms of fault rules and failing models, for command lines: the
//! `--fault` and `--fail-model` flags of `replicate-fake` and `replicate fake-server`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::fault::{EchoFormat, Fault, FaultRule, Matcher, RetryAfter};
use crate::script::{ModelScript, Outcome};

/// The grammar of `--fault` and `--fail-model`, as the command lines' `--help` shows it.
pub const SPEC_HELP: &str = "\
Faults (--fault METHOD:PATH_SUBSTRING:FAULT[:TIMES], repeatable):
  METHOD           an HTTP method (any case), or * or nothing for any method
  PATH_SUBSTRING   matched against the request's path and query (no ':'); * or nothing
                   matches every request, on both origins
  TIMES            how many matching requests it spoils (default 1; * for all of them).
                   Rules are tried in order; the first matching one applies.
  FAULT is one of:
    400..599        answer this status instead (429: Replicate's throttle body and
                    Retry-After: 1; 502/504: a proxy's HTML page); nothing happens
    STATUS=SECS     the same, with Retry-After: SECS
    reset           close the connection (TCP RST) before reading the request; nothing happens
    reset-after     apply the request, then close the connection (RST) without answering
    delay=MS        wait MS milliseconds (at most 3600000) before handling the request
    truncated       apply the request; answer its JSON cut in half
    garbage         apply the request; answer a body that is not JSON
    huge=BYTES      answer 200 with a JSON body of BYTES bytes; nothing happens
    cut=BYTES       apply the request; send the headers, then only BYTES bytes of the body
                    (of a 206 answer: BYTES from its range's start), then close
    corrupt[=OFFSET]
                    apply the request; send the real headers (ETag, Content-Length) with the
                    byte at OFFSET (default 0) of the body inverted
    drip=MS,BYTES   apply the request; send the body BYTES bytes every MS milliseconds
    apply-then=STATUS
                    apply the request, then answer STATUS instead (e.g. 502 after a create)
    echo[=STATUS]   answer STATUS (default 401) echoing the request's headers, token included,
                    as problem JSON (echo-html=STATUS and echo-text=STATUS: as HTML or text)
    cursor=TEXT     apply a list request; make the page's next URL carry cursor TEXT
    drop-stream=N   an SSE stream: send N events, then drop the connection
    silent-stream   an SSE stream: send the headers, then nothing
  Examples: --fault POST:/predictions:503:2   --fault GET:/v1/predictions/:reset
            --fault '*:*:delay=1500'          --fault GET:/v1/streams/:drop-stream=2
            --fault GET:/xezq/:cut=1048576    --fault GET:/download:corrupt=100

Failing models (--fail-model OWNER/NAME[:MESSAGE], repeatable): every prediction of the model
fails with MESSAGE as its error (default \"Fake failure: the model raised an exception\"),
after logging a traceback.";

/// The error of a model scripted by `--fail-model OWNER/NAME` without a message.
pub const DEFAULT_FAIL_MESSAGE: &str = "Fake failure: the model raised an exception";

/// The longest `delay=MS` accepted: one hour.
const MAX_DELAY_MS: u64 = 3_600_000;

/// Why a `--fault` or `--fail-model` value could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    message: String,
}

impl SpecError {
    fn new(message: impl Into<String>) -> Self {
        SpecError {
            message: message.into(),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SpecError {}

/// An HTTP status from 400 to 599.
fn error_status(s: &str, what: &str) -> Result<u16, SpecError> {
    match s.parse::<u16>() {
        Ok(n) if (400..=599).contains(&n) => Ok(n),
        _ => Err(SpecError::new(format!(
            "{what}: expected an HTTP status from 400 to 599, got {s:?}"
        ))),
    }
}

/// A whole number (of bytes, events, milliseconds or seconds).
fn number<T: FromStr>(s: &str, what: &str) -> Result<T, SpecError> {
    s.parse::<T>()
        .map_err(|_| SpecError::new(format!("{what}: expected a whole number, got {s:?}")))
}

impl FromStr for Fault {
    type Err = SpecError;

    /// Reads the `FAULT` part of a `--fault` value (see [`SPEC_HELP`]): `503`, `429=5`,
    /// `reset`, `reset-after`, `delay=MS`, `truncated`, `garbage`, `huge=BYTES`, `cut=BYTES`,
    /// `corrupt[=OFFSET]`, `drip=MS,BYTES`, `apply-then=STATUS`, `echo[=STATUS]`, `echo-html=STATUS`,
    /// `echo-text=STATUS`, `cursor=TEXT`, `drop-stream=N` or `silent-stream`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (name, arg) = match s.split_once('=') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (s, None),
        };
        let need = |what: &str| {
            arg.filter(|a| !a.is_empty())
                .ok_or_else(|| SpecError::new(format!("{name}: expected {name}={what}")))
        };
        let none = |f: Fault| match arg {
            None => Ok(f),
            Some(_) => Err(SpecError::new(format!("{name} takes no value"))),
        };
        let echo = |format: EchoFormat| -> Result<Fault, SpecError> {
            let status = match arg {
                None => 401,
                Some(a) => match a.parse::<u16>() {
                    Ok(n) if (200..=599).contains(&n) => n,
                    _ => {
                        return Err(SpecError::new(format!(
                            "{name}: expected an HTTP status from 200 to 599, got {a:?}"
                        )));
                    }
                },
            };
            Ok(Fault::Echo { status, format })
        };
        if name.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty() {
            let status = error_status(name, "status fault")?;
            let retry_after = match arg {
                None if status == 429 => Some(RetryAfter::Seconds(1)),
                None => None,
                Some(a) => Some(RetryAfter::Seconds(number(a, "Retry-After seconds")?)),
            };
            return Ok(Fault::Status {
                status,
                retry_after,
                body: None,
            });
        }
        match name {
            "reset" => none(Fault::ResetBeforeRead),
            "reset-after" => none(Fault::ResetAfterRead),
            "truncated" => none(Fault::TruncatedJson),
            "garbage" => none(Fault::GarbageJson),
            "silent-stream" => none(Fault::SilentStream),
            "delay" => {
                let ms: u64 = number(need("MS")?, "delay")?;
                if ms > MAX_DELAY_MS {
                    return Err(SpecError::new(format!(
                        "delay: at most {MAX_DELAY_MS} milliseconds, got {ms}"
                    )));
                }
                Ok(Fault::Delay(Duration::from_millis(ms)))
            }
            "huge" => Ok(Fault::HugeBody(number(need("BYTES")?, "huge")?)),
            "cut" => Ok(Fault::CutAfter(number(need("BYTES")?, "cut")?)),
            "corrupt" => match arg {
                None => Ok(Fault::Corrupt(0)),
                Some(_) => Ok(Fault::Corrupt(number(need("OFFSET")?, "corrupt")?)),
            },
            "drip" => {
                let a = need("MS,BYTES")?;
                let Some((ms, bytes)) = a.split_once(',') else {
                    return Err(SpecError::new(format!(
                        "drip: expected drip=MS,BYTES, got drip={a}"
                    )));
                };
                let ms: u64 = number(ms.trim(), "drip interval")?;
                if ms > MAX_DELAY_MS {
                    return Err(SpecError::new(format!(
                        "drip: at most {MAX_DELAY_MS} milliseconds between writes, got {ms}"
                    )));
                }
                Ok(Fault::Drip {
                    interval: Duration::from_millis(ms),
                    chunk: number(bytes.trim(), "drip chunk")?,
                })
            }
            "apply-then" => Ok(Fault::ApplyThen {
                status: error_status(need("STATUS")?, "apply-then")?,
            }),
            "echo" => echo(EchoFormat::ProblemJson),
            "echo-html" => echo(EchoFormat::Html),
            "echo-text" => echo(EchoFormat::Text),
            "cursor" => Ok(Fault::NextCursor(need("TEXT")?.to_owned())),
            "drop-stream" => Ok(Fault::DropStreamAfter(number(need("N")?, "drop-stream")?)),
            "" => Err(SpecError::new("missing FAULT")),
            other => Err(SpecError::new(format!(
                "unknown fault {other:?}: expected a status (400-599), reset, reset-after, \
                 delay=MS, truncated, garbage, huge=BYTES, cut=BYTES, corrupt[=OFFSET], \
                 drip=MS,BYTES, apply-then=STATUS, echo[=STATUS], echo-html, echo-text, \
                 cursor=TEXT, drop-stream=N or silent-stream"
            ))),
        }
    }
}

impl FromStr for FaultRule {
    type Err = SpecError;

    /// Reads a `--fault` value, `METHOD:PATH_SUBSTRING:FAULT[:TIMES]` (see [`SPEC_HELP`]).
    ///
    /// ```
    /// use replicate_fake::{Fault, FaultRule, Matcher};
    /// let rule: FaultRule = "POST:/predictions:503:2".parse().unwrap();
    /// assert_eq!(rule, FaultRule::new(Matcher::new("POST", "/predictions"), Fault::status(503)).times(2));
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.trim().split(':').collect();
        let (method, path, fault, times) = match parts.as_slice() {
            [m, p, f] => (*m, *p, *f, None),
            [m, p, f, t] => (*m, *p, *f, Some(*t)),
            _ => {
                return Err(SpecError::new(format!(
                    "expected METHOD:PATH_SUBSTRING:FAULT[:TIMES] (e.g. POST:/predictions:503), \
                     got {s:?}"
                )));
            }
        };
        let mut matcher = Matcher::any();
        let method = method.trim();
        if !(method.is_empty() || method == "*") {
            if method.len() > 20 || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(SpecError::new(format!(
                    "METHOD: expected an HTTP method such as GET or POST, or *, got {method:?}"
                )));
            }
            matcher = matcher.method(&method.to_ascii_uppercase());
        }
        if !(path.is_empty() || path == "*") {
            matcher = matcher.path_contains(path);
        }
        let fault: Fault = fault.parse()?;
        let times = match times.map(str::trim) {
            None => 1,
            Some("*") => usize::MAX,
            Some(t) => match t.parse::<usize>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(SpecError::new(format!(
                        "TIMES: expected a whole number of at least 1, or *, got {t:?}"
                    )));
                }
            },
        };
        Ok(FaultRule::new(matcher, fault).times(times))
    }
}

/// A model whose predictions fail: the `--fail-model OWNER/NAME[:MESSAGE]` value.
///
/// ```
/// use replicate_fake::FailModel;
/// let f: FailModel = "acme/broken:CUDA out of memory".parse().unwrap();
/// assert_eq!(f.model, "acme/broken");
/// assert_eq!(f.error, "CUDA out of memory");
/// // server.set_model(&f.model, f.script());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailModel {
    /// The model, `owner/name`.
    pub model: String,
    /// The `error` of its failed predictions.
    pub error: String,
}

impl FailModel {
    /// The model's script: the default schedule, then `failed` with [`error`](Self::error),
    /// after a traceback in the logs (like `fake/fail`).
    pub fn script(&self) -> ModelScript {
        ModelScript::default().outcome(Outcome::Fail {
            error: self.error.clone(),
            logs: vec![
                "Traceback (most recent call last):".to_owned(),
                format!("RuntimeError: {}", self.error),
            ],
        })
    }
}

impl FromStr for FailModel {
    type Err = SpecError;

    /// Reads `OWNER/NAME[:MESSAGE]`; the message may hold `:`, and defaults to
    /// [`DEFAULT_FAIL_MESSAGE`] when absent or blank.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (model, message) = match s.split_once(':') {
            Some((m, msg)) => (m.trim(), msg.trim()),
            None => (s.trim(), ""),
        };
        let ok = model.split_once('/').is_some_and(|(o, n)| {
            let part = |p: &str| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            };
            part(o) && part(n)
        });
        if !ok {
            return Err(SpecError::new(format!(
                "expected OWNER/NAME[:MESSAGE] (e.g. acme/broken:out of memory), got {s:?}"
            )));
        }
        let error = if message.is_empty() {
            DEFAULT_FAIL_MESSAGE
        } else {
            message
        };
        Ok(FailModel {
            model: model.to_owned(),
            error: error.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> FaultRule {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn fault_rules_read() {
        let r = rule("POST:/predictions:503:2");
        assert_eq!(r.matcher, Matcher::new("POST", "/predictions"));
        assert_eq!(r.fault, Fault::status(503));
        assert_eq!(r.times, 2);
        let r = rule("get:/v1/predictions/:reset");
        assert_eq!(r.matcher, Matcher::new("GET", "/v1/predictions/"));
        assert_eq!(r.fault, Fault::ResetBeforeRead);
        assert_eq!(r.times, 1);
        let r = rule("*:*:delay=250:*");
        assert_eq!(r.matcher, Matcher::any());
        assert_eq!(r.fault, Fault::Delay(Duration::from_millis(250)));
        assert_eq!(r.times, usize::MAX);
        assert_eq!(rule("::garbage").matcher, Matcher::any());
        assert_eq!(rule("GET:/x:429").fault, Fault::throttled(1));
        assert_eq!(rule("GET:/x:429=7").fault, Fault::throttled(7));
        assert_eq!(
            rule("GET:/x:500=3").fault,
            Fault::Status {
                status: 500,
                retry_after: Some(RetryAfter::Seconds(3)),
                body: None
            }
        );
        for (text, fault) in [
            ("502", Fault::status(502)),
            ("reset-after", Fault::ResetAfterRead),
            ("truncated", Fault::TruncatedJson),
            ("garbage", Fault::GarbageJson),
            ("huge=1000", Fault::HugeBody(1000)),
            ("cut=10", Fault::CutAfter(10)),
            ("corrupt", Fault::Corrupt(0)),
            ("corrupt=0", Fault::Corrupt(0)),
            ("corrupt=1048576", Fault::Corrupt(1_048_576)),
            (
                "drip=5,3",
                Fault::Drip {
                    interval: Duration::from_millis(5),
                    chunk: 3,
                },
            ),
            ("apply-then=502", Fault::ApplyThen { status: 502 }),
            (
                "echo",
                Fault::Echo {
                    status: 401,
                    format: EchoFormat::ProblemJson,
                },
            ),
            (
                "echo-html=200",
                Fault::Echo {
                    status: 200,
                    format: EchoFormat::Html,
                },
            ),
            (
                "echo-text=403",
                Fault::Echo {
                    status: 403,
                    format: EchoFormat::Text,
                },
            ),
            ("cursor=abc", Fault::NextCursor("abc".into())),
            ("drop-stream=2", Fault::DropStreamAfter(2)),
            ("silent-stream", Fault::SilentStream),
        ] {
            assert_eq!(text.parse::<Fault>(), Ok(fault), "{text}");
        }
    }

    #[test]
    fn bad_fault_rules_are_errors() {
        for bad in [
            "",
            "POST",
            "POST:/predictions",
            "POST:/predictions:",
            "POST:/predictions:503:2:9",
            "POST:/predictions:nope",
            "POST:/predictions:200",
            "POST:/predictions:600",
            "POST:/predictions:503:0",
            "POST:/predictions:503:-1",
            "POST:/predictions:503:x",
            "PO ST:/predictions:503",
            "POST:/predictions:reset=1",
            "POST:/predictions:delay",
            "POST:/predictions:delay=",
            "POST:/predictions:delay=-5",
            "POST:/predictions:delay=99999999999",
            "POST:/predictions:drip=5",
            "POST:/predictions:huge=lots",
            "POST:/predictions:echo=99",
            "POST:/predictions:apply-then=200",
            "POST:/predictions:429=soon",
            "GET:/xezq/:corrupt=",
            "GET:/xezq/:corrupt=-1",
            "GET:/xezq/:corrupt=x",
            "GET:/xezq/:cut=",
            "GET:/xezq/:cut=-5",
        ] {
            let e = bad.parse::<FaultRule>().expect_err(bad);
            assert!(!e.to_string().is_empty(), "{bad}");
        }
    }

    #[test]
    fn failing_models_read() {
        let f: FailModel = "acme/broken:CUDA error: out of memory"
            .parse()
            .expect("spec");
        assert_eq!(f.model, "acme/broken");
        assert_eq!(f.error, "CUDA error: out of memory");
        match f.script().outcome {
            Outcome::Fail { error, logs } => {
                assert_eq!(error, "CUDA error: out of memory");
                assert_eq!(logs.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        for s in ["acme/broken", "acme/broken:", "acme/broken:  "] {
            let f: FailModel = s.parse().expect("spec");
            assert_eq!(f.model, "acme/broken");
            assert_eq!(f.error, DEFAULT_FAIL_MESSAGE);
        }
        for bad in ["", "acme", "/x", "x/", "a/b/c", "a b/c:msg", ":msg"] {
            assert!(bad.parse::<FailModel>().is_err(), "{bad}");
        }
    }
}
