//! The transitions of [`Health`]: outcomes, time, health checks, admin and refresh.
//!
//! Each method returns `Some(Transition)` only when the state (or the half-open / cooling
//! deadline) changed; counting for stats is the pool's job.

use super::{cooling_ms, params, ChangeCause, Ctx, Health, Params, Transition, MAX_RETRY_AFTER_S};
use crate::outcome::{Outcome, OutcomeClass};
use crate::types::{Millis, TokenState};

impl Health {
    /// Applies one reported outcome (or failed health check).
    pub fn on_outcome<R: rand::Rng + ?Sized>(
        &mut self,
        outcome: &Outcome,
        ctx: Ctx<'_>,
        rng: &mut R,
    ) -> Option<Transition> {
        let now = ctx.now;
        let span = ctx.policy.error_window_s.max(1).saturating_mul(1000);
        match outcome.class {
            OutcomeClass::ClientError | OutcomeClass::Unknown => return None,
            OutcomeClass::Success => {
                self.consec_fail = 0;
                self.errors.record(now, span, true);
                if self.state == TokenState::Cooling && self.half_open {
                    return Some(self.go(
                        TokenState::Active,
                        ChangeCause::ProbeSucceeded,
                        "half-open probe succeeded".into(),
                        None,
                        now,
                    ));
                }
                if self.state == TokenState::Active && self.reason.is_some() {
                    // A "kept active by the rail" note is stale once the token succeeds.
                    self.reason = None;
                }
                return None;
            }
            _ => {
                self.consec_fail = self.consec_fail.saturating_add(1);
                self.errors.record(now, span, false);
            }
        }
        if !matches!(self.state, TokenState::Active | TokenState::Cooling) {
            return None;
        }
        let sample = outcome.error.clone();
        match outcome.class {
            OutcomeClass::Auth => {
                let (why, p) = match outcome.status {
                    Some(s) => (
                        format!("auth failure: upstream rejected the token (HTTP {s})"),
                        params([("status", s.to_string())]),
                    ),
                    None => (
                        "auth failure: upstream rejected the token".to_string(),
                        Params::new(),
                    ),
                };
                Some(self.go_with(
                    TokenState::Invalid,
                    ChangeCause::AuthFailure,
                    why,
                    p,
                    sample,
                    now,
                ))
            }
            OutcomeClass::RateLimited | OutcomeClass::QuotaExhausted => {
                self.rate_limit(outcome, ctx, sample)
            }
            _ => self.transient(ctx, sample, rng),
        }
    }

    fn rate_limit(
        &mut self,
        outcome: &Outcome,
        ctx: Ctx<'_>,
        sample: Option<String>,
    ) -> Option<Transition> {
        let now = ctx.now;
        let (what, cause) = if outcome.class == OutcomeClass::RateLimited {
            ("rate limited", ChangeCause::RateLimited)
        } else {
            ("quota exhausted", ChangeCause::QuotaExhausted)
        };
        let (secs, src) = match outcome.retry_after_s {
            Some(s) => (s.min(MAX_RETRY_AFTER_S), "retry-after"),
            None => (
                ctx.policy.rate_limit_default_s.min(MAX_RETRY_AFTER_S),
                "default",
            ),
        };
        let until = now.saturating_add(secs * 1000);
        if self.state == TokenState::Cooling && !self.half_open {
            // Already cooling: only ever extend.
            if self.until.is_some_and(|u| u >= until) {
                return None;
            }
        }
        let reason = format!("{what}: cooling {secs} s ({src})");
        let p = params([("seconds", secs.to_string()), ("source", src.to_string())]);
        let was_transient = self.transient_cooling && self.state == TokenState::Cooling;
        let mut t = self.go_with(TokenState::Cooling, cause, reason, p, sample, now);
        self.until = Some(until);
        // A token already counted against the rail stays counted until it recovers.
        self.transient_cooling = was_transient;
        t.cooled = true;
        Some(t)
    }

    fn transient<R: rand::Rng + ?Sized>(
        &mut self,
        ctx: Ctx<'_>,
        sample: Option<String>,
        rng: &mut R,
    ) -> Option<Transition> {
        let p = ctx.policy;
        let now = ctx.now;
        let (why, cause, mut rp) = if self.state == TokenState::Cooling {
            if !self.half_open {
                return None; // a late report from before the cooling
            }
            (
                "half-open probe failed".to_string(),
                ChangeCause::ProbeFailed,
                Params::new(),
            )
        } else {
            let span = p.error_window_s.max(1).saturating_mul(1000);
            let (ok, fail) = self.errors.totals(now, span);
            let n = ok + fail;
            if self.consec_fail >= p.consecutive_failures.max(1) {
                (
                    format!("{} consecutive failures", self.consec_fail),
                    ChangeCause::ConsecutiveFailures,
                    params([("count", self.consec_fail.to_string())]),
                )
            } else if n >= u64::from(p.error_rate_min_requests.max(1))
                && fail as f64 / n as f64 > p.error_rate_threshold
            {
                let rate = format!("{:.0}", 100.0 * fail as f64 / n as f64);
                (
                    format!(
                        "error rate {rate}% over {n} requests in {} s",
                        p.error_window_s
                    ),
                    ChangeCause::ErrorRate,
                    params([
                        ("rate", rate.clone()),
                        ("requests", n.to_string()),
                        ("window_s", p.error_window_s.to_string()),
                    ]),
                )
            } else {
                return None;
            }
        };
        let already_counted = self.state == TokenState::Cooling && self.transient_cooling;
        if !already_counted && !ctx.rail_room {
            let note = format!(
                "kept active: {why} (transient), but max_cooling_percent {}% of the pool is already cooling for transient errors (upstream-wide trouble is not a token problem)",
                p.max_cooling_percent
            );
            rp.push((
                "kept_active_percent".into(),
                p.max_cooling_percent.to_string(),
            ));
            self.note(cause, note, rp);
            return None;
        }
        let cap_ms = p.cooling_cap_s.saturating_mul(1000);
        if self.state == TokenState::Active && now.saturating_sub(self.active_since) >= cap_ms {
            self.streak = 0; // long enough healthy: start the backoff over
        }
        self.streak = self.streak.saturating_add(1);
        let ms = cooling_ms(p, self.streak, rng);
        let reason = format!(
            "{why} (transient): cooling {:.1} s (#{} in a row)",
            ms as f64 / 1000.0,
            self.streak
        );
        rp.push(("seconds".into(), format!("{:.1}", ms as f64 / 1000.0)));
        rp.push(("streak".into(), self.streak.to_string()));
        let mut t = self.go_with(TokenState::Cooling, cause, reason, rp, sample, now);
        self.until = Some(now.saturating_add(ms));
        self.transient_cooling = true;
        t.cooled = true;
        Some(t)
    }

    /// Cooling deadline reached: half-open probation. `None` if not due or not cooling.
    pub fn end_cooling(&mut self, now: Millis) -> Option<Transition> {
        if self.state != TokenState::Cooling || self.half_open || self.until.is_none_or(|u| u > now)
        {
            return None;
        }
        self.half_open = true;
        let reason = "cooling ended: half-open, one probe request at a time".to_string();
        self.note(ChangeCause::CoolingEnded, reason.clone(), Params::new());
        Some(Transition {
            from: TokenState::Cooling,
            to: TokenState::Cooling,
            reason,
            sample_error: None,
            cooled: false,
            cause: ChangeCause::CoolingEnded,
            params: Params::new(),
        })
    }

    /// `expires_at` passed. Disabled tokens stay disabled (the admin's word wins).
    pub fn expire(&mut self, now: Millis) -> Option<Transition> {
        match self.state {
            TokenState::Expired | TokenState::Disabled => None,
            _ => Some(self.go(
                TokenState::Expired,
                ChangeCause::Expired,
                "expires_at passed".into(),
                None,
                now,
            )),
        }
    }

    /// A passing health check brings cooling (incl. half-open) and invalid tokens back.
    pub fn health_ok(&mut self, now: Millis) -> Option<Transition> {
        match self.state {
            TokenState::Cooling | TokenState::Invalid => Some(self.go(
                TokenState::Active,
                ChangeCause::HealthCheck,
                "health check passed".into(),
                None,
                now,
            )),
            _ => None,
        }
    }

    /// A refreshed secret: invalid / expired → active (cooling and disabled are kept).
    pub fn refreshed(&mut self, now: Millis) -> Option<Transition> {
        match self.state {
            TokenState::Invalid | TokenState::Expired => Some(self.go(
                TokenState::Active,
                ChangeCause::Refreshed,
                "secret replaced (refresh)".into(),
                None,
                now,
            )),
            _ => None,
        }
    }

    /// Admin `enabled=false` / `enabled=true`.
    pub fn set_enabled(&mut self, enabled: bool, now: Millis) -> Option<Transition> {
        match (enabled, self.state) {
            (false, TokenState::Disabled) | (true, TokenState::Active) => None,
            (false, _) => Some(self.go_with(
                TokenState::Disabled,
                ChangeCause::Admin,
                "disabled by admin".into(),
                params([("action", "disabled".into()), ("by", "admin".into())]),
                None,
                now,
            )),
            (true, _) => {
                self.streak = 0;
                Some(self.go_with(
                    TokenState::Active,
                    ChangeCause::Admin,
                    "enabled by admin".into(),
                    params([("action", "enabled".into()), ("by", "admin".into())]),
                    None,
                    now,
                ))
            }
        }
    }
}
