//! Unit tests of the SQLite backend's own settings: pragmas, migrations, file modes.

use super::*;
use crate::fixtures::key;

#[tokio::test]
async fn durability_pragmas_are_in_force_on_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("t.db"), key(1))
        .await
        .unwrap();
    for pool in [&s.writer, &s.reader] {
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .unwrap();
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(pool)
            .await
            .unwrap();
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(pool)
            .await
            .unwrap();
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!((mode.as_str(), sync, fk, busy), ("wal", 2, 1, 5000));
    }
    s.close().await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_new_database_and_its_wal_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let s = SqliteStore::open(&path, key(1)).await.unwrap();
    crate::Store::insert_tokens(&s, &[crate::fixtures::token(1, "p")])
        .await
        .unwrap();
    for name in ["t.db", "t.db-wal", "t.db-shm"] {
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    s.close().await;
}

#[tokio::test]
async fn migrations_apply_once_and_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let s = SqliteStore::open(&path, key(1)).await.unwrap();
    s.close().await;
    let s = SqliteStore::open(&path, key(1)).await.unwrap();
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT version, name FROM schema_migrations ORDER BY version")
            .fetch_all(&s.reader)
            .await
            .unwrap();
    let want: Vec<(i64, String)> = migrate::MIGRATIONS
        .iter()
        .map(|m| (m.version, m.name.to_string()))
        .collect();
    assert_eq!(rows, want);
    sqlx::query("INSERT INTO schema_migrations VALUES (9999, 'future', 0)")
        .execute(&s.writer)
        .await
        .unwrap();
    s.close().await;
    let err = SqliteStore::open(&path, key(1))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("newer than this tokenlb") && err.contains("t.db"),
        "{err}"
    );
}

#[tokio::test]
async fn fingerprints_of_the_full_mac_are_shortened_and_still_find_their_tokens() {
    use crate::fixtures::{secret, token};
    use crate::Store;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let s = SqliteStore::open(&path, key(1)).await.unwrap();
    s.insert_tokens(&[token(1, "p"), token(2, "p")])
        .await
        .unwrap();
    // A database from before migration 4: 64 hex digits per fingerprint.
    sqlx::query("UPDATE tokens SET secret_fp = secret_fp || substr(secret_fp, 1, 32)")
        .execute(&s.writer)
        .await
        .unwrap();
    sqlx::query("DELETE FROM schema_migrations WHERE version = 4")
        .execute(&s.writer)
        .await
        .unwrap();
    s.close().await;
    let s = SqliteStore::open(&path, key(1)).await.unwrap();
    let lens: Vec<i64> = sqlx::query_scalar("SELECT length(secret_fp) FROM tokens")
        .fetch_all(&s.reader)
        .await
        .unwrap();
    assert_eq!(lens, vec![32, 32]);
    let want = token(1, "p").id;
    assert_eq!(s.find_by_secret(&secret(1)).await.unwrap(), Some(want));
    // An import of a stored value is still a duplicate, found through the shortened index.
    let mut again = token(9, "p");
    again.secret = secret(2);
    let skipped = s.merge_tokens(&[again.clone()]).await.unwrap();
    assert_eq!(skipped, vec![again.id]);
    s.close().await;
}

#[tokio::test]
async fn open_is_send_and_describe_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let s = tokio::spawn(async move { SqliteStore::open(&path, key(1)).await })
        .await
        .unwrap()
        .unwrap();
    assert!(crate::Store::describe(&s).ends_with("t.db"));
    s.close().await;
    assert!(matches!(
        crate::Store::ping(&s).await,
        Err(StoreError::Unavailable(_))
    ));
}

/// `close` returns only when every connection is closed: the last one out removes the WAL and
/// its index, so the database file alone holds everything. Reads on the reader pool just
/// before `close` used to leave a connection that sqlx handed back after its close pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_leaves_no_open_connection_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    for round in 0..30 {
        let s = SqliteStore::open(&path, key(1)).await.unwrap();
        crate::Store::insert_tokens(&s, &[crate::fixtures::token(round, "p")])
            .await
            .unwrap();
        let rows = crate::Store::load_tokens(&s).await.unwrap();
        assert_eq!(rows.len(), round + 1);
        s.close().await;
        assert_eq!((s.reader.size(), s.writer.size()), (0, 0), "round {round}");
        for side in ["t.db-wal", "t.db-shm"] {
            assert!(
                !dir.path().join(side).exists(),
                "round {round}: {side} is still there after close"
            );
        }
    }
}
