//! Admin UI login, logout and "who am I" (manager-contract.md).
//!
//! Login checks the per-address failure limiter first (429 + Retry-After), then verifies the
//! password against its argon2 hash on a blocking thread. Success drops any session the
//! browser already had and issues a fresh id (no session fixation) in an HttpOnly,
//! SameSite=Strict cookie, and returns the session's CSRF token for the page to send back.

use crate::auth::{PeerIp, SessionCookie};
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::session::COOKIE_NAME;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr};

const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub username: String,
    pub password: String,
}

fn cookie(state: &AppState, value: &str, clear: bool) -> HeaderValue {
    let mut c = format!("{COOKIE_NAME}={value}; HttpOnly; SameSite=Strict; Path=/");
    if clear {
        c.push_str("; Max-Age=0");
    }
    if state.config.admin.cookie_secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c)
        .unwrap_or_else(|_| HeaderValue::from_static("tokenlb_session=; Path=/"))
}

pub async fn login(
    State(state): State<AppState>,
    PeerIp(peer): PeerIp,
    SessionCookie(old): SessionCookie,
    ApiJson(b): ApiJson<LoginBody>,
) -> ApiResult<Response> {
    let ip = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if let Err(wait) = state.login_limiter.begin_attempt(ip) {
        tracing::warn!(client = %ip, "login refused: too many failed attempts");
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!("too many failed logins; try again in {wait} s"),
        )
        .with_retry_after(wait));
    }
    let ok = b.password.len() <= MAX_PASSWORD_BYTES
        && state.keys.verify_login(&b.username, b.password).await;
    if !ok {
        tracing::warn!(client = %ip, "failed admin login");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "wrong user name or password",
        ));
    }
    state.login_limiter.record_success(ip);
    if let Some(old) = old {
        state.sessions.remove(&old);
    }
    let (id, session) = state.sessions.create(&state.keys.admin_user);
    tracing::info!(client = %ip, "admin logged in");
    let mut response =
        Json(json!({ "username": session.username, "csrf_token": session.csrf_token }))
            .into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&state, &id, false));
    Ok(response)
}

pub async fn logout(State(state): State<AppState>, SessionCookie(id): SessionCookie) -> Response {
    if let Some(id) = id {
        state.sessions.remove(&id);
    }
    let mut response = Json(json!({ "ok": true })).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&state, "", true));
    response
}

pub async fn me(
    State(state): State<AppState>,
    SessionCookie(id): SessionCookie,
) -> ApiResult<Json<serde_json::Value>> {
    let session = id
        .and_then(|id| state.sessions.touch(&id))
        .ok_or_else(|| ApiError::unauthorized("not logged in"))?;
    Ok(Json(
        json!({ "username": session.username, "csrf_token": session.csrf_token }),
    ))
}
