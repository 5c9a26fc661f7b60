//! A brute-force self-check of the pool's incremental bookkeeping, for tests.
//!
//! The pool keeps many things incrementally (the eligible index, per-state counts, the rail
//! count, in-flight totals) so that a pick never scans. This recomputes all of them the slow
//! way, O(n), and says what disagrees. Property tests call it after every step.

use super::Pool;
use crate::types::{Millis, TokenState};

impl Pool {
    /// Recomputes the incremental state from scratch at `now` (call after `tick(now)`) and
    /// reports the first disagreement. O(n): for tests and debugging only.
    #[doc(hidden)]
    pub fn check_invariants(&self, now: Millis) -> Result<(), String> {
        let mut counts = [0usize; 5];
        let (mut transient, mut in_flight, mut blocked, mut eligible) = (0, 0u64, 0, 0);
        for (slot, t) in self.slots.iter().enumerate() {
            let Some(t) = t else { continue };
            let slot = slot as u32;
            let h = &t.health;
            counts[super::state_index(h.state)] += 1;
            transient += usize::from(h.state == TokenState::Cooling && h.transient_cooling);
            in_flight += u64::from(t.in_flight);
            blocked += usize::from(h.serviceable() && t.in_flight_full());
            let should = t.eligible(now);
            eligible += usize::from(should);
            if should != self.eligible.contains(slot) {
                return Err(format!(
                    "token {} eligible={should} but indexed={}",
                    t.id,
                    self.eligible.contains(slot)
                ));
            }
            if h.state != TokenState::Active && h.reason.is_none() {
                return Err(format!("token {} is {} without a reason", t.id, h.state));
            }
            if h.state == TokenState::Cooling && h.until.is_none() {
                return Err(format!("token {} cooling without an end", t.id));
            }
            let leases = self.leases.count_slot(slot);
            if leases != t.in_flight as usize {
                return Err(format!(
                    "token {} in_flight {} but {leases} leases",
                    t.id, t.in_flight
                ));
            }
            if self.loads[slot as usize].0 != t.in_flight {
                return Err(format!("token {} load copy out of date", t.id));
            }
            if self.by_id.get(&*t.id) != Some(&slot) {
                return Err(format!("token {} missing from the id map", t.id));
            }
        }
        let lens = self.eligible.index_lens();
        let checks = [
            ("counts", counts != self.counts),
            ("transient_cooling", transient != self.transient_cooling),
            ("in_flight", in_flight != self.in_flight),
            ("in_flight_blocked", blocked != self.in_flight_blocked),
            ("eligible len", lens.iter().any(|&l| l != eligible)),
            ("id map", self.by_id.len() != counts.iter().sum::<usize>()),
        ];
        match checks.iter().find(|c| c.1) {
            Some((what, _)) => Err(format!("{what} disagrees with a recount")),
            None => Ok(()),
        }
    }
}
