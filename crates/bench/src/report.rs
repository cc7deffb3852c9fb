//! The report: one row per figure, printed as a table or as JSON.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::sys::Machine;

/// Whether a figure meets its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The target is met.
    Met,
    /// The target is missed.
    Missed,
    /// The figure has no target (a baseline or a detail).
    Info,
    /// The feature measured does not exist yet: the figure is a stand-in.
    Pending,
}

impl Verdict {
    /// `Met` or `Missed`.
    pub fn of(ok: bool) -> Verdict {
        if ok { Verdict::Met } else { Verdict::Missed }
    }

    fn as_str(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Missed => "MISSED",
            Verdict::Info => "-",
            Verdict::Pending => "pending",
        }
    }
}

/// One figure.
#[derive(Debug, Clone)]
pub struct Row {
    /// A stable identifier, e.g. `cpu.get.replicate-ureq`.
    pub id: String,
    /// The value.
    pub value: f64,
    /// Its unit.
    pub unit: &'static str,
    /// The target, as text (empty when none).
    pub target: String,
    /// Whether it is met.
    pub verdict: Verdict,
    /// Anything else worth knowing (spread, counts, how it was measured).
    pub detail: String,
}

impl Row {
    /// A row without a target.
    pub fn info(id: impl Into<String>, value: f64, unit: &'static str) -> Row {
        Row {
            id: id.into(),
            value,
            unit,
            target: String::new(),
            verdict: Verdict::Info,
            detail: String::new(),
        }
    }

    /// A row with a target.
    pub fn target(
        id: impl Into<String>,
        value: f64,
        unit: &'static str,
        target: impl Into<String>,
        ok: bool,
    ) -> Row {
        Row {
            id: id.into(),
            value,
            unit,
            target: target.into(),
            verdict: Verdict::of(ok),
            detail: String::new(),
        }
    }

    /// Sets the detail.
    pub fn detail(mut self, detail: impl Into<String>) -> Row {
        self.detail = detail.into();
        self
    }

    /// Sets the verdict.
    pub fn verdict(mut self, verdict: Verdict) -> Row {
        self.verdict = verdict;
        self
    }
}

/// The whole report.
#[derive(Debug, Default)]
pub struct Report {
    /// The figures, in order.
    pub rows: Vec<Row>,
    /// Settings of the run, for the record.
    pub settings: Vec<(&'static str, String)>,
}

fn format_value(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".to_owned();
    }
    let a = v.abs();
    if a >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

impl Report {
    /// Adds a row.
    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// The table printed to stdout.
    pub fn table(&self, machine: &Machine) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "replicate-bench: {} x {}, {} MiB, Linux {}",
            machine.cpus, machine.cpu_model, machine.memory_mib, machine.kernel
        );
        let settings: Vec<String> = self
            .settings
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(s, "settings: {}", settings.join(" "));
        let values: Vec<String> = self
            .rows
            .iter()
            .map(|r| format!("{} {}", format_value(r.value), r.unit))
            .collect();
        let w_id = self
            .rows
            .iter()
            .map(|r| r.id.len())
            .max()
            .unwrap_or(6)
            .max(6);
        let w_val = values.iter().map(String::len).max().unwrap_or(5).max(5);
        let w_target = self
            .rows
            .iter()
            .map(|r| r.target.len())
            .max()
            .unwrap_or(6)
            .max(6);
        let _ = writeln!(
            s,
            "{:<w_id$}  {:>w_val$}  {:<w_target$}  {:<7}  detail",
            "figure", "value", "target", "status"
        );
        let _ = writeln!(s, "{}", "-".repeat(w_id + w_val + w_target + 7 + 6 + 2 + 7));
        for (row, value) in self.rows.iter().zip(&values) {
            let _ = writeln!(
                s,
                "{:<w_id$}  {:>w_val$}  {:<w_target$}  {:<7}  {}",
                row.id,
                value,
                row.target,
                row.verdict.as_str(),
                row.detail
            );
        }
        s
    }

    /// The JSON document printed with `--json`.
    pub fn json(&self, machine: &Machine) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                json!({
                    "id": r.id,
                    "value": if r.value.is_finite() { json!(r.value) } else { Value::Null },
                    "unit": r.unit,
                    "target": r.target,
                    "status": r.verdict.as_str().to_ascii_lowercase(),
                    "detail": r.detail,
                })
            })
            .collect();
        let settings: serde_json::Map<String, Value> = self
            .settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        json!({
            "machine": {
                "cpus": machine.cpus,
                "cpu_model": machine.cpu_model,
                "memory_mib": machine.memory_mib,
                "kernel": machine.kernel,
            },
            "settings": settings,
            "rows": rows,
        })
    }
}

/// The median of some samples (the mean of the middle two for an even count); NaN when empty.
pub fn median(samples: &[f64]) -> f64 {
    percentile(samples, 0.5)
}

/// A percentile by linear interpolation between closest ranks; NaN when empty.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let pos = p.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let (a, b) = (
        v.get(lo).copied().unwrap_or(f64::NAN),
        v.get(hi).copied().unwrap_or(f64::NAN),
    );
    a + (b - a) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0, 5.0], 1.0), 5.0);
    }
}
