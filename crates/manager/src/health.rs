//! Health checks: probing tokens against the upstream to bring them back (or catch them).
//!
//! The [`prober`] task runs once a second: it probes cooling and invalid tokens at most once
//! per `probe_interval_s`, and every token once per `sweep_interval_s` when that is set.
//! A token is probed by one probe at a time (the [`Probes`] memory), and at most
//! [`MAX_CONCURRENT`] probes run at once. `POST /api/tokens/{id}/check` runs [`run_check`]
//! directly. Results go through the service's `apply_health`, so the core decides what a
//! result means for the token's state. The probes themselves are [`crate::probe`]'s.

use crate::service::{now_ms, ServiceError, ServiceResult, TokenService};
use crate::shutdown::stopped;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokenlb_core::{Millis, OutcomeClass, TokenId, TokenState};
use tokio::sync::{watch, Semaphore};

/// Probes running at once, over all pools.
pub const MAX_CONCURRENT: usize = 16;

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

/// Which tokens are being probed and when each was last probed: the prober's memory, shared
/// with `POST /api/tokens/{id}/check` so both respect one probe at a time per token.
#[derive(Default)]
pub struct Probes {
    /// Tokens with a probe running now (one probe at a time per token).
    probing: Mutex<HashSet<TokenId>>,
    /// Last probe time per token, to respect `probe_interval_s`.
    last_probe: Mutex<HashMap<TokenId, Millis>>,
}

/// Removes a token from the in-progress set when its probe ends, however it ends.
struct ProbingGuard<'a>(&'a Probes, TokenId);

impl Drop for ProbingGuard<'_> {
    fn drop(&mut self) {
        self.0.probing.lock().remove(&self.1);
    }
}

/// Probes one token now and applies the result.
pub async fn run_check(
    probes: &Probes,
    svc: &TokenService,
    id: &TokenId,
) -> ServiceResult<CheckResult> {
    let unknown = || ServiceError::UnknownToken(Some(id.clone()));
    let handle = svc.token_pool(id).ok_or_else(unknown)?;
    let probe = handle
        .probe
        .clone()
        .ok_or_else(|| ServiceError::NoHealthCheck(handle.name.clone()))?;
    let secret = handle.secret(id).ok_or_else(unknown)?;
    if !probes.probing.lock().insert(id.clone()) {
        return Err(ServiceError::CheckInProgress);
    }
    let _guard = ProbingGuard(probes, id.clone());
    probes.last_probe.lock().insert(id.clone(), now_ms());
    let outcome = probe.probe(&secret).await;
    let view = svc.apply_health(&handle, id, &outcome)?;
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

/// The background prober: owns only the probes' memory and the service.
pub async fn prober(probes: Arc<Probes>, svc: TokenService, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT));
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut passes = 0u64;
    loop {
        tokio::select! {
            _ = every.tick() => probe_pass(&probes, &svc, &permits),
            _ = stopped(&mut stop) => return,
        }
        passes += 1;
        if passes.is_multiple_of(60) {
            // Removed tokens leave their last probe time behind.
            probes
                .last_probe
                .lock()
                .retain(|id, _| svc.token_meta(id).is_some());
        }
    }
}

fn probe_pass(probes: &Arc<Probes>, svc: &TokenService, permits: &Arc<Semaphore>) {
    let now = now_ms();
    for handle in svc.pools() {
        if handle.probe.is_none() {
            continue;
        }
        let probe_every = handle.health.probe_interval_s.saturating_mul(1000);
        let sweep_every = handle.health.sweep_interval_s.saturating_mul(1000);
        for view in handle.views() {
            let last = probes.last_probe.lock().get(&view.id).copied();
            let since = last.map_or(u64::MAX, |t| now.saturating_sub(t));
            let troubled = matches!(view.state, TokenState::Cooling | TokenState::Invalid);
            let due = (troubled && since >= probe_every)
                || (sweep_every > 0 && view.state != TokenState::Disabled && since >= sweep_every);
            if !due || probes.probing.lock().contains(&view.id) {
                continue;
            }
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                return;
            };
            let (probes, svc, id) = (probes.clone(), svc.clone(), view.id);
            tokio::spawn(async move {
                if let Err(e) = run_check(&probes, &svc, &id).await {
                    tracing::debug!(token = %id, error = %e, "health check skipped");
                }
                drop(permit);
            });
        }
    }
}
