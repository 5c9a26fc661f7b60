//! Compacting the stats journal: the unfolded records merged into one record that replaces
//! them, in one transaction.
//!
//! The record is what `merge` makes of the records it replaces, written in the flush format
//! (`journal::encode`): each token's latest counter snapshot and its summed minutes; tokens a
//! drop marker forgot are left out, as every reader leaves them out. It takes the `seq` of the
//! last record it replaces, so every record after it still comes after it, and readers,
//! folds and further compactions treat it like any flush.
//!
//! A compaction only runs with no fold under way (no `meta.stats_fold`), and it writes only if,
//! inside its write transaction, that is still so and the records it read are all still
//! there: a fold by another process on the same file in between (which would already have put
//! those records into the rows) makes it give up rather than count them twice.

use super::super::merge::{self, Merge, PROGRESS_KEY};
use super::Folder;
use crate::{StoreError, StoreResult};

/// What a compaction read: the records `seq <= upto` (`count` of them, `bytes` of bodies) and
/// the record that replaces them (empty: nothing is left of them).
pub(in crate::sqlite) struct Compacted {
    count: i64,
    upto: i64,
    bytes: u64,
    body: Vec<u8>,
}

impl Folder {
    /// Replaces every unfolded record by one; `false` when there was nothing to gain (fewer
    /// than two records) or a fold came first.
    pub(in crate::sqlite) async fn compact(&self) -> StoreResult<bool> {
        let _one = self.state.lock.lock().await;
        match self.read_compacted().await? {
            Some(c) => self.write_compacted(c).await,
            None => Ok(false),
        }
    }

    /// Reads and merges the unfolded records (one read snapshot) and encodes the result.
    pub(in crate::sqlite) async fn read_compacted(&self) -> StoreResult<Option<Compacted>> {
        let mut rtx = self.reader.begin().await.map_err(|e| self.err(e))?;
        if merge::progress(&mut rtx, &self.path).await?.is_some() {
            return Ok(None);
        }
        let (count, upto): (i64, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), MAX(seq) FROM stats_journal")
                .fetch_one(&mut *rtx)
                .await
                .map_err(|e| self.err(e))?;
        let Some(upto) = upto.filter(|_| count >= 2) else {
            return Ok(None);
        };
        let mut merged = Merge::new(true, true);
        let bytes = merge::read(&mut rtx, &self.path, Some(upto), &mut merged, None, None).await?;
        rtx.rollback().await.map_err(|e| self.err(e))?;
        let body = tokio::task::spawn_blocking(move || encode(&merged))
            .await
            .map_err(|e| {
                StoreError::Backend(crate::Cause::from(format!(
                    "compacting the stats journal: {e}"
                )))
            })?;
        Ok(Some(Compacted {
            count,
            upto,
            bytes,
            body,
        }))
    }

    /// Replaces the records `c` read by its record, unless a fold claimed or folded any of
    /// them since (`false`: nothing written).
    pub(in crate::sqlite) async fn write_compacted(&self, c: Compacted) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(|e| self.err(e))?;
        let claimed: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(PROGRESS_KEY)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        let still: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM stats_journal WHERE seq <= ?")
            .bind(c.upto)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        if claimed.is_some() || still != c.count {
            return Ok(false);
        }
        sqlx::query("DELETE FROM stats_journal WHERE seq <= ?")
            .bind(c.upto)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        if !c.body.is_empty() {
            sqlx::query("INSERT INTO stats_journal (seq, body) VALUES (?, ?)")
                .bind(c.upto)
                .bind(&c.body)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        self.replaced(c.bytes, c.body.len() as u64).await;
        Ok(true)
    }
}

/// The merged records as one record (empty when every token was dropped): each token's
/// counters and minutes, encoded straight from the merge.
fn encode(merged: &Merge) -> Vec<u8> {
    if merged.tokens.is_empty() {
        return Vec::new();
    }
    let pools: Vec<&str> = merged.pools.iter().map(|p| &**p).collect();
    let entries = merged
        .tokens
        .iter()
        .map(|(id, m)| (&**id, m.counters.as_ref(), m.minutes.as_slice()));
    super::super::journal::encode_entries(&pools, entries, merged.tokens.len())
}
