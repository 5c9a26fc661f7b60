//! One token inside the pool: identity, limits, health, counters and the small amount of
//! per-token bookkeeping that strategies and stats need.
//!
//! Kept compact for 100,000 tokens: two small time-bucket windows, one peak-EWMA, the current
//! minute's counts; no per-token history arrays.

use super::cells::Cells;
use crate::secret::Secret;
use crate::state::Health;
use crate::stats::{minute_of, MinuteDelta};
use crate::strategy::best;
use crate::types::{Limits, Millis, TokenId};
use crate::window::Window;
use std::sync::Arc;

/// Buckets of `best`'s success-rate window (300 s default → 60 s buckets).
pub(crate) const BEST_BUCKETS: usize = 5;

/// Field order is deliberate (`repr(C)`, 64-byte aligned): the first cache line holds what
/// every pick reads and writes, the second the strings a lease copies and the start of the
/// health; what only reports touch (windows, counters, latency) follows. With 100,000 tokens
/// a random pick is dominated by cache misses, so fewer lines touched is faster picks.
#[derive(Debug)]
#[repr(C, align(64))]
pub(crate) struct Token {
    /// The minute `rpm_count` counts picks in.
    pub rpm_minute: u64,
    /// Last pick (0 = never); `Counters::last_used`.
    pub last_used: Millis,
    pub limits: Limits,
    pub expires_at: Option<Millis>,
    pub rpm_count: u32,
    /// Leases out now (mirrored in the pool's dense `loads` for P2C).
    pub in_flight: u32,
    pub weight: u32,
    /// `best`'s score as of the last touch.
    pub score: f32,
    /// When `best`'s score next rises on its own (its failures leave the window); 0 = no
    /// rescore timer pending.
    pub rescore_at: Millis,
    /// In the pool's dirty list (counters changed since the last `take_dirty`).
    pub dirty: bool,
    /// Counted in the pool's `in_flight_blocked` (serviceable, at its in-flight limit).
    pub blocked: bool,
    /// The id, shared with the pool's id map (one allocation for both).
    pub id: Arc<str>,
    pub name: Box<str>,
    pub secret: Secret,
    pub health: Health,
    pub counters: Cells,
    /// Successes / token failures for `best`.
    pub best: Window<BEST_BUCKETS>,
    /// This minute's counts not yet taken by `take_dirty`.
    pub delta: MinuteDelta,
}

impl Token {
    pub fn token_id(&self) -> TokenId {
        // `String::from`, not `to_string()`: the latter goes through the formatting machinery
        // (about 1,000 instructions, twice per leased call).
        TokenId(String::from(&*self.id))
    }

    /// The rpm limit is used up for `now`'s minute.
    pub fn rpm_full(&self, now: Millis) -> bool {
        self.limits
            .rpm
            .is_some_and(|r| self.rpm_minute >= minute_of(now) && self.rpm_count >= r)
    }

    /// Leases allowed at once: 1 on half-open probation, else the limit.
    pub fn max_in_flight(&self) -> u32 {
        if self.health.half_open {
            1
        } else {
            self.limits.max_in_flight.unwrap_or(u32::MAX)
        }
    }

    pub fn in_flight_full(&self) -> bool {
        self.in_flight >= self.max_in_flight()
    }

    /// May be leased at `now`: serviceable state, under both limits. (`expires_at` is not
    /// checked here: its timer runs before any pick at or after that time.)
    pub fn eligible(&self, now: Millis) -> bool {
        self.health.serviceable() && !self.rpm_full(now) && !self.in_flight_full()
    }

    /// `best`'s score at `now`. The halving per consecutive failure lasts as long as the
    /// last failure is in the window: a token nobody picked since is not held down for ever.
    pub fn score(&self, now: Millis, window_s: u64) -> f64 {
        let span = window_s.max(1).saturating_mul(1000);
        let (ok, fail) = self.best.totals(now, span);
        let recent = self.counters.last_error_at.saturating_add(span) > now;
        let consec = if recent { self.health.consec_fail } else { 0 };
        best::score(ok, fail, consec)
    }

    /// When a score below full weight rises by itself: once the last failure has left the
    /// window (one bucket's rounding included).
    pub fn rescore_time(&self, window_s: u64) -> Millis {
        let span = window_s.max(1).saturating_mul(1000);
        self.counters
            .last_error_at
            .saturating_add(span)
            .saturating_add(span / BEST_BUCKETS as u64 + 1)
    }
}
