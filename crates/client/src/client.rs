//! [`Client`]: lease a token, report its outcome, and fall back to cached tokens while the
//! manager is unreachable.
//!
//! A `Client` is an `Arc` inside, cheap to clone and share between tasks. Leasing asks the
//! manager; when the manager cannot be reached, the lease comes from the last-known good
//! tokens for at most the grace period ([`crate::fallback`]), and the manager is probed again
//! at most every `probe_interval`. Reports that cannot be sent wait in a bounded queue and are
//! sent in the background once the manager answers again. State changes are logged once each:
//! going offline, the grace period ending, and recovery.

use crate::config::ClientConfig;
use crate::error::ClientError;
use crate::fallback::{Down, Fallback, Queued};
use crate::lease::Lease;
use crate::manager_api::{ApiFailure, ManagerApi, ReportBody};
use crate::reporter::Job;
use parking_lot::Mutex;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokenlb_core::{Outcome, OutcomeClass};

/// A handle on a tokenlb manager. See the [crate documentation](crate) for an example.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: ClientConfig,
    api: ManagerApi,
    fallback: Mutex<Fallback>,
    /// Serialises background flushes so queued reports go out once, in order.
    flushing: tokio::sync::Mutex<()>,
    /// The background reporter's channel ([`crate::reporter`]), made on first use.
    pub(crate) reporter: OnceLock<tokio::sync::mpsc::Sender<Job>>,
    /// Reports handed to the background reporter and not yet dealt with.
    pub(crate) pending: AtomicUsize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("manager_url", &self.inner.config.manager_url)
            .field("pool", &self.inner.config.pool)
            .field("client_key", &self.inner.config.client_key)
            .finish_non_exhaustive()
    }
}

/// A snapshot of the client's view of the manager, for health endpoints and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientStatus {
    /// False while the manager is unreachable.
    pub manager_reachable: bool,
    /// How many tokens the client could use during the grace period.
    pub cached_tokens: usize,
    /// Reports not delivered yet: waiting for the manager to come back, or handed to the
    /// background reporter and not sent yet.
    pub queued_reports: usize,
}

impl Client {
    /// Builds a client; fails only on an invalid configuration. Needs no running manager.
    pub fn new(config: ClientConfig) -> Result<Client, ClientError> {
        config.validate()?;
        let api = ManagerApi::new(config.base(), config.client_key.clone(), config.timeout)?;
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                api,
                fallback: Mutex::new(Fallback::default()),
                flushing: tokio::sync::Mutex::new(()),
                reporter: OnceLock::new(),
                pending: AtomicUsize::new(0),
            }),
        })
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Whether the manager answered last time, and what is cached and queued.
    pub fn status(&self) -> ClientStatus {
        let f = self.inner.fallback.lock();
        ClientStatus {
            manager_reachable: !f.is_down(),
            cached_tokens: f.cached_count(),
            queued_reports: f.queued() + self.pending_reports(),
        }
    }

    /// Leases a token from the configured pool (`GET /api/token/get`).
    ///
    /// When the manager is unreachable this returns a cached token ([`Lease::is_cached`])
    /// during the grace period, and [`ClientError::Unreachable`] after it. When the manager
    /// answers "no eligible token", that is returned as [`ClientError::NoToken`] and no cached
    /// token is used: the manager knows best.
    pub async fn lease(&self) -> Result<Lease, ClientError> {
        let c = &self.inner.config;
        let probe = self
            .inner
            .fallback
            .lock()
            .should_probe(c.probe_interval, Instant::now());
        if probe {
            match self
                .inner
                .api
                .get(&c.pool, c.strategy, c.wait_ms, c.timeout)
                .await
            {
                Ok(lease) => {
                    self.manager_answered();
                    self.inner.fallback.lock().remember(
                        lease.token(),
                        c.max_cached_tokens,
                        Instant::now(),
                    );
                    tracing::debug!(token_id = %lease.token_id(), name = %lease.name(), "leased token");
                    return Ok(lease);
                }
                Err(ApiFailure::Answer(e)) => {
                    self.manager_answered();
                    return Err(e);
                }
                Err(ApiFailure::Unreachable(cause)) => {
                    self.manager_down(&cause);
                    return self.lease_cached(cause);
                }
            }
        }
        self.lease_cached("not answering".to_string())
    }

    fn lease_cached(&self, cause: String) -> Result<Lease, ClientError> {
        let grace = self.inner.config.grace_period;
        let picked = self.inner.fallback.lock().pick(grace, Instant::now());
        match picked {
            Ok(token) => {
                tracing::debug!(token_id = %token.id, name = %token.name, "using cached token");
                Ok(Lease {
                    token,
                    lease_id: None,
                    expires_at: None,
                })
            }
            Err((detail, first)) => {
                if first {
                    tracing::error!(
                        manager = %self.inner.config.manager_url,
                        grace_s = grace.as_secs(),
                        "manager still unreachable and the grace period is over: no token until it is back"
                    );
                }
                Err(ClientError::Unreachable { cause, detail })
            }
        }
    }

    fn manager_down(&self, cause: &str) {
        let (down, grace) = {
            let mut f = self.inner.fallback.lock();
            (f.mark_down(Instant::now()), self.inner.config.grace_period)
        };
        if let Down::Started { cached } = down {
            tracing::warn!(
                manager = %self.inner.config.manager_url,
                cause,
                "manager unreachable, using {cached} cached tokens for up to {} s",
                grace.as_secs()
            );
        }
    }

    fn manager_answered(&self) {
        let (was_down, queued) = {
            let mut f = self.inner.fallback.lock();
            (f.mark_up(Instant::now()), f.queued())
        };
        if let Some(d) = was_down {
            tracing::info!(
                manager = %self.inner.config.manager_url,
                "manager reachable again after {} s; sending {queued} queued reports",
                d.as_secs()
            );
        }
        if queued > 0 {
            let me = self.clone();
            tokio::spawn(async move { me.flush_reports().await });
        }
    }

    /// Reports the outcome of a lease (`POST /api/token/report`).
    ///
    /// A report that cannot be delivered because the manager is unreachable is queued (up to
    /// `max_queued_reports`, oldest dropped first) and sent when the manager is back; that is
    /// not an error. A report the manager refuses for its lease (the lease already expired)
    /// is sent again by token id, so the outcome still counts.
    pub async fn report(&self, lease: &Lease, outcome: Outcome) -> Result<(), ClientError> {
        let item = self.prepare(lease, &outcome);
        self.deliver(item, lease.is_cached()).await
    }

    /// Moves a lease's deadline (`POST /api/token/renew`, DESIGN §9), for work that holds one
    /// token longer than a lease lasts (an upload, a stream). `extend` asks for that much time
    /// from now (the manager caps it at its `max_lease_s`); `None` takes the manager's
    /// default. Returns the new deadline as the manager states it. A cached lease has no
    /// deadline at the manager: `Ok(None)`, nothing sent. An unknown or closed lease is the
    /// manager's `404` as [`ClientError::Rejected`].
    pub async fn renew(
        &self,
        lease: &Lease,
        extend: Option<Duration>,
    ) -> Result<Option<String>, ClientError> {
        let Some(id) = lease.lease_id.as_ref() else {
            return Ok(None);
        };
        let extend_s = extend.map(|d| d.as_secs().max(1));
        match self
            .inner
            .api
            .renew(id, extend_s, self.inner.config.timeout)
            .await
        {
            Ok(deadline) => {
                self.manager_answered();
                Ok(deadline)
            }
            Err(ApiFailure::Answer(e)) => Err(e),
            Err(ApiFailure::Unreachable(cause)) => Err(ClientError::Unreachable {
                cause,
                detail: "the lease was not renewed".into(),
            }),
        }
    }

    /// Hands the outcome of a lease to the background reporter and returns at once (it waits
    /// only when `max_queued_reports` reports are already waiting for the reporter). The
    /// report goes through the same path as [`Client::report`], in order with the others;
    /// [`Client::flush`] waits for it. Refusals are logged instead of returned.
    pub async fn report_in_background(&self, lease: &Lease, outcome: Outcome) {
        let item = self.prepare(lease, &outcome);
        let _ = self
            .report_via_reporter(item, lease.is_cached(), false)
            .await;
    }

    /// Learns from the outcome (for the grace period) and builds its report.
    pub(crate) fn prepare(&self, lease: &Lease, outcome: &Outcome) -> Queued {
        let c = &self.inner.config;
        let retry_after = outcome.retry_after_s.map(Duration::from_secs);
        self.inner.fallback.lock().learn(
            lease.token_id().as_str(),
            outcome.class,
            retry_after,
            c.failed_token_cooldown,
            Instant::now(),
        );
        Queued {
            body: report_body(lease, outcome),
            token_id: lease.token_id().0.clone(),
        }
    }

    /// Sends a report, or queues it while the manager is unreachable.
    pub(crate) async fn deliver(&self, item: Queued, cached: bool) -> Result<(), ClientError> {
        let c = &self.inner.config;
        let hold = {
            let f = self.inner.fallback.lock();
            f.is_down() && (cached || !f.should_probe(c.probe_interval, Instant::now()))
        };
        if hold {
            self.queue(item);
            return Ok(());
        }
        match self.send(&item).await {
            Ok(()) => Ok(()),
            Err(ApiFailure::Unreachable(cause)) => {
                self.manager_down(&cause);
                self.queue(item);
                Ok(())
            }
            Err(ApiFailure::Answer(e)) => Err(e),
        }
    }

    fn queue(&self, item: Queued) {
        let dropped = self
            .inner
            .fallback
            .lock()
            .enqueue(item, self.inner.config.max_queued_reports);
        if dropped {
            tracing::warn!(
                max = self.inner.config.max_queued_reports,
                "report queue full while the manager is unreachable: dropped the oldest report"
            );
        }
    }

    /// Delivers several reports in one request (DESIGN §9's batch form) when they all go to
    /// the manager now; one result per report, in order. Falls back to one request each for
    /// a manager without the batch form, and to the grace queue while it is unreachable.
    pub(crate) async fn deliver_batch(
        &self,
        items: Vec<(Queued, bool)>,
    ) -> Vec<Result<(), ClientError>> {
        let c = &self.inner.config;
        let hold = {
            let f = self.inner.fallback.lock();
            f.is_down() && !f.should_probe(c.probe_interval, Instant::now())
        };
        let leased = items
            .iter()
            .all(|(item, cached)| !cached && item.body.lease.is_some());
        if hold || !leased || items.len() < 2 {
            let mut out = Vec::with_capacity(items.len());
            for (item, cached) in items {
                out.push(self.deliver(item, cached).await);
            }
            return out;
        }
        let bodies: Vec<&crate::manager_api::ReportBody> =
            items.iter().map(|(i, _)| &i.body).collect();
        match self.inner.api.report_batch(&bodies, c.timeout).await {
            Ok(results) => {
                let mut out = Vec::with_capacity(items.len());
                for ((item, _), result) in items.into_iter().zip(results) {
                    out.push(match result {
                        // The lease is gone (expired, or taken before a restart): by id.
                        Err(ClientError::Rejected { code, .. }) if code == "unknown_lease" => {
                            self.deliver_by_id(item).await
                        }
                        other => other,
                    });
                }
                out
            }
            Err(ApiFailure::Unreachable(cause)) => {
                self.manager_down(&cause);
                for (item, _) in items.iter() {
                    self.queue(Queued {
                        body: item.body.clone(),
                        token_id: item.token_id.clone(),
                    });
                }
                items.iter().map(|_| Ok(())).collect()
            }
            // No batch form (an older manager): one by one, as before.
            Err(ApiFailure::Answer(_)) => {
                let mut out = Vec::with_capacity(items.len());
                for (item, cached) in items {
                    out.push(self.deliver(item, cached).await);
                }
                out
            }
        }
    }

    async fn deliver_by_id(&self, item: Queued) -> Result<(), ClientError> {
        let by_id = item.body.by_id(&item.token_id);
        match self
            .inner
            .api
            .report(&by_id, self.inner.config.timeout)
            .await
        {
            Ok(()) => Ok(()),
            Err(ApiFailure::Unreachable(cause)) => {
                self.manager_down(&cause);
                self.queue(item);
                Ok(())
            }
            Err(ApiFailure::Answer(e)) => Err(e),
        }
    }

    /// Sends one report; by id when it has no lease or the manager no longer knows the lease.
    async fn send(&self, item: &Queued) -> Result<(), ApiFailure> {
        let timeout = self.inner.config.timeout;
        if item.body.lease.is_none() {
            return self
                .inner
                .api
                .report(&item.body.by_id(&item.token_id), timeout)
                .await;
        }
        match self.inner.api.report(&item.body, timeout).await {
            Err(ApiFailure::Answer(ClientError::Rejected {
                status: 404 | 409 | 410 | 422,
                ..
            })) => {
                let by_id = item.body.by_id(&item.token_id);
                self.inner.api.report(&by_id, timeout).await
            }
            other => other,
        }
    }

    /// Sends the queued reports now (it also happens by itself once the manager answers).
    /// Returns how many were delivered.
    pub async fn flush_reports(&self) -> usize {
        let _one_at_a_time = self.inner.flushing.lock().await;
        let (items, dropped) = self.inner.fallback.lock().drain();
        if dropped > 0 {
            tracing::warn!(dropped, "reports dropped while the manager was unreachable");
        }
        let mut sent = 0;
        let mut rest = items.into_iter();
        while let Some(item) = rest.next() {
            match self.send(&item).await {
                Ok(()) => sent += 1,
                Err(ApiFailure::Unreachable(_)) => {
                    let mut back = vec![item];
                    back.extend(rest);
                    let cap = self.inner.config.max_queued_reports;
                    self.inner.fallback.lock().requeue(back, cap);
                    break;
                }
                Err(ApiFailure::Answer(e)) => {
                    tracing::debug!(token_id = %item.token_id, error = %e, "queued report refused; dropped");
                }
            }
        }
        if sent > 0 {
            tracing::info!(sent, "queued reports delivered");
        }
        sent
    }
}

/// The wire form of a report; the token's value is cut out of the error sample.
fn report_body(lease: &Lease, outcome: &Outcome) -> ReportBody {
    let error = outcome.error.as_ref().map(|e| {
        let secret = lease.secret().expose();
        let scrubbed = if secret.is_empty() {
            e.clone()
        } else {
            e.replace(secret, &lease.secret().masked())
        };
        scrubbed.chars().take(500).collect()
    });
    ReportBody {
        lease: lease.lease_id.clone(),
        id: None,
        success: None,
        outcome: outcome.class.as_str(),
        latency_ms: outcome.latency_ms,
        status: outcome.status,
        retry_after_s: outcome.retry_after_s,
        error: if outcome.class == OutcomeClass::Success {
            None
        } else {
            error
        },
    }
}
