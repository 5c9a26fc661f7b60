//! The lease routes: `GET /api/token/get` and `POST /api/token/report` (DESIGN §3, §9).
//!
//! `get` answers the seed's shape `{"token","id","name","pool","lease","lease_expires_at"}`;
//! with nothing eligible, 503 with `Retry-After`. `report` takes the lease form, the seed's
//! `{"token"|"id","success"}` form, or a batch `{"reports":[…]}` answered
//! `{"results":[…]}` in the same order. What leasing and reporting mean is the service's
//! ([`crate::service`]); these handlers parse and render.

use crate::auth::ClientAuth;
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use crate::service::{LeaseRequest, Picked, ReportAck, ReportRequest, ServiceResult, TokenService};
use crate::state::AppState;
use crate::views;
use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tokenlb_core::TokenId;

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

pub async fn get(
    ClientAuth(scope): ClientAuth,
    State(svc): State<TokenService>,
    GetParams(q): GetParams,
) -> ApiResult<Response> {
    let request = LeaseRequest {
        scope: &scope,
        pool: q.pool.as_deref(),
        strategy: q.strategy.as_deref(),
        wait_ms: q.wait_ms.unwrap_or(0),
    };
    let (Picked { lease, lease_id }, handle) = svc.lease(request).await?;
    let answer = LeaseAnswer {
        id: &lease.token_id,
        lease: &lease_id,
        lease_expires_at: views::rfc3339(Some(lease.deadline)),
        name: &lease.name,
        pool: &handle.name,
        token: lease.secret.expose(),
    };
    json_answer(&answer, 256)
}

/// One entry of a batch answer: the report's acknowledgement or its error.
#[derive(Serialize)]
#[serde(untagged)]
enum BatchResult {
    Ok(ReportAck),
    Err { error: ErrorBody },
}

#[derive(Serialize)]
struct ErrorBody {
    code: &'static str,
    message: String,
}

impl From<ServiceResult<ReportAck>> for BatchResult {
    fn from(r: ServiceResult<ReportAck>) -> Self {
        r.map_or_else(
            |e| {
                let ApiError { code, message, .. } = e.into();
                BatchResult::Err {
                    error: ErrorBody { code, message },
                }
            },
            BatchResult::Ok,
        )
    }
}

pub async fn report(
    ClientAuth(scope): ClientAuth,
    State(svc): State<TokenService>,
    ApiJson(req): ApiJson<ReportRequest>,
) -> ApiResult<Response> {
    if !req.is_batch() {
        let ack = svc.report(req, &scope).await?;
        return json_answer(&ack, 64);
    }
    let reports = req.reports.unwrap_or_default();
    let results = svc.report_batch(reports, &scope).await?;
    let results: Vec<BatchResult> = results.into_iter().map(BatchResult::from).collect();
    let capacity = 64 * results.len() + 16;
    json_answer(&serde_json::json!({ "results": results }), capacity)
}

/// `POST /api/token/renew`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewBody {
    pub lease: String,
    pub extend_s: Option<u64>,
}

/// `renew`'s answer.
#[derive(Serialize)]
struct RenewAnswer<'a> {
    id: &'a TokenId,
    lease: &'a str,
    lease_expires_at: Option<String>,
}

pub async fn renew(
    ClientAuth(scope): ClientAuth,
    State(svc): State<TokenService>,
    ApiJson(b): ApiJson<RenewBody>,
) -> ApiResult<Response> {
    let (id, deadline) = svc.renew(&b.lease, b.extend_s, &scope)?;
    let answer = RenewAnswer {
        id: &id,
        lease: &b.lease,
        lease_expires_at: views::rfc3339(Some(deadline)),
    };
    json_answer(&answer, 128)
}

#[cfg(test)]
mod tests {
    use super::*;

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
