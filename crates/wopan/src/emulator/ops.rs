//! The operations the emulator answers, as pure functions of the state and the decrypted
//! `param`. They return a [`Reply`]; the dispatcher turns it into the envelope (encrypting
//! `DATA` with the channel key when asked). Field names and types follow the captures
//! (research notes §5).

use super::state::TokenCheck;
use super::state::TokenRec;
use super::tree::SpaceKey;
use super::Shared;
use crate::crypto::CLIENT_SECRET;
use crate::types::{
    CloudUsage, FamilyInfo, LinkItem, LinkListV2, Listing, RawTokenPair, UsageInfo, UserInfo,
};
use axum::http::StatusCode;
use serde_json::Value;

/// What an operation answers.
pub(crate) enum Reply {
    /// `RSP_CODE 0000`, DATA = this JSON, encrypted.
    Encrypted(Value),
    /// `RSP_CODE 0000`, DATA = this JSON, plain.
    Plain(Value),
    /// `RSP_CODE 0000`, DATA = "".
    Empty,
    /// A business error: code and description, DATA = "".
    Biz(String, String),
    /// A transport-level failure with an optional `Retry-After`.
    Http(StatusCode, Option<u64>),
}

impl Reply {
    pub fn biz(code: &str, desc: &str) -> Reply {
        Reply::Biz(code.to_string(), desc.to_string())
    }
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

pub(crate) const FAMILY_DENIED: (&str, &str) =
    ("120002", "家庭组不存在或该用户不是选择的家庭组成员");
const LOGIN_FAILED: (&str, &str) = ("8005", "登录失败！");

/// The answer to a token that may not be used.
pub(crate) fn token_refusal(s: &Shared, check: &TokenCheck) -> Reply {
    let settings = s.inner.lock().settings.clone();
    match check {
        TokenCheck::RateLimited => Reply::Http(
            StatusCode::from_u16(settings.rate_limit_status)
                .unwrap_or(StatusCode::TOO_MANY_REQUESTS),
            Some(settings.retry_after_s),
        ),
        TokenCheck::Quota => Reply::Http(quota_status(), None),
        TokenCheck::Error => Reply::Http(StatusCode::INTERNAL_SERVER_ERROR, None),
        TokenCheck::Invalid | TokenCheck::Valid(_) => match settings.invalid_code {
            1001 => Reply::biz("1001", "无效登录信息"),
            _ => Reply::biz("9999", "系统异常"),
        },
    }
}

/// HTTP 509 "bandwidth limit exceeded": the emulator's quota answer.
pub(crate) fn quota_status() -> StatusCode {
    StatusCode::from_u16(509).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
}

pub(crate) fn str_param<'a>(param: &'a Value, name: &str) -> Option<&'a str> {
    param.get(name).and_then(Value::as_str)
}

/// A parameter that may be a JSON number or a numeric string.
pub(crate) fn num_param(param: &Value, name: &str) -> Option<u64> {
    match param.get(name)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// api-user operations.
pub(crate) fn api_user(s: &Shared, op: &str, param: &Value, header_token: Option<&str>) -> Reply {
    match op {
        "AppQueryUser" => {
            let token = str_param(param, "accessToken")
                .or(header_token)
                .unwrap_or_default();
            let check = s.inner.lock().check_token(token);
            let TokenCheck::Valid(rec) = check else {
                return token_refusal(s, &check);
            };
            Reply::Encrypted(to_json(&UserInfo {
                user_id: rec.user.phone.clone(),
                user_name: rec.user.name.clone(),
                is_modify: "0".into(),
                is_head_modify: "0".into(),
                is_set_password: "1".into(),
                register_time: "20220221185416".into(),
                ..UserInfo::default()
            }))
        }
        "AppRefreshToken" => {
            let refresh = str_param(param, "refreshToken").unwrap_or_default();
            if str_param(param, "clientSecret") != Some(CLIENT_SECRET) {
                return Reply::biz(LOGIN_FAILED.0, LOGIN_FAILED.1);
            }
            match s.inner.lock().refresh(refresh) {
                Some((access_token, refresh_token, expires_in)) => {
                    Reply::Plain(to_json(&RawTokenPair {
                        access_token,
                        token_type: "bearer".into(),
                        refresh_token,
                        expires_in,
                        scope: "all".into(),
                    }))
                }
                None => Reply::biz(LOGIN_FAILED.0, LOGIN_FAILED.1),
            }
        }
        "AppLogout" => {
            let token = str_param(param, "accessToken")
                .or(header_token)
                .unwrap_or_default();
            let mut inner = s.inner.lock();
            match inner.tokens.remove(token) {
                Some(rec) => {
                    if let Some(r) = rec.refresh {
                        inner.refresh.remove(&r);
                    }
                    Reply::Empty
                }
                None => {
                    drop(inner);
                    token_refusal(s, &TokenCheck::Invalid)
                }
            }
        }
        _ => Reply::biz("0005", "未知的接口"),
    }
}

/// The space a wohome call addresses, checked against the token's family.
pub(crate) fn space_of(param: &Value, rec: &TokenRec, s: &Shared) -> Result<SpaceKey, Reply> {
    space_from(param, "spaceType", &["familyId"], false, rec, s)
}

/// The space named by the field `type_field` ("0" personal, "1" family; absent = personal)
/// and the first present of `family_fields`. With `token_family`, a family call that names
/// no family means the token's own (the captured `DeleteFile` names none).
pub(crate) fn space_from(
    param: &Value,
    type_field: &str,
    family_fields: &[&str],
    token_family: bool,
    rec: &TokenRec,
    s: &Shared,
) -> Result<SpaceKey, Reply> {
    let space_type = match param.get(type_field) {
        None => Some(0),
        Some(_) => num_param(param, type_field),
    };
    match space_type {
        Some(0) => Ok(SpaceKey::Personal),
        Some(1) => {
            let named = family_fields.iter().find_map(|f| num_param(param, f));
            let fam = match named {
                None if token_family => rec.family_id,
                other => other,
            };
            match fam {
                Some(id)
                    if rec.family_id == Some(id) && s.tree.read().families.contains_key(&id) =>
                {
                    Ok(SpaceKey::Family(id))
                }
                _ => Err(Reply::biz(FAMILY_DENIED.0, FAMILY_DENIED.1)),
            }
        }
        _ => Err(Reply::biz("0006", "不支持的空间类型")),
    }
}

/// May this token read this space?
fn may_read(rec: &TokenRec, space: SpaceKey) -> bool {
    match space {
        SpaceKey::Personal => true,
        SpaceKey::Family(id) => rec.family_id == Some(id),
    }
}

/// wohome operations.
pub(crate) fn wohome(
    s: &Shared,
    op: &str,
    param: &Value,
    token: &str,
    rec: &TokenRec,
    base: &str,
) -> Reply {
    match op {
        "QueryAllFiles" => query_all_files(s, param, rec),
        "GetDownloadUrlV2" => {
            let list = links(s, param, token, rec, base, None);
            Reply::Encrypted(to_json(&LinkListV2 { list_type: 1, list }))
        }
        "GetDownloadUrl" => {
            // The captured v1 call names `spaceType` but no `familyId`: family means the
            // token's own family.
            let mut p = param.clone();
            if let (Some(1), Some(id), Some(obj)) = (
                num_param(param, "spaceType"),
                rec.family_id,
                p.as_object_mut(),
            ) {
                obj.insert("familyId".into(), Value::String(id.to_string()));
            }
            let space = match space_of(&p, rec, s) {
                Ok(space) => space,
                Err(reply) => return reply,
            };
            Reply::Encrypted(to_json(&links(s, param, token, rec, base, Some(space))))
        }
        "FamilyUserCurrentEncode" => match rec.family_id.and_then(|id| {
            s.tree
                .read()
                .families
                .get(&id)
                .map(|f| (id, f.name.clone()))
        }) {
            Some((id, name)) => Reply::Encrypted(to_json(&FamilyInfo {
                default_home_id: id,
                id,
                default_home_name: name.clone(),
                group_name: name,
                member_role: "1".into(),
                count: "1".into(),
                unread_flag: "0".into(),
                ..FamilyInfo::default()
            })),
            None => Reply::biz(FAMILY_DENIED.0, FAMILY_DENIED.1),
        },
        "QueryCloudUsageInfo" => Reply::Encrypted(to_json(&usage(s))),
        // The upload host is the emulator itself.
        "GetZoneInfo" => Reply::Encrypted(serde_json::json!({ "url": base })),
        _ => super::write::wohome(s, op, param, rec),
    }
}

fn query_all_files(s: &Shared, param: &Value, rec: &TokenRec) -> Reply {
    let space = match space_of(param, rec, s) {
        Ok(space) => space,
        Err(reply) => return reply,
    };
    let parent = str_param(param, "parentDirectoryId").unwrap_or("0");
    let page = num_param(param, "pageNum").unwrap_or(0);
    let size = num_param(param, "pageSize").unwrap_or(50).clamp(1, 1000);
    let start = usize::try_from(page.saturating_mul(size)).unwrap_or(usize::MAX);
    let tree = s.tree.read();
    let Some(space_tree) = tree.space(space) else {
        return Reply::biz(FAMILY_DENIED.0, FAMILY_DENIED.1);
    };
    let files = space_tree
        .list(parent)
        .unwrap_or_default()
        .into_iter()
        .skip(start)
        .take(size as usize)
        .cloned()
        .collect();
    drop(tree);
    let at_personal_root = space == SpaceKey::Personal && parent == "0";
    Reply::Encrypted(to_json(&Listing {
        files,
        system_dirs: at_personal_root.then(Vec::new),
    }))
}

/// Links for the requested fids this token may read (and, for v1, in the named space).
fn links(
    s: &Shared,
    param: &Value,
    token: &str,
    rec: &TokenRec,
    base: &str,
    only: Option<SpaceKey>,
) -> Vec<LinkItem> {
    let fids: Vec<&str> = param
        .get("fidList")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).take(100).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for fid in fids {
        let Some(space) = s.tree.read().by_fid(fid).map(|(space, _)| space) else {
            continue;
        };
        if !may_read(rec, space) || only.is_some_and(|o| o != space) {
            continue;
        }
        let id = s.inner.lock().new_link(space, fid, token);
        out.push(LinkItem {
            fid: fid.to_string(),
            download_url: format!("{base}/openapi/download?fid={id}"),
        });
    }
    out
}

fn usage(s: &Shared) -> CloudUsage {
    let mut by_type = [0u64; 6];
    let tree = s.tree.read();
    for e in tree.personal.files() {
        let t: usize = e.file_type.parse().unwrap_or(5).min(5);
        by_type[t] += e.size;
    }
    let used = tree.personal.used_bytes();
    drop(tree);
    let kib = |b: u64| b.div_ceil(1024);
    CloudUsage {
        code: "0000".into(),
        usage_info: UsageInfo {
            total_size: (TOTAL_BYTES / 1024).to_string(),
            used_size: kib(used),
            image_size: kib(by_type[1]),
            video_size: kib(by_type[2]),
            audio_size: kib(by_type[3]),
            text_size: kib(by_type[4]),
            other_size: kib(by_type[5]),
            byte_used_size: used,
            byte_total_size: TOTAL_BYTES.to_string(),
        },
        vip_level: "0".into(),
        expire_time: "20991231235959".into(),
        status: "1".into(),
    }
}

/// The quota of every account (10 GiB, as in the capture).
pub(crate) const TOTAL_BYTES: u64 = 10 * 1024 * 1024 * 1024;
