//! Applying what other instances publish to this instance's local pools, and catching up
//! after a gap ([`reconcile`]).
//!
//! A remote state change is replayed through the core's own state machine so every local
//! invariant (indexes, timers, counts) stays right, without touching the request counters:
//! `cooling until T` becomes a health-check result "rate limited, retry after T − now",
//! `invalid` an auth failure, `active` a passing check (or an enable, from `disabled`),
//! `disabled` an admin disable. `expired` is not replayed: every instance reaches it from
//! the same `expires_at`. The changes this produces are not recorded or published again (the
//! originating instance did that), so nothing loops.
//!
//! Ordering: each instance remembers when each token last changed (its own changes and the
//! ones it applied); an older message (from a reconciliation, or a crossed pair of
//! messages) never overwrites a newer change.

use super::feed::{Body, Message};
use super::Cluster;
use crate::state::{now_ms, AppState};
use crate::tasks::change_events;
use std::collections::{HashMap, HashSet};
use tokenlb_core::{LeaseId, Millis, Outcome, OutcomeClass, TokenId, TokenPatch, TokenState};
use tokenlb_store::StoredToken;

/// Applies one message from another instance.
pub async fn apply(state: &AppState, m: Message) {
    let Some(c) = state.cluster() else { return };
    match m.body {
        Body::State {
            token,
            to,
            until,
            at,
            ..
        } => apply_state(state, c, &token, to, until, at),
        Body::Token { token, what, .. } => token_changed(state, c, &token, &what).await,
        Body::Resync => {
            resync_tokens(state).await;
        }
        Body::Report {
            owner,
            pool,
            lease,
            outcome,
        } if owner == c.instance => apply_report(state, &pool, lease, outcome.into()),
        Body::Report { .. } => {}
    }
}

fn outcome(class: OutcomeClass, retry_after_s: Option<u64>) -> Outcome {
    Outcome {
        class,
        latency_ms: None,
        status: None,
        retry_after_s,
        error: None,
    }
}

/// Brings a token's local state to `to` (see the module docs).
pub fn apply_state(
    state: &AppState,
    c: &Cluster,
    token: &TokenId,
    to: TokenState,
    until: Option<Millis>,
    at: Millis,
) {
    let Some(handle) = state.token_pool(token) else {
        return;
    };
    if !c.newer_than_local(token, at) {
        return;
    }
    let now = now_ms();
    let mut rng = rand::thread_rng();
    {
        let mut pool = handle.pool.lock();
        let Some(view) = pool.get(token) else { return };
        let live = matches!(view.state, TokenState::Active | TokenState::Cooling);
        let _ = match (to, view.state) {
            (TokenState::Cooling, _) if live => match until.filter(|u| *u > now) {
                Some(u) => {
                    let secs = (u - now).div_ceil(1000);
                    let o = outcome(OutcomeClass::RateLimited, Some(secs));
                    pool.health_result(token, &o, now, &mut rng)
                }
                None => return,
            },
            (TokenState::Invalid, _) if live => {
                pool.health_result(token, &outcome(OutcomeClass::Auth, None), now, &mut rng)
            }
            (TokenState::Active, TokenState::Cooling | TokenState::Invalid) => {
                pool.health_result(token, &outcome(OutcomeClass::Success, None), now, &mut rng)
            }
            (TokenState::Active, TokenState::Disabled) => pool.patch(token, enable(true), now),
            (TokenState::Disabled, s) if s != TokenState::Disabled => {
                pool.patch(token, enable(false), now)
            }
            _ => return,
        };
    }
    c.note_change(token, at);
    c.invalidate(&handle.name);
    handle.notify.notify_waiters();
}

fn enable(on: bool) -> TokenPatch {
    TokenPatch {
        enabled: Some(on),
        ..TokenPatch::default()
    }
}

/// Reads one token from the store (`None` when it is gone or the store fails).
async fn load_one(state: &AppState, id: &TokenId) -> Option<StoredToken> {
    match state.store.load_tokens().await {
        Ok(all) => all.into_iter().find(|t| &t.id == id),
        Err(e) => {
            tracing::warn!(token = %id, error = %e, "cluster: cannot read a changed token from the store");
            None
        }
    }
}

/// Another instance added, removed, patched or refreshed a token.
async fn token_changed(state: &AppState, c: &Cluster, id: &TokenId, what: &str) {
    match what {
        "removed" => remove_local(state, c, id),
        "added" => {
            if state.token_meta(id).is_none() {
                if let Some(t) = load_one(state, id).await {
                    add_local(state, c, vec![t]);
                }
            }
        }
        _ => {
            let Some(t) = load_one(state, id).await else {
                return;
            };
            let Some(handle) = state.token_pool(id) else {
                return add_local(state, c, vec![t]);
            };
            let now = now_ms();
            let mut pool = handle.pool.lock();
            let patch = TokenPatch {
                name: Some(t.name),
                weight: Some(t.weight),
                expires_at: Some(t.expires_at),
                limits: Some(t.limits),
                enabled: None,
            };
            if let Err(e) = pool.patch(id, patch, now) {
                tracing::warn!(token = %id, error = %e, "cluster: cannot apply a remote patch");
            }
            if what == "refreshed" {
                let _ = pool.replace_secret(id, t.secret, t.expires_at, now);
            }
            drop(pool);
            c.invalidate(&handle.name);
            handle.notify.notify_waiters();
        }
    }
}

fn add_local(state: &AppState, c: &Cluster, tokens: Vec<StoredToken>) {
    let pools: HashSet<String> = tokens.iter().map(|t| t.pool.clone()).collect();
    if let Err(e) = crate::import::insert_many(state, tokens) {
        tracing::warn!("cluster: cannot add tokens from the store: {}", e.message);
    }
    for p in pools {
        c.invalidate(&p);
    }
}

fn remove_local(state: &AppState, c: &Cluster, id: &TokenId) {
    if let Some(handle) = state.token_pool(id) {
        handle.pool.lock().remove(id);
        state.forget_token(id);
        c.forget_counters(id);
        c.invalidate(&handle.name);
        handle.notify.notify_waiters();
    }
}

/// Makes the local token set match the store: adds the missing, drops the removed.
pub async fn resync_tokens(state: &AppState) -> bool {
    let Some(c) = state.cluster() else {
        return false;
    };
    let stored = match state.store.load_tokens().await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "cluster: cannot read the token list to reconcile");
            return false;
        }
    };
    let ids: HashSet<TokenId> = stored.iter().map(|t| t.id.clone()).collect();
    let missing: Vec<StoredToken> = stored
        .into_iter()
        .filter(|t| state.token_meta(&t.id).is_none())
        .collect();
    if !missing.is_empty() {
        add_local(state, c, missing);
    }
    for handle in state.pools() {
        let gone: Vec<TokenId> = handle
            .pool
            .lock()
            .views()
            .into_iter()
            .map(|v| v.id)
            .filter(|id| !ids.contains(id))
            .collect();
        for id in gone {
            remove_local(state, c, &id);
        }
    }
    true
}

/// A report forwarded by the instance that received it, for a core lease this one holds.
fn apply_report(state: &AppState, pool: &str, lease: u64, outcome: Outcome) {
    let Some(handle) = state.pool_by_name(pool) else {
        return;
    };
    let now = now_ms();
    let mut rng = rand::thread_rng();
    let events = {
        let mut p = handle.pool.lock();
        match p.report(LeaseId(lease), &outcome, now, &mut rng) {
            Ok((_, changes)) => change_events(&p, &handle.name, &changes),
            Err(_) => Vec::new(),
        }
    };
    state.metrics.outcome(outcome.class.as_str(), &handle.name);
    state.record_changes(&handle, events);
    handle.notify.notify_waiters();
}

/// Catches up after a gap: sends what was queued, applies the shared state newer than the
/// local one, re-reads the token list. `false` when Redis or the store failed on the way.
pub async fn reconcile(state: &AppState) -> bool {
    let Some(c) = state.cluster() else {
        return false;
    };
    for m in c.take_pending() {
        if !c.deliver(&m).await {
            c.keep_pending(m);
            return false;
        }
    }
    let key = c.key("state");
    let Some(shared) = c
        .link
        .call(|mut conn| async move {
            redis::cmd("HGETALL")
                .arg(key)
                .query_async::<HashMap<String, String>>(&mut conn)
                .await
        })
        .await
    else {
        return false;
    };
    for text in shared.values() {
        if let Ok(Message {
            body:
                Body::State {
                    token,
                    to,
                    until,
                    at,
                    ..
                },
            ..
        }) = serde_json::from_str::<Message>(text)
        {
            apply_state(state, c, &token, to, until, at);
        }
    }
    let ok = resync_tokens(state).await;
    super::stats::seed(state).await;
    ok
}
