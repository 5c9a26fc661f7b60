//! Webhook notifications: the changes an operator must know about (a token turned invalid,
//! a pool with tokens but none eligible, a refresh the upstream refused), POSTed as signed
//! JSON to every `[[notify]]` target.
//!
//! A background duty (docs/architecture.md): one aggregator task hears the service's change
//! feed ([`TokenService::watch_changes`]), turns the events that matter into [`Notice`]s
//! ([`payload::classify`]) and, per target, coalesces a burst: the first notice opens a
//! window of `coalesce_ms`, and everything that arrives in it leaves as one delivery with a
//! list and counts. Deliveries wait in a bounded [`deliver::Outbox`] per target (full: the
//! oldest is dropped and `tokenlb_notify_dropped_total` counts it), from which one worker
//! per target sends them, with exponential backoff over a bounded number of attempts.
//! Since the feed is bounded and drops when full, the aggregator also looks at every pool
//! now and then ([`SWEEP`]) for pools left with no eligible token.
//!
//! On shutdown the aggregator hands over what it still holds, and the workers keep
//! delivering until their outbox is empty or [`DRAIN`] has passed.
//!
//! Bodies carry token ids, names, pools, states and reasons (with the token's value masked
//! should a reason ever contain it); never a secret.

pub mod deliver;
pub mod payload;

use crate::config::NotifyConfig;
use crate::service::TokenService;
use crate::shutdown::stopped;
use deliver::{Delivery, Outbox};
use payload::{pool_unavailable, Notice};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokenlb_store::EventRecord;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How often every pool is looked at for "no eligible token" besides the change feed.
pub const SWEEP: Duration = Duration::from_secs(10);
/// How long shutdown waits for the outboxes to empty.
pub const DRAIN: Duration = Duration::from_secs(5);

/// Starts the aggregator and one worker per target; none when no target is configured.
pub fn spawn(svc: &TokenService, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let targets = svc.config().notify.clone();
    if targets.is_empty() {
        return Vec::new();
    }
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook client; notifications are off");
            return Vec::new();
        }
    };
    let mut handles = Vec::new();
    let mut slots = Vec::new();
    for (i, target) in targets.into_iter().enumerate() {
        let outbox = Arc::new(Outbox::new(target.queue));
        let worker = deliver::Worker {
            index: i,
            target: target.clone(),
            client: client.clone(),
            outbox: outbox.clone(),
            metrics: svc.metrics_arc(),
        };
        handles.push(tokio::spawn(worker.run(stop.clone())));
        slots.push(Target {
            config: target,
            outbox,
            pending: Vec::new(),
            due: None,
        });
    }
    let feed = svc.watch_changes();
    handles.push(tokio::spawn(aggregate(svc.clone(), feed, slots, stop)));
    handles
}

/// One target as the aggregator sees it: its settings, its outbox and the notices of the
/// open coalescing window.
struct Target {
    config: NotifyConfig,
    outbox: Arc<Outbox>,
    pending: Vec<Notice>,
    /// When the open window closes (`None`: no window open).
    due: Option<Instant>,
}

impl Target {
    fn offer(&mut self, notice: &Notice) {
        if !self.config.events.contains(&notice.event) {
            return;
        }
        if self.due.is_none() {
            self.due = Some(Instant::now() + Duration::from_millis(self.config.coalesce_ms));
        }
        self.pending.push(notice.clone());
    }

    fn flush(&mut self) {
        self.due = None;
        if self.pending.is_empty() {
            return;
        }
        let notices = std::mem::take(&mut self.pending);
        self.outbox.push(Delivery::new(&notices));
    }
}

async fn aggregate(
    svc: TokenService,
    mut feed: mpsc::Receiver<EventRecord>,
    mut targets: Vec<Target>,
    mut stop: watch::Receiver<bool>,
) {
    let mut empty_pools: HashSet<String> = HashSet::new();
    let mut sweep = tokio::time::interval(SWEEP);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let due = targets.iter().filter_map(|t| t.due).min();
        let mut notices = Vec::new();
        tokio::select! {
            event = feed.recv() => match event {
                Some(event) => {
                    notices.extend(payload::classify(&svc, &event));
                    if event.kind == "state_change" {
                        notices.extend(check_pool(&svc, &event.pool, &mut empty_pools));
                    }
                }
                None => break,
            },
            _ = sweep.tick() => {
                for handle in svc.pools() {
                    notices.extend(check_pool(&svc, &handle.name, &mut empty_pools));
                }
            }
            _ = sleep_until(due) => {}
            _ = stopped(&mut stop) => break,
        }
        for t in &mut targets {
            for n in &notices {
                t.offer(n);
            }
            if t.due.is_some_and(|d| d <= Instant::now()) {
                t.flush();
            }
        }
    }
    for t in &mut targets {
        t.flush();
        t.outbox.close();
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// A notice when `pool` has tokens but none eligible, once per time it empties.
fn check_pool(svc: &TokenService, pool: &str, empty: &mut HashSet<String>) -> Option<Notice> {
    let handle = svc.pool_by_name(pool)?;
    let (stats, eligible) = handle.eligibility();
    if eligible > 0 || stats.total == 0 {
        empty.remove(pool);
        return None;
    }
    if !empty.insert(pool.to_string()) {
        return None;
    }
    Some(pool_unavailable(pool, &stats))
}
