//! The dispatcher envelope: building signed, encrypted requests and reading responses.
//!
//! A request is `{"header":{key,resTime,reqSeq,channel,version,sign},"body":{param,…}}`; the
//! operation is chosen by `header.key`, not by the URL. A response is
//! `{"STATUS","MSG","LOGID","RSP":{"RSP_CODE","RSP_DESC","DATA"}}` where `DATA` takes three
//! forms (research notes §4): a base64 ciphertext string, a plain JSON value, or `""`. This
//! module is shared by the client and the emulator so both speak exactly the same shapes.

use crate::crypto::{self, ChannelKey, CLIENT_ID};
use crate::error::WopanError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The two dispatcher channels. Each is also the first URL path segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// `api-user`: login, user info, refresh. Key: the public client secret.
    ApiUser,
    /// `wohome`: files and spaces. Key: the first 16 characters of the access token.
    Wohome,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::ApiUser => "api-user",
            Channel::Wohome => "wohome",
        }
    }

    /// `/api-user/dispatcher` or `/wohome/dispatcher`.
    pub fn path(self) -> &'static str {
        match self {
            Channel::ApiUser => "/api-user/dispatcher",
            Channel::Wohome => "/wohome/dispatcher",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        match s {
            "api-user" => Some(Channel::ApiUser),
            "wohome" => Some(Channel::Wohome),
            _ => None,
        }
    }
}

/// The request header. Member order does not matter on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    pub key: String,
    /// Unix time in milliseconds (read leniently: a numeric string is accepted).
    #[serde(deserialize_with = "crate::types::lenient_u64")]
    pub res_time: u64,
    /// A random integer; the server accepts any.
    #[serde(deserialize_with = "crate::types::lenient_u64")]
    pub req_seq: u64,
    pub channel: String,
    /// Always `""`.
    #[serde(default)]
    pub version: String,
    pub sign: String,
}

impl Header {
    /// A signed header for `op` on `channel`.
    pub fn new(op: &str, channel: Channel, res_time: u64, req_seq: u64) -> Header {
        let channel = channel.as_str().to_string();
        let sign = crypto::sign(op, res_time, req_seq, &channel, "");
        Header {
            key: op.to_string(),
            res_time,
            req_seq,
            channel,
            version: String::new(),
            sign,
        }
    }

    /// Does `sign` match the other four values? (Case-insensitive hex.)
    pub fn sign_ok(&self) -> bool {
        let want = crypto::sign(
            &self.key,
            self.res_time,
            self.req_seq,
            &self.channel,
            &self.version,
        );
        want.eq_ignore_ascii_case(&self.sign)
    }
}

/// Which flag marks the encrypted body: `secret:true` on almost every call, `key:true` on
/// `ClassifyRule` and `GetZoneInfo` (the encryption is the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFlag {
    Secret,
    Key,
}

/// Builds a complete request envelope with `param` encrypted under `key`. On `api-user` the
/// body also carries `clientId`, as the web client sends it.
pub fn build_request(
    header: &Header,
    channel: Channel,
    key: &ChannelKey,
    param: &Value,
    flag: BodyFlag,
) -> Value {
    let plaintext = serde_json::to_vec(param).unwrap_or_else(|_| b"{}".to_vec());
    let mut body = serde_json::Map::new();
    body.insert(
        "param".into(),
        Value::String(crypto::encrypt(key, &plaintext)),
    );
    match flag {
        BodyFlag::Secret => body.insert("secret".into(), Value::Bool(true)),
        BodyFlag::Key => body.insert("key".into(), Value::Bool(true)),
    };
    if channel == Channel::ApiUser {
        body.insert("clientId".into(), Value::String(CLIENT_ID.into()));
    }
    json!({ "header": header, "body": body })
}

/// The three forms of `RSP.DATA`.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// A base64 ciphertext string: decrypt with the channel key, then parse.
    Encrypted(String),
    /// A plain JSON value (login, refresh, unencrypted wohome calls).
    Plain(Value),
    /// `""` (or absent/null): mutations with no result.
    Empty,
}

impl Data {
    fn from_value(v: Option<Value>) -> Data {
        match v {
            None | Some(Value::Null) => Data::Empty,
            Some(Value::String(s)) if s.is_empty() => Data::Empty,
            Some(Value::String(s)) => Data::Encrypted(s),
            Some(other) => Data::Plain(other),
        }
    }

    /// The JSON value inside, decrypting when needed (`Empty` gives `null`).
    pub fn into_value(self, op: &str, key: &ChannelKey) -> Result<Value, WopanError> {
        match self {
            Data::Empty => Ok(Value::Null),
            Data::Plain(v) => Ok(v),
            Data::Encrypted(ct) => {
                let text = crypto::decrypt(key, &ct)
                    .map_err(|e| WopanError::malformed(op, format!("DATA: {e}")))?;
                serde_json::from_str(&text).map_err(|e| WopanError::json(op, "decrypted DATA", &e))
            }
        }
    }

    /// Decrypts when needed and deserialises into `T`.
    pub fn decode<T: DeserializeOwned>(self, op: &str, key: &ChannelKey) -> Result<T, WopanError> {
        let v = self.into_value(op, key)?;
        serde_json::from_value(v).map_err(|e| WopanError::json(op, "DATA shape", &e))
    }
}

#[derive(Deserialize)]
struct RawResponse {
    #[serde(rename = "STATUS")]
    status: Option<Value>,
    #[serde(rename = "MSG")]
    msg: Option<Value>,
    #[serde(rename = "RSP")]
    rsp: Option<RawRsp>,
}

#[derive(Deserialize)]
struct RawRsp {
    #[serde(rename = "RSP_CODE")]
    code: Option<Value>,
    #[serde(rename = "RSP_DESC")]
    desc: Option<Value>,
    #[serde(rename = "DATA")]
    data: Option<Value>,
}

fn text(v: &Option<Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses a response body, checks `STATUS` and `RSP_CODE`, and returns its `DATA`.
pub fn parse_response(op: &str, body: &[u8]) -> Result<Data, WopanError> {
    let raw: RawResponse = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            WopanError::malformed(op, "not the dispatcher envelope")
        } else {
            WopanError::json(op, "body is not JSON", &e)
        }
    })?;
    let status =
        text(&raw.status).ok_or_else(|| WopanError::malformed(op, "envelope has no STATUS"))?;
    if status != "200" {
        let msg = text(&raw.msg).unwrap_or_default();
        return Err(WopanError::gateway(op, &status, &msg));
    }
    let rsp = raw
        .rsp
        .ok_or_else(|| WopanError::malformed(op, "envelope has no RSP"))?;
    let code = text(&rsp.code).ok_or_else(|| WopanError::malformed(op, "RSP has no RSP_CODE"))?;
    if code != "0000" {
        let desc = text(&rsp.desc).unwrap_or_default();
        return Err(WopanError::api(op, &code, &desc));
    }
    Ok(Data::from_value(rsp.data))
}

/// A response envelope as the real service writes it (used by the emulator and test fakes).
pub fn response_json(
    status: &str,
    msg: &str,
    code: &str,
    desc: &str,
    data: Value,
    logid: &str,
) -> Value {
    json!({
        "STATUS": status,
        "MSG": msg,
        "LOGID": logid,
        "RSP": { "RSP_CODE": code, "RSP_DESC": desc, "DATA": data }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(data: Value) -> Vec<u8> {
        serde_json::to_vec(&response_json(
            "200",
            "服务调用成功！",
            "0000",
            "成功",
            data,
            "x",
        ))
        .unwrap()
    }

    #[test]
    fn data_forms() {
        let k = ChannelKey::api_user();
        let ct = crypto::encrypt(&k, br#"{"a":1}"#);
        let d = parse_response("Op", &ok(Value::String(ct))).unwrap();
        assert_eq!(d.into_value("Op", &k).unwrap(), json!({"a":1}));
        let d = parse_response("Op", &ok(json!({"b":2}))).unwrap();
        assert_eq!(d, Data::Plain(json!({"b":2})));
        assert_eq!(parse_response("Op", &ok(json!(""))).unwrap(), Data::Empty);
    }

    #[test]
    fn errors() {
        let e = parse_response("Op", b"<html>").unwrap_err();
        assert!(matches!(e, WopanError::Malformed { .. }));
        let e = parse_response("Op", br#"{"hello":1}"#).unwrap_err();
        assert!(matches!(e, WopanError::Malformed { .. }), "{e}");
        let e = parse_response("Op", br#"[1,2]"#).unwrap_err();
        assert!(matches!(e, WopanError::Malformed { .. }), "{e}");
        let body =
            serde_json::to_vec(&response_json("500", "boom", "", "", json!(""), "x")).unwrap();
        assert!(matches!(
            parse_response("Op", &body),
            Err(WopanError::Gateway { .. })
        ));
        let body = serde_json::to_vec(&response_json(
            "200",
            "",
            "9999",
            "系统异常",
            json!(""),
            "x",
        ))
        .unwrap();
        let e = parse_response("Op", &body).unwrap_err();
        assert!(e.is_token_expired());
    }

    #[test]
    fn header_sign_checks() {
        let mut h = Header::new("QueryAllFiles", Channel::Wohome, 1, 2);
        assert!(h.sign_ok());
        h.req_seq = 3;
        assert!(!h.sign_ok());
    }
}
