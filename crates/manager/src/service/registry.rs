//! The pool registry: every pool by name and index, and which pool each token is in.
//!
//! Pools live behind `parking_lot::Mutex<Pool>`: every operation on a pool is a short,
//! synchronous critical section (a pick, a report, a tick) and the lock is never held across
//! an `.await` (the mini-redis `Db` pattern). The set of pools only grows (a token added to a
//! new pool name creates it), so a pool's index is stable and can be part of a lease id.
//! A token id → pool index map lets id-addressed operations find their pool without scanning.
//!
//! Only the service layer locks a pool to change it; everything else reads through
//! [`PoolHandle::views`] and friends, or asks the service.

use crate::config::{Config, HealthConfig, DEFAULT_POOL};
use crate::probe::{self, HealthProbe};
use parking_lot::{Mutex, MutexGuard, RwLock};
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;
use tokenlb_core::{Millis, Pool, Secret, TokenId, TokenView};
use tokio::sync::Notify;

/// One pool and what goes with it.
pub struct PoolHandle {
    /// Position in the pool list; part of every lease id handed out from this pool.
    pub index: usize,
    pub name: String,
    /// The pure pool logic; locked briefly, never across `.await`. Private: changes go
    /// through the service, which records and publishes what they did.
    pool: Mutex<Pool>,
    /// Woken when a token may have become eligible (report, tick, add, patch), so `get`
    /// callers with `wait_ms` retry without polling.
    pub(crate) notify: Notify,
    /// Callers waiting in `get` with `wait_ms` (capped by `max_waiters`).
    pub(crate) waiters: std::sync::atomic::AtomicUsize,
    /// Times a waiter was woken to try again.
    pub(crate) wakeups: std::sync::atomic::AtomicU64,
    /// The pool's health-check settings, and the probe built from them (None = kind none).
    pub health: HealthConfig,
    pub probe: Option<Arc<dyn HealthProbe>>,
}

impl PoolHandle {
    /// The pool's name, waiter wake-ups so far and waiters now (for `/metrics`).
    pub fn waiter_counts(&self) -> (String, u64, usize) {
        use std::sync::atomic::Ordering;
        (
            self.name.clone(),
            self.wakeups.load(Ordering::Relaxed),
            self.waiters.load(Ordering::Relaxed),
        )
    }

    /// The pool, locked (service layer only: a change made here must be recorded).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Pool> {
        self.pool.lock()
    }

    /// Every token's view, in the pool's order.
    pub fn views(&self) -> Vec<TokenView> {
        self.pool.lock().views()
    }

    /// One token's view.
    pub fn view(&self, id: &TokenId) -> Option<TokenView> {
        self.pool.lock().get(id)
    }

    /// One token's state (no view built).
    pub fn state_of(&self, id: &TokenId) -> Option<tokenlb_core::TokenState> {
        self.pool.lock().state_of(id)
    }

    /// A token's secret (health probes, proxying).
    pub fn secret(&self, id: &TokenId) -> Option<Secret> {
        self.pool.lock().secret(id).cloned()
    }

    /// The pool's totals.
    pub fn stats(&self) -> tokenlb_core::PoolStats {
        self.pool.lock().stats()
    }

    /// The pool's totals and how many tokens may be leased now (one hold of the lock).
    pub fn eligibility(&self) -> (tokenlb_core::PoolStats, usize) {
        let pool = self.pool.lock();
        (pool.stats(), pool.eligible_len())
    }

    /// The pool's scrape-time gauges (one hold of the lock); every token's view too when
    /// `per_token` (`metrics.per_token`).
    pub fn gauges(&self, now: Millis, per_token: bool) -> crate::metrics::PoolGauges {
        let pool = self.pool.lock();
        crate::metrics::PoolGauges {
            name: self.name.clone(),
            stats: pool.stats(),
            eligible: pool.eligible_len(),
            expiring_24h: pool.expiring_within(now, 24 * 3_600_000),
            tokens: if per_token { pool.views() } else { Vec::new() },
        }
    }

    /// The pool's policy (a copy).
    pub fn policy(&self) -> tokenlb_core::Policy {
        self.pool.lock().policy().clone()
    }
}

/// What the manager keeps about a token beyond the core's view.
#[derive(Clone, Debug)]
pub struct TokenMeta {
    pub pool: usize,
    pub created_at: Millis,
    pub has_refresh: bool,
}

#[derive(Default)]
struct PoolSet {
    list: Vec<Arc<PoolHandle>>,
    by_name: HashMap<String, usize>,
}

/// Every pool and every token's pool.
pub struct Registry {
    config: Arc<Config>,
    pools: RwLock<PoolSet>,
    tokens: RwLock<HashMap<TokenId, TokenMeta>>,
}

impl Registry {
    pub fn new(config: Arc<Config>) -> Registry {
        Registry {
            config,
            pools: RwLock::new(PoolSet::default()),
            tokens: RwLock::new(HashMap::default()),
        }
    }

    /// All pools, in index order.
    pub fn pools(&self) -> Vec<Arc<PoolHandle>> {
        self.pools.read().list.clone()
    }

    pub fn pool_by_name(&self, name: &str) -> Option<Arc<PoolHandle>> {
        let set = self.pools.read();
        set.by_name.get(name).map(|&i| set.list[i].clone())
    }

    pub fn pool_by_index(&self, index: usize) -> Option<Arc<PoolHandle>> {
        self.pools.read().list.get(index).cloned()
    }

    /// The pool of that name, created from its configuration (or the default pool's policy
    /// when it is not configured) if it does not exist yet.
    pub fn pool_or_create(&self, name: &str) -> Result<Arc<PoolHandle>, String> {
        if let Some(p) = self.pool_by_name(name) {
            return Ok(p);
        }
        let policy = match self.config.pools.get(name) {
            Some(pc) => pc.policy.clone(),
            None => self
                .config
                .pools
                .get(DEFAULT_POOL)
                .map(|pc| pc.policy.clone())
                .unwrap_or_default(),
        };
        let health = self.config.health_of(name);
        let probe = probe::probe_for(name, &health)?;
        let mut set = self.pools.write();
        if let Some(&i) = set.by_name.get(name) {
            return Ok(set.list[i].clone());
        }
        let index = set.list.len();
        let handle = Arc::new(PoolHandle {
            index,
            name: name.to_string(),
            pool: Mutex::new(Pool::new(name, policy)),
            notify: Notify::new(),
            waiters: std::sync::atomic::AtomicUsize::new(0),
            wakeups: std::sync::atomic::AtomicU64::new(0),
            health,
            probe,
        });
        set.list.push(handle.clone());
        set.by_name.insert(name.to_string(), index);
        Ok(handle)
    }

    /// What the manager keeps about a token (its pool, creation time, refresh token).
    pub fn token_meta(&self, id: &TokenId) -> Option<TokenMeta> {
        self.tokens.read().get(id).cloned()
    }

    /// The pool a token is in.
    pub fn token_pool(&self, id: &TokenId) -> Option<Arc<PoolHandle>> {
        let meta = self.token_meta(id)?;
        self.pool_by_index(meta.pool)
    }

    pub(crate) fn set_token_metas(&self, metas: Vec<(TokenId, TokenMeta)>) {
        self.tokens.write().extend(metas);
    }

    pub(crate) fn forget_token(&self, id: &TokenId) {
        self.tokens.write().remove(id);
    }

    pub fn token_count(&self) -> usize {
        self.tokens.read().len()
    }
}
