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
use std::collections::{HashMap, HashSet};
use tokenlb_core::{LeaseId, Millis, Outcome, OutcomeClass, TokenId, TokenPatch, TokenState};
use tokenlb_manager::service::now_ms;
use tokenlb_manager::service::TokenService;
use tokenlb_store::StoredToken;

/// Applies one message from another instance.
pub async fn apply(svc: &TokenService, c: &Cluster, m: Message) {
    match m.body {
        Body::State {
            token,
            to,
            until,
            at,
            ..
        } => apply_state(svc, c, &token, to, until, at),
        Body::Token { token, what, .. } => token_changed(svc, c, &token, &what).await,
        Body::Resync => {
            resync_tokens(svc, c).await;
        }
        Body::Report {
            owner,
            pool,
            lease,
            outcome,
        } if owner == c.instance => apply_report(svc, &pool, lease, outcome.into()),
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
    svc: &TokenService,
    c: &Cluster,
    token: &TokenId,
    to: TokenState,
    until: Option<Millis>,
    at: Millis,
) {
    let Some(handle) = svc.token_pool(token) else {
        return;
    };
    if !c.newer_than_local(token, at) {
        return;
    }
    let now = now_ms();
    let mut rng = rand::thread_rng();
    let applied = svc.apply_peer_change(&handle, |pool| {
        let Some(view) = pool.get(token) else {
            return false;
        };
        let live = matches!(view.state, TokenState::Active | TokenState::Cooling);
        let _ = match (to, view.state) {
            (TokenState::Cooling, _) if live => match until.filter(|u| *u > now) {
                Some(u) => {
                    let secs = (u - now).div_ceil(1000);
                    let o = outcome(OutcomeClass::RateLimited, Some(secs));
                    pool.health_result(token, &o, now, &mut rng)
                }
                None => return false,
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
            _ => return false,
        };
        true
    });
    if applied {
        c.note_change(token, at);
        c.invalidate(&handle.name);
    }
}

fn enable(on: bool) -> TokenPatch {
    TokenPatch {
        enabled: Some(on),
        ..TokenPatch::default()
    }
}

/// Reads one token from the store (`None` when it is gone or the store fails).
async fn load_one(svc: &TokenService, id: &TokenId) -> Option<StoredToken> {
    match svc.store().load_tokens().await {
        Ok(all) => all.into_iter().find(|t| &t.id == id),
        Err(e) => {
            tracing::warn!(token = %id, error = %e, "cluster: cannot read a changed token from the store");
            None
        }
    }
}

/// Another instance added, removed, patched or refreshed a token.
async fn token_changed(svc: &TokenService, c: &Cluster, id: &TokenId, what: &str) {
    match what {
        "removed" => remove_local(svc, c, id),
        "added" => {
            if svc.token_meta(id).is_none() {
                if let Some(t) = load_one(svc, id).await {
                    add_local(svc, c, vec![t]);
                }
            }
        }
        _ => {
            let Some(t) = load_one(svc, id).await else {
                return;
            };
            let Some(handle) = svc.token_pool(id) else {
                return add_local(svc, c, vec![t]);
            };
            let now = now_ms();
            let patch = TokenPatch {
                name: Some(t.name),
                weight: Some(t.weight),
                expires_at: Some(t.expires_at),
                limits: Some(t.limits),
                enabled: None,
                by: None,
            };
            svc.apply_peer_change(&handle, |pool| {
                if let Err(e) = pool.patch(id, patch, now) {
                    tracing::warn!(token = %id, error = %e, "cluster: cannot apply a remote patch");
                }
                if what == "refreshed" {
                    let _ = pool.replace_secret(id, t.secret, t.expires_at, now);
                }
            });
            c.invalidate(&handle.name);
        }
    }
}

fn add_local(svc: &TokenService, c: &Cluster, tokens: Vec<StoredToken>) {
    let pools: HashSet<String> = tokens.iter().map(|t| t.pool.clone()).collect();
    if let Err(e) = svc.insert_many(tokens) {
        tracing::warn!("cluster: cannot add tokens from the store: {e}");
    }
    for p in pools {
        c.invalidate(&p);
    }
}

fn remove_local(svc: &TokenService, c: &Cluster, id: &TokenId) {
    if let Some(handle) = svc.token_pool(id) {
        svc.forget(&handle, id);
        c.forget_counters(id);
        c.invalidate(&handle.name);
    }
}

/// Makes the local token set match the store: adds the missing, drops the removed.
pub async fn resync_tokens(svc: &TokenService, c: &Cluster) -> bool {
    let stored = match svc.store().load_tokens().await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "cluster: cannot read the token list to reconcile");
            return false;
        }
    };
    let ids: HashSet<TokenId> = stored.iter().map(|t| t.id.clone()).collect();
    let missing: Vec<StoredToken> = stored
        .into_iter()
        .filter(|t| svc.token_meta(&t.id).is_none())
        .collect();
    if !missing.is_empty() {
        add_local(svc, c, missing);
    }
    for handle in svc.pools() {
        let gone: Vec<TokenId> = handle
            .views()
            .into_iter()
            .map(|v| v.id)
            .filter(|id| !ids.contains(id))
            .collect();
        for id in gone {
            remove_local(svc, c, &id);
        }
    }
    true
}

/// A report forwarded by the instance that received it, for a core lease this one holds.
fn apply_report(svc: &TokenService, pool: &str, lease: u64, outcome: Outcome) {
    let Some(handle) = svc.pool_by_name(pool) else {
        return;
    };
    if svc
        .report_core_lease(&handle, LeaseId(lease), &outcome)
        .is_err()
    {
        // Closed here meanwhile (its deadline passed): the outcome still counts.
        svc.metrics().reported(&outcome, &handle.name);
    }
}

/// Catches up after a gap: sends what was queued, applies the shared state newer than the
/// local one, re-reads the token list. `false` when Redis or the store failed on the way.
pub async fn reconcile(svc: &TokenService, c: &Cluster) -> bool {
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
            apply_state(svc, c, &token, to, until, at);
        }
    }
    let ok = resync_tokens(svc, c).await;
    super::stats::seed(svc, c).await;
    ok
}
