//! The download host: `GET /openapi/download?fid=<opaque>` for the links the dispatcher
//! handed out.
//!
//! A fixture file's content is generated, not stored: byte `i` is a fixed function of the
//! file's original id and `i` ([`content_bytes`]), so any range of any size can be served in
//! constant memory and checked by a test. An uploaded file's content is what was uploaded. Supports a single `Range` (`a-b`, `a-`, `-n`) with 206 and
//! `Content-Range`, 416 for an unsatisfiable range, and ignores multi-range requests (200 with
//! the whole file, which RFC 9110 allows). Expired or unknown links get 403, as clients
//! observed on the real host; injected rate limits get 429/503 with `Retry-After`, quota 509.

use super::dispatch::http_error;
use super::ops::quota_status;
use super::state::{DownloadFault, Settings, TokenFault};
use super::tree::Content;
use super::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use md5::{Digest, Md5};
use std::convert::Infallible;
use std::time::{Duration, Instant};

/// `len` bytes of the generated content of the file with id `file_id`, from `offset`.
pub fn content_bytes(file_id: &str, offset: u64, len: usize) -> Vec<u8> {
    let digest = Md5::digest(file_id.as_bytes());
    let mut seed_bytes = [0u8; 8];
    seed_bytes.copy_from_slice(&digest[..8]);
    let seed = u64::from_le_bytes(seed_bytes);
    (offset..offset + len as u64)
        .map(|i| splitmix64(seed.wrapping_add(i / 8)).to_le_bytes()[(i % 8) as usize])
        .collect()
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A requested byte range, inclusive.
#[derive(Debug, PartialEq, Eq)]
enum RangeSpec {
    Full,
    Partial(u64, u64),
    Unsatisfiable,
}

fn parse_range(value: Option<&str>, size: u64) -> RangeSpec {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return RangeSpec::Full;
    };
    if spec.contains(',') {
        return RangeSpec::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        (true, true) => return RangeSpec::Full,
        (true, false) => match b.parse::<u64>() {
            Ok(0) => return RangeSpec::Unsatisfiable,
            Ok(n) if size > 0 => (size - n.min(size), size - 1),
            Ok(_) => return RangeSpec::Unsatisfiable,
            Err(_) => return RangeSpec::Full,
        },
        (false, _) => {
            let Ok(start) = a.parse::<u64>() else {
                return RangeSpec::Full;
            };
            let end = if b.is_empty() {
                u64::MAX
            } else {
                match b.parse::<u64>() {
                    Ok(e) if e >= start => e,
                    _ => return RangeSpec::Full,
                }
            };
            if start >= size {
                return RangeSpec::Unsatisfiable;
            }
            (start, end.min(size - 1))
        }
    };
    RangeSpec::Partial(parsed.0, parsed.1)
}

fn fid_from_query(q: Option<&str>) -> Option<String> {
    let url = reqwest::Url::parse(&format!("http://x/?{}", q?)).ok()?;
    let fid = url.query_pairs().find(|(k, _)| k == "fid")?.1;
    Some(fid.into_owned())
}

pub(crate) async fn handle(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let fid = fid_from_query(q.as_deref()).unwrap_or_default();
    let (settings, link, token_fault) = {
        let mut inner = s.inner.lock();
        inner.count("download");
        let link = inner.links.get(&fid).cloned();
        let fault = link
            .as_ref()
            .and_then(|l| inner.tokens.get(&l.token))
            .map(|t| t.fault)
            .unwrap_or_default();
        (inner.settings.clone(), link, fault)
    };
    if settings.down {
        return http_error(StatusCode::BAD_GATEWAY, None);
    }
    if settings.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(settings.latency_ms)).await;
    }
    let Some(link) = link.filter(|l| l.expires > Instant::now()) else {
        return http_error(StatusCode::FORBIDDEN, None);
    };
    if let Some(refused) = injected_fault(&settings, token_fault) {
        return refused;
    }
    let found = s
        .tree
        .read()
        .by_fid(&link.fid)
        .filter(|(space, _)| *space == link.space)
        .map(|(_, node)| (node.content.clone(), node.entry.size));
    match found {
        Some((content, size)) => {
            let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
            serve_range(content, size, parse_range(range, size))
        }
        None => http_error(StatusCode::FORBIDDEN, None),
    }
}

/// The answer an injected rate limit or quota fault gives, if any.
fn injected_fault(settings: &Settings, token_fault: TokenFault) -> Option<Response> {
    if settings.downloads == DownloadFault::RateLimited || token_fault == TokenFault::RateLimited {
        let status = StatusCode::from_u16(settings.rate_limit_status)
            .unwrap_or(StatusCode::TOO_MANY_REQUESTS);
        return Some(http_error(status, Some(settings.retry_after_s)));
    }
    if settings.downloads == DownloadFault::Quota || token_fault == TokenFault::Quota {
        return Some(http_error(quota_status(), None));
    }
    None
}

/// Streams a file's bytes (or one range of them) in 64 KiB chunks: generated from its seed,
/// or sliced from what was uploaded.
fn serve_range(content: Content, size: u64, range: RangeSpec) -> Response {
    let (status, start, end_excl) = match range {
        RangeSpec::Full => (StatusCode::OK, 0, size),
        RangeSpec::Partial(a, b) => (StatusCode::PARTIAL_CONTENT, a, b + 1),
        RangeSpec::Unsatisfiable => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let stream = futures::stream::unfold(start, move |pos| {
        let content = content.clone();
        async move {
            if pos >= end_excl {
                return None;
            }
            let n = (end_excl - pos).min(64 * 1024);
            let chunk = match &content {
                Content::Generated(seed) => Bytes::from(content_bytes(seed, pos, n as usize)),
                Content::Stored(b) => b.slice(pos as usize..(pos + n) as usize),
            };
            Some((Ok::<_, Infallible>(chunk), pos + n))
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&(end_excl - start).to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        let value = format!("bytes {start}-{}/{size}", end_excl - 1);
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 100), RangeSpec::Full);
        assert_eq!(
            parse_range(Some("bytes=0-9"), 100),
            RangeSpec::Partial(0, 9)
        );
        assert_eq!(
            parse_range(Some("bytes=90-"), 100),
            RangeSpec::Partial(90, 99)
        );
        assert_eq!(
            parse_range(Some("bytes=90-500"), 100),
            RangeSpec::Partial(90, 99)
        );
        assert_eq!(
            parse_range(Some("bytes=-10"), 100),
            RangeSpec::Partial(90, 99)
        );
        assert_eq!(
            parse_range(Some("bytes=-1000"), 100),
            RangeSpec::Partial(0, 99)
        );
        assert_eq!(
            parse_range(Some("bytes=100-"), 100),
            RangeSpec::Unsatisfiable
        );
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), RangeSpec::Full);
        assert_eq!(parse_range(Some("bytes=9-2"), 100), RangeSpec::Full);
        assert_eq!(parse_range(Some("items=0-1"), 100), RangeSpec::Full);
        assert_eq!(parse_range(Some("bytes=0-0"), 0), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=x-"), 100), RangeSpec::Full);
    }

    #[test]
    fn content_is_deterministic_and_slices_agree() {
        let all = content_bytes("abc", 0, 100);
        assert_eq!(all, content_bytes("abc", 0, 100));
        assert_eq!(&all[37..61], content_bytes("abc", 37, 24).as_slice());
        assert_ne!(all, content_bytes("abd", 0, 100));
    }
}
