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
    pub const ALL: [TokenState; 5] = [
        TokenState::Active,
        TokenState::Cooling,
        TokenState::Invalid,
        TokenState::Disabled,
        TokenState::Expired,
    ];

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
    RoundRobin,
    Best,
    Weighted,
    Random,
    LeastInFlight,
    Latency,
}

impl Strategy {
    pub const ALL: [Strategy; 6] = [
        Strategy::RoundRobin,
        Strategy::Best,
        Strategy::Weighted,
        Strategy::Random,
        Strategy::LeastInFlight,
        Strategy::Latency,
    ];

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
    pub kind: &'static str,
    pub name: String,
}

/// Per-token limits; `None` means unlimited.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Requests per minute (sliding or fixed one-minute window; see `pool`).
    pub rpm: Option<u32>,
    /// Leases out at once.
    pub max_in_flight: Option<u32>,
}

/// Cumulative per-token counters (what the stats flusher persists).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub success: u64,
    pub auth: u64,
    pub rate_limited: u64,
    pub quota_exhausted: u64,
    pub transient: u64,
    pub client_error: u64,
    pub unknown: u64,
    pub last_used: Option<Millis>,
    pub last_error: Option<String>,
    pub last_error_at: Option<Millis>,
    pub latency_ewma_ms: Option<f64>,
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
