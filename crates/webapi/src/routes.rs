//! The HTTP routes: the seed's three (`/api/folders`, `/api/files`, `/api/download/`), plus
//! `/healthz` and `/metrics`.
//!
//! Every JSON answer carries `source` (`realtime` or `cache`), `cached_at` (RFC 3339, when the
//! data was fetched from Wopan) and `stale` (true when served from the cache because the
//! realtime path failed). Handlers only parse and shape; the logic is in [`crate::service`].

use crate::cache::Listing;
use crate::error::{ApiError, ApiResult};
use crate::names::DrivePath;
use crate::proxy;
use crate::render::{self, Kind};
use crate::service::{Answer, Mode};
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub folder: Option<String>,
    pub realtime: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct DownloadQuery {
    pub url: Option<String>,
    pub realtime: Option<String>,
    pub redirect: Option<String>,
    pub proxy: Option<String>,
}

/// `true`/`1`/`yes`/`on` and `false`/`0`/`no`/`off`, any case; anything else is a 400.
pub(crate) fn flag(name: &str, value: Option<&str>) -> ApiResult<Option<bool>> {
    let Some(v) = value else { return Ok(None) };
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(Some(true)),
        "false" | "0" | "no" | "off" => Ok(Some(false)),
        "" => Ok(None),
        _ => Err(ApiError::bad_request(format!(
            "{name} must be true or false"
        ))),
    }
}

fn source_fields<T>(a: &Answer<T>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        "source".into(),
        json!(if a.realtime { "realtime" } else { "cache" }),
    );
    m.insert("cached_at".into(), json!(render::rfc3339(a.cached_at)));
    m.insert("stale".into(), json!(a.stale));
    m
}

fn source_label<T>(a: &Answer<T>) -> &'static str {
    match (a.realtime, a.stale) {
        (true, _) => "realtime",
        (false, false) => "cache",
        (false, true) => "stale",
    }
}

async fn list(
    state: &AppState,
    route: &'static str,
    folder: &DrivePath,
    mode: Mode,
) -> ApiResult<Answer<Arc<Listing>>> {
    let r = state.service.listing(folder, mode).await;
    match &r {
        Ok(a) => state.service.metrics.request(route, source_label(a)),
        Err(_) => state.service.metrics.request(route, "error"),
    }
    r
}

/// `GET /api/folders[?folder=A][&realtime=]`: the folders in the root (or in `folder`).
pub async fn folders(
    State(state): State<AppState>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = q?;
    let mode = Mode::from_param(flag("realtime", q.realtime.as_deref())?);
    let parent = DrivePath::parse(q.folder.as_deref().unwrap_or(""), "folder", true)
        .map_err(|e| ApiError::bad_request(e.0))?;
    let a = list(&state, "folders", &parent, mode).await?;
    Ok(render::json_response(render::listing_body(
        &a.value,
        Kind::Folders,
        a.realtime,
        a.stale,
    )))
}

/// `GET /api/files?folder=A/B[&realtime=]`: every entry of a folder.
pub async fn files(
    State(state): State<AppState>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = q?;
    let mode = Mode::from_param(flag("realtime", q.realtime.as_deref())?);
    let raw = q
        .folder
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("folder is required: /api/files?folder=NAME"))?;
    let folder = DrivePath::parse(raw, "folder", false).map_err(|e| ApiError::bad_request(e.0))?;
    let a = list(&state, "files", &folder, mode).await?;
    Ok(render::json_response(render::listing_body(
        &a.value,
        Kind::Files,
        a.realtime,
        a.stale,
    )))
}

/// `GET /api/download/?url=FOLDER/FILE[&redirect=true|&proxy=true][&realtime=]`.
pub async fn download(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<DownloadQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = q?;
    let mode = Mode::from_param(flag("realtime", q.realtime.as_deref())?);
    let redirect = flag("redirect", q.redirect.as_deref())?.unwrap_or(false);
    let proxy = flag("proxy", q.proxy.as_deref())?.unwrap_or(false);
    if redirect && proxy {
        return Err(ApiError::bad_request(
            "choose one of redirect=true and proxy=true",
        ));
    }
    let raw = q
        .url
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("url is required: /api/download/?url=FOLDER/FILE"))?;
    let path = DrivePath::parse(raw, "url", false).map_err(|e| ApiError::bad_request(e.0))?;
    let metrics = &state.service.metrics;
    if proxy {
        let r = proxy::stream(
            &state.service,
            &state.download_http,
            &path,
            mode,
            headers.get(header::RANGE),
        )
        .await;
        metrics.request("download_proxy", r.as_ref().map_or("error", |(_, s)| *s));
        return r.map(|(resp, _)| resp);
    }
    let r = state.service.link(&path, mode).await;
    let route = if redirect {
        "download_redirect"
    } else {
        "download"
    };
    metrics.request(route, r.as_ref().map_or("error", source_label));
    let a = r?;
    let mut body = source_fields(&a);
    body.insert("url".into(), json!(path.to_string()));
    body.insert("name".into(), json!(a.value.name));
    body.insert("size".into(), json!(a.value.size));
    body.insert("download_url".into(), json!(a.value.download_url));
    let body = Json(Value::Object(body));
    if redirect {
        return Ok((
            StatusCode::FOUND,
            [(header::LOCATION, a.value.download_url.clone())],
            body,
        )
            .into_response());
    }
    Ok(body.into_response())
}

/// `GET /healthz`: up, and what the token client thinks of the manager.
pub async fn healthz(State(state): State<AppState>) -> Json<Value> {
    let s = state.client.status();
    Json(json!({
        "status": "ok",
        "manager_reachable": s.manager_reachable,
        "cached_tokens": s.cached_tokens,
        "queued_reports": s.queued_reports,
        "cached_listings": state.service.cache.len(),
    }))
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.service.metrics.render(),
    )
}

/// `GET /api/openapi.json`: the web API's OpenAPI document.
pub async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}

pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        "no such route; see /api/openapi.json",
    )
}
