//! Proxy mode (DESIGN §10): `[[proxy]]` routes served at `/proxy/NAME/…`, so a caller uses
//! an upstream API through the pool without ever seeing a token.
//!
//! Per request: the caller is admitted as for `get` ([`ClientAuth`]; a route's name is a
//! pool scope), its body is kept for a replay when it fits in [`forward::MAX_REPLAY`], then
//! for each attempt a token is leased through [`TokenService::lease`], injected
//! ([`forward`]), the answer's head classified ([`crate::service::proxy`]) and, when another
//! token may do better (auth / rate_limited / quota / transient) and nothing has been sent
//! to the caller, the outcome is reported and the next token tried. The answer that is
//! delivered streams through [`relay::Relay`], which holds the lease until the body ends (or
//! the caller hangs up) and then reports it through [`TokenService::report`], the same door
//! as a reported lease: state machine, stats, events and metrics see no difference.
//!
//! The forwarding client is one pooled keep-alive hyper-util client (rustls) for every
//! route; redirects are passed to the caller, never followed.

pub mod admin;
pub mod forward;
pub mod relay;

use crate::auth::ClientAuth;
use crate::config::ProxyConfig;
use crate::error::ApiError;
use crate::service::proxy::{retryable, Rules, Verdict, BODY_PEEK};
use crate::service::{LeaseRequest, Picked, ReportRequest, Scope, TokenService};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Extension, Router};
use forward::Outgoing;
use relay::Held;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokenlb_core::{OutcomeClass, TokenId};

/// Picks tried per attempt before giving up on finding a token not yet tried.
const PICKS_PER_ATTEMPT: usize = 3;

/// Every configured route and the one client they share.
pub struct Proxies {
    routes: BTreeMap<String, Arc<Route>>,
    client: forward::Client,
}

/// One route: its configuration, parsed rules and counters.
pub struct Route {
    pub config: ProxyConfig,
    /// `config.upstream`, parsed once.
    base: Option<forward::Base>,
    rules: Rules,
    /// Attempts by outcome class, in [`OutcomeClass::ALL`] order (the admin UI shows them).
    counts: [AtomicU64; 7],
}

impl Route {
    fn new(config: ProxyConfig) -> Route {
        Route {
            rules: Rules::new(&config.rules),
            base: forward::base(&config),
            config,
            counts: Default::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn pool(&self) -> &str {
        self.config.pool_name()
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.config.timeout_s)
    }

    /// Counts one forwarded request's outcome.
    fn count(&self, svc: &TokenService, class: OutcomeClass) {
        let i = OutcomeClass::ALL
            .iter()
            .position(|c| *c == class)
            .unwrap_or(6);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        svc.metrics().proxy_request(self.name(), class);
    }

    /// Attempts so far by class name.
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        OutcomeClass::ALL
            .iter()
            .zip(&self.counts)
            .map(|(c, n)| (c.as_str(), n.load(Ordering::Relaxed)))
            .collect()
    }
}

impl Proxies {
    /// The routes of the configuration; makes sure their pools exist.
    pub fn new(svc: &TokenService) -> Proxies {
        let routes = svc
            .config()
            .proxy
            .iter()
            .map(|p| {
                if let Err(e) = svc.pool_or_create(p.pool_name()) {
                    tracing::warn!(route = %p.name, "proxy route's pool: {e}");
                }
                (p.name.clone(), Arc::new(Route::new(p.clone())))
            })
            .collect();
        Proxies {
            routes,
            client: forward::client(),
        }
    }

    pub fn route(&self, name: &str) -> Option<&Arc<Route>> {
        self.routes.get(name)
    }

    pub fn routes(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.routes.values()
    }
}

/// The configured routes, made once per manager: the router's proxy and admin routes and
/// the direct path of [`crate::app::Routes`] share them.
pub fn proxies(state: &AppState) -> Arc<Proxies> {
    Arc::new(Proxies::new(state.service()))
}

/// The proxy routes and their admin routes, merged into the manager's router.
pub fn router(proxies: Arc<Proxies>) -> Router<AppState> {
    let p = proxies.clone();
    let handler = move |auth: ClientAuth, State(svc): State<TokenService>, req: Request| {
        handle(auth, svc, p.clone(), req)
    };
    Router::new()
        .route("/proxy/{name}", any(handler.clone()))
        .route("/proxy/{name}/{*path}", any(handler))
        .route("/api/proxies", get(admin::list))
        .route("/api/proxy/{name}/check", post(admin::check))
        .layer(Extension(proxies))
}

/// `/proxy/NAME/<path>`: the route's name and the rest of the path, as sent (still
/// percent-encoded).
fn split_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/proxy/")?;
    Some(rest.split_once('/').unwrap_or((rest, "")))
}

fn unknown_route(name: &str) -> ApiError {
    ApiError::not_found(format!("no proxy route {name:?} is configured"))
}

/// Any method on `/proxy/NAME/…` (through the router, or straight from
/// [`crate::app::Routes`]).
pub async fn handle(
    ClientAuth(scope): ClientAuth,
    svc: TokenService,
    proxies: Arc<Proxies>,
    req: Request,
) -> Result<Response, ApiError> {
    let (name, _) = split_path(req.uri().path()).unwrap_or_default();
    let route = proxies
        .route(name)
        .ok_or_else(|| unknown_route(name))?
        .clone();
    let scope = scope.for_route(route.name(), route.pool())?;
    let (parts, body) = req.into_parts();
    let body = Outgoing::read(body).await?;
    let call = Call {
        svc: &svc,
        client: &proxies.client,
        route: &route,
        scope: &scope,
        parts: &parts,
    };
    call.run(body, route.config.retries).await
}

/// One proxied request in progress.
pub(crate) struct Call<'a> {
    pub svc: &'a TokenService,
    pub client: &'a forward::Client,
    pub route: &'a Arc<Route>,
    pub scope: &'a Scope,
    pub parts: &'a axum::http::request::Parts,
}

/// An attempt's result.
pub(crate) struct Tried {
    pub token_id: TokenId,
    pub held: Held,
    pub secret: tokenlb_core::Secret,
    pub verdict: Verdict,
    pub latency_ms: u32,
    /// The answer, or why there is none (connection error, timeout).
    pub answer: Result<forward::Answer, String>,
    /// The body prefix read for the rules (it goes to the caller first).
    pub peeked: bytes::Bytes,
}

impl Call<'_> {
    /// Attempts until an answer is worth delivering; delivers it.
    async fn run(&self, mut body: Outgoing, retries: u32) -> Result<Response, ApiError> {
        let mut tried: Vec<TokenId> = Vec::new();
        let mut last: Option<Tried> = None;
        for attempt in 0..=retries {
            let wait_ms = if attempt == 0 {
                self.route.config.wait_ms
            } else {
                0
            };
            let picked = match self.lease(&tried, wait_ms).await {
                Ok(p) => p,
                Err(e) => match last {
                    Some(t) => return self.deliver(t, tried.len()).await,
                    None => return Err(e),
                },
            };
            let mut t = self.attempt(picked, body.replay()).await;
            tried.push(t.token_id.clone());
            let again = retryable(t.verdict.class) && attempt < retries && body.replayable();
            if !again {
                return self.deliver(t, tried.len()).await;
            }
            let status = t.answer.as_ref().ok().map(|a| a.status().as_u16());
            tracing::debug!(route = %self.route.name(), token = %t.token_id, class = t.verdict.class.as_str(), ?status, "proxy: trying another token");
            self.settle(&mut t).await;
            last = Some(t);
        }
        Err(ApiError::internal("proxy: no attempt was made"))
    }

    /// Leases a token not tried yet (a token tried already is handed back unused).
    async fn lease(&self, tried: &[TokenId], wait_ms: u64) -> Result<Picked, ApiError> {
        for _ in 0..PICKS_PER_ATTEMPT {
            let request = LeaseRequest {
                scope: self.scope,
                pool: Some(self.route.pool()),
                strategy: self.route.config.strategy.map(|s| s.as_str()),
                wait_ms,
            };
            let (picked, _) = self.svc.lease(request).await?;
            if !tried.contains(&picked.lease.token_id) {
                return Ok(picked);
            }
            Held::new(self.svc, self.scope, self.route, &picked.lease_id)
                .release()
                .await;
            if tried.len() + 1 >= self.pool_size() {
                break;
            }
        }
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_token_available",
            "no other token of the pool is eligible",
        )
        .with_retry_after(1))
    }

    fn pool_size(&self) -> usize {
        self.svc
            .pool_by_name(self.route.pool())
            .map_or(0, |h| h.lock().len())
    }

    /// One forwarded request with the leased token.
    pub(crate) async fn attempt(&self, picked: Picked, body: axum::body::Body) -> Tried {
        let Picked { lease, lease_id } = picked;
        let held = Held::new(self.svc, self.scope, self.route, &lease_id);
        let request = forward::request(
            &self.route.config,
            self.route.base.as_ref(),
            self.parts,
            &lease.secret,
            body,
        );
        let started = Instant::now();
        let sent = match request {
            Some(r) => tokio::time::timeout(self.route.timeout(), self.client.request(r))
                .await
                .map(|r| r.map_err(Some)),
            None => Ok(Err(None)),
        };
        let mut peeked = bytes::Bytes::new();
        let (answer, verdict) = match sent {
            Err(_) => (Err("upstream timed out".to_string()), transient()),
            Ok(Err(None)) => (
                Err("the target URL is not valid".to_string()),
                client_error(),
            ),
            Ok(Err(Some(e))) => (Err(describe(&e)), transient()),
            Ok(Ok(mut resp)) => {
                let status = resp.status().as_u16();
                if self.route.rules.needs_body(status) {
                    peeked = forward::peek(&mut resp, BODY_PEEK, self.route.timeout()).await;
                }
                let v = self.route.rules.classify(
                    status,
                    resp.headers(),
                    &peeked,
                    crate::service::now_ms(),
                );
                (Ok(resp), v)
            }
        };
        let latency_ms = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
        Tried {
            token_id: lease.token_id,
            held,
            secret: lease.secret,
            verdict,
            latency_ms,
            answer,
            peeked,
        }
    }

    /// Reports an attempt that is not delivered (another token is tried next).
    async fn settle(&self, t: &mut Tried) {
        let report = self.report_of(t);
        t.held.report_now(&report).await;
    }

    pub(crate) fn report_of(&self, t: &Tried) -> ReportRequest {
        let status = t.answer.as_ref().ok().map(|a| a.status().as_u16());
        let error = match &t.answer {
            Err(e) => Some(e.clone()),
            Ok(_) if t.verdict.class != OutcomeClass::Success => {
                status.map(|s| format!("proxy {}: upstream answered HTTP {s}", self.route.name()))
            }
            Ok(_) => None,
        };
        ReportRequest {
            outcome: Some(t.verdict.class),
            latency_ms: Some(t.latency_ms),
            status,
            retry_after_s: t.verdict.retry_after_s,
            error,
            ..ReportRequest::default()
        }
    }

    /// Sends an attempt's answer to the caller. A success keeps its lease until the body
    /// has gone out; any other class is reported at once.
    async fn deliver(&self, t: Tried, attempts: usize) -> Result<Response, ApiError> {
        let report = self.report_of(&t);
        let Tried {
            token_id,
            mut held,
            secret,
            verdict,
            answer,
            peeked,
            ..
        } = t;
        let resp = match answer {
            Ok(resp) => resp,
            Err(reason) => {
                held.report_now(&report).await;
                let mut e = ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "upstream_unreachable",
                    format!("proxy {}: {reason}", self.route.name()),
                )
                .into_response();
                forward::tag(e.headers_mut(), &token_id, attempts);
                return Ok(e);
            }
        };
        let held = if verdict.class == OutcomeClass::Success {
            held.keep_for_stream(report)
        } else {
            held.report_now(&report).await;
            None
        };
        let timeout = self.route.timeout();
        Ok(forward::response(
            resp, peeked, held, &secret, &token_id, attempts, timeout,
        ))
    }
}

/// Why a request failed, in words that never name the URL (it may carry the token).
pub fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let what = if e.is_connect() {
        "cannot connect to the upstream"
    } else {
        "request failed"
    };
    match causes(e) {
        Some(cause) => format!("{what}: {cause}"),
        None => what.to_string(),
    }
}

/// The innermost causes of an error, joined (`tcp connect error: Connection refused`);
/// neither hyper's nor the connector's messages carry the URL.
pub(crate) fn causes(e: &dyn std::error::Error) -> Option<String> {
    let mut parts = Vec::new();
    let mut next = e.source();
    while let Some(c) = next {
        parts.push(c.to_string());
        next = c.source();
    }
    (!parts.is_empty()).then(|| parts.join(": "))
}

fn client_error() -> Verdict {
    Verdict {
        class: OutcomeClass::ClientError,
        retry_after_s: None,
        rule: None,
    }
}

fn transient() -> Verdict {
    Verdict {
        class: OutcomeClass::Transient,
        retry_after_s: None,
        rule: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_paths_split_into_route_and_rest() {
        assert_eq!(
            split_path("/proxy/openai/v1/models"),
            Some(("openai", "v1/models"))
        );
        assert_eq!(split_path("/proxy/openai"), Some(("openai", "")));
        assert_eq!(split_path("/proxy/openai/"), Some(("openai", "")));
        assert_eq!(split_path("/api/x"), None);
    }
}
