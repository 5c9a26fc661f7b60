//! Dashboard data: per-minute series and the pool list.
//!
//! `GET /api/stats/minutes?window=1h|24h[&pool=][&token=]` reads the store's minute rows
//! (written by the stats flusher, so at most `stats_flush_ms` behind) and zero-fills the
//! window, one entry per minute, oldest first. `GET /api/pools` lists the pools with their
//! strategy and token counts.

use crate::auth::AdminAuth;
use crate::error::{ApiError, ApiQuery, ApiResult};
use crate::service::{PoolSummary, TokenService};
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tokenlb_core::TokenId;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinutesQuery {
    pub window: Option<String>,
    pub pool: Option<String>,
    pub token: Option<String>,
}

pub async fn minutes(
    _: AdminAuth,
    State(svc): State<TokenService>,
    ApiQuery(q): ApiQuery<MinutesQuery>,
) -> ApiResult<Json<Value>> {
    let (window, count) = match q.window.as_deref().unwrap_or("1h") {
        "1h" => ("1h", 60u64),
        "24h" => ("24h", 24 * 60),
        other => {
            let message = format!("window must be 1h or 24h, not {other:?}");
            return Err(ApiError::invalid(message));
        }
    };
    let series = svc.minutes(count, q.pool, q.token.map(TokenId)).await?;
    let series: Vec<Value> = series
        .into_iter()
        .map(|(t, r, f)| json!({ "t": t, "requests": r, "failures": f }))
        .collect();
    Ok(Json(json!({ "window": window, "minutes": series })))
}

pub async fn pools(_: AdminAuth, State(svc): State<TokenService>) -> Json<Vec<PoolSummary>> {
    Json(svc.pool_summaries())
}
