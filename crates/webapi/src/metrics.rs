//! Prometheus counters of the web API, rendered as text at `/metrics`.
//!
//! Three families, kept in small locked maps (a handful of label sets each, so a map is
//! cheaper and clearer than a metrics framework here):
//! - `tokenlb_webapi_requests_total{route,source}`: answers by route and where they came
//!   from (`realtime`, `cache`, `stale`, `error`);
//! - `tokenlb_webapi_upstream_calls_total{op,outcome}`: every Wopan attempt by outcome class;
//! - `tokenlb_webapi_cache_total{result}`: cache `hit`, `miss` and `stale` answers;
//!
//! plus `tokenlb_webapi_merged_calls_total` for callers that joined a running identical call.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use tokenlb_core::OutcomeClass;

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    upstream: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    cache: Mutex<BTreeMap<&'static str, u64>>,
    merged: AtomicU64,
}

impl Metrics {
    pub fn request(&self, route: &'static str, source: &'static str) {
        *self.requests.lock().entry((route, source)).or_default() += 1;
    }

    pub fn upstream(&self, op: &'static str, class: OutcomeClass) {
        *self
            .upstream
            .lock()
            .entry((op, class.as_str()))
            .or_default() += 1;
    }

    pub fn cache(&self, result: &'static str) {
        *self.cache.lock().entry(result).or_default() += 1;
    }

    pub fn merged(&self) {
        self.merged.fetch_add(1, Ordering::Relaxed);
    }

    /// Upstream attempts so far for `op` (all outcomes).
    pub fn upstream_total(&self, op: &str) -> u64 {
        self.upstream
            .lock()
            .iter()
            .filter(|((o, _), _)| *o == op)
            .map(|(_, n)| n)
            .sum()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP tokenlb_webapi_requests_total Answers by route and source.\n");
        out.push_str("# TYPE tokenlb_webapi_requests_total counter\n");
        for ((route, source), n) in self.requests.lock().iter() {
            let _ = writeln!(
                out,
                "tokenlb_webapi_requests_total{{route=\"{route}\",source=\"{source}\"}} {n}"
            );
        }
        out.push_str("# HELP tokenlb_webapi_upstream_calls_total Wopan calls by operation and outcome class.\n");
        out.push_str("# TYPE tokenlb_webapi_upstream_calls_total counter\n");
        for ((op, outcome), n) in self.upstream.lock().iter() {
            let _ = writeln!(
                out,
                "tokenlb_webapi_upstream_calls_total{{op=\"{op}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP tokenlb_webapi_cache_total Cache lookups by result (hit, miss, stale).\n",
        );
        out.push_str("# TYPE tokenlb_webapi_cache_total counter\n");
        for (result, n) in self.cache.lock().iter() {
            let _ = writeln!(out, "tokenlb_webapi_cache_total{{result=\"{result}\"}} {n}");
        }
        out.push_str("# HELP tokenlb_webapi_merged_calls_total Requests that joined an identical upstream call already running.\n");
        out.push_str("# TYPE tokenlb_webapi_merged_calls_total counter\n");
        let _ = writeln!(
            out,
            "tokenlb_webapi_merged_calls_total {}",
            self.merged.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_labels() {
        let m = Metrics::default();
        m.request("files", "realtime");
        m.request("files", "realtime");
        m.upstream("list", OutcomeClass::Auth);
        m.cache("hit");
        let text = m.render();
        assert!(
            text.contains("tokenlb_webapi_requests_total{route=\"files\",source=\"realtime\"} 2")
        );
        assert!(
            text.contains("tokenlb_webapi_upstream_calls_total{op=\"list\",outcome=\"auth\"} 1")
        );
        assert!(text.contains("tokenlb_webapi_cache_total{result=\"hit\"} 1"));
        assert_eq!(m.upstream_total("list"), 1);
    }
}
