//! [`Client::call`]: run an operation with a leased token, report, and retry on another token.
//!
//! One attempt = lease, run the caller's operation under `attempt_timeout`, measure its
//! latency, classify its result ([`Classify`]), report (a success in the background, so the
//! answer does not wait for the manager; a failure before the next attempt). Token failures (auth, rate limited,
//! quota, transient) are retried on another token while the budget lasts: at most
//! `max_attempts` attempts and `retry_budget` time in all. A request's own fault
//! (`client_error`) or an unclassifiable failure is returned at once. If the manager hands
//! back a token this call already tried, that lease is released (reported `unknown`, which
//! counts neither way) and another is asked for, a bounded number of times.

use crate::classify::{is_retryable, Classify};
use crate::client::Client;
use crate::error::{CallError, GiveUp};
use crate::lease::{Lease, LeasedToken};
use std::future::Future;
use std::time::{Duration, Instant};
use tokenlb_core::{Outcome, OutcomeClass, TokenId};

/// Wraps a timed-out attempt so it can be classified like any other failure.
enum Attempt<T, E> {
    Done(Result<T, E>),
    TimedOut,
}

impl Client {
    /// Runs `op` with a leased token, reports the outcome, and retries on another token
    /// when the failure is the token's (see the [module docs](crate::call)).
    ///
    /// ```no_run
    /// # use tokenlb_client::{Client, ClientConfig, Classify};
    /// # use tokenlb_core::OutcomeClass;
    /// # #[derive(Debug)] struct MyError(u16);
    /// # impl std::fmt::Display for MyError {
    /// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "HTTP {}", self.0) }
    /// # }
    /// # impl Classify for MyError {
    /// #     fn class(&self) -> OutcomeClass { OutcomeClass::from_http_status(self.0, false) }
    /// # }
    /// # async fn fetch(secret: &str) -> Result<String, MyError> { Ok(secret.len().to_string()) }
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = Client::new(ClientConfig::new("http://127.0.0.1:8000"))?;
    /// let body = client
    ///     .call(|token| async move { fetch(token.secret.expose()).await })
    ///     .await
    ///     .map_err(|e| e.to_string())?;
    /// # let _ = body; Ok(()) }
    /// ```
    pub async fn call<T, E, F, Fut>(&self, mut op: F) -> Result<T, CallError<E>>
    where
        F: FnMut(LeasedToken) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Classify,
    {
        let cfg = &self.inner.config;
        let started = Instant::now();
        let mut tried: Vec<TokenId> = Vec::new();
        let mut attempts = 0u32;
        let mut last: Option<(E, OutcomeClass)> = None;
        loop {
            let give_up = if attempts >= cfg.max_attempts {
                Some(GiveUp::Attempts)
            } else if started.elapsed() >= cfg.retry_budget {
                Some(GiveUp::Time)
            } else {
                None
            };
            if let Some(reason) = give_up {
                return Err(exhausted(attempts, started, last, reason));
            }
            let lease = match self.lease_untried(&tried, started).await {
                Ok(l) => l,
                Err(reason) => return Err(exhausted(attempts, started, last, reason)),
            };
            attempts += 1;
            tried.push(lease.token_id().clone());
            let remaining = cfg.retry_budget.saturating_sub(started.elapsed());
            let limit = cfg
                .attempt_timeout
                .min(remaining.max(Duration::from_millis(1)));
            let t0 = Instant::now();
            let result = match tokio::time::timeout(limit, op(lease.token().clone())).await {
                Ok(r) => Attempt::Done(r),
                Err(_) => Attempt::TimedOut,
            };
            let latency_ms = u32::try_from(t0.elapsed().as_millis()).unwrap_or(u32::MAX);
            let (outcome, failure) = outcome_of(result, latency_ms, limit);
            let class = outcome.class;
            if let Err(e) = self.report_attempt(&lease, outcome).await {
                tracing::warn!(token_id = %lease.token_id(), error = %e, "report failed");
            }
            match failure {
                Ok(value) => return Ok(value),
                Err(None) => {
                    tracing::warn!(token_id = %lease.token_id(), name = %lease.name(), attempt = attempts, "attempt timed out");
                }
                Err(Some(error)) => {
                    if !is_retryable(class) {
                        return Err(CallError::Operation {
                            error,
                            class,
                            attempts,
                        });
                    }
                    tracing::warn!(token_id = %lease.token_id(), name = %lease.name(), attempt = attempts, class = %class, "attempt failed; trying another token");
                    last = Some((error, class));
                }
            }
        }
    }

    /// Leases a token this call has not tried yet, releasing repeats (bounded).
    async fn lease_untried(&self, tried: &[TokenId], started: Instant) -> Result<Lease, GiveUp> {
        let cfg = &self.inner.config;
        let max_repicks = cfg.max_attempts.saturating_mul(2).max(2);
        for _ in 0..max_repicks {
            if started.elapsed() >= cfg.retry_budget {
                return Err(GiveUp::Time);
            }
            let lease = self.lease().await.map_err(GiveUp::NoToken)?;
            if !tried.contains(lease.token_id()) {
                return Ok(lease);
            }
            if lease.is_cached() {
                // A cached token has no lease to release.
                continue;
            }
            if cfg.background_reports {
                self.report_in_background(&lease, Outcome::new(OutcomeClass::Unknown))
                    .await;
            } else if let Err(e) = self
                .report(&lease, Outcome::new(OutcomeClass::Unknown))
                .await
            {
                tracing::debug!(error = %e, "releasing a repeated lease failed");
            }
        }
        Err(GiveUp::NoToken(crate::ClientError::NoToken {
            pool: cfg.pool.clone(),
            message: "every token handed out was already tried in this call".into(),
            retry_after: None,
        }))
    }
}

impl Client {
    /// Reports one attempt: a success in the background (the caller gets its answer without
    /// waiting for the manager), a failure waited for, so the manager has taken the token out
    /// of rotation before the next attempt leases another. Both go through the background
    /// reporter, so they reach the manager in order. With `background_reports` off, every
    /// report is sent before returning, as [`Client::report`] does.
    async fn report_attempt(
        &self,
        lease: &Lease,
        outcome: Outcome,
    ) -> Result<(), crate::ClientError> {
        if !self.inner.config.background_reports {
            return self.report(lease, outcome).await;
        }
        let wait = outcome.class != OutcomeClass::Success;
        let item = self.prepare(lease, &outcome);
        self.report_via_reporter(item, lease.is_cached(), wait)
            .await
    }
}

/// What to report, and what the attempt gave: `Ok(value)`, `Err(Some(error))`, or
/// `Err(None)` for a timeout.
fn outcome_of<T, E: Classify>(
    result: Attempt<T, E>,
    latency_ms: u32,
    limit: Duration,
) -> (Outcome, Result<T, Option<E>>) {
    let mut outcome = Outcome::new(OutcomeClass::Success);
    outcome.latency_ms = Some(latency_ms);
    match result {
        Attempt::Done(Ok(v)) => (outcome, Ok(v)),
        Attempt::Done(Err(e)) => {
            outcome.class = e.class();
            outcome.status = e.status();
            outcome.retry_after_s = e.retry_after().map(|d| d.as_secs());
            outcome.error = e.message();
            (outcome, Err(Some(e)))
        }
        Attempt::TimedOut => {
            outcome.class = OutcomeClass::Transient;
            outcome.error = Some(format!("timed out after {} ms", limit.as_millis()));
            (outcome, Err(None))
        }
    }
}

fn exhausted<E>(
    attempts: u32,
    started: Instant,
    last: Option<(E, OutcomeClass)>,
    reason: GiveUp,
) -> CallError<E> {
    CallError::Exhausted {
        attempts,
        elapsed: started.elapsed(),
        last,
        reason,
    }
}
