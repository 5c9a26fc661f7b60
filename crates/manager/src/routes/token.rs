//! The seed's token administration routes: add, remove, stats (DESIGN §3).
//!
//! Shapes are the seed's: `add` answers 201 with the masked record, 409 for a duplicate;
//! `remove` takes `{"token"}` or `{"id"}`; `stats` answers `{"total_tokens",
//! "active_tokens","total_requests","success_rate","tokens":[…]}`. Add and remove are
//! durable in the store before they answer.

use crate::auth::{AdminAuth, ClientAuth};
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use crate::import::insert_loaded;
use crate::routes::lease::named_pool;
use crate::state::{now_ms, AppState};
use crate::tasks::admin_event;
use crate::validate;
use crate::views::{self, token_row, TokenRow};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tokenlb_core::{Counters, Limits, Secret, TokenId, TokenState};
use tokenlb_store::StoredToken;

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
) -> ApiResult<(StatusCode, Json<TokenRow>)> {
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
    if let Some(l) = &b.limits {
        validate::limits(l).map_err(ApiError::invalid)?;
    }
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
        Json(token_row(&pool, view, state.token_meta(&id).as_ref())),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByTokenOrId {
    pub token: Option<String>,
    pub id: Option<TokenId>,
}

/// Resolves `{"token"}` or `{"id"}` to a known token id.
pub(crate) async fn resolve(state: &AppState, by: &ByTokenOrId) -> ApiResult<TokenId> {
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
pub struct PoolQuery {
    pub pool: Option<String>,
}

/// The seed's stats answer.
#[derive(Debug, serde::Serialize)]
pub struct StatsBody {
    pub total_tokens: usize,
    pub active_tokens: usize,
    pub total_requests: u64,
    pub success_rate: f64,
    pub tokens: Vec<TokenRow>,
}

pub async fn stats(
    _: ClientAuth,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PoolQuery>,
) -> ApiResult<Json<StatsBody>> {
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
        rows.extend(views.into_iter().map(|v| {
            let meta = state.token_meta(&v.id);
            token_row(&handle.name, v, meta.as_ref())
        }));
    }
    let rate = if success + failures == 0 {
        1.0
    } else {
        success as f64 / (success + failures) as f64
    };
    let mut body = StatsBody {
        total_tokens: total,
        active_tokens: active,
        total_requests: requests,
        success_rate: rate,
        tokens: rows,
    };
    crate::cluster::stats::merge(&state, &mut body).await;
    Ok(Json(body))
}
