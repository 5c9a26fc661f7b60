//! Outcome classes: what a service reports after using a token (DESIGN §2).
//!
//! Shared by the manager (to decide a token's fate), the client library and the web API (to
//! classify what the upstream said). `client_error` is the request's fault and never counts
//! against the token.

use crate::types::{Millis, UnknownName};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How one use of a token went, as far as the token is concerned: the caller's verdict that
/// drives counters, `best`'s score and the state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeClass {
    /// The upstream accepted the request.
    Success,
    /// Token rejected or expired upstream → `invalid`.
    Auth,
    /// Upstream rate limit → `cooling` until retry-after.
    RateLimited,
    /// Quota used up → `cooling` until reset.
    QuotaExhausted,
    /// 5xx, timeout, connection failure → counted; cools after repeated failures.
    Transient,
    /// The request's own fault; never counted against the token.
    ClientError,
    /// No report (lease expired) or unclassifiable.
    Unknown,
}

impl OutcomeClass {
    /// Every class, in the order of [`Counters::by_class`](crate::Counters::by_class); parsing
    /// searches this list.
    pub const ALL: [OutcomeClass; 7] = [
        OutcomeClass::Success,
        OutcomeClass::Auth,
        OutcomeClass::RateLimited,
        OutcomeClass::QuotaExhausted,
        OutcomeClass::Transient,
        OutcomeClass::ClientError,
        OutcomeClass::Unknown,
    ];

    /// The wire name (`rate_limited`, …), the same as the serde form.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeClass::Success => "success",
            OutcomeClass::Auth => "auth",
            OutcomeClass::RateLimited => "rate_limited",
            OutcomeClass::QuotaExhausted => "quota_exhausted",
            OutcomeClass::Transient => "transient",
            OutcomeClass::ClientError => "client_error",
            OutcomeClass::Unknown => "unknown",
        }
    }

    /// Does this outcome count as a failure of the token in its stats?
    pub fn is_token_failure(self) -> bool {
        matches!(
            self,
            OutcomeClass::Auth
                | OutcomeClass::RateLimited
                | OutcomeClass::QuotaExhausted
                | OutcomeClass::Transient
        )
    }

    /// Classifies an HTTP status from an upstream the way DESIGN §2 describes:
    /// 2xx/3xx success, 401/403 auth, 429 rate limited, 402 quota, other 4xx the client's
    /// fault, 5xx transient (503 counts as rate limited only when it carries Retry-After, which
    /// the caller passes as `has_retry_after`).
    pub fn from_http_status(status: u16, has_retry_after: bool) -> OutcomeClass {
        match status {
            200..=399 => OutcomeClass::Success,
            401 | 403 => OutcomeClass::Auth,
            402 => OutcomeClass::QuotaExhausted,
            429 => OutcomeClass::RateLimited,
            503 if has_retry_after => OutcomeClass::RateLimited,
            400..=499 => OutcomeClass::ClientError,
            500..=599 => OutcomeClass::Transient,
            _ => OutcomeClass::Unknown,
        }
    }
}

impl fmt::Display for OutcomeClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OutcomeClass {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OutcomeClass::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownName {
                kind: "outcome",
                name: s.to_string(),
            })
    }
}

/// One reported outcome with its details.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// What happened; the other fields are details the caller may not have.
    pub class: OutcomeClass,
    /// How long the upstream call took, if the caller measured it.
    pub latency_ms: Option<u32>,
    /// The upstream's HTTP status, if any.
    pub status: Option<u16>,
    /// Upstream's Retry-After (rate limited) or time until quota reset, in seconds.
    pub retry_after_s: Option<u64>,
    /// A short sample of the error, for the event log and `last_error`. The manager scrubs
    /// it before it gets here; the pool cuts out the token's own secret and keeps at most
    /// [`MAX_ERROR_CHARS`] characters.
    pub error: Option<String>,
}

/// The longest error sample a pool keeps (characters).
pub const MAX_ERROR_CHARS: usize = 300;

impl Outcome {
    /// An outcome of `class` with no details.
    pub fn new(class: OutcomeClass) -> Self {
        Outcome {
            class,
            latency_ms: None,
            status: None,
            retry_after_s: None,
            error: None,
        }
    }

    /// A plain success.
    pub fn success() -> Self {
        Outcome::new(OutcomeClass::Success)
    }

    /// The time until which a rate limit or quota holds, from `now`.
    pub fn retry_at(&self, now: Millis) -> Option<Millis> {
        self.retry_after_s
            .map(|s| now.saturating_add(s.saturating_mul(1000)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in OutcomeClass::ALL {
            assert_eq!(c.as_str().parse::<OutcomeClass>().unwrap(), c);
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
        }
        assert!("bogus".parse::<OutcomeClass>().is_err());
    }

    #[test]
    fn http_status_classes() {
        assert_eq!(
            OutcomeClass::from_http_status(200, false),
            OutcomeClass::Success
        );
        assert_eq!(
            OutcomeClass::from_http_status(401, false),
            OutcomeClass::Auth
        );
        assert_eq!(
            OutcomeClass::from_http_status(429, false),
            OutcomeClass::RateLimited
        );
        assert_eq!(
            OutcomeClass::from_http_status(503, true),
            OutcomeClass::RateLimited
        );
        assert_eq!(
            OutcomeClass::from_http_status(503, false),
            OutcomeClass::Transient
        );
        assert_eq!(
            OutcomeClass::from_http_status(404, false),
            OutcomeClass::ClientError
        );
    }
}
