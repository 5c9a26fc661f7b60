//! Stats, events, per-minute counts and pools in SQLite.
//!
//! The stats flusher writes once a second, possibly for every token of a large pool: a batch
//! is one journal row (`journal`, folded into the rows by `fold`), and the minute query adds
//! what the journal holds (`merge`).

use super::SqliteStore;
use crate::rows::{to_i64, to_u32, to_u64, ROWS_PER_STATEMENT};
use crate::{EventQuery, EventRecord, MinuteQuery, StatsBatch, StoreResult, StoredPool};
use sqlx::{QueryBuilder, Sqlite};
use tokenlb_core::Millis;

/// Columns of an event row, in insert order.
use crate::rows::EVENT_COLUMNS;

impl SqliteStore {
    /// Appends the batch to the stats journal as one row: one statement, one commit, however
    /// many tokens it holds. The rows are updated later by a fold (`fold`).
    pub(super) async fn write_stats_tx(&self, batch: &StatsBatch) -> StoreResult<()> {
        if batch.counters.is_empty() && batch.minutes.is_empty() {
            return Ok(());
        }
        let body = super::journal::encode(batch);
        sqlx::query("INSERT INTO stats_journal (body) VALUES (?)")
            .bind(&body)
            .execute(&self.writer)
            .await
            .map_err(|e| self.err(e))?;
        self.appended(body.len());
        Ok(())
    }

    pub(super) async fn append_events_tx(
        &self,
        events: &[EventRecord],
    ) -> StoreResult<Vec<EventRecord>> {
        let mut out = Vec::with_capacity(events.len());
        let mut tx = self.writer.begin().await.map_err(|e| self.err(e))?;
        for chunk in events.chunks(ROWS_PER_STATEMENT) {
            let mut q =
                QueryBuilder::<Sqlite>::new(format!("INSERT INTO events ({EVENT_COLUMNS}) "));
            q.push_values(chunk, |mut b, e| {
                b.push_bind(to_i64(e.at))
                    .push_bind(e.token_id.as_str())
                    .push_bind(&e.token_name)
                    .push_bind(&e.pool)
                    .push_bind(e.from.map(|s| s.as_str()))
                    .push_bind(e.to.map(|s| s.as_str()))
                    .push_bind(&e.kind)
                    .push_bind(&e.reason)
                    .push_bind(&e.sample_error)
                    .push_bind(&e.reason_code)
                    .push_bind(&e.reason_params);
            });
            let done = q.build().execute(&mut *tx).await.map_err(|e| self.err(e))?;
            // One multi-row INSERT under the single writer takes consecutive AUTOINCREMENT
            // values in row order, ending at the last insert rowid.
            let last = done.last_insert_rowid();
            let first = last - chunk.len() as i64 + 1;
            out.extend(
                chunk
                    .iter()
                    .zip(first..)
                    .map(|(e, seq)| EventRecord { seq, ..e.clone() }),
            );
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(out)
    }

    pub(super) async fn events_q(&self, query: &EventQuery) -> StoreResult<Vec<EventRecord>> {
        let rows = crate::rows::events_query::<Sqlite>(query)
            .build()
            .fetch_all(&self.reader)
            .await
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| crate::rows::event_from_row(r, |e| self.err(e)))
            .collect()
    }

    pub(super) async fn minutes_q(&self, query: &MinuteQuery) -> StoreResult<Vec<(u64, u32, u32)>> {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT minute, SUM(requests), SUM(failures) FROM token_minutes WHERE minute >= ",
        );
        q.push_bind(to_i64(query.since_minute));
        if let Some(id) = &query.token_id {
            q.push(" AND token_id = ").push_bind(id.as_str());
        }
        if let Some(pool) = &query.pool {
            q.push(" AND pool = ").push_bind(pool);
        }
        q.push(" GROUP BY minute ORDER BY minute");
        // Rows and journal from one snapshot: a fold committing in between would double or
        // hide counts.
        let mut tx = self.reader.begin().await.map_err(|e| self.err(e))?;
        let rows: Vec<(i64, i64, i64)> = q
            .build_query_as()
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        let filter = super::merge::MinuteFilter {
            token: query.token_id.as_ref().map(|t| t.0.clone()),
            pool: query.pool.clone(),
            since: query.since_minute,
        };
        let journal = super::merge::overlay(&mut tx, &self.path, Some(filter)).await?;
        tx.rollback().await.map_err(|e| self.err(e))?;
        let rows = rows
            .into_iter()
            .map(|(m, r, f)| (to_u64(m), to_u32(r), to_u32(f)))
            .collect();
        Ok(super::merge::add_minutes(rows, &journal))
    }

    pub(super) async fn prune_tx(
        &self,
        before_minute: u64,
        events_before: Millis,
        keep_events: u64,
    ) -> StoreResult<()> {
        // Old minutes may still be in the journal: into the rows first, then deleted.
        self.fold_now().await?;
        let mut tx = self.writer.begin().await.map_err(|e| self.err(e))?;
        sqlx::query("DELETE FROM token_minutes WHERE minute < ?")
            .bind(to_i64(before_minute))
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        sqlx::query("DELETE FROM events WHERE at < ?")
            .bind(to_i64(events_before))
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        // The row cap: the newest `keep_events` stay (sequence numbers only grow).
        sqlx::query("DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - ?")
            .bind(to_i64(keep_events))
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))
    }

    pub(super) async fn load_pools_q(&self) -> StoreResult<Vec<StoredPool>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT name, policy_json FROM pools ORDER BY name")
                .fetch_all(&self.reader)
                .await
                .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|(name, policy_json)| StoredPool { name, policy_json })
            .collect())
    }

    pub(super) async fn upsert_pool_tx(&self, pool: &StoredPool) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO pools (name, policy_json) VALUES (?, ?)
             ON CONFLICT (name) DO UPDATE SET policy_json = excluded.policy_json",
        )
        .bind(&pool.name)
        .bind(&pool.policy_json)
        .execute(&self.writer)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub(super) async fn ping_q(&self) -> StoreResult<()> {
        // Reads the schema table, so a database that became unreadable fails here.
        let _: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
            .fetch_one(&self.reader)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}
