//! tokenlb-store: durable records behind one async trait.
//!
//! The manager talks only to [`Store`]; which backend sits behind it (embedded SQLite by
//! default, PostgreSQL for cluster mode) is chosen at start-up. Secrets are encrypted at rest
//! by the backend with the [`crypto::Cipher`] it was opened with: callers hand over and get
//! back plain [`Secret`]s, and never see ciphertext.
//!
//! Every write method is durable when it returns `Ok` (the transaction committed with the
//! backend's full-sync setting), which is what lets the API acknowledge an add, a remove or a
//! patch only after it will survive a crash.
//!
//! Opening: [`keys::open_sqlite`] (data dir + optional configured key: finds or creates the
//! key, opens `tokenlb.db`, settles an interrupted key rotation) or, by hand,
//! [`Cipher::load_or_create`] + [`SqliteStore::open`]; for cluster mode
//! [`PgStore::connect`]. Key rotation: [`keys::rotate_key_file`] (key file) or
//! [`Store::reencrypt`] (a key from configuration).

pub mod crypto;
mod delegate;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod keys;
mod migrate;
pub mod postgres;
mod rows;
pub mod sqlite;

use async_trait::async_trait;
pub use tokenlb_core::{Counters as TokenCounters, Limits};
use tokenlb_core::{Millis, Secret, TokenId, TokenState};

pub use crypto::{Cipher, CryptoError, KeySource};
pub use postgres::{PgOptions, PgStore};
pub use sqlite::{SqliteOptions, SqliteStore};

/// Errors from a store backend. Messages name the file or database, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a token with the same value already exists (id {0})")]
    Duplicate(TokenId),
    #[error("no token with id {0}")]
    NotFound(TokenId),
    #[error("cannot decrypt a stored secret: wrong key or corrupt data ({0})")]
    Decrypt(#[source] Cause),
    #[error("store unavailable: {0}")]
    Unavailable(#[source] Cause),
    #[error("store error: {0}")]
    Backend(#[source] Cause),
}

/// Why a backend operation failed: a message a user can act on (it names the file or the
/// database and says in words what went wrong) and, when a driver said so, the driver's own
/// error as the [`source`](std::error::Error::source).
#[derive(Debug, Clone)]
pub struct Cause {
    message: String,
    source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
}

impl Cause {
    /// A cause with the driver's error behind it.
    pub fn caused_by(
        message: String,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Cause {
        Cause {
            message,
            source: Some(std::sync::Arc::new(source)),
        }
    }

    /// The message alone.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<String> for Cause {
    fn from(message: String) -> Cause {
        Cause {
            message,
            source: None,
        }
    }
}

impl From<&str> for Cause {
    fn from(message: &str) -> Cause {
        Cause::from(message.to_string())
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Reads as its message (`cause.contains("disk is full")`).
impl std::ops::Deref for Cause {
    type Target = str;
    fn deref(&self) -> &str {
        &self.message
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A token as it is kept durably: configuration, current state, and cumulative counters.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredToken {
    pub id: TokenId,
    pub pool: String,
    pub name: String,
    pub secret: Secret,
    pub refresh_secret: Option<Secret>,
    pub weight: u32,
    pub expires_at: Option<Millis>,
    pub limits: Limits,
    pub state: TokenState,
    pub state_reason: Option<String>,
    /// For `cooling`: when the cooling period ends.
    pub state_until: Option<Millis>,
    pub created_at: Millis,
    pub counters: TokenCounters,
}

impl StoredToken {
    /// An active token in pool `default` with weight 100, no limits, no expiry and zero
    /// counters (set the other fields after).
    pub fn new(id: TokenId, name: String, secret: Secret, created_at: Millis) -> StoredToken {
        StoredToken {
            id,
            pool: "default".into(),
            name,
            secret,
            refresh_secret: None,
            weight: 100,
            expires_at: None,
            limits: Limits::default(),
            state: TokenState::Active,
            state_reason: None,
            state_until: None,
            created_at,
            counters: TokenCounters::default(),
        }
    }
}

/// A change to a token's configuration or state (admin patch, state change, refresh).
/// `None` fields are left as they are.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenUpdate {
    pub name: Option<String>,
    pub pool: Option<String>,
    pub weight: Option<u32>,
    pub expires_at: Option<Option<Millis>>,
    pub limits: Option<Limits>,
    pub secret: Option<Secret>,
    pub refresh_secret: Option<Option<Secret>>,
    pub state: Option<(TokenState, Option<String>, Option<Millis>)>,
}

/// One row of per-minute counts: requests and failures of a token in one minute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinuteCount {
    pub token_id: TokenId,
    pub pool: String,
    /// Minute number: epoch milliseconds / 60 000.
    pub minute: u64,
    pub requests: u32,
    pub failures: u32,
}

/// What the stats flusher writes at once, in one transaction: counter snapshots (absolute
/// values, so a repeated write is harmless) and per-minute deltas (added to what is there).
#[derive(Clone, Debug, Default)]
pub struct StatsBatch {
    pub counters: Vec<(TokenId, TokenCounters)>,
    pub minutes: Vec<MinuteCount>,
}

/// A state change (DESIGN §2): time, token, from, to, reason, sample error.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EventRecord {
    /// Assigned by the store on append; 0 before.
    pub seq: i64,
    pub at: Millis,
    pub token_id: TokenId,
    pub token_name: String,
    pub pool: String,
    pub from: Option<TokenState>,
    pub to: Option<TokenState>,
    /// Machine-readable kind: `state_change`, `added`, `removed`, `refreshed`, `patched`, …
    pub kind: String,
    pub reason: String,
    /// `reason` as a code (the change's cause, or the event's kind) for translation.
    #[serde(default)]
    pub reason_code: Option<String>,
    /// The code's parameters as a JSON object (`{"seconds":"30","by":"admin"}`).
    #[serde(default)]
    pub reason_params: Option<String>,
    pub sample_error: Option<String>,
}

/// A filter for reading events, newest first.
#[derive(Clone, Debug, Default)]
pub struct EventQuery {
    pub token_id: Option<TokenId>,
    pub pool: Option<String>,
    pub since: Option<Millis>,
    pub before_seq: Option<i64>,
    /// At most this many events; 0 means no limit.
    pub limit: u32,
}

/// A filter for reading per-minute counts, summed over the tokens it selects.
#[derive(Clone, Debug, Default)]
pub struct MinuteQuery {
    pub token_id: Option<TokenId>,
    pub pool: Option<String>,
    pub since_minute: u64,
}

/// A pool's stored policy, as JSON the manager owns (the store does not interpret it).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredPool {
    pub name: String,
    pub policy_json: String,
}

/// The durable store. One implementation per backend; callers hold `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Where the data lives, for messages (a file path or a redacted URL).
    fn describe(&self) -> String;

    /// All tokens, secrets decrypted.
    async fn load_tokens(&self) -> StoreResult<Vec<StoredToken>>;

    /// Inserts tokens in one transaction. Fails with `Duplicate` (and inserts none) when a
    /// token's secret value is already stored. Durable when it returns.
    async fn insert_tokens(&self, tokens: &[StoredToken]) -> StoreResult<()>;

    /// Inserts the tokens whose secret is not yet stored and returns the ids of those skipped
    /// as duplicates (merge by token value, for imports). One transaction; durable on return.
    /// The ids returned are those of the *given* tokens that were skipped (stored already, or
    /// repeating an earlier token of the same call), in no particular order.
    async fn merge_tokens(&self, tokens: &[StoredToken]) -> StoreResult<Vec<TokenId>>;

    /// Finds a token's id by its secret value (the backend keeps a keyed hash for this).
    async fn find_by_secret(&self, secret: &Secret) -> StoreResult<Option<TokenId>>;

    /// Removes a token with its counters and minute rows (events stay). `Ok(false)` if absent.
    async fn delete_token(&self, id: &TokenId) -> StoreResult<bool>;

    /// Applies an update; `NotFound` if absent. Durable when it returns.
    async fn update_token(&self, id: &TokenId, update: &TokenUpdate) -> StoreResult<()>;

    /// Writes a stats batch in one transaction (SQLite: one journal row, folded into the token
    /// and minute rows later; reads include it at once).
    async fn write_stats(&self, batch: &StatsBatch) -> StoreResult<()>;

    /// Appends events and returns them with their sequence numbers.
    async fn append_events(&self, events: &[EventRecord]) -> StoreResult<Vec<EventRecord>>;

    async fn events(&self, query: &EventQuery) -> StoreResult<Vec<EventRecord>>;

    /// Per-minute totals (summed over the selected tokens), oldest first.
    async fn minutes(&self, query: &MinuteQuery) -> StoreResult<Vec<(u64, u32, u32)>>;

    /// Deletes minute rows older than `before_minute`, events older than `events_before`,
    /// and all but the newest `keep_events` events (the row cap).
    async fn prune(
        &self,
        before_minute: u64,
        events_before: Millis,
        keep_events: u64,
    ) -> StoreResult<()>;

    async fn load_pools(&self) -> StoreResult<Vec<StoredPool>>;
    async fn upsert_pool(&self, pool: &StoredPool) -> StoreResult<()>;

    /// Re-encrypts every secret under `new`, in one transaction (for `tokenlb keys rotate`).
    async fn reencrypt(&self, new: &Cipher) -> StoreResult<usize>;

    /// Checks the store answers (for `/readyz`).
    async fn ping(&self) -> StoreResult<()>;

    /// Writes what stats writes left for later into their final rows, before a clean stop
    /// (SQLite: folds the stats journal; PostgreSQL writes rows directly, nothing to do).
    /// Stats already written are durable and read back without it.
    async fn fold_stats(&self) -> StoreResult<()> {
        Ok(())
    }

    /// Closes connections cleanly at shutdown (SQLite: folds the stats journal, checkpoints
    /// the WAL). Writes already returned are durable without it; calls after it fail with
    /// `Unavailable`.
    async fn close(&self) {}
}
