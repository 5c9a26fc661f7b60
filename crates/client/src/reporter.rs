//! The background reporter: reports delivered after the caller has its answer.
//!
//! [`Client::call`] used to wait for `POST /api/token/report` before handing back the
//! operation's result, so every answer of a service paid a manager round trip it did not
//! need. Now a success is handed to this reporter and the answer goes out at once; a failure
//! is handed over the same way but the caller waits for its delivery, so the manager knows
//! about a rejected token before the next attempt leases another (and never gets a failure
//! ahead of an earlier success).
//!
//! Built as one task per [`Client`] draining a bounded channel ([`ClientConfig::max_queued_reports`]
//! jobs): reports reach the manager in the order they were handed over, gathered into batch
//! requests (DESIGN §9: up to 64 — whatever piled up while the previous request was on its
//! way, so nothing is held back waiting for company), so a busy client's leased call costs
//! about one round trip plus a share of a batch. A manager without the batch form gets them one by one; while the
//! manager is unreachable they join the grace queue and go out when it answers again. A full channel makes the caller wait for
//! room (back-pressure, nothing dropped). The task is spawned on first use (a `Client` can be
//! built outside a runtime) and holds only a weak reference, so it ends when the last `Client`
//! handle is dropped. [`Client::flush`] waits for everything handed over so far; a process
//! that exits without it (a crash) loses at most the reports still in the channel, whose
//! leases the manager then closes as `unknown` at their deadline.
//!
//! [`ClientConfig::max_queued_reports`]: crate::ClientConfig::max_queued_reports

use crate::client::{Client, Inner};
use crate::error::ClientError;
use crate::fallback::Queued;
use std::sync::atomic::Ordering;
use std::sync::Weak;
use tokio::sync::{mpsc, oneshot};

/// One piece of work for the reporter.
pub(crate) enum Job {
    /// Deliver a report; `ack` (if any) gets the result.
    Report {
        item: Queued,
        cached: bool,
        ack: Option<oneshot::Sender<Result<(), ClientError>>>,
    },
    /// Answered once every job handed over before it is done.
    Flush(oneshot::Sender<()>),
}

impl Client {
    /// The reporter's channel, spawning its task on first use.
    fn reporter(&self) -> &mpsc::Sender<Job> {
        self.inner.reporter.get_or_init(|| {
            let (tx, rx) = mpsc::channel(self.inner.config.max_queued_reports);
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(run(std::sync::Arc::downgrade(&self.inner), rx));
                }
                // Outside a runtime the receiver is dropped: every job is handed back and
                // delivered by its caller.
                Err(_) => drop(rx),
            }
            tx
        })
    }

    /// Hands a job to the reporter, waiting for room when its channel is full. Gives the job
    /// back if the reporter is gone (its runtime shut down).
    pub(crate) async fn hand_over(&self, job: Job) -> Result<(), Job> {
        let counts = matches!(job, Job::Report { .. });
        if counts {
            self.inner.pending.fetch_add(1, Ordering::Relaxed);
        }
        let tx = self.reporter();
        let sent = match tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(job)) => tx.send(job).await.map_err(|e| e.0),
            Err(mpsc::error::TrySendError::Closed(job)) => Err(job),
        };
        if sent.is_err() && counts {
            self.inner.pending.fetch_sub(1, Ordering::Relaxed);
        }
        sent
    }

    /// Queues a report for background delivery; with `wait`, returns once it was delivered
    /// (or queued for an unreachable manager), with the manager's refusal if it refused.
    pub(crate) async fn report_via_reporter(
        &self,
        item: Queued,
        cached: bool,
        wait: bool,
    ) -> Result<(), ClientError> {
        let (ack, answer) = if wait {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        match self.hand_over(Job::Report { item, cached, ack }).await {
            Ok(()) => match answer {
                Some(rx) => rx.await.unwrap_or(Ok(())),
                None => Ok(()),
            },
            // No reporter: deliver here, as `report` does.
            Err(Job::Report { item, cached, .. }) => self.deliver(item, cached).await,
            Err(Job::Flush(_)) => Ok(()),
        }
    }

    /// Waits until every report handed to the background reporter so far has been delivered,
    /// refused, or (manager unreachable) moved to the grace queue. Call it before a clean
    /// shutdown; [`Client::flush_reports`] then sends the grace queue if the manager is back.
    pub async fn flush(&self) {
        if self.inner.reporter.get().is_none() {
            return;
        }
        let (tx, rx) = oneshot::channel();
        if self.hand_over(Job::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Reports handed to the background reporter and not yet dealt with.
    pub(crate) fn pending_reports(&self) -> usize {
        self.inner.pending.load(Ordering::Relaxed)
    }
}

/// Most reports sent in one batch request.
const BATCH_MAX: usize = 64;

/// The reporter task: jobs in order, reports gathered into batches (DESIGN §9), until every
/// `Client` is gone.
async fn run(inner: Weak<Inner>, mut rx: mpsc::Receiver<Job>) {
    let mut held: Option<Job> = None;
    loop {
        let job = match held.take() {
            Some(job) => job,
            None => match rx.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let Some(inner) = inner.upgrade() else {
            // Every handle was dropped without a flush: nothing is left to deliver with.
            tracing::debug!("token client dropped; background reporter stops");
            return;
        };
        let client = Client { inner };
        match job {
            Job::Flush(tx) => {
                let _ = tx.send(());
            }
            Job::Report { item, cached, ack } => {
                let mut batch = vec![(item, cached, ack)];
                held = gather(&mut rx, &mut batch);
                deliver(&client, batch).await;
            }
        }
    }
}

/// Adds the reports already waiting (up to [`BATCH_MAX`]) to `batch`, without waiting for
/// more: a batch is what piled up while the previous request was on its way, so reports
/// are never held back and a busy client sends few requests. Returns a job that must wait
/// its turn (a flush).
fn gather(rx: &mut mpsc::Receiver<Job>, batch: &mut Vec<Report>) -> Option<Job> {
    while batch.len() < BATCH_MAX {
        match rx.try_recv() {
            Ok(Job::Report { item, cached, ack }) => batch.push((item, cached, ack)),
            Ok(flush) => return Some(flush),
            Err(_) => return None,
        }
    }
    None
}

/// One report on its way: the item, whether it was leased from the cache, its waiter.
type Report = (
    Queued,
    bool,
    Option<oneshot::Sender<Result<(), ClientError>>>,
);

async fn deliver(client: &Client, batch: Vec<Report>) {
    let mut acks = Vec::with_capacity(batch.len());
    let mut items = Vec::with_capacity(batch.len());
    for (item, cached, ack) in batch {
        acks.push((item.token_id.clone(), ack));
        items.push((item, cached));
    }
    let results = client.deliver_batch(items).await;
    for ((token_id, ack), result) in acks.into_iter().zip(results) {
        client.inner.pending.fetch_sub(1, Ordering::Relaxed);
        match ack {
            Some(tx) => {
                let _ = tx.send(result);
            }
            None => {
                if let Err(e) = result {
                    tracing::warn!(token_id = %token_id, error = %e, "background report refused");
                }
            }
        }
    }
}
