//! Leasing: `pick` with a strategy, `report` an outcome, and what an outcome does to a
//! token's counters, windows and state.
//!
//! A pick advances time first (so nothing expired or past its deadline is handed out), makes
//! sure the strategy's index is maintained, takes a slot from it, and does the bookkeeping in
//! place: in-flight and rpm counts, a record in the lease book, and `refresh`, which takes
//! the token out of the eligible index if it has just reached a limit. A report closes the
//! lease by number and applies the outcome once: class counters and `last_error`, both
//! latency estimates, `best`'s window, the per-minute counts, then the state machine, whose
//! step re-indexes the token. `report_token` does the same without a lease (the seed's API).

use super::{Lease, LeaseId, Pool, PoolError, StateChange, Unavailable};
use crate::ewma::ewma_step;
use crate::outcome::{Outcome, OutcomeClass};
use crate::stats::minute_of;
use crate::strategy::p2c;
use crate::types::{Millis, Strategy, TokenId};

impl Pool {
    /// Leases a token chosen by `strategy`, or says why none is eligible and when one may be.
    pub fn pick<R: rand::Rng + ?Sized>(
        &mut self,
        strategy: Strategy,
        now: Millis,
        rng: &mut R,
    ) -> Result<Lease, Unavailable> {
        self.advance(now);
        self.activate(strategy);
        let Some(slot) = self.choose(strategy, now, rng) else {
            return Err(self.unavailable());
        };
        match strategy {
            Strategy::Weighted => {
                let w = self.tok(slot).weight;
                self.eligible.weighted.charge(slot, w);
            }
            Strategy::Best => self.eligible.best.charge(slot),
            _ => {}
        }
        let deadline = now.saturating_add(self.policy.lease_ttl_ms());
        let m = minute_of(now);
        let lease_id = self.leases.next_number();
        let t = self.slots[slot as usize].as_mut().expect("live slot");
        t.in_flight = t.in_flight.saturating_add(1);
        self.loads[slot as usize].0 = t.in_flight;
        if m > t.rpm_minute {
            t.rpm_minute = m;
            t.rpm_count = 0;
        }
        t.rpm_count = t.rpm_count.saturating_add(1);
        let rpm_full = t.limits.rpm.is_some_and(|r| t.rpm_count >= r);
        t.last_used = now;
        let lease = Lease {
            id: LeaseId(lease_id),
            token_id: t.token_id(),
            name: String::from(&*t.name),
            secret: t.secret.clone(),
            deadline,
        };
        self.mark_dirty(slot);
        if rpm_full {
            self.push_recover(Self::next_minute(now), slot);
        }
        self.in_flight += 1;
        let opened = self.leases.open(slot, deadline);
        debug_assert_eq!(opened, lease_id);
        self.refresh(slot, now);
        self.compact();
        Ok(lease)
    }

    fn choose<R: rand::Rng + ?Sized>(
        &mut self,
        strategy: Strategy,
        now: Millis,
        rng: &mut R,
    ) -> Option<u32> {
        let loads = &self.loads;
        match strategy {
            Strategy::RoundRobin => self.eligible.rr.pick_next(),
            Strategy::Best => self.eligible.best.first(),
            Strategy::Weighted => self.eligible.weighted.first(),
            Strategy::Random => self.eligible.random.sample(rng),
            Strategy::LeastInFlight => p2c::pick(&self.eligible.random, rng, |s| {
                f64::from(loads[s as usize].0)
            }),
            Strategy::Latency => p2c::pick(&self.eligible.random, rng, |s| {
                let (in_flight, latency) = &loads[s as usize];
                latency.cost_at(now, *in_flight)
            }),
        }
    }

    fn unavailable(&mut self) -> Unavailable {
        let retry_at = self.earliest_recovery();
        let c = &self.counts;
        let reason = if self.is_empty() {
            format!("pool {:?} has no tokens", self.name)
        } else {
            format!(
                "no eligible token in pool {:?}: {} active (at their rate or in-flight limits), {} cooling, {} invalid, {} disabled, {} expired",
                self.name, c[0], c[1], c[2], c[3], c[4]
            )
        };
        Unavailable { retry_at, reason }
    }

    /// Reports the outcome of a lease: frees its slot and applies the outcome. Returns the
    /// token's id and the state changes (including any found while advancing time).
    pub fn report<R: rand::Rng + ?Sized>(
        &mut self,
        lease: LeaseId,
        outcome: &Outcome,
        now: Millis,
        rng: &mut R,
    ) -> Result<(TokenId, Vec<StateChange>), PoolError> {
        self.advance(now);
        let slot = self.leases.close(lease.0).ok_or(PoolError::UnknownLease)?;
        let t = self.slots[slot as usize]
            .as_mut()
            .expect("leased slot is live");
        t.in_flight = t.in_flight.saturating_sub(1);
        self.loads[slot as usize].0 = t.in_flight;
        let id = t.token_id();
        self.in_flight = self.in_flight.saturating_sub(1);
        self.apply_outcome(slot, outcome, now, rng);
        Ok((id, std::mem::take(&mut self.pending)))
    }

    /// Moves the deadline of an open lease to `deadline` (a long upload or stream keeps its
    /// token); returns the token's id. The caller bounds how far ahead `deadline` may be.
    pub fn renew(
        &mut self,
        lease: LeaseId,
        deadline: Millis,
        now: Millis,
    ) -> Result<TokenId, PoolError> {
        self.advance(now);
        let slot = self
            .leases
            .slot_of(lease.0)
            .ok_or(PoolError::UnknownLease)?;
        if !self.leases.renew(lease.0, deadline.max(now)) {
            return Err(PoolError::UnknownLease);
        }
        let t = self.slots[slot as usize]
            .as_ref()
            .expect("leased slot is live");
        Ok(t.token_id())
    }

    /// The token open lease `lease` holds (`None` when it is not open). Does not advance
    /// time: a lease past its deadline but not yet swept still answers.
    pub fn lease_holder(&self, lease: LeaseId) -> Option<TokenId> {
        let slot = self.leases.slot_of(lease.0)?;
        self.slots[slot as usize].as_ref().map(|t| t.token_id())
    }

    /// Seed-style report without a lease (`{"token"|"id","success":bool}`); frees nothing.
    pub fn report_token<R: rand::Rng + ?Sized>(
        &mut self,
        id: &TokenId,
        outcome: &Outcome,
        now: Millis,
        rng: &mut R,
    ) -> Result<Vec<StateChange>, PoolError> {
        self.advance(now);
        let slot = self.slot_of(id)?;
        self.apply_outcome(slot, outcome, now, rng);
        Ok(std::mem::take(&mut self.pending))
    }

    /// Counters, windows, latency, then the state machine; changes go to `pending`.
    pub(super) fn apply_outcome<R: rand::Rng + ?Sized>(
        &mut self,
        slot: u32,
        outcome: &Outcome,
        now: Millis,
        rng: &mut R,
    ) {
        // The token's own secret never reaches `last_error` or an event, whatever its length
        // (DESIGN §9); then the sample is cut to its stored size.
        let cleaned;
        let outcome = match &outcome.error {
            Some(e) => {
                let secret = &self.slots[slot as usize]
                    .as_ref()
                    .expect("live slot")
                    .secret;
                let cut = secret.cut_from(e);
                cleaned = Outcome {
                    error: Some(cut.chars().take(crate::outcome::MAX_ERROR_CHARS).collect()),
                    ..outcome.clone()
                };
                &cleaned
            }
            None => outcome,
        };
        let best_span = self.policy.best_window_s.max(1).saturating_mul(1000);
        let class = outcome.class;
        let failed = class.is_token_failure();
        let t = self.slots[slot as usize].as_mut().expect("live slot");
        let c = &mut t.counters;
        c.count(class);
        if failed {
            let e = match &outcome.error {
                Some(e) => format!("{class}: {e}"),
                None => class.to_string(),
            };
            c.last_error = Some(e.into_boxed_str());
            c.last_error_at = now;
        }
        if let Some(ms) = outcome.latency_ms {
            c.latency_ewma_ms = ewma_step(c.latency(), f64::from(ms)) as f32;
            self.loads[slot as usize].1.observe(now, f64::from(ms));
        }
        if class == OutcomeClass::Success || failed {
            t.best.record(now, best_span, !failed);
        }
        match class {
            OutcomeClass::Success => self.success += 1,
            _ if failed => self.failures += 1,
            _ => {}
        }
        self.count_request(slot, now, failed);
        // `with_health` re-indexes the token (score, membership) whether or not it changed.
        if let Some(c) = self.with_health(slot, now, |h, ctx| h.on_outcome(outcome, ctx, rng)) {
            self.pending.push(c);
        }
        let window = self.policy.best_window_s;
        let t = self.tok_mut(slot);
        t.score = t.score(now, window) as f32;
    }

    /// Per-minute counts (token delta and pool ring) and the dirty mark for one request.
    pub(super) fn count_request(&mut self, slot: u32, now: Millis, failed: bool) {
        self.requests += 1;
        self.minutes.record(now, failed);
        if let Some(done) = self.tok_mut(slot).delta.record(now, failed) {
            self.rolled.push((slot, self.gens[slot as usize], done));
        }
        self.mark_dirty(slot);
    }

    pub(super) fn mark_dirty(&mut self, slot: u32) {
        let t = self.tok_mut(slot);
        if !t.dirty {
            t.dirty = true;
            self.dirty.push(slot);
        }
    }

    /// The number of open leases.
    pub fn leases_open(&self) -> usize {
        self.leases.len()
    }
}
