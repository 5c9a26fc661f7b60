//! Admin and lifecycle operations: insert, remove, patch, refresh, health-check results.

use super::cells::Cells;
use super::token::Token;
use super::{Pool, PoolError, StateChange, TokenPatch, TokenSpec, TokenView};
use crate::ewma::PeakEwma;
use crate::outcome::{Outcome, OutcomeClass};
use crate::secret::Secret;
use crate::state::Health;
use crate::stats::MinuteDelta;
use crate::types::{Limits, Millis, TokenId, TokenState};
use crate::window::Window;
use std::sync::Arc;

fn check_weight(w: u32) -> Result<(), PoolError> {
    if (1..=1000).contains(&w) {
        Ok(())
    } else {
        Err(PoolError::Invalid(format!(
            "weight must be 1..=1000, got {w}"
        )))
    }
}

fn check_limits(l: &Limits) -> Result<(), PoolError> {
    if l.rpm == Some(0) {
        return Err(PoolError::Invalid("limits.rpm must be at least 1".into()));
    }
    if l.max_in_flight == Some(0) {
        return Err(PoolError::Invalid(
            "limits.max_in_flight must be at least 1".into(),
        ));
    }
    Ok(())
}

impl Pool {
    /// Adds a token (new, or restored from the store with its state and counters).
    pub fn insert(&mut self, spec: TokenSpec, now: Millis) -> Result<(), PoolError> {
        if self.by_id.contains_key(spec.id.as_str()) {
            return Err(PoolError::DuplicateId(spec.id));
        }
        check_weight(spec.weight)?;
        check_limits(&spec.limits)?;
        let mut health = Health::new(spec.state, spec.state_reason, None, now);
        if spec.state == TokenState::Cooling {
            // A restored cooling token without an end recovers at the next tick.
            health.until = Some(spec.state_until.unwrap_or(now));
        }
        if spec.state != TokenState::Active && health.reason.is_none() {
            health.reason = Some(format!("restored as {}", spec.state));
        }
        let latency = match spec.counters.latency_ewma_ms {
            Some(ms) if ms.is_finite() && ms >= 0.0 => {
                let mut e = PeakEwma::new(now);
                e.observe(now, ms);
                e
            }
            _ => PeakEwma::new(now),
        };
        let c = &spec.counters;
        self.success += c.success;
        self.failures += c.failures();
        self.requests += c.success + c.failures() + c.client_error + c.unknown;
        let key: Arc<str> = Arc::from(spec.id.0.as_str());
        let token = Token {
            id: key.clone(),
            name: spec.name.into_boxed_str(),
            secret: spec.secret,
            weight: spec.weight,
            expires_at: spec.expires_at,
            limits: spec.limits,
            health,
            counters: Cells::from_counters(&spec.counters),
            in_flight: 0,
            last_used: spec.counters.last_used.unwrap_or(0),
            rpm_minute: 0,
            rpm_count: 0,
            best: Window::default(),
            delta: MinuteDelta::default(),
            dirty: false,
            score: 1.0,
            rescore_at: 0,
            blocked: false,
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.gens[s as usize] = self.gens[s as usize].wrapping_add(1);
                self.slots[s as usize] = Some(token);
                s
            }
            None => {
                self.slots.push(Some(token));
                self.gens.push(0);
                (self.slots.len() - 1) as u32
            }
        };
        self.by_id.insert(key, slot);
        if self.loads.len() <= slot as usize {
            self.loads
                .resize(slot as usize + 1, (0, PeakEwma::new(now)));
        }
        self.loads[slot as usize] = (0, latency);
        self.counts[super::state_index(spec.state)] += 1;
        self.eligible.register(slot, self.next_seq);
        self.next_seq += 1;
        let t = self.tok(slot);
        let (until, state, expires_at) = (t.health.until, t.health.state, t.expires_at);
        if let (Some(u), TokenState::Cooling) = (until, state) {
            self.push_recover(u, slot);
        }
        if let Some(e) = expires_at {
            self.push_expiry(e, slot);
        }
        self.refresh(slot, now);
        Ok(())
    }

    /// Removes a token; its open leases are forgotten (their reports get `UnknownLease`).
    pub fn remove(&mut self, id: &TokenId) -> Option<TokenView> {
        let slot = self.by_id.remove(id.as_str())?;
        let view = self.view_of(slot);
        self.eligible.remove(slot);
        let t = self.slots[slot as usize].take().expect("live slot");
        if t.in_flight > 0 {
            self.leases.forget_slot(slot);
        }
        if t.blocked {
            self.in_flight_blocked -= 1;
        }
        self.in_flight = self.in_flight.saturating_sub(u64::from(t.in_flight));
        self.counts[super::state_index(t.health.state)] -= 1;
        if t.health.state == TokenState::Cooling && t.health.transient_cooling {
            self.transient_cooling -= 1;
        }
        let c = &t.counters;
        self.success = self.success.saturating_sub(c.success());
        self.failures = self.failures.saturating_sub(c.failures());
        self.requests = self.requests.saturating_sub(c.requests());
        self.free.push(slot);
        Some(view)
    }

    /// Applies an admin patch (validated as a whole first: on error nothing changes).
    pub fn patch(
        &mut self,
        id: &TokenId,
        patch: TokenPatch,
        now: Millis,
    ) -> Result<Vec<StateChange>, PoolError> {
        let slot = self.slot_of(id)?;
        if let Some(w) = patch.weight {
            check_weight(w)?;
        }
        if let Some(l) = &patch.limits {
            check_limits(l)?;
        }
        let expires_at = patch.expires_at.unwrap_or(self.tok(slot).expires_at);
        let past = expires_at.is_some_and(|e| e <= now);
        if patch.enabled == Some(true) && past {
            return Err(PoolError::Invalid(
                "cannot enable: expires_at has passed; set a future expires_at (or none) too"
                    .into(),
            ));
        }
        self.advance(now);
        let t = self.tok_mut(slot);
        if let Some(n) = patch.name {
            t.name = n.into_boxed_str();
        }
        if let Some(w) = patch.weight {
            t.weight = w;
        }
        let limits_changed = patch.limits.is_some();
        if let Some(l) = patch.limits {
            t.limits = l;
        }
        if let Some(e) = patch.expires_at {
            t.expires_at = e;
        }
        if limits_changed && self.tok(slot).rpm_full(now) {
            // Already over a lowered rpm this minute: come back when the minute rolls.
            self.push_recover(Self::next_minute(now), slot);
        }
        if let Some(e) = patch.expires_at {
            if let Some(at) = e {
                self.push_expiry(at, slot);
            }
            if !past && self.tok(slot).health.state == TokenState::Expired {
                if let Some(mut c) = self.with_health(slot, now, |h, _| h.set_enabled(true, now)) {
                    c.reason = "expires_at moved to the future".into();
                    c.params = crate::state::params([("action", "expiry_moved".into())]);
                    self.pending.push(c);
                }
            }
        }
        if let Some(en) = patch.enabled {
            if let Some(mut c) = self.with_health(slot, now, |h, _| h.set_enabled(en, now)) {
                if let Some(by) = &patch.by {
                    let action = if en { "enabled" } else { "disabled" };
                    c.reason = format!("{action} by {by}");
                    c.params =
                        crate::state::params([("action", action.into()), ("by", by.clone())]);
                    let h = &mut self.tok_mut(slot).health;
                    if h.reason.is_some() {
                        h.note(c.cause, c.reason.clone(), c.params.clone());
                    }
                }
                self.pending.push(c);
            }
        }
        self.advance(now);
        self.refresh(slot, now);
        Ok(std::mem::take(&mut self.pending))
    }

    /// A refreshed access token replaces the old one in place (same id, stats kept);
    /// invalid/expired → active. Also sets the new expires_at.
    pub fn replace_secret(
        &mut self,
        id: &TokenId,
        secret: Secret,
        expires_at: Option<Millis>,
        now: Millis,
    ) -> Result<Vec<StateChange>, PoolError> {
        let slot = self.slot_of(id)?;
        self.advance(now);
        let t = self.tok_mut(slot);
        t.secret = secret;
        t.expires_at = expires_at;
        if let Some(at) = expires_at {
            self.push_expiry(at, slot);
        }
        if expires_at.is_none_or(|e| e > now) {
            if let Some(c) = self.with_health(slot, now, |h, _| h.refreshed(now)) {
                self.pending.push(c);
            }
        }
        self.advance(now);
        self.refresh(slot, now);
        Ok(std::mem::take(&mut self.pending))
    }

    /// A health-check result: ok brings cooling/invalid back to active; a failure counts like
    /// a reported outcome of its class (transient, auth, …) — it does not touch the stats'
    /// request counts, only the state machine.
    pub fn health_result<R: rand::Rng + ?Sized>(
        &mut self,
        id: &TokenId,
        outcome: &Outcome,
        now: Millis,
        rng: &mut R,
    ) -> Result<Vec<StateChange>, PoolError> {
        let slot = self.slot_of(id)?;
        self.advance(now);
        let change = if outcome.class == OutcomeClass::Success {
            self.with_health(slot, now, |h, _| h.health_ok(now))
        } else {
            self.with_health(slot, now, |h, ctx| h.on_outcome(outcome, ctx, rng))
        };
        if let Some(c) = change {
            self.pending.push(c);
        }
        Ok(std::mem::take(&mut self.pending))
    }

    /// The secret of a token (for health checks and refresh calls).
    pub fn secret(&self, id: &TokenId) -> Option<&Secret> {
        self.by_id.get(id.as_str()).map(|&s| &self.tok(s).secret)
    }
}
