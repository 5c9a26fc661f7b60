//! The service layer: every operation on the token pools, independent of HTTP.
//!
//! [`TokenService`] is the only way in (the mini-redis `Db` shape: private shared state,
//! methods as the doors). Handlers extract, call one method and render; background tasks
//! call the `apply_*`, `tick` and stats methods. Each method is the one place where the
//! sequence *lock the pool → call the core → build events → record them → wake waiters*
//! runs, through [`TokenService::mutate`] and [`TokenService::record`], so no caller can
//! forget a step or do one twice.
//!
//! What lies beneath: the pure pool logic (`tokenlb-core`), the store (`tokenlb-store`), and
//! a [`Coordinator`] for peers ([`Local`] on a single node, Redis in cluster mode). What
//! lies above: `crate::routes` (HTTP) and `crate::tasks` (background loops). Errors are
//! [`ServiceError`]s; the HTTP layer maps them once.

mod admin;
pub mod coordinator;
mod error;
pub mod events;
mod lease;
pub mod listing;
pub mod natural;
pub mod proxy;
pub mod registry;
mod scope;
mod stats;

pub use admin::{NewToken, TokenChanges, TokenRef};
pub use coordinator::{Coordinator, CounterMap, Local, Picked};
pub use error::{ServiceError, ServiceResult};
pub use lease::{LeaseRequest, ReportAck, ReportRequest, MAX_BATCH, MAX_LEASE_S};
pub use listing::{TokenPage, TokenQuery};
pub use scope::Scope;
pub use stats::{EventsFilter, PoolSummary};

use crate::config::Config;
use crate::metrics::Metrics;
use events::{change_events, EventQueue};
use parking_lot::Mutex;
use registry::{PoolHandle, Registry, TokenMeta};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokenlb_core::{Pool, StateChange, TokenId};
use tokenlb_store::{EventRecord, Store};
use tokio::sync::{mpsc, watch};

/// Milliseconds since the Unix epoch, the only clock the manager reads.
pub fn now_ms() -> tokenlb_core::Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as tokenlb_core::Millis)
        .unwrap_or(0)
}

/// Changes a watcher may miss before its queue refuses more (it also scans periodically).
const WATCH_QUEUE: usize = 1024;

/// The token service. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct TokenService(Arc<Inner>);

struct Inner {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    /// Every pool and every token's pool.
    registry: Registry,
    /// Peers: pick, report, publish; [`Local`] when there are none.
    coordinator: Arc<dyn Coordinator>,
    /// Counted here (picks, outcomes, expiries), rendered by the HTTP layer.
    metrics: Arc<Metrics>,
    /// Where events go to be persisted (the event writer task takes them).
    events: Arc<EventQueue>,
    /// Tasks that want to hear of state changes (the refresher); full queues drop.
    watchers: Mutex<Vec<mpsc::Sender<EventRecord>>>,
    /// Serialises "read a token's state, write it to the store", so a late background write
    /// can never overwrite a newer admin change.
    state_writes: tokio::sync::Mutex<()>,
    /// This run's lease-id epoch and tag key ([`lease::LeaseIds`]).
    lease_ids: lease::LeaseIds,
    /// Set when the server begins to shut down, so `get` callers waiting for a token stop
    /// waiting and graceful shutdown is not held up by long `wait_ms`.
    closing: watch::Sender<bool>,
}

impl TokenService {
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        coordinator: Arc<dyn Coordinator>,
        metrics: Arc<Metrics>,
        events: Arc<EventQueue>,
    ) -> TokenService {
        TokenService(Arc::new(Inner {
            registry: Registry::new(config.clone()),
            config,
            store,
            coordinator,
            metrics,
            events,
            watchers: Mutex::new(Vec::new()),
            state_writes: tokio::sync::Mutex::new(()),
            lease_ids: lease::LeaseIds::new(),
            closing: watch::Sender::new(false),
        }))
    }

    /// Events dropped because the event queue was full.
    pub fn events_dropped(&self) -> u64 {
        self.0.events.dropped()
    }

    /// The queue the event writer drains.
    pub(crate) fn event_queue(&self) -> &Arc<EventQueue> {
        &self.0.events
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.0.config
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.0.store
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The counters, shared (for a background task that outlives a borrow).
    pub fn metrics_arc(&self) -> Arc<Metrics> {
        self.0.metrics.clone()
    }

    pub fn coordinator(&self) -> &dyn Coordinator {
        &*self.0.coordinator
    }

    /// Starts the coordinator's background tasks.
    pub(crate) fn spawn_coordinator(
        &self,
        stop: watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        self.0.coordinator.clone().spawn(self, stop)
    }

    /// All pools, in index order.
    pub fn pools(&self) -> Vec<Arc<PoolHandle>> {
        self.0.registry.pools()
    }

    pub fn pool_by_name(&self, name: &str) -> Option<Arc<PoolHandle>> {
        self.0.registry.pool_by_name(name)
    }

    pub fn pool_by_index(&self, index: usize) -> Option<Arc<PoolHandle>> {
        self.0.registry.pool_by_index(index)
    }

    /// A pool by name (default `default`), or [`ServiceError::UnknownPool`].
    pub fn named_pool(&self, name: Option<&str>) -> ServiceResult<Arc<PoolHandle>> {
        let name = name.unwrap_or(crate::config::DEFAULT_POOL);
        self.pool_by_name(name)
            .ok_or_else(|| ServiceError::UnknownPool(name.to_string()))
    }

    /// The pool of that name, created from its configuration if it does not exist yet.
    pub fn pool_or_create(&self, name: &str) -> ServiceResult<Arc<PoolHandle>> {
        self.0
            .registry
            .pool_or_create(name)
            .map_err(ServiceError::Invalid)
    }

    pub fn token_meta(&self, id: &TokenId) -> Option<TokenMeta> {
        self.0.registry.token_meta(id)
    }

    pub fn token_pool(&self, id: &TokenId) -> Option<Arc<PoolHandle>> {
        self.0.registry.token_pool(id)
    }

    pub fn token_count(&self) -> usize {
        self.0.registry.token_count()
    }

    /// A feed of state changes and admin events for a background task (bounded; a slow watcher misses changes
    /// rather than holding anything up, so it must also look for itself now and then).
    pub fn watch_changes(&self) -> mpsc::Receiver<EventRecord> {
        let (tx, rx) = mpsc::channel(WATCH_QUEUE);
        self.0.watchers.lock().push(tx);
        rx
    }

    /// Tells waiting `get` callers to give up: the server is stopping.
    pub fn begin_shutdown(&self) {
        self.0.closing.send_replace(true);
    }

    pub(crate) fn lease_ids(&self) -> &lease::LeaseIds {
        &self.0.lease_ids
    }

    pub(crate) fn closing(&self) -> watch::Receiver<bool> {
        self.0.closing.subscribe()
    }

    /// Holds the state-write lock (see [`Inner::state_writes`]).
    pub(crate) async fn state_writes(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.0.state_writes.lock().await
    }

    /// Runs `f` on the locked pool, then records the state changes it made: the one place
    /// where lock → core → events → record → wake happens. Waiters are woken when a state
    /// changed.
    pub(crate) fn mutate<R, E>(
        &self,
        handle: &PoolHandle,
        f: impl FnOnce(&mut Pool) -> Result<(R, Vec<StateChange>), E>,
    ) -> Result<R, E> {
        self.mutate_with(handle, false, f)
    }

    /// [`TokenService::mutate`] for an operation that frees one slot (a report): one waiter
    /// is woken, or all of them when a token became eligible.
    pub(crate) fn mutate_freeing<R, E>(
        &self,
        handle: &PoolHandle,
        f: impl FnOnce(&mut Pool) -> Result<(R, Vec<StateChange>), E>,
    ) -> Result<R, E> {
        self.mutate_with(handle, true, f)
    }

    fn mutate_with<R, E>(
        &self,
        handle: &PoolHandle,
        wake: bool,
        f: impl FnOnce(&mut Pool) -> Result<(R, Vec<StateChange>), E>,
    ) -> Result<R, E> {
        let (r, events) = self.change(handle, f)?;
        let woken = self.record(handle, events);
        if wake && !woken {
            self.wake_some(handle, 1);
        }
        Ok(r)
    }

    /// The first half of [`TokenService::mutate`], for a caller that must persist something
    /// before the events may go out: runs `f` on the locked pool and returns the events,
    /// which the caller hands to [`TokenService::record`].
    pub(crate) fn change<R, E>(
        &self,
        handle: &PoolHandle,
        f: impl FnOnce(&mut Pool) -> Result<(R, Vec<StateChange>), E>,
    ) -> Result<(R, Vec<EventRecord>), E> {
        let mut pool = handle.lock();
        let (r, changes) = f(&mut pool)?;
        let events = change_events(&pool, &handle.name, &changes);
        self.0.metrics.state_changes(&handle.name, &changes);
        Ok((r, events))
    }

    /// Logs state-change events, tells the peers and the watchers, queues them for the
    /// store and, when one made a token eligible, wakes every waiter of the pool. Returns
    /// whether it woke them.
    pub(crate) fn record(&self, handle: &PoolHandle, events: Vec<EventRecord>) -> bool {
        if events.is_empty() {
            return false;
        }
        let eligible = events
            .iter()
            .any(|e| e.to == Some(tokenlb_core::TokenState::Active));
        self.0.coordinator.publish_changes(&events);
        self.tell_watchers(&events);
        for event in events {
            // Logged there too, unless it repeats a transition just seen (coalesced).
            self.0.events.state_change(event);
        }
        if eligible {
            self.wake(handle);
        }
        eligible
    }

    /// Queues an admin event (the caller has already persisted what it changed).
    pub(crate) fn record_admin(&self, event: EventRecord) {
        self.0.coordinator.publish_admin(&event);
        self.tell_watchers(std::slice::from_ref(&event));
        self.0.events.admin(event);
    }

    fn tell_watchers(&self, events: &[EventRecord]) {
        let mut watchers = self.0.watchers.lock();
        if watchers.is_empty() {
            return;
        }
        watchers.retain(|w| !w.is_closed());
        for event in events {
            for w in watchers.iter() {
                let _ = w.try_send(event.clone());
            }
        }
    }

    /// Wakes every waiter of a pool: a change that may make several tokens eligible (a new
    /// or recovered token, a patch, a peer's change).
    pub(crate) fn wake(&self, handle: &PoolHandle) {
        handle.notify.notify_waiters();
    }

    /// Wakes as many waiters as slots were freed (`freed`), and no more: 1,000 long-poll
    /// waiters and one report cost one wake-up, not 1,000 (DESIGN §9). A woken waiter that
    /// loses the race for the slot waits again; a notification nobody takes is handed to the
    /// next waiter by tokio's `Notify`.
    pub(crate) fn wake_some(&self, handle: &PoolHandle, freed: usize) {
        let waiting = handle.waiters.load(std::sync::atomic::Ordering::Acquire);
        for _ in 0..freed.min(waiting) {
            handle.notify.notify_one();
        }
    }

    /// A change a peer made and already recorded and published, replayed on the local pool
    /// through `f`: nothing is recorded or published again (so nothing loops), but waiters
    /// are woken.
    pub fn apply_peer_change<R>(&self, handle: &PoolHandle, f: impl FnOnce(&mut Pool) -> R) -> R {
        let r = f(&mut handle.lock());
        self.wake(handle);
        r
    }

    /// Closes a core lease without an outcome (a coordinator refused it after the pick):
    /// its slot is freed, nothing is counted.
    pub fn release_lease(&self, handle: &PoolHandle, lease: tokenlb_core::LeaseId) {
        let unknown = tokenlb_core::Outcome::new(tokenlb_core::OutcomeClass::Unknown);
        let _ = self.mutate_freeing(handle, |pool| {
            pool.report(lease, &unknown, now_ms(), &mut rand::thread_rng())
                .map(|(_, changes)| ((), changes))
        });
    }

    /// A health-check result for one token, through the core's state machine.
    pub fn apply_health(
        &self,
        handle: &PoolHandle,
        id: &TokenId,
        outcome: &tokenlb_core::Outcome,
    ) -> ServiceResult<tokenlb_core::TokenView> {
        let view = self.mutate(handle, |pool| {
            let changes = pool
                .health_result(id, outcome, now_ms(), &mut rand::thread_rng())
                .map_err(|_| ServiceError::UnknownToken(Some(id.clone())))?;
            Ok::<_, ServiceError>((pool.get(id), changes))
        })?;
        view.ok_or_else(|| ServiceError::UnknownToken(Some(id.clone())))
    }

    /// One pass of the timers over every pool: unreported leases close as `unknown`,
    /// cooling ends, tokens expire.
    pub fn tick(&self) {
        let now = now_ms();
        for handle in self.pools() {
            let ticked = self.mutate(&handle, |pool| {
                if pool.next_deadline().is_none_or(|d| d > now) {
                    return Ok::<_, std::convert::Infallible>(((0, false), Vec::new()));
                }
                let (changes, expired) = pool.tick(now, &mut rand::thread_rng());
                Ok(((expired, !changes.is_empty()), changes))
            });
            let Ok((expired, _)) = ticked;
            if expired > 0 {
                self.metrics()
                    .lease_expiries(&handle.name, u64::from(expired));
                // Freed slots (a token that became eligible has already woken everyone).
                self.wake_some(&handle, expired as usize);
            }
        }
    }

    /// Forgets a token that is gone (removed here or by a peer).
    pub fn forget(&self, handle: &PoolHandle, id: &TokenId) -> Option<tokenlb_core::TokenView> {
        let view = handle.lock().remove(id);
        self.0.registry.forget_token(id);
        view
    }

    /// Writes a token's current state to the store now, under the state-write lock (a
    /// transition out of rotation must be durable before it is acknowledged).
    pub(crate) async fn persist_state_now(&self, id: &TokenId) -> ServiceResult<()> {
        let _guard = self.state_writes().await;
        self.save_state(id).await
    }

    /// Writes a token's current state to the store; the caller holds the state-write lock
    /// (the event writer does, for a batch). A token removed meanwhile is not an error.
    pub(crate) async fn save_state(&self, id: &TokenId) -> ServiceResult<()> {
        let Some(update) = self.persisted_state(id) else {
            return Ok(());
        };
        match self.store().update_token(id, &update).await {
            Ok(()) | Err(tokenlb_store::StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The token's current state as the store should keep it.
    fn persisted_state(&self, id: &TokenId) -> Option<tokenlb_store::TokenUpdate> {
        let view = self.token_pool(id)?.view(id)?;
        Some(tokenlb_store::TokenUpdate {
            state: Some((view.state, view.state_reason, view.state_until)),
            ..tokenlb_store::TokenUpdate::default()
        })
    }
}
