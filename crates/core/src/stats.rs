//! Pool statistics: totals, the pool's per-minute series for 24 h, and the per-token deltas
//! the manager persists.
//!
//! Memory is the constraint (100,000 tokens in well under 150 MiB for the whole manager), so
//! only the *pool* keeps a dense 24-hour ring ([`MinuteRing`], 1,440 buckets). A token keeps
//! just the counts of the minute it is in ([`MinuteDelta`]); when the minute rolls over before
//! the manager took them, the finished minute moves to a small side list in the pool. The
//! manager drains both with `Pool::take_dirty` (or in chunks, `Pool::begin_take_dirty` and
//! `Pool::take_dirty_chunk`) and stores per-token history itself.

use crate::types::{Counters, Millis, TokenId, TokenState};
use serde::{Deserialize, Serialize};

/// Minutes in the pool's series (24 h).
pub const SERIES_MINUTES: usize = 1440;

/// The minute (since the Unix epoch) that `now` falls in.
pub fn minute_of(now: Millis) -> u64 {
    now / 60_000
}

/// A dense ring of (minute, requests, failures), one bucket per minute of the last 24 h.
#[derive(Clone, Debug)]
pub struct MinuteRing {
    buckets: Vec<(u64, u32, u32)>,
}

impl Default for MinuteRing {
    fn default() -> Self {
        MinuteRing {
            buckets: vec![(u64::MAX, 0, 0); SERIES_MINUTES],
        }
    }
}

impl MinuteRing {
    /// Counts one request at `now`, a failure if `failed`.
    pub fn record(&mut self, now: Millis, failed: bool) {
        let m = minute_of(now);
        let b = &mut self.buckets[(m % SERIES_MINUTES as u64) as usize];
        if b.0 != m {
            *b = (m, 0, 0);
        }
        b.1 = b.1.saturating_add(1);
        if failed {
            b.2 = b.2.saturating_add(1);
        }
    }

    /// All 1,440 minutes up to and including `now`'s, oldest first, zero where idle.
    pub fn series(&self, now: Millis) -> Vec<(u64, u32, u32)> {
        let cur = minute_of(now);
        let first = cur.saturating_sub(SERIES_MINUTES as u64 - 1);
        (first..=cur)
            .map(|m| {
                let b = self.buckets[(m % SERIES_MINUTES as u64) as usize];
                if b.0 == m {
                    b
                } else {
                    (m, 0, 0)
                }
            })
            .collect()
    }
}

/// Pool totals (DESIGN §2 stats; seed 实时统计).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolStats {
    /// Tokens in the pool.
    pub total: usize,
    /// Tokens per state, in [`TokenState::ALL`] order.
    pub by_state: [(TokenState, usize); 5],
    /// Leases out now.
    pub in_flight: u64,
    /// Successes of the pool's current tokens (restored counters included).
    pub success: u64,
    /// Token failures (auth, rate limited, quota, transient).
    pub failures: u64,
    /// Every reported outcome, including client errors and unknown (expired leases).
    pub requests: u64,
    /// success / (success + failures); 1.0 with no traffic.
    pub success_rate: f64,
}

/// A token whose counters changed since the last `take_dirty`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dirty {
    /// The token the record is for (its row in the store).
    pub token_id: TokenId,
    /// The token's cumulative counters now.
    pub counters: Counters,
    /// (minute since epoch, requests, failures) counted since the last take; add these to what
    /// is stored for that minute.
    pub minutes: Vec<(u64, u32, u32)>,
}

/// The current minute's counts of one token not yet taken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MinuteDelta {
    /// The minute since the epoch being counted; a request in a later one rolls it over.
    pub minute: u64,
    /// Outcomes in `minute`, of any class (leases closed unreported included).
    pub requests: u32,
    /// Those of them that were token failures.
    pub failures: u32,
}

impl MinuteDelta {
    /// Counts one request at `now`; returns the finished previous minute if it rolled over
    /// with counts still untaken.
    pub fn record(&mut self, now: Millis, failed: bool) -> Option<(u64, u32, u32)> {
        let m = minute_of(now);
        let mut done = None;
        if m != self.minute {
            if self.requests > 0 {
                done = Some((self.minute, self.requests, self.failures));
            }
            *self = MinuteDelta {
                minute: m,
                requests: 0,
                failures: 0,
            };
        }
        self.requests = self.requests.saturating_add(1);
        if failed {
            self.failures = self.failures.saturating_add(1);
        }
        done
    }

    /// Takes the counts (if any), leaving the minute open at zero.
    pub fn take(&mut self) -> Option<(u64, u32, u32)> {
        if self.requests == 0 {
            return None;
        }
        let out = (self.minute, self.requests, self.failures);
        self.requests = 0;
        self.failures = 0;
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_is_dense_and_forgets_after_a_day() {
        let mut r = MinuteRing::default();
        let t0 = 1_700_000_000_000;
        r.record(t0, false);
        r.record(t0 + 1, true);
        r.record(t0 + 120_000, false);
        let s = r.series(t0 + 120_000);
        assert_eq!(s.len(), SERIES_MINUTES);
        assert_eq!(s[SERIES_MINUTES - 1], (minute_of(t0) + 2, 1, 0));
        assert_eq!(s[SERIES_MINUTES - 3], (minute_of(t0), 2, 1));
        assert_eq!(s[SERIES_MINUTES - 2].1, 0);
        let later = r.series(t0 + 86_400_000 + 180_000);
        assert!(later.iter().all(|b| b.1 == 0));
    }

    #[test]
    fn delta_hands_over_finished_minutes() {
        let mut d = MinuteDelta::default();
        assert_eq!(d.record(60_000, false), None);
        assert_eq!(d.record(60_001, true), None);
        assert_eq!(d.record(120_000, false), Some((1, 2, 1)));
        assert_eq!(d.take(), Some((2, 1, 0)));
        assert_eq!(d.take(), None);
    }
}
