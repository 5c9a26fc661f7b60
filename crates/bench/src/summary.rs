//! Latency summaries: exact percentiles from every recorded sample.
//!
//! A run of a few seconds records at most a few million samples of 4 bytes each, so keeping
//! them all and sorting once is cheaper to trust than a histogram: the percentiles are the
//! samples themselves (nearest-rank), with no bucketing error to explain.

use serde::Serialize;
use std::time::Duration;

/// What one load run measured.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Summary {
    /// Units of work completed in the measured window (requests, or get+report pairs).
    pub count: u64,
    /// Units that failed (I/O error, timeout, or an unexpected status).
    pub errors: u64,
    /// Length of the measured window, seconds.
    pub seconds: f64,
    /// `count / seconds`.
    pub rate: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
    /// CPU time the servers under test used per unit in the window (µs), when measured:
    /// the cost of a request independent of how busy the machine was.
    pub server_cpu_us: Option<f64>,
    /// CPU time the load client itself used per unit in the window (µs): when it nears the
    /// server's, the client, not the server, sets the pace.
    pub client_cpu_us: Option<f64>,
}

/// The attempt with the median rate (the lower middle one of an even count), and every
/// attempt's rate in order; `None` for no attempts. Repeating a load run and keeping its median
/// attempt keeps a burst of noise from a neighbour on the host out of the ratios.
pub fn median_by_rate(attempts: Vec<Summary>) -> Option<(Summary, Vec<f64>)> {
    let rates: Vec<f64> = attempts.iter().map(|s| s.rate).collect();
    let mut sorted = attempts;
    sorted.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    let mid = sorted.len().checked_sub(1)? / 2;
    Some((sorted.swap_remove(mid), rates))
}

/// The nearest-rank percentile `q` (0–100) of sorted samples; 0 for none.
pub fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1])
}

impl Summary {
    /// Summarises latency samples (microseconds) taken over `window`.
    pub fn from_samples(mut samples: Vec<u32>, errors: u64, window: Duration) -> Summary {
        samples.sort_unstable();
        let count = samples.len() as u64;
        let seconds = window.as_secs_f64().max(1e-9);
        let mean_us = if samples.is_empty() {
            0.0
        } else {
            samples.iter().map(|&s| f64::from(s)).sum::<f64>() / samples.len() as f64
        };
        Summary {
            count,
            errors,
            seconds,
            rate: count as f64 / seconds,
            p50_us: percentile(&samples, 50.0),
            p90_us: percentile(&samples, 90.0),
            p99_us: percentile(&samples, 99.0),
            p999_us: percentile(&samples, 99.9),
            max_us: samples.last().map_or(0.0, |&s| f64::from(s)),
            mean_us,
            server_cpu_us: None,
            client_cpu_us: None,
        }
    }
}

/// Microseconds of a duration as a sample, saturating.
pub fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&s, 50.0), 50.0);
        assert_eq!(percentile(&s, 99.0), 99.0);
        assert_eq!(percentile(&s, 100.0), 100.0);
        assert_eq!(percentile(&s, 0.0), 1.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
        assert_eq!(percentile(&[7], 99.9), 7.0);
    }

    #[test]
    fn the_median_attempt_is_kept_and_every_rate_listed() {
        let at = |rate: f64| {
            let mut s = Summary::from_samples(vec![100], 0, Duration::from_secs(1));
            s.rate = rate;
            s.p50_us = rate; // to tell them apart
            s
        };
        let (kept, rates) = median_by_rate(vec![at(90.0), at(40.0), at(70.0)]).unwrap();
        assert_eq!((kept.rate, kept.p50_us), (70.0, 70.0));
        assert_eq!(rates, vec![90.0, 40.0, 70.0]);
        let (kept, _) = median_by_rate(vec![at(5.0), at(3.0), at(4.0), at(9.0)]).unwrap();
        assert_eq!(kept.rate, 4.0, "the lower middle of an even count");
        assert_eq!(median_by_rate(vec![at(1.0)]).unwrap().0.rate, 1.0);
        assert!(median_by_rate(vec![]).is_none());
    }

    #[test]
    fn summary_of_unsorted_samples() {
        let s = Summary::from_samples(vec![30, 10, 20, 40], 2, Duration::from_secs(2));
        assert_eq!(s.count, 4);
        assert_eq!(s.errors, 2);
        assert_eq!(s.rate, 2.0);
        assert_eq!(s.p50_us, 20.0);
        assert_eq!(s.max_us, 40.0);
        assert_eq!(s.mean_us, 25.0);
        let empty = Summary::from_samples(vec![], 0, Duration::ZERO);
        assert_eq!((empty.count, empty.p99_us, empty.mean_us), (0, 0.0, 0.0));
    }

    #[test]
    fn micros_saturates() {
        assert_eq!(micros(Duration::from_micros(12)), 12);
        assert_eq!(micros(Duration::from_secs(1 << 40)), u32::MAX);
    }
}
