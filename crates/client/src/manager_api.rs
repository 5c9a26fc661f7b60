//! The manager routes the client uses: `GET /api/token/get`, `POST /api/token/report` and
//! `POST /api/token/renew`.
//!
//! Every failure is sorted into "the manager answered no" ([`ApiFailure::Answer`], passed to
//! the caller as is) or "the manager could not be reached" ([`ApiFailure::Unreachable`],
//! which starts the grace period). A 503 with the manager's JSON error body means "no
//! eligible token" and is an answer; a 503 without it (a proxy in front, a manager starting)
//! counts as unreachable, as do connection errors, timeouts and other 5xx.

use crate::error::ClientError;
use crate::lease::{GetAnswer, Lease};
use reqwest::StatusCode;
use serde::Serialize;
use std::time::Duration;
use tokenlb_core::{Secret, Strategy};

/// A report as the manager's `POST /api/token/report` takes it: by lease, or (for a cached
/// token or a lease the manager no longer knows) by token id in the seed's form plus the
/// outcome class.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ReportBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ReportBody {
    /// The same report addressed by token id (seed form), for when the lease is unknown.
    pub(crate) fn by_id(&self, id: &str) -> ReportBody {
        let mut body = self.clone();
        body.lease = None;
        body.id = Some(id.to_string());
        body.success = Some(self.outcome == "success");
        body
    }
}

#[derive(Debug)]
pub(crate) enum ApiFailure {
    /// Connection error, timeout, or a 5xx that is not the manager's own "no token" answer.
    Unreachable(String),
    /// The manager answered with an error.
    Answer(ClientError),
}

pub(crate) struct ManagerApi {
    http: reqwest::Client,
    base: String,
    key: Option<Secret>,
}

impl ManagerApi {
    pub(crate) fn new(
        base: &str,
        key: Option<Secret>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout);
        if is_loopback(base) {
            // A proxy from the environment must never sit between a service and its local
            // manager.
            builder = builder.no_proxy();
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(ManagerApi {
            http,
            base: base.to_string(),
            key,
        })
    }

    fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(key) => req.bearer_auth(key.expose()),
            None => req,
        }
    }

    pub(crate) async fn get(
        &self,
        pool: &str,
        strategy: Option<Strategy>,
        wait_ms: Option<u64>,
        timeout: Duration,
    ) -> Result<Lease, ApiFailure> {
        let mut query: Vec<(&str, String)> = vec![("pool", pool.to_string())];
        if let Some(s) = strategy {
            query.push(("strategy", s.as_str().to_string()));
        }
        if let Some(w) = wait_ms {
            query.push(("wait_ms", w.to_string()));
        }
        let wait = Duration::from_millis(wait_ms.unwrap_or(0));
        let req = self
            .http
            .get(format!("{}/api/token/get", self.base))
            .query(&query)
            .timeout(timeout + wait);
        let resp = self.authorize(req).send().await.map_err(unreachable)?;
        let status = resp.status();
        if status.is_success() {
            let answer: GetAnswer = resp.json().await.map_err(|e| {
                ApiFailure::Answer(ClientError::Protocol(e.without_url().to_string()))
            })?;
            return answer
                .into_lease(pool)
                .map_err(|m| ApiFailure::Answer(ClientError::Protocol(m)));
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = resp.text().await.unwrap_or_default();
        match (status, parse_error(&body)) {
            (StatusCode::SERVICE_UNAVAILABLE, Some((_, message))) => {
                Err(ApiFailure::Answer(ClientError::NoToken {
                    pool: pool.to_string(),
                    message,
                    retry_after,
                }))
            }
            _ => Err(answer_failure(status, &body)),
        }
    }

    pub(crate) async fn report(
        &self,
        body: &ReportBody,
        timeout: Duration,
    ) -> Result<(), ApiFailure> {
        let req = self
            .http
            .post(format!("{}/api/token/report", self.base))
            .json(body)
            .timeout(timeout);
        let resp = self.authorize(req).send().await.map_err(unreachable)?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        Err(answer_failure(status, &text))
    }
}

/// One report's fate in a batch: applied, or refused with the manager's status and code.
pub(crate) type BatchItem = Result<(), ClientError>;

impl ManagerApi {
    /// `POST /api/token/report {"reports":[…]}` (DESIGN §9): one result per report, in order.
    /// A manager that does not know the batch form refuses the whole request (a 400), which
    /// the caller takes as "send them one by one".
    pub(crate) async fn report_batch(
        &self,
        bodies: &[&ReportBody],
        timeout: Duration,
    ) -> Result<Vec<BatchItem>, ApiFailure> {
        let req = self
            .http
            .post(format!("{}/api/token/report", self.base))
            .json(&serde_json::json!({ "reports": bodies }))
            .timeout(timeout);
        let resp = self.authorize(req).send().await.map_err(unreachable)?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(answer_failure(status, &text));
        }
        let protocol = || {
            ApiFailure::Answer(ClientError::Protocol(
                "batch answer is not the §9 shape".into(),
            ))
        };
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|_| protocol())?;
        let results = v
            .get("results")
            .and_then(|r| r.as_array())
            .ok_or_else(protocol)?;
        if results.len() != bodies.len() {
            return Err(protocol());
        }
        Ok(results
            .iter()
            .map(|r| match r.get("error") {
                None => Ok(()),
                Some(e) => Err(ClientError::Rejected {
                    status: 400,
                    code: e
                        .get("code")
                        .and_then(|c| c.as_str())
                        .unwrap_or("http_error")
                        .to_string(),
                    message: e
                        .get("message")
                        .and_then(|m| m.as_str())
                        .unwrap_or("")
                        .chars()
                        .take(300)
                        .collect(),
                }),
            })
            .collect())
    }

    /// `POST /api/token/renew {"lease", "extend_s"?}` (DESIGN §9): the lease's new deadline
    /// as the manager states it (`lease_expires_at`, or `expires_at`), if it states one.
    pub(crate) async fn renew(
        &self,
        lease: &serde_json::Value,
        extend_s: Option<u64>,
        timeout: Duration,
    ) -> Result<Option<String>, ApiFailure> {
        let mut body = serde_json::json!({ "lease": lease });
        if let Some(s) = extend_s {
            body["extend_s"] = serde_json::json!(s);
        }
        let req = self
            .http
            .post(format!("{}/api/token/renew", self.base))
            .json(&body)
            .timeout(timeout);
        let resp = self.authorize(req).send().await.map_err(unreachable)?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(answer_failure(status, &text));
        }
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
            ApiFailure::Answer(ClientError::Protocol("renew answer is not JSON".into()))
        })?;
        let deadline = v.get("lease_expires_at").or_else(|| v.get("expires_at"));
        Ok(deadline.and_then(|d| match d {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }))
    }
}

fn unreachable(e: reqwest::Error) -> ApiFailure {
    let cause = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else {
        e.without_url().to_string()
    };
    ApiFailure::Unreachable(cause)
}

/// Sorts a non-2xx answer (other than get's "no token") into the error it stands for.
fn answer_failure(status: StatusCode, body: &str) -> ApiFailure {
    let parsed = parse_error(body);
    if status.is_server_error() {
        return ApiFailure::Unreachable(format!("manager answered {}", status.as_u16()));
    }
    let (code, message) = parsed.unwrap_or_else(|| {
        (
            "http_error".to_string(),
            format!("HTTP {}", status.as_u16()),
        )
    });
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return ApiFailure::Answer(ClientError::Unauthorized {
            status: status.as_u16(),
            message,
        });
    }
    ApiFailure::Answer(ClientError::Rejected {
        status: status.as_u16(),
        code,
        message,
    })
}

/// The manager's `{"error":{"code","message"}}` body, if that is what this is.
fn parse_error(body: &str) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let err = v.get("error")?;
    let code = err.get("code")?.as_str()?.to_string();
    let message = err
        .get("message")
        .and_then(|m| m.as_str())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect();
    Some((code, message))
}

fn is_loopback(base: &str) -> bool {
    let rest = base
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host);
    host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_answers() {
        let body = r#"{"error":{"code":"unknown_lease","message":"no such lease"}}"#;
        match answer_failure(StatusCode::NOT_FOUND, body) {
            ApiFailure::Answer(ClientError::Rejected { code, .. }) => {
                assert_eq!(code, "unknown_lease")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            answer_failure(StatusCode::UNAUTHORIZED, ""),
            ApiFailure::Answer(ClientError::Unauthorized { status: 401, .. })
        ));
        assert!(matches!(
            answer_failure(StatusCode::BAD_GATEWAY, "oops"),
            ApiFailure::Unreachable(_)
        ));
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback("http://127.0.0.1:8000"));
        assert!(is_loopback("http://localhost:8000/x"));
        assert!(is_loopback("http://[::1]:8000"));
        assert!(!is_loopback("https://tokens.example.com"));
    }
}
