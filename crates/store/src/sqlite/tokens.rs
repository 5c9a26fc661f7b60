//! Token rows in SQLite: bulk insert and merge by value, lookup, update, delete, re-encryption.
//!
//! Bulk writes use multi-row `INSERT`s of [`ROWS_PER_STATEMENT`] rows inside one transaction:
//! one fsync for the whole batch and few statement round trips, which is what makes an import
//! of 100 000 tokens take seconds. Duplicates are caught by the UNIQUE keyed fingerprint:
//! a merge inserts with `ON CONFLICT (secret_fp) DO NOTHING RETURNING id` (the ids not returned
//! were skipped); an insert that hits the rule rolls back and then looks the fingerprints up to
//! name the existing token. Repeats within one batch are found before any SQL.

use super::SqliteStore;
use crate::crypto::Cipher;
use crate::rows::{crypto_err, encode_unique, reseal, TokenRow, ROWS_PER_STATEMENT, TOKEN_COLUMNS};
use crate::{StoreError, StoreResult, StoredToken, TokenUpdate};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokenlb_core::{Secret, TokenId};

/// Imports of at least this many tokens hand their page cache back afterwards.
const BULK_ROWS: usize = 1_000;

/// How long after the last bulk write the writer's page cache is handed back.
const BULK_IDLE: std::time::Duration = std::time::Duration::from_secs(2);

/// Ids of stored tokens by fingerprint, for the fingerprints given.
async fn existing(
    conn: &mut SqliteConnection,
    rows: &[&TokenRow],
) -> Result<HashMap<String, TokenId>, sqlx::Error> {
    let mut found = HashMap::new();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q =
            QueryBuilder::<Sqlite>::new("SELECT secret_fp, id FROM tokens WHERE secret_fp IN (");
        let mut sep = q.separated(", ");
        for r in chunk {
            sep.push_bind(&r.secret_fp);
        }
        q.push(")");
        let hits: Vec<(String, String)> = q.build_query_as().fetch_all(&mut *conn).await?;
        found.extend(hits.into_iter().map(|(fp, id)| (fp, TokenId(id))));
    }
    Ok(found)
}

/// Inserts rows. With `skip_stored`, a row whose value is already stored is skipped (not an
/// error); returns the ids actually inserted.
async fn insert_rows(
    conn: &mut SqliteConnection,
    rows: &[TokenRow],
    skip_stored: bool,
) -> Result<HashSet<String>, sqlx::Error> {
    let mut inserted = HashSet::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        // `OR IGNORE` rather than `ON CONFLICT (secret_fp) DO NOTHING`: a statement that
        // cannot abort needs no statement journal, which was a tenth of a large import's
        // time. A row skipped for its id rather than its value is told apart afterwards
        // (`merge_tokens_tx`).
        let verb = if skip_stored {
            "INSERT OR IGNORE"
        } else {
            "INSERT"
        };
        let mut q = QueryBuilder::<Sqlite>::new(format!("{verb} INTO tokens ({TOKEN_COLUMNS}) "));
        q.push_values(chunk, |mut b, r| {
            crate::rows::bind_token_row!(b, r);
        });
        if skip_stored {
            q.push(" RETURNING id");
            let ids: Vec<(String,)> = q.build_query_as().fetch_all(&mut *conn).await?;
            inserted.extend(ids.into_iter().map(|(id,)| id));
        } else {
            q.build().execute(&mut *conn).await?;
            inserted.extend(chunk.iter().map(|r| r.id.clone()));
        }
    }
    Ok(inserted)
}

impl SqliteStore {
    pub(super) async fn insert_tokens_tx(&self, tokens: &[StoredToken]) -> StoreResult<()> {
        let (rows, repeats) = encode_unique(tokens, &self.cipher())?;
        if let Some((_, first)) = repeats.into_iter().next() {
            return Err(StoreError::Duplicate(first));
        }
        let mut tx = self.writer.begin().await.map_err(|e| self.err(e))?;
        match insert_rows(&mut tx, &rows, false).await {
            Ok(_) => {
                tx.commit().await.map_err(|e| self.err(e))?;
                self.after_bulk_write(rows.len());
                Ok(())
            }
            // The fast path failed on a uniqueness rule: roll back, then find out which value
            // (or id) was already there to name it.
            Err(e) if super::error::is_unique_violation(&e) => {
                tx.rollback().await.map_err(|e| self.err(e))?;
                let mut conn = self.writer.acquire().await.map_err(|e| self.err(e))?;
                let all: Vec<&TokenRow> = rows.iter().collect();
                let found = existing(&mut conn, &all).await.map_err(|e| self.err(e))?;
                match rows.iter().find_map(|r| found.get(&r.secret_fp)) {
                    Some(id) => Err(StoreError::Duplicate(id.clone())),
                    None => Err(self.insert_err(e)),
                }
            }
            Err(e) => Err(self.err(e)),
        }
    }

    pub(super) async fn merge_tokens_tx(
        &self,
        tokens: &[StoredToken],
    ) -> StoreResult<Vec<TokenId>> {
        let (mut rows, repeats) = encode_unique(tokens, &self.cipher())?;
        // In index order, the unique index on the fingerprint is walked forwards instead of
        // at random: fewer page-cache misses once a large pool's index outgrows the cache.
        rows.sort_unstable_by(|a, b| a.secret_fp.cmp(&b.secret_fp));
        let mut skipped: Vec<TokenId> = repeats.into_iter().map(|(id, _)| id).collect();
        let mut tx = self.writer.begin().await.map_err(|e| self.err(e))?;
        let inserted = insert_rows(&mut tx, &rows, true)
            .await
            .map_err(|e| self.insert_err(e))?;
        let missed: Vec<&TokenRow> = rows.iter().filter(|r| !inserted.contains(&r.id)).collect();
        if !missed.is_empty() {
            // A row not inserted is a stored value (skip it) or a reused id (an error, and
            // nothing of the batch is written).
            let found = existing(&mut tx, &missed).await.map_err(|e| self.err(e))?;
            if let Some(r) = missed.iter().find(|r| !found.contains_key(&r.secret_fp)) {
                tx.rollback().await.map_err(|e| self.err(e))?;
                return Err(StoreError::Backend(crate::Cause::from(format!(
                    "{}: a token with id {} already exists",
                    self.path.display(),
                    r.id
                ))));
            }
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        self.after_bulk_write(rows.len());
        skipped.extend(
            rows.into_iter()
                .filter(|r| !inserted.contains(&r.id))
                .map(|r| TokenId(r.id)),
        );
        Ok(skipped)
    }

    /// After a large import, gives back the writer's page cache: it is 64 MiB so that the
    /// import does not spill (see `writer_options`), but kept full it was a third of a
    /// 100,000-token manager's resident memory (tokenlb-bench, BENCHMARKS.md). Best effort.
    ///
    /// Not after each batch: an import arrives as many batches, and a cache emptied between
    /// them is read back from the file by the next one (the random-keyed indexes of a
    /// million tokens are larger than the cache, so each batch then paid for its whole
    /// index again: a 1,000,000-token import took twice as long). The cache goes back when
    /// no bulk write has come for [`BULK_IDLE`].
    fn after_bulk_write(&self, rows: usize) {
        use std::sync::atomic::Ordering;
        if rows < BULK_ROWS {
            return;
        }
        let mine = self.bulk_writes.fetch_add(1, Ordering::AcqRel) + 1;
        let writes = Arc::clone(&self.bulk_writes);
        let writer = self.writer.clone();
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            tokio::time::sleep(BULK_IDLE).await;
            if writes.load(Ordering::Acquire) == mine && !writer.is_closed() {
                let _ = sqlx::query("PRAGMA shrink_memory").execute(&writer).await;
            }
        });
    }

    /// A unique violation left after the fingerprint check can only be a reused token id.
    fn insert_err(&self, e: sqlx::Error) -> StoreError {
        if super::error::is_unique_violation(&e) {
            StoreError::Backend(crate::Cause::from(format!(
                "{}: a token with one of these ids already exists ({e})",
                self.path.display()
            )))
        } else {
            self.err(e)
        }
    }

    pub(super) async fn find_by_secret_q(&self, secret: &Secret) -> StoreResult<Option<TokenId>> {
        let fp = self.cipher().fingerprint(secret);
        let id: Option<String> = sqlx::query_scalar("SELECT id FROM tokens WHERE secret_fp = ?")
            .bind(fp)
            .fetch_optional(&self.reader)
            .await
            .map_err(|e| self.err(e))?;
        Ok(id.map(TokenId))
    }

    /// Every token, oldest first. Rows are decoded (and decrypted) as they stream in, not
    /// collected first: a million rows held as SQLite values took gigabytes and most of a
    /// 25-second start-up in page faults. They are read in storage order and sorted here;
    /// an `ORDER BY` over every column made SQLite sort the whole table on disk.
    pub(super) async fn load_tokens_q(&self) -> StoreResult<Vec<StoredToken>> {
        use futures::TryStreamExt;
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens");
        let cipher = self.cipher();
        // Rows and the unfolded stats journal from one snapshot (see `merge`).
        let mut tx = self.reader.begin().await.map_err(|e| self.err(e))?;
        let mut tokens = Vec::new();
        {
            let mut rows = sqlx::query(&sql).fetch(&mut *tx);
            while let Some(r) = rows.try_next().await.map_err(|e| self.err(e))? {
                let t = TokenRow::from_row(&r)
                    .map_err(|e| self.err(e))?
                    .decode(&cipher)?;
                tokens.push(t);
            }
        }
        let mut journal = super::merge::overlay(&mut tx, &self.path, None).await?;
        tx.rollback().await.map_err(|e| self.err(e))?;
        if !journal.tokens.is_empty() {
            for t in &mut tokens {
                if let Some(c) = journal
                    .tokens
                    .remove(t.id.as_str())
                    .and_then(|m| m.counters)
                {
                    t.counters = c;
                }
            }
        }
        tokens.sort_unstable_by(|a, b| {
            (a.created_at, a.id.as_str()).cmp(&(b.created_at, b.id.as_str()))
        });
        Ok(tokens)
    }

    /// Deletes the row (its minute rows cascade) and, when the stats journal holds anything,
    /// appends a drop marker in the same transaction: what the journal holds for the token up
    /// to there is never folded or read (see `merge`).
    pub(super) async fn delete_token_tx(&self, id: &TokenId) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(|e| self.err(e))?;
        let done = sqlx::query("DELETE FROM tokens WHERE id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        if done.rows_affected() > 0 {
            sqlx::query(
                "INSERT INTO stats_journal (body, dropped) \
                 SELECT x'', ? WHERE EXISTS (SELECT 1 FROM stats_journal)",
            )
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn update_token_tx(&self, id: &TokenId, u: &TokenUpdate) -> StoreResult<()> {
        let cipher = self.cipher();
        let mut tx = self.writer.begin().await.map_err(|e| self.err(e))?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM tokens WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        if exists.is_none() {
            return Err(StoreError::NotFound(id.clone()));
        }
        let secret = match &u.secret {
            Some(s) => {
                let fp = cipher.fingerprint(s);
                let other: Option<String> =
                    sqlx::query_scalar("SELECT id FROM tokens WHERE secret_fp = ? AND id <> ?")
                        .bind(&fp)
                        .bind(id.as_str())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(|e| self.err(e))?;
                if let Some(other) = other {
                    return Err(StoreError::Duplicate(TokenId(other)));
                }
                Some((cipher.encrypt(s, id.as_str()).map_err(crypto_err)?, fp))
            }
            None => None,
        };
        let refresh = crate::rows::encrypt_refresh_update(&cipher, id, &u.refresh_secret)?;
        let mut q = QueryBuilder::<Sqlite>::new("UPDATE tokens SET id = id");
        crate::rows::push_update(&mut q, u, secret, refresh);
        q.push(" WHERE id = ").push_bind(id.as_str());
        q.build().execute(&mut *tx).await.map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))
    }
}

impl SqliteStore {
    /// Re-seals every secret under `new` in one transaction (all old or all new after a crash),
    /// replaces the key sentinel in the same transaction, then switches to `new`.
    pub(super) async fn reencrypt_tx(&self, new: &Cipher) -> StoreResult<usize> {
        let old = self.cipher();
        let mut tx = self.writer.begin().await.map_err(|e| self.err(e))?;
        let rows: Vec<(String, String, Option<String>)> =
            sqlx::query_as("SELECT id, secret_enc, refresh_enc FROM tokens")
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        let mut sealed = Vec::with_capacity(rows.len());
        for (id, enc, refresh_enc) in rows {
            sealed.push(reseal(&old, new, id, &enc, refresh_enc.as_deref())?);
        }
        for chunk in sealed.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "UPDATE tokens SET secret_enc = v.column2, secret_fp = v.column3, \
                 refresh_enc = v.column4 FROM (",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(&r.0)
                    .push_bind(&r.1)
                    .push_bind(&r.2)
                    .push_bind(&r.3);
            });
            q.push(") AS v WHERE tokens.id = v.column1");
            q.build().execute(&mut *tx).await.map_err(|e| self.err(e))?;
        }
        super::write_key_check(&mut *tx, new)
            .await?
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        self.set_cipher(new.clone());
        Ok(sealed.len())
    }
}
