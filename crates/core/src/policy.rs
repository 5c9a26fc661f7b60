//! A pool's policy: default strategy, failure thresholds, cooling times, lease TTL.
//!
//! One plain struct with `serde(default)` so a partial JSON or TOML document (only the fields a
//! user wants to change) deserializes into a complete policy; unknown fields are rejected so a
//! typo is an error rather than a silently ignored setting. [`Policy::validate`] is called once
//! where a policy enters the system (config load, API patch); the pool itself never panics on
//! an odd value either — it clamps where a value would make arithmetic meaningless.

use crate::types::Strategy;
use serde::{Deserialize, Serialize};

/// How a pool picks tokens and treats failures (DESIGN §2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Strategy used when a request names none (default `Strategy::Best`).
    pub strategy: Strategy,
    /// Consecutive token failures after which a transient error cools the token (default 5).
    pub consecutive_failures: u32,
    /// Windowed error rate above which a transient error cools the token (default 0.5).
    pub error_rate_threshold: f64,
    /// The error rate counts only with at least this many requests in the window (default 20).
    pub error_rate_min_requests: u32,
    /// Length of the error-rate window in seconds (default 60).
    pub error_window_s: u64,
    /// Cooling time for transient failures: base × times cooled in a row (default 30 s) …
    pub cooling_base_s: u64,
    /// … capped at this (default 600 s) …
    pub cooling_cap_s: u64,
    /// … then spread by ± this fraction, drawn from the pool's RNG (default 0.1).
    pub cooling_jitter: f64,
    /// Cooling for `rate_limited` / `quota_exhausted` without a retry-after or reset (default 60 s).
    pub rate_limit_default_s: u64,
    /// At most this percentage of the pool's serviceable (active + cooling) tokens may be
    /// cooling for transient errors at once; beyond it a failing token stays active (default 50).
    pub max_cooling_percent: u32,
    /// A lease not reported within this many seconds is closed as `unknown` (default 60).
    pub lease_ttl_s: u64,
    /// Sliding window of `best`'s smoothed success rate, in seconds (default 300).
    pub best_window_s: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            strategy: Strategy::Best,
            consecutive_failures: 5,
            error_rate_threshold: 0.5,
            error_rate_min_requests: 20,
            error_window_s: 60,
            cooling_base_s: 30,
            cooling_cap_s: 600,
            cooling_jitter: 0.1,
            rate_limit_default_s: 60,
            max_cooling_percent: 50,
            lease_ttl_s: 60,
            best_window_s: 300,
        }
    }
}

impl Policy {
    /// Checks every field's range; the message names the field and the allowed range.
    pub fn validate(&self) -> Result<(), String> {
        fn range<T: PartialOrd + std::fmt::Display>(
            name: &str,
            v: T,
            lo: T,
            hi: T,
        ) -> Result<(), String> {
            // Written so that NaN fails too.
            if !(v >= lo && v <= hi) {
                Err(format!("{name} must be between {lo} and {hi}, got {v}"))
            } else {
                Ok(())
            }
        }
        range("consecutive_failures", self.consecutive_failures, 1, 1000)?;
        range("error_rate_threshold", self.error_rate_threshold, 0.0, 1.0)?;
        range(
            "error_rate_min_requests",
            self.error_rate_min_requests,
            1,
            1_000_000,
        )?;
        range("error_window_s", self.error_window_s, 1, 86_400)?;
        range("cooling_base_s", self.cooling_base_s, 1, 86_400)?;
        range("cooling_cap_s", self.cooling_cap_s, 1, 7 * 86_400)?;
        if self.cooling_cap_s < self.cooling_base_s {
            return Err(format!(
                "cooling_cap_s ({}) must be at least cooling_base_s ({})",
                self.cooling_cap_s, self.cooling_base_s
            ));
        }
        range("cooling_jitter", self.cooling_jitter, 0.0, 0.9)?;
        range(
            "rate_limit_default_s",
            self.rate_limit_default_s,
            1,
            7 * 86_400,
        )?;
        range("max_cooling_percent", self.max_cooling_percent, 0, 100)?;
        range("lease_ttl_s", self.lease_ttl_s, 1, 86_400)?;
        range("best_window_s", self.best_window_s, 10, 86_400)?;
        Ok(())
    }

    pub(crate) fn lease_ttl_ms(&self) -> u64 {
        self.lease_ttl_s.clamp(1, 86_400) * 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_partial_json_fills_in() {
        assert_eq!(Policy::default().validate(), Ok(()));
        let p: Policy =
            serde_json::from_str(r#"{"strategy":"round_robin","lease_ttl_s":5}"#).unwrap();
        assert_eq!(p.strategy, Strategy::RoundRobin);
        assert_eq!(p.lease_ttl_s, 5);
        assert_eq!(p.consecutive_failures, 5);
        assert!(serde_json::from_str::<Policy>(r#"{"lease_tll_s":5}"#).is_err());
    }

    #[test]
    fn validate_names_the_bad_field() {
        let p = Policy {
            error_rate_threshold: 1.5,
            ..Policy::default()
        };
        assert!(p.validate().unwrap_err().contains("error_rate_threshold"));
        let p = Policy {
            cooling_jitter: f64::NAN,
            ..Policy::default()
        };
        assert!(p.validate().unwrap_err().contains("cooling_jitter"));
        let p = Policy {
            cooling_cap_s: 10,
            ..Policy::default()
        };
        assert!(p.validate().unwrap_err().contains("cooling_cap_s"));
    }
}
