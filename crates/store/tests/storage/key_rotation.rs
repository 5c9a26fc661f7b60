//! Key-file rotation across crashes: after a crash at any step, `open_sqlite` opens the data
//! with the right key and leaves exactly one key file.

use std::path::Path;
use tokenlb_store::keys::{self, open_sqlite};
use tokenlb_store::{KeySource, Store, StoreError};
use tokenlb_test_support::store_story as conformance;

const KEY: &str = "secret.key";
const NEXT: &str = "secret.key.next";

async fn seeded(dir: &Path) -> Vec<tokenlb_store::StoredToken> {
    let (s, src) = open_sqlite(dir, None).await.unwrap();
    assert!(matches!(src, KeySource::File { created: true, .. }));
    let toks: Vec<_> = (0..20).map(|i| conformance::token(i, "default")).collect();
    s.insert_tokens(&toks).await.unwrap();
    s.close().await;
    toks
}

async fn assert_reopens(dir: &Path, toks: &[tokenlb_store::StoredToken]) {
    let (s, _) = open_sqlite(dir, None).await.unwrap();
    assert_eq!(conformance::by_id(s.load_tokens().await.unwrap()), toks);
    s.close().await;
    assert!(dir.join(KEY).exists() && !dir.join(NEXT).exists());
}

#[tokio::test]
async fn rotation_replaces_the_key_file_and_the_data_follows() {
    let dir = tempfile::tempdir().unwrap();
    let toks = seeded(dir.path()).await;
    let before = std::fs::read(dir.path().join(KEY)).unwrap();
    let (s, _) = open_sqlite(dir.path(), None).await.unwrap();
    let r = keys::rotate_key_file(&s, dir.path()).await.unwrap();
    assert_eq!(r.reencrypted, toks.len());
    s.close().await;
    assert_ne!(std::fs::read(dir.path().join(KEY)).unwrap(), before);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(KEY))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_reopens(dir.path(), &toks).await;
}

#[tokio::test]
async fn a_crash_after_staging_keeps_the_old_key() {
    let dir = tempfile::tempdir().unwrap();
    let toks = seeded(dir.path()).await;
    let before = std::fs::read(dir.path().join(KEY)).unwrap();
    keys::stage_next_key(dir.path()).unwrap(); // crash: database never re-encrypted
    assert_reopens(dir.path(), &toks).await;
    assert_eq!(std::fs::read(dir.path().join(KEY)).unwrap(), before);
}

#[tokio::test]
async fn a_crash_after_the_database_commit_finishes_the_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let toks = seeded(dir.path()).await;
    let (s, _) = open_sqlite(dir.path(), None).await.unwrap();
    let next = keys::stage_next_key(dir.path()).unwrap();
    s.reencrypt(&next).await.unwrap(); // crash: key file never renamed
    s.close().await;
    let staged = std::fs::read(dir.path().join(NEXT)).unwrap();
    assert_reopens(dir.path(), &toks).await;
    assert_eq!(std::fs::read(dir.path().join(KEY)).unwrap(), staged);
}

#[tokio::test]
async fn a_lost_key_file_is_a_decrypt_error_not_a_new_empty_key() {
    let dir = tempfile::tempdir().unwrap();
    seeded(dir.path()).await;
    std::fs::remove_file(dir.path().join(KEY)).unwrap();
    let err = open_sqlite(dir.path(), None).await.unwrap_err();
    assert!(
        matches!(err, keys::KeyError::Store(StoreError::Decrypt(_))),
        "{err}"
    );
}
