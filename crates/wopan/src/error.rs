//! Errors of the Wopan client, and how each maps onto tokenlb's outcome classes.
//!
//! The mapping decides a token's fate in the manager (DESIGN §2), so it is written out once,
//! here, as a table:
//!
//! | error | class | why |
//! |---|---|---|
//! | `RSP_CODE` `9999` 系统异常 | `auth` | what an expired access token produces; the public SDKs refresh on it |
//! | `RSP_CODE` `1001` 无效登录信息 | `auth` | invalid / expired login (OpenList-derived SDK refreshes on it) |
//! | `RSP_CODE` `8005` 登录失败！ | `auth` | login or refresh rejected: the refresh token is dead |
//! | `RSP_CODE` `120002` | `client_error` | wrong `familyId`: the request's (configuration's) fault, not the token's |
//! | any other `RSP_CODE` | `unknown` | undocumented business error; no evidence against the token |
//! | `STATUS` other than `"200"` | `transient` | the gateway itself failed |
//! | HTTP 429, HTTP 503 | `rate_limited` | with `Retry-After` when sent (OpenWoPan backs off on both) |
//! | HTTP 402, HTTP 509 | `quota_exhausted` | 509 "bandwidth limit exceeded"; the emulator's `quota` fault uses it |
//! | HTTP 401, 403 | `auth` | the upstream refused the caller |
//! | other HTTP 4xx | `client_error` | the request's fault |
//! | other HTTP 5xx | `transient` | server failure |
//! | timeout, connection refused/reset, TLS | `transient` | network |
//! | not JSON, not the envelope, DATA that does not decrypt or parse | `transient` | garbage usually comes from a proxy, captive portal or half-broken gateway, not from the token; counting it as transient lets repeated garbage cool the token without killing it |
//! | body larger than the cap | `transient` | same as garbage; nothing legitimate is that large |
//! | access token shorter than 16 bytes, or not sendable as a header | `auth` | such a token can never work |
//! | path component not found / not a folder, no link for the fid | `client_error` | the request's fault |
//! | bad client configuration | `client_error` | nothing to do with the token |
//! | upload source failed or sent another length than declared | `client_error` | the caller's body, not the token |
//!
//! Messages never contain a token: they name the operation, the code and the upstream's
//! description (truncated), and serde errors are reduced to their category and position so a
//! value from a response body cannot leak through them.

use tokenlb_core::{Outcome, OutcomeClass};

/// Longest upstream text (`MSG`, `RSP_DESC`) kept in an error.
const MAX_TEXT: usize = 120;

/// Everything that can go wrong talking to Wopan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WopanError {
    /// The access token is too short to derive the wohome AES key.
    #[error("access token has {len} bytes; wohome needs at least 16")]
    TokenTooShort { len: usize },
    /// The access token cannot be sent at all (characters not allowed in an HTTP header).
    #[error("access token is unusable: {reason}")]
    TokenUnusable { reason: String },
    /// The call did not finish within the configured timeout.
    #[error("{op}: timed out")]
    Timeout { op: String },
    /// Connection refused, reset, DNS, TLS, or the body broke off.
    #[error("{op}: network error: {reason}")]
    Network { op: String, reason: String },
    /// A non-2xx HTTP status (clients treat it as a transport failure).
    #[error("{op}: HTTP {status}")]
    Http {
        op: String,
        status: u16,
        retry_after_s: Option<u64>,
    },
    /// The response body exceeded the configured cap.
    #[error("{op}: response larger than {limit} bytes")]
    TooLarge { op: String, limit: usize },
    /// Not JSON, not the envelope, or a DATA that does not decrypt or parse.
    #[error("{op}: malformed response: {reason}")]
    Malformed { op: String, reason: String },
    /// `STATUS` other than "200".
    #[error("{op}: gateway status {status}: {msg}")]
    Gateway {
        op: String,
        status: String,
        msg: String,
    },
    /// `RSP_CODE` other than "0000".
    #[error("{op}: Wopan answered {code} {desc}")]
    Api {
        op: String,
        code: String,
        desc: String,
    },
    /// A path component does not exist.
    #[error("not found: {path}")]
    NotFound { path: String },
    /// An intermediate path component is a file.
    #[error("not a folder: {path}")]
    NotAFolder { path: String },
    /// The download-link answer had no entry for the requested fid.
    #[error("{op}: no download link for the requested file")]
    MissingLink { op: String },
    /// The client was configured wrongly (bad base URL, …).
    #[error("bad Wopan client configuration: {0}")]
    Config(String),
    /// The bytes to upload could not be read, or were not as many as declared.
    #[error("upload source: {reason}")]
    UploadSource { reason: String },
}

impl WopanError {
    pub(crate) fn api(op: &str, code: &str, desc: &str) -> Self {
        WopanError::Api {
            op: op.to_string(),
            code: truncate(code),
            desc: truncate(desc),
        }
    }

    pub(crate) fn gateway(op: &str, status: &str, msg: &str) -> Self {
        WopanError::Gateway {
            op: op.to_string(),
            status: truncate(status),
            msg: truncate(msg),
        }
    }

    pub(crate) fn malformed(op: &str, reason: impl Into<String>) -> Self {
        WopanError::Malformed {
            op: op.to_string(),
            reason: reason.into(),
        }
    }

    /// A serde error reduced to category and position (its message may quote body values).
    pub(crate) fn json(op: &str, what: &str, e: &serde_json::Error) -> Self {
        Self::malformed(
            op,
            format!(
                "{what}: {:?} error at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ),
        )
    }

    /// The outcome class to report for this error (see the module table).
    pub fn outcome_class(&self) -> OutcomeClass {
        match self {
            WopanError::Api { code, .. } => api_code_class(code),
            WopanError::Http { status, .. } => http_status_class(*status),
            WopanError::TokenTooShort { .. } | WopanError::TokenUnusable { .. } => {
                OutcomeClass::Auth
            }
            WopanError::Timeout { .. }
            | WopanError::Network { .. }
            | WopanError::TooLarge { .. }
            | WopanError::Malformed { .. }
            | WopanError::Gateway { .. } => OutcomeClass::Transient,
            WopanError::NotFound { .. }
            | WopanError::NotAFolder { .. }
            | WopanError::MissingLink { .. }
            | WopanError::Config(_)
            | WopanError::UploadSource { .. } => OutcomeClass::ClientError,
        }
    }

    /// The outcome to report for this error: class, HTTP status, retry-after and a short
    /// message (which never contains a token).
    pub fn to_outcome(&self) -> Outcome {
        let mut o = Outcome::new(self.outcome_class());
        o.status = match self {
            WopanError::Http { status, .. } => Some(*status),
            _ => None,
        };
        o.retry_after_s = self.retry_after_s();
        o.error = Some(self.to_string());
        o
    }

    /// `Retry-After` seconds sent with a 429/503, if any.
    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            WopanError::Http { retry_after_s, .. } => *retry_after_s,
            _ => None,
        }
    }

    /// True for the codes on which public clients refresh the access token and retry once
    /// (`9999`, `1001`).
    pub fn is_token_expired(&self) -> bool {
        matches!(self, WopanError::Api { code, .. } if code == "9999" || code == "1001")
    }

    /// The upstream's `RSP_CODE`, when the error is a business error.
    pub fn api_code(&self) -> Option<&str> {
        match self {
            WopanError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Outcome class of a business `RSP_CODE` (see the module table).
pub fn api_code_class(code: &str) -> OutcomeClass {
    match code {
        "0000" => OutcomeClass::Success,
        "9999" | "1001" | "8005" => OutcomeClass::Auth,
        "120002" => OutcomeClass::ClientError,
        _ => OutcomeClass::Unknown,
    }
}

/// Outcome class of a non-2xx HTTP status from the dispatcher or the download host.
pub fn http_status_class(status: u16) -> OutcomeClass {
    match status {
        429 | 503 => OutcomeClass::RateLimited,
        402 | 509 => OutcomeClass::QuotaExhausted,
        other => OutcomeClass::from_http_status(other, false),
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() <= MAX_TEXT {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX_TEXT).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let c = |code: &str| WopanError::api("Op", code, "x").outcome_class();
        assert_eq!(c("9999"), OutcomeClass::Auth);
        assert_eq!(c("1001"), OutcomeClass::Auth);
        assert_eq!(c("8005"), OutcomeClass::Auth);
        assert_eq!(c("120002"), OutcomeClass::ClientError);
        assert_eq!(c("4242"), OutcomeClass::Unknown);
        let h = |status| {
            WopanError::Http {
                op: "Op".into(),
                status,
                retry_after_s: None,
            }
            .outcome_class()
        };
        assert_eq!(h(429), OutcomeClass::RateLimited);
        assert_eq!(h(503), OutcomeClass::RateLimited);
        assert_eq!(h(509), OutcomeClass::QuotaExhausted);
        assert_eq!(h(500), OutcomeClass::Transient);
        assert_eq!(h(502), OutcomeClass::Transient);
        assert_eq!(h(404), OutcomeClass::ClientError);
        assert!(WopanError::api("Op", "9999", "").is_token_expired());
        let o = WopanError::Http {
            op: "Op".into(),
            status: 429,
            retry_after_s: Some(3),
        }
        .to_outcome();
        assert_eq!(
            (o.class, o.status, o.retry_after_s),
            (OutcomeClass::RateLimited, Some(429), Some(3))
        );
        assert_eq!(o.error.as_deref(), Some("Op: HTTP 429"));
        assert!(!WopanError::api("Op", "8005", "").is_token_expired());
    }

    #[test]
    fn long_upstream_text_is_truncated() {
        let e = WopanError::api("Op", "1", &"长".repeat(500));
        assert!(e.to_string().chars().count() < 200);
    }
}
