//! Calls to Wopan through a leased token: the realtime path.
//!
//! Every upstream operation goes through [`tokenlb_client::Client::call`], which leases a
//! token, runs the operation, reports its outcome class to the manager and retries on another
//! token for auth / rate-limited / quota / transient failures. Wopan's errors classify
//! themselves through the table in `tokenlb_wopan::error`; this module wraps them so the
//! client library can read that class, counts every attempt in the metrics, and turns the
//! final result into a [`Failure`] the service can answer with (or fall back from).

use crate::cache::Entry;
use crate::metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;
use tokenlb_client::{CallError, Classify, Client, GiveUp, LeasedToken};
use tokenlb_core::OutcomeClass;
use tokenlb_wopan::{Space, WopanClient, WopanError};

/// A Wopan error that the client library can classify.
#[derive(Debug)]
pub struct Upstream(pub WopanError);

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Classify for Upstream {
    fn class(&self) -> OutcomeClass {
        self.0.outcome_class()
    }
    fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after_s().map(Duration::from_secs)
    }
    fn status(&self) -> Option<u16> {
        match &self.0 {
            WopanError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
    fn message(&self) -> Option<String> {
        Some(self.0.to_string())
    }
}

/// Why a realtime answer could not be had.
#[derive(Clone, Debug)]
pub enum Failure {
    /// The request's fault (unknown folder or file, a file where a folder was expected, no
    /// link for the file): answered as is, never replaced by a cached answer.
    NotFound(String),
    /// Wopan failed on every token tried, or no token could be leased; the service falls
    /// back to its cache.
    Upstream {
        class: OutcomeClass,
        message: String,
        /// True when no attempt ran because no token was available.
        no_token: bool,
        retry_after_s: Option<u64>,
    },
}

/// The realtime side: a token client and a Wopan client for one space.
pub struct Realtime {
    pub client: Client,
    pub wopan: WopanClient,
    pub space: Space,
    pub metrics: Arc<Metrics>,
}

impl Realtime {
    /// Every entry of the folder `dir_id` (all pages, one token per attempt).
    pub async fn list(&self, dir_id: &str, path_for_logs: &str) -> Result<Vec<Entry>, Failure> {
        let result = self
            .client
            .call(|token| {
                self.attempt("list", token, |w, t, s| {
                    let dir_id = dir_id.to_string();
                    async move { w.list_all(&t, &s, &dir_id).await }
                })
            })
            .await;
        match result {
            Ok(entries) => {
                tracing::info!(
                    folder = path_for_logs,
                    entries = entries.len(),
                    "realtime API listed folder {path_for_logs:?}"
                );
                Ok(entries.into_iter().map(Entry::from).collect())
            }
            Err(e) => Err(failure(e)),
        }
    }

    /// A fresh download link for a file's `fid`.
    pub async fn link(&self, fid: &str) -> Result<String, Failure> {
        let result = self
            .client
            .call(|token| {
                self.attempt("link", token, |w, t, _| {
                    let fid = fid.to_string();
                    async move { w.download_url(&t, &fid).await }
                })
            })
            .await;
        result.map_err(failure)
    }

    /// One attempt: log the token by name and id, run, count the outcome.
    fn attempt<T, F, Fut>(
        &self,
        op: &'static str,
        token: LeasedToken,
        run: F,
    ) -> impl std::future::Future<Output = Result<T, Upstream>> + Send + 'static
    where
        F: FnOnce(WopanClient, tokenlb_core::Secret, Space) -> Fut,
        Fut: std::future::Future<Output = Result<T, WopanError>> + Send + 'static,
        T: Send + 'static,
    {
        tracing::info!(token_id = %token.id, cached = token.source == tokenlb_client::LeaseSource::Cache,
            "got token: {} ({})", token.name, token.id);
        let fut = run(self.wopan.clone(), token.secret.clone(), self.space.clone());
        let metrics = self.metrics.clone();
        async move {
            let r = fut.await;
            let class = match &r {
                Ok(_) => OutcomeClass::Success,
                Err(e) => e.outcome_class(),
            };
            metrics.upstream(op, class);
            if let Err(e) = &r {
                tracing::warn!(token_id = %token.id, class = %class, error = %e, "Wopan call failed with token {}", token.name);
            }
            r.map_err(Upstream)
        }
    }
}

/// The client library's verdict as a [`Failure`].
fn failure(e: CallError<Upstream>) -> Failure {
    match e {
        CallError::Operation { error, class, .. } => match (&error.0, class) {
            (WopanError::NotFound { path }, _) => Failure::NotFound(format!("not found: {path}")),
            (WopanError::NotAFolder { path }, _) => {
                Failure::NotFound(format!("not a folder: {path}"))
            }
            (WopanError::MissingLink { .. }, _) => {
                Failure::NotFound("Wopan has no download link for this file".to_string())
            }
            (other, class) => Failure::Upstream {
                class,
                message: other.to_string(),
                no_token: false,
                retry_after_s: other.retry_after_s(),
            },
        },
        CallError::Exhausted {
            attempts,
            last,
            reason,
            ..
        } => {
            let no_token = matches!(reason, GiveUp::NoToken(_)) && last.is_none();
            let (class, retry_after_s) = match &last {
                Some((e, c)) => (*c, e.0.retry_after_s()),
                None => (OutcomeClass::Unknown, None),
            };
            let mut message = format!("gave up after {attempts} attempt(s): {reason}");
            if let Some((e, c)) = &last {
                message.push_str(&format!("; last error ({c}): {e}"));
            }
            Failure::Upstream {
                class,
                message,
                no_token,
                retry_after_s,
            }
        }
    }
}
