//! Stats, events, per-minute counts and pools in PostgreSQL.
//!
//! As in SQLite, a stats batch is a few multi-row statements in one transaction. Two managers
//! flush at once in cluster mode, so rows are written in a fixed order (token id, minute) —
//! no lock-order deadlocks — and minute deltas for one (token, minute) are summed first, since
//! one PostgreSQL upsert may not touch a row twice. A minute row takes a key-share lock on its
//! token, so a concurrent delete waits instead of failing the batch.

use super::PgStore;
use crate::rows::{to_i64, to_u32, to_u64, CounterCols, ROWS_PER_STATEMENT};
use crate::{EventQuery, EventRecord, MinuteQuery, StatsBatch, StoreResult, StoredPool};
use sqlx::{Postgres, QueryBuilder};
use std::collections::BTreeMap;
use tokenlb_core::{Millis, TokenId};

/// Columns of an event row, in insert order.
use crate::rows::EVENT_COLUMNS;

impl PgStore {
    pub(super) async fn write_stats_tx(&self, batch: &StatsBatch) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        let counters = sorted_counters(batch);
        let minutes = summed_minutes(batch);
        for chunk in counters.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Postgres>::new(
                "UPDATE tokens SET c_success = v.s, c_auth = v.a, c_rate_limited = v.r, \
                 c_quota_exhausted = v.q, c_transient = v.t, c_client_error = v.c, \
                 c_unknown = v.u, last_used = v.lu, last_error = v.le, last_error_at = v.lea, \
                 latency_ewma_ms = v.lat, times_cooled = v.tc FROM (",
            );
            q.push_values(chunk, |mut b, (id, c)| {
                crate::rows::bind_counters!(b.push_bind(id.as_str()), c);
            });
            q.push(") AS v (id, s, a, r, q, t, c, u, lu, le, lea, lat, tc) WHERE tokens.id = v.id");
            q.build().execute(&mut *tx).await.map_err(|e| self.err(e))?;
        }
        for chunk in minutes.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Postgres>::new(
                "INSERT INTO token_minutes (token_id, pool, minute, requests, failures) \
                 SELECT v.token_id, v.pool, v.minute, v.requests, v.failures FROM (",
            );
            q.push_values(chunk, |mut b, m| {
                b.push_bind(m.token_id)
                    .push_bind(m.pool)
                    .push_bind(to_i64(m.minute))
                    .push_bind(m.requests)
                    .push_bind(m.failures);
            });
            q.push(
                ") AS v (token_id, pool, minute, requests, failures) \
                 JOIN tokens t ON t.id = v.token_id FOR KEY SHARE OF t \
                 ON CONFLICT (token_id, minute) DO UPDATE SET \
                 requests = token_minutes.requests + EXCLUDED.requests, \
                 failures = token_minutes.failures + EXCLUDED.failures",
            );
            q.build().execute(&mut *tx).await.map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))
    }

    pub(super) async fn append_events_tx(
        &self,
        events: &[EventRecord],
    ) -> StoreResult<Vec<EventRecord>> {
        let mut out = Vec::with_capacity(events.len());
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        for chunk in events.chunks(ROWS_PER_STATEMENT) {
            let mut q =
                QueryBuilder::<Postgres>::new(format!("INSERT INTO events ({EVENT_COLUMNS}) "));
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
            q.push(" RETURNING seq");
            let mut seqs: Vec<i64> = q
                .build_query_scalar()
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            // The sequence is drawn row by row in VALUES order, so sorted numbers match rows.
            seqs.sort_unstable();
            out.extend(
                chunk
                    .iter()
                    .zip(seqs)
                    .map(|(e, seq)| EventRecord { seq, ..e.clone() }),
            );
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(out)
    }

    pub(super) async fn events_q(&self, query: &EventQuery) -> StoreResult<Vec<EventRecord>> {
        let rows = crate::rows::events_query::<Postgres>(query)
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| crate::rows::event_from_row(r, |e| self.err(e)))
            .collect()
    }

    pub(super) async fn minutes_q(&self, query: &MinuteQuery) -> StoreResult<Vec<(u64, u32, u32)>> {
        let mut q = QueryBuilder::<Postgres>::new(
            "SELECT minute, SUM(requests)::BIGINT, SUM(failures)::BIGINT FROM token_minutes \
             WHERE minute >= ",
        );
        q.push_bind(to_i64(query.since_minute));
        if let Some(id) = &query.token_id {
            q.push(" AND token_id = ").push_bind(id.as_str());
        }
        if let Some(pool) = &query.pool {
            q.push(" AND pool = ").push_bind(pool);
        }
        q.push(" GROUP BY minute ORDER BY minute");
        let rows: Vec<(i64, i64, i64)> = q
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|(m, r, f)| (to_u64(m), to_u32(r), to_u32(f)))
            .collect())
    }

    pub(super) async fn prune_tx(
        &self,
        before_minute: u64,
        events_before: Millis,
        keep_events: u64,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        sqlx::query("DELETE FROM token_minutes WHERE minute < $1")
            .bind(to_i64(before_minute))
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        sqlx::query("DELETE FROM events WHERE at < $1")
            .bind(to_i64(events_before))
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        // The row cap: the newest `keep_events` stay (sequence numbers only grow).
        sqlx::query("DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - $1")
            .bind(to_i64(keep_events))
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))
    }

    pub(super) async fn load_pools_q(&self) -> StoreResult<Vec<StoredPool>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT name, policy_json FROM pools ORDER BY name")
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|(name, policy_json)| StoredPool { name, policy_json })
            .collect())
    }

    pub(super) async fn upsert_pool_tx(&self, pool: &StoredPool) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO pools (name, policy_json) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET policy_json = EXCLUDED.policy_json",
        )
        .bind(&pool.name)
        .bind(&pool.policy_json)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Stats go straight into their rows here: nothing to fold.
    pub(super) async fn fold_stats_tx(&self) -> StoreResult<()> {
        Ok(())
    }

    pub(super) async fn ping_q(&self) -> StoreResult<()> {
        // Reads the schema table, so a database that became unreadable fails here.
        let _: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

/// Counter snapshots in id order, the last one per token winning (as in the batch).
fn sorted_counters(batch: &StatsBatch) -> Vec<(&TokenId, CounterCols)> {
    let mut by_id: BTreeMap<&TokenId, CounterCols> = BTreeMap::new();
    for (id, c) in &batch.counters {
        by_id.insert(id, CounterCols::encode(c));
    }
    by_id.into_iter().collect()
}

/// Minute deltas summed per (token, minute), in that order.
fn summed_minutes(batch: &StatsBatch) -> Vec<MinuteRow<'_>> {
    let mut sums: BTreeMap<(&str, u64), MinuteRow<'_>> = BTreeMap::new();
    for m in &batch.minutes {
        let row = sums
            .entry((m.token_id.as_str(), m.minute))
            .or_insert(MinuteRow {
                token_id: m.token_id.as_str(),
                pool: &m.pool,
                minute: m.minute,
                requests: 0,
                failures: 0,
            });
        row.requests += i64::from(m.requests);
        row.failures += i64::from(m.failures);
    }
    sums.into_values().collect()
}

/// One summed minute row to upsert.
struct MinuteRow<'a> {
    token_id: &'a str,
    pool: &'a str,
    minute: u64,
    requests: i64,
    failures: i64,
}
