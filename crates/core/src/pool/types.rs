//! The pool's public data types: what goes in (specs, patches), what comes out (leases,
//! views, events) and its errors.

use crate::secret::Secret;
use crate::types::{Counters, Limits, Millis, TokenId, TokenState};
use serde::{Deserialize, Serialize};

/// A token as the store restores it or the API adds it.
#[derive(Clone, Debug)]
pub struct TokenSpec {
    pub id: TokenId,
    pub name: String,
    pub secret: Secret,
    /// 1..=1000 (default 100).
    pub weight: u32,
    pub expires_at: Option<Millis>,
    pub limits: Limits,
    pub state: TokenState,
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
    pub name: Option<String>,
    pub weight: Option<u32>,
    /// `Some(None)` removes the expiry. A future expiry brings an expired token back.
    pub expires_at: Option<Option<Millis>>,
    pub limits: Option<Limits>,
    /// `false` → disabled (admin); `true` → active from disabled / invalid / expired / cooling
    /// (an expired token needs an `expires_at` in the future too).
    pub enabled: Option<bool>,
}

/// Identifies a lease; sequential per pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LeaseId(pub u64);

/// What `pick` hands out.
#[derive(Clone, Debug)]
pub struct Lease {
    pub id: LeaseId,
    pub token_id: TokenId,
    pub name: String,
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
    pub at: Millis,
    pub token_id: TokenId,
    pub from: TokenState,
    pub to: TokenState,
    pub reason: String,
    pub sample_error: Option<String>,
}

/// A read-only copy of a token for APIs and the UI (secret masked).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenView {
    pub id: TokenId,
    pub name: String,
    pub masked: String,
    pub state: TokenState,
    pub state_reason: Option<String>,
    pub state_until: Option<Millis>,
    /// Cooling has ended; one probe request at a time is let through.
    pub half_open: bool,
    pub weight: u32,
    pub expires_at: Option<Millis>,
    pub limits: Limits,
    pub in_flight: u32,
    pub counters: Counters,
    pub success_rate: f64,
    /// `best`'s score as of the token's last touch.
    pub score: f64,
}

/// Errors of pool operations (all caused by the caller's input).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("token {0} already exists")]
    DuplicateId(TokenId),
    #[error("unknown token {0}")]
    UnknownToken(TokenId),
    #[error("unknown or expired lease")]
    UnknownLease,
    #[error("invalid: {0}")]
    Invalid(String),
}
