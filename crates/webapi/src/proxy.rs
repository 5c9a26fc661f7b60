//! `proxy=true`: stream the file through the web API, passing `Range` through.
//!
//! Some links only work from the address that asked for them (research notes §9), so the
//! web API can fetch the bytes itself and stream them on without buffering. The client's
//! `Range` goes upstream as is, and the status (`200`, `206`, `416`) and the headers that
//! describe the bytes (`Content-Type`, `Content-Length`, `Content-Range`, `Accept-Ranges`,
//! `ETag`, `Last-Modified`, `Content-Disposition`) come back as is. A `403`/`410` from the
//! download host means the link expired: it is forgotten and a fresh one tried once. `429`,
//! `503` and `509` are the host's rate limit and are answered 503 with `Retry-After`. No
//! `Referer` is ever sent (the host refuses foreign ones).

use crate::error::{ApiError, ApiResult};
use crate::names::DrivePath;
use crate::service::{Mode, Service};
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use std::sync::Arc;
use std::time::Duration;

/// Headers copied from the download host's answer.
const PASSED: [header::HeaderName; 7] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
    header::ETAG,
    header::LAST_MODIFIED,
    header::CONTENT_DISPOSITION,
];

/// The HTTP client used for downloads: no overall timeout (files are large), a read timeout
/// instead, a few redirects, never a `Referer`.
pub fn download_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::limited(5))
        .referer(false)
        .build()
        .map_err(|e| format!("download HTTP client: {e}"))
}

pub async fn stream(
    service: &Arc<Service>,
    http: &reqwest::Client,
    path: &DrivePath,
    mode: Mode,
    range: Option<&HeaderValue>,
) -> ApiResult<(Response, &'static str)> {
    let mut mode = mode;
    for attempt in 0..2 {
        let answer = service.link(path, mode).await?;
        let source = match (answer.realtime, answer.stale) {
            (true, _) => "realtime",
            (false, false) => "cache",
            (false, true) => "stale",
        };
        let mut req = http.get(&answer.value.download_url);
        if let Some(r) = range {
            req = req.header(header::RANGE, r.clone());
        }
        let resp = req.send().await.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "download_failed",
                format!(
                    "the download host could not be reached: {}",
                    e.without_url()
                ),
            )
        })?;
        let status = resp.status().as_u16();
        match status {
            403 | 410 if attempt == 0 => {
                tracing::info!(file = %path, status, "download link refused (expired); asking for a fresh one");
                service.links.forget(&path.to_string());
                mode = Mode::Realtime;
                continue;
            }
            429 | 503 | 509 => {
                let retry = resp
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(5);
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "download_rate_limited",
                    format!("the download host is rate limiting ({status})"),
                )
                .with_retry_after(Some(retry)));
            }
            200 | 206 | 416 => {
                let upstream_status = resp.status();
                let mut headers = HeaderMap::new();
                copy_headers(resp.headers(), &mut headers);
                if !headers.contains_key(header::CONTENT_DISPOSITION) {
                    headers.insert(header::CONTENT_DISPOSITION, disposition(&answer.value.name));
                }
                let mut response = Response::new(Body::from_stream(resp.bytes_stream()));
                *response.status_mut() = upstream_status;
                *response.headers_mut() = headers;
                return Ok((response, source));
            }
            other => {
                return Err(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "download_failed",
                    format!("the download host answered {other}"),
                ))
            }
        }
    }
    Err(ApiError::new(
        StatusCode::BAD_GATEWAY,
        "download_failed",
        "the download host refused a fresh link too",
    ))
}

fn copy_headers(from: &reqwest::header::HeaderMap, to: &mut HeaderMap) {
    for name in PASSED {
        if let Some(v) = from.get(name.as_str()) {
            if let Ok(v) = HeaderValue::from_bytes(v.as_bytes()) {
                to.insert(name, v);
            }
        }
    }
}

/// `inline; filename*=UTF-8''<percent-encoded name>` (RFC 6266), safe for any Wopan name.
fn disposition(name: &str) -> HeaderValue {
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    HeaderValue::from_str(&format!("inline; filename*=UTF-8''{encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("inline"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disposition_encodes_any_name() {
        let v = disposition("电影 1.mp4");
        assert!(v
            .to_str()
            .unwrap()
            .starts_with("inline; filename*=UTF-8''%E7%94%B5"));
    }
}
