//! Per-connection bookkeeping for the accept loop: what is in flight, when the connection was
//! last busy, and a rate-limited "once per period" for log lines.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Requests in flight on one connection and the time the last one ended.
#[derive(Clone)]
pub(crate) struct Activity(Arc<Inner>);

struct Inner {
    origin: Instant,
    in_flight: AtomicUsize,
    served: AtomicBool,
    /// Milliseconds after `origin` when the connection last had nothing in flight.
    last_idle_ms: AtomicU64,
}

/// A request in flight; dropped when its response body is finished or abandoned.
pub(crate) struct Busy(Activity);

impl Activity {
    pub(crate) fn new() -> Activity {
        Activity(Arc::new(Inner {
            origin: Instant::now(),
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            last_idle_ms: AtomicU64::new(0),
        }))
    }

    pub(crate) fn begin(&self) -> Busy {
        self.0.in_flight.fetch_add(1, Ordering::AcqRel);
        self.0.served.store(true, Ordering::Relaxed);
        Busy(self.clone())
    }

    fn now_ms(&self) -> u64 {
        self.0.origin.elapsed().as_millis() as u64
    }

    /// Resolves once nothing has been in flight for `first` (before any request) or `idle`
    /// (after one).
    pub(crate) async fn idle_for(&self, first: Duration, idle: Duration) {
        loop {
            let limit = if self.0.served.load(Ordering::Relaxed) {
                idle
            } else {
                first
            };
            let wait = if self.0.in_flight.load(Ordering::Acquire) == 0 {
                let since = Duration::from_millis(
                    self.now_ms()
                        .saturating_sub(self.0.last_idle_ms.load(Ordering::Acquire)),
                );
                match limit.checked_sub(since) {
                    Some(left) if !left.is_zero() => left,
                    _ => return,
                }
            } else {
                limit
            };
            tokio::time::sleep(wait).await;
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let now = self.0.now_ms();
        self.0 .0.last_idle_ms.store(now, Ordering::Release);
        self.0 .0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// "At most once per period": [`Every::tick`] says whether to log now, and how many ticks
/// were swallowed since the last time it did.
pub(crate) struct Every {
    period: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl Every {
    pub(crate) fn new(period: Duration) -> Every {
        Every {
            period,
            state: Mutex::new((None, 0)),
        }
    }

    pub(crate) fn tick(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match state.0 {
            Some(last) if now.duration_since(last) < self.period => {
                state.1 += 1;
                None
            }
            _ => {
                let swallowed = state.1;
                *state = (Some(now), 0);
                Some(swallowed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_logs_the_first_and_counts_the_rest() {
        let e = Every::new(Duration::from_secs(3600));
        assert_eq!(e.tick(), Some(0));
        assert_eq!(e.tick(), None);
        assert_eq!(e.tick(), None);
        let e = Every::new(Duration::ZERO);
        assert_eq!(e.tick(), Some(0));
        assert_eq!(e.tick(), Some(0));
    }
}
