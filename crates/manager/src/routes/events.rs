//! `GET /api/events`: state changes and admin actions, newest first, from the store.
//!
//! The store is the source: events survive restarts and the UI pages back with `before`.
//! Field names follow what the admin UI reads (`id`, `at`, `token_id`, `token_name`, `pool`,
//! `from`, `to`, `kind`, `reason`, `error`).

use crate::auth::AdminAuth;
use crate::error::{ApiQuery, ApiResult};
use crate::service::{EventsFilter, TokenService};
use crate::views;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

pub async fn events(
    _: AdminAuth,
    State(svc): State<TokenService>,
    ApiQuery(filter): ApiQuery<EventsFilter>,
) -> ApiResult<Json<Value>> {
    let rows: Vec<Value> = svc
        .events(filter)
        .await?
        .iter()
        .map(views::event_row)
        .collect();
    Ok(Json(json!({ "events": rows })))
}
