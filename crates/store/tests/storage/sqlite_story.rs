//! The conformance story on SQLite, and what only a file-backed store can show: no secret in
//! any file of the data directory, and clear errors for bad files and directories.

use async_trait::async_trait;
use std::path::{Path, PathBuf};
use tokenlb_store::{Cipher, SqliteOptions, SqliteStore, Store, StoreError, StoreResult};
use tokenlb_test_support::store_story::{self as conformance, Harness, SECRET_MARKER};

/// A fresh data directory; every `open` opens the same database file in it.
struct SqliteHarness {
    dir: tempfile::TempDir,
}

impl SqliteHarness {
    fn new() -> Self {
        SqliteHarness {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("tokenlb.db")
    }
}

#[async_trait]
impl Harness for SqliteHarness {
    async fn open(&self, cipher: &Cipher) -> StoreResult<Box<dyn Store>> {
        Ok(Box::new(
            SqliteStore::open(&self.db(), cipher.clone()).await?,
        ))
    }
}

/// Panics if any file in `dir` contains the story's secret marker (in plain or as UTF-16).
fn assert_no_secret_in_files(dir: &Path) {
    let utf16: Vec<u8> = SECRET_MARKER
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        seen += 1;
        for needle in [SECRET_MARKER.as_bytes(), &utf16] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "a secret is stored in plain in {}",
                path.display()
            );
        }
    }
    assert!(seen > 0, "nothing to scan in {}", dir.display());
}

#[tokio::test]
async fn story_tokens() {
    let h = SqliteHarness::new();
    conformance::tokens(&h).await;
}

#[tokio::test]
async fn story_stats() {
    conformance::stats(&SqliteHarness::new()).await;
}

#[tokio::test]
async fn story_events() {
    conformance::events(&SqliteHarness::new()).await;
}

#[tokio::test]
async fn story_minutes_and_prune() {
    conformance::minutes_and_prune(&SqliteHarness::new()).await;
}

#[tokio::test]
async fn story_pools() {
    conformance::pools(&SqliteHarness::new()).await;
}

#[tokio::test]
async fn story_reencrypt() {
    conformance::reencrypt(&SqliteHarness::new()).await;
}

/// After the token story and a re-encryption (every secret-carrying write), scanned both while
/// the store is open (WAL and shared-memory files present) and after it is closed.
#[tokio::test]
async fn no_secret_in_any_file_of_the_data_dir() {
    let h = SqliteHarness::new();
    conformance::tokens(&h).await;
    let s = conformance::open(&h).await;
    s.reencrypt(&conformance::key(2)).await.unwrap();
    let toks: Vec<_> = (200..260).map(|i| conformance::token(i, "scan")).collect();
    s.insert_tokens(&toks).await.unwrap();
    let names: Vec<String> = std::fs::read_dir(h.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n.ends_with("-wal")), "{names:?}");
    assert_no_secret_in_files(h.dir.path());
    s.close().await;
    assert_no_secret_in_files(h.dir.path());
}

#[tokio::test]
async fn a_corrupt_file_is_a_clear_error_naming_it() {
    let h = SqliteHarness::new();
    let garbage = vec![0x5a_u8; 64 * 1024];
    std::fs::write(h.db(), &garbage).unwrap();
    let err = SqliteStore::open(&h.db(), conformance::key(1))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&h.db().display().to_string()), "{msg}");
    assert!(msg.contains("not a SQLite database"), "{msg}");
    assert_eq!(
        std::fs::read(h.db()).unwrap(),
        garbage,
        "the file must be left as it was"
    );
}

/// Damage past the header (pages of tables and indexes overwritten): opening or reading fails
/// with an error naming the file — never a panic, never an empty answer taken for the truth.
#[tokio::test]
async fn a_database_damaged_inside_is_an_error_naming_it() {
    let h = SqliteHarness::new();
    let s = conformance::open(&h).await;
    let toks: Vec<_> = (0..400).map(|i| conformance::token(i, "default")).collect();
    s.insert_tokens(&toks).await.unwrap();
    s.close().await;
    drop(s);
    let mut bytes = std::fs::read(h.db()).unwrap();
    assert!(bytes.len() > 16 * 4096, "expected a multi-page database");
    for b in &mut bytes[4096..] {
        *b = 0xa5;
    }
    std::fs::write(h.db(), &bytes).unwrap();
    let result = match SqliteStore::open(&h.db(), conformance::key(1)).await {
        Ok(s) => s.load_tokens().await.map(|t| t.len()),
        Err(e) => Err(e),
    };
    let err = result.expect_err("a damaged database must not load");
    assert!(
        err.to_string().contains(&h.db().display().to_string()),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_directory_is_a_clear_error_naming_it() {
    let h = SqliteHarness::new();
    let path = h.dir.path().join("no/such/dir/tokenlb.db");
    let err = SqliteStore::open(&path, conformance::key(1))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Unavailable(_)));
    assert!(msg.contains(&path.display().to_string()), "{msg}");
}

/// A directory this process cannot write: a 0555 directory for an ordinary user; for root,
/// who may write anywhere by permissions, a directory on a read-only file system (/proc).
#[tokio::test]
async fn a_read_only_directory_is_a_clear_error_naming_the_file() {
    let h = SqliteHarness::new();
    let ro = h.dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let writable = std::fs::write(ro.join("probe"), b"x").is_ok();
    let dir = if writable { PathBuf::from("/proc") } else { ro };
    let path = dir.join("tokenlb.db");
    let err = SqliteStore::open(&path, conformance::key(1))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(
        msg.contains("cannot open the file") || msg.contains("read-only"),
        "{msg}"
    );
}

/// A full disk, simulated with a page cap: the write fails with a message naming the file
/// and the cause, and what was committed before is intact.
#[tokio::test]
async fn a_full_disk_fails_the_write_cleanly() {
    let h = SqliteHarness::new();
    let opts = SqliteOptions {
        max_page_count: Some(64),
        ..SqliteOptions::default()
    };
    let s = SqliteStore::open_with(&h.db(), conformance::key(1), opts)
        .await
        .unwrap();
    let first = vec![conformance::token(1, "default")];
    s.insert_tokens(&first).await.unwrap();
    let many: Vec<_> = (10..5_000)
        .map(|i| conformance::token(i, "default"))
        .collect();
    let err = s.insert_tokens(&many).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("disk is full"), "{msg}");
    assert!(msg.contains(&h.db().display().to_string()), "{msg}");
    assert_eq!(s.load_tokens().await.unwrap(), first);
    s.close().await;
}

#[tokio::test]
async fn the_wrong_key_is_refused_at_open() {
    let h = SqliteHarness::new();
    let s = SqliteStore::open(&h.db(), conformance::key(1))
        .await
        .unwrap();
    s.close().await;
    let err = SqliteStore::open(&h.db(), conformance::key(3))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Decrypt(_)), "{msg}");
    assert!(
        msg.contains("not the one this database was written with"),
        "{msg}"
    );
    assert!(msg.contains(&h.db().display().to_string()), "{msg}");
}
