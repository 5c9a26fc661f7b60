//! The embedded SQLite backend: the default store, one file in the data directory.
//!
//! Durability first: WAL journal with `synchronous=FULL`, so a commit is on disk (WAL fsynced)
//! before a write method returns, and survives SIGKILL and power loss. Writes go through a
//! pool of exactly one connection, which serialises them inside the process (no `SQLITE_BUSY`
//! between our own writers, no lost upgrades from read to write); reads use a separate small
//! pool and, thanks to WAL, never wait for a writer. Opening checks that the file is a
//! database, brings the schema up to date (see the `migrate` module), and checks that the key matches
//! the one the secrets were sealed with, so each of those problems is one clear error naming
//! the file at start-up rather than a surprise later.
//!
//! Stats flushes go to a journal (one compact row per flush, `journal`) that is folded into
//! the token and minute rows now and then (`fold`); reads merge what is not folded yet
//! (`merge`), so every figure read is the latest flushed.

mod api;
mod error;
mod fold;
mod journal;
mod merge;
mod migrate;
mod records;
mod tokens;

use crate::crypto::Cipher;
use crate::rows::{crypto_err, KEY_CHECK_CONTEXT, KEY_CHECK_PLAIN};
use crate::{StoreError, StoreResult};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokenlb_core::Secret;

/// Tunables of [`SqliteStore::open_with`]; [`Default`] suits the manager.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// How long a statement waits for a lock held by another process before failing.
    pub busy_timeout: Duration,
    /// Connections for reads (writes always use one).
    pub read_connections: u32,
    /// A cap on the database size in pages of 4 KiB (`PRAGMA max_page_count`); writes past it
    /// fail as a full disk would. `None`: no cap beyond the disk.
    pub max_page_count: Option<u32>,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            busy_timeout: Duration::from_secs(5),
            read_connections: 4,
            max_page_count: None,
        }
    }
}

/// The SQLite store. Cheap to share behind `Arc<dyn Store>`.
pub struct SqliteStore {
    /// The database file, for every error message.
    path: PathBuf,
    /// Exactly one connection: all writes, serialised.
    writer: SqlitePool,
    /// Reads only; WAL lets them run beside the writer.
    reader: SqlitePool,
    /// The current key; replaced by `reencrypt` after its transaction commits.
    cipher: RwLock<Arc<Cipher>>,
    /// The stats journal's fold bookkeeping (see `fold`).
    journal: Arc<fold::JournalState>,
    /// Bulk writes so far; the writer's page cache is given back once this stops moving
    /// (see `after_bulk_write`).
    bulk_writes: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The database file name the manager uses inside its data directory.
pub const DEFAULT_FILE: &str = "tokenlb.db";

impl SqliteStore {
    /// Opens (creating if absent) the database at `path` with default options.
    pub async fn open(path: &Path, cipher: Cipher) -> StoreResult<SqliteStore> {
        Self::open_with(path, cipher, SqliteOptions::default()).await
    }

    /// Opens the database at `path`: connects, migrates, and checks the key.
    pub async fn open_with(
        path: &Path,
        cipher: Cipher,
        options: SqliteOptions,
    ) -> StoreResult<SqliteStore> {
        // Boxed with owned arguments: one `Send + 'static` future, checked here, that callers
        // can spawn or await inside `async_trait` methods without lifetime puzzles.
        Self::open_owned(path.to_path_buf(), cipher, options).await
    }

    fn open_owned(
        path: PathBuf,
        cipher: Cipher,
        options: SqliteOptions,
    ) -> Pin<Box<dyn Future<Output = StoreResult<SqliteStore>> + Send>> {
        Box::pin(async move {
            check_directory(&path)?;
            let existed = path.exists();
            let base = connect_options(&path, &options);
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .connect_with(writer_options(base.clone()))
                .await
                .map_err(|e| error::map(&path, e))?;
            if !existed {
                make_private(&path)?;
            }
            migrate::run(&writer).await.map_err(|e| match e {
                migrate::MigrateError::Sql(e) => error::map(&path, e),
                migrate::MigrateError::TooNew { found, known } => {
                    StoreError::Backend(crate::Cause::from(format!(
                        "{}: database schema version {found} is newer than this tokenlb knows \
                     ({known}); use a newer tokenlb",
                        path.display()
                    )))
                }
            })?;
            let reader = SqlitePoolOptions::new()
                .max_connections(options.read_connections.max(1))
                .connect_with(base)
                .await
                .map_err(|e| error::map(&path, e))?;
            let store = SqliteStore {
                path,
                writer,
                reader,
                cipher: RwLock::new(Arc::new(cipher)),
                journal: Arc::default(),
                bulk_writes: Arc::default(),
            };
            store.check_key().await?;
            // Stats flushed but not folded before the last stop (a crash) go into the rows on
            // a background task; reads merge the journal until then.
            store.fold_after_open().await;
            Ok(store)
        })
    }

    /// The key currently sealing secrets.
    fn cipher(&self) -> Arc<Cipher> {
        match self.cipher.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn set_cipher(&self, cipher: Cipher) {
        let mut slot = match self.cipher.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = Arc::new(cipher);
    }

    fn err(&self, e: sqlx::Error) -> StoreError {
        error::map(&self.path, e)
    }

    /// Verifies the key against the sealed sentinel in `meta`, writing it on first open.
    async fn check_key(&self) -> StoreResult<()> {
        let cipher = self.cipher();
        let stored: Option<(String,)> =
            sqlx::query_as("SELECT value FROM meta WHERE key = 'key_check'")
                .fetch_optional(&self.writer)
                .await
                .map_err(|e| self.err(e))?;
        match stored {
            Some((sealed,)) => cipher
                .decrypt(&sealed, KEY_CHECK_CONTEXT)
                .map(|_| ())
                .map_err(|_| {
                    StoreError::Decrypt(crate::Cause::from(format!(
                        "{}: the encryption key (key id {}) is not the one this database was \
                         written with; configure the original key or restore its key file",
                        self.path.display(),
                        cipher.key_id()
                    )))
                }),
            None => write_key_check(&self.writer, &cipher)
                .await?
                .map_err(|e| self.err(e)),
        }
    }

    /// Folds the stats journal, then closes both pools, checkpointing the WAL into the main
    /// file. Later calls fail with `Unavailable`.
    pub async fn close(&self) {
        self.journal
            .closing
            .store(true, std::sync::atomic::Ordering::Release);
        self.fold_all().await;
        close_pool(&self.reader).await;
        // Copy the WAL into the database file before the last connection goes: sqlx closes
        // connections on their worker threads, so SQLite's own checkpoint-on-close may not
        // have run when `close` returns. A failure here only leaves the WAL for the next open.
        let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.writer)
            .await;
        close_pool(&self.writer).await;
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Closes `pool` and waits until every connection in it is closed. sqlx's `close` can return
/// while a connection that a finished query was handing back is still on its way to the idle
/// queue; that connection lands there after `close` looked and stays open. Closing again
/// closes it. Bounded at two seconds: a connection still busy then is left to process exit.
async fn close_pool(pool: &SqlitePool) {
    pool.close().await;
    for _ in 0..200 {
        if pool.size() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        pool.close().await;
    }
}

/// Replaces the sealed key sentinel (first open, and inside `reencrypt`'s transaction).
async fn write_key_check<'c, E>(conn: E, cipher: &Cipher) -> StoreResult<Result<(), sqlx::Error>>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    let sealed = cipher
        .encrypt(&Secret::new(KEY_CHECK_PLAIN), KEY_CHECK_CONTEXT)
        .map_err(crypto_err)?;
    let done = sqlx::query(
        "INSERT INTO meta (key, value) VALUES ('key_check', ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(sealed)
    .execute(conn)
    .await;
    Ok(done.map(|_| ()))
}

fn connect_options(path: &Path, options: &SqliteOptions) -> SqliteConnectOptions {
    let mut o = SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(options.busy_timeout)
        .foreign_keys(true)
        // Rows come back from sqlx's worker thread through a bounded channel; the default of
        // 50 makes loading 100 000 tokens a thread hand-off every few rows.
        .row_buffer_size(4096);
    if let Some(pages) = options.max_page_count {
        o = o.pragma("max_page_count", pages.to_string());
    }
    o
}

/// The writer gets a larger page cache and in-memory statement journals: a bulk import then
/// does not spill dirty pages into the WAL mid-transaction and read them back (measured: the
/// default 2 MiB cache made that most of an import's time).
fn writer_options(base: SqliteConnectOptions) -> SqliteConnectOptions {
    base.create_if_missing(true)
        .pragma("cache_size", "-65536")
        .pragma("temp_store", "memory")
}

/// A database this process created is readable by its owner only; SQLite gives its `-wal` and
/// `-shm` files the same mode. (Secrets inside are sealed anyway; names, stats and events are
/// nobody else's business either.) An existing file keeps the mode its owner chose.
fn make_private(path: &Path) -> StoreResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
            StoreError::Backend(crate::Cause::from(format!(
                "{}: cannot set mode 0600: {e}",
                path.display()
            )))
        })?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// A missing directory gets its own message: SQLite's own ("unable to open database file")
/// does not say which part of the path is wrong.
fn check_directory(path: &Path) -> StoreResult<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(StoreError::Unavailable(crate::Cause::from(format!(
            "{}: {} is not a directory",
            path.display(),
            dir.display()
        )))),
        Err(e) => Err(StoreError::Unavailable(crate::Cause::from(format!(
            "{}: cannot use directory {}: {e}",
            path.display(),
            dir.display()
        )))),
    }
}

#[cfg(test)]
mod tests;
