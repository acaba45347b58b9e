//! Figures, their targets, the printed table and the JSON file.
use serde_json::{json, Value};
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub enum Target {
    AtMost(f64),
    AtLeast(f64),
}

#[derive(Debug, Clone)]
pub struct Row {
    pub key: String,
    pub label: String,
    pub value: f64,
    pub unit: &'static str,
    pub target: Option<Target>,
    pub note: String,
}

impl Row {
    pub fn new(key: &str, label: &str, value: f64, unit: &'static str) -> Row {
        Row {
            key: key.into(),
            label: label.into(),
            value,
            unit,
            target: None,
            note: String::new(),
        }
    }

    pub fn at_most(mut self, t: f64) -> Row {
        self.target = Some(Target::AtMost(t));
        self
    }

    pub fn at_least(mut self, t: f64) -> Row {
        self.target = Some(Target::AtLeast(t));
        self
    }

    pub fn note(mut self, n: impl Into<String>) -> Row {
        self.note = n.into();
        self
    }

    pub fn met(&self) -> Option<bool> {
        match self.target? {
            Target::AtMost(t) => Some(self.value <= t),
            Target::AtLeast(t) => Some(self.value >= t),
        }
    }

    fn target_text(&self) -> String {
        match self.target {
            Some(Target::AtMost(t)) => format!("<= {}", num(t)),
            Some(Target::AtLeast(t)) => format!(">= {}", num(t)),
            None => String::new(),
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "key": self.key, "label": self.label, "value": self.value, "unit": self.unit,
            "target": self.target_text(), "met": self.met(), "note": self.note,
        })
    }
}

pub fn num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentiles and max of durations in ms: (p50, p99, max).
pub fn percentiles(v: &mut [f64]) -> (f64, f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = |p: f64| {
        let i = ((p / 100.0) * v.len() as f64).ceil() as usize;
        v[i.clamp(1, v.len()) - 1]
    };
    (rank(50.0), rank(99.0), v[v.len() - 1])
}

/// p50, p99 and max of a series of latencies: the latency sections print
/// and store all three together.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(v: &mut [f64]) -> Spread {
        let (p50, p99, max) = percentiles(v);
        Spread { p50, p99, max }
    }

    /// `p50 0.731 ms, p99 1.866 ms, max 4.911 ms`.
    pub fn text(&self) -> String {
        format!(
            "p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            self.p50, self.p99, self.max
        )
    }

    pub fn json(&self) -> Value {
        json!({"p50": self.p50, "p99": self.p99, "max": self.max})
    }
}

/// The table, one line per figure.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let w = rows
        .iter()
        .map(|r| r.label.len())
        .max()
        .unwrap_or(10)
        .max(6);
    out.push_str(&format!(
        "{:<w$} | {:>10} | {:<5} | {:>9} | {:<6} | note\n",
        "figure", "value", "unit", "target", "result"
    ));
    out.push_str(&format!("{}\n", "-".repeat(w + 50)));
    for r in rows {
        let res = match r.met() {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "",
        };
        out.push_str(&format!(
            "{:<w$} | {:>10} | {:<5} | {:>9} | {:<6} | {}\n",
            r.label,
            num(r.value),
            r.unit,
            r.target_text(),
            res,
            r.note
        ));
    }
    out
}
