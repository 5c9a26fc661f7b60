//! The PostgreSQL schema migrations: embedded SQL files, applied in order, each in its own
//! transaction under an advisory lock (several managers may start at once on one database),
//! each recorded in `schema_migrations`. DDL is transactional in PostgreSQL, so a migration
//! that fails leaves nothing half-applied.

pub(crate) use crate::migrate::MigrateError;
use crate::migrate::{pending, Migration};
use sqlx::{Executor, PgPool};

/// All migrations, oldest first. Append; never edit one that has shipped.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "reason_codes",
        sql: include_str!("../../migrations/postgres/0002_reason_codes.sql"),
    },
    Migration {
        version: 3,
        name: "short_fingerprints",
        sql: include_str!("../../migrations/postgres/0003_short_fingerprints.sql"),
    },
];

/// Applies every migration not yet recorded, one transaction each. Returns how many.
pub(crate) async fn run(pool: &PgPool) -> Result<usize, MigrateError> {
    let mut applied = 0;
    loop {
        let mut tx = pool.begin().await?;
        // Serialises migrators of this schema until the transaction ends.
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtext('tokenlb-migrate:' || current_schema()))",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version    BIGINT PRIMARY KEY,
                name       TEXT NOT NULL,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )",
        )
        .execute(&mut *tx)
        .await?;
        let current: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations")
                .fetch_one(&mut *tx)
                .await?;
        let Some(m) = pending(MIGRATIONS, current)?.first().copied() else {
            tx.commit().await?;
            return Ok(applied);
        };
        // A plain string runs as a simple query, which may hold several statements.
        (&mut *tx).execute(m.sql).await?;
        sqlx::query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)")
            .bind(m.version)
            .bind(m.name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        crate::migrate::applied(m);
        applied += 1;
    }
}
