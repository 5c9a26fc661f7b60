//! The pool's public data types: what goes in (specs, patches), what comes out (leases,
//! views, events) and its errors.

use crate::secret::Secret;
use crate::types::{Counters, Limits, Millis, TokenId, TokenState};
use serde::{Deserialize, Serialize};

/// A token as the store restores it or the API adds it.
#[derive(Clone, Debug)]
pub struct TokenSpec {
    /// The token's public id; unique in the pool (a second insert is `DuplicateId`).
    pub id: TokenId,
    /// A label for people (UI, logs), so nobody has to tell tokens apart by their secret.
    pub name: String,
    /// The value a lease hands out.
    pub secret: Secret,
    /// Share of the picks under `weighted`: 1..=1000 (default 100).
    pub weight: u32,
    /// When the token stops being usable and turns `expired`; `None` for never.
    pub expires_at: Option<Millis>,
    /// Rate and concurrency limits; a token at a limit is out of rotation until it frees up.
    pub limits: Limits,
    /// The state to start in: `active` for a new token, the stored one on restore.
    pub state: TokenState,
    /// Why the token is in `state` (restore); a restored non-active token without one gets
    /// "restored as …".
    pub state_reason: Option<String>,
    /// End of cooling (for a restored cooling token; `None` ends it at the next tick).
    pub state_until: Option<Millis>,
    /// Restored from the store at start.
    pub counters: Counters,
}

impl TokenSpec {
    /// A fresh active token with weight 100, no limits, no expiry, zero counters.
    pub fn new(id: TokenId, name: impl Into<String>, secret: Secret) -> Self {
        TokenSpec {
            id,
            name: name.into(),
            secret,
            weight: 100,
            expires_at: None,
            limits: Limits::default(),
            state: TokenState::Active,
            state_reason: None,
            state_until: None,
            counters: Counters::default(),
        }
    }
}

/// An admin change; `None` leaves a field unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenPatch {
    /// A new label.
    pub name: Option<String>,
    /// A new weight (1..=1000).
    pub weight: Option<u32>,
    /// `Some(None)` removes the expiry. A future expiry brings an expired token back.
    pub expires_at: Option<Option<Millis>>,
    /// New limits, replacing both fields; a lowered rpm already used up this minute takes
    /// the token out until the minute rolls.
    pub limits: Option<Limits>,
    /// `false` → disabled (admin); `true` → active from disabled / invalid / expired / cooling
    /// (an expired token needs an `expires_at` in the future too).
    pub enabled: Option<bool>,
    /// Who changes `enabled`, when not the admin ("the launcher"): the event's reason says so.
    pub by: Option<String>,
}

/// Identifies a lease; sequential per pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LeaseId(pub u64);

/// What `pick` hands out.
#[derive(Clone, Debug)]
pub struct Lease {
    /// What the caller names when it reports the outcome ([`Pool::report`](super::Pool::report)).
    pub id: LeaseId,
    /// The leased token, so the caller can log it without the secret.
    pub token_id: TokenId,
    /// The token's label at the time of the pick.
    pub name: String,
    /// The value to use upstream.
    pub secret: Secret,
    /// Report by then or the lease is closed as `unknown`.
    pub deadline: Millis,
}

/// No token is eligible now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unavailable {
    /// Earliest time a token may be eligible again (cooling end, rpm window roll, a lease
    /// deadline freeing a slot), if any is known; `None` when only an admin, a health check or a
    /// refresh can help.
    pub retry_at: Option<Millis>,
    /// Human-readable: how many tokens are in which state.
    pub reason: String,
}

/// One state change (an event for the store, the UI and the logs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateChange {
    /// When it happened (the `now` of the call that found it).
    pub at: Millis,
    /// The token that changed; a returned list may hold changes of several tokens.
    pub token_id: TokenId,
    /// The state before.
    pub from: TokenState,
    /// The state after; may equal `from` (a cooling extended, or turned half-open).
    pub to: TokenState,
    /// Why, in words (e.g. "5 consecutive failures (transient): cooling 28.7 s (#1 in a
    /// row)"), for the event log and the UI.
    pub reason: String,
    /// Why, as one of a fixed set (for metric labels and notification filters); with
    /// `params`, the reason's code for translation.
    #[serde(default)]
    pub cause: crate::state::ChangeCause,
    /// The parameters of `reason` (`seconds`, `count`, `by`, …).
    #[serde(default)]
    pub params: crate::state::Params,
    /// The error sample of the outcome that caused it, if one did and carried one.
    pub sample_error: Option<String>,
}

/// A read-only copy of a token for APIs and the UI (secret masked).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenView {
    /// The token's public id.
    pub id: TokenId,
    /// Its label.
    pub name: String,
    /// The secret's masked form ([`Secret::masked`]); a view never carries the value.
    pub masked: String,
    /// Its state now.
    pub state: TokenState,
    /// Why it is in that state: always set when out of rotation; on an active token, a note
    /// such as "kept active" by the `max_cooling_percent` rail.
    pub state_reason: Option<String>,
    /// `state_reason` as a code and parameters (`None` for a reason restored from the
    /// store, which keeps only the words).
    pub state_reason_code: Option<crate::state::ReasonCode>,
    /// End of cooling (cooling only).
    pub state_until: Option<Millis>,
    /// Cooling has ended; one probe request at a time is let through.
    pub half_open: bool,
    /// Its weight under `weighted`.
    pub weight: u32,
    /// When it expires, if ever.
    pub expires_at: Option<Millis>,
    /// Its rate and concurrency limits.
    pub limits: Limits,
    /// Leases out now.
    pub in_flight: u32,
    /// Cumulative counters, restored ones included.
    pub counters: Counters,
    /// [`Counters::success_rate`] over all its history (`score` is the windowed one).
    pub success_rate: f64,
    /// `best`'s score as of the token's last touch.
    pub score: f64,
}

/// Errors of pool operations (all caused by the caller's input).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// An insert with an id the pool already holds.
    #[error("token {0} already exists")]
    DuplicateId(TokenId),
    /// No token with this id in the pool.
    #[error("unknown token {0}")]
    UnknownToken(TokenId),
    /// A report for a lease that is not open: already reported, closed at its deadline, or
    /// its token was removed.
    #[error("unknown or expired lease")]
    UnknownLease,
    /// A value out of range (weight, limits) or a change that cannot apply (enabling a token
    /// whose `expires_at` has passed); the message says which.
    #[error("invalid: {0}")]
    Invalid(String),
}
