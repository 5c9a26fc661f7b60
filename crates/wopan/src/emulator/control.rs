//! Test control: `POST /_emulator/control` changes fault settings, `GET /_emulator/state`
//! reports them with masked tokens and call counts. Field meanings are in the module docs of
//! [`crate::emulator`]. A request is validated whole before anything changes, so a bad field
//! leaves the emulator as it was.

use super::state::{DownloadFault, TokenFault};
use super::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ControlRequest {
    down: Option<bool>,
    latency_ms: Option<u64>,
    error_rate: Option<f64>,
    tokens: Option<HashMap<String, TokenFault>>,
    invalid_code: Option<u32>,
    link_ttl_s: Option<u64>,
    token_ttl_s: Option<u64>,
    rotate_refresh: Option<bool>,
    rate_limit_status: Option<u16>,
    retry_after_s: Option<u64>,
    downloads: Option<DownloadFault>,
    reset_counts: Option<bool>,
}

fn bad_request(message: String) -> Response {
    let body = json!({ "error": { "code": "bad_request", "message": message } });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

pub(crate) async fn state(State(s): State<AppState>) -> Response {
    Json(s.inner.lock().report()).into_response()
}

pub(crate) async fn control(State(s): State<AppState>, body: Bytes) -> Response {
    let req: ControlRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(format!("control body: {e}")),
    };
    if let Some(p) = req.error_rate {
        if !(0.0..=1.0).contains(&p) {
            return bad_request("error_rate must be within 0..=1".into());
        }
    }
    if req.invalid_code.is_some_and(|c| c != 9999 && c != 1001) {
        return bad_request("invalid_code must be 9999 or 1001".into());
    }
    if req.rate_limit_status.is_some_and(|c| c != 429 && c != 503) {
        return bad_request("rate_limit_status must be 429 or 503".into());
    }
    if req.latency_ms.is_some_and(|l| l > 600_000) {
        return bad_request("latency_ms must be at most 600000".into());
    }
    let mut inner = s.inner.lock();
    if let Some(tokens) = &req.tokens {
        if let Some(unknown) = tokens.keys().find(|t| !inner.tokens.contains_key(*t)) {
            let shown = tokenlb_core::secret::mask(unknown);
            return bad_request(format!("unknown access token {shown}"));
        }
    }
    let st = &mut inner.settings;
    if let Some(v) = req.down {
        st.down = v;
    }
    if let Some(v) = req.latency_ms {
        st.latency_ms = v;
    }
    if let Some(v) = req.error_rate {
        st.error_rate = v;
    }
    if let Some(v) = req.invalid_code {
        st.invalid_code = v;
    }
    if let Some(v) = req.link_ttl_s {
        st.link_ttl_s = v;
    }
    if let Some(v) = req.token_ttl_s {
        st.token_ttl_s = v;
    }
    if let Some(v) = req.rotate_refresh {
        st.rotate_refresh = v;
    }
    if let Some(v) = req.rate_limit_status {
        st.rate_limit_status = v;
    }
    if let Some(v) = req.retry_after_s {
        st.retry_after_s = v;
    }
    if let Some(v) = req.downloads {
        st.downloads = v;
    }
    for (token, fault) in req.tokens.unwrap_or_default() {
        if let Some(rec) = inner.tokens.get_mut(&token) {
            rec.fault = fault;
        }
    }
    if req.reset_counts == Some(true) {
        inner.calls.clear();
    }
    Json(inner.report()).into_response()
}
