//! A ring of time buckets counting successes and failures over a sliding window.
//!
//! Used twice per token: for the transient error-rate breaker (DESIGN §2: an error rate above
//! `error_rate_threshold` over at least `error_rate_min_requests` requests in
//! `error_window_s`) and for `best`'s smoothed success rate. The design follows
//! linkerd2-proxy's success-rate breaker: a fixed number of buckets, each covering
//! `span / N`; a bucket is reused when time moves past it, so the window slides in steps of
//! one bucket, and memory is constant (`N` × 8 bytes) no matter the traffic — important with
//! 100,000 tokens. Time is an argument; there is no clock here. Time going backwards (a wall
//! clock step) or a changed span never panics: the sample lands in the newest bucket.

use crate::types::Millis;

/// `N` buckets of (successes, failures) covering a window whose span is given per call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window<const N: usize> {
    /// Bucket `e % N` holds epoch `e` for the `N` epochs up to `head`.
    buckets: [(u32, u32); N],
    /// Epoch (time / bucket width) of the newest bucket written.
    head: u64,
}

impl<const N: usize> Default for Window<N> {
    fn default() -> Self {
        Window {
            buckets: [(0, 0); N],
            head: 0,
        }
    }
}

impl<const N: usize> Window<N> {
    fn width(span_ms: u64) -> u64 {
        (span_ms / N as u64).max(1)
    }

    /// Counts one success (`ok`) or failure at `now` in a window of `span_ms`.
    pub fn record(&mut self, now: Millis, span_ms: u64, ok: bool) {
        let epoch = now / Self::width(span_ms);
        if epoch > self.head {
            let gap = epoch - self.head;
            if gap >= N as u64 {
                self.buckets = [(0, 0); N];
            } else {
                for e in self.head + 1..=epoch {
                    self.buckets[(e % N as u64) as usize] = (0, 0);
                }
            }
            self.head = epoch;
        }
        // Past samples (clock stepped back) count in the newest bucket.
        let b = &mut self.buckets[(self.head % N as u64) as usize];
        if ok {
            b.0 = b.0.saturating_add(1);
        } else {
            b.1 = b.1.saturating_add(1);
        }
    }

    /// (successes, failures) within the window ending at `now`, without changing anything.
    pub fn totals(&self, now: Millis, span_ms: u64) -> (u64, u64) {
        let now_epoch = now / Self::width(span_ms);
        let (mut ok, mut fail) = (0u64, 0u64);
        for k in 0..N as u64 {
            let Some(e) = self.head.checked_sub(k) else {
                break;
            };
            if now_epoch.saturating_sub(e) >= N as u64 {
                break;
            }
            let b = self.buckets[(e % N as u64) as usize];
            ok += u64::from(b.0);
            fail += u64::from(b.1);
        }
        (ok, fail)
    }

    /// Forgets everything (a token brought back by an admin starts with a clean record).
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPAN: u64 = 60_000;

    #[test]
    fn counts_within_the_window_and_forgets_after_it() {
        let mut w = Window::<6>::default();
        w.record(1_000_000, SPAN, true);
        w.record(1_000_500, SPAN, false);
        assert_eq!(w.totals(1_000_500, SPAN), (1, 1));
        // 50 s later both still count; 61 s later the bucket has slid out.
        assert_eq!(w.totals(1_050_000, SPAN), (1, 1));
        assert_eq!(w.totals(1_070_000, SPAN), (0, 0));
    }

    #[test]
    fn slides_one_bucket_at_a_time() {
        let mut w = Window::<6>::default();
        for i in 0..12u64 {
            w.record(i * 10_000, SPAN, i % 2 == 0);
        }
        // The last six buckets (i = 6..12) hold three successes and three failures.
        assert_eq!(w.totals(11 * 10_000, SPAN), (3, 3));
        w.record(200_000, SPAN, true);
        assert_eq!(w.totals(200_000, SPAN), (1, 0));
    }

    #[test]
    fn clock_going_back_does_not_panic() {
        let mut w = Window::<4>::default();
        w.record(100_000, SPAN, true);
        w.record(10, SPAN, false);
        assert_eq!(w.totals(100_000, SPAN), (1, 1));
        w.record(5, 0, true);
        w.clear();
        assert_eq!(w.totals(5, 0), (0, 0));
    }
}
