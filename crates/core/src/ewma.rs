//! Latency estimates: a peak-sensitive EWMA for the `latency` strategy and a plain EWMA for
//! the stats.
//!
//! [`PeakEwma`] is the estimator of tower's `load::peak_ewma` (itself after Finagle's
//! `PeakEwma` load metric): a sample above the estimate replaces it at once (a slow-down is
//! believed immediately), a sample below it is blended in with a weight that grows with the
//! time since the last update, `decay = exp(-elapsed / tau)`; and when read, the estimate
//! decays towards zero the same way, so a token that was slow long ago gets a new chance.
//! tower multiplies the estimate by (pending + 1); our pool does the same with in-flight
//! leases. Unlike tower, reading does not mutate: `cost_at(now)` is a pure function of the
//! stored estimate and `now`, so the core stays deterministic and `&self` on reads.

use crate::types::Millis;

/// Decay time constant, as in tower's and linkerd's defaults (10 s).
pub const DECAY_MS: f64 = 10_000.0;
/// The estimate a token starts with before its first sample (tower's `default_rtt`).
pub const DEFAULT_RTT_MS: f64 = 100.0;
/// Weight of a new sample in the plain stats EWMA.
pub const STATS_ALPHA: f64 = 0.2;

/// Peak-EWMA round-trip estimate in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PeakEwma {
    estimate_ms: f64,
    updated_at: Millis,
}

impl PeakEwma {
    /// A fresh estimate of [`DEFAULT_RTT_MS`] as of `now`, so an untried token is neither
    /// favoured nor shunned.
    pub fn new(now: Millis) -> Self {
        PeakEwma {
            estimate_ms: DEFAULT_RTT_MS,
            updated_at: now,
        }
    }

    fn decayed(&self, now: Millis) -> f64 {
        let elapsed = now.saturating_sub(self.updated_at) as f64;
        self.estimate_ms * (-elapsed / DECAY_MS).exp()
    }

    /// Folds in one observed latency.
    pub fn observe(&mut self, now: Millis, rtt_ms: f64) {
        let rtt = if rtt_ms.is_finite() {
            rtt_ms.max(0.0)
        } else {
            0.0
        };
        if rtt > self.estimate_ms {
            self.estimate_ms = rtt;
        } else {
            let elapsed = now.saturating_sub(self.updated_at) as f64;
            let decay = (-elapsed / DECAY_MS).exp();
            self.estimate_ms = self.estimate_ms * decay + rtt * (1.0 - decay);
        }
        self.updated_at = self.updated_at.max(now);
    }

    /// The current estimate, decayed to `now`.
    pub fn estimate_at(&self, now: Millis) -> f64 {
        self.decayed(now)
    }

    /// tower's load: estimate × (in flight + 1). Lower is better.
    pub fn cost_at(&self, now: Millis, in_flight: u32) -> f64 {
        self.decayed(now) * (f64::from(in_flight) + 1.0)
    }
}

/// One step of a plain exponentially weighted moving average (for `latency_ewma_ms`).
pub fn ewma_step(prev: Option<f64>, sample: f64) -> f64 {
    match prev {
        Some(p) if p.is_finite() => p + STATS_ALPHA * (sample - p),
        _ => sample,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peak_is_believed_at_once_and_decays_slowly() {
        let mut e = PeakEwma::new(0);
        e.observe(0, 500.0);
        assert_eq!(e.estimate_at(0), 500.0);
        e.observe(1_000, 50.0);
        let after = e.estimate_at(1_000);
        assert!(after < 500.0 && after > 400.0, "{after}");
    }

    #[test]
    fn estimate_decays_towards_zero_when_idle_and_cost_scales_with_load() {
        let e = PeakEwma::new(0);
        assert!(e.estimate_at(60_000) < 1.0);
        assert_eq!(e.cost_at(0, 3), 4.0 * DEFAULT_RTT_MS);
    }

    #[test]
    fn stats_ewma_moves_a_fifth_of_the_way() {
        assert_eq!(ewma_step(None, 10.0), 10.0);
        assert_eq!(ewma_step(Some(10.0), 20.0), 12.0);
    }
}
