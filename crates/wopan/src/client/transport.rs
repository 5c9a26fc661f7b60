//! The transport of one dispatcher call: sign and encrypt the envelope, POST it with the web
//! client's headers, bound it in time (the whole exchange, body included) and in size (the
//! body is read chunk by chunk and refused past the cap), and turn every failure into a typed
//! [`WopanError`] that names no URL and no request data.

use super::WopanClient;
use super::BROWSER_UA;
use crate::crypto::ChannelKey;
use crate::envelope::{build_request, parse_response, BodyFlag, Channel, Data, Header};
use crate::error::WopanError;
use rand::Rng;
use reqwest::header::{HeaderValue, CONTENT_TYPE, ORIGIN, REFERER, RETRY_AFTER, USER_AGENT};
use serde_json::Value;
use tokenlb_core::{Millis, Secret};

/// Current Unix time in milliseconds.
pub(crate) fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis().max(0) as u64
}

impl WopanClient {
    /// One dispatcher call: sign, encrypt, POST, bound, check the envelope, return `DATA`.
    pub(super) async fn call(
        &self,
        channel: Channel,
        op: &str,
        token: Option<&Secret>,
        key: &ChannelKey,
        param: Value,
    ) -> Result<Data, WopanError> {
        self.call_flagged(channel, op, token, key, param, BodyFlag::Secret)
            .await
    }

    /// As [`WopanClient::call`], with the body flag chosen (`key:true` for `GetZoneInfo`).
    pub(super) async fn call_flagged(
        &self,
        channel: Channel,
        op: &str,
        token: Option<&Secret>,
        key: &ChannelKey,
        param: Value,
        flag: BodyFlag,
    ) -> Result<Data, WopanError> {
        let token_header =
            match token {
                Some(t) => Some(HeaderValue::from_str(t.expose()).map_err(|_| {
                    WopanError::TokenUnusable {
                        reason: "contains characters not allowed in an HTTP header".into(),
                    }
                })?),
                None => None,
            };
        let req_seq = rand::thread_rng().gen_range(100_000..190_000);
        let header = Header::new(op, channel, now_ms(), req_seq);
        let body = build_request(&header, channel, key, &param, flag);
        let url = self
            .base
            .join(channel.path())
            .map_err(|e| WopanError::Config(format!("dispatcher URL: {e}")))?;
        let mut req = self
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(ORIGIN, "https://pan.wo.cn")
            .header(REFERER, "https://pan.wo.cn/")
            .header(USER_AGENT, BROWSER_UA)
            .json(&body);
        if let Some(v) = token_header {
            req = req.header("Accesstoken", v);
        }
        let exchange = async {
            let resp = req.send().await.map_err(|e| net_error(op, &e))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(WopanError::Http {
                    op: op.to_string(),
                    status: status.as_u16(),
                    retry_after_s: retry_after(&resp),
                });
            }
            let bytes = read_capped(op, resp, self.cfg.max_response_bytes).await?;
            parse_response(op, &bytes)
        };
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(self.cfg.timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(WopanError::Timeout { op: op.to_string() }),
        };
        let ms = started.elapsed().as_millis() as u64;
        match &result {
            Ok(_) => tracing::debug!(op, ms, "wopan call ok"),
            Err(e) => {
                tracing::debug!(op, ms, class = %e.outcome_class(), error = %e, "wopan call failed")
            }
        }
        result
    }
}

/// A reqwest error as a typed error, without the URL and without any request data.
pub(crate) fn net_error(op: &str, e: &reqwest::Error) -> WopanError {
    if e.is_timeout() {
        return WopanError::Timeout { op: op.to_string() };
    }
    let kind = if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "response body broke off"
    } else {
        "request failed"
    };
    let mut last = None;
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        last = Some(s);
        src = s.source();
    }
    let reason = match last {
        Some(root) => format!("{kind}: {root}"),
        None => kind.to_string(),
    };
    WopanError::Network {
        op: op.to_string(),
        reason,
    }
}

/// `Retry-After` in seconds (the delta form; dates are ignored).
pub(crate) fn retry_after(resp: &reqwest::Response) -> Option<u64> {
    resp.headers()
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Reads the body chunk by chunk, failing as soon as it passes `limit`.
pub(crate) async fn read_capped(
    op: &str,
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, WopanError> {
    let too_large = || WopanError::TooLarge {
        op: op.to_string(),
        limit,
    };
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| net_error(op, &e))? {
        if buf.len() + chunk.len() > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}
