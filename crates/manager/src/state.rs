//! The manager's shared state: one cloneable [`AppState`] handed to every handler and task.
//!
//! Pools live behind `Arc<parking_lot::Mutex<Pool>>`: every operation on a pool is a short,
//! synchronous critical section (a pick, a report, a tick) and the lock is never held across
//! an `.await` (the mini-redis `Db` pattern). The set of pools only grows (a token added to a
//! new pool name creates it), so a pool's index is stable and can be part of a lease id.
//! A token id → pool index map lets id-addressed routes find their pool without scanning.

use crate::auth::Keys;
use crate::config::{Config, HealthConfig, DEFAULT_POOL};
use crate::health::{self, HealthProbe};
use crate::metrics::Metrics;
use crate::session::{LoginLimiter, Sessions};
use crate::tasks::EventSink;
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokenlb_core::{Millis, Pool, TokenId};
use tokenlb_store::Store;
use tokio::sync::Notify;

/// Milliseconds since the Unix epoch, the only clock the manager reads.
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// One pool and what goes with it.
pub struct PoolHandle {
    /// Position in the pool list; part of every lease id handed out from this pool.
    pub index: usize,
    pub name: String,
    /// The pure pool logic; locked briefly, never across `.await`.
    pub pool: Mutex<Pool>,
    /// Woken when a token may have become eligible (report, tick, add, patch), so `get`
    /// callers with `wait_ms` retry without polling.
    pub notify: Notify,
    /// The pool's health-check settings, and the probe built from them (None = kind none).
    pub health: HealthConfig,
    pub probe: Option<Arc<dyn HealthProbe>>,
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

/// Everything the handlers and tasks share. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pools: RwLock<PoolSet>,
    tokens: RwLock<HashMap<TokenId, TokenMeta>>,
    /// Admin key, client keys, admin user and password hash.
    pub keys: Keys,
    pub sessions: Sessions,
    pub login_limiter: LoginLimiter,
    pub metrics: Metrics,
    /// Cluster mode (`--redis`): shared live state in Redis; unset in single-node mode.
    pub cluster_link: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
    /// Where state changes and admin events go to be logged and persisted.
    pub events: EventSink,
    /// Tokens with a health probe running now (one probe at a time per token).
    pub probing: Mutex<HashSet<TokenId>>,
    /// Last probe time per token, to respect `probe_interval_s`.
    pub last_probe: Mutex<HashMap<TokenId, Millis>>,
    /// Serialises "read a token's state, write it to the store", so a late background write
    /// can never overwrite a newer admin change.
    pub state_writes: tokio::sync::Mutex<()>,
    /// Set when the server begins to shut down, so `get` callers waiting for a token stop
    /// waiting and graceful shutdown is not held up by long `wait_ms`.
    pub closing: tokio::sync::watch::Sender<bool>,
    /// Token refresh (`wopan` pools): refresh tokens in memory, running refreshes, retries.
    pub refresh: crate::refresh::Refresher,
    /// Tests only: treat every peer as this address (the loopback rule cannot otherwise be
    /// exercised from a loopback test client).
    peer_override: RwLock<Option<IpAddr>>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub(crate) fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        keys: Keys,
        events: EventSink,
    ) -> Self {
        let admin = &config.admin;
        AppState(Arc::new(Inner {
            sessions: Sessions::new(admin.session_idle_minutes),
            login_limiter: LoginLimiter::new(admin.login_max_failures, admin.login_window_s),
            config,
            store,
            pools: RwLock::new(PoolSet::default()),
            tokens: RwLock::new(HashMap::new()),
            keys,
            metrics: Metrics::default(),
            cluster_link: std::sync::OnceLock::new(),
            events,
            probing: Mutex::new(HashSet::new()),
            last_probe: Mutex::new(HashMap::new()),
            state_writes: tokio::sync::Mutex::new(()),
            closing: tokio::sync::watch::Sender::new(false),
            refresh: Default::default(),
            peer_override: RwLock::new(None),
        }))
    }

    /// Treat every client as connecting from `addr` (tests of the loopback-only rule).
    pub fn set_peer_override(&self, addr: Option<IpAddr>) {
        *self.peer_override.write() = addr;
    }

    pub(crate) fn peer_override(&self) -> Option<IpAddr> {
        *self.peer_override.read()
    }

    /// The cluster side, in cluster mode.
    pub fn cluster(&self) -> Option<&crate::cluster::Cluster> {
        self.cluster_link.get().map(|c| &**c)
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
        let (policy, health) = match self.config.pools.get(name) {
            Some(pc) => (pc.policy.clone(), pc.health.clone()),
            None => {
                let policy = self
                    .config
                    .pools
                    .get(DEFAULT_POOL)
                    .map(|pc| pc.policy.clone())
                    .unwrap_or_default();
                (policy, HealthConfig::default())
            }
        };
        let probe = health::probe_for(name, &health)?;
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
            health,
            probe,
        });
        set.list.push(handle.clone());
        set.by_name.insert(name.to_string(), index);
        Ok(handle)
    }

    /// Which pool a token is in.
    pub fn token_meta(&self, id: &TokenId) -> Option<TokenMeta> {
        self.tokens.read().get(id).cloned()
    }

    pub fn token_pool(&self, id: &TokenId) -> Option<Arc<PoolHandle>> {
        let meta = self.token_meta(id)?;
        self.pool_by_index(meta.pool)
    }

    pub(crate) fn set_token_metas(&self, metas: Vec<(TokenId, TokenMeta)>) {
        self.tokens.write().extend(metas);
    }

    pub(crate) fn forget_token(&self, id: &TokenId) {
        self.tokens.write().remove(id);
        self.last_probe.lock().remove(id);
        self.refresh.forget(id);
    }

    pub fn token_count(&self) -> usize {
        self.tokens.read().len()
    }
}
