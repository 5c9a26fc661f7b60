//! The lease routes: `GET /api/token/get` and `POST /api/token/report` (DESIGN §3).
//!
//! `get` answers the seed's shape `{"token","id","name","pool","lease","lease_expires_at"}`.
//! A lease id is `<pool index>.<lease number>`, so `report` finds the pool without a lookup
//! table. `get` with `wait_ms` waits on the pool's `Notify` (woken by reports, ticks, adds
//! and patches) rather than polling; with nothing eligible it answers 503 with `Retry-After`
//! (the earliest known recovery, at least 1 s). `report` takes the lease form or the seed's
//! `{"token"|"id","success"}` form.

use crate::auth::ClientAuth;
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use crate::routes::token::{resolve, ByTokenOrId};
use crate::state::{now_ms, AppState, PoolHandle};
use crate::tasks::change_events;
use crate::validate;
use crate::views;
use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokenlb_core::{LeaseId, Outcome, OutcomeClass, PoolError, Strategy, TokenId, TokenState};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetQuery {
    pub strategy: Option<String>,
    pub pool: Option<String>,
    pub wait_ms: Option<u64>,
}

impl GetQuery {
    /// The common query strings without the generic decoder: `key=value` pairs of known keys,
    /// each at most once, nothing to percent- or plus-decode, a `wait_ms` that is a number.
    /// `None` for anything else, which then goes through [`ApiQuery`] (same result, and its
    /// refusals word every error).
    fn parse_plain(query: Option<&str>) -> Option<GetQuery> {
        let mut q = GetQuery::default();
        let query = query.unwrap_or("");
        if query.is_empty() {
            return Some(q);
        }
        if query.contains(['%', '+']) {
            return None;
        }
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=')?;
            match key {
                "strategy" if q.strategy.is_none() => q.strategy = Some(value.to_string()),
                "pool" if q.pool.is_none() => q.pool = Some(value.to_string()),
                "wait_ms" if q.wait_ms.is_none() => q.wait_ms = Some(value.parse().ok()?),
                _ => return None,
            }
        }
        Some(q)
    }
}

/// `get`'s query: [`GetQuery::parse_plain`], else [`ApiQuery`].
pub struct GetParams(pub GetQuery);

impl FromRequestParts<AppState> for GetParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        if let Some(q) = GetQuery::parse_plain(parts.uri.query()) {
            return Ok(GetParams(q));
        }
        let ApiQuery(q) = ApiQuery::<GetQuery>::from_request_parts(parts, state).await?;
        Ok(GetParams(q))
    }
}

/// Finds a pool by name (default `default`), 404 if unknown.
pub fn named_pool(state: &AppState, name: Option<&str>) -> ApiResult<Arc<PoolHandle>> {
    let name = name.unwrap_or(crate::config::DEFAULT_POOL);
    state.pool_by_name(name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_pool",
            format!("no pool named {name:?}"),
        )
    })
}

pub(crate) fn lease_string(pool: usize, lease: LeaseId) -> String {
    format!("{pool}.{}", lease.0)
}

/// A JSON answer serialized straight into one buffer of about the right size (no
/// `serde_json::Value` tree, no regrowth).
fn json_answer(value: &impl Serialize, capacity: usize) -> ApiResult<Response> {
    let mut body = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut body, value).map_err(ApiError::internal)?;
    let mut response = Response::new(Body::from(body));
    // Room for every header the answer gets on its way out (content type and length, the
    // security headers), so the map is not regrown on the way.
    *response.headers_mut() = HeaderMap::with_capacity(8);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// `get`'s answer (the seed's shape); fields in the order `serde_json`'s sorted maps used.
#[derive(Serialize)]
struct LeaseAnswer<'a> {
    id: &'a TokenId,
    lease: &'a str,
    lease_expires_at: Option<String>,
    name: &'a str,
    pool: &'a str,
    token: &'a str,
}

/// `report`'s answer.
#[derive(Serialize)]
struct ReportAnswer<'a> {
    id: &'a TokenId,
    ok: bool,
    state: Option<TokenState>,
}

fn parse_lease(text: &str) -> Option<(usize, LeaseId)> {
    let (pool, n) = text.split_once('.')?;
    Some((pool.parse().ok()?, LeaseId(n.parse().ok()?)))
}

pub async fn get(
    _: ClientAuth,
    State(state): State<AppState>,
    GetParams(q): GetParams,
) -> ApiResult<Response> {
    let strategy: Option<Strategy> = match q.strategy.as_deref() {
        None | Some("") => None,
        Some(s) => Some(s.parse().map_err(|_| {
            ApiError::new(StatusCode::BAD_REQUEST, "unknown_strategy", format!(
                "unknown strategy {s:?}; use one of round_robin, best, weighted, random, least_in_flight, latency"
            ))
        })?),
    };
    let wait_ms = q.wait_ms.unwrap_or(0);
    if wait_ms > validate::MAX_WAIT_MS {
        return Err(ApiError::invalid(format!(
            "wait_ms must be at most {}",
            validate::MAX_WAIT_MS
        )));
    }
    let handle = named_pool(&state, q.pool.as_deref())?;
    let strategy = strategy.unwrap_or_else(|| handle.pool.lock().policy().strategy);
    // Read the clock only when the caller may wait.
    let deadline = (wait_ms > 0).then(|| Instant::now() + Duration::from_millis(wait_ms));
    loop {
        let notified = handle.notify.notified();
        tokio::pin!(notified);
        if deadline.is_some() {
            // Registered before the pick, so a report between the pick and the wait is not
            // missed. Without waiting there is nothing to miss, and the Notify's lock is
            // not taken on every get.
            notified.as_mut().enable();
        }
        let picked = crate::cluster::pick::pick(&state, &handle, strategy).await;
        let unavailable = match picked {
            Ok(crate::cluster::pick::Picked { lease, lease_id }) => {
                state.metrics.pick(strategy, &handle.name);
                let answer = LeaseAnswer {
                    id: &lease.token_id,
                    lease: &lease_id,
                    lease_expires_at: views::rfc3339(Some(lease.deadline)),
                    name: &lease.name,
                    pool: &handle.name,
                    token: lease.secret.expose(),
                };
                return json_answer(&answer, 256);
            }
            Err(u) => u,
        };
        let retry_in = unavailable.retry_at.map(|t| t.saturating_sub(now_ms()));
        let now = Instant::now();
        let deadline = match deadline {
            Some(d) if now < d => d,
            _ => {
                state.metrics.unavailable();
                let secs = retry_in.map_or(5, |ms| ms.div_ceil(1000)).max(1);
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no_token_available",
                    unavailable.reason,
                )
                .with_retry_after(secs));
            }
        };
        // Sleep until woken, the caller's deadline, the known recovery time, or 1 s at most
        // (limits such as rpm windows free up without an event).
        let mut nap = (deadline - now).min(Duration::from_secs(1));
        if let Some(ms) = retry_in {
            nap = nap.min(Duration::from_millis(ms.max(10)));
        }
        let mut closing = state.closing.subscribe();
        tokio::select! {
            _ = tokio::time::timeout(nap, notified) => {}
            _ = closing.wait_for(|c| *c) => {
                return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the manager is shutting down")
                    .with_retry_after(1));
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    pub lease: Option<String>,
    pub outcome: Option<OutcomeClass>,
    pub latency_ms: Option<u32>,
    pub status: Option<u16>,
    pub retry_after_s: Option<u64>,
    pub error: Option<String>,
    pub token: Option<String>,
    pub id: Option<TokenId>,
    pub success: Option<bool>,
}

fn outcome_of(b: &ReportBody) -> ApiResult<Outcome> {
    let class = match (b.outcome, b.success) {
        (Some(c), _) => c,
        (None, Some(true)) => OutcomeClass::Success,
        (None, Some(false)) => OutcomeClass::Transient,
        (None, None) => {
            return Err(ApiError::invalid(
                "give \"outcome\" (or the seed's \"success\": bool)",
            ))
        }
    };
    Ok(Outcome {
        class,
        latency_ms: b.latency_ms,
        status: b.status,
        retry_after_s: b.retry_after_s,
        error: b
            .error
            .as_deref()
            .map(validate::error_sample)
            .filter(|s| !s.is_empty()),
    })
}

pub async fn report(
    _: ClientAuth,
    State(state): State<AppState>,
    ApiJson(b): ApiJson<ReportBody>,
) -> ApiResult<Response> {
    let outcome = outcome_of(&b)?;
    if let Some(lease) = &b.lease {
        if let Some(answer) = crate::cluster::report::report(&state, lease, &outcome).await {
            return answer.map(IntoResponse::into_response);
        }
    }
    let (handle, result) = if let Some(lease) = &b.lease {
        let unknown = || {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_lease",
                "no open lease with that id (already reported or expired)",
            )
        };
        let (index, lease) = parse_lease(lease).ok_or_else(unknown)?;
        let handle = state.pool_by_index(index).ok_or_else(unknown)?;
        let mut pool = handle.pool.lock();
        let result = match pool.report(lease, &outcome, now_ms(), &mut rand::thread_rng()) {
            Ok((id, changes)) => {
                let token_state = pool.get(&id).map(|v| v.state);
                Ok((
                    id,
                    change_events(&pool, &handle.name, &changes),
                    token_state,
                ))
            }
            Err(PoolError::UnknownLease) | Err(PoolError::UnknownToken(_)) => Err(unknown()),
            Err(e) => Err(ApiError::internal(format!("report: {e}"))),
        };
        drop(pool);
        (handle, result)
    } else {
        let id = resolve(
            &state,
            &ByTokenOrId {
                token: b.token.clone(),
                id: b.id.clone(),
            },
        )
        .await?;
        let handle = state
            .token_pool(&id)
            .ok_or_else(|| ApiError::not_found("no such token"))?;
        let mut pool = handle.pool.lock();
        let result = match pool.report_token(&id, &outcome, now_ms(), &mut rand::thread_rng()) {
            Ok(changes) => Ok((
                id.clone(),
                change_events(&pool, &handle.name, &changes),
                pool.get(&id).map(|v| v.state),
            )),
            Err(_) => Err(ApiError::not_found("no such token")),
        };
        drop(pool);
        (handle, result)
    };
    let (id, events, token_state) = result?;
    state.metrics.outcome_class(outcome.class, &handle.name);
    state.record_changes(&handle, events);
    handle.notify.notify_waiters();
    json_answer(
        &ReportAnswer {
            id: &id,
            ok: true,
            state: token_state,
        },
        64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_ids_round_trip() {
        assert_eq!(
            parse_lease(&lease_string(3, LeaseId(42))),
            Some((3, LeaseId(42)))
        );
        assert_eq!(parse_lease("x.1"), None);
        assert_eq!(parse_lease("12"), None);
    }

    /// The plain parser agrees with the generic decoder wherever it answers.
    #[test]
    fn plain_get_queries_read_as_the_generic_decoder_reads_them() {
        let generic = |q: &str| {
            let uri: axum::http::Uri = format!("/api/token/get?{q}").parse().unwrap();
            axum::extract::Query::<GetQuery>::try_from_uri(&uri)
                .ok()
                .map(|axum::extract::Query(g)| (g.strategy, g.pool, g.wait_ms))
        };
        let plain =
            |q: &str| GetQuery::parse_plain(Some(q)).map(|g| (g.strategy, g.pool, g.wait_ms));
        for q in [
            "",
            "strategy=best",
            "strategy=best&pool=p1&wait_ms=250",
            "wait_ms=0&strategy=",
            "pool=a=b",
            "strategy=round_robin&pool=default",
        ] {
            assert!(plain(q).is_some(), "{q}");
            assert_eq!(plain(q), generic(q), "{q}");
        }
        // Left to the generic decoder (and its error messages).
        for q in [
            "strategy=best&strategy=random",
            "strategy",
            "foo=1",
            "wait_ms=x",
            "wait_ms=-1",
            "pool=a%20b",
            "pool=a+b",
            "strategy=best&",
            "&strategy=best",
        ] {
            assert_eq!(plain(q), None, "{q}");
        }
    }
}
