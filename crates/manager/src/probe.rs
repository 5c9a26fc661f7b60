//! Health probes: how one token is checked against its upstream.
//!
//! A probe is anything implementing [`HealthProbe`]: given a token's secret it returns an
//! [`Outcome`]. [`probe_for`] builds the probe of a pool from its `[pools.NAME.health]`
//! table — `none` (no probe), `http` ([`HttpProbe`]), `wopan`
//! ([`crate::wopan_health::WopanProbe`]). When and how often tokens are probed is
//! [`crate::health`]'s business; what a result means for a token is the core's.

use crate::config::{HealthConfig, HealthKind};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokenlb_core::{Outcome, OutcomeClass, Secret};

/// Checks one token against its upstream.
#[async_trait]
pub trait HealthProbe: Send + Sync + 'static {
    async fn probe(&self, secret: &Secret) -> Outcome;
}

/// Builds a pool's probe from its health settings; `Ok(None)` for kind `none`.
pub fn probe_for(
    pool: &str,
    health: &HealthConfig,
) -> Result<Option<Arc<dyn HealthProbe>>, String> {
    match health.kind {
        HealthKind::None => Ok(None),
        HealthKind::Http => Ok(Some(Arc::new(HttpProbe::new(pool, health)?))),
        HealthKind::Wopan => Ok(Some(Arc::new(crate::wopan_health::WopanProbe::new(
            pool, health,
        )?))),
    }
}

/// An HTTP request carrying the token in a header; the expected status means healthy.
pub struct HttpProbe {
    client: reqwest::Client,
    method: reqwest::Method,
    url: reqwest::Url,
    header: reqwest::header::HeaderName,
    header_format: String,
    expect_status: u16,
}

impl HttpProbe {
    pub fn new(pool: &str, h: &HealthConfig) -> Result<Self, String> {
        let url = h
            .url
            .as_deref()
            .ok_or_else(|| format!("pool {pool}: health kind \"http\" needs health.url"))?;
        let url = reqwest::Url::parse(url).map_err(|e| format!("pool {pool}: health.url: {e}"))?;
        let method = reqwest::Method::from_bytes(h.method.as_bytes()).map_err(|_| {
            format!(
                "pool {pool}: health.method {:?} is not an HTTP method",
                h.method
            )
        })?;
        let header =
            reqwest::header::HeaderName::from_bytes(h.header.as_bytes()).map_err(|_| {
                format!(
                    "pool {pool}: health.header {:?} is not a header name",
                    h.header
                )
            })?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(h.timeout_ms.max(1)))
            .build()
            .map_err(|e| format!("pool {pool}: cannot build the HTTP client: {e}"))?;
        Ok(HttpProbe {
            client,
            method,
            url,
            header,
            header_format: h.header_format.clone(),
            expect_status: h.expect_status,
        })
    }
}

#[async_trait]
impl HealthProbe for HttpProbe {
    async fn probe(&self, secret: &Secret) -> Outcome {
        let value = self.header_format.replace("{token}", secret.expose());
        let Ok(value) = reqwest::header::HeaderValue::from_str(&value) else {
            let mut o = Outcome::new(OutcomeClass::Auth);
            o.error = Some("the token cannot be sent in an HTTP header".to_string());
            return o;
        };
        let started = Instant::now();
        let sent = self
            .client
            .request(self.method.clone(), self.url.clone())
            .header(self.header.clone(), value)
            .send()
            .await;
        let latency = started.elapsed().as_millis().min(u128::from(u32::MAX)) as u32;
        let mut outcome = match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let class = if status == self.expect_status {
                    OutcomeClass::Success
                } else {
                    match OutcomeClass::from_http_status(status, retry_after.is_some()) {
                        OutcomeClass::Success | OutcomeClass::ClientError => {
                            OutcomeClass::Transient
                        }
                        c => c,
                    }
                };
                let mut o = Outcome::new(class);
                o.status = Some(status);
                o.retry_after_s = retry_after;
                if class != OutcomeClass::Success {
                    o.error = Some(format!(
                        "health check got HTTP {status}, expected {}",
                        self.expect_status
                    ));
                }
                o
            }
            Err(e) => {
                let mut o = Outcome::new(OutcomeClass::Transient);
                let what = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "could not connect"
                } else {
                    "failed"
                };
                o.error = Some(format!("health check {what}"));
                o
            }
        };
        outcome.latency_ms = Some(latency);
        outcome
    }
}
