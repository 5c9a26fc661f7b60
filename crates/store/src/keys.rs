//! Opening the embedded store with its key, and rotating that key, safely across a crash.
//!
//! Rotating a key file means two durable changes in two places — every secret in the database,
//! and the key file — and a crash can fall between them. So the new key is written first, to
//! `secret.key.next`; then the database is re-encrypted in one transaction (which also
//! replaces its key check); then the new file is renamed over `secret.key`. Whatever the
//! moment of a crash, one of the two files holds the key the database was last committed
//! with, and [`open_sqlite`] finds it: it tries `secret.key`, falls back to `secret.key.next`,
//! and finishes (rename) or discards (delete) the half-done rotation it finds.
//!
//! A key given in configuration is the user's to keep; it has no key file to rotate.

use crate::crypto::keyfile::{self, KEY_FILE, NEXT_KEY_FILE};
use crate::crypto::{CryptoError, KeySource};
use crate::sqlite::DEFAULT_FILE;
use crate::{Cipher, SqliteStore, Store, StoreError};
use std::path::{Path, PathBuf};
use tokenlb_core::Secret;

/// Errors of opening with a key or rotating it.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What [`rotate_key_file`] did, for its report (a key id, never the key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// Tokens whose secrets were re-encrypted.
    pub reencrypted: usize,
    /// Public id of the new key.
    pub key_id: String,
    /// The key file now holding it.
    pub path: PathBuf,
}

/// Opens `data_dir/tokenlb.db` with the configured key or the key file, completing or undoing
/// a rotation a crash interrupted. Returns where the key came from, for the start-up log.
pub async fn open_sqlite(
    data_dir: &Path,
    configured: Option<&Secret>,
) -> Result<(SqliteStore, KeySource), KeyError> {
    let db = data_dir.join(DEFAULT_FILE);
    let key_path = data_dir.join(KEY_FILE);
    if configured.is_none()
        && db.exists()
        && !key_path.exists()
        && !data_dir.join(NEXT_KEY_FILE).exists()
    {
        // A fresh key would only hide the problem (and litter the directory).
        return Err(StoreError::Decrypt(crate::Cause::from(format!(
            "{}: the database exists but its key file {} is missing; restore it or configure \
             the key the database was written with",
            db.display(),
            key_path.display()
        )))
        .into());
    }
    let (cipher, source) = Cipher::load_or_create(data_dir, configured)?;
    if configured.is_some() {
        return Ok((SqliteStore::open(&db, cipher).await?, source));
    }
    let pending = keyfile::read_optional(&data_dir.join(NEXT_KEY_FILE))?;
    match (SqliteStore::open(&db, cipher).await, pending) {
        (Ok(store), None) => Ok((store, source)),
        // The rotation never committed: the old key is the key.
        (Ok(store), Some(_)) => {
            keyfile::discard_next(data_dir)?;
            tracing::warn!(dir = %data_dir.display(), "discarded an unfinished key rotation");
            Ok((store, source))
        }
        // The database committed under the new key; the rename did not happen.
        (Err(StoreError::Decrypt(first)), Some(next)) => match SqliteStore::open(&db, next).await {
            Ok(store) => {
                keyfile::promote_next(data_dir)?;
                tracing::warn!(dir = %data_dir.display(), "finished an interrupted key rotation");
                let path = data_dir.join(KEY_FILE);
                Ok((
                    store,
                    KeySource::File {
                        path,
                        created: false,
                        loose_permissions: false,
                    },
                ))
            }
            Err(_) => Err(StoreError::Decrypt(first).into()),
        },
        (Err(e), _) => Err(e.into()),
    }
}

/// Step 1 of a rotation: a new random key, durable in `secret.key.next` (mode 0600).
pub fn stage_next_key(data_dir: &Path) -> Result<Cipher, KeyError> {
    let (cipher, key_b64) = Cipher::generate();
    keyfile::write_replace(data_dir, NEXT_KEY_FILE, &key_b64)?;
    Ok(cipher)
}

/// Step 3 of a rotation: `secret.key.next` becomes `secret.key`.
pub fn commit_next_key(data_dir: &Path) -> Result<(), KeyError> {
    Ok(keyfile::promote_next(data_dir)?)
}

/// Rotates the key file of `data_dir`: stage a new key, re-encrypt `store` under it (one
/// transaction), then commit the key file. After an error the staged file is left in place on
/// purpose — the re-encryption may have committed — and the next [`open_sqlite`] settles it.
pub async fn rotate_key_file(store: &dyn Store, data_dir: &Path) -> Result<Rotation, KeyError> {
    let next = stage_next_key(data_dir)?;
    let reencrypted = store.reencrypt(&next).await?;
    commit_next_key(data_dir)?;
    Ok(Rotation {
        reencrypted,
        key_id: next.key_id().to_string(),
        path: data_dir.join(KEY_FILE),
    })
}
