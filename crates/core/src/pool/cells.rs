//! A token's counters in compact form, smaller than the public [`Counters`].
//!
//! 100,000 tokens is the target, so per-token bytes count: times are stored as plain `u64`
//! with 0 for "never", the last error as a boxed `str`, the latency EWMA as `f32`. The public
//! [`Counters`] is built from these when a view or a dirty record is taken.

use crate::outcome::OutcomeClass;
use crate::types::{Counters, Millis};

#[derive(Clone, Debug)]
#[repr(C)]
pub(crate) struct Cells {
    /// Outcomes per class, in `OutcomeClass::ALL` order.
    pub by_class: [u64; 7],
    /// 0 = never.
    pub last_error_at: Millis,
    pub last_error: Option<Box<str>>,
    /// NaN = no sample yet.
    pub latency_ewma_ms: f32,
    pub times_cooled: u32,
}

impl Default for Cells {
    fn default() -> Self {
        Cells::from_counters(&Counters::default())
    }
}

fn class_index(c: OutcomeClass) -> usize {
    match c {
        OutcomeClass::Success => 0,
        OutcomeClass::Auth => 1,
        OutcomeClass::RateLimited => 2,
        OutcomeClass::QuotaExhausted => 3,
        OutcomeClass::Transient => 4,
        OutcomeClass::ClientError => 5,
        OutcomeClass::Unknown => 6,
    }
}

fn nonzero(t: Millis) -> Option<Millis> {
    (t != 0).then_some(t)
}

impl Cells {
    pub fn from_counters(c: &Counters) -> Cells {
        Cells {
            by_class: c.by_class(),
            last_error_at: c.last_error_at.unwrap_or(0),
            last_error: c.last_error.as_deref().map(Box::from),
            latency_ewma_ms: c
                .latency_ewma_ms
                .filter(|v| v.is_finite())
                .map_or(f32::NAN, |v| v as f32),
            times_cooled: c.times_cooled,
        }
    }

    /// The public counters; `last_used` (0 = never) lives in the token's hot line.
    pub fn to_counters(&self, last_used: Millis) -> Counters {
        let b = &self.by_class;
        Counters {
            success: b[0],
            auth: b[1],
            rate_limited: b[2],
            quota_exhausted: b[3],
            transient: b[4],
            client_error: b[5],
            unknown: b[6],
            last_used: nonzero(last_used),
            last_error: self.last_error.as_deref().map(String::from),
            last_error_at: nonzero(self.last_error_at),
            latency_ewma_ms: self.latency(),
            times_cooled: self.times_cooled,
        }
    }

    pub fn count(&mut self, c: OutcomeClass) {
        let n = &mut self.by_class[class_index(c)];
        *n = n.saturating_add(1);
    }

    pub fn success(&self) -> u64 {
        self.by_class[0]
    }

    /// Token failures: auth, rate limited, quota, transient.
    pub fn failures(&self) -> u64 {
        self.by_class[1..5].iter().sum()
    }

    /// Every counted outcome.
    pub fn requests(&self) -> u64 {
        self.by_class.iter().sum()
    }

    /// The stats EWMA as an `Option`.
    pub fn latency(&self) -> Option<f64> {
        (!self.latency_ewma_ms.is_nan()).then_some(f64::from(self.latency_ewma_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_round_trip() {
        let c = Counters {
            success: 5,
            auth: 1,
            rate_limited: 2,
            quota_exhausted: 3,
            transient: 4,
            client_error: 6,
            unknown: 7,
            last_used: Some(1_700_000_000_000),
            last_error: Some("transient: 502".into()),
            last_error_at: Some(1_700_000_000_001),
            latency_ewma_ms: Some(12.5),
            times_cooled: 9,
        };
        let cells = Cells::from_counters(&c);
        assert_eq!(cells.to_counters(1_700_000_000_000), c);
        assert_eq!(
            (cells.success(), cells.failures(), cells.requests()),
            (5, 10, 28)
        );
        assert_eq!(Cells::default().to_counters(0), Counters::default());
    }
}
