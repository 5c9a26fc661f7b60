//! Stats, events, per-minute counts and pools in SQLite.
//!
//! The stats flusher writes once a second, possibly for every token of a large pool: a batch
//! is one journal row (`journal`, folded into the rows by `fold`), and the minute query adds
//! what the journal holds (`merge`).

use super::SqliteStore;
use crate::rows::{parse_state, to_i64, to_u32, to_u64, ROWS_PER_STATEMENT};
use crate::{EventQuery, EventRecord, MinuteQuery, StatsBatch, StoreResult, StoredPool};
use sqlx::{QueryBuilder, Row, Sqlite};
use tokenlb_core::{Millis, TokenId};

/// Columns of an event row, in insert order.
const EVENT_COLUMNS: &str =
    "at, token_id, token_name, pool, from_state, to_state, kind, reason, sample_error";

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
                    .push_bind(&e.sample_error);
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
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "SELECT seq, {EVENT_COLUMNS} FROM events WHERE 1 = 1"
        ));
        if let Some(id) = &query.token_id {
            q.push(" AND token_id = ").push_bind(id.as_str());
        }
        if let Some(pool) = &query.pool {
            q.push(" AND pool = ").push_bind(pool);
        }
        if let Some(since) = query.since {
            q.push(" AND at >= ").push_bind(to_i64(since));
        }
        if let Some(before) = query.before_seq {
            q.push(" AND seq < ").push_bind(before);
        }
        q.push(" ORDER BY seq DESC");
        if query.limit > 0 {
            q.push(" LIMIT ").push_bind(i64::from(query.limit));
        }
        let rows = q
            .build()
            .fetch_all(&self.reader)
            .await
            .map_err(|e| self.err(e))?;
        rows.iter().map(|r| self.event_from_row(r)).collect()
    }

    fn event_from_row(&self, r: &sqlx::sqlite::SqliteRow) -> StoreResult<EventRecord> {
        let get = |e: sqlx::Error| self.err(e);
        let state = |v: Option<String>| v.as_deref().map(parse_state).transpose();
        Ok(EventRecord {
            seq: r.try_get("seq").map_err(get)?,
            at: to_u64(r.try_get("at").map_err(get)?),
            token_id: TokenId(r.try_get("token_id").map_err(get)?),
            token_name: r.try_get("token_name").map_err(get)?,
            pool: r.try_get("pool").map_err(get)?,
            from: state(r.try_get("from_state").map_err(get)?)?,
            to: state(r.try_get("to_state").map_err(get)?)?,
            kind: r.try_get("kind").map_err(get)?,
            reason: r.try_get("reason").map_err(get)?,
            sample_error: r.try_get("sample_error").map_err(get)?,
        })
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
