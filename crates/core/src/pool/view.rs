//! Read-side of the pool: token views, pool stats, the pool's 24-hour minute series.
//! (Dirty counters for the store: `dirty`.)

use super::{Pool, TokenView};
use crate::secret::Secret;
use crate::stats::PoolStats;
use crate::types::{Millis, TokenId, TokenState};

/// A token's sortable facts, borrowed from the pool: what a paged list filters and orders
/// 100,000 tokens by without building their views (no string is copied, nothing formatted).
/// The secret stays private: only its masked form can be asked for.
#[derive(Clone, Copy, Debug)]
pub struct TokenKey<'a> {
    /// The token's public id.
    pub id: &'a str,
    /// Its label.
    pub name: &'a str,
    /// Its state now.
    pub state: TokenState,
    /// Successes.
    pub success: u64,
    /// Failures that count against the token (as [`crate::Counters::failures`]).
    pub failures: u64,
    /// Every counted outcome, client errors and unknowns included.
    pub requests: u64,
    /// Leases out now.
    pub in_flight: u32,
    /// Its weight under `weighted`.
    pub weight: u32,
    /// Last pick, if ever.
    pub last_used: Option<Millis>,
    /// Last counted error, if ever.
    pub last_error_at: Option<Millis>,
    /// When it expires, if ever.
    pub expires_at: Option<Millis>,
    secret: &'a Secret,
}

impl TokenKey<'_> {
    /// The secret's masked form (`abcd…wxyz`), as a view shows it.
    pub fn masked(&self) -> String {
        self.secret.masked()
    }
}

impl Pool {
    pub(super) fn view_of(&self, slot: u32) -> TokenView {
        let t = self.tok(slot);
        let counters = t.counters.to_counters(t.last_used);
        let success_rate = counters.success_rate();
        TokenView {
            id: t.token_id(),
            name: t.name.to_string(),
            masked: t.secret.masked(),
            state: t.health.state,
            state_reason: t.health.reason.clone(),
            state_reason_code: t.health.reason_code.as_deref().cloned(),
            state_until: t.health.until,
            half_open: t.health.half_open,
            weight: t.weight,
            expires_at: t.expires_at,
            limits: t.limits.clone(),
            in_flight: t.in_flight,
            counters,
            success_rate,
            score: f64::from(t.score),
        }
    }

    /// A view of one token, or `None` if the pool has no such id.
    pub fn get(&self, id: &TokenId) -> Option<TokenView> {
        self.by_id.get(id.as_str()).map(|&s| self.view_of(s))
    }

    /// One token's state, or `None` if the pool has no such id: what a report's
    /// acknowledgement needs, without building (and masking the secret of) a whole view.
    pub fn state_of(&self, id: &TokenId) -> Option<TokenState> {
        let &slot = self.by_id.get(id.as_str())?;
        self.slots[slot as usize].as_ref().map(|t| t.health.state)
    }

    /// Every token's [`TokenKey`], in slot order: O(tokens), no allocation per token.
    pub fn keys(&self) -> impl Iterator<Item = TokenKey<'_>> + '_ {
        self.keys_in(0..self.slots.len())
    }

    /// Slots (occupied or free) a [`Pool::keys_in`] walk covers: a caller that must not hold
    /// the pool's lock for 100,000 tokens at once walks `0..slot_count()` in chunks.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The [`TokenKey`]s of the tokens in these slots (clamped to the slots there are).
    pub fn keys_in(
        &self,
        slots: std::ops::Range<usize>,
    ) -> impl Iterator<Item = TokenKey<'_>> + '_ {
        let end = slots.end.min(self.slots.len());
        let start = slots.start.min(end);
        self.slots[start..end].iter().flatten().map(|t| TokenKey {
            id: &t.id,
            name: &t.name,
            state: t.health.state,
            success: t.counters.success(),
            failures: t.counters.failures(),
            requests: t.counters.requests(),
            in_flight: t.in_flight,
            weight: t.weight,
            last_used: (t.last_used != 0).then_some(t.last_used),
            last_error_at: (t.counters.last_error_at != 0).then_some(t.counters.last_error_at),
            expires_at: t.expires_at,
            secret: &t.secret,
        })
    }

    /// Every token, in insertion order of their slots.
    pub fn views(&self) -> Vec<TokenView> {
        (0..self.slots.len() as u32)
            .filter(|&s| self.slots[s as usize].is_some())
            .map(|s| self.view_of(s))
            .collect()
    }

    /// Tokens not yet expired whose `expires_at` falls within `horizon_ms` of `now` (for an
    /// "expiring soon" gauge). O(tokens), no allocation; disabled tokens are not counted.
    pub fn expiring_within(&self, now: Millis, horizon_ms: Millis) -> usize {
        let end = now.saturating_add(horizon_ms);
        self.slots
            .iter()
            .flatten()
            .filter(|t| {
                !matches!(t.health.state, TokenState::Expired | TokenState::Disabled)
                    && t.expires_at.is_some_and(|e| e > now && e <= end)
            })
            .count()
    }

    /// Pool totals, O(1): kept incrementally, not summed over the tokens.
    pub fn stats(&self) -> PoolStats {
        let mut by_state = [(TokenState::Active, 0); 5];
        for (i, st) in TokenState::ALL.into_iter().enumerate() {
            by_state[i] = (st, self.counts[super::state_index(st)]);
        }
        let n = self.success + self.failures;
        PoolStats {
            total: self.len(),
            by_state,
            in_flight: self.in_flight,
            success: self.success,
            failures: self.failures,
            requests: self.requests,
            success_rate: if n == 0 {
                1.0
            } else {
                self.success as f64 / n as f64
            },
        }
    }

    /// Pool-wide per-minute (minute since epoch, requests, failures) for the last 24 h,
    /// oldest first, ending with `now`'s minute.
    pub fn minute_series(&self, now: Millis) -> Vec<(u64, u32, u32)> {
        self.minutes.series(now)
    }
}
