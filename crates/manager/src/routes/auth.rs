//! Admin UI login, logout and "who am I" (manager-contract.md).
//!
//! Login checks the per-address failure limiter first (429 + Retry-After), then verifies the
//! password against its argon2 hash on a blocking thread. Success drops any session the
//! browser already had and issues a fresh id (no session fixation) in an HttpOnly,
//! SameSite=Strict cookie, and returns the session's CSRF token for the page to send back.

use crate::auth::Auth;
use crate::auth::{PeerIp, SessionCookie};
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::session::COOKIE_NAME;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub username: String,
    pub password: String,
}

fn cookie(auth: &Auth, value: &str, clear: bool) -> HeaderValue {
    let mut c = format!("{COOKIE_NAME}={value}; HttpOnly; SameSite=Strict; Path=/");
    if clear {
        c.push_str("; Max-Age=0");
    }
    if auth.cookie_secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c)
        .unwrap_or_else(|_| HeaderValue::from_static("tokenlb_session=; Path=/"))
}

pub async fn login(
    State(auth): State<Arc<Auth>>,
    PeerIp(peer): PeerIp,
    SessionCookie(old): SessionCookie,
    ApiJson(b): ApiJson<LoginBody>,
) -> ApiResult<Response> {
    let ip = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let (id, session) = auth.login(ip, &b.username, b.password, old).await?;
    let body = json!({ "username": session.username, "csrf_token": session.csrf_token });
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&auth, &id, false));
    Ok(response)
}

pub async fn logout(State(auth): State<Arc<Auth>>, SessionCookie(id): SessionCookie) -> Response {
    if let Some(id) = id {
        auth.sessions.remove(&id);
    }
    let mut response = Json(json!({ "ok": true })).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&auth, "", true));
    response
}

pub async fn me(
    State(auth): State<Arc<Auth>>,
    SessionCookie(id): SessionCookie,
) -> ApiResult<Json<serde_json::Value>> {
    let session = id
        .and_then(|id| auth.sessions.touch(&id))
        .ok_or_else(|| ApiError::unauthorized("not logged in"))?;
    Ok(Json(
        json!({ "username": session.username, "csrf_token": session.csrf_token }),
    ))
}
