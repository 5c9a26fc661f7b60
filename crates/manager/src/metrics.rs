//! Prometheus metrics, written by hand in the text exposition format.
//!
//! Counters are kept in small maps keyed by their labels behind short locks (a handful of
//! label combinations: strategies × pools, classes × pools, routes × statuses); gauges
//! (tokens per state, in flight) are read from the pools at scrape time, so they are never
//! stale. No metrics registry crate is needed for this little.

use crate::state::AppState;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use tokenlb_core::TokenState;

type Labels2 = (String, String);

/// The manager's counters.
#[derive(Default)]
pub struct Metrics {
    picks: Mutex<BTreeMap<Labels2, u64>>,
    outcomes: Mutex<BTreeMap<Labels2, u64>>,
    lease_expiries: Mutex<BTreeMap<String, u64>>,
    get_unavailable: AtomicU64,
    http: Mutex<BTreeMap<(String, String, u16), u64>>,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K, by: u64) {
    *map.lock().entry(key).or_insert(0) += by;
}

impl Metrics {
    pub fn pick(&self, strategy: &str, pool: &str) {
        bump(&self.picks, (strategy.to_string(), pool.to_string()), 1);
    }

    pub fn outcome(&self, class: &str, pool: &str) {
        bump(&self.outcomes, (class.to_string(), pool.to_string()), 1);
    }

    pub fn lease_expiries(&self, pool: &str, n: u64) {
        if n > 0 {
            bump(&self.lease_expiries, pool.to_string(), n);
        }
    }

    pub fn unavailable(&self) {
        self.get_unavailable.fetch_add(1, Ordering::Relaxed);
    }

    pub fn http(&self, route: &str, method: &str, status: u16) {
        bump(
            &self.http,
            (route.to_string(), method.to_string(), status),
            1,
        );
    }
}

/// Escapes a label value (backslash, quote, newline).
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The whole exposition.
pub fn render(state: &AppState) -> String {
    let m = &state.metrics;
    let mut out = String::new();
    header(
        &mut out,
        "tokenlb_picks_total",
        "counter",
        "Leases handed out, by strategy and pool.",
    );
    for ((strategy, pool), v) in m.picks.lock().iter() {
        let _ = writeln!(
            out,
            "tokenlb_picks_total{{strategy=\"{}\",pool=\"{}\"}} {v}",
            esc(strategy),
            esc(pool)
        );
    }
    header(
        &mut out,
        "tokenlb_outcomes_total",
        "counter",
        "Reported outcomes, by class and pool.",
    );
    for ((class, pool), v) in m.outcomes.lock().iter() {
        let _ = writeln!(
            out,
            "tokenlb_outcomes_total{{class=\"{}\",pool=\"{}\"}} {v}",
            esc(class),
            esc(pool)
        );
    }
    header(
        &mut out,
        "tokenlb_lease_expiries_total",
        "counter",
        "Leases closed as unknown at their deadline.",
    );
    for (pool, v) in m.lease_expiries.lock().iter() {
        let _ = writeln!(
            out,
            "tokenlb_lease_expiries_total{{pool=\"{}\"}} {v}",
            esc(pool)
        );
    }
    header(
        &mut out,
        "tokenlb_get_unavailable_total",
        "counter",
        "get requests answered 503 (no eligible token).",
    );
    let _ = writeln!(
        out,
        "tokenlb_get_unavailable_total {}",
        m.get_unavailable.load(Ordering::Relaxed)
    );
    render_gauges(state, &mut out);
    if let Some(c) = state.cluster() {
        c.link.render(&mut out);
    }
    header(
        &mut out,
        "tokenlb_http_requests_total",
        "counter",
        "HTTP requests, by route, method and status.",
    );
    for ((route, method, status), v) in m.http.lock().iter() {
        let _ = writeln!(
            out,
            "tokenlb_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {v}",
            esc(route),
            esc(method)
        );
    }
    out
}

fn render_gauges(state: &AppState, out: &mut String) {
    let pools: Vec<_> = state
        .pools()
        .into_iter()
        .map(|h| {
            let stats = h.pool.lock().stats();
            (h.name.clone(), stats)
        })
        .collect();
    header(out, "tokenlb_tokens", "gauge", "Tokens, by state and pool.");
    for (pool, stats) in &pools {
        for st in TokenState::ALL {
            let n = stats
                .by_state
                .iter()
                .find(|(s, _)| *s == st)
                .map(|(_, n)| *n)
                .unwrap_or(0);
            let _ = writeln!(
                out,
                "tokenlb_tokens{{state=\"{st}\",pool=\"{}\"}} {n}",
                esc(pool)
            );
        }
    }
    header(
        out,
        "tokenlb_in_flight",
        "gauge",
        "Leases out now, by pool.",
    );
    for (pool, stats) in &pools {
        let _ = writeln!(
            out,
            "tokenlb_in_flight{{pool=\"{}\"}} {}",
            esc(pool),
            stats.in_flight
        );
    }
}
