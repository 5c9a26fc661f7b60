//! A small demo API behind proxy mode (`tokenlb up --demo` routes `/proxy/demo/…` here), so
//! a newcomer can watch a token being injected, classified and rotated with `curl` alone.
//!
//! `ANY /demo-api/<path>` wants `Authorization: Bearer <access token>` of one of the
//! emulator's tokens and answers by that token's fault (`POST /_emulator/control`
//! `{"tokens":{…}}`): `ok` → 200 with a small JSON body (`/demo-api/stream`: five
//! server-sent events, 100 ms apart); `expired` (or an unknown token, or none) → 401;
//! `rate_limited` → 429 with `Retry-After: retry_after_s`; `quota` → 402; `error` → 500.
//! `down` answers 502, `error_rate` 500, `latency_ms` delays, as for the dispatchers.

use super::state::TokenCheck;
use super::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::time::Duration;
use tokenlb_core::secret::mask;

fn refuse(status: StatusCode, message: &str) -> Response {
    let body = json!({ "error": { "code": status.as_u16(), "message": message } });
    (status, Json(body)).into_response()
}

pub(crate) async fn handle(
    State(s): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("")
        .to_string();
    let (down, latency_ms, fail, retry_after_s, check) = {
        let mut inner = s.inner.lock();
        inner.count("demo_api");
        let fail = inner.roll_error();
        let st = &inner.settings;
        let (down, latency, retry) = (st.down, st.latency_ms, st.retry_after_s);
        (down, latency, fail, retry, inner.check_token(&token))
    };
    if latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(latency_ms)).await;
    }
    if down {
        return refuse(StatusCode::BAD_GATEWAY, "the demo API is down");
    }
    if fail {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "injected error");
    }
    match check {
        TokenCheck::Valid(_) => {}
        TokenCheck::Invalid => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "missing, unknown or expired bearer token",
            )
        }
        TokenCheck::RateLimited => {
            let mut r = refuse(StatusCode::TOO_MANY_REQUESTS, "rate limited");
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
            return r;
        }
        TokenCheck::Quota => return refuse(StatusCode::PAYMENT_REQUIRED, "quota exhausted"),
        TokenCheck::Error => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "this token's backend failed",
            )
        }
    }
    let path = uri.path().strip_prefix("/demo-api").unwrap_or("");
    if path == "/stream" {
        return stream();
    }
    Json(json!({
        "ok": true,
        "method": method.as_str(),
        "path": if path.is_empty() { "/" } else { path },
        "query": uri.query(),
        "token": mask(&token),
    }))
    .into_response()
}

/// Five server-sent events, 100 ms apart.
fn stream() -> Response {
    let events = futures::stream::unfold(0u32, |n| async move {
        if n >= 5 {
            return None;
        }
        if n > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let event = format!("data: {{\"n\":{n}}}\n\n");
        Some((Ok::<_, std::io::Error>(bytes::Bytes::from(event)), n + 1))
    });
    let mut r = Response::new(Body::from_stream(events));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    r
}
