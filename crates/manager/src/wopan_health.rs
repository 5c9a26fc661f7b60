//! Health check kind `wopan`: is this token still accepted by Wopan (联通云盘)?
//!
//! The light check is one `AppQueryUser` call on the api-user channel (what the research
//! notes, §8, name as the health check). With `wopan_deep = true` the probe also lists one
//! entry of the root folder on the wohome channel, which proves the token keys the wohome
//! cipher too; it lists the family space `wopan_family_id` when set, else the personal space.
//!
//! The answer becomes an [`Outcome`] through the Wopan crate's own error table
//! (`WopanError::to_outcome`), so a probe and a reported call classify the same upstream
//! answer the same way:
//! - `9999` / `1001` / `8005`, HTTP 401/403 → `auth`: the core marks the token invalid, with
//!   the upstream's code and description as the event's sample error (and a token that has a
//!   refresh token is then refreshed, see [`crate::refresh`]);
//! - HTTP 429/503 → `rate_limited` with `Retry-After`: cooling;
//! - 5xx, timeouts, connection errors, garbage → `transient`: not the token's fault (at most
//!   cooling after repeated failures, under the pool's `max_cooling_percent` rail);
//! - a wrong family id (`120002`) is `client_error` and changes nothing.

use crate::config::HealthConfig;
use crate::probe::HealthProbe;
use async_trait::async_trait;
use std::time::{Duration, Instant};
use tokenlb_core::{Outcome, Secret};
use tokenlb_wopan::{ClientConfig, Space, WopanClient, WopanError};

/// Longest connect timeout of a probe (the whole call is bounded by `timeout_ms`).
const MAX_CONNECT: Duration = Duration::from_secs(5);

/// Probes a token with `AppQueryUser`, and a root listing when deep.
pub struct WopanProbe {
    client: WopanClient,
    /// `Some(space)` for a deep check: also list the root of that space.
    deep: Option<Space>,
}

impl WopanProbe {
    /// The probe of pool `pool`, from its `[pools.NAME.health]` table.
    pub fn new(pool: &str, h: &HealthConfig) -> Result<Self, String> {
        let client = wopan_client(h).map_err(|e| format!("pool {pool}: health: {e}"))?;
        let deep = h.wopan_deep.then(|| match h.wopan_family_id {
            Some(id) => Space::Family {
                family_id: id.to_string(),
            },
            None => Space::Personal,
        });
        Ok(WopanProbe { client, deep })
    }

    async fn check(&self, secret: &Secret) -> Result<(), WopanError> {
        match &self.deep {
            Some(space) => self.client.check_deep(secret, space).await.map(drop),
            None => self.client.check_light(secret).await.map(drop),
        }
    }
}

/// A Wopan client for a pool: base URL `wopan_base_url`, every call bounded by `timeout_ms`.
/// Shared by the probe and the refresher.
pub fn wopan_client(h: &HealthConfig) -> Result<WopanClient, WopanError> {
    let timeout = Duration::from_millis(h.timeout_ms.max(1));
    WopanClient::new(ClientConfig {
        base_url: h.wopan_base_url.clone(),
        connect_timeout: timeout.min(MAX_CONNECT),
        timeout,
        ..ClientConfig::default()
    })
}

/// The outcome a probe reports for a Wopan answer.
pub fn outcome_of(result: Result<(), WopanError>, latency: Duration) -> Outcome {
    let mut outcome = match result {
        Ok(()) => Outcome::success(),
        Err(e) => e.to_outcome(),
    };
    outcome.latency_ms = Some(latency.as_millis().min(u128::from(u32::MAX)) as u32);
    outcome
}

#[async_trait]
impl HealthProbe for WopanProbe {
    async fn probe(&self, secret: &Secret) -> Outcome {
        let started = Instant::now();
        let result = self.check(secret).await;
        if let Err(e) = &result {
            tracing::debug!(
                class = e.outcome_class().as_str(),
                "wopan health check failed: {e}"
            );
        }
        outcome_of(result, started.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenlb_core::OutcomeClass;

    #[test]
    fn classes_follow_the_wopan_table() {
        let api = |code: &str| WopanError::Api {
            op: "AppQueryUser".into(),
            code: code.into(),
            desc: "系统异常".into(),
        };
        let o = outcome_of(Err(api("9999")), Duration::from_millis(7));
        assert_eq!(o.class, OutcomeClass::Auth);
        assert_eq!(o.latency_ms, Some(7));
        assert!(o.error.as_deref().is_some_and(|m| m.contains("9999")));
        let http = |status| WopanError::Http {
            op: "AppQueryUser".into(),
            status,
            retry_after_s: Some(12),
        };
        let o = outcome_of(Err(http(429)), Duration::ZERO);
        assert_eq!(
            (o.class, o.retry_after_s),
            (OutcomeClass::RateLimited, Some(12))
        );
        assert_eq!(
            outcome_of(Err(http(502)), Duration::ZERO).class,
            OutcomeClass::Transient
        );
        assert_eq!(
            outcome_of(Err(api("120002")), Duration::ZERO).class,
            OutcomeClass::ClientError
        );
        assert_eq!(
            outcome_of(Ok(()), Duration::ZERO).class,
            OutcomeClass::Success
        );
    }

    #[test]
    fn bad_base_url_is_a_clear_error() {
        let h = HealthConfig {
            wopan_base_url: "ftp://x".into(),
            ..HealthConfig::default()
        };
        let e = WopanProbe::new("p", &h).err().unwrap_or_default();
        assert!(e.contains("pool p") && e.contains("base URL"), "{e}");
    }
}
