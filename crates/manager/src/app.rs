//! The router and the server: `app(state)` builds the `Router`, [`Manager`] opens everything
//! and serves it until the shutdown future resolves.
//!
//! Every route is wrapped in one hand-written layer, [`HttpLayer`], that does in one place
//! what used to be four layers (tower-http's `TraceLayer`, two `from_fn` middlewares, the
//! body limit). `Router::layer` wraps each route separately, and each layer costs a boxed
//! service clone and a boxed future per request, so one layer instead of four took about
//! eight allocations and as many nested polls off every request. Per request it:
//! - enters a `DEBUG` span `http` with the method and the route (the `MatchedPath`, never the
//!   URI, so query strings — which may name tokens — are never logged). It is at `DEBUG`
//!   because with the fmt subscriber an enabled span formats its fields into a `String` and
//!   takes a registry slot on creation, about 4 % of a `get`; at the default `info` level the
//!   span is not created at all (`RUST_LOG=tokenlb_manager=debug` brings it back). In its
//!   place, a 5xx answer is logged at `ERROR` with method, route and status, as the
//!   `TraceLayer`'s failure log did;
//! - counts the request in the HTTP metrics (route, method, status) and times it (route,
//!   method, status class), from the call to the answer's head;
//! - sets the security headers: the full set (CSP, frame and referrer policy, `nosniff`) on
//!   everything but JSON, `nosniff` on JSON, and `no-store` on `/api/*`;
//! - applies the body limit (`max_body_bytes`; the import route allows more).
//!
//! Unknown routes and methods answer JSON errors like every other refusal. CORS is closed: no
//! CORS headers are ever sent, so browsers keep other origins out.

use crate::error::{method_not_allowed, route_not_found};
use crate::metrics::Metrics;
use crate::routes::{admin_tokens, auth, events, lease, ops, seed_tokens, stats, ui};
use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{header, HeaderValue, Method};
use axum::response::Response;
use axum::routing::{get, patch, post};
use axum::Router;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;
use tower::{Layer, Service};
use tracing::Span;

/// Every (method, path) the router serves; the OpenAPI document is checked against it.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/token/get"),
    ("post", "/api/token/add"),
    ("delete", "/api/token/remove"),
    ("post", "/api/token/report"),
    ("post", "/api/token/renew"),
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
    ("get", "/api/proxies"),
    ("post", "/api/proxy/{name}/check"),
    ("get", "/proxy/{name}/{path}"),
    ("post", "/proxy/{name}/{path}"),
    ("put", "/proxy/{name}/{path}"),
    ("patch", "/proxy/{name}/{path}"),
    ("delete", "/proxy/{name}/{path}"),
];

/// The manager's router, ready to serve with `into_make_service_with_connect_info`.
pub fn app(state: AppState) -> Router {
    let proxies = crate::proxy::proxies(&state);
    app_with(state, proxies)
}

/// [`app`] with the proxy routes given (shared with [`Routes`]' direct proxy path).
fn app_with(state: AppState, proxies: Arc<crate::proxy::Proxies>) -> Router {
    let max_body = state.config().max_body_bytes;
    Router::new()
        .route("/api/token/get", get(lease::get))
        .route("/api/token/add", post(seed_tokens::add))
        .route(
            "/api/token/remove",
            axum::routing::delete(seed_tokens::remove),
        )
        .route("/api/token/report", post(lease::report))
        .route("/api/token/renew", post(lease::renew))
        .route("/api/token/stats", get(seed_tokens::stats))
        .route("/api/tokens", get(admin_tokens::list))
        .route("/api/tokens/{id}", patch(admin_tokens::patch))
        .route("/api/tokens/{id}/check", post(admin_tokens::check))
        .route(
            "/api/tokens/import",
            post(admin_tokens::import).layer(DefaultBodyLimit::max(admin_tokens::MAX_IMPORT_BYTES)),
        )
        .route("/api/tokens/export", get(admin_tokens::export))
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
        .merge(crate::proxy::router(proxies))
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(HttpLayer {
            metrics: state.metrics().clone(),
            body_limit: DefaultBodyLimit::max(max_body),
        })
        .with_state(state)
}

/// Stands in for something about a request before it is routed (tests set the peer address
/// with it, to exercise the loopback rule from loopback).
pub type Prepare = Arc<dyn Fn(&mut Request) + Send + Sync>;

/// What the manager serves: `GET /api/token/get`, `POST /api/token/report` and every
/// method on `/proxy/NAME[/…]` straight to their handlers, everything else through the
/// [`Router`] of [`app`].
///
/// The router's dispatch (the route table lookup, its path parameters, the `MatchedPath`
/// extension and the boxed route service) cost about 3,500 instructions of a `get`, an
/// eighth of it, and about 8,000 of a proxied request; for the routes every leased or
/// proxied call takes, a string compare does the same. Each handler is wrapped in the same
/// [`HttpLayer`] as every route, so metrics, security headers, the body limit and the
/// failure log are those of the router's route. Every other method on the lease paths
/// (`HEAD` included), and `/proxy/` paths the router's patterns would not match, go through
/// the router, which answers as before.
#[derive(Clone)]
pub struct Routes {
    get: Direct,
    report: Direct,
    /// `/proxy/NAME` and `/proxy/NAME/…`, any method (two route labels, one handler).
    proxy_name: Direct,
    proxy_path: Direct,
    router: Router,
    prepare: Option<Prepare>,
}

/// A route served without the router.
type Direct = tower::util::BoxCloneSyncService<Request, Response, Infallible>;

/// The manager's services (see [`Routes`]); `prepare` runs on every request first.
pub fn routes(state: AppState, prepare: Option<Prepare>) -> Routes {
    let layer = HttpLayer {
        metrics: state.metrics().clone(),
        body_limit: DefaultBodyLimit::max(state.config().max_body_bytes),
    };
    let mut get = layer.layer(axum::handler::Handler::with_state(
        lease::get,
        state.clone(),
    ));
    get.route = Some(GET_ROUTE);
    let mut report = layer.layer(axum::handler::Handler::with_state(
        lease::report,
        state.clone(),
    ));
    report.route = Some(REPORT_ROUTE);
    let proxies = crate::proxy::proxies(&state);
    let p = proxies.clone();
    let handler =
        move |auth: crate::auth::ClientAuth,
              axum::extract::State(svc): axum::extract::State<crate::service::TokenService>,
              req: Request| { crate::proxy::handle(auth, svc, p.clone(), req) };
    let proxy = layer.layer(axum::handler::Handler::with_state(handler, state.clone()));
    let mut proxy_name = proxy.clone();
    proxy_name.route = Some(PROXY_NAME_ROUTE);
    let mut proxy_path = proxy;
    proxy_path.route = Some(PROXY_PATH_ROUTE);
    Routes {
        get: Direct::new(get),
        report: Direct::new(report),
        proxy_name: Direct::new(proxy_name),
        proxy_path: Direct::new(proxy_path),
        router: app_with(state, proxies),
        prepare,
    }
}

/// The routes [`Routes`] serves without the router.
const GET_ROUTE: &str = "/api/token/get";
const REPORT_ROUTE: &str = "/api/token/report";
/// The proxy's routes, as the router names them (metric labels).
const PROXY_NAME_ROUTE: &str = "/proxy/{name}";
const PROXY_PATH_ROUTE: &str = "/proxy/{name}/{*path}";

impl Service<Request> for Routes {
    type Response = Response;
    type Error = Infallible;
    type Future = RoutesFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Both inner services are always ready (a Router is; so is a handler).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        if let Some(prepare) = &self.prepare {
            prepare(&mut req);
        }
        let path = req.uri().path();
        if req.method() == Method::GET && path == GET_ROUTE {
            RoutesFuture::Direct(self.get.call(req))
        } else if req.method() == Method::POST && path == REPORT_ROUTE {
            RoutesFuture::Direct(self.report.call(req))
        } else if let Some(rest) = path.strip_prefix("/proxy/") {
            // As the router's `/proxy/{name}` and `/proxy/{name}/{*path}` match: a non-empty
            // name, then nothing or `/` and a non-empty rest; anything else (`/proxy/`,
            // `/proxy/x/`) goes on to the router and its 404.
            match rest.split_once('/') {
                None if !rest.is_empty() => RoutesFuture::Direct(self.proxy_name.call(req)),
                Some((name, tail)) if !name.is_empty() && !tail.is_empty() => {
                    RoutesFuture::Direct(self.proxy_path.call(req))
                }
                _ => RoutesFuture::Router(self.router.call(req)),
            }
        } else {
            RoutesFuture::Router(self.router.call(req))
        }
    }
}

/// The answer of [`Routes`]: the fast path's or the router's. Not boxed: it lives in the
/// connection's task either way, and a box would be one more allocation per request.
#[allow(clippy::large_enum_variant)]
pub enum RoutesFuture {
    Direct(<Direct as Service<Request>>::Future),
    Router(<Router as Service<Request>>::Future),
}

impl Future for RoutesFuture {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            RoutesFuture::Direct(f) => Pin::new(f).poll(cx),
            RoutesFuture::Router(f) => Pin::new(f).poll(cx),
        }
    }
}

/// The per-route layer: span, metrics, security headers, body limit (see the module doc).
#[derive(Clone)]
pub struct HttpLayer {
    metrics: Arc<Metrics>,
    body_limit: DefaultBodyLimit,
}

impl<S> Layer<S> for HttpLayer {
    type Service = HttpService<<DefaultBodyLimit as Layer<S>>::Service>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpService {
            inner: self.body_limit.layer(inner),
            metrics: self.metrics.clone(),
            route: None,
        }
    }
}

/// The service [`HttpLayer`] wraps each route in.
#[derive(Clone)]
pub struct HttpService<S> {
    inner: S,
    metrics: Arc<Metrics>,
    /// The route's name when the service is called without the router (the fast path of
    /// [`Routes`]); otherwise the router's `MatchedPath`.
    route: Option<&'static str>,
}

impl<S> Service<Request> for HttpService<S>
where
    S: Service<Request, Response = Response>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = S::Error;
    type Future = HttpFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let route = match self.route {
            Some(name) => RouteName::Fixed(name),
            None => req
                .extensions()
                .get::<MatchedPath>()
                .cloned()
                .map_or(RouteName::Unmatched, RouteName::Matched),
        };
        let method = req.method().clone();
        let api = req.uri().path().starts_with("/api/");
        // Not created at all unless DEBUG is enabled for this module.
        let span = tracing::debug_span!("http", method = %method, route = route.as_str());
        let inner = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        HttpFuture {
            inner,
            started: Instant::now(),
            span,
            metrics: self.metrics.clone(),
            route,
            method,
            api,
        }
    }
}

/// The method as a metric label: the standard ones by name, anything a client invented as
/// `other`, so no label takes an unbounded value from a request (DESIGN §13).
pub fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// The route a request went to, for spans, metrics and the failure log.
enum RouteName {
    Fixed(&'static str),
    Matched(MatchedPath),
    Unmatched,
}

impl RouteName {
    fn as_str(&self) -> &str {
        match self {
            RouteName::Fixed(name) => name,
            RouteName::Matched(m) => m.as_str(),
            RouteName::Unmatched => "unmatched",
        }
    }
}

/// The answer of an [`HttpService`]: the route's own future, then the bookkeeping.
pub struct HttpFuture<F> {
    inner: F,
    /// When the request reached the layer (`tokenlb_http_request_duration_seconds`).
    started: Instant,
    span: Span,
    metrics: Arc<Metrics>,
    route: RouteName,
    method: Method,
    api: bool,
}

impl<F, E> Future for HttpFuture<F>
where
    F: Future<Output = Result<Response, E>> + Unpin,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let result = {
            let _entered = this.span.enter();
            ready!(Pin::new(&mut this.inner).poll(cx))
        };
        let mut response = match result {
            Ok(response) => response,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let status = response.status();
        let route = this.route.as_str();
        let method = method_label(&this.method);
        this.metrics.http(route, method, status.as_u16());
        this.metrics
            .http_duration(route, method, status.as_u16(), this.started.elapsed());
        tokenlb_listen::log_answer(
            this.method.as_str(),
            route,
            status,
            response.extensions().get::<tokenlb_listen::ErrorNote>(),
        );
        security_headers(&mut response, this.api);
        Poll::Ready(Ok(response))
    }
}

/// The Content-Security-Policy of every page: no inline script, nothing from elsewhere.
pub const CSP: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The security headers where they mean something. A JSON answer is never rendered as a
/// document, so CSP, frame and referrer policies say nothing there (about 300 bytes and
/// 1,000 instructions on every `get`); it keeps `nosniff`, so no browser reads it as
/// anything else, and `no-store` under `/api/`. Everything else (pages, scripts, styles,
/// redirects, plain text) gets the full set.
fn security_headers(response: &mut Response, api: bool) {
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if api {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if !json {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
}
