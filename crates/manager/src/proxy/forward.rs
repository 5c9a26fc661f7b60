//! The wire side of a proxied request: the shared client, what of the caller's request is
//! forwarded (and what never is), where the token goes, and what of the answer the caller
//! gets.
//!
//! Never forwarded: hop-by-hop headers (RFC 9110 §7.6.1, plus those the `Connection`
//! header names), `Host` (the upstream's own), the caller's `Authorization` (its tokenlb
//! key), tokenlb's session cookie and `X-CSRF-Token`, and a caller's own copy of the
//! injected header or query parameter. The answer loses its hop-by-hop headers, and any
//! header value that echoes the token is masked; it gains `x-tokenlb-token-id` and
//! `x-tokenlb-attempts`.

use super::relay::{Held, Relay};
use crate::config::ProxyConfig;
use crate::error::ApiError;
use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::request::Parts;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use std::time::Duration;
use tokenlb_core::{Secret, TokenId};

/// The largest request body kept for a replay on another token (DESIGN §10).
pub const MAX_REPLAY: usize = 1024 * 1024;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The one pooled keep-alive client of every route (rustls; redirects go to the caller).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// The caller's request body: kept whole (≤ [`MAX_REPLAY`], replayable), or the kept part
/// and the rest still streaming (sent once, never retried).
pub enum Outgoing {
    Kept(Bytes),
    Streaming(Option<(Bytes, axum::body::BodyDataStream)>),
}

impl Outgoing {
    /// Reads up to [`MAX_REPLAY`] + 1 bytes of `body`.
    pub async fn read(body: Body) -> Result<Outgoing, ApiError> {
        let mut stream = body.into_data_stream();
        let mut kept = BytesMut::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
            kept.extend_from_slice(&chunk);
            if kept.len() > MAX_REPLAY {
                return Ok(Outgoing::Streaming(Some((kept.freeze(), stream))));
            }
        }
        Ok(Outgoing::Kept(kept.freeze()))
    }

    pub fn replayable(&self) -> bool {
        matches!(self, Outgoing::Kept(_))
    }

    /// The body for the next attempt (a streaming body can be sent once only).
    pub fn replay(&mut self) -> reqwest::Body {
        match self {
            Outgoing::Kept(b) => reqwest::Body::from(b.clone()),
            Outgoing::Streaming(s) => match s.take() {
                Some((kept, rest)) => {
                    let first = futures::stream::once(async move { Ok::<_, axum::Error>(kept) });
                    reqwest::Body::wrap_stream(first.chain(rest))
                }
                None => reqwest::Body::from(Bytes::new()),
            },
        }
    }
}

/// Whether `name` is hop-by-hop in a message whose `Connection` header is `connection`.
fn is_hop(name: &HeaderName, headers: &HeaderMap) -> bool {
    let n = name.as_str();
    HOP_BY_HOP.contains(&n)
        || headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(n))
}

/// The route's upstream as a parsed URL, once per route (parsing it per request, host
/// validation included, cost about a tenth of a proxied request).
pub fn base(config: &ProxyConfig) -> Option<reqwest::Url> {
    reqwest::Url::parse(&config.upstream).ok()
}

/// The upstream URL: the route's base, the caller's path after `/proxy/NAME`, its query
/// (without a parameter of the injected name) and, for query injection, the token.
fn target(
    config: &ProxyConfig,
    base: &reqwest::Url,
    parts: &Parts,
    secret: &Secret,
) -> Option<reqwest::Url> {
    let path = parts.uri.path();
    let rest = path.strip_prefix("/proxy/")?;
    let rest = rest.get(config.name.len().min(rest.len())..)?;
    let mut url = base.clone();
    let joined = format!("{}{rest}", base.path().trim_end_matches('/'));
    url.set_path(&joined);
    let inject = config.inject.query.as_deref();
    let kept: Vec<&str> = parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| inject.is_none_or(|q| p.split('=').next() != Some(q)))
        .collect();
    url.set_query((!kept.is_empty()).then(|| kept.join("&")).as_deref());
    if let Some(q) = inject {
        url.query_pairs_mut().append_pair(q, secret.expose());
    }
    Some(url)
}

/// The caller's headers as the upstream gets them, with the token injected.
fn headers(config: &ProxyConfig, parts: &Parts, secret: &Secret, streaming: bool) -> HeaderMap {
    let inject = config
        .inject
        .header
        .as_deref()
        .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok());
    let mut out = HeaderMap::with_capacity(parts.headers.len() + 1);
    for (name, value) in &parts.headers {
        let dropped = is_hop(name, &parts.headers)
            || *name == header::HOST
            || *name == header::AUTHORIZATION
            || (*name == header::CONTENT_LENGTH && !streaming)
            || *name == header::EXPECT
            || name.as_str() == "x-csrf-token"
            || inject.as_ref() == Some(name);
        if dropped {
            continue;
        }
        if *name == header::COOKIE {
            if let Some(v) = without_session_cookie(value) {
                out.append(name.clone(), v);
            }
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    if let Some(name) = inject {
        let template = config.inject.value.as_deref().unwrap_or("{token}");
        if let Ok(mut v) = HeaderValue::from_str(&template.replace("{token}", secret.expose())) {
            v.set_sensitive(true);
            out.insert(name, v);
        }
    }
    out
}

/// A `Cookie` header without tokenlb's admin session (`None` when nothing else is left).
fn without_session_cookie(value: &HeaderValue) -> Option<HeaderValue> {
    let text = value.to_str().ok()?;
    let kept: Vec<&str> = text
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .filter(|p| p.split('=').next() != Some(crate::session::COOKIE_NAME))
        .collect();
    (!kept.is_empty())
        .then(|| HeaderValue::from_str(&kept.join("; ")).ok())
        .flatten()
}

/// The forwarded request of one attempt.
pub fn request(
    client: &reqwest::Client,
    config: &ProxyConfig,
    base: Option<&reqwest::Url>,
    parts: &Parts,
    secret: &Secret,
    body: reqwest::Body,
) -> Option<reqwest::RequestBuilder> {
    let url = target(config, base?, parts, secret)?;
    let streaming = body.as_bytes().is_none();
    Some(
        client
            .request(parts.method.clone(), url)
            .headers(headers(config, parts, secret, streaming))
            .body(body),
    )
}

/// Reads up to `max` bytes of the answer's body (for the rules), within `timeout`.
pub async fn peek(resp: &mut reqwest::Response, max: usize, timeout: Duration) -> Bytes {
    let mut kept = BytesMut::new();
    let read = async {
        while kept.len() < max {
            match resp.chunk().await {
                Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(timeout, read).await;
    kept.freeze()
}

/// `x-tokenlb-token-id` and `x-tokenlb-attempts`.
pub fn tag(headers: &mut HeaderMap, token: &TokenId, attempts: usize) {
    if let Ok(v) = HeaderValue::from_str(token.as_str()) {
        headers.insert("x-tokenlb-token-id", v);
    }
    headers.insert("x-tokenlb-attempts", HeaderValue::from(attempts));
}

/// A header value with the token masked wherever it appears (as is or URL-encoded).
fn masked(value: &HeaderValue, secret: &Secret) -> HeaderValue {
    let raw = value.as_bytes();
    let plain = secret.expose();
    let encoded: String = url_encoded(plain);
    let echoes = |needle: &str| {
        !needle.is_empty() && raw.windows(needle.len()).any(|w| w == needle.as_bytes())
    };
    if !echoes(plain) && !echoes(&encoded) {
        return value.clone();
    }
    // Header values are visible ASCII: the mask's ellipsis is written as three dots.
    let shown = secret.masked().replace('…', "...");
    let text = String::from_utf8_lossy(raw)
        .replace(plain, &shown)
        .replace(&encoded, &shown);
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("(masked)"))
}

fn url_encoded(text: &str) -> String {
    let mut url = reqwest::Url::parse("http://x/").expect("a fixed URL parses");
    url.query_pairs_mut().append_pair("k", text);
    url.query()
        .unwrap_or("")
        .trim_start_matches("k=")
        .to_string()
}

/// The caller's answer: the upstream's status and headers (hop-by-hop dropped, the token
/// masked), the tokenlb headers, and the body streamed through [`Relay`].
pub fn response(
    resp: reqwest::Response,
    peeked: Bytes,
    held: Option<Held>,
    secret: &Secret,
    token: &TokenId,
    attempts: usize,
    idle: Duration,
) -> Response {
    let status = resp.status();
    let mut headers = HeaderMap::with_capacity(resp.headers().len() + 8);
    for (name, value) in resp.headers() {
        if !is_hop(name, resp.headers()) {
            headers.append(name.clone(), masked(value, secret));
        }
    }
    tag(&mut headers, token, attempts);
    let relay = Relay::new(peeked, Box::pin(resp.bytes_stream()), held, idle);
    let mut out = Response::new(Body::from_stream(relay));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Inject;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = axum::http::Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn urls_keep_the_path_and_query_and_inject_the_token_parameter() {
        let secret = Secret::new("s3cr3t&x");
        let c = ProxyConfig::new(
            "maps",
            "https://api.example.com/base/",
            "p",
            Inject::query("key"),
        );
        let p = parts("/proxy/maps/v1/geo?q=a%20b&key=mine&z=1", &[]);
        let url = target(&c, &base(&c).unwrap(), &p, &secret).unwrap();
        assert_eq!(
            url.as_str(),
            "https://api.example.com/base/v1/geo?q=a%20b&z=1&key=s3cr3t%26x"
        );
        let p = parts("/proxy/maps", &[]);
        assert_eq!(
            target(&c, &base(&c).unwrap(), &p, &secret)
                .unwrap()
                .as_str(),
            "https://api.example.com/base?key=s3cr3t%26x"
        );
        // A base without a path; dot segments resolve as a parse of the whole URL would.
        let c = ProxyConfig::new("h", "http://127.0.0.1:9", "p", Inject::query("k"));
        for (uri, expected) in [
            ("/proxy/h", "http://127.0.0.1:9/?k=s3cr3t%26x"),
            ("/proxy/h/a/../b?x", "http://127.0.0.1:9/b?x&k=s3cr3t%26x"),
            (
                "/proxy/h/%7Euser/x%20y",
                "http://127.0.0.1:9/%7Euser/x%20y?k=s3cr3t%26x",
            ),
        ] {
            let url = target(&c, &base(&c).unwrap(), &parts(uri, &[]), &secret).unwrap();
            assert_eq!(url.as_str(), expected, "{uri}");
        }
    }

    #[test]
    fn the_callers_key_and_hop_by_hop_headers_stay_behind() {
        let secret = Secret::new("tok");
        let c = ProxyConfig::new(
            "a",
            "http://u",
            "p",
            Inject::header("Authorization", "Bearer {token}"),
        );
        let p = parts(
            "/proxy/a/x",
            &[
                ("authorization", "Bearer client-key"),
                ("connection", "close, x-private"),
                ("x-private", "1"),
                ("keep-alive", "5"),
                ("host", "127.0.0.1"),
                ("cookie", "tokenlb_session=abc; theme=dark"),
                ("accept", "text/event-stream"),
            ],
        );
        let h = headers(&c, &p, &secret, false);
        assert_eq!(h["authorization"], "Bearer tok");
        assert_eq!(h["accept"], "text/event-stream");
        assert!(h.get("x-private").is_none() && h.get("keep-alive").is_none());
        assert!(h.get("host").is_none() && h.get("connection").is_none());
        if crate::session::COOKIE_NAME == "tokenlb_session" {
            assert_eq!(h["cookie"], "theme=dark");
        }
    }

    #[test]
    fn echoed_tokens_are_masked() {
        let secret = Secret::new("sk-abcdefghijklmnop");
        let v = HeaderValue::from_static("key=sk-abcdefghijklmnop; other");
        let m = masked(&v, &secret);
        assert!(!m.to_str().unwrap().contains("sk-abcdefghijklmnop"));
        assert_eq!(masked(&HeaderValue::from_static("fine"), &secret), "fine");
    }
}
