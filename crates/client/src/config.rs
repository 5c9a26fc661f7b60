//! Client configuration: where the manager is, how to authenticate, and the bounds on waiting,
//! retrying and working without the manager.
//!
//! One plain struct with safe defaults ([`ClientConfig::new`]) that callers adjust field by
//! field; [`ClientConfig::validate`] checks it once when the [`crate::Client`] is built, so a
//! bad value is a clear error at start-up, never a surprise at the first request.

use crate::error::ClientError;
use std::time::Duration;
use tokenlb_core::{Secret, Strategy};

/// Everything a [`crate::Client`] needs. Build it with [`ClientConfig::new`] and change fields.
///
/// ```
/// use std::time::Duration;
/// use tokenlb_client::ClientConfig;
/// use tokenlb_core::{Secret, Strategy};
///
/// let mut config = ClientConfig::new("http://127.0.0.1:8000");
/// config.client_key = Some(Secret::new("my-client-key"));
/// config.pool = "wopan".into();
/// config.strategy = Some(Strategy::RoundRobin);
/// config.max_attempts = 3;
/// config.grace_period = Duration::from_secs(300);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Base URL of the manager, e.g. `http://127.0.0.1:8000` (no trailing path needed).
    pub manager_url: String,
    /// Sent as `Authorization: Bearer …` on get and report when set; required when the manager
    /// has client keys configured.
    pub client_key: Option<Secret>,
    /// Pool to lease from (`default` unless told otherwise).
    pub pool: String,
    /// Strategy to ask for; `None` lets the manager use the pool's default.
    pub strategy: Option<Strategy>,
    /// How long the manager may wait for an eligible token before answering 503 (`wait_ms`).
    pub wait_ms: Option<u64>,
    /// Timeout of one HTTP request to the manager (a `get` with `wait_ms` gets that on top).
    pub timeout: Duration,
    /// Timeout of one attempt of the caller's operation inside [`crate::Client::call`]; an
    /// attempt that runs out counts as `transient`.
    pub attempt_timeout: Duration,
    /// Attempts of the caller's operation per [`crate::Client::call`], the first included.
    pub max_attempts: u32,
    /// Total time a [`crate::Client::call`] may spend over all its attempts.
    pub retry_budget: Duration,
    /// How long to keep working with cached tokens after the manager became unreachable.
    /// Zero turns the fallback off.
    pub grace_period: Duration,
    /// While the manager is unreachable, how often a lease tries it again before using the
    /// cache (the rest of the time the cache answers at once).
    pub probe_interval: Duration,
    /// How many recently leased tokens are remembered for the grace period.
    pub max_cached_tokens: usize,
    /// How many reports wait for the manager to come back; the oldest are dropped beyond this.
    pub max_queued_reports: usize,
    /// How long a cached token that failed is skipped during the grace period when the
    /// failure gave no retry-after (an auth failure drops it for good).
    pub failed_token_cooldown: Duration,
    /// Whether [`crate::Client::call`] hands the report of a success to the background
    /// reporter and returns at once (the default), instead of waiting for the manager's
    /// answer. Failures are always reported before the next attempt. Call
    /// [`crate::Client::flush`] before shutting down.
    pub background_reports: bool,
}

impl ClientConfig {
    /// Defaults: pool `default`, the pool's own strategy, 5 s request timeout, 30 s per
    /// attempt, 3 attempts within 60 s, a 5-minute grace period probed every 2 s, 32 cached
    /// tokens, 1000 queued reports, 30 s skip for failed cached tokens, success reports of
    /// `call` sent in the background.
    pub fn new(manager_url: impl Into<String>) -> Self {
        ClientConfig {
            manager_url: manager_url.into(),
            client_key: None,
            pool: "default".to_string(),
            strategy: None,
            wait_ms: None,
            timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(30),
            max_attempts: 3,
            retry_budget: Duration::from_secs(60),
            grace_period: Duration::from_secs(300),
            probe_interval: Duration::from_secs(2),
            max_cached_tokens: 32,
            max_queued_reports: 1000,
            failed_token_cooldown: Duration::from_secs(30),
            background_reports: true,
        }
    }

    /// Checks the values once; [`crate::Client::new`] calls it.
    pub fn validate(&self) -> Result<(), ClientError> {
        let bad = |m: &str| Err(ClientError::Config(m.to_string()));
        let url = self.manager_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return bad("manager_url must start with http:// or https://");
        }
        if self.pool.trim().is_empty() || self.pool.len() > 128 {
            return bad("pool must be a non-empty name of at most 128 bytes");
        }
        if self.max_attempts == 0 || self.max_attempts > 100 {
            return bad("max_attempts must be between 1 and 100");
        }
        if self.timeout.is_zero() || self.attempt_timeout.is_zero() || self.retry_budget.is_zero() {
            return bad("timeout, attempt_timeout and retry_budget must be more than zero");
        }
        if self.client_key.as_ref().is_some_and(|k| k.is_empty()) {
            return bad("client_key must not be empty when set");
        }
        if self.max_cached_tokens == 0 || self.max_queued_reports == 0 {
            return bad("max_cached_tokens and max_queued_reports must be at least 1");
        }
        Ok(())
    }

    /// The manager URL without a trailing slash, for joining paths.
    pub(crate) fn base(&self) -> &str {
        self.manager_url.trim().trim_end_matches('/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert!(ClientConfig::new("http://127.0.0.1:8000/")
            .validate()
            .is_ok());
        assert_eq!(ClientConfig::new("http://h:1/").base(), "http://h:1");
        let err = ClientConfig::new("ftp://x").validate().unwrap_err();
        assert!(err.to_string().contains("manager_url"));
        let mut c = ClientConfig::new("http://x");
        c.max_attempts = 0;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_attempts"));
        let mut c = ClientConfig::new("http://x");
        c.client_key = Some(Secret::new(""));
        assert!(c.validate().is_err());
    }
}
