//! The seed's token routes: get, add, remove, report, stats (DESIGN §3).
//!
//! Shapes are the seed's: `get` answers `{"token","id","name","pool","lease",
//! "lease_expires_at"}`, `stats` answers `{"total_tokens","active_tokens","total_requests",
//! "success_rate","tokens":[…]}`. A lease id is `<pool index>.<lease number>`, so `report`
//! finds the pool without a lookup table. Add and remove are durable in the store before
//! they answer. `get` with `wait_ms` waits on the pool's `Notify` (woken by reports, ticks,
//! adds and patches) rather than polling.

use crate::auth::{AdminAuth, ClientAuth};
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use crate::import::insert_loaded;
use crate::state::{now_ms, AppState, PoolHandle};
use crate::tasks::{admin_event, change_events};
use crate::validate;
use crate::views::{self, token_row};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokenlb_core::{
    Counters, LeaseId, Limits, Outcome, OutcomeClass, PoolError, Secret, Strategy, TokenId,
    TokenState,
};
use tokenlb_store::StoredToken;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetQuery {
    pub strategy: Option<String>,
    pub pool: Option<String>,
    pub wait_ms: Option<u64>,
}

/// Finds a pool by name (default `default`), 404 if unknown.
pub fn named_pool(state: &AppState, name: Option<&str>) -> ApiResult<Arc<PoolHandle>> {
    let name = name.unwrap_or(crate::config::DEFAULT_POOL);
    state.pool_by_name(name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_pool",
            format!("no pool named {name:?}"),
        )
    })
}

fn lease_string(pool: usize, lease: LeaseId) -> String {
    format!("{pool}.{}", lease.0)
}

fn parse_lease(text: &str) -> Option<(usize, LeaseId)> {
    let (pool, n) = text.split_once('.')?;
    Some((pool.parse().ok()?, LeaseId(n.parse().ok()?)))
}

pub async fn get(
    _: ClientAuth,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<GetQuery>,
) -> ApiResult<Json<Value>> {
    let strategy: Option<Strategy> = match q.strategy.as_deref() {
        None | Some("") => None,
        Some(s) => Some(s.parse().map_err(|_| {
            ApiError::new(StatusCode::BAD_REQUEST, "unknown_strategy", format!(
                "unknown strategy {s:?}; use one of round_robin, best, weighted, random, least_in_flight, latency"
            ))
        })?),
    };
    let wait_ms = q.wait_ms.unwrap_or(0);
    if wait_ms > validate::MAX_WAIT_MS {
        return Err(ApiError::invalid(format!(
            "wait_ms must be at most {}",
            validate::MAX_WAIT_MS
        )));
    }
    let handle = named_pool(&state, q.pool.as_deref())?;
    let strategy = strategy.unwrap_or_else(|| handle.pool.lock().policy().strategy);
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    loop {
        let notified = handle.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let picked = handle
            .pool
            .lock()
            .pick(strategy, now_ms(), &mut rand::thread_rng());
        let unavailable = match picked {
            Ok(lease) => {
                state.metrics.pick(strategy.as_str(), &handle.name);
                return Ok(Json(json!({
                    "token": lease.secret.expose(),
                    "id": lease.token_id,
                    "name": lease.name,
                    "pool": handle.name,
                    "lease": lease_string(handle.index, lease.id),
                    "lease_expires_at": views::time(lease.deadline),
                })));
            }
            Err(u) => u,
        };
        let now = Instant::now();
        let retry_in = unavailable.retry_at.map(|t| t.saturating_sub(now_ms()));
        if now >= deadline {
            state.metrics.unavailable();
            let secs = retry_in.map_or(5, |ms| ms.div_ceil(1000)).max(1);
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_token_available",
                unavailable.reason,
            )
            .with_retry_after(secs));
        }
        // Sleep until woken, the caller's deadline, the known recovery time, or 1 s at most
        // (limits such as rpm windows free up without an event).
        let mut nap = (deadline - now).min(Duration::from_secs(1));
        if let Some(ms) = retry_in {
            nap = nap.min(Duration::from_millis(ms.max(10)));
        }
        let _ = tokio::time::timeout(nap, notified).await;
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddBody {
    pub token: String,
    pub name: Option<String>,
    pub pool: Option<String>,
    pub weight: Option<u32>,
    pub expires_at: Option<String>,
    pub refresh_token: Option<String>,
    pub limits: Option<Limits>,
    /// The seed's tokens.json field; `false` adds the token disabled.
    pub is_active: Option<bool>,
}

pub async fn add(
    _: AdminAuth,
    State(state): State<AppState>,
    ApiJson(b): ApiJson<AddBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    validate::secret(&b.token).map_err(ApiError::invalid)?;
    if let Some(n) = &b.name {
        validate::name(n).map_err(ApiError::invalid)?;
    }
    let pool = b
        .pool
        .unwrap_or_else(|| crate::config::DEFAULT_POOL.to_string());
    validate::pool_name(&pool).map_err(ApiError::invalid)?;
    let weight = b.weight.unwrap_or(validate::DEFAULT_WEIGHT);
    validate::weight(weight).map_err(ApiError::invalid)?;
    let expires_at = b
        .expires_at
        .as_deref()
        .map(views::parse_time)
        .transpose()
        .map_err(ApiError::invalid)?;
    if let Some(r) = &b.refresh_token {
        validate::secret(r).map_err(|m| ApiError::invalid(format!("refresh_token: {m}")))?;
    }
    let handle = state.pool_or_create(&pool).map_err(ApiError::invalid)?;
    let id = TokenId::random(&mut rand::thread_rng());
    let (st, reason) = match b.is_active {
        Some(false) => (TokenState::Disabled, Some("added as inactive".to_string())),
        _ => (TokenState::Active, None),
    };
    let record = StoredToken {
        name: b.name.unwrap_or_else(|| id.to_string()),
        id: id.clone(),
        pool: pool.clone(),
        secret: Secret::new(b.token),
        refresh_secret: b.refresh_token.map(Secret::new),
        weight,
        expires_at,
        limits: b.limits.unwrap_or_default(),
        state: st,
        state_reason: reason,
        state_until: None,
        created_at: now_ms(),
        counters: Counters::default(),
    };
    let name = record.name.clone();
    state
        .store
        .insert_tokens(std::slice::from_ref(&record))
        .await?;
    insert_loaded(&state, record)?;
    tracing::info!(token = %id, pool = %pool, "token added: {name} ({id})");
    state.record_admin(admin_event(
        "added",
        &id,
        &name,
        &pool,
        "added by the admin".into(),
    ));
    let view = handle
        .pool
        .lock()
        .get(&id)
        .ok_or_else(|| ApiError::internal("token vanished after add"))?;
    Ok((
        StatusCode::CREATED,
        Json(token_row(&pool, &view, state.token_meta(&id).as_ref())),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByTokenOrId {
    pub token: Option<String>,
    pub id: Option<TokenId>,
}

/// Resolves `{"token"}` or `{"id"}` to a known token id.
async fn resolve(state: &AppState, by: &ByTokenOrId) -> ApiResult<TokenId> {
    let id = match (&by.id, &by.token) {
        (Some(id), _) => Some(id.clone()),
        (None, Some(token)) => {
            state
                .store
                .find_by_secret(&Secret::new(token.clone()))
                .await?
        }
        (None, None) => return Err(ApiError::invalid("give \"token\" or \"id\"")),
    };
    id.filter(|id| state.token_meta(id).is_some())
        .ok_or_else(|| ApiError::not_found("no such token"))
}

pub async fn remove(
    _: AdminAuth,
    State(state): State<AppState>,
    ApiJson(b): ApiJson<ByTokenOrId>,
) -> ApiResult<Json<Value>> {
    let id = resolve(&state, &b).await?;
    let handle = state
        .token_pool(&id)
        .ok_or_else(|| ApiError::not_found("no such token"))?;
    if !state.store.delete_token(&id).await? {
        return Err(ApiError::not_found("no such token"));
    }
    let view = handle.pool.lock().remove(&id);
    state.forget_token(&id);
    let name = view.map(|v| v.name).unwrap_or_default();
    tracing::info!(token = %id, "token removed: {name} ({id})");
    state.record_admin(admin_event(
        "removed",
        &id,
        &name,
        &handle.name,
        "removed by the admin".into(),
    ));
    Ok(Json(json!({ "ok": true, "id": id, "name": name })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    pub lease: Option<String>,
    pub outcome: Option<OutcomeClass>,
    pub latency_ms: Option<u32>,
    pub status: Option<u16>,
    pub retry_after_s: Option<u64>,
    pub error: Option<String>,
    pub token: Option<String>,
    pub id: Option<TokenId>,
    pub success: Option<bool>,
}

fn outcome_of(b: &ReportBody) -> ApiResult<Outcome> {
    let class = match (b.outcome, b.success) {
        (Some(c), _) => c,
        (None, Some(true)) => OutcomeClass::Success,
        (None, Some(false)) => OutcomeClass::Transient,
        (None, None) => {
            return Err(ApiError::invalid(
                "give \"outcome\" (or the seed's \"success\": bool)",
            ))
        }
    };
    Ok(Outcome {
        class,
        latency_ms: b.latency_ms,
        status: b.status,
        retry_after_s: b.retry_after_s,
        error: b
            .error
            .as_deref()
            .map(validate::error_sample)
            .filter(|s| !s.is_empty()),
    })
}

pub async fn report(
    _: ClientAuth,
    State(state): State<AppState>,
    ApiJson(b): ApiJson<ReportBody>,
) -> ApiResult<Json<Value>> {
    let outcome = outcome_of(&b)?;
    let (handle, result) = if let Some(lease) = &b.lease {
        let unknown = || {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_lease",
                "no open lease with that id (already reported or expired)",
            )
        };
        let (index, lease) = parse_lease(lease).ok_or_else(unknown)?;
        let handle = state.pool_by_index(index).ok_or_else(unknown)?;
        let mut pool = handle.pool.lock();
        let result = match pool.report(lease, &outcome, now_ms(), &mut rand::thread_rng()) {
            Ok((id, changes)) => Ok((
                id.clone(),
                change_events(&pool, &handle.name, &changes),
                pool.get(&id),
            )),
            Err(PoolError::UnknownLease) | Err(PoolError::UnknownToken(_)) => Err(unknown()),
            Err(e) => Err(ApiError::internal(format!("report: {e:?}"))),
        };
        drop(pool);
        (handle.clone(), result)
    } else {
        let id = resolve(
            &state,
            &ByTokenOrId {
                token: b.token.clone(),
                id: b.id.clone(),
            },
        )
        .await?;
        let handle = state
            .token_pool(&id)
            .ok_or_else(|| ApiError::not_found("no such token"))?;
        let mut pool = handle.pool.lock();
        let result = match pool.report_token(&id, &outcome, now_ms(), &mut rand::thread_rng()) {
            Ok(changes) => Ok((
                id.clone(),
                change_events(&pool, &handle.name, &changes),
                pool.get(&id),
            )),
            Err(_) => Err(ApiError::not_found("no such token")),
        };
        drop(pool);
        (handle.clone(), result)
    };
    let (id, events, view) = result?;
    state.metrics.outcome(outcome.class.as_str(), &handle.name);
    state.record_changes(&handle, events);
    handle.notify.notify_waiters();
    Ok(Json(json!({
        "ok": true,
        "id": id,
        "state": view.map(|v| v.state),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolQuery {
    pub pool: Option<String>,
}

pub async fn stats(
    _: ClientAuth,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PoolQuery>,
) -> ApiResult<Json<Value>> {
    let pools = match q.pool.as_deref() {
        Some(name) => vec![named_pool(&state, Some(name))?],
        None => state.pools(),
    };
    let (mut total, mut active, mut requests, mut success, mut failures) =
        (0usize, 0usize, 0u64, 0u64, 0u64);
    let mut rows = Vec::new();
    for handle in pools {
        let (stats, views) = {
            let pool = handle.pool.lock();
            (pool.stats(), pool.views())
        };
        total += stats.total;
        active += stats
            .by_state
            .iter()
            .filter(|(s, _)| *s == TokenState::Active)
            .map(|(_, n)| n)
            .sum::<usize>();
        requests += stats.requests;
        success += stats.success;
        failures += stats.failures;
        rows.extend(
            views
                .iter()
                .map(|v| token_row(&handle.name, v, state.token_meta(&v.id).as_ref())),
        );
    }
    let rate = if success + failures == 0 {
        1.0
    } else {
        success as f64 / (success + failures) as f64
    };
    Ok(Json(json!({
        "total_tokens": total,
        "active_tokens": active,
        "total_requests": requests,
        "success_rate": rate,
        "tokens": rows,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_ids_round_trip() {
        assert_eq!(
            parse_lease(&lease_string(3, LeaseId(42))),
            Some((3, LeaseId(42)))
        );
        assert_eq!(parse_lease("x.1"), None);
        assert_eq!(parse_lease("12"), None);
    }
}
