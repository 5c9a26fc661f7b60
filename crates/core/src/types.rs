//! Identifiers, time, token states and strategy names shared by every crate.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Milliseconds since the Unix epoch. Time is always passed in, never read, inside the core.
pub type Millis = u64;

/// A token's stable, short, public id (e.g. `t_4k9x2m7q`). Never derived from the secret.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenId(pub String);

impl TokenId {
    /// A fresh random id: `t_` and 10 characters of lowercase base32.
    pub fn random(rng: &mut impl rand::Rng) -> Self {
        const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
        let s: String = (0..10)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
            .collect();
        TokenId(format!("t_{s}"))
    }

    /// The id as text, for map keys and messages.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The state of a token (DESIGN §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenState {
    /// In rotation.
    Active,
    /// Out of rotation until a time, automatically; half-open probation follows.
    Cooling,
    /// The upstream said the token is dead; only a passing health check, a refresh or an admin
    /// brings it back.
    Invalid,
    /// Switched off by an admin; never re-enabled automatically.
    Disabled,
    /// `expires_at` has passed.
    Expired,
}

impl TokenState {
    /// Every state, in the order per-state counts are kept ([`crate::PoolStats::by_state`]);
    /// parsing searches this list.
    pub const ALL: [TokenState; 5] = [
        TokenState::Active,
        TokenState::Cooling,
        TokenState::Invalid,
        TokenState::Disabled,
        TokenState::Expired,
    ];

    /// The wire name (`active`, `cooling`, …), the same as the serde form.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Active => "active",
            TokenState::Cooling => "cooling",
            TokenState::Invalid => "invalid",
            TokenState::Disabled => "disabled",
            TokenState::Expired => "expired",
        }
    }
}

impl fmt::Display for TokenState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TokenState {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TokenState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownName {
                kind: "state",
                name: s.to_string(),
            })
    }
}

/// A load-balancing strategy (DESIGN §2, `strategy=` parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Strict rotation: each eligible token once per pass.
    RoundRobin,
    /// Highest smoothed success rate, least recently used first on ties.
    Best,
    /// Rotation in proportion to each token's weight (stride scheduling).
    Weighted,
    /// Uniformly random.
    Random,
    /// Fewest leases out, by power of two choices.
    LeastInFlight,
    /// Lowest peak-EWMA latency × (in flight + 1), by power of two choices.
    Latency,
}

impl Strategy {
    /// Every strategy; parsing searches this list.
    pub const ALL: [Strategy; 6] = [
        Strategy::RoundRobin,
        Strategy::Best,
        Strategy::Weighted,
        Strategy::Random,
        Strategy::LeastInFlight,
        Strategy::Latency,
    ];

    /// The wire name (`round_robin`, `least_in_flight`, …), the same as the serde form and
    /// the `strategy=` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round_robin",
            Strategy::Best => "best",
            Strategy::Weighted => "weighted",
            Strategy::Random => "random",
            Strategy::LeastInFlight => "least_in_flight",
            Strategy::Latency => "latency",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Strategy {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Strategy::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownName {
                kind: "strategy",
                name: s.to_string(),
            })
    }
}

/// A name that is not one of the known values of its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {name:?}")]
pub struct UnknownName {
    /// What was being parsed: `state`, `strategy` or `outcome`.
    pub kind: &'static str,
    /// The text that matched none of them, quoted back to the user.
    pub name: String,
}

/// Per-token limits; `None` means unlimited.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Requests per minute (sliding or fixed one-minute window; see `pool`).
    pub rpm: Option<u32>,
    /// Leases out at once.
    pub max_in_flight: Option<u32>,
}

/// Cumulative per-token counters (what the stats flusher persists).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Outcomes reported as `success`.
    pub success: u64,
    /// Outcomes reported as `auth` (the upstream rejected the token).
    pub auth: u64,
    /// Outcomes reported as `rate_limited`.
    pub rate_limited: u64,
    /// Outcomes reported as `quota_exhausted`.
    pub quota_exhausted: u64,
    /// Outcomes reported as `transient` (5xx, timeouts, connection failures).
    pub transient: u64,
    /// Outcomes reported as `client_error`; kept, but never held against the token.
    pub client_error: u64,
    /// Outcomes reported as `unknown`, including leases closed at their deadline unreported.
    pub unknown: u64,
    /// When the token was last leased; `None` if never.
    pub last_used: Option<Millis>,
    /// The last token failure, `class: error sample` (or the class alone), for the UI.
    pub last_error: Option<String>,
    /// When `last_error` happened.
    pub last_error_at: Option<Millis>,
    /// Plain EWMA of reported latencies (what the stats show; the `latency` strategy uses
    /// its own peak EWMA). `None` before the first sample.
    pub latency_ewma_ms: Option<f64>,
    /// How many times the token started or extended a cooling period.
    pub times_cooled: u32,
}

impl Counters {
    /// The seven per-class counts in `OutcomeClass` order: success, auth, rate_limited,
    /// quota_exhausted, transient, client_error, unknown.
    pub fn by_class(&self) -> [u64; 7] {
        [
            self.success,
            self.auth,
            self.rate_limited,
            self.quota_exhausted,
            self.transient,
            self.client_error,
            self.unknown,
        ]
    }

    /// Failures that count against the token (auth, rate limited, quota, transient).
    pub fn failures(&self) -> u64 {
        self.auth + self.rate_limited + self.quota_exhausted + self.transient
    }

    /// Success rate over successes and token failures; 1.0 with no traffic yet.
    pub fn success_rate(&self) -> f64 {
        let n = self.success + self.failures();
        if n == 0 {
            1.0
        } else {
            self.success as f64 / n as f64
        }
    }
}
