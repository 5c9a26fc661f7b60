//! Token refresh for `wopan` pools: a token added with a refresh token gets a new access
//! token (Wopan `AppRefreshToken`) before it expires and as soon as the upstream rejects it.
//!
//! Triggers:
//! - **expiring**: `expires_at` is within the pool's `refresh_before_s` (default 24 h; Wopan
//!   web tokens live 7 days), found by the [`refresher`] task every [`TICK`];
//! - **rejected**: the token went `invalid` (an `auth` report: Wopan's 9999/1001, or a failing
//!   `wopan` health check) or `expired` — [`after_change`] is called for every state change
//!   and starts a refresh at once; the task also retries such tokens later;
//! - **manual**: [`refresh_now`] (tests, tools).
//!
//! A refresh is: call `AppRefreshToken` with the stored refresh token; write the new access
//! token, the (maybe rotated) refresh token and the new `expires_at` to the store — encrypted
//! there, and durable before anything uses them, which also moves the store's lookup by value
//! (`find_by_secret`: duplicate detection, seed-form reports by token) to the new value; only
//! then `Pool::replace_secret` swaps the secret in place (same id, stats kept, invalid /
//! expired → active). Every refresh is an event of kind `refreshed`; a failure is an event
//! of kind `refresh_failed` with the upstream's reason. Neither ever carries a secret.
//!
//! A refresh the upstream refuses (`auth` class, e.g. 8005 for an unknown refresh token)
//! marks the token invalid with that reason and is retried only after [`REFUSED_RETRY_MS`];
//! other failures (outage, timeout, rate limit) leave the state alone — they are not the
//! token's fault — and are retried with a growing delay. One refresh runs at a time per token:
//! concurrent triggers are dropped while one is running.
//!
//! Refresh tokens are read from the store once (all at once, on the first refresh after a
//! start) and kept in memory afterwards, updated on every rotation. When the upstream refuses
//! the remembered one, the store is read again first: another manager sharing the store
//! (cluster mode) may have rotated it, and its `refreshed` event swaps the new access token
//! into this instance's pool.

use crate::config::HealthKind;
use crate::service::events::admin_event;
use crate::service::now_ms;
use crate::service::registry::PoolHandle;
use crate::service::TokenService;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use tokenlb_core::{Millis, Outcome, OutcomeClass, Secret, TokenId};
use tokenlb_store::{StoreError, TokenUpdate};
use tokenlb_wopan::{TokenPair, WopanError};

mod triggers;
pub use triggers::{due, refresh_due, refresher, Trigger, MAX_CONCURRENT, TICK};

/// First retry delay after a failed (not refused) refresh; doubles per failure.
pub const RETRY_BASE_MS: u64 = 30_000;
/// Longest retry delay after failed refreshes.
pub const RETRY_CAP_MS: u64 = 3_600_000;
/// Retry delay after the upstream refused the refresh token.
pub const REFUSED_RETRY_MS: u64 = 3_600_000;

/// Why a refresh did not happen or did not work. Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("no token with id {0}")]
    UnknownToken(TokenId),
    #[error("pool {0} does not refresh tokens (its health kind is not \"wopan\")")]
    NotWopan(String),
    #[error("the token has no refresh token")]
    NoRefreshToken,
    #[error("a refresh of this token is already running")]
    InProgress,
    #[error("refresh refused by the upstream: {0}")]
    Refused(WopanError),
    #[error("refresh failed: {0}")]
    Upstream(WopanError),
    #[error("cannot store the refreshed token: {0}")]
    Store(String),
}

/// A successful refresh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refreshed {
    pub id: TokenId,
    pub expires_at: Millis,
    /// The upstream issued a new refresh token too.
    pub rotated: bool,
}

/// The refresher: the service it refreshes tokens of, and its memory (one per manager).
pub struct Refresher {
    svc: TokenService,
    /// Refresh tokens by token id; filled from the store on first use, kept current.
    secrets: Mutex<HashMap<TokenId, Secret>>,
    /// Tokens with a refresh running now.
    running: Mutex<HashSet<TokenId>>,
    /// After a failure: no automatic retry before this time; failures in a row.
    retry: Mutex<HashMap<TokenId, (Millis, u32)>>,
}

impl Refresher {
    pub fn new(svc: TokenService) -> Refresher {
        Refresher {
            svc,
            secrets: Mutex::default(),
            running: Mutex::default(),
            retry: Mutex::default(),
        }
    }

    /// Forgets a removed token.
    pub fn forget(&self, id: &TokenId) {
        self.secrets.lock().remove(id);
        self.retry.lock().remove(id);
    }

    /// Not running and not waiting for a retry.
    pub(crate) fn may_start(&self, id: &TokenId, now: Millis) -> bool {
        !self.running.lock().contains(id)
            && self.retry.lock().get(id).is_none_or(|(at, _)| *at <= now)
    }
}

/// Marks a token's refresh as running until dropped.
struct Running<'a>(&'a Refresher, TokenId);

impl<'a> Running<'a> {
    fn claim(r: &'a Refresher, id: &TokenId) -> Option<Self> {
        r.running
            .lock()
            .insert(id.clone())
            .then(|| Running(r, id.clone()))
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.lock().remove(&self.1);
    }
}

/// Refreshes one token now (if its pool is a `wopan` pool and it has a refresh token).
pub async fn refresh_now(
    state: &Refresher,
    id: &TokenId,
    trigger: Trigger,
) -> Result<Refreshed, RefreshError> {
    let unknown = || RefreshError::UnknownToken(id.clone());
    let handle = state.svc.token_pool(id).ok_or_else(unknown)?;
    if handle.health.kind != HealthKind::Wopan {
        return Err(RefreshError::NotWopan(handle.name.clone()));
    }
    if !state.svc.token_meta(id).ok_or_else(unknown)?.has_refresh {
        return Err(RefreshError::NoRefreshToken);
    }
    let _running = Running::claim(state, id).ok_or(RefreshError::InProgress)?;
    let mut refresh = refresh_secret(state, id).await?;
    let client =
        crate::wopan_health::wopan_client(&handle.health).map_err(RefreshError::Upstream)?;
    let mut result = client.refresh_token(&refresh).await;
    if result
        .as_ref()
        .is_err_and(|e| e.outcome_class() == OutcomeClass::Auth)
    {
        // Another manager sharing the store (cluster mode) may have rotated it: re-read the
        // stored one, and try once more if it is newer than what we sent.
        if let Some(stored) = reload(state, id).await {
            if stored.expose() != refresh.expose() {
                refresh = stored;
                result = client.refresh_token(&refresh).await;
            }
        }
    }
    match result {
        Ok(pair) => apply(state, &handle, id, trigger, &refresh, pair).await,
        Err(e) => Err(failed(state, &handle, id, trigger, e)),
    }
}

/// The stored refresh token of `id`, read again from the store (and remembered).
async fn reload(state: &Refresher, id: &TokenId) -> Option<Secret> {
    let tokens = state.svc.store().load_tokens().await.ok()?;
    let stored = tokens.into_iter().find(|t| &t.id == id)?.refresh_secret?;
    state.secrets.lock().insert(id.clone(), stored.clone());
    Some(stored)
}

/// The refresh token of `id`: from memory, else from the store (which loads every stored
/// refresh token into memory at once: after a start, or for a token added since).
async fn refresh_secret(state: &Refresher, id: &TokenId) -> Result<Secret, RefreshError> {
    if let Some(s) = state.secrets.lock().get(id) {
        return Ok(s.clone());
    }
    load_all(state, id).await
}

async fn load_all(state: &Refresher, id: &TokenId) -> Result<Secret, RefreshError> {
    let tokens = state
        .svc
        .store()
        .load_tokens()
        .await
        .map_err(|e| RefreshError::Store(e.to_string()))?;
    let mut map = state.secrets.lock();
    for t in tokens {
        if let Some(r) = t.refresh_secret {
            // A rotation that finished meanwhile is newer than what this read saw.
            map.entry(t.id).or_insert(r);
        }
    }
    map.get(id).cloned().ok_or(RefreshError::NoRefreshToken)
}

/// Stores the new pair, then swaps the secret in the pool; events for both.
async fn apply(
    state: &Refresher,
    handle: &PoolHandle,
    id: &TokenId,
    trigger: Trigger,
    old_refresh: &Secret,
    pair: TokenPair,
) -> Result<Refreshed, RefreshError> {
    let rotated = pair.refresh_token.expose() != old_refresh.expose();
    let update = TokenUpdate {
        secret: Some(pair.access_token.clone()),
        refresh_secret: Some(Some(pair.refresh_token.clone())),
        expires_at: Some(Some(pair.expires_at)),
        ..TokenUpdate::default()
    };
    let stored = state.svc.store().update_token(id, &update).await;
    // Whatever happened to the store, the old refresh token may be spent now: keep the new
    // one in memory so a retry can use it.
    state.secrets.lock().insert(id.clone(), pair.refresh_token);
    match stored {
        Ok(()) => {}
        Err(StoreError::NotFound(_)) => return Err(RefreshError::UnknownToken(id.clone())),
        Err(e) => {
            let err = RefreshError::Store(e.to_string());
            note_failure(state, handle, id, trigger, false, &err.to_string());
            return Err(err);
        }
    }
    let now = now_ms();
    let (name, events) = state.svc.change(handle, |pool| {
        let changes = pool
            .replace_secret(id, pair.access_token, Some(pair.expires_at), now)
            .map_err(|_| RefreshError::UnknownToken(id.clone()))?;
        let name = pool.get(id).map(|v| v.name).unwrap_or_default();
        Ok::<_, RefreshError>((name, changes))
    })?;
    state.retry.lock().remove(id);
    let expires = crate::views::time(pair.expires_at);
    let reason = format!(
        "access token refreshed ({}); expires at {}; refresh token {}",
        trigger.as_str(),
        expires.as_str().unwrap_or("?"),
        if rotated { "rotated" } else { "kept" }
    );
    tracing::info!(token = %id, pool = %handle.name, "token {name} ({id}) refreshed: {reason}");
    state
        .svc
        .record_admin(admin_event("refreshed", id, &name, &handle.name, reason));
    state.svc.record(handle, events);
    Ok(Refreshed {
        id: id.clone(),
        expires_at: pair.expires_at,
        rotated,
    })
}

/// A failed refresh: backoff, event, and for a refusal the token becomes invalid.
fn failed(
    state: &Refresher,
    handle: &PoolHandle,
    id: &TokenId,
    trigger: Trigger,
    e: WopanError,
) -> RefreshError {
    let refused = e.outcome_class() == OutcomeClass::Auth;
    let err = if refused {
        RefreshError::Refused(e)
    } else {
        RefreshError::Upstream(e)
    };
    note_failure(state, handle, id, trigger, refused, &err.to_string());
    err
}

fn note_failure(
    state: &Refresher,
    handle: &PoolHandle,
    id: &TokenId,
    trigger: Trigger,
    refused: bool,
    message: &str,
) {
    let now = now_ms();
    let delay = {
        let mut retry = state.retry.lock();
        let n = retry.get(id).map_or(0, |(_, n)| *n).saturating_add(1);
        let delay = if refused {
            REFUSED_RETRY_MS
        } else {
            RETRY_BASE_MS
                .saturating_mul(1 << (n - 1).min(16))
                .min(RETRY_CAP_MS)
        };
        retry.insert(id.clone(), (now.saturating_add(delay), n));
        delay
    };
    let reason = format!(
        "{message} ({}); next automatic try in {} s",
        trigger.as_str(),
        delay / 1000
    );
    let (name, events) = state
        .svc
        .change(handle, |pool| {
            let name = pool.get(id).map(|v| v.name).unwrap_or_default();
            let mut changes = Vec::new();
            if refused {
                let mut outcome = Outcome::new(OutcomeClass::Auth);
                outcome.error = Some(message.to_string());
                if let Ok(c) = pool.health_result(id, &outcome, now, &mut rand::thread_rng()) {
                    changes = c;
                }
            }
            Ok::<_, std::convert::Infallible>((name, changes))
        })
        .unwrap_or_else(|e| match e {});
    tracing::warn!(token = %id, pool = %handle.name, "token {name} ({id}): {reason}");
    let mut event = admin_event("refresh_failed", id, &name, &handle.name, reason);
    event.sample_error = Some(message.to_string());
    state.svc.record_admin(event);
    state.svc.record(handle, events);
}
