//! When tokens are refreshed: the hook on state changes (rejected or expired → at once), the
//! list of tokens due (expiring within `refresh_before_s`, or rejected and past their retry
//! time), and the background task that refreshes them every [`TICK`].

use super::refresh_now;
use crate::config::HealthKind;
use crate::state::{now_ms, AppState, PoolHandle};
use crate::tasks::stopped;
use futures::StreamExt;
use std::time::Duration;
use tokenlb_core::{Millis, TokenId, TokenState};
use tokenlb_store::EventRecord;
use tokio::sync::watch;

/// How often the refresher looks for tokens due for a refresh.
pub const TICK: Duration = Duration::from_secs(5);
/// Refreshes running at once from one pass of the refresher.
pub const MAX_CONCURRENT: usize = 8;
/// Why a refresh was started (shown in its event).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// `expires_at` is within `refresh_before_s`.
    Expiring,
    /// The token is invalid or expired (the upstream rejected it).
    Rejected,
    /// Asked for directly.
    Manual,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Expiring => "expires soon",
            Trigger::Rejected => "rejected by the upstream",
            Trigger::Manual => "requested",
        }
    }
}

/// Called for every state-change event: a token of a `wopan` pool that has a refresh token
/// and just became invalid or expired is refreshed at once (in the background).
pub fn after_change(state: &AppState, handle: &PoolHandle, event: &EventRecord) {
    if handle.health.kind != HealthKind::Wopan
        || !matches!(event.to, Some(TokenState::Invalid | TokenState::Expired))
        || !state
            .token_meta(&event.token_id)
            .is_some_and(|m| m.has_refresh)
        || !state.refresh.may_start(&event.token_id, now_ms())
    {
        return;
    }
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let (state, id) = (state.clone(), event.token_id.clone());
    rt.spawn(async move {
        if let Err(e) = refresh_now(&state, &id, Trigger::Rejected).await {
            tracing::debug!(token = %id, "refresh after rejection: {e}");
        }
    });
}

/// Tokens due for a refresh now: in `wopan` pools, with a refresh token, not disabled, not
/// running or waiting for a retry, and expiring within `refresh_before_s` or rejected.
pub fn due(state: &AppState, now: Millis) -> Vec<(TokenId, Trigger)> {
    let mut out = Vec::new();
    for handle in state.pools() {
        if handle.health.kind != HealthKind::Wopan {
            continue;
        }
        let before = handle.health.refresh_before_s.saturating_mul(1000);
        let views = handle.pool.lock().views();
        for v in views {
            let trigger = match v.state {
                TokenState::Disabled => continue,
                TokenState::Invalid | TokenState::Expired => Trigger::Rejected,
                _ if before > 0
                    && v.expires_at
                        .is_some_and(|e| e <= now.saturating_add(before)) =>
                {
                    Trigger::Expiring
                }
                _ => continue,
            };
            let has_refresh = state.token_meta(&v.id).is_some_and(|m| m.has_refresh);
            if has_refresh && state.refresh.may_start(&v.id, now) {
                out.push((v.id, trigger));
            }
        }
    }
    out
}

/// One pass: refreshes every due token (at most [`MAX_CONCURRENT`] at once) and waits for
/// them. Returns how many were refreshed. The background task runs it every [`TICK`].
pub async fn refresh_due(state: &AppState) -> usize {
    let due = due(state, now_ms());
    futures::stream::iter(due)
        .map(|(id, trigger)| async move { refresh_now(state, &id, trigger).await.is_ok() })
        .buffer_unordered(MAX_CONCURRENT)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await
}

/// The background refresher. A pass that has started runs to its end (a refresh is never
/// cut between the upstream's answer and the store write); then it stops.
pub async fn refresher(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stopped(&mut stop) => return,
        }
        refresh_due(&state).await;
    }
}
