//! How a caller's error tells [`crate::Client::call`] what went wrong.
//!
//! The client cannot know what an upstream's answer means, so the caller's error type
//! classifies itself into the shared outcome classes (DESIGN §2). The class decides both what
//! the manager learns about the token and whether another token is worth a try.

use std::time::Duration;
use tokenlb_core::OutcomeClass;

/// Implemented by the error type of the operation passed to [`crate::Client::call`].
///
/// ```
/// use std::time::Duration;
/// use tokenlb_client::Classify;
/// use tokenlb_core::OutcomeClass;
///
/// #[derive(Debug)]
/// struct HttpFailure { status: u16, retry_after: Option<u64> }
///
/// impl Classify for HttpFailure {
///     fn class(&self) -> OutcomeClass {
///         OutcomeClass::from_http_status(self.status, self.retry_after.is_some())
///     }
///     fn retry_after(&self) -> Option<Duration> {
///         self.retry_after.map(Duration::from_secs)
///     }
///     fn status(&self) -> Option<u16> {
///         Some(self.status)
///     }
/// }
/// assert_eq!(HttpFailure { status: 401, retry_after: None }.class(), OutcomeClass::Auth);
/// ```
pub trait Classify {
    /// The outcome class of this failure.
    fn class(&self) -> OutcomeClass;

    /// The upstream's retry-after (rate limit) or time to quota reset, if it said.
    fn retry_after(&self) -> Option<Duration> {
        None
    }

    /// The upstream's HTTP status, if there was one.
    fn status(&self) -> Option<u16> {
        None
    }

    /// A short description for the manager's `last_error` and event log. The client removes
    /// the leased token's value from it and truncates it, but it should not carry secrets.
    fn message(&self) -> Option<String> {
        None
    }
}

/// Whether [`crate::Client::call`] tries another token after a failure of this class: yes
/// for the token's own failures (auth, rate limited, quota, transient), no for the request's
/// fault or an unclassifiable one.
pub fn is_retryable(class: OutcomeClass) -> bool {
    class.is_token_failure()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_failures_are_retried_and_the_rest_are_not() {
        for c in [
            OutcomeClass::Auth,
            OutcomeClass::RateLimited,
            OutcomeClass::QuotaExhausted,
            OutcomeClass::Transient,
        ] {
            assert!(is_retryable(c), "{c}");
        }
        for c in [
            OutcomeClass::Success,
            OutcomeClass::ClientError,
            OutcomeClass::Unknown,
        ] {
            assert!(!is_retryable(c), "{c}");
        }
    }
}
