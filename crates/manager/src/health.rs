//! Health checks: probing tokens against the upstream to bring them back (or catch them).
//!
//! A probe is anything implementing [`HealthProbe`]: given a token's secret it returns an
//! [`Outcome`]. [`probe_for`] builds the probe of a pool from its `[pools.NAME.health]`
//! table — `none` (no probe), `http` ([`HttpProbe`]), `wopan`
//! ([`crate::wopan_health::WopanProbe`]).
//!
//! The [`prober`] task runs once a second: it probes cooling and invalid tokens at most once
//! per `probe_interval_s`, and every token once per `sweep_interval_s` when that is set.
//! A token is probed by one probe at a time (the `probing` set), and at most
//! [`MAX_CONCURRENT`] probes run at once. `POST /api/tokens/{id}/check` runs [`run_check`]
//! directly. Results go through `Pool::health_result`, so the core decides what a result
//! means for the token's state.

use crate::config::{HealthConfig, HealthKind};
use crate::error::ApiError;
use crate::state::{now_ms, AppState, PoolHandle};
use crate::tasks::{change_events, stopped};
use async_trait::async_trait;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokenlb_core::{Outcome, OutcomeClass, Secret, TokenId, TokenState};
use tokio::sync::{watch, Semaphore};

/// Probes running at once, over all pools.
pub const MAX_CONCURRENT: usize = 16;

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

/// What a check found, as `POST /api/tokens/{id}/check` answers it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub id: TokenId,
    pub ok: bool,
    pub outcome: OutcomeClass,
    pub status: Option<u16>,
    pub latency_ms: Option<u32>,
    pub message: Option<String>,
    pub state: TokenState,
    pub state_reason: Option<String>,
}

/// Removes a token from the in-progress set when its probe ends, however it ends.
struct ProbingGuard<'a>(&'a AppState, TokenId);

impl Drop for ProbingGuard<'_> {
    fn drop(&mut self) {
        self.0.probing.lock().remove(&self.1);
    }
}

/// Probes one token now and applies the result.
pub async fn run_check(
    state: &AppState,
    handle: &PoolHandle,
    id: &TokenId,
) -> Result<CheckResult, ApiError> {
    let probe = handle.probe.clone().ok_or_else(|| {
        ApiError::conflict(
            "no_health_check",
            format!(
                "pool {} has no health check configured (health.kind = \"none\")",
                handle.name
            ),
        )
    })?;
    let secret = handle
        .pool
        .lock()
        .secret(id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no token with id {id}")))?;
    if !state.probing.lock().insert(id.clone()) {
        return Err(ApiError::conflict(
            "check_in_progress",
            "a check of this token is already running",
        ));
    }
    let _guard = ProbingGuard(state, id.clone());
    state.last_probe.lock().insert(id.clone(), now_ms());
    let outcome = probe.probe(&secret).await;
    let (events, view) = {
        let mut pool = handle.pool.lock();
        let changes = pool
            .health_result(id, &outcome, now_ms(), &mut rand::thread_rng())
            .map_err(|_| ApiError::not_found(format!("token {id} was removed during the check")))?;
        (change_events(&pool, &handle.name, &changes), pool.get(id))
    };
    state.record_changes(handle, events);
    let view = view.ok_or_else(|| ApiError::not_found(format!("no token with id {id}")))?;
    Ok(CheckResult {
        id: id.clone(),
        ok: outcome.class == OutcomeClass::Success,
        outcome: outcome.class,
        status: outcome.status,
        latency_ms: outcome.latency_ms,
        message: outcome.error,
        state: view.state,
        state_reason: view.state_reason,
    })
}

/// The background prober.
pub async fn prober(state: AppState, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT));
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => probe_pass(&state, &permits),
            _ = stopped(&mut stop) => return,
        }
    }
}

fn probe_pass(state: &AppState, permits: &Arc<Semaphore>) {
    let now = now_ms();
    for handle in state.pools() {
        if handle.probe.is_none() {
            continue;
        }
        let probe_every = handle.health.probe_interval_s.saturating_mul(1000);
        let sweep_every = handle.health.sweep_interval_s.saturating_mul(1000);
        let views = handle.pool.lock().views();
        for view in views {
            let last = state.last_probe.lock().get(&view.id).copied();
            let since = last.map_or(u64::MAX, |t| now.saturating_sub(t));
            let troubled = matches!(view.state, TokenState::Cooling | TokenState::Invalid);
            let due = (troubled && since >= probe_every)
                || (sweep_every > 0 && view.state != TokenState::Disabled && since >= sweep_every);
            if !due || state.probing.lock().contains(&view.id) {
                continue;
            }
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                return;
            };
            let (state, handle, id) = (state.clone(), handle.clone(), view.id);
            tokio::spawn(async move {
                if let Err(e) = run_check(&state, &handle, &id).await {
                    tracing::debug!(token = %id, error = %e.message, "health check skipped");
                }
                drop(permit);
            });
        }
    }
}
