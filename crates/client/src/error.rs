//! Errors of the client library.
//!
//! [`ClientError`] is what leasing and reporting can fail with; [`CallError`] is what
//! [`crate::Client::call`] returns, carrying the caller's own error type. Messages name the
//! manager's error code and message, never a token or a client key.

use std::fmt;
use std::time::Duration;
use tokenlb_core::OutcomeClass;

/// A failure to lease or report.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The configuration is unusable (named field and why).
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The manager answered 401/403: the client key is missing or wrong.
    #[error("the manager refused the client key ({status}): {message}")]
    Unauthorized {
        /// The HTTP status: 401 or 403.
        status: u16,
        /// The manager's error message (at most 300 characters), or `HTTP <status>`.
        message: String,
    },
    /// The manager has no eligible token in the pool right now.
    #[error("{}{}", no_token_text(pool, message), retry_hint(*retry_after))]
    NoToken {
        /// The pool that was asked, so a service using several can tell which one ran dry.
        pool: String,
        /// The manager's message saying why (e.g. how many tokens are in which state).
        message: String,
        /// The manager's `Retry-After`, if it gave one.
        retry_after: Option<Duration>,
    },
    /// The manager rejected the request (4xx other than auth): code and message from its
    /// JSON error body.
    #[error("the manager rejected the request ({status} {code}): {message}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The manager's machine-readable error code (e.g. `unknown_lease`), or `http_error`
        /// when the body was not the manager's JSON error.
        code: String,
        /// The manager's error message (at most 300 characters), or `HTTP <status>`.
        message: String,
    },
    /// The manager could not be reached (connection, timeout, 5xx), and no cached token can
    /// stand in: either the grace period is off or over, or every cached token failed.
    #[error("manager unreachable ({cause}); {detail}")]
    Unreachable {
        /// What went wrong on the way to the manager: `timed out`, `connection failed`,
        /// `manager answered 502`, ….
        cause: String,
        /// Why no cached token could be used instead (grace period off or over, every cached
        /// token failed).
        detail: String,
    },
    /// The manager's answer could not be understood.
    #[error("unexpected answer from the manager: {0}")]
    Protocol(String),
}

/// The manager's own words when they already say which pool ran dry, else ours around them
/// (never "no eligible token …: no eligible token …").
fn no_token_text(pool: &str, message: &str) -> String {
    if message.contains(&format!("pool {pool:?}")) {
        message.to_string()
    } else {
        format!("no eligible token in pool {pool:?}: {message}")
    }
}

fn retry_hint(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(" (retry after {} s)", d.as_secs()),
        None => String::new(),
    }
}

impl ClientError {
    /// True when the manager itself could not be reached (as opposed to answering "no").
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ClientError::Unreachable { .. })
    }
}

/// Why [`crate::Client::call`] stopped retrying.
#[derive(Debug)]
pub enum GiveUp {
    /// `max_attempts` attempts were made.
    Attempts,
    /// The `retry_budget` time was used up.
    Time,
    /// No further token could be leased.
    NoToken(ClientError),
}

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GiveUp::Attempts => f.write_str("attempt budget used up"),
            GiveUp::Time => f.write_str("time budget used up"),
            GiveUp::NoToken(e) => write!(f, "no token to try: {e}"),
        }
    }
}

/// The failure of [`crate::Client::call`], generic over the caller's error `E`.
#[derive(Debug)]
pub enum CallError<E> {
    /// The operation failed in a way another token cannot fix (`client_error`, `unknown`):
    /// returned at once, after reporting.
    Operation {
        /// The operation's own error, as it returned it.
        error: E,
        /// How [`Classify`](crate::Classify) classed it (and how it was reported).
        class: OutcomeClass,
        /// Attempts made, this one included.
        attempts: u32,
    },
    /// Every attempt within the budget failed, or no token was left to try.
    Exhausted {
        /// Attempts of the operation that ran (0 when no token could be leased at all).
        attempts: u32,
        /// Time from the start of the call to giving up, to compare with `retry_budget`.
        elapsed: Duration,
        /// The last error of the operation with its class, if any attempt ran.
        last: Option<(E, OutcomeClass)>,
        /// Which budget ran out, or why no further token could be had.
        reason: GiveUp,
    },
}

impl<E> CallError<E> {
    /// The caller's last error, if an attempt ran.
    pub fn last_error(&self) -> Option<&E> {
        match self {
            CallError::Operation { error, .. } => Some(error),
            CallError::Exhausted { last, .. } => last.as_ref().map(|(e, _)| e),
        }
    }

    /// How many attempts of the operation ran.
    pub fn attempts(&self) -> u32 {
        match self {
            CallError::Operation { attempts, .. } | CallError::Exhausted { attempts, .. } => {
                *attempts
            }
        }
    }

    /// The class of the last failure (`unknown` when no attempt ran and no token was found).
    pub fn class(&self) -> OutcomeClass {
        match self {
            CallError::Operation { class, .. } => *class,
            CallError::Exhausted {
                last: Some((_, c)), ..
            } => *c,
            CallError::Exhausted { .. } => OutcomeClass::Unknown,
        }
    }
}

impl<E: fmt::Display> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Operation {
                error,
                class,
                attempts,
            } => write!(f, "operation failed ({class}, attempt {attempts}): {error}"),
            CallError::Exhausted {
                attempts,
                elapsed,
                last,
                reason,
            } => {
                write!(
                    f,
                    "gave up after {attempts} attempt(s) in {:.1} s: {reason}",
                    elapsed.as_secs_f64()
                )?;
                if let Some((e, c)) = last {
                    write!(f, "; last error ({c}): {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CallError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.last_error()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod no_token_tests {
    use super::*;

    #[test]
    fn the_pool_is_named_once() {
        let e = ClientError::NoToken {
            pool: "default".into(),
            message: "no eligible token in pool \"default\": 0 active, 3 cooling".into(),
            retry_after: Some(Duration::from_secs(4)),
        };
        let text = e.to_string();
        assert_eq!(text.matches("no eligible token").count(), 1, "{text}");
        assert!(text.ends_with("(retry after 4 s)"), "{text}");
        let e = ClientError::NoToken {
            pool: "p".into(),
            message: "every token was tried".into(),
            retry_after: None,
        };
        assert_eq!(
            e.to_string(),
            "no eligible token in pool \"p\": every token was tried"
        );
    }
}
