//! The SQLite schema migrations: embedded SQL files applied in order, each in a transaction,
//! each recorded in `schema_migrations`.
//!
//! sqlx's `migrate!` macro needs the macros feature, which this workspace does not use, so the
//! runner is these few lines: the files are compiled in with `include_str!`, a database newer
//! than this binary is refused instead of being written by code that does not know its schema.

pub(crate) use crate::migrate::MigrateError;
use crate::migrate::{pending, Migration};
use sqlx::SqlitePool;

/// All migrations, oldest first. Append; never edit one that has shipped.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../../migrations/sqlite/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "stats_journal",
        sql: include_str!("../../migrations/sqlite/0002_stats_journal.sql"),
    },
    Migration {
        version: 3,
        name: "reason_codes",
        sql: include_str!("../../migrations/sqlite/0003_reason_codes.sql"),
    },
    Migration {
        version: 4,
        name: "short_fingerprints",
        sql: include_str!("../../migrations/sqlite/0004_short_fingerprints.sql"),
    },
];

/// Applies every migration not yet recorded. Returns how many were applied.
pub(crate) async fn run(pool: &SqlitePool) -> Result<usize, MigrateError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY NOT NULL,
            name       TEXT NOT NULL,
            applied_at INTEGER NOT NULL
        )",
    )
    .execute(pool)
    .await?;
    let current: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            .fetch_one(pool)
            .await?;
    let mut applied = 0;
    // Collected first: an iterator adapter with a closure held across `.await` makes the
    // future's `Send` proof fail (higher-ranked lifetimes in sqlx's executor bounds).
    for m in pending(MIGRATIONS, current)? {
        let mut tx = pool.begin().await?;
        // SQLite's driver runs every statement of a multi-statement string. (`sqlx::raw_sql`
        // would say so more plainly, but its future is not `Send`-provable here.)
        sqlx::query(m.sql).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at)
             VALUES (?, ?, CAST(strftime('%s','now') AS INTEGER) * 1000)",
        )
        .bind(m.version)
        .bind(m.name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        crate::migrate::applied(m);
        applied += 1;
    }
    Ok(applied)
}
