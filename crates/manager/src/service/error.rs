//! What the service layer can refuse, independent of HTTP.
//!
//! The HTTP layer turns a [`ServiceError`] into its JSON answer with one `From` impl
//! (`crate::error`); background tasks log it. Messages never carry a secret.

use tokenlb_core::TokenId;
use tokenlb_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("no pool named {0:?}")]
    UnknownPool(String),
    /// `None`: the token was named by value or by an id the caller cannot know to be wrong.
    #[error("{}", match .0 { Some(id) => format!("no token with id {id}"), None => "no such token".into() })]
    UnknownToken(Option<TokenId>),
    #[error("no open lease with that id (already reported or expired)")]
    UnknownLease,
    #[error("unknown strategy {0:?}; use one of round_robin, best, weighted, random, least_in_flight, latency")]
    UnknownStrategy(String),
    #[error("{0}")]
    Invalid(String),
    /// The caller's scope does not cover this pool or this form of report.
    #[error("{0}")]
    Forbidden(String),
    /// A report named a lease and a `token_id` the lease does not hold.
    #[error("the lease is held by another token than the token_id given")]
    LeaseTokenMismatch,
    /// The pool already has as many long-poll waiters as it allows.
    #[error("pool {pool} already has {max} callers waiting for a token; retry shortly")]
    TooManyWaiters { pool: String, max: usize },
    #[error("{0}")]
    MalformedImport(String),
    #[error("{reason}")]
    NoTokenAvailable { reason: String, retry_after_s: u64 },
    #[error("the manager is shutting down")]
    ShuttingDown,
    #[error("redis is unreachable; this lease can only be reported when it is back")]
    ClusterUnavailable,
    #[error("pool {0} has no health check configured (health.kind = \"none\")")]
    NoHealthCheck(String),
    #[error("a check of this token is already running")]
    CheckInProgress,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A broken invariant: logged with its detail, answered with a generic message.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<crate::validate::Invalid> for ServiceError {
    fn from(e: crate::validate::Invalid) -> Self {
        ServiceError::Invalid(e.0)
    }
}

impl ServiceError {
    pub fn invalid(message: impl Into<String>) -> Self {
        ServiceError::Invalid(message.into())
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        ServiceError::Internal(detail.to_string())
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
