//! The two dispatcher endpoints: read the envelope, check it the way the real gateway is
//! believed to (sign, channel, known key, token), decrypt `param`, run the operation and
//! write the answer in the real envelope.
//!
//! Order of checks: parse → sign → channel → key → (wohome) access token → decrypt → op.
//! Injected faults (`down`, latency, `error_rate`) apply before any of that is answered.

use super::ops::{self, Reply};
use super::state::TokenCheck;
use super::AppState;
use crate::crypto::{self, ChannelKey};
use crate::envelope::{response_json, Channel, Header};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::time::Duration;

/// A rejected request: the emulator's own codes (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reject {
    Malformed,
    BadSign,
    WrongChannel,
    Undecryptable,
    UnknownKey,
}

impl Reject {
    fn reply(self) -> Reply {
        let (code, desc) = match self {
            Reject::Malformed => ("0001", "请求报文格式错误"),
            Reject::BadSign => ("0002", "签名校验失败"),
            Reject::WrongChannel => ("0003", "渠道不匹配"),
            Reject::Undecryptable => ("0004", "参数解密失败"),
            Reject::UnknownKey => ("0005", "未知的接口"),
        };
        Reply::biz(code, desc)
    }
}

struct Request {
    header: Header,
    body: serde_json::Map<String, Value>,
}

const API_USER_OPS: &[&str] = &["AppQueryUser", "AppRefreshToken", "AppLogout"];
const WOHOME_OPS: &[&str] = &[
    "QueryAllFiles",
    "GetDownloadUrlV2",
    "GetDownloadUrl",
    "FamilyUserCurrentEncode",
    "QueryCloudUsageInfo",
    "GetZoneInfo",
    "CreateDirectory",
    "RenameFileOrDirectory",
    "MoveFile",
    "CopyFile",
    "DeleteFile",
    "EmptyRecycleData",
];

fn parse(channel: Channel, body: &[u8]) -> Result<Request, Reject> {
    let v: Value = serde_json::from_slice(body).map_err(|_| Reject::Malformed)?;
    let Value::Object(mut top) = v else {
        return Err(Reject::Malformed);
    };
    let header: Header = top
        .remove("header")
        .and_then(|h| serde_json::from_value(h).ok())
        .ok_or(Reject::Malformed)?;
    let body = match top.remove("body") {
        Some(Value::Object(b)) => b,
        None => serde_json::Map::new(),
        Some(_) => return Err(Reject::Malformed),
    };
    if !header.sign_ok() {
        return Err(Reject::BadSign);
    }
    if header.channel != channel.as_str() {
        return Err(Reject::WrongChannel);
    }
    let known = match channel {
        Channel::ApiUser => API_USER_OPS,
        Channel::Wohome => WOHOME_OPS,
    };
    if !known.contains(&header.key.as_str()) {
        return Err(Reject::UnknownKey);
    }
    Ok(Request { header, body })
}

/// `param` as a JSON object: decrypted when it is a string, as is when an object, `{}` when
/// absent.
fn open_param(body: &serde_json::Map<String, Value>, key: &ChannelKey) -> Result<Value, Reject> {
    match body.get("param") {
        None | Some(Value::Null) => Ok(Value::Object(Default::default())),
        Some(v @ Value::Object(_)) => Ok(v.clone()),
        Some(Value::String(ct)) => {
            let text = crypto::decrypt(key, ct).map_err(|_| Reject::Undecryptable)?;
            match serde_json::from_str(&text) {
                Ok(v @ Value::Object(_)) => Ok(v),
                _ => Err(Reject::Undecryptable),
            }
        }
        Some(_) => Err(Reject::Malformed),
    }
}

pub(crate) async fn api_user(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(s, Channel::ApiUser, headers, body).await
}

pub(crate) async fn wohome(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    handle(s, Channel::Wohome, headers, body).await
}

/// Any other path: a JSON 404 in the envelope's shape, never HTML.
pub(crate) async fn not_found() -> Response {
    let body = response_json(
        "404",
        "接口不存在",
        "0005",
        "未知的接口",
        Value::String(String::new()),
        &logid(),
    );
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

/// Largest dispatcher body read; a larger one is answered as malformed (0001).
const MAX_BODY: usize = 1024 * 1024;

async fn handle(s: AppState, channel: Channel, headers: HeaderMap, body: Body) -> Response {
    let parsed = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => parse(channel, &bytes),
        Err(_) => Err(Reject::Malformed),
    };
    let name = match &parsed {
        Ok(r) => r.header.key.clone(),
        Err(Reject::UnknownKey) => "_unknown".to_string(),
        Err(_) => "_malformed".to_string(),
    };
    let (down, latency_ms, fail) = {
        let mut inner = s.inner.lock();
        inner.count(&name);
        let fail = inner.roll_error();
        (inner.settings.down, inner.settings.latency_ms, fail)
    };
    if down {
        return http_error(StatusCode::BAD_GATEWAY, None);
    }
    if latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(latency_ms)).await;
    }
    if fail {
        return http_error(StatusCode::INTERNAL_SERVER_ERROR, None);
    }
    let req = match parsed {
        Ok(r) => r,
        Err(reject) => return write(reject.reply(), &ChannelKey::api_user()),
    };
    let (reply, key) = match channel {
        Channel::ApiUser => api_user_reply(&s, &req, &headers),
        Channel::Wohome => wohome_reply(&s, &req, &headers),
    };
    if let Reply::Biz(code, _) = &reply {
        tracing::debug!(op = %req.header.key, code = %code, "emulator refused");
    }
    write(reply, &key)
}

fn api_user_reply(s: &AppState, req: &Request, headers: &HeaderMap) -> (Reply, ChannelKey) {
    let key = ChannelKey::api_user();
    let reply = match open_param(&req.body, &key) {
        Ok(param) => ops::api_user(s, &req.header.key, &param, access_header(headers)),
        Err(r) => r.reply(),
    };
    (reply, key)
}

/// wohome: the token comes first, because its first 16 characters are the key.
fn wohome_reply(s: &AppState, req: &Request, headers: &HeaderMap) -> (Reply, ChannelKey) {
    let token = access_header(headers).unwrap_or_default().to_string();
    let checked = s.inner.lock().check_token(&token);
    let (rec, key) = match (checked, ChannelKey::wohome(&token)) {
        (TokenCheck::Valid(rec), Ok(key)) => (rec, key),
        (TokenCheck::Valid(_), Err(_)) => {
            return (
                ops::token_refusal(s, &TokenCheck::Invalid),
                ChannelKey::api_user(),
            )
        }
        (other, _) => return (ops::token_refusal(s, &other), ChannelKey::api_user()),
    };
    let base = link_base(s, headers);
    let reply = match open_param(&req.body, &key) {
        Ok(param) => ops::wohome(s, &req.header.key, &param, &token, &rec, &base),
        Err(r) => r.reply(),
    };
    (reply, key)
}

fn access_header(headers: &HeaderMap) -> Option<&str> {
    headers.get("accesstoken").and_then(|v| v.to_str().ok())
}

/// Where download links point: the configured public URL, the request's Host, or the
/// listening address.
fn link_base(s: &AppState, headers: &HeaderMap) -> String {
    if let Some(u) = &s.public_url {
        return u.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        });
    match (host, s.local_addr) {
        (Some(h), _) => format!("http://{h}"),
        (None, Some(a)) => format!("http://{a}"),
        (None, None) => "http://127.0.0.1".to_string(),
    }
}

pub(crate) fn logid() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A transport-level failure (502, 503, 500, 429, 509) with a small JSON body.
pub(crate) fn http_error(status: StatusCode, retry_after_s: Option<u64>) -> Response {
    let msg = status.canonical_reason().unwrap_or("error");
    let body = response_json(
        status.as_str(),
        msg,
        "",
        "",
        Value::String(String::new()),
        &logid(),
    );
    let mut resp = (status, axum::Json(body)).into_response();
    if let Some(s) = retry_after_s {
        if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

/// Writes a reply in the envelope, encrypting DATA with `key` when the reply asks for it.
fn write(reply: Reply, key: &ChannelKey) -> Response {
    let (code, desc, data) = match reply {
        Reply::Http(status, retry) => return http_error(status, retry),
        Reply::Encrypted(v) => {
            let text = serde_json::to_vec(&v).unwrap_or_default();
            (
                "0000".to_string(),
                "成功".to_string(),
                Value::String(crypto::encrypt(key, &text)),
            )
        }
        Reply::Plain(v) => ("0000".into(), "成功".into(), v),
        Reply::Empty => ("0000".into(), "成功".into(), Value::String(String::new())),
        Reply::Biz(code, desc) => (code, desc, Value::String(String::new())),
    };
    let body = response_json("200", "服务调用成功！", &code, &desc, data, &logid());
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    resp
}
