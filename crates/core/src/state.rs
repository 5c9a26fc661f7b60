//! The per-token state machine (DESIGN §2 "failure handling"), apart from the pool.
//!
//! [`Health`] holds what decides a token's fate — state, reason, cooling deadline, half-open
//! flag, consecutive failures, the error-rate window, how often it cooled in a row — and its
//! methods are the transitions. They take `now`, the policy, an RNG and one bit of pool-wide
//! context (is there room under `max_cooling_percent` for one more transient cooling?) and
//! return a [`Transition`] when the state changed; the pool turns that into a `StateChange`
//! event and re-indexes the token. Modelled on linkerd2-proxy's breakers: a consecutive-
//! failure breaker with backoff and one-request probation, plus a success-rate breaker over a
//! ring of time buckets.
//!
//! | from | event | to |
//! |---|---|---|
//! | active / cooling | `auth` | invalid |
//! | active / cooling | `rate_limited`, `quota_exhausted` | cooling until retry-after (or default) |
//! | active | `transient`, N in a row or error rate > threshold | cooling base × streak (cap, ± jitter) — unless the rail is full: stays active, reason says so |
//! | cooling | deadline passed | cooling, *half-open*: one request at a time |
//! | half-open | success | active |
//! | half-open | token failure | cooling again, longer |
//! | cooling / invalid | health check ok | active |
//! | any but disabled | `expires_at` passed | expired |
//! | any | admin disable | disabled (never re-enabled automatically) |
//!
//! `client_error` and `unknown` never change anything.

#[cfg(test)]
mod tests;
mod transitions;

use crate::policy::Policy;
use crate::types::{Millis, TokenState};
use crate::window::Window;

/// Buckets of the error-rate window (60 s default → 10 s buckets).
pub(crate) const ERROR_BUCKETS: usize = 6;
/// Upper bound for a rate-limit / quota cooling, whatever the upstream says (31 days).
pub(crate) const MAX_RETRY_AFTER_S: u64 = 31 * 86_400;

/// What the state machine knows about one token. `repr(C)`: the fields a pick reads
/// (state, half-open) come first, next to the token's hot line.
#[derive(Clone, Debug)]
#[repr(C)]
pub struct Health {
    /// Where the token stands; with `half_open`, what [`Health::serviceable`] reads.
    pub state: TokenState,
    /// Cooling has ended and the token is on probation: one request at a time.
    pub half_open: bool,
    /// This cooling was caused by transient errors (it counts against `max_cooling_percent`).
    pub transient_cooling: bool,
    /// Token failures since the last success.
    pub consec_fail: u32,
    /// Coolings for transient errors in a row (drives the growing cooling time).
    pub streak: u32,
    /// Why the token is in its state (always set when it is out of rotation).
    pub reason: Option<String>,
    /// `reason` as a code and its parameters, for translation (`None` when `reason` came
    /// from before codes were kept, e.g. restored from the store).
    pub reason_code: Option<Box<ReasonCode>>,
    /// End of cooling (cooling only).
    pub until: Option<Millis>,
    /// When the token last became active (the streak resets after a quiet `cooling_cap_s`).
    pub active_since: Millis,
    /// Successes / token failures in the error-rate window.
    pub errors: Window<ERROR_BUCKETS>,
}

/// A state change decided by the machine; the pool stamps it with time and token id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The state before.
    pub from: TokenState,
    /// The state after (equal to `from` when a cooling was extended or turned half-open).
    pub to: TokenState,
    /// Why, in words; also kept as the token's `reason` unless it went active.
    pub reason: String,
    /// The error sample of the outcome that caused it, if any.
    pub sample_error: Option<String>,
    /// This change started (or extended) a cooling period: `times_cooled` goes up.
    pub cooled: bool,
    /// Why, as one of a fixed set (a metric label; `reason` is the words).
    pub cause: ChangeCause,
    /// The parameters of `reason` (e.g. `seconds`, `count`), so a UI can word it in any
    /// language from `cause` and these.
    pub params: Params,
}

/// Named parameters of a reason, in the order they are said.
pub type Params = Vec<(String, String)>;

/// A state reason as a fixed code (a [`ChangeCause`]) and its parameters: what a UI
/// translates, where `reason` is the English words.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReasonCode {
    /// The code.
    pub cause: ChangeCause,
    /// Its parameters.
    pub params: Params,
}

/// Builds [`Params`] from pairs.
pub fn params<const N: usize>(pairs: [(&str, String); N]) -> Params {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Why a state changed, as one of a fixed set of values: what a metric label or a
/// notification filter may carry, where [`Transition::reason`] is free text.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ChangeCause {
    /// The upstream rejected the token (`auth`).
    AuthFailure,
    /// `rate_limited`: cooling until retry-after.
    RateLimited,
    /// `quota_exhausted`: cooling until retry-after.
    QuotaExhausted,
    /// Transient failures in a row.
    ConsecutiveFailures,
    /// The windowed error rate passed its threshold.
    ErrorRate,
    /// The half-open probe request failed.
    ProbeFailed,
    /// The half-open probe request succeeded.
    ProbeSucceeded,
    /// The cooling deadline passed (half-open).
    CoolingEnded,
    /// `expires_at` passed.
    Expired,
    /// A passing health check.
    HealthCheck,
    /// A refreshed secret.
    Refreshed,
    /// An admin enabled or disabled the token (or moved its expiry).
    Admin,
    /// None of the above (a change recorded before causes were kept).
    #[default]
    Other,
}

impl ChangeCause {
    /// Every cause, in a fixed order.
    pub const ALL: [ChangeCause; 13] = [
        ChangeCause::AuthFailure,
        ChangeCause::RateLimited,
        ChangeCause::QuotaExhausted,
        ChangeCause::ConsecutiveFailures,
        ChangeCause::ErrorRate,
        ChangeCause::ProbeFailed,
        ChangeCause::ProbeSucceeded,
        ChangeCause::CoolingEnded,
        ChangeCause::Expired,
        ChangeCause::HealthCheck,
        ChangeCause::Refreshed,
        ChangeCause::Admin,
        ChangeCause::Other,
    ];

    /// The snake_case name (the metric label value).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeCause::AuthFailure => "auth_failure",
            ChangeCause::RateLimited => "rate_limited",
            ChangeCause::QuotaExhausted => "quota_exhausted",
            ChangeCause::ConsecutiveFailures => "consecutive_failures",
            ChangeCause::ErrorRate => "error_rate",
            ChangeCause::ProbeFailed => "probe_failed",
            ChangeCause::ProbeSucceeded => "probe_succeeded",
            ChangeCause::CoolingEnded => "cooling_ended",
            ChangeCause::Expired => "expired",
            ChangeCause::HealthCheck => "health_check",
            ChangeCause::Refreshed => "refreshed",
            ChangeCause::Admin => "admin",
            ChangeCause::Other => "other",
        }
    }
}

/// Pool-wide facts a transition may need.
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a> {
    /// The time of the event.
    pub now: Millis,
    /// The pool's policy: thresholds, cooling times.
    pub policy: &'a Policy,
    /// One more token may be cooled for transient errors without passing the rail.
    pub rail_room: bool,
}

impl Health {
    /// A token's health in `state` (with its `reason` and cooling end `until`) as of `now`,
    /// with a clean record: no failures, no streak, an empty error window.
    pub fn new(
        state: TokenState,
        reason: Option<String>,
        until: Option<Millis>,
        now: Millis,
    ) -> Self {
        Health {
            state,
            reason,
            reason_code: None,
            until,
            half_open: false,
            consec_fail: 0,
            streak: 0,
            active_since: now,
            transient_cooling: false,
            errors: Window::default(),
        }
    }

    /// In rotation as far as the state machine is concerned (limits are the pool's business):
    /// active, or half-open (the pool lets one request at a time through).
    pub fn serviceable(&self) -> bool {
        self.state == TokenState::Active || (self.state == TokenState::Cooling && self.half_open)
    }

    /// Moves to `to`, recording the reason; returns the transition.
    fn go(
        &mut self,
        to: TokenState,
        cause: ChangeCause,
        reason: String,
        sample_error: Option<String>,
        now: Millis,
    ) -> Transition {
        self.go_with(to, cause, reason, Params::new(), sample_error, now)
    }

    /// [`Health::go`] with the reason's parameters.
    fn go_with(
        &mut self,
        to: TokenState,
        cause: ChangeCause,
        reason: String,
        params: Params,
        sample_error: Option<String>,
        now: Millis,
    ) -> Transition {
        let from = self.state;
        if to == TokenState::Active {
            if from != TokenState::Active {
                self.active_since = now;
            }
            self.errors.clear();
            self.consec_fail = 0;
            self.until = None;
            self.reason = None;
            self.reason_code = None;
        } else {
            self.reason = Some(reason.clone());
            self.reason_code = Some(Box::new(ReasonCode {
                cause,
                params: params.clone(),
            }));
        }
        if to != TokenState::Cooling {
            self.until = None;
            self.transient_cooling = false;
        }
        self.half_open = false;
        self.state = to;
        Transition {
            from,
            to,
            reason,
            sample_error,
            cooled: false,
            cause,
            params,
        }
    }

    /// Sets the token's reason without a state change (a note such as "kept active").
    pub(crate) fn note(&mut self, cause: ChangeCause, reason: String, params: Params) {
        self.reason = Some(reason);
        self.reason_code = Some(Box::new(ReasonCode { cause, params }));
    }
}

/// Cooling time for the `streak`-th transient cooling in a row: base × streak, capped, then
/// multiplied by (1 + u) with u uniform in ±jitter.
pub fn cooling_ms<R: rand::Rng + ?Sized>(policy: &Policy, streak: u32, rng: &mut R) -> u64 {
    let base = policy.cooling_base_s.max(1).saturating_mul(1000);
    let cap = policy.cooling_cap_s.max(1).saturating_mul(1000);
    let d = base.saturating_mul(u64::from(streak.max(1))).min(cap);
    let j = if policy.cooling_jitter.is_finite() {
        policy.cooling_jitter.clamp(0.0, 0.9)
    } else {
        0.0
    };
    let u: f64 = rng.gen::<f64>() * 2.0 - 1.0;
    ((d as f64) * (1.0 + j * u)).round().max(1.0) as u64
}
