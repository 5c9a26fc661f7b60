//! The PostgreSQL backend, for cluster mode (DESIGN §6): several managers share one database.
//!
//! Same tables and the same sealed-secret columns as SQLite, so everything about encryption and
//! row encoding is shared (`rows`). What differs is concurrency: several processes write at
//! once, so duplicates are settled by the database's UNIQUE rule (never by a read-then-write),
//! migrations run under an advisory lock, and batched updates touch rows in a fixed order so
//! two managers flushing stats at once cannot deadlock. Durability is PostgreSQL's own: a
//! commit returns after the WAL is flushed (with the default `synchronous_commit = on`).
//!
//! `PgOptions::schema` puts every table in a schema of its own (created if absent), which is
//! how the tests run the conformance story on a shared server without touching anything else.

mod error;
mod migrate;
mod records;
mod tokens;

use crate::crypto::Cipher;
use crate::rows::{crypto_err, KEY_CHECK_CONTEXT, KEY_CHECK_PLAIN};
use crate::{StoreError, StoreResult};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokenlb_core::Secret;

/// Tunables of [`PgStore::connect_with`]; [`Default`] suits the manager.
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// Keep the tables in this schema (created if absent) instead of the connection's default.
    /// Lowercase letters, digits and `_` only.
    pub schema: Option<String>,
    /// Connections in the pool.
    pub max_connections: u32,
    /// How long to wait for a connection before answering `Unavailable`.
    pub acquire_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            schema: None,
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// The PostgreSQL store.
pub struct PgStore {
    /// The server and database without credentials, for every message.
    target: String,
    pool: PgPool,
    /// The current key; replaced by `reencrypt` after its transaction commits.
    cipher: RwLock<Arc<Cipher>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/db`), migrates, checks the key.
    pub async fn connect(url: &str, cipher: Cipher) -> StoreResult<PgStore> {
        Self::connect_with(url, cipher, PgOptions::default()).await
    }

    /// [`PgStore::connect`] with options.
    pub async fn connect_with(
        url: &str,
        cipher: Cipher,
        options: PgOptions,
    ) -> StoreResult<PgStore> {
        let connect = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::Unavailable(crate::Cause::from(format!(
                "invalid PostgreSQL URL ({}): {e}",
                redact(url)
            )))
        })?;
        Self::connect_owned(connect, cipher, options).await
    }

    fn connect_owned(
        connect: PgConnectOptions,
        cipher: Cipher,
        options: PgOptions,
    ) -> Pin<Box<dyn Future<Output = StoreResult<PgStore>> + Send>> {
        Box::pin(async move {
            let mut target = format!(
                "postgres://{}@{}:{}/{}",
                connect.get_username(),
                connect.get_host(),
                connect.get_port(),
                connect.get_database().unwrap_or("")
            );
            let mut connect = connect;
            if let Some(schema) = &options.schema {
                check_schema_name(schema)?;
                target = format!("{target} (schema {schema})");
                connect = connect.options([("search_path", schema.as_str())]);
            }
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections.max(1))
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect)
                .await
                .map_err(|e| error::map(&target, e))?;
            if let Some(schema) = &options.schema {
                sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                    .execute(&pool)
                    .await
                    .map_err(|e| error::map(&target, e))?;
            }
            migrate::run(&pool).await.map_err(|e| match e {
                migrate::MigrateError::Sql(e) => error::map(&target, e),
                migrate::MigrateError::TooNew { found, known } => {
                    StoreError::Backend(crate::Cause::from(format!(
                        "{target}: database schema version {found} is newer than this tokenlb \
                     knows ({known}); use a newer tokenlb"
                    )))
                }
            })?;
            let store = PgStore {
                target,
                pool,
                cipher: RwLock::new(Arc::new(cipher)),
            };
            store.check_key().await?;
            Ok(store)
        })
    }

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
        error::map(&self.target, e)
    }

    /// Verifies the key against the sealed sentinel in `meta`, writing it if absent. Two
    /// managers starting at once on an empty database race harmlessly: the first insert wins
    /// and the second checks its key against the winner's sentinel.
    async fn check_key(&self) -> StoreResult<()> {
        let cipher = self.cipher();
        let sealed = cipher
            .encrypt(&Secret::new(KEY_CHECK_PLAIN), KEY_CHECK_CONTEXT)
            .map_err(crypto_err)?;
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('key_check', $1) ON CONFLICT DO NOTHING",
        )
        .bind(sealed)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let stored: String = sqlx::query_scalar("SELECT value FROM meta WHERE key = 'key_check'")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        cipher
            .decrypt(&stored, KEY_CHECK_CONTEXT)
            .map(|_| ())
            .map_err(|_| {
                StoreError::Decrypt(crate::Cause::from(format!(
                    "{}: the encryption key (key id {}) is not the one this database was \
                     written with; every manager sharing it must use the same key",
                    self.target,
                    cipher.key_id()
                )))
            })
    }

    /// Closes the pool. Later calls fail with `Unavailable`.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn describe_q(&self) -> String {
        self.target.clone()
    }
}

crate::delegate::delegate_store!(PgStore);

/// Schema names are put into SQL text (identifiers cannot be bound), so only a safe alphabet.
fn check_schema_name(schema: &str) -> StoreResult<()> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !schema.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(())
    } else {
        Err(StoreError::Backend(crate::Cause::from(format!(
            "invalid schema name {schema:?}: use lowercase letters, digits and _"
        ))))
    }
}

/// A URL for messages: the password (between `user:` and `@`) replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<unparsable URL>".to_string();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let masked = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{masked}@{host}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_the_password_only() {
        assert_eq!(
            redact("postgres://u:s3cret@db:5432/x"),
            "postgres://u:***@db:5432/x"
        );
        assert_eq!(redact("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(redact("postgres://db/x"), "postgres://db/x");
        assert_eq!(
            redact("postgres://u:p@ss:w@rd@db/x"),
            "postgres://u:***@db/x"
        );
        assert_eq!(redact("nonsense"), "<unparsable URL>");
    }

    #[test]
    fn schema_names_are_checked() {
        assert!(check_schema_name("tokenlb_test_1").is_ok());
        for bad in ["", "A", "x;drop", "1abc", "a\"b"] {
            assert!(check_schema_name(bad).is_err(), "{bad}");
        }
    }
}
