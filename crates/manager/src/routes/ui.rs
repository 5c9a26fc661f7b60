//! The admin UI pages and their embedded static files.
//!
//! Every file of `crates/manager/assets/` is compiled in by `build.rs`. `/` serves the
//! dashboard to a logged-in admin and redirects anyone else to `/login`; `/assets/{file}`
//! serves a file with its content type and an ETag (revalidated, `Cache-Control: no-cache`),
//! and answers 404 for an unknown name so a missing module is visible.

use crate::auth::Auth;
use crate::auth::SessionCookie;
use crate::error::{ApiError, ApiPath};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

/// An embedded file by name.
pub fn asset(name: &str) -> Option<&'static [u8]> {
    embedded::ASSETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, b)| *b)
}

/// Names of all embedded files.
pub fn asset_names() -> impl Iterator<Item = &'static str> {
    embedded::ASSETS.iter().map(|(n, _)| *n)
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(body) = asset(name) else {
        return ApiError::not_found(format!("no asset named {name:?}")).into_response();
    };
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(body))[..20]);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type(name))], body).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    response
}

pub async fn index(
    State(auth): State<Arc<Auth>>,
    SessionCookie(id): SessionCookie,
    headers: HeaderMap,
) -> Response {
    match id.and_then(|id| auth.sessions.touch(&id)) {
        Some(_) => serve("index.html", &headers),
        None => Redirect::to("/login").into_response(),
    }
}

pub async fn login_page(headers: HeaderMap) -> Response {
    serve("login.html", &headers)
}

pub async fn file(ApiPath(name): ApiPath<String>, headers: HeaderMap) -> Response {
    serve(&name, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_embedded_with_types() {
        assert!(asset("index.html").is_some());
        assert!(asset("login.html").is_some());
        assert!(asset("nope.js").is_none());
        assert_eq!(content_type("app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("style.css"), "text/css; charset=utf-8");
    }
}
