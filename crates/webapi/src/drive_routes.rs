//! The HTTP routes of the drive's writes and quota (DESIGN §11):
//!
//! - `POST /api/folders {"path":"A/B"}` → `201 {"path","entry"}`;
//! - `POST /api/rename {"path":"A/f.mp4","name":"g.mp4"}` → `200 {"path","entry"}`;
//! - `POST /api/move` and `POST /api/copy {"paths":["A/f.mp4"],"to":"B"}` →
//!   `200 {"moved"|"copied":[{"from","to"}]}`;
//! - `DELETE /api/files {"paths":["A/f.mp4"]}` → `200 {"deleted":[…]}`;
//! - `PUT /api/upload?path=A/new.bin` (the file as the body) → `201 {"path","entry"}`;
//! - `GET /api/usage[?realtime=]` → `{"used_bytes","total_bytes","source","cached_at","stale"}`.
//!
//! Writes need the web API key ([`crate::auth`]); `usage` is a read and stays open. Bodies
//! are JSON with exactly these fields; a body that is not, a bad path, a missing parent, a
//! name taken or a folder moved into itself is a 4xx naming the problem.

use crate::auth;
use crate::cache::Entry;
use crate::error::{ApiError, ApiResult};
use crate::names::DrivePath;
use crate::render::{entry_json, rfc3339};
use crate::service::Mode;
use crate::AppState;
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathBody {
    pub path: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameBody {
    pub path: String,
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    pub paths: Vec<String>,
    pub to: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathsBody {
    pub paths: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    pub path: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct UsageQuery {
    pub realtime: Option<String>,
}

fn body<T>(b: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    b.map(|Json(v)| v)
        .map_err(|r| ApiError::bad_request(format!("request body: {}", r.body_text())))
}

fn entry_path(raw: &str, what: &str) -> ApiResult<DrivePath> {
    let p = DrivePath::parse(raw, what, false).map_err(|e| ApiError::bad_request(e.0))?;
    Ok(p)
}

fn paths(raw: &[String]) -> ApiResult<Vec<DrivePath>> {
    raw.iter().map(|p| entry_path(p, "paths")).collect()
}

fn entry_answer(status: StatusCode, path: &DrivePath, e: &Entry) -> Response {
    (
        status,
        Json(json!({ "path": path.to_string(), "entry": entry_json(e) })),
    )
        .into_response()
}

/// Counts the request by route and outcome.
fn counted<T>(state: &AppState, route: &'static str, r: ApiResult<T>) -> ApiResult<T> {
    state
        .service
        .metrics
        .request(route, if r.is_ok() { "realtime" } else { "error" });
    r
}

/// `POST /api/folders {"path"}`.
pub async fn create_folder(
    State(state): State<AppState>,
    headers: HeaderMap,
    b: Result<Json<PathBody>, JsonRejection>,
) -> ApiResult<Response> {
    auth::require(&headers, &state.api_key)?;
    let b = body(b)?;
    let path = entry_path(&b.path, "path")?;
    let e = counted(&state, "mkdir", state.service.create_folder(&path).await)?;
    Ok(entry_answer(StatusCode::CREATED, &path, &e))
}

/// `POST /api/rename {"path","name"}`.
pub async fn rename(
    State(state): State<AppState>,
    headers: HeaderMap,
    b: Result<Json<RenameBody>, JsonRejection>,
) -> ApiResult<Response> {
    auth::require(&headers, &state.api_key)?;
    let b = body(b)?;
    let path = entry_path(&b.path, "path")?;
    let e = counted(&state, "rename", state.service.rename(&path, &b.name).await)?;
    let new_path = path
        .split_last()
        .map(|(parent, _)| parent.child(&e.name))
        .unwrap_or(path);
    Ok(entry_answer(StatusCode::OK, &new_path, &e))
}

async fn transfer(
    state: AppState,
    headers: HeaderMap,
    b: Result<Json<TransferBody>, JsonRejection>,
    moving: bool,
) -> ApiResult<Response> {
    auth::require(&headers, &state.api_key)?;
    let b = body(b)?;
    let sources = paths(&b.paths)?;
    let to = DrivePath::parse(&b.to, "to", true).map_err(|e| ApiError::bad_request(e.0))?;
    let route = if moving { "move" } else { "copy" };
    let done = counted(
        &state,
        route,
        state.service.transfer(&sources, &to, moving).await,
    )?;
    let list: Vec<Value> = done
        .iter()
        .map(|(from, to)| json!({ "from": from.to_string(), "to": to.to_string() }))
        .collect();
    let key = if moving { "moved" } else { "copied" };
    Ok(Json(json!({ key: list })).into_response())
}

/// `POST /api/move {"paths","to"}`.
pub async fn move_entries(
    State(state): State<AppState>,
    headers: HeaderMap,
    b: Result<Json<TransferBody>, JsonRejection>,
) -> ApiResult<Response> {
    transfer(state, headers, b, true).await
}

/// `POST /api/copy {"paths","to"}`.
pub async fn copy_entries(
    State(state): State<AppState>,
    headers: HeaderMap,
    b: Result<Json<TransferBody>, JsonRejection>,
) -> ApiResult<Response> {
    transfer(state, headers, b, false).await
}

/// `DELETE /api/files {"paths"}`.
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    b: Result<Json<PathsBody>, JsonRejection>,
) -> ApiResult<Response> {
    auth::require(&headers, &state.api_key)?;
    let b = body(b)?;
    let sources = paths(&b.paths)?;
    let gone = counted(&state, "delete", state.service.delete(&sources).await)?;
    let list: Vec<String> = gone.iter().map(|p| p.to_string()).collect();
    Ok(Json(json!({ "deleted": list })).into_response())
}

/// `PUT /api/upload?path=A/new.bin`, the file as the body.
pub async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<UploadQuery>, QueryRejection>,
    body: Body,
) -> ApiResult<Response> {
    auth::require(&headers, &state.api_key)?;
    let Query(q) = q?;
    let raw = q
        .path
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("path is required: /api/upload?path=FOLDER/NAME"))?;
    let path = entry_path(raw, "path")?;
    let size = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::LENGTH_REQUIRED,
                "length_required",
                "an upload needs Content-Length (Wopan is told the size before the first part)",
            )
        })?;
    if size > state.max_upload_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("uploads are limited to {} bytes", state.max_upload_bytes),
        ));
    }
    let r = state.service.upload(&path, size, body, state.renewal).await;
    let e = counted(&state, "upload", r)?;
    Ok(entry_answer(StatusCode::CREATED, &path, &e))
}

/// `GET /api/usage[?realtime=]`.
pub async fn usage(
    State(state): State<AppState>,
    q: Result<Query<UsageQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = q?;
    let mode = Mode::from_param(crate::routes::flag("realtime", q.realtime.as_deref())?);
    let r = state.service.usage(mode).await;
    let label = match &r {
        Ok(a) if a.realtime => "realtime",
        Ok(a) if a.stale => "stale",
        Ok(_) => "cache",
        Err(_) => "error",
    };
    state.service.metrics.request("usage", label);
    let a = r?;
    Ok(Json(json!({
        "used_bytes": a.value.used_bytes,
        "total_bytes": a.value.total_bytes,
        "source": if a.realtime { "realtime" } else { "cache" },
        "cached_at": rfc3339(a.cached_at),
        "stale": a.stale,
    }))
    .into_response())
}
