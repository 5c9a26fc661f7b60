//! One error type for every HTTP answer of the manager.
//!
//! Handlers return `Result<_, ApiError>`; an [`ApiError`] becomes
//! `{"error":{"code":"…","message":"…"}}` with its status. Internal failures (store, task
//! panics) are logged with their detail and answered with a generic message, so nothing
//! internal — paths, SQL, secrets — leaks to a caller. Extractor rejections (malformed JSON,
//! wrong types, oversized bodies, bad query strings) are mapped here too, through the
//! [`ApiJson`] and [`ApiQuery`] wrappers, so even axum's own refusals speak JSON.
//!
//! [`ApiJson`] is axum's `Json` with a fast path: a body sent as exactly `application/json`
//! is parsed with plain `serde_json`; axum's own parser (which tracks the path of every
//! field to name the failing one) runs only for other content types and for bodies plain
//! parsing refuses, so every refusal reads exactly as axum words it.

use crate::service::ServiceError;
use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokenlb_store::StoreError;

/// An HTTP error answer: status, machine-readable code, human message, optional headers.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// `Retry-After` in seconds (503 no token, 429 login limit).
    pub retry_after_s: Option<u64>,
    /// Adds `WWW-Authenticate` (401 answers).
    pub www_authenticate: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after_s: None,
            www_authenticate: false,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
        e.www_authenticate = true;
        e
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// An internal failure: the detail goes to the log, the caller gets a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the manager's log",
        )
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds.max(1));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        let note = tokenlb_listen::ErrorNote {
            code: self.code,
            message: self.message,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        response.extensions_mut().insert(note);
        let headers = response.headers_mut();
        if let Some(s) = self.retry_after_s {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.www_authenticate {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tokenlb\""),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate(id) => ApiError::conflict(
                "duplicate",
                format!("this token is already in the pool (id {id})"),
            ),
            StoreError::NotFound(id) => ApiError::not_found(format!("no token with id {id}")),
            StoreError::Unavailable(detail) => {
                tracing::error!(error = %detail, "store unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the token store is unavailable; try again",
                )
                .with_retry_after(1)
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let message = e.to_string();
        match e {
            ServiceError::UnknownPool(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_pool", message)
            }
            ServiceError::UnknownToken(_) => ApiError::not_found(message),
            ServiceError::UnknownLease => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_lease", message)
            }
            ServiceError::UnknownStrategy(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "unknown_strategy", message)
            }
            ServiceError::Invalid(m) => ApiError::invalid(m),
            ServiceError::Forbidden(m) => ApiError::forbidden("forbidden", m),
            ServiceError::LeaseTokenMismatch => ApiError::conflict("lease_token_mismatch", message),
            ServiceError::TooManyWaiters { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too_many_waiters", message)
                    .with_retry_after(1)
            }
            ServiceError::MalformedImport(m) => {
                ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", m)
            }
            ServiceError::NoTokenAvailable {
                reason,
                retry_after_s,
            } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_token_available",
                reason,
            )
            .with_retry_after(retry_after_s),
            ServiceError::ShuttingDown => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", message)
                    .with_retry_after(1)
            }
            ServiceError::ClusterUnavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "cluster_unavailable",
                message,
            )
            .with_retry_after(1),
            ServiceError::NoHealthCheck(_) => ApiError::conflict("no_health_check", message),
            ServiceError::CheckInProgress => ApiError::conflict("check_in_progress", message),
            ServiceError::Store(e) => e.into(),
            ServiceError::Internal(detail) => ApiError::internal(detail),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::new(status, "payload_too_large", "request body is too large");
        }
        let code = match rejection {
            JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
            JsonRejection::JsonSyntaxError(_) => "malformed_json",
            JsonRejection::JsonDataError(_) => "invalid_json",
            _ => "bad_request",
        };
        let status = if code == "unsupported_media_type" {
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        } else {
            StatusCode::BAD_REQUEST
        };
        ApiError::new(status, code, without_values(&rejection.body_text()))
    }
}

/// A deserializer's message without the values it quotes: serde writes the offending value
/// after `invalid type: ` / `invalid value: ` (`` integer `123` ``, `string "abc"`), and
/// that value may be a token sent in the wrong shape. Field names and what was expected
/// stay, so the message still says what to fix.
fn without_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = ["invalid type: ", "invalid value: "]
        .iter()
        .filter_map(|p| rest.find(p).map(|i| (i, p.len())))
        .min()
    {
        let (i, len) = at;
        out.push_str(&rest[..i + len]);
        rest = &rest[i + len..];
        // The kind (`integer`, `floating point`, `string`, …), then an optional quoted value.
        let kind_end = rest.find(['`', '"', ',']).unwrap_or(rest.len());
        let (kind, tail) = rest.split_at(kind_end);
        out.push_str(kind.trim_end());
        rest = match tail.chars().next() {
            Some(q @ ('`' | '"')) => match tail[1..].find(q) {
                Some(end) => &tail[end + 2..],
                None => "",
            },
            _ => tail,
        };
    }
    out.push_str(rest);
    out
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_query", rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_path", rejection.body_text())
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::BytesRejection) -> Self {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::new(status, "payload_too_large", "request body is too large");
        }
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            rejection.body_text(),
        )
    }
}

/// `axum::Json` whose rejection is an [`ApiError`] (see the module doc for its fast path).
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let plain_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes() == b"application/json");
        if !plain_json {
            let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
            return Ok(ApiJson(value));
        }
        // What axum::Json does for a JSON content type: the body (within the limit), then
        // the value.
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(JsonRejection::from)?;
        if let Ok(value) = serde_json::from_slice(&bytes) {
            return Ok(ApiJson(value));
        }
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes)?;
        Ok(ApiJson(value))
    }
}

/// `axum::extract::Query` whose rejection is an [`ApiError`].
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `axum::extract::Path` whose rejection is an [`ApiError`].
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// Route fallback: an unknown path.
pub async fn route_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no such route")
}

/// Method fallback: a known path with a method it does not serve.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod value_tests {
    use super::without_values;

    #[test]
    fn deserializer_messages_lose_the_values_they_quote() {
        let m = "Failed to deserialize the JSON body into the target type: token: invalid type: \
                 integer `12345678901234567890`, expected a string at line 1 column 30";
        let w = without_values(m);
        assert!(!w.contains("12345678901234567890"), "{w}");
        assert!(
            w.contains("token: invalid type: integer, expected a string at line 1"),
            "{w}"
        );
        let w = without_values("weight: invalid value: string \"sk-secret\", expected u32");
        assert_eq!(w, "weight: invalid value: string, expected u32");
        let w = without_values("unknown field `tokn`, expected one of `token`, `name`");
        assert_eq!(w, "unknown field `tokn`, expected one of `token`, `name`");
        let w = without_values("invalid type: map, expected a string");
        assert_eq!(w, "invalid type: map, expected a string");
    }
}
