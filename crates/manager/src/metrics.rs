//! Prometheus metrics, written by hand in the text exposition format.
//!
//! Counters are bumped on every lease, report and HTTP request, so bumping one allocates
//! nothing and takes no exclusive lock: per pool, an array of atomics indexed by strategy
//! and by outcome class; per route, a small list of (method, status) atomics. Both sit in a
//! map (FxHash: the keys are configured names, and SipHash cost more than the bump) behind a read-mostly `RwLock`: a label combination seen for the first time is
//! inserted under the write lock (a handful of times per process), every later bump is a
//! read lock, a lookup by `&str` and one relaxed `fetch_add`. Scrapes sort the series, so
//! the exposition reads as before (series appear once counted, ordered by their labels).
//! Gauges (tokens per state, in flight) are read from the pools at scrape time, so they are
//! never stale. No metrics registry crate is needed for this little.
//!
//! DESIGN §13 adds, beside those: histograms ([`histogram`]: a fixed array of atomic
//! buckets per series, so an observation is lock-free) of HTTP request time by route,
//! method and status class, of pick time by pool and of the upstream latency reports carry
//! by pool and outcome class; state changes by pool, from, to and cause (a
//! [`tokenlb_core::ChangeCause`], never the free-text reason); scrape-time gauges of
//! eligible and soon-expiring tokens; per-token series when `metrics.per_token` is on (id
//! and name, never the secret); the proxy and notification counters; build info; and the
//! `process_*` series ([`process`]). Every label value is one of a fixed set or a name the
//! configuration or an admin gave (pool, token name), never raw request input. The one
//! scrape cost that grows with the pool: `tokenlb_tokens_expiring_24h` walks a pool's
//! tokens under its lock (no allocation), and the per-token series copy every token's view.

pub mod histogram;
pub mod process;
mod series;

pub use series::{PoolGauges, Scrape};

use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap as HashMap;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use tokenlb_core::{OutcomeClass, Strategy, TokenState};

use histogram::Histogram;

/// One pool's lease and outcome counters.
#[derive(Default)]
struct PoolCounters {
    picks: [AtomicU64; Strategy::ALL.len()],
    outcomes: [AtomicU64; OutcomeClass::ALL.len()],
    /// How long picks took (`tokenlb_pick_duration_seconds`).
    pick_time: Histogram,
    /// Reported upstream latency by outcome class (`tokenlb_reported_latency_seconds`).
    latency: [Histogram; OutcomeClass::ALL.len()],
}

/// One route's requests by method and status.
#[derive(Default)]
struct RouteCounters(Vec<(Box<str>, u16, AtomicU64)>);

impl RouteCounters {
    fn find(&self, method: &str, status: u16) -> Option<&AtomicU64> {
        self.0
            .iter()
            .find(|(m, s, _)| *s == status && &**m == method)
            .map(|(_, _, n)| n)
    }
}

/// The manager's counters.
#[derive(Default)]
pub struct Metrics {
    pools: RwLock<HashMap<Box<str>, PoolCounters>>,
    /// Outcome classes given by name that are not an [`OutcomeClass`] (none today; kept so
    /// [`Metrics::outcome`] counts whatever it is given).
    other_outcomes: Mutex<BTreeMap<(String, String), u64>>,
    lease_expiries: Mutex<BTreeMap<String, u64>>,
    get_unavailable: AtomicU64,
    http: RwLock<HashMap<Box<str>, RouteCounters>>,
    /// Request durations by route, then (method label, status class index).
    http_time: RwLock<HashMap<Box<str>, series::RouteTimes>>,
    /// State changes by (pool, from, to, cause); rare, so a map under a mutex.
    state_changes: Mutex<BTreeMap<series::ChangeKey, u64>>,
    /// Proxied requests by (proxy name from the configuration, outcome class).
    proxy: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Webhook deliveries dropped because a target's queue was full.
    notify_dropped: AtomicU64,
    /// Webhook deliveries by result: delivered, failed (gave up).
    notify_results: [AtomicU64; 2],
}

fn strategy_index(s: Strategy) -> usize {
    Strategy::ALL.iter().position(|&x| x == s).unwrap_or(0)
}

fn class_index(c: OutcomeClass) -> usize {
    OutcomeClass::ALL.iter().position(|&x| x == c).unwrap_or(0)
}

impl Metrics {
    /// Bumps one of `pool`'s counters: under the read lock when the pool is known.
    fn with_pool(&self, pool: &str, bump: impl Fn(&PoolCounters)) {
        if let Some(c) = self.pools.read().get(pool) {
            return bump(c);
        }
        bump(self.pools.write().entry(pool.into()).or_default());
    }

    pub fn pick(&self, strategy: Strategy, pool: &str) {
        let i = strategy_index(strategy);
        self.with_pool(pool, |c| {
            c.picks[i].fetch_add(1, Ordering::Relaxed);
        });
    }

    pub fn outcome_class(&self, class: OutcomeClass, pool: &str) {
        let i = class_index(class);
        self.with_pool(pool, |c| {
            c.outcomes[i].fetch_add(1, Ordering::Relaxed);
        });
    }

    /// [`Metrics::outcome_class`] by the class's name (`OutcomeClass::as_str`).
    pub fn outcome(&self, class: &str, pool: &str) {
        match OutcomeClass::ALL.iter().find(|c| c.as_str() == class) {
            Some(&c) => self.outcome_class(c, pool),
            None => {
                *self
                    .other_outcomes
                    .lock()
                    .entry((class.to_string(), pool.to_string()))
                    .or_insert(0) += 1
            }
        }
    }

    pub fn lease_expiries(&self, pool: &str, n: u64) {
        if n > 0 {
            *self
                .lease_expiries
                .lock()
                .entry(pool.to_string())
                .or_insert(0) += n;
        }
    }

    pub fn unavailable(&self) {
        self.get_unavailable.fetch_add(1, Ordering::Relaxed);
    }

    pub fn http(&self, route: &str, method: &str, status: u16) {
        if let Some(n) = self
            .http
            .read()
            .get(route)
            .and_then(|r| r.find(method, status))
        {
            n.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut map = self.http.write();
        let counters = map.entry(route.into()).or_default();
        match counters.find(method, status) {
            Some(n) => n.fetch_add(1, Ordering::Relaxed),
            None => {
                counters.0.push((method.into(), status, AtomicU64::new(1)));
                0
            }
        };
    }

    /// Every counted (label, label) → value of one per-pool family, sorted by labels.
    fn pool_series(
        &self,
        family: impl Fn(&PoolCounters) -> Vec<(&'static str, u64)>,
    ) -> BTreeMap<(String, String), u64> {
        let mut out = BTreeMap::new();
        for (pool, c) in self.pools.read().iter() {
            for (label, v) in family(c) {
                if v > 0 {
                    out.insert((label.to_string(), pool.to_string()), v);
                }
            }
        }
        out
    }

    fn picks(&self) -> BTreeMap<(String, String), u64> {
        self.pool_series(|c| {
            Strategy::ALL
                .iter()
                .zip(&c.picks)
                .map(|(s, n)| (s.as_str(), n.load(Ordering::Relaxed)))
                .collect()
        })
    }

    fn outcomes(&self) -> BTreeMap<(String, String), u64> {
        let mut out = self.pool_series(|c| {
            OutcomeClass::ALL
                .iter()
                .zip(&c.outcomes)
                .map(|(s, n)| (s.as_str(), n.load(Ordering::Relaxed)))
                .collect()
        });
        for (k, v) in self.other_outcomes.lock().iter() {
            *out.entry(k.clone()).or_insert(0) += v;
        }
        out
    }

    fn http_series(&self) -> BTreeMap<(String, String, u16), u64> {
        let mut out = BTreeMap::new();
        for (route, c) in self.http.read().iter() {
            for (method, status, n) in &c.0 {
                out.insert(
                    (route.to_string(), method.to_string(), *status),
                    n.load(Ordering::Relaxed),
                );
            }
        }
        out
    }
}

/// Escapes a label value (backslash, quote, newline).
pub(crate) fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The whole exposition: the counters of `m`, the gauges of `scrape` (read from the pools
/// at scrape time), whatever `more` appends (the coordinator's series), then the series
/// DESIGN §13 added.
pub fn render(m: &Metrics, scrape: &Scrape, more: impl FnOnce(&mut String)) -> String {
    let pools = &scrape.pools;
    let mut out = String::new();
    header(
        &mut out,
        "tokenlb_picks_total",
        "counter",
        "Leases handed out, by strategy and pool.",
    );
    for ((strategy, pool), v) in m.picks() {
        let _ = writeln!(
            out,
            "tokenlb_picks_total{{strategy=\"{}\",pool=\"{}\"}} {v}",
            esc(&strategy),
            esc(&pool)
        );
    }
    header(
        &mut out,
        "tokenlb_outcomes_total",
        "counter",
        "Reported outcomes, by class and pool.",
    );
    for ((class, pool), v) in m.outcomes() {
        let _ = writeln!(
            out,
            "tokenlb_outcomes_total{{class=\"{}\",pool=\"{}\"}} {v}",
            esc(&class),
            esc(&pool)
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
    render_gauges(pools, &mut out);
    more(&mut out);
    header(
        &mut out,
        "tokenlb_http_requests_total",
        "counter",
        "HTTP requests, by route, method and status.",
    );
    for ((route, method, status), v) in m.http_series() {
        let _ = writeln!(
            out,
            "tokenlb_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {v}",
            esc(&route),
            esc(&method)
        );
    }
    m.render_more(scrape, &mut out);
    out
}

fn render_gauges(pools: &[PoolGauges], out: &mut String) {
    header(out, "tokenlb_tokens", "gauge", "Tokens, by state and pool.");
    for PoolGauges {
        name: pool, stats, ..
    } in pools
    {
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
    for PoolGauges {
        name: pool, stats, ..
    } in pools
    {
        let _ = writeln!(
            out,
            "tokenlb_in_flight{{pool=\"{}\"}} {}",
            esc(pool),
            stats.in_flight
        );
    }
}

/// The trust-rule series (DESIGN §9): long-poll wake-ups and waiters per pool, and events the
/// full queue dropped. Read from the pools and the event queue at scrape time.
pub fn render_trust(out: &mut String, pools: &[(String, u64, usize)], events_dropped: u64) {
    header(
        out,
        "tokenlb_waiter_wakeups_total",
        "counter",
        "Long-poll (wait_ms) callers woken to try again for a token.",
    );
    for (pool, wakeups, _) in pools {
        let _ = writeln!(
            out,
            "tokenlb_waiter_wakeups_total{{pool=\"{}\"}} {wakeups}",
            esc(pool)
        );
    }
    header(
        out,
        "tokenlb_waiters",
        "gauge",
        "Long-poll (wait_ms) callers waiting for a token now.",
    );
    for (pool, _, waiting) in pools {
        let _ = writeln!(out, "tokenlb_waiters{{pool=\"{}\"}} {waiting}", esc(pool));
    }
    header(
        out,
        "tokenlb_events_dropped_total",
        "counter",
        "Events dropped because the event queue was full (token states are still saved).",
    );
    let _ = writeln!(out, "tokenlb_events_dropped_total {events_dropped}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_kept_by_label_and_listed_in_label_order() {
        let m = Metrics::default();
        m.pick(Strategy::RoundRobin, "b");
        m.pick(Strategy::Best, "b");
        m.pick(Strategy::Best, "a");
        m.pick(Strategy::Best, "a");
        let picks: Vec<_> = m.picks().into_iter().collect();
        assert_eq!(
            picks,
            vec![
                (("best".to_string(), "a".to_string()), 2),
                (("best".to_string(), "b".to_string()), 1),
                (("round_robin".to_string(), "b".to_string()), 1),
            ]
        );
        m.outcome("transient", "a");
        m.outcome_class(OutcomeClass::Transient, "a");
        m.outcome("not-a-class", "a");
        let outcomes = m.outcomes();
        assert_eq!(outcomes[&("transient".to_string(), "a".to_string())], 2);
        assert_eq!(outcomes[&("not-a-class".to_string(), "a".to_string())], 1);
        assert_eq!(outcomes.len(), 2);
        m.http("/api/token/get", "GET", 200);
        m.http("/api/token/get", "GET", 200);
        m.http("/api/token/get", "GET", 503);
        m.http("/api/token/get", "POST", 405);
        m.http("unmatched", "GET", 404);
        let http: Vec<_> = m.http_series().into_iter().collect();
        let key = |r: &str, m: &str, s| (r.to_string(), m.to_string(), s);
        assert_eq!(
            http,
            vec![
                (key("/api/token/get", "GET", 200), 2),
                (key("/api/token/get", "GET", 503), 1),
                (key("/api/token/get", "POST", 405), 1),
                (key("unmatched", "GET", 404), 1),
            ]
        );
    }
}
