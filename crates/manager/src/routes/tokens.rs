//! Token management routes: list, patch, check now, import, export (DESIGN §3).
//!
//! All need the admin. A patch is applied to the pool (which decides what `enabled` means for
//! the state) and written to the store under `state_writes` before it answers; if the store
//! refuses, the pool's configuration fields are put back. Import goes through
//! [`crate::import`]: one transaction however many tokens. Export is the only route that
//! returns full secrets, as a download in the seed's tokens.json format.

use crate::auth::AdminAuth;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::health::{run_check, CheckResult};
use crate::import;
use crate::routes::lease::named_pool;
use crate::state::{now_ms, AppState};
use crate::tasks::{admin_event, change_events};
use crate::validate;
use crate::views::{self, token_row, TokenRow};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use tokenlb_core::{Limits, TokenId, TokenPatch, TokenState};
use tokenlb_store::TokenUpdate;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub pool: Option<String>,
    pub state: Option<TokenState>,
}

/// `GET /api/tokens`.
#[derive(Debug, serde::Serialize)]
pub struct TokenList {
    pub tokens: Vec<TokenRow>,
}

pub async fn list(
    _: AdminAuth,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<TokenList>> {
    let pools = match q.pool.as_deref() {
        Some(name) => vec![named_pool(&state, Some(name))?],
        None => state.pools(),
    };
    let mut rows = Vec::new();
    for handle in pools {
        let views = handle.pool.lock().views();
        rows.extend(
            views
                .into_iter()
                .filter(|v| q.state.is_none_or(|s| s == v.state))
                .map(|v| {
                    let meta = state.token_meta(&v.id);
                    token_row(&handle.name, v, meta.as_ref())
                }),
        );
    }
    Ok(Json(TokenList { tokens: rows }))
}

/// `null` → `Some(None)`, absent → `None` (via `#[serde(default)]`).
fn double_option<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    pub name: Option<String>,
    pub weight: Option<u32>,
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    pub expires_at: Option<Option<String>>,
    pub limits: Option<Limits>,
}

pub async fn patch(
    _: AdminAuth,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<PatchBody>,
) -> ApiResult<Json<TokenRow>> {
    let id = TokenId(id);
    let handle = state
        .token_pool(&id)
        .ok_or_else(|| ApiError::not_found(format!("no token with id {id}")))?;
    if let Some(n) = &b.name {
        validate::name(n).map_err(ApiError::invalid)?;
    }
    if let Some(w) = b.weight {
        validate::weight(w).map_err(ApiError::invalid)?;
    }
    let expires_at = match &b.expires_at {
        None => None,
        Some(None) => Some(None),
        Some(Some(t)) => Some(Some(views::parse_time(t).map_err(ApiError::invalid)?)),
    };
    let patch = TokenPatch {
        name: b.name.clone(),
        weight: b.weight,
        expires_at,
        limits: b.limits.clone(),
        enabled: b.enabled,
    };
    let _writes = state.state_writes.lock().await;
    let (old, events, new) = {
        let mut pool = handle.pool.lock();
        let old = pool
            .get(&id)
            .ok_or_else(|| ApiError::not_found(format!("no token with id {id}")))?;
        let changes = pool.patch(&id, patch, now_ms()).map_err(|e| match e {
            tokenlb_core::PoolError::UnknownToken(_) => {
                ApiError::not_found(format!("no token with id {id}"))
            }
            tokenlb_core::PoolError::Invalid(m) => ApiError::invalid(m),
            other => ApiError::invalid(other.to_string()),
        })?;
        let events = change_events(&pool, &handle.name, &changes);
        (old, events, pool.get(&id))
    };
    let new = new.ok_or_else(|| ApiError::not_found(format!("no token with id {id}")))?;
    let update = TokenUpdate {
        name: b.name.clone(),
        weight: b.weight,
        expires_at,
        limits: b.limits.clone(),
        state: Some((new.state, new.state_reason.clone(), new.state_until)),
        ..TokenUpdate::default()
    };
    if let Err(e) = state.store.update_token(&id, &update).await {
        let undo = TokenPatch {
            name: Some(old.name.clone()),
            weight: Some(old.weight),
            expires_at: Some(old.expires_at),
            limits: Some(old.limits.clone()),
            enabled: None,
        };
        let _ = handle.pool.lock().patch(&id, undo, now_ms());
        return Err(e.into());
    }
    drop(_writes);
    tracing::info!(token = %id, "token patched: {} ({id})", new.name);
    state.record_admin(admin_event(
        "patched",
        &id,
        &new.name,
        &handle.name,
        "changed by the admin".into(),
    ));
    state.record_changes(&handle, events);
    handle.notify.notify_waiters();
    let meta = state.token_meta(&id);
    Ok(Json(token_row(&handle.name, new, meta.as_ref())))
}

pub async fn check(
    _: AdminAuth,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<CheckResult>> {
    let id = TokenId(id);
    let handle = state
        .token_pool(&id)
        .ok_or_else(|| ApiError::not_found(format!("no token with id {id}")))?;
    Ok(Json(run_check(&state, &handle, &id).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    pub pool: Option<String>,
}

/// Largest import body (a 100,000-token tokens.json is about 12 MB).
pub const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;

pub async fn import(
    _: AdminAuth,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ImportQuery>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Json<import::ImportSummary>> {
    let body = body?;
    let pool = q
        .pool
        .unwrap_or_else(|| crate::config::DEFAULT_POOL.to_string());
    validate::pool_name(&pool).map_err(ApiError::invalid)?;
    let started = std::time::Instant::now();
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::invalid("the import must be UTF-8 text"))?;
    // Parsing megabytes of JSON is CPU work: keep it off the async threads.
    let parsed = tokio::task::spawn_blocking(move || import::parse(&text))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("tokens.json: {e}"),
            )
        })?;
    let summary = import::apply(&state, parsed, &pool).await?;
    if let (Some(c), true) = (state.cluster(), summary.added > 0) {
        c.send(crate::cluster::feed::Body::Resync);
    }
    tracing::info!(
        pool = %pool,
        "imported {} tokens ({} skipped, {} errors) in {} ms",
        summary.added,
        summary.skipped,
        summary.errors.len(),
        started.elapsed().as_millis()
    );
    Ok(Json(summary))
}

pub async fn export(_: AdminAuth, State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let tokens = state.store.load_tokens().await?;
    let entries: Vec<Value> = tokens
        .iter()
        .map(|t| {
            let mut e = json!({
                "token": t.secret.expose(),
                "name": t.name,
                "is_active": t.state != TokenState::Disabled,
                "pool": t.pool,
                "weight": t.weight,
            });
            if let Some(at) = t.expires_at {
                e["expires_at"] = views::time(at);
            }
            if let Some(r) = &t.refresh_secret {
                e["refresh_token"] = Value::String(r.expose().to_string());
            }
            e
        })
        .collect();
    tracing::info!("exported {} tokens", entries.len());
    Ok((
        [(
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"tokens-export.json\"",
        )],
        Json(json!({ "tokens": entries })),
    ))
}
