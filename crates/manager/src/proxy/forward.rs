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
use axum::http::Uri;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
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

/// The client every route shares: hyper-util's pooled keep-alive client over rustls (webpki
/// roots) or plain TCP, HTTP/1.1. Redirects are never followed: they go to the caller.
pub type Client = hyper_util::client::legacy::Client<Connector, Body>;
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// An upstream answer, its body still unread.
pub type Answer = axum::http::Response<Incoming>;

/// The one pooled keep-alive client of every route.
///
/// hyper-util's client directly, not reqwest: a proxied request arrives as an `http`
/// request and leaves as one, so reqwest's URL type, redirect and timeout layers were pure
/// cost (about a third of a proxied request's instructions, BENCHMARKS.md).
pub fn client() -> Client {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .build(https)
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
    pub fn replay(&mut self) -> Body {
        match self {
            Outgoing::Kept(b) => Body::from(b.clone()),
            Outgoing::Streaming(s) => match s.take() {
                Some((kept, rest)) => {
                    let first = futures::stream::once(async move { Ok::<_, axum::Error>(kept) });
                    Body::from_stream(first.chain(rest))
                }
                None => Body::empty(),
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

/// A route's upstream, split once per route (parsing a URL per request, host validation
/// included, cost about a tenth of a proxied request).
#[derive(Clone, Debug)]
pub struct Base {
    /// `scheme://authority`.
    origin: String,
    /// The path without its trailing `/` (`""` for the root).
    path: String,
}

/// The route's upstream as a [`Base`]; `None` when it is not an http(s) URL with a host
/// (validation refuses such a route at start).
pub fn base(config: &ProxyConfig) -> Option<Base> {
    let url = reqwest::Url::parse(&config.upstream).ok()?;
    let host = url.host_str()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let origin = match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    };
    Some(Base {
        origin,
        path: url.path().trim_end_matches('/').to_string(),
    })
}

/// A `.` or `..` path segment, also percent-encoded (as URL parsers read them).
fn dots(segment: &str) -> usize {
    let s = segment.to_ascii_lowercase();
    match s.as_str() {
        "." | "%2e" => 1,
        ".." | ".%2e" | "%2e." | "%2e%2e" => 2,
        _ => 0,
    }
}

/// Appends `rest` (the caller's path after the route name: empty or starting with `/`,
/// still percent-encoded) to `out`, with `.` and `..` segments resolved inside it: a caller
/// cannot climb above the route's base path.
fn push_rest(out: &mut String, rest: &str) {
    if !rest.contains('.') && !rest.contains("%2") {
        out.push_str(rest);
        return;
    }
    let mut kept: Vec<&str> = Vec::new();
    let mut trailing = false;
    for seg in rest.split('/').skip(1) {
        trailing = false;
        match dots(seg) {
            1 => trailing = true,
            2 => {
                kept.pop();
                trailing = true;
            }
            _ => kept.push(seg),
        }
    }
    for seg in &kept {
        out.push('/');
        out.push_str(seg);
    }
    if trailing {
        out.push('/');
    }
}

/// The upstream URI: the route's base, the caller's path after `/proxy/NAME`, its query
/// (without a parameter of the injected name) and, for query injection, the token.
fn target(config: &ProxyConfig, base: &Base, parts: &Parts, secret: &Secret) -> Option<Uri> {
    let path = parts.uri.path();
    let rest = path.strip_prefix("/proxy/")?;
    let rest = rest.get(config.name.len().min(rest.len())..)?;
    let query = parts.uri.query().unwrap_or("");
    let mut out =
        String::with_capacity(base.origin.len() + base.path.len() + path.len() + query.len() + 64);
    out.push_str(&base.origin);
    out.push_str(&base.path);
    push_rest(&mut out, rest);
    if out.len() == base.origin.len() {
        out.push('/');
    }
    let inject = config.inject.query.as_deref();
    let mut sep = '?';
    for p in query.split('&').filter(|p| !p.is_empty()) {
        if inject.is_some_and(|q| p.split('=').next() == Some(q)) {
            continue;
        }
        out.push(sep);
        out.push_str(p);
        sep = '&';
    }
    if let Some(q) = inject {
        out.push(sep);
        out.extend(form_urlencoded::byte_serialize(q.as_bytes()));
        out.push('=');
        out.extend(form_urlencoded::byte_serialize(secret.expose().as_bytes()));
    }
    Uri::try_from(out).ok()
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

/// The forwarded request of one attempt; `None` when the target is not a valid URI.
pub fn request(
    config: &ProxyConfig,
    base: Option<&Base>,
    parts: &Parts,
    secret: &Secret,
    body: Body,
) -> Option<axum::http::Request<Body>> {
    let uri = target(config, base?, parts, secret)?;
    let streaming = body.size_hint().exact().is_none();
    let headers = headers(config, parts, secret, streaming);
    let mut req = axum::http::Request::new(body);
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    Some(req)
}

/// Reads up to `max` bytes of the answer's body (for the rules), within `timeout`.
pub async fn peek(resp: &mut Answer, max: usize, timeout: Duration) -> Bytes {
    let mut kept = BytesMut::new();
    let body = resp.body_mut();
    let read = async {
        while kept.len() < max {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        kept.extend_from_slice(&data);
                    }
                }
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(timeout, read).await;
    kept.freeze()
}

/// `x-tokenlb-token-id` and `x-tokenlb-attempts`.
pub fn tag(headers: &mut HeaderMap, token: &TokenId, attempts: usize) {
    // Names made once: a `&str` name is parsed again on every insert.
    static TOKEN_ID: HeaderName = HeaderName::from_static("x-tokenlb-token-id");
    static ATTEMPTS: HeaderName = HeaderName::from_static("x-tokenlb-attempts");
    if let Ok(v) = HeaderValue::from_str(token.as_str()) {
        headers.insert(TOKEN_ID.clone(), v);
    }
    headers.insert(ATTEMPTS.clone(), HeaderValue::from(attempts));
}

/// A header value with the token masked wherever it appears (as is or URL-encoded).
fn masked(value: &HeaderValue, secret: &Secret, encoded: &str) -> HeaderValue {
    let raw = value.as_bytes();
    let plain = secret.expose();
    let echoes = |needle: &str| {
        !needle.is_empty() && raw.windows(needle.len()).any(|w| w == needle.as_bytes())
    };
    if !echoes(plain) && !echoes(encoded) {
        return value.clone();
    }
    // Header values are visible ASCII: the mask's ellipsis is written as three dots.
    let shown = secret.masked().replace('…', "...");
    let text = String::from_utf8_lossy(raw)
        .replace(plain, &shown)
        .replace(encoded, &shown);
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("(masked)"))
}

/// The token as a query parameter's value carries it (form-urlencoded).
fn url_encoded(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The caller's answer: the upstream's status and headers (hop-by-hop dropped, the token
/// masked), the tokenlb headers, and the body streamed through [`Relay`].
pub fn response(
    resp: Answer,
    peeked: Bytes,
    held: Option<Held>,
    secret: &Secret,
    token: &TokenId,
    attempts: usize,
    idle: Duration,
) -> Response {
    let (head, body) = resp.into_parts();
    let encoded = url_encoded(secret.expose());
    let mut headers = HeaderMap::with_capacity(head.headers.len() + 8);
    for (name, value) in &head.headers {
        if !is_hop(name, &head.headers) {
            headers.append(name.clone(), masked(value, secret, &encoded));
        }
    }
    tag(&mut headers, token, attempts);
    let relay = Relay::new(peeked, body.into_data_stream(), held, idle);
    let mut out = Response::new(Body::from_stream(relay));
    *out.status_mut() = head.status;
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
            url.to_string(),
            "https://api.example.com/base/v1/geo?q=a%20b&z=1&key=s3cr3t%26x"
        );
        let p = parts("/proxy/maps", &[]);
        assert_eq!(
            target(&c, &base(&c).unwrap(), &p, &secret)
                .unwrap()
                .to_string(),
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
            assert_eq!(url.to_string(), expected, "{uri}");
        }
        // Dot segments (plain or percent-encoded) resolve inside the base path: a caller
        // cannot climb above it.
        let c = ProxyConfig::new(
            "b",
            "https://u:8443/v1/",
            "p",
            Inject::header("X-Key", "{token}"),
        );
        for (uri, expected) in [
            ("/proxy/b/../admin", "https://u:8443/v1/admin"),
            ("/proxy/b/%2E%2e/%2e/admin/", "https://u:8443/v1/admin/"),
            ("/proxy/b/x/..", "https://u:8443/v1/"),
            ("/proxy/b/a.json?x=1", "https://u:8443/v1/a.json?x=1"),
        ] {
            let url = target(&c, &base(&c).unwrap(), &parts(uri, &[]), &secret).unwrap();
            assert_eq!(url.to_string(), expected, "{uri}");
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
        let encoded = url_encoded(secret.expose());
        let m = masked(&v, &secret, &encoded);
        assert!(!m.to_str().unwrap().contains("sk-abcdefghijklmnop"));
        assert_eq!(
            masked(&HeaderValue::from_static("fine"), &secret, &encoded),
            "fine"
        );
        let secret = Secret::new("a b&c");
        let encoded = url_encoded(secret.expose());
        assert_eq!(encoded, "a+b%26c");
        let v = HeaderValue::from_static("https://u/x?k=a+b%26c");
        assert!(!masked(&v, &secret, &encoded)
            .to_str()
            .unwrap()
            .contains("a+b%26c"));
    }
}
