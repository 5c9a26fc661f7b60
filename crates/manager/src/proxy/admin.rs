//! The admin side of proxy mode: `GET /api/proxies` (each route, its pool and its
//! per-class counts, for the admin UI) and `POST /api/proxy/NAME/check` (one request through
//! the route, and how its answer was classified; `tokenlb proxy-check NAME` prints it).

use super::{Call, Proxies};
use crate::auth::AdminAuth;
use crate::error::{ApiError, ApiPath, ApiQuery, ApiResult};
use crate::service::{LeaseRequest, Scope, TokenService};
use axum::extract::State;
use axum::http::Method;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// How a route injects its token, in words (never the token).
fn injection(route: &crate::config::ProxyConfig) -> String {
    match (&route.inject.header, &route.inject.query) {
        (Some(h), _) => format!(
            "header {h}: {}",
            route.inject.value.as_deref().unwrap_or("{token}")
        ),
        (None, Some(q)) => format!("query ?{q}={{token}}"),
        _ => String::new(),
    }
}

pub async fn list(_: AdminAuth, Extension(proxies): Extension<Arc<Proxies>>) -> Json<Value> {
    let routes: Vec<Value> = proxies
        .routes()
        .map(|r| {
            let c = &r.config;
            json!({
                "name": c.name,
                "path": format!("/proxy/{}/", c.name),
                "upstream": c.upstream,
                "pool": r.pool(),
                "strategy": c.strategy.map(|s| s.as_str()),
                "inject": injection(c),
                "retries": c.retries,
                "timeout_s": c.timeout_s,
                "wait_ms": c.wait_ms,
                "rules": c.rules.len(),
                "counts": r.counts(),
            })
        })
        .collect();
    Json(json!({ "proxies": routes }))
}

/// `check`'s query: what to request through the route.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckQuery {
    /// Path (and query) after `/proxy/NAME`; `/` by default.
    pub path: Option<String>,
    /// `GET` by default.
    pub method: Option<String>,
}

pub async fn check(
    _: AdminAuth,
    State(svc): State<TokenService>,
    Extension(proxies): Extension<Arc<Proxies>>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<CheckQuery>,
) -> ApiResult<Json<Value>> {
    let route = proxies
        .route(&name)
        .ok_or_else(|| super::unknown_route(&name))?
        .clone();
    let path = q.path.unwrap_or_else(|| "/".to_string());
    if !path.starts_with('/') || path.len() > 2048 {
        return Err(ApiError::invalid(
            "path must start with / (at most 2048 characters)",
        ));
    }
    let method = q.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| ApiError::invalid("method must be an HTTP method such as GET"))?;
    let parts = axum::http::Request::builder()
        .method(method.clone())
        .uri(format!("/proxy/{name}{path}"))
        .body(())
        .map_err(|_| ApiError::invalid("path is not a valid request target"))?
        .into_parts()
        .0;
    let scope = Scope::admin();
    let call = Call {
        svc: &svc,
        client: &proxies.client,
        route: &route,
        scope: &scope,
        parts: &parts,
    };
    let request = LeaseRequest {
        scope: &scope,
        pool: Some(route.pool()),
        strategy: route.config.strategy.map(|s| s.as_str()),
        wait_ms: 0,
    };
    let (picked, _) = svc.lease(request).await?;
    let mut t = call.attempt(picked, axum::body::Body::empty()).await;
    let report = call.report_of(&t);
    t.held.report_now(&report).await;
    let rule = t.verdict.rule.map(|i| {
        let r = &route.config.rules[i];
        json!({ "index": i, "status": r.status, "body_contains": r.body_contains, "header": r.header, "header_contains": r.header_contains })
    });
    Ok(Json(json!({
        "proxy": route.name(),
        "pool": route.pool(),
        "method": method.as_str(),
        "path": path,
        "token_id": t.token_id,
        "status": report.status,
        "class": t.verdict.class,
        "rule": rule,
        "retry_after_s": t.verdict.retry_after_s,
        "latency_ms": t.latency_ms,
        "error": report.error,
    })))
}
