//! `GET /api/events`: state changes and admin actions, newest first, from the store.
//!
//! The store is the source: events survive restarts and the UI pages back with `before`.
//! Field names follow what the admin UI reads (`id`, `at`, `token_id`, `token_name`, `pool`,
//! `from`, `to`, `kind`, `reason`, `error`).

use crate::auth::AdminAuth;
use crate::error::{ApiError, ApiQuery, ApiResult};
use crate::state::AppState;
use crate::views;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tokenlb_core::TokenId;
use tokenlb_store::EventQuery;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    pub limit: Option<u32>,
    pub token: Option<String>,
    pub pool: Option<String>,
    /// Only events with a smaller `id` (paging back).
    pub before: Option<i64>,
    /// Only events at or after this time (RFC 3339).
    pub since: Option<String>,
}

pub async fn events(
    _: AdminAuth,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<Json<Value>> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let since = q
        .since
        .as_deref()
        .map(views::parse_time)
        .transpose()
        .map_err(ApiError::invalid)?;
    let query = EventQuery {
        token_id: q.token.map(TokenId),
        pool: q.pool,
        since,
        before_seq: q.before,
        limit,
    };
    let rows: Vec<Value> = state
        .store
        .events(&query)
        .await?
        .into_iter()
        .map(|e| {
            json!({
                "id": e.seq,
                "at": views::time(e.at),
                "token_id": e.token_id,
                "token_name": e.token_name,
                "pool": e.pool,
                "kind": e.kind,
                "from": e.from,
                "to": e.to,
                "reason": e.reason,
                "error": e.sample_error,
            })
        })
        .collect();
    Ok(Json(json!({ "events": rows })))
}
