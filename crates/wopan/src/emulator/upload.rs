//! The upload host: `POST /openapi/client/upload2C`, one multipart form per part.
//!
//! `GetZoneInfo` names the emulator itself as the upload host. Each part is checked the way
//! the real host presumably checks it: the form fields of research notes §5.2 present; the
//! token (the `accessToken` field, or the `Accesstoken` header) valid, with its faults
//! applied (expired → the invalid code, rate limited → 429/503 + `Retry-After`, quota →
//! 509); `fileInfo` decrypting with the token's wohome key and agreeing with the fields;
//! `partSize` equal to the bytes of the `file` part; the space the token's. Parts are kept per
//! `uniqueId` (a part sent again replaces the earlier copy, so a client's retry is harmless),
//! (a part of a finished upload sent again gets the same answer, fid included), and when all
//! `totalPart` are in, they are joined in `partIndex` order, checked against
//! `fileSize`, and the file appears in the folder with a new `fid`, served by the download
//! host like any other and counted in the quota.
//!
//! Answers use the host's own shape, `{"code","msg","data"}`, with HTTP 200:
//! `0000 上传成功 {"fid"}` for the last part, `0000 分片上传成功 {"partIndex"}` for the
//! others (what the real host answers there is not captured). Refusals use the emulator's
//! codes: `0001` malformed form, `0004` `fileInfo` does not decrypt, `0007` unknown folder,
//! `0008` name taken, `0011` parts that do not add up, `0012` no room (quota or the
//! emulator's memory cap), `120002` another family, and the invalid-token code. Uploaded bytes
//! are kept in memory ([`MAX_STORED_BYTES`] in all).

use super::dispatch::http_error;
use super::ops::{space_from, token_refusal, Reply, TOTAL_BYTES};
use super::state::TokenCheck;
use super::tree::SpaceKey;
use super::AppState;
use crate::crypto::{self, ChannelKey};
use crate::multipart;
use crate::types::FileInfo;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Largest part form accepted (the client's parts are at most 32 MiB, the last at most twice
/// that).
const MAX_FORM: usize = 65 * 1024 * 1024;
/// Uploads in progress kept at once; beyond it the oldest is forgotten.
const MAX_PENDING: usize = 64;
/// Finished uploads remembered for repeated parts.
const MAX_FINISHED: usize = 4096;
/// Bytes of uploaded content the emulator keeps in memory, finished and pending together.
pub const MAX_STORED_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// An upload whose parts are still arriving.
pub(crate) struct Pending {
    token: String,
    space: SpaceKey,
    dir: String,
    name: String,
    size: u64,
    total: u64,
    parts: BTreeMap<u64, Bytes>,
    started: Instant,
}

impl Pending {
    pub fn bytes(&self) -> u64 {
        self.parts.values().map(|p| p.len() as u64).sum()
    }
}

fn answer(code: &str, msg: &str, data: Value) -> Response {
    Json(json!({ "code": code, "msg": msg, "data": data })).into_response()
}

fn refuse(code: &str, msg: &str) -> Response {
    answer(code, msg, Value::Null)
}

fn malformed() -> Response {
    refuse("0001", "请求报文格式错误")
}

/// The form's text fields and its file part.
struct Form {
    fields: HashMap<String, String>,
    file: Bytes,
}

fn read_form(headers: &HeaderMap, body: &Bytes) -> Option<Form> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let boundary = multipart::boundary_of(ct)?;
    let mut fields = HashMap::new();
    let mut file = None;
    for part in multipart::parse(body, &boundary).ok()? {
        if part.name == "file" {
            file = Some(part.data);
        } else {
            fields.insert(part.name, String::from_utf8(part.data.to_vec()).ok()?);
        }
    }
    Some(Form {
        fields,
        file: file?,
    })
}

pub(crate) async fn handle(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let read = axum::body::to_bytes(body, MAX_FORM).await;
    let (down, latency_ms, fail) = {
        let mut inner = s.inner.lock();
        inner.count("upload2C");
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
    let Ok(body) = read else {
        return http_error(StatusCode::PAYLOAD_TOO_LARGE, None);
    };
    let Some(form) = read_form(&headers, &body) else {
        return malformed();
    };
    accept_part(&s, &headers, form)
}

fn field_u64(form: &Form, name: &str) -> Option<u64> {
    form.fields.get(name)?.trim().parse().ok()
}

fn accept_part(s: &AppState, headers: &HeaderMap, form: Form) -> Response {
    let token = form
        .fields
        .get("accessToken")
        .cloned()
        .or_else(|| {
            headers
                .get("accesstoken")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default();
    let check = s.inner.lock().check_token(&token);
    let (rec, key) = match (check, ChannelKey::wohome(&token)) {
        (TokenCheck::Valid(rec), Ok(key)) => (rec, key),
        (TokenCheck::Valid(_), Err(_)) => return refusal(s, &TokenCheck::Invalid),
        (other, _) => return refusal(s, &other),
    };
    let info: Option<FileInfo> = form
        .fields
        .get("fileInfo")
        .and_then(|ct| crypto::decrypt(&key, ct).ok())
        .and_then(|text| serde_json::from_str(&text).ok());
    let Some(info) = info else {
        return refuse("0004", "参数解密失败");
    };
    let (Some(size), Some(total), Some(part_size), Some(index)) = (
        field_u64(&form, "fileSize"),
        field_u64(&form, "totalPart"),
        field_u64(&form, "partSize"),
        field_u64(&form, "partIndex"),
    ) else {
        return malformed();
    };
    let name = form.fields.get("fileName").cloned().unwrap_or_default();
    let dir = form.fields.get("directoryId").cloned().unwrap_or_default();
    let unique = form.fields.get("uniqueId").cloned().unwrap_or_default();
    let consistent = info.file_name == name
        && info.file_size == size
        && info.directory_id == dir
        && part_size == form.file.len() as u64
        && (1..=total).contains(&index)
        && total <= 100_000
        && !unique.is_empty();
    if !consistent {
        return refuse("0011", "分片信息不一致");
    }
    let info_value = serde_json::to_value(&info).unwrap_or(Value::Null);
    let space = match space_from(&info_value, "spaceType", &["familyId"], false, &rec, s) {
        Ok(space) => space,
        Err(Reply::Biz(code, desc)) => return refuse(&code, &desc),
        Err(_) => return malformed(),
    };
    let used = s
        .tree
        .read()
        .space(space)
        .map(|t| t.used_bytes())
        .unwrap_or(0);
    if used.saturating_add(size) > TOTAL_BYTES {
        return refuse("0012", "空间不足");
    }
    let pending = Pending {
        token: token.clone(),
        space,
        dir,
        name,
        size,
        total,
        parts: BTreeMap::new(),
        started: Instant::now(),
    };
    store_part(s, unique, pending, index, form.file, &rec.user.phone)
}

fn refusal(s: &AppState, check: &TokenCheck) -> Response {
    match token_refusal(s, check) {
        Reply::Http(status, retry) => http_error(status, retry),
        Reply::Biz(code, desc) => refuse(&code, &desc),
        _ => malformed(),
    }
}

/// Keeps the part; joins the file when it was the last one missing.
fn store_part(
    s: &AppState,
    unique: String,
    fresh: Pending,
    index: u64,
    data: Bytes,
    creator: &str,
) -> Response {
    let finished = {
        let mut inner = s.inner.lock();
        if let Some((token, fid)) = inner.finished_uploads.get(&unique) {
            if *token != fresh.token {
                return refuse("0011", "分片信息不一致");
            }
            let data = if index == fresh.total {
                json!({ "fid": fid })
            } else {
                json!({ "partIndex": index })
            };
            return answer("0000", "上传成功", data);
        }
        let stored =
            inner.stored_upload_bytes + inner.uploads.values().map(Pending::bytes).sum::<u64>();
        if stored.saturating_add(data.len() as u64) > MAX_STORED_BYTES {
            return refuse("0012", "空间不足");
        }
        if !inner.uploads.contains_key(&unique) && inner.uploads.len() >= MAX_PENDING {
            let oldest = inner
                .uploads
                .iter()
                .min_by_key(|(_, p)| p.started)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                inner.uploads.remove(&k);
            }
        }
        if let Some(p) = inner.uploads.get(&unique) {
            let same = p.token == fresh.token
                && p.size == fresh.size
                && p.total == fresh.total
                && p.name == fresh.name
                && p.dir == fresh.dir
                && p.space == fresh.space;
            if !same {
                return refuse("0011", "分片信息不一致");
            }
        }
        let p = inner.uploads.entry(unique.clone()).or_insert(fresh);
        p.parts.insert(index, data);
        if p.parts.len() as u64 == p.total {
            inner.uploads.remove(&unique)
        } else {
            None
        }
    };
    let Some(done) = finished else {
        return answer("0000", "分片上传成功", json!({ "partIndex": index }));
    };
    let joined: u64 = done.bytes();
    if joined != done.size {
        return refuse("0011", "分片信息不一致");
    }
    let mut whole = Vec::with_capacity(done.size as usize);
    for part in done.parts.values() {
        whole.extend_from_slice(part);
    }
    let added = s.tree.write().add_file(
        done.space,
        &done.dir,
        &done.name,
        Bytes::from(whole),
        creator,
    );
    match added {
        Ok(entry) => {
            let mut inner = s.inner.lock();
            inner.stored_upload_bytes += done.size;
            if inner.finished_uploads.len() >= MAX_FINISHED {
                inner.finished_uploads.clear();
            }
            inner
                .finished_uploads
                .insert(unique, (done.token.clone(), entry.fid.clone()));
            drop(inner);
            answer("0000", "上传成功", json!({ "fid": entry.fid }))
        }
        Err(super::tree::TreeError::NameTaken) => refuse("0008", "文件名已存在"),
        Err(_) => refuse("0007", "文件或目录不存在"),
    }
}
