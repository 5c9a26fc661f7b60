//! A lock-free Prometheus histogram: a fixed array of atomic bucket counts and an atomic sum.
//!
//! Observing is a walk over at most [`MAX_BOUNDS`] upper bounds (integers, nanoseconds) and
//! two relaxed `fetch_add`s: no lock, no allocation, a few nanoseconds (`benches/metrics.rs`).
//! Buckets are kept per bucket, not cumulative, so an observation touches one slot; the
//! scrape adds them up. The count is the sum of the buckets, so `_count` always equals the
//! `+Inf` bucket. The bounds live with each family (a `&'static [u64]` passed to
//! [`Histogram::observe`] and [`Histogram::render`]), so a histogram is just its counters.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The most upper bounds a family may have (plus the implicit `+Inf`).
pub const MAX_BOUNDS: usize = 15;

const MS: u64 = 1_000_000;
const US: u64 = 1_000;

/// HTTP request durations: 0.5 ms to 10 s.
pub static HTTP_BOUNDS: [u64; 14] = [
    500 * US,
    MS,
    5 * MS / 2,
    5 * MS,
    10 * MS,
    25 * MS,
    50 * MS,
    100 * MS,
    250 * MS,
    500 * MS,
    1000 * MS,
    2500 * MS,
    5000 * MS,
    10_000 * MS,
];

/// Pick durations (a pool lock and a strategy; a Redis round trip in cluster mode): 1 µs
/// to 100 ms.
pub static PICK_BOUNDS: [u64; 15] = [
    US,
    5 * US / 2,
    5 * US,
    10 * US,
    25 * US,
    50 * US,
    100 * US,
    250 * US,
    500 * US,
    MS,
    5 * MS / 2,
    5 * MS,
    10 * MS,
    25 * MS,
    100 * MS,
];

/// Upstream latencies that reports carry: 5 ms to 60 s.
pub static LATENCY_BOUNDS: [u64; 13] = [
    5 * MS,
    10 * MS,
    25 * MS,
    50 * MS,
    100 * MS,
    250 * MS,
    500 * MS,
    1000 * MS,
    2500 * MS,
    5000 * MS,
    10_000 * MS,
    30_000 * MS,
    60_000 * MS,
];

/// Bucket counts and the sum of one series of a histogram family.
#[derive(Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative): slot `i` counts values in
    /// `(bounds[i-1], bounds[i]]`, the slot after the last bound counts the rest.
    buckets: [AtomicU64; MAX_BOUNDS + 1],
    /// Sum of the observed values, nanoseconds (584 years before it wraps).
    sum_ns: AtomicU64,
}

impl Histogram {
    /// Counts one observation of `ns` nanoseconds against `bounds` (ascending, at most
    /// [`MAX_BOUNDS`]).
    #[inline]
    pub fn observe(&self, bounds: &[u64], ns: u64) {
        let i = bounds
            .iter()
            .position(|&b| ns <= b)
            .unwrap_or(bounds.len())
            .min(MAX_BOUNDS);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// [`Histogram::observe`] of a duration.
    #[inline]
    pub fn observe_duration(&self, bounds: &[u64], d: Duration) {
        self.observe(bounds, u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// Writes `name_bucket`, `name_sum` and `name_count` lines; `labels` is the series'
    /// label list without braces (`pool="a"`), already escaped, or empty. Values in seconds.
    pub fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[u64]) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0u64;
        for (i, b) in bounds.iter().enumerate().take(MAX_BOUNDS) {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let le = *b as f64 / 1e9;
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        for b in &self.buckets[bounds.len().min(MAX_BOUNDS)..] {
            cumulative += b.load(Ordering::Relaxed);
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}"
        );
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        if labels.is_empty() {
            let _ = writeln!(out, "{name}_sum {sum}");
            let _ = writeln!(out, "{name}_count {cumulative}");
        } else {
            let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_the_count_is_the_inf_bucket() {
        let h = Histogram::default();
        let bounds = [10, 20, 30];
        for v in [5, 10, 11, 25, 31, 1000] {
            h.observe(&bounds, v);
        }
        let mut out = String::new();
        h.render(&mut out, "x", "p=\"a\"", &bounds);
        let lines: Vec<_> = out.lines().collect();
        assert_eq!(lines[0], "x_bucket{p=\"a\",le=\"0.00000001\"} 2");
        assert_eq!(lines[1], "x_bucket{p=\"a\",le=\"0.00000002\"} 3");
        assert_eq!(lines[2], "x_bucket{p=\"a\",le=\"0.00000003\"} 4");
        assert_eq!(lines[3], "x_bucket{p=\"a\",le=\"+Inf\"} 6");
        assert_eq!(lines[4], "x_sum{p=\"a\"} 0.000001082");
        assert_eq!(lines[5], "x_count{p=\"a\"} 6");
        assert_eq!(h.count(), 6);
    }

    #[test]
    fn every_family_fits_and_ascends() {
        for b in [&HTTP_BOUNDS[..], &PICK_BOUNDS[..], &LATENCY_BOUNDS[..]] {
            assert!(b.len() <= MAX_BOUNDS);
            assert!(b.windows(2).all(|w| w[0] < w[1]));
        }
        let h = Histogram::default();
        h.observe(&[], 7);
        let mut out = String::new();
        h.render(&mut out, "y", "", &[]);
        assert_eq!(
            out,
            "y_bucket{le=\"+Inf\"} 1\ny_sum 0.000000007\ny_count 1\n"
        );
    }
}
