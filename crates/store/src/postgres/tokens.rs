//! Token rows in PostgreSQL: bulk insert and merge by value, lookup, update, delete,
//! re-encryption.
//!
//! As in SQLite, bulk writes are multi-row `INSERT`s in one transaction, and the UNIQUE keyed
//! fingerprint settles duplicates — here that also covers two managers adding the same value at
//! the same moment: the loser's statement fails (insert) or skips the row (merge). Re-encryption
//! locks the table against writers for its transaction, so no row sealed under the old key can
//! slip in between its read and its commit.

use super::PgStore;
use crate::crypto::Cipher;
use crate::rows::{
    crypto_err, encode_unique, reseal, TokenRow, KEY_CHECK_CONTEXT, KEY_CHECK_PLAIN,
    ROWS_PER_STATEMENT, TOKEN_COLUMNS,
};
use crate::{StoreError, StoreResult, StoredToken, TokenUpdate};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use std::collections::{HashMap, HashSet};
use tokenlb_core::{Secret, TokenId};

/// Ids of stored tokens by fingerprint, for the fingerprints given.
async fn existing(
    conn: &mut PgConnection,
    rows: &[TokenRow],
) -> Result<HashMap<String, TokenId>, sqlx::Error> {
    let fps: Vec<&str> = rows.iter().map(|r| r.secret_fp.as_str()).collect();
    let hits: Vec<(String, String)> =
        sqlx::query_as("SELECT secret_fp, id FROM tokens WHERE secret_fp = ANY($1)")
            .bind(fps)
            .fetch_all(&mut *conn)
            .await?;
    Ok(hits.into_iter().map(|(fp, id)| (fp, TokenId(id))).collect())
}

/// Inserts rows. With `skip_stored`, a row whose value is already stored is skipped (not an
/// error); returns the ids actually inserted.
async fn insert_rows(
    conn: &mut PgConnection,
    rows: &[TokenRow],
    skip_stored: bool,
) -> Result<HashSet<String>, sqlx::Error> {
    let mut inserted = HashSet::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Postgres>::new(format!("INSERT INTO tokens ({TOKEN_COLUMNS}) "));
        q.push_values(chunk, |mut b, r| {
            crate::rows::bind_token_row!(b, r);
        });
        if skip_stored {
            q.push(" ON CONFLICT (secret_fp) DO NOTHING RETURNING id");
            let ids: Vec<(String,)> = q.build_query_as().fetch_all(&mut *conn).await?;
            inserted.extend(ids.into_iter().map(|(id,)| id));
        } else {
            q.build().execute(&mut *conn).await?;
            inserted.extend(chunk.iter().map(|r| r.id.clone()));
        }
    }
    Ok(inserted)
}

impl PgStore {
    pub(super) async fn insert_tokens_tx(&self, tokens: &[StoredToken]) -> StoreResult<()> {
        let (rows, repeats) = encode_unique(tokens, &self.cipher())?;
        if let Some((_, first)) = repeats.into_iter().next() {
            return Err(StoreError::Duplicate(first));
        }
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        match insert_rows(&mut tx, &rows, false).await {
            Ok(_) => tx.commit().await.map_err(|e| self.err(e)),
            // The fast path failed on a uniqueness rule: roll back, then find out which value
            // (or id) was already there to name it.
            Err(e) if super::error::is_unique_violation(&e) => {
                tx.rollback().await.map_err(|e| self.err(e))?;
                let mut conn = self.pool.acquire().await.map_err(|e| self.err(e))?;
                let found = existing(&mut conn, &rows).await.map_err(|e| self.err(e))?;
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
        let (rows, repeats) = encode_unique(tokens, &self.cipher())?;
        let mut skipped: Vec<TokenId> = repeats.into_iter().map(|(id, _)| id).collect();
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        let inserted = insert_rows(&mut tx, &rows, true)
            .await
            .map_err(|e| self.insert_err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        skipped.extend(
            rows.into_iter()
                .filter(|r| !inserted.contains(&r.id))
                .map(|r| TokenId(r.id)),
        );
        Ok(skipped)
    }

    /// A unique violation left after the fingerprint check can only be a reused token id.
    fn insert_err(&self, e: sqlx::Error) -> StoreError {
        if super::error::is_unique_violation(&e) {
            StoreError::Backend(crate::Cause::from(format!(
                "{}: a token with one of these ids already exists ({e})",
                self.target
            )))
        } else {
            self.err(e)
        }
    }

    pub(super) async fn find_by_secret_q(&self, secret: &Secret) -> StoreResult<Option<TokenId>> {
        let fp = self.cipher().fingerprint(secret);
        let id: Option<String> = sqlx::query_scalar("SELECT id FROM tokens WHERE secret_fp = $1")
            .bind(fp)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(id.map(TokenId))
    }

    pub(super) async fn load_tokens_q(&self) -> StoreResult<Vec<StoredToken>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY created_at, id");
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let cipher = self.cipher();
        rows.iter()
            .map(|r| {
                TokenRow::from_row(r)
                    .map_err(|e| self.err(e))?
                    .decode(&cipher)
            })
            .collect()
    }

    pub(super) async fn delete_token_tx(&self, id: &TokenId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM tokens WHERE id = $1")
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn update_token_tx(&self, id: &TokenId, u: &TokenUpdate) -> StoreResult<()> {
        let cipher = self.cipher();
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM tokens WHERE id = $1 FOR UPDATE")
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
                    sqlx::query_scalar("SELECT id FROM tokens WHERE secret_fp = $1 AND id <> $2")
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
        let new_fp = secret.as_ref().map(|(_, fp)| fp.clone());
        let mut q = QueryBuilder::<Postgres>::new("UPDATE tokens SET id = id");
        crate::rows::push_update(&mut q, u, secret, refresh);
        q.push(" WHERE id = ").push_bind(id.as_str());
        match q.build().execute(&mut *tx).await {
            Ok(_) => tx.commit().await.map_err(|e| self.err(e)),
            // Another manager stored the same value since the check above: name it.
            Err(e) if super::error::is_unique_violation(&e) => {
                tx.rollback().await.map_err(|e| self.err(e))?;
                let other = match new_fp {
                    Some(fp) => sqlx::query_scalar("SELECT id FROM tokens WHERE secret_fp = $1")
                        .bind(fp)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(|e| self.err(e))?,
                    None => None,
                };
                Err(match other {
                    Some(other) => StoreError::Duplicate(TokenId(other)),
                    None => self.err(e),
                })
            }
            Err(e) => Err(self.err(e)),
        }
    }
}

impl PgStore {
    /// Re-seals every secret under `new` in one transaction (all old or all new after a crash),
    /// replaces the key sentinel in the same transaction, then switches to `new`.
    pub(super) async fn reencrypt_tx(&self, new: &Cipher) -> StoreResult<usize> {
        let old = self.cipher();
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        // Writers wait until this commits; readers go on (with the old rows).
        sqlx::query("LOCK TABLE tokens IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        let rows: Vec<(String, String, Option<String>)> =
            sqlx::query_as("SELECT id, secret_enc, refresh_enc FROM tokens ORDER BY id")
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        let mut sealed = Vec::with_capacity(rows.len());
        for (id, enc, refresh_enc) in rows {
            sealed.push(reseal(&old, new, id, &enc, refresh_enc.as_deref())?);
        }
        for chunk in sealed.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Postgres>::new(
                "UPDATE tokens SET secret_enc = v.secret_enc, secret_fp = v.secret_fp, \
                 refresh_enc = v.refresh_enc FROM (",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(&r.0)
                    .push_bind(&r.1)
                    .push_bind(&r.2)
                    .push_bind(&r.3);
            });
            q.push(") AS v (id, secret_enc, secret_fp, refresh_enc) WHERE tokens.id = v.id");
            q.build().execute(&mut *tx).await.map_err(|e| self.err(e))?;
        }
        let check = new
            .encrypt(&Secret::new(KEY_CHECK_PLAIN), KEY_CHECK_CONTEXT)
            .map_err(crypto_err)?;
        sqlx::query("UPDATE meta SET value = $1 WHERE key = 'key_check'")
            .bind(check)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        self.set_cipher(new.clone());
        Ok(sealed.len())
    }
}
