//! One log line per failed answer, at the level its meaning deserves, shared by every
//! listener (DESIGN §13, issue 14): a 5xx the service could not help is an ERROR naming the
//! route and the cause; a 503 (no token right now, shutting down, store busy) is a WARN with
//! its reason, since it is a state the service reports rather than a fault; 401/403/421 are
//! INFO (someone knocked), other 4xx DEBUG (the caller's mistake, told to the caller).
//!
//! Handlers' error types attach an [`ErrorNote`] to the response, so the line carries the
//! same code and message the caller got.

use axum::http::StatusCode;

/// What an error answer said, for the log (a response extension).
#[derive(Clone, Debug)]
pub struct ErrorNote {
    /// The JSON error code (`no_token_available`, `upstream_failed`, …).
    pub code: &'static str,
    /// The message the caller got (never a secret: error messages carry none).
    pub message: String,
}

/// Logs one answer (no line for a success).
pub fn log_answer(method: &str, route: &str, status: StatusCode, note: Option<&ErrorNote>) {
    let (code, message) = note.map_or(("", ""), |n| (n.code, n.message.as_str()));
    let s = status.as_u16();
    match s {
        503 => tracing::warn!(
            method,
            route,
            status = s,
            code,
            "{method} {route}: 503 {message}"
        ),
        500.. => tracing::error!(
            method,
            route,
            status = s,
            code,
            "{method} {route} failed: {s} {message}"
        ),
        401 | 403 | 421 => tracing::info!(
            method,
            route,
            status = s,
            code,
            "{method} {route}: {s} {message}"
        ),
        400.. => tracing::debug!(
            method,
            route,
            status = s,
            code,
            "{method} {route}: {s} {message}"
        ),
        _ => {}
    }
}
