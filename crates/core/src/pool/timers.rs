//! Time in the pool: what happens when, processed by `tick` (and by every other call before
//! it acts). Lease deadlines come from the lease book (`lease_book`); cooling ends, rpm-window
//! rolls, `expires_at` and `best`'s rescoring of penalised tokens (their failures leaving the
//! window) from three min-heaps here.
//!
//! Heaps use lazy deletion: an entry is never removed when its reason goes away (a cooling
//! token that an admin re-enables, an expiry moved by a patch); instead every popped entry is
//! checked against the token's current data (slot generation, state, deadline) and ignored
//! when stale. Heaps are rebuilt without stale entries when they grow past twice what is live,
//! so memory stays bounded under churn.

use super::{Pool, StateChange};
use crate::stats::minute_of;
use crate::types::{Millis, TokenState};
use std::cmp::Reverse;

/// A token timer: (time, slot, generation), earliest first.
pub(crate) type Timer = Reverse<(Millis, u32, u32)>;

impl Pool {
    pub(super) fn push_recover(&mut self, at: Millis, slot: u32) {
        self.recover
            .push(Reverse((at, slot, self.gens[slot as usize])));
    }

    pub(super) fn push_expiry(&mut self, at: Millis, slot: u32) {
        self.expiry
            .push(Reverse((at, slot, self.gens[slot as usize])));
    }

    /// The token at `slot` if it is still the generation `gen`.
    fn live(&self, slot: u32, gen: u32) -> bool {
        self.gens.get(slot as usize) == Some(&gen)
            && self.slots.get(slot as usize).is_some_and(Option::is_some)
    }

    /// Is this recovery timer still meaningful (cooling end or rpm roll of a live token)?
    fn recover_valid(&self, at: Millis, slot: u32, gen: u32) -> bool {
        if !self.live(slot, gen) {
            return false;
        }
        let t = self.tok(slot);
        let cooling_end = t.health.state == TokenState::Cooling
            && !t.health.half_open
            && t.health.until == Some(at);
        let rpm_roll = t.health.serviceable()
            && t.limits.rpm.is_some_and(|r| t.rpm_count >= r)
            && (t.rpm_minute + 1).saturating_mul(60_000) == at;
        cooling_end || rpm_roll
    }

    /// Processes everything due at or before `now`: lease deadlines (closed as `unknown`),
    /// cooling ends (→ half-open), rpm-window rolls, `expires_at`. Changes go to `pending`.
    /// Returns the number of leases expired.
    pub(super) fn advance(&mut self, now: Millis) -> u32 {
        let mut expired = 0;
        while let Some((_, slot)) = self.leases.pop_due(now) {
            self.close_unknown(slot, now);
            expired += 1;
        }
        while let Some(&Reverse((at, slot, gen))) = self.recover.peek() {
            if at > now {
                break;
            }
            self.recover.pop();
            if self.recover_valid(at, slot, gen) {
                if let Some(c) = self.with_health(slot, now, |h, _| h.end_cooling(now)) {
                    self.pending.push(c);
                }
                self.refresh(slot, now);
            }
        }
        while let Some(&Reverse((at, slot, gen))) = self.rescore.peek() {
            if at > now {
                break;
            }
            self.rescore.pop();
            if self.live(slot, gen) && self.tok(slot).rescore_at == at {
                self.tok_mut(slot).rescore_at = 0;
                self.refresh(slot, now);
            }
        }
        while let Some(&Reverse((at, slot, gen))) = self.expiry.peek() {
            if at > now {
                break;
            }
            self.expiry.pop();
            if self.live(slot, gen) && self.tok(slot).expires_at == Some(at) {
                if let Some(c) = self.with_health(slot, now, |h, _| h.expire(now)) {
                    self.pending.push(c);
                }
            }
        }
        expired
    }

    /// A lease reached its deadline unreported: frees its slot, counts `unknown`.
    fn close_unknown(&mut self, slot: u32, now: Millis) {
        let t = self.slots[slot as usize]
            .as_mut()
            .expect("leased slot is live");
        t.in_flight = t.in_flight.saturating_sub(1);
        self.loads[slot as usize].0 = t.in_flight;
        t.counters.count(crate::outcome::OutcomeClass::Unknown);
        self.in_flight = self.in_flight.saturating_sub(1);
        self.count_request(slot, now, false);
        self.refresh(slot, now);
    }

    /// Time passes: leases past their deadline are closed as `unknown` (freeing their slots),
    /// cooling that has ended turns half-open, rpm windows roll, `expires_at` that passed
    /// makes tokens expired. Returns every state change since the last call that returned
    /// changes, and the number of leases expired.
    pub fn tick<R: rand::Rng + ?Sized>(
        &mut self,
        now: Millis,
        _rng: &mut R,
    ) -> (Vec<StateChange>, u32) {
        let n = self.advance(now);
        self.compact();
        (std::mem::take(&mut self.pending), n)
    }

    /// The earliest time at which `tick` has something to do (None = nothing scheduled).
    /// May be early (a stale timer); ticking then is harmless.
    pub fn next_deadline(&self) -> Option<Millis> {
        [
            self.leases.peek_deadline(),
            self.recover.peek().map(|r| r.0 .0),
            self.expiry.peek().map(|r| r.0 .0),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Earliest known recovery for `Unavailable.retry_at`: the first valid cooling end or rpm
    /// roll, and — when a serviceable token waits at its in-flight limit — the first open
    /// lease's deadline (a lower bound on when that token gets a slot back).
    pub(super) fn earliest_recovery(&mut self) -> Option<Millis> {
        while let Some(&Reverse((at, slot, gen))) = self.recover.peek() {
            if self.recover_valid(at, slot, gen) {
                break;
            }
            self.recover.pop();
        }
        let rec = self.recover.peek().map(|r| r.0 .0);
        let lease = (self.in_flight_blocked > 0)
            .then(|| self.leases.earliest_deadline())
            .flatten();
        rec.into_iter().chain(lease).min()
    }

    /// Drops stale timer entries once a heap holds more than twice what can be live.
    pub(super) fn compact(&mut self) {
        let live = self.len() + 1024;
        if self.recover.len() > 2 * live {
            let keep: Vec<_> = std::mem::take(&mut self.recover)
                .into_iter()
                .filter(|r| self.recover_valid(r.0 .0, r.0 .1, r.0 .2))
                .collect();
            self.recover = keep.into();
        }
        if self.expiry.len() > 2 * live {
            let keep: Vec<_> = std::mem::take(&mut self.expiry)
                .into_iter()
                .filter(|r| {
                    self.live(r.0 .1, r.0 .2) && self.tok(r.0 .1).expires_at == Some(r.0 .0)
                })
                .collect();
            self.expiry = keep.into();
        }
        if self.rescore.len() > 2 * live {
            let keep: Vec<_> = std::mem::take(&mut self.rescore)
                .into_iter()
                .filter(|r| self.live(r.0 .1, r.0 .2) && self.tok(r.0 .1).rescore_at == r.0 .0)
                .collect();
            self.rescore = keep.into();
        }
        self.leases.compact();
    }

    /// The minute after `now`'s (when an rpm window rolls).
    pub(super) fn next_minute(now: Millis) -> Millis {
        (minute_of(now) + 1).saturating_mul(60_000)
    }
}
