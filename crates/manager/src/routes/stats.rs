//! Dashboard data: per-minute series and the pool list.
//!
//! `GET /api/stats/minutes?window=1h|24h[&pool=][&token=]` reads the store's minute rows
//! (written by the stats flusher, so at most `stats_flush_ms` behind) and zero-fills the
//! window, one entry per minute, oldest first. `GET /api/pools` lists the pools with their
//! strategy and token counts.

use crate::auth::AdminAuth;
use crate::error::{ApiError, ApiQuery, ApiResult};
use crate::state::{now_ms, AppState};
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use tokenlb_core::{TokenId, TokenState};
use tokenlb_store::MinuteQuery;

const MINUTE_MS: u64 = 60_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinutesQuery {
    pub window: Option<String>,
    pub pool: Option<String>,
    pub token: Option<String>,
}

pub async fn minutes(
    _: AdminAuth,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<MinutesQuery>,
) -> ApiResult<Json<Value>> {
    let (window, count) = match q.window.as_deref().unwrap_or("1h") {
        "1h" => ("1h", 60u64),
        "24h" => ("24h", 24 * 60),
        other => {
            return Err(ApiError::invalid(format!(
                "window must be 1h or 24h, not {other:?}"
            )))
        }
    };
    if let Some(p) = &q.pool {
        crate::routes::lease::named_pool(&state, Some(p))?;
    }
    let now_minute = now_ms() / MINUTE_MS;
    let first = now_minute + 1 - count;
    let query = MinuteQuery {
        token_id: q.token.map(TokenId),
        pool: q.pool,
        since_minute: first,
    };
    let rows: HashMap<u64, (u32, u32)> = state
        .store
        .minutes(&query)
        .await?
        .into_iter()
        .map(|(m, r, f)| (m, (r, f)))
        .collect();
    let series: Vec<Value> = (first..=now_minute)
        .map(|m| {
            let (r, f) = rows.get(&m).copied().unwrap_or((0, 0));
            json!({ "t": m * MINUTE_MS, "requests": r, "failures": f })
        })
        .collect();
    Ok(Json(json!({ "window": window, "minutes": series })))
}

pub async fn pools(_: AdminAuth, State(state): State<AppState>) -> Json<Value> {
    let list: Vec<Value> = state
        .pools()
        .iter()
        .map(|h| {
            let pool = h.pool.lock();
            let stats = pool.stats();
            let active: usize = stats
                .by_state
                .iter()
                .filter(|(s, _)| *s == TokenState::Active)
                .map(|(_, n)| n)
                .sum();
            json!({
                "name": h.name,
                "strategy": pool.policy().strategy,
                "tokens": stats.total,
                "active": active,
                "in_flight": stats.in_flight,
                "health": h.health.kind,
            })
        })
        .collect();
    Json(Value::Array(list))
}
