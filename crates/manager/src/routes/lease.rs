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
    Ok(json_bytes(body))
}

/// A `200` JSON answer of `body`.
fn json_bytes(body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    // Room for every header the answer gets on its way out (content type and length, the
    // security headers), so the map is not regrown on the way.
    *response.headers_mut() = HeaderMap::with_capacity(8);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `get`'s answer (the seed's shape), fields in the order `serde_json`'s sorted maps used.
/// Written by hand into one buffer: strings that need no escaping (ids, lease ids, pool
/// names and token secrets nearly always) are copied as they are, the rest go through
/// `serde_json`'s escaper; the date is [`views::push_rfc3339`]. The generic serializer's
/// byte-by-byte escape loop was about 2,000 instructions of every `get`.
struct LeaseAnswer<'a> {
    id: &'a TokenId,
    lease: &'a str,
    lease_expires_at: Option<tokenlb_core::Millis>,
    name: &'a str,
    pool: &'a str,
    token: &'a str,
}

impl LeaseAnswer<'_> {
    fn to_json(&self) -> Vec<u8> {
        // The keys, quotes and date come to 100 bytes; escapes would only regrow once.
        let mut out = Vec::with_capacity(
            112 + self.id.as_str().len()
                + self.lease.len()
                + self.name.len()
                + self.pool.len()
                + self.token.len(),
        );
        out.extend_from_slice(b"{\"id\":");
        push_json_str(&mut out, self.id.as_str());
        out.extend_from_slice(b",\"lease\":");
        push_json_str(&mut out, self.lease);
        out.extend_from_slice(b",\"lease_expires_at\":");
        match self.lease_expires_at {
            Some(ms) => {
                out.push(b'"');
                views::push_rfc3339(&mut out, ms);
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"name\":");
        push_json_str(&mut out, self.name);
        out.extend_from_slice(b",\"pool\":");
        push_json_str(&mut out, self.pool);
        out.extend_from_slice(b",\"token\":");
        push_json_str(&mut out, self.token);
        out.push(b'}');
        out
    }
}

/// Whether `s` can be written between quotes as it is: no control character, `"` or `\`.
/// Eight bytes at a time (the classic "has a byte below n / equal to c" word tricks, exact as
/// a yes/no), then the tail byte by byte.
fn needs_no_escape(s: &str) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    let bytes = s.as_bytes();
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let v = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        let below_space = v.wrapping_sub(ONES * 0x20) & !v & HIGH != 0;
        if below_space
            || has_zero(v ^ (ONES * u64::from(b'"')))
            || has_zero(v ^ (ONES * u64::from(b'\\')))
        {
            return false;
        }
    }
    words
        .remainder()
        .iter()
        .all(|&b| b >= 0x20 && b != b'"' && b != b'\\')
}

/// Appends `s` as a JSON string.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    if needs_no_escape(s) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing a `&str` into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
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
        lease_expires_at: Some(lease.deadline),
        name: &lease.name,
        pool: &handle.name,
        token: lease.secret.expose(),
    };
    Ok(json_bytes(answer.to_json()))
}

/// A batch report's answer: one result per report, in order.
#[derive(Serialize)]
struct BatchAnswer {
    results: Vec<BatchResult>,
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
    json_answer(&BatchAnswer { results }, capacity)
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

    #[test]
    fn the_lease_answer_is_the_json_serde_writes() {
        let id = TokenId("t_1".to_string());
        for (name, token) in [
            ("token 1", "secret-0123456789"),
            ("名字 \"quoted\" \\ back", "tab\there\u{7f}\u{1}"),
            ("", ""),
        ] {
            let answer = LeaseAnswer {
                id: &id,
                lease: "0.0000abcd.7.0123456789abcdef",
                lease_expires_at: Some(1_767_225_600_123),
                name,
                pool: "default",
                token,
            };
            let expected = serde_json::json!({
                "id": "t_1",
                "lease": "0.0000abcd.7.0123456789abcdef",
                "lease_expires_at": "2026-01-01T00:00:00.123Z",
                "name": name,
                "pool": "default",
                "token": token,
            });
            let written = answer.to_json();
            // Byte for byte what serde_json writes (sorted keys, its escapes).
            assert_eq!(String::from_utf8(written).unwrap(), expected.to_string());
        }
    }

    /// The word-at-a-time check says "plain" exactly when the byte loop does: every byte
    /// value at every position of strings of every length around a word.
    #[test]
    fn the_word_check_agrees_with_the_byte_check() {
        let naive = |s: &[u8]| s.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\');
        for len in 1..=19 {
            for pos in 0..len {
                for b in 0u8..0x80 {
                    let mut v = vec![b'a'; len];
                    v[pos] = b;
                    let s = std::str::from_utf8(&v).unwrap();
                    assert_eq!(needs_no_escape(s), naive(&v), "{v:?}");
                }
            }
        }
        for s in [
            "",
            "é",
            "名字名字名字",
            "0.0000abcd.7.0123456789abcdef\u{7f}ÿ",
        ] {
            assert_eq!(needs_no_escape(s), naive(s.as_bytes()), "{s:?}");
        }
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
