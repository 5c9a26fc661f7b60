//! When tokens are refreshed: the hook on state changes (rejected or expired → at once), the
//! list of tokens due (expiring within `refresh_before_s`, or rejected and past their retry
//! time), and the background task that refreshes them every [`TICK`].

use super::{refresh_now, Refresher};
use crate::config::HealthKind;
use crate::service::now_ms;
use crate::shutdown::stopped;
use futures::StreamExt;
use std::sync::Arc;
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

/// For a change the refresher hears of: a token of a `wopan` pool that has a refresh token
/// and just became invalid or expired is refreshed at once (in the background); a removed
/// token is forgotten (its refresh token leaves memory).
fn after_change(r: &Arc<Refresher>, event: &EventRecord) {
    if event.kind == "removed" {
        r.forget(&event.token_id);
        return;
    }
    let Some(handle) = r.svc.token_pool(&event.token_id) else {
        return;
    };
    if handle.health.kind != HealthKind::Wopan
        || !matches!(event.to, Some(TokenState::Invalid | TokenState::Expired))
        || !r
            .svc
            .token_meta(&event.token_id)
            .is_some_and(|m| m.has_refresh)
        || !r.may_start(&event.token_id, now_ms())
    {
        return;
    }
    let (r, id) = (r.clone(), event.token_id.clone());
    tokio::spawn(async move {
        if let Err(e) = refresh_now(&r, &id, Trigger::Rejected).await {
            tracing::debug!(token = %id, "refresh after rejection: {e}");
        }
    });
}

/// Tokens due for a refresh now: in `wopan` pools, with a refresh token, not disabled, not
/// running or waiting for a retry, and expiring within `refresh_before_s` or rejected.
pub fn due(state: &Refresher, now: Millis) -> Vec<(TokenId, Trigger)> {
    let mut out = Vec::new();
    for handle in state.svc.pools() {
        if handle.health.kind != HealthKind::Wopan {
            continue;
        }
        let before = handle.health.refresh_before_s.saturating_mul(1000);
        for v in handle.views() {
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
            let has_refresh = state.svc.token_meta(&v.id).is_some_and(|m| m.has_refresh);
            if has_refresh && state.may_start(&v.id, now) {
                out.push((v.id, trigger));
            }
        }
    }
    out
}

/// One pass: refreshes every due token (at most [`MAX_CONCURRENT`] at once) and waits for
/// them. Returns how many were refreshed. The background task runs it every [`TICK`].
pub async fn refresh_due(state: &Refresher) -> usize {
    let due = due(state, now_ms());
    futures::stream::iter(due)
        .map(|(id, trigger)| async move { refresh_now(state, &id, trigger).await.is_ok() })
        .buffer_unordered(MAX_CONCURRENT)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await
}

/// The background refresher: every [`TICK`] a pass over the due tokens, and in between the
/// service's changes as they come. A pass that has started runs to its end (a refresh is
/// never cut between the upstream's answer and the store write); then it stops.
pub async fn refresher(state: Arc<Refresher>, mut stop: watch::Receiver<bool>) {
    let mut changes = state.svc.watch_changes();
    let mut every = tokio::time::interval(TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            Some(event) = changes.recv() => {
                after_change(&state, &event);
                continue;
            }
            _ = stopped(&mut stop) => return,
        }
        refresh_due(&state).await;
    }
}
