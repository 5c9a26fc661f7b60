//! Token management routes: list (paged), patch, check now, import, export (DESIGN §3).
//!
//! All need the admin. What a patch or an import does (validation, the store first, the
//! pool after, the undo when the store refuses) is the service's; these handlers parse and
//! render. Export is the only route that returns full secrets, as a download in the seed's
//! tokens.json format.

use crate::auth::AdminAuth;
use crate::error::{ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::health::{run_check, CheckResult, Probes};
use crate::import;
use crate::service::{TokenChanges, TokenPage, TokenQuery, TokenService};
use crate::views::{token_row, TokenRow};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use std::sync::Arc;
use tokenlb_core::TokenId;

/// `GET /api/tokens?offset&limit&sort&state&pool&q`: one page, filtered, searched and
/// sorted by the service, with `total` (the matching rows over all pages).
pub async fn list(
    _: AdminAuth,
    State(svc): State<TokenService>,
    ApiQuery(q): ApiQuery<TokenQuery>,
) -> ApiResult<Json<TokenPage>> {
    Ok(Json(svc.list(&q)?))
}

pub async fn patch(
    _: AdminAuth,
    State(svc): State<TokenService>,
    ApiPath(id): ApiPath<String>,
    ApiJson(changes): ApiJson<TokenChanges>,
) -> ApiResult<Json<TokenRow>> {
    let id = TokenId(id);
    let (handle, view) = svc.patch(&id, &changes).await?;
    let meta = svc.token_meta(&id);
    Ok(Json(token_row(&handle.name, view, meta.as_ref())))
}

pub async fn check(
    _: AdminAuth,
    State(svc): State<TokenService>,
    State(probes): State<Arc<Probes>>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<CheckResult>> {
    Ok(Json(run_check(&probes, &svc, &TokenId(id)).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    pub pool: Option<String>,
    /// Check and count only; nothing is written.
    #[serde(default)]
    pub dry_run: bool,
}

/// Largest import body (a 100,000-token tokens.json is about 12 MB).
pub const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;

pub async fn import(
    _: AdminAuth,
    State(svc): State<TokenService>,
    ApiQuery(q): ApiQuery<ImportQuery>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Json<import::ImportSummary>> {
    let body = body?;
    let pool = q.pool.as_deref().unwrap_or(crate::config::DEFAULT_POOL);
    let started = std::time::Instant::now();
    let summary = svc.import_bytes(body, pool, q.dry_run).await?;
    tracing::info!(
        pool = %pool,
        dry_run = q.dry_run,
        "imported {} tokens ({} skipped, {} refused) in {} ms",
        summary.added,
        summary.skipped,
        summary.errors.len(),
        started.elapsed().as_millis()
    );
    Ok(Json(summary))
}

pub async fn export(_: AdminAuth, State(svc): State<TokenService>) -> ApiResult<impl IntoResponse> {
    let document = svc.export().await?;
    let disposition = "attachment; filename=\"tokens-export.json\"";
    Ok(([(header::CONTENT_DISPOSITION, disposition)], Json(document)))
}
