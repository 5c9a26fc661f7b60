//! The series DESIGN §13 added to `/metrics`: how they are counted and how they are written.
//!
//! Hot-path bumps (request time, pick time, reported latency) go to [`Histogram`]s found
//! under a read lock, as the older counters are; state changes, proxy requests and
//! notification results are rare and sit in small maps. Gauges come from a [`Scrape`] the
//! HTTP layer reads from the service when `/metrics` is asked for.

use super::histogram::{Histogram, HTTP_BOUNDS, LATENCY_BOUNDS, PICK_BOUNDS};
use super::process::ProcessStats;
use super::{class_index, esc, header, Metrics};
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokenlb_core::{Outcome, OutcomeClass, PoolStats, StateChange, TokenState, TokenView};

/// Status classes, the label of `tokenlb_http_request_duration_seconds`.
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// (pool, from, to, cause) of `tokenlb_state_changes_total`.
pub(super) type ChangeKey = (String, &'static str, &'static str, &'static str);

/// One route's request durations by (method label, status class index).
#[derive(Default)]
pub(super) struct RouteTimes(Vec<(&'static str, usize, Histogram)>);

impl RouteTimes {
    fn find(&self, method: &str, class: usize) -> Option<&Histogram> {
        self.0
            .iter()
            .find(|(m, c, _)| *c == class && *m == method)
            .map(|(_, _, h)| h)
    }
}

/// What the HTTP layer reads from the pools for one scrape.
pub struct Scrape {
    pub pools: Vec<PoolGauges>,
    /// `metrics.per_token`: write the per-token series (from [`PoolGauges::tokens`]).
    pub per_token: bool,
}

/// One pool's scrape-time gauges.
pub struct PoolGauges {
    pub name: String,
    pub stats: PoolStats,
    /// Tokens that may be leased now.
    pub eligible: usize,
    /// Tokens whose `expires_at` falls within the next 24 hours.
    pub expiring_24h: usize,
    /// Every token's view, only when `metrics.per_token` is on (else empty).
    pub tokens: Vec<TokenView>,
}

fn status_class(status: u16) -> usize {
    usize::from(status / 100).clamp(1, 5) - 1
}

impl Metrics {
    /// Times one HTTP request; `method` is [`crate::app::method_label`]'s answer.
    pub fn http_duration(&self, route: &str, method: &'static str, status: u16, d: Duration) {
        let class = status_class(status);
        if let Some(h) = self
            .http_time
            .read()
            .get(route)
            .and_then(|r| r.find(method, class))
        {
            return h.observe_duration(&HTTP_BOUNDS, d);
        }
        let mut map = self.http_time.write();
        let times = map.entry(route.into()).or_default();
        if times.find(method, class).is_none() {
            times.0.push((method, class, Histogram::default()));
        }
        if let Some(h) = times.find(method, class) {
            h.observe_duration(&HTTP_BOUNDS, d);
        }
    }

    /// Times one pick of `pool` (successful or not).
    pub fn pick_duration(&self, pool: &str, d: Duration) {
        self.with_pool(pool, |c| c.pick_time.observe_duration(&PICK_BOUNDS, d));
    }

    /// Counts a reported outcome by class and, when it carries one, its upstream latency.
    pub fn reported(&self, outcome: &Outcome, pool: &str) {
        let i = class_index(outcome.class);
        self.with_pool(pool, |c| {
            c.outcomes[i].fetch_add(1, Ordering::Relaxed);
            if let Some(ms) = outcome.latency_ms {
                c.latency[i].observe(&LATENCY_BOUNDS, u64::from(ms) * 1_000_000);
            }
        });
    }

    /// Counts state changes of `pool` by from, to and cause.
    pub fn state_changes(&self, pool: &str, changes: &[StateChange]) {
        if changes.is_empty() {
            return;
        }
        let mut map = self.state_changes.lock();
        for c in changes {
            *map.entry((
                pool.to_string(),
                c.from.as_str(),
                c.to.as_str(),
                c.cause.as_str(),
            ))
            .or_insert(0) += 1;
        }
    }

    /// Counts one proxied request (proxy mode, DESIGN §10: every attempt, by the class it was
    /// reported with; `crate::proxy::relay` calls this). `proxy` is the proxy's name from the
    /// configuration, never request input.
    pub fn proxy_request(&self, proxy: &str, class: OutcomeClass) {
        *self
            .proxy
            .lock()
            .entry((proxy.to_string(), class.as_str()))
            .or_insert(0) += 1;
    }

    /// Counts webhook deliveries dropped from a full queue.
    pub fn notify_dropped(&self, n: u64) {
        self.notify_dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a webhook delivery that succeeded (`true`) or was given up (`false`).
    pub fn notify_result(&self, delivered: bool) {
        self.notify_results[usize::from(!delivered)].fetch_add(1, Ordering::Relaxed);
    }

    /// Writes every series of this module.
    pub(super) fn render_more(&self, scrape: &Scrape, out: &mut String) {
        self.render_histograms(out);
        self.render_changes(out);
        render_pool_gauges(&scrape.pools, out);
        if scrape.per_token {
            render_per_token(&scrape.pools, out);
        }
        self.render_counters(out);
        header(
            out,
            "tokenlb_build_info",
            "gauge",
            "Always 1; the version label says which tokenlb this is.",
        );
        let _ = writeln!(
            out,
            "tokenlb_build_info{{version=\"{}\"}} 1",
            esc(env!("CARGO_PKG_VERSION"))
        );
        ProcessStats::read().render(out);
    }

    fn render_histograms(&self, out: &mut String) {
        let name = "tokenlb_http_request_duration_seconds";
        header(
            out,
            name,
            "histogram",
            "HTTP request time, by route, method and status class.",
        );
        let times = self.http_time.read();
        let mut routes: Vec<_> = times.iter().collect();
        routes.sort_by(|a, b| a.0.cmp(b.0));
        for (route, t) in routes {
            let mut series: Vec<_> = t.0.iter().collect();
            series.sort_by_key(|(m, c, _)| (*m, *c));
            for (method, class, h) in series {
                let labels = format!(
                    "route=\"{}\",method=\"{method}\",status=\"{}\"",
                    esc(route),
                    STATUS_CLASSES[*class]
                );
                h.render(out, name, &labels, &HTTP_BOUNDS);
            }
        }
        drop(times);
        let pools = self.pools.read();
        let mut pools: Vec<_> = pools.iter().collect();
        pools.sort_by(|a, b| a.0.cmp(b.0));
        let name = "tokenlb_pick_duration_seconds";
        header(
            out,
            name,
            "histogram",
            "Time a pick took (lock, strategy; peers in cluster mode), by pool.",
        );
        for (pool, c) in &pools {
            if c.pick_time.count() > 0 {
                c.pick_time
                    .render(out, name, &format!("pool=\"{}\"", esc(pool)), &PICK_BOUNDS);
            }
        }
        let name = "tokenlb_reported_latency_seconds";
        header(
            out,
            name,
            "histogram",
            "Upstream latency that reports carried, by pool and outcome class.",
        );
        for (pool, c) in &pools {
            for (class, h) in OutcomeClass::ALL.iter().zip(&c.latency) {
                if h.count() > 0 {
                    let labels = format!("pool=\"{}\",class=\"{}\"", esc(pool), class.as_str());
                    h.render(out, name, &labels, &LATENCY_BOUNDS);
                }
            }
        }
    }

    fn render_changes(&self, out: &mut String) {
        header(
            out,
            "tokenlb_state_changes_total",
            "counter",
            "Token state changes, by pool, from, to and cause.",
        );
        for ((pool, from, to, reason), n) in self.state_changes.lock().iter() {
            let _ = writeln!(
                out,
                "tokenlb_state_changes_total{{pool=\"{}\",from=\"{from}\",to=\"{to}\",reason=\"{reason}\"}} {n}",
                esc(pool)
            );
        }
    }

    fn render_counters(&self, out: &mut String) {
        header(
            out,
            "tokenlb_proxy_requests_total",
            "counter",
            "Requests forwarded in proxy mode, by proxy and outcome class (each attempt on a token counts once).",
        );
        for ((proxy, class), n) in self.proxy.lock().iter() {
            let _ = writeln!(
                out,
                "tokenlb_proxy_requests_total{{proxy=\"{}\",class=\"{class}\"}} {n}",
                esc(proxy)
            );
        }
        header(
            out,
            "tokenlb_notify_dropped_total",
            "counter",
            "Webhook deliveries dropped because a target's queue was full.",
        );
        let _ = writeln!(
            out,
            "tokenlb_notify_dropped_total {}",
            self.notify_dropped.load(Ordering::Relaxed)
        );
        header(
            out,
            "tokenlb_notify_deliveries_total",
            "counter",
            "Webhook deliveries, by result (delivered, or failed after every attempt).",
        );
        for (i, result) in ["delivered", "failed"].iter().enumerate() {
            let n = self.notify_results[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "tokenlb_notify_deliveries_total{{result=\"{result}\"}} {n}"
            );
        }
    }
}

fn render_pool_gauges(pools: &[PoolGauges], out: &mut String) {
    header(
        out,
        "tokenlb_tokens_eligible",
        "gauge",
        "Tokens that may be leased now, by pool.",
    );
    for p in pools {
        let _ = writeln!(
            out,
            "tokenlb_tokens_eligible{{pool=\"{}\"}} {}",
            esc(&p.name),
            p.eligible
        );
    }
    header(
        out,
        "tokenlb_tokens_expiring_24h",
        "gauge",
        "Tokens whose expires_at falls within the next 24 hours, by pool.",
    );
    for p in pools {
        let _ = writeln!(
            out,
            "tokenlb_tokens_expiring_24h{{pool=\"{}\"}} {}",
            esc(&p.name),
            p.expiring_24h
        );
    }
}

/// The per-token series (`metrics.per_token`): labelled by pool, token id and name, never
/// the secret or its masked form.
fn render_per_token(pools: &[PoolGauges], out: &mut String) {
    let each = |out: &mut String, f: &dyn Fn(&mut String, &str, &TokenView)| {
        for p in pools {
            for t in &p.tokens {
                let labels = format!(
                    "pool=\"{}\",token_id=\"{}\",name=\"{}\"",
                    esc(&p.name),
                    esc(t.id.as_str()),
                    esc(&t.name)
                );
                f(out, &labels, t);
            }
        }
    };
    header(
        out,
        "tokenlb_token_outcomes_total",
        "counter",
        "Reported outcomes of one token, by class.",
    );
    each(out, &|out, l, t| {
        let c = &t.counters;
        for (class, n) in [
            (OutcomeClass::Success, c.success),
            (OutcomeClass::Auth, c.auth),
            (OutcomeClass::RateLimited, c.rate_limited),
            (OutcomeClass::QuotaExhausted, c.quota_exhausted),
            (OutcomeClass::Transient, c.transient),
            (OutcomeClass::ClientError, c.client_error),
            (OutcomeClass::Unknown, c.unknown),
        ] {
            let _ = writeln!(
                out,
                "tokenlb_token_outcomes_total{{{l},class=\"{}\"}} {n}",
                class.as_str()
            );
        }
    });
    header(
        out,
        "tokenlb_token_state",
        "gauge",
        "1 for the state one token is in.",
    );
    each(out, &|out, l, t| {
        for st in TokenState::ALL {
            let v = u8::from(st == t.state);
            let _ = writeln!(out, "tokenlb_token_state{{{l},state=\"{st}\"}} {v}");
        }
    });
    header(
        out,
        "tokenlb_token_in_flight",
        "gauge",
        "Leases of one token out now.",
    );
    each(out, &|out, l, t| {
        let _ = writeln!(out, "tokenlb_token_in_flight{{{l}}} {}", t.in_flight);
    });
    header(
        out,
        "tokenlb_token_latency_ewma_seconds",
        "gauge",
        "Moving average of one token's reported latency (absent before the first report).",
    );
    each(out, &|out, l, t| {
        if let Some(ms) = t.counters.latency_ewma_ms {
            let _ = writeln!(
                out,
                "tokenlb_token_latency_ewma_seconds{{{l}}} {}",
                ms / 1000.0
            );
        }
    });
}
