//! The router and the server: `app(state)` builds the `Router`, [`Manager`] opens everything
//! and serves it until the shutdown future resolves.
//!
//! Layers, outermost first: request tracing (span named by the matched route, never the
//! query string), HTTP metrics, security headers on every answer (and `no-store` on
//! `/api/*`), and the body limit (`max_body_bytes`; the import route allows more). Unknown
//! routes and methods answer JSON errors like every other refusal. CORS is closed: no CORS
//! headers are ever sent, so browsers keep other origins out.

use crate::error::{method_not_allowed, route_not_found};
use crate::routes::{auth, events, lease, ops, stats, token, tokens, ui};
use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, patch, post};
use axum::Router;
use tower_http::trace::TraceLayer;

/// Every (method, path) the router serves; the OpenAPI document is checked against it.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/token/get"),
    ("post", "/api/token/add"),
    ("delete", "/api/token/remove"),
    ("post", "/api/token/report"),
    ("get", "/api/token/stats"),
    ("get", "/api/tokens"),
    ("patch", "/api/tokens/{id}"),
    ("post", "/api/tokens/{id}/check"),
    ("post", "/api/tokens/import"),
    ("get", "/api/tokens/export"),
    ("get", "/api/events"),
    ("get", "/api/stats/minutes"),
    ("get", "/api/pools"),
    ("post", "/api/auth/login"),
    ("post", "/api/auth/logout"),
    ("get", "/api/auth/me"),
    ("get", "/"),
    ("get", "/login"),
    ("get", "/assets/{file}"),
    ("get", "/metrics"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/api/openapi.json"),
];

/// The manager's router, ready to serve with `into_make_service_with_connect_info`.
pub fn app(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    Router::new()
        .route("/api/token/get", get(lease::get))
        .route("/api/token/add", post(token::add))
        .route("/api/token/remove", axum::routing::delete(token::remove))
        .route("/api/token/report", post(lease::report))
        .route("/api/token/stats", get(token::stats))
        .route("/api/tokens", get(tokens::list))
        .route("/api/tokens/{id}", patch(tokens::patch))
        .route("/api/tokens/{id}/check", post(tokens::check))
        .route(
            "/api/tokens/import",
            post(tokens::import).layer(DefaultBodyLimit::max(tokens::MAX_IMPORT_BYTES)),
        )
        .route("/api/tokens/export", get(tokens::export))
        .route("/api/events", get(events::events))
        .route("/api/stats/minutes", get(stats::minutes))
        .route("/api/pools", get(stats::pools))
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/logout", post(auth::logout))
        .route("/api/auth/me", get(auth::me))
        .route("/", get(ui::index))
        .route("/login", get(ui::login_page))
        .route("/assets/{file}", get(ui::file))
        .route("/metrics", get(ops::metrics))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/api/openapi.json", get(ops::openapi))
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map(MatchedPath::as_str)
                .unwrap_or("unmatched");
            tracing::info_span!("http", method = %req.method(), route)
        }))
        .with_state(state)
}

/// The Content-Security-Policy of every answer: no inline script, nothing from elsewhere.
pub const CSP: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

async fn security_headers(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if api {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().as_str().to_string();
    let response = next.run(req).await;
    state
        .metrics
        .http(&route, &method, response.status().as_u16());
    response
}
