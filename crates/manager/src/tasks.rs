//! Background work: the ticker, the event writer, the stats flusher and the pruner.
//!
//! - The **ticker** wakes every [`TICK`] and calls `Pool::tick` on each pool whose
//!   `next_deadline` has come: unreported leases close as `unknown`, cooling ends, tokens
//!   expire. Changes become events and wake `get` callers waiting on the pool.
//! - The **event writer** takes events from the service's bounded, coalescing
//!   [`EventQueue`](crate::service::events::EventQueue) (so the request path never waits on
//!   the store), appends them in batches and persists the *current* state of every token that
//!   changed under `state_writes`, so an older background write never overwrites a newer
//!   admin one. It also closes the coalescing windows that are due.
//! - The **stats flusher** takes the pools' dirty counters every `stats_flush_ms` (in chunks
//!   of [`DIRTY_CHUNK`] tokens per hold of the pool's lock) and writes them in one store call
//!   (SQLite: one journal row, folded into the rows later by the store); a failed batch is
//!   kept and merged into the next.
//! - The **pruner** drops minute rows older than 24 h, events older than 7 days and events
//!   beyond the row cap (`max_event_rows`), every 10 minutes.
//! - The **notifier** (`crate::notify`, when `[[notify]]` targets are set) sends webhooks.
//!
//! All of them stop on the shutdown signal; the flusher and event writer write what they
//! still hold before they return (the flusher also has the store fold its stats journal).

use crate::health::Probes;
use crate::refresh::Refresher;
use crate::service::now_ms;
use crate::service::TokenService;
use crate::shutdown::stopped;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokenlb_core::TokenId;
use tokenlb_store::{EventRecord, MinuteCount, StatsBatch};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often the ticker looks at the pools' deadlines.
pub const TICK: Duration = Duration::from_millis(200);
/// Dirty tokens handed over per hold of a pool's lock (~50–100 µs of work).
const DIRTY_CHUNK: usize = 512;
const MINUTE_MS: u64 = 60_000;
const DAY_MS: u64 = 24 * 60 * MINUTE_MS;

/// The running background tasks and their stop signal.
pub struct Tasks {
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
}

impl Tasks {
    /// Starts every background loop, each with only the parts it uses.
    pub fn spawn(svc: &TokenService, probes: &Arc<Probes>, refresher: &Arc<Refresher>) -> Tasks {
        let (stop, rx) = watch::channel(false);
        let mut handles = vec![
            tokio::spawn(ticker(svc.clone(), rx.clone())),
            tokio::spawn(event_writer(svc.clone(), rx.clone())),
            tokio::spawn(flusher(svc.clone(), rx.clone())),
            tokio::spawn(pruner(svc.clone(), rx.clone())),
            tokio::spawn(crate::health::prober(
                probes.clone(),
                svc.clone(),
                rx.clone(),
            )),
            tokio::spawn(crate::refresh::refresher(refresher.clone(), rx.clone())),
        ];
        handles.extend(crate::notify::spawn(svc, rx.clone()));
        handles.extend(svc.spawn_coordinator(rx));
        Tasks { stop, handles }
    }

    /// Signals every task to stop and waits until they have written what they hold.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for h in self.handles {
            let _ = h.await;
        }
    }
}

async fn ticker(svc: TokenService, mut stop: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => svc.tick(),
            _ = stopped(&mut stop) => return,
        }
    }
}

async fn event_writer(state: TokenService, mut stop: watch::Receiver<bool>) {
    let queue = state.event_queue().clone();
    loop {
        let stopping = tokio::select! {
            () = queue.queued() => false,
            // Coalescing windows close by time, with or without new events.
            () = tokio::time::sleep(Duration::from_secs(5)) => false,
            _ = stopped(&mut stop) => true,
        };
        queue.close_windows(now_ms(), stopping);
        loop {
            let (events, dirty) = queue.take(1000);
            if events.is_empty() && dirty.is_empty() {
                break;
            }
            write_events(&state, events, dirty).await;
        }
        if stopping {
            return;
        }
    }
}

async fn write_events(state: &TokenService, records: Vec<EventRecord>, persist: Vec<TokenId>) {
    if !records.is_empty() {
        if let Err(e) = state.store().append_events(&records).await {
            tracing::error!(error = %e, "cannot store {} events", records.len());
        }
    }
    let _guard = state.state_writes().await;
    for id in persist {
        if let Err(e) = state.save_state(&id).await {
            tracing::error!(token = %id, error = %e, "cannot store the token's state");
        }
    }
}

async fn flusher(state: TokenService, mut stop: watch::Receiver<bool>) {
    let period = Duration::from_millis(state.config().stats_flush_ms.clamp(50, 1000));
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending = StatsBatch::default();
    loop {
        let stopping = tokio::select! {
            _ = every.tick() => false,
            _ = stopped(&mut stop) => true,
        };
        pending = flush(&state, pending).await;
        if stopping {
            // A clean stop leaves the stats in their rows (SQLite: the journal folded), so
            // the next start has nothing to replay.
            if let Err(e) = state.store().fold_stats().await {
                tracing::warn!(error = %e, "cannot fold the stats journal at shutdown; the next start will");
            }
            return;
        }
    }
}

/// Takes the dirty stats of every pool, merges them after `pending` (an earlier failed
/// batch) and writes them; returns what could not be written.
pub async fn flush(state: &TokenService, pending: StatsBatch) -> StatsBatch {
    let StatsBatch {
        mut counters,
        mut minutes,
    } = pending;
    let retry = !counters.is_empty() || !minutes.is_empty();
    if retry {
        // Tokens removed since the failed write (the store would skip them anyway).
        counters.retain(|(id, _)| state.token_meta(id).is_some());
        minutes.retain(|m| state.token_meta(&m.token_id).is_some());
    }
    let mut dirty = Vec::new();
    for handle in state.pools() {
        // Swapped out under the lock in O(1), then built a chunk per lock hold, so a pick
        // never waits behind a whole flush (100,000 tokens touched a second under
        // round-robin).
        let mut take = handle.lock().begin_take_dirty();
        take.prepare();
        while !take.is_done() {
            handle
                .lock()
                .take_dirty_chunk(&mut take, DIRTY_CHUNK, &mut dirty);
            tokio::task::yield_now().await;
        }
        for d in dirty.drain(..) {
            for (minute, requests, failures) in d.minutes {
                minutes.push(MinuteCount {
                    token_id: d.token_id.clone(),
                    pool: handle.name.clone(),
                    minute,
                    requests,
                    failures,
                });
            }
            counters.push((d.token_id, d.counters));
        }
    }
    // A take hands each token over once, so only a retried batch has repeats to merge; the
    // cluster's totals work on a map.
    let totals = state.coordinator().keeps_totals();
    if retry || totals {
        let mut by_id: HashMap<TokenId, tokenlb_core::Counters> = counters.into_iter().collect();
        if totals {
            state.coordinator().to_totals(&mut by_id).await;
        }
        counters = by_id.into_iter().collect();
        minutes = merge_minutes(minutes);
    }
    let batch = StatsBatch { counters, minutes };
    if batch.counters.is_empty() && batch.minutes.is_empty() {
        return StatsBatch::default();
    }
    match state.store().write_stats(&batch).await {
        Ok(()) => StatsBatch::default(),
        Err(e) => {
            tracing::error!(error = %e, "cannot write stats; keeping them for the next flush");
            batch
        }
    }
}

/// Sums minute counts of the same token and minute (a retried batch and a new one).
fn merge_minutes(minutes: Vec<MinuteCount>) -> Vec<MinuteCount> {
    let mut at: HashMap<(TokenId, u64), usize> = HashMap::with_capacity(minutes.len());
    let mut out: Vec<MinuteCount> = Vec::with_capacity(minutes.len());
    for m in minutes {
        match at.get(&(m.token_id.clone(), m.minute)) {
            Some(&i) => {
                out[i].requests = out[i].requests.saturating_add(m.requests);
                out[i].failures = out[i].failures.saturating_add(m.failures);
            }
            None => {
                at.insert((m.token_id.clone(), m.minute), out.len());
                out.push(m);
            }
        }
    }
    out
}

async fn pruner(state: TokenService, mut stop: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(Duration::from_secs(600));
    let keep = state.config().max_event_rows;
    loop {
        tokio::select! {
            _ = every.tick() => {
                let now = now_ms();
                let before_minute = now.saturating_sub(DAY_MS) / MINUTE_MS;
                if let Err(e) = state.store().prune(before_minute, now.saturating_sub(7 * DAY_MS), keep).await {
                    tracing::warn!(error = %e, "pruning old stats and events failed");
                }
            }
            _ = stopped(&mut stop) => return,
        }
    }
}
