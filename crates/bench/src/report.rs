//! The results of a harness run: rows with their ratios, memory, machine, goals; written as
//! JSON (for tools and later comparison) and as a Markdown table (for people and
//! BENCHMARKS.md).
//!
//! A ratio is always taken against a row measured in the same run at the same number of
//! connections — the baseline for HTTP routes, the direct emulator call for the web API's
//! realtime answer — so the machine, its load and its noise divide out as far as they can.

use crate::summary::Summary;
use serde::Serialize;
use std::fmt::Write;

/// One measurement.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Stable key: `group/tokens/strategy/cN`.
    pub id: String,
    /// `baseline`, `get`, `get+report`, `webapi cached`, `webapi realtime`, `wopan direct`,
    /// or a variant's name.
    pub group: String,
    pub label: String,
    pub connections: usize,
    pub tokens: Option<usize>,
    pub strategy: Option<String>,
    pub summary: Summary,
    /// The row this one is compared with.
    pub reference: Option<String>,
    /// `rate / reference rate`.
    pub rate_ratio: Option<f64>,
    /// `p99 / reference p99`.
    pub p99_ratio: Option<f64>,
    /// `p50 − reference p50`, microseconds (the overhead over a direct call).
    pub p50_delta_us: Option<f64>,
    /// With `--repeat`: the rate of every attempt, in order; the row is the median one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rates: Vec<f64>,
}

impl Row {
    pub fn key(group: &str, tokens: Option<usize>, strategy: Option<&str>, conns: usize) -> String {
        format!(
            "{group}/{}/{}/c{conns}",
            tokens.map_or("-".to_string(), |n| n.to_string()),
            strategy.unwrap_or("-")
        )
    }

    /// Fills the ratio fields against `reference`.
    pub fn compare(&mut self, reference: &Row) {
        let r = &reference.summary;
        self.reference = Some(reference.id.clone());
        self.rate_ratio = (r.rate > 0.0).then(|| self.summary.rate / r.rate);
        self.p99_ratio = (r.p99_us > 0.0).then(|| self.summary.p99_us / r.p99_us);
        self.p50_delta_us = Some(self.summary.p50_us - r.p50_us);
    }
}

/// Resident memory of a server at a moment.
#[derive(Clone, Debug, Serialize)]
pub struct Memory {
    pub server: String,
    pub when: String,
    pub tokens: Option<usize>,
    pub rss_kib: u64,
}

/// A goal of issue 6 and what this run measured for it.
#[derive(Clone, Debug, Serialize)]
pub struct Goal {
    pub goal: String,
    pub measured: String,
    /// `None` when this run did not measure it.
    pub met: Option<bool>,
}

/// Everything one run produced.
#[derive(Clone, Debug, Serialize)]
pub struct Results {
    pub started_at: String,
    pub mode: String,
    pub machine: Vec<(String, String)>,
    pub setup: Vec<String>,
    pub rows: Vec<Row>,
    pub memory: Vec<Memory>,
    pub goals: Vec<Goal>,
}

impl Results {
    pub fn row(&self, id: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.id == id)
    }
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "—".to_string(), f)
}

fn ms(us: f64) -> String {
    format!("{:.3}", us / 1000.0)
}

/// The measurement table in Markdown.
pub fn rows_table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| measurement | conns | tokens | strategy | req/s | p50 ms | p99 ms | p99.9 ms | errors | server CPU µs/req | client CPU µs/req | ×rate | ×p99 | Δp50 ms | vs |\n\
         |---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for r in rows {
        let m = &r.summary;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.label,
            r.connections,
            r.tokens.map_or("—".into(), |n| n.to_string()),
            r.strategy.as_deref().unwrap_or("—"),
            m.rate,
            ms(m.p50_us),
            ms(m.p99_us),
            ms(m.p999_us),
            m.errors,
            opt(m.server_cpu_us, |v| format!("{v:.1}")),
            opt(m.client_cpu_us, |v| format!("{v:.1}")),
            opt(r.rate_ratio, |v| format!("{v:.2}")),
            opt(r.p99_ratio, |v| format!("{v:.2}")),
            opt(r.p50_delta_us, |v| format!("{:+.3}", v / 1000.0)),
            r.reference.as_deref().map_or("—", short_ref),
        );
    }
    s
}

fn short_ref(id: &str) -> &str {
    id.split('/').next().unwrap_or(id)
}

/// The whole report in Markdown.
pub fn markdown(res: &Results) -> String {
    let mut s = format!(
        "# tokenlb-bench results ({}, {})\n\n",
        res.mode, res.started_at
    );
    s.push_str("## Machine\n\n");
    for (k, v) in &res.machine {
        let _ = writeln!(s, "- {k}: {v}");
    }
    s.push_str("\n## Setup\n\n");
    for line in &res.setup {
        let _ = writeln!(s, "- {line}");
    }
    s.push_str("\n## Measurements\n\n");
    s.push_str(&rows_table(&res.rows));
    s.push_str("\n## Memory (VmRSS)\n\n| server | tokens | when | MiB |\n|---|---:|---|---:|\n");
    for m in &res.memory {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.1} |",
            m.server,
            m.tokens.map_or("—".into(), |n| n.to_string()),
            m.when,
            m.rss_kib as f64 / 1024.0
        );
    }
    s.push_str("\n## Goals (issue 6)\n\n| goal | measured | met |\n|---|---|---|\n");
    for g in &res.goals {
        let met = match g.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "not measured",
        };
        let _ = writeln!(s, "| {} | {} | {met} |", g.goal, g.measured);
    }
    s
}

#[cfg(test)]
mod tests;
