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
use std::time::{Duration, Instant};
use tokenlb_client::{CallError, Classify, Client, ClientError, GiveUp, LeasedToken};
use tokenlb_core::{Outcome, OutcomeClass, Secret};
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

impl Failure {
    /// The cause in a few words, for logs.
    pub fn cause(&self) -> String {
        match self {
            Failure::NotFound(m) => m.clone(),
            Failure::Upstream { class, message, .. } => format!("{class}: {message}"),
        }
    }
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

    /// The account's quota: `AppQueryUser` for its phone, then `QueryCloudUsageInfo`, on one
    /// token per attempt.
    pub async fn usage(&self) -> Result<tokenlb_wopan::CloudUsage, Failure> {
        self.client
            .call(|token| {
                self.attempt("usage", token, |w, t, _| async move {
                    let user = w.query_user(&t).await?;
                    w.cloud_usage(&t, &user.user_id).await
                })
            })
            .await
            .map_err(failure)
    }

    /// A write: lease one token, call once, report. Another token is tried only when the
    /// failure means Wopan refused the call before doing anything (`auth`, `rate_limited`,
    /// `quota_exhausted`); after a `transient` failure (a timeout, a broken connection, a
    /// 5xx) the write may or may not have happened, so it is not sent again and the answer
    /// says so.
    pub async fn write<T, F, Fut>(&self, op: &'static str, mut run: F) -> Result<T, Failure>
    where
        F: FnMut(WopanClient, Secret, Space) -> Fut,
        Fut: std::future::Future<Output = Result<T, WopanError>>,
    {
        let max = self.client.config().max_attempts.max(1);
        let mut last: Option<(WopanError, OutcomeClass)> = None;
        for attempt in 1..=max {
            let lease = match self.client.lease().await {
                Ok(l) => l,
                Err(e) => return Err(lease_failure(&e, attempt - 1, last)),
            };
            tracing::info!(token_id = %lease.token_id(), op, "got token for a write: {} ({})", lease.name(), lease.token_id());
            let started = Instant::now();
            let r = run(
                self.wopan.clone(),
                lease.secret().clone(),
                self.space.clone(),
            )
            .await;
            let mut outcome = match &r {
                Ok(_) => Outcome::success(),
                Err(e) => e.to_outcome(),
            };
            outcome.latency_ms =
                Some(u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX));
            let class = outcome.class;
            self.metrics.upstream(op, class);
            if r.is_ok() {
                self.client.report_in_background(&lease, outcome).await;
            } else if let Err(e) = self.client.report(&lease, outcome).await {
                // Delivered before the next lease, so the manager can skip this token.
                tracing::warn!(token_id = %lease.token_id(), error = %e, "report failed");
            }
            let e = match r {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            tracing::warn!(token_id = %lease.token_id(), class = %class, error = %e, "Wopan write {op} failed with token {}", lease.name());
            let refused_before = matches!(
                class,
                OutcomeClass::Auth | OutcomeClass::RateLimited | OutcomeClass::QuotaExhausted
            );
            if !refused_before || attempt == max {
                return Err(write_failure(e, class, attempt));
            }
            last = Some((e, class));
        }
        Err(internal_write_failure())
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

/// No token for a write (or no other token after a refusal).
fn lease_failure(e: &ClientError, tried: u32, last: Option<(WopanError, OutcomeClass)>) -> Failure {
    let mut message = format!("no token could be leased: {e}");
    let (class, retry_after_s) = match &last {
        Some((err, c)) => {
            message.push_str(&format!(
                "; after {tried} attempt(s), last error ({c}): {err}"
            ));
            (*c, err.retry_after_s())
        }
        None => (OutcomeClass::Unknown, None),
    };
    Failure::Upstream {
        class,
        message,
        no_token: last.is_none(),
        retry_after_s,
    }
}

fn write_failure(e: WopanError, class: OutcomeClass, attempts: u32) -> Failure {
    let mut message = format!("after {attempts} attempt(s): {e}");
    if class == OutcomeClass::Transient {
        message.push_str(" (the change may or may not have been made; list the folder to see)");
    }
    match e {
        WopanError::NotFound { path } => Failure::NotFound(format!("not found: {path}")),
        WopanError::NotAFolder { path } => Failure::NotFound(format!("not a folder: {path}")),
        other => Failure::Upstream {
            class,
            retry_after_s: other.retry_after_s(),
            message,
            no_token: false,
        },
    }
}

fn internal_write_failure() -> Failure {
    Failure::Upstream {
        class: OutcomeClass::Unknown,
        message: "no attempt was made".into(),
        no_token: false,
        retry_after_s: None,
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
