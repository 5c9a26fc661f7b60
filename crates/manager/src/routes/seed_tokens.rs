//! The seed's token administration routes: add, remove, stats (DESIGN §3).
//!
//! Shapes are the seed's: `add` answers 201 with the masked record, 409 for a duplicate;
//! `remove` takes `{"token"}` or `{"id"}`; `stats` answers `{"total_tokens",
//! "active_tokens","total_requests","success_rate","tokens":[…]}` (with `offset`/`limit`, one
//! page of the rows and the same totals). Add and remove are durable in the store before they
//! answer (the service sees to it). Add and remove follow the seed's "`/api/*` needs no
//! authentication for service calls" through the loopback rule ([`SeedAdminAuth`]); otherwise
//! they need the admin.

use crate::auth::{ClientAuth, SeedAdminAuth};
use crate::error::{ApiJson, ApiQuery, ApiResult};
use crate::service::listing::{page_bounds, DEFAULT_LIMIT};
use crate::service::{NewToken, TokenRef, TokenService};
use crate::views::{token_row, StatsBody, TokenRow};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

pub async fn add(
    who: SeedAdminAuth,
    State(svc): State<TokenService>,
    ApiJson(mut new): ApiJson<NewToken>,
) -> ApiResult<(StatusCode, Json<TokenRow>)> {
    new.by = who.by();
    let (handle, view) = svc.add(new).await?;
    let meta = svc.token_meta(&view.id);
    let row = token_row(&handle.name, view, meta.as_ref());
    Ok((StatusCode::CREATED, Json(row)))
}

pub async fn remove(
    who: SeedAdminAuth,
    State(svc): State<TokenService>,
    ApiJson(mut by): ApiJson<TokenRef>,
) -> ApiResult<Json<Value>> {
    by.by = who.by();
    let (id, name) = svc.remove(&by).await?;
    Ok(Json(json!({ "ok": true, "id": id, "name": name })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    pub pool: Option<String>,
    /// Paging, added to the seed's route: without both it lists every row, as the seed did.
    pub offset: Option<usize>,
    pub limit: Option<usize>,
}

pub async fn stats(
    ClientAuth(scope): ClientAuth,
    State(svc): State<TokenService>,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult<Json<StatsBody>> {
    let page = match (q.offset, q.limit) {
        (None, None) => None,
        (offset, limit) => Some(page_bounds(offset, limit, DEFAULT_LIMIT)?),
    };
    Ok(Json(svc.stats(q.pool.as_deref(), &scope, page).await?))
}
