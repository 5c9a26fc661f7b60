//! The conformance story on PostgreSQL: the local server (`TOKENLB_TEST_PG_URL`, default
//! `postgresql://postgres@127.0.0.1:5432/test`), each part in a schema of its own that is
//! dropped afterwards, even when the part fails.

use async_trait::async_trait;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokenlb_store::{Cipher, PgOptions, PgStore, Store, StoreError, StoreResult};
use tokenlb_test_support::store_story::{self as conformance, Harness};

fn url() -> String {
    std::env::var("TOKENLB_TEST_PG_URL")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/test".to_string())
}

/// A schema unique to this process and call.
fn unique_schema() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "tokenlb_test_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Opens `PgStore`s on one schema; drops the schema when dropped.
struct PgHarness {
    schema: String,
}

impl PgHarness {
    fn new() -> Self {
        PgHarness {
            schema: unique_schema(),
        }
    }

    fn options(&self) -> PgOptions {
        PgOptions {
            schema: Some(self.schema.clone()),
            max_connections: 4,
            ..PgOptions::default()
        }
    }
}

#[async_trait]
impl Harness for PgHarness {
    async fn open(&self, cipher: &Cipher) -> StoreResult<Box<dyn Store>> {
        Ok(Box::new(
            PgStore::connect_with(&url(), cipher.clone(), self.options()).await?,
        ))
    }
}

impl Drop for PgHarness {
    fn drop(&mut self) {
        let schema = self.schema.clone();
        // Drop runs inside the test's runtime; do the async cleanup on a thread of its own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&url()).await?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(done, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}", self.schema);
        }
    }
}

#[tokio::test]
async fn story_tokens() {
    conformance::tokens(&PgHarness::new()).await;
}

#[tokio::test]
async fn story_stats() {
    conformance::stats(&PgHarness::new()).await;
}

#[tokio::test]
async fn story_events() {
    conformance::events(&PgHarness::new()).await;
}

#[tokio::test]
async fn story_minutes_and_prune() {
    conformance::minutes_and_prune(&PgHarness::new()).await;
}

#[tokio::test]
async fn story_pools() {
    conformance::pools(&PgHarness::new()).await;
}

#[tokio::test]
async fn story_reencrypt() {
    conformance::reencrypt(&PgHarness::new()).await;
}

#[tokio::test]
async fn the_wrong_key_is_refused_at_connect() {
    let h = PgHarness::new();
    let s = conformance::open(&h).await;
    s.close().await;
    let err = match h.open(&conformance::key(3)).await {
        Ok(_) => panic!("opened with the wrong key"),
        Err(e) => e,
    };
    assert!(matches!(err, StoreError::Decrypt(_)), "{err}");
    assert!(err.to_string().contains(&h.schema), "{err}");
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_and_the_password_is_not_shown() {
    // Port 1 on loopback: nothing listens there.
    let opts = PgOptions {
        acquire_timeout: std::time::Duration::from_secs(2),
        ..PgOptions::default()
    };
    let err = PgStore::connect_with(
        "postgres://tokenlb:hunter2secret@127.0.0.1:1/x",
        conformance::key(1),
        opts,
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Unavailable(_)), "{msg}");
    assert!(
        msg.contains("127.0.0.1:1") && !msg.contains("hunter2secret"),
        "{msg}"
    );
}

/// Two stores on one schema (two managers): concurrent merges of overlapping values end with
/// each value stored exactly once, and concurrent stats flushes add up.
#[tokio::test]
async fn two_instances_merge_and_flush_concurrently() {
    let h = PgHarness::new();
    let a = conformance::open(&h).await;
    let b = conformance::open(&h).await;
    let batch: Vec<_> = (0..300).map(|i| conformance::token(i, "default")).collect();
    let other: Vec<_> = (0..300)
        .map(|i| tokenlb_store::StoredToken {
            id: tokenlb_core::TokenId(format!("t_b{i:05}")),
            ..conformance::token(i, "default")
        })
        .collect();
    let (ra, rb) = tokio::join!(a.merge_tokens(&batch), b.merge_tokens(&other));
    let skipped = ra.unwrap().len() + rb.unwrap().len();
    assert_eq!(skipped, 300, "each value inserted once, skipped once");
    assert_eq!(a.load_tokens().await.unwrap().len(), 300);

    let ids: Vec<String> = a
        .load_tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id.0)
        .collect();
    let minutes: Vec<_> = ids
        .iter()
        .flat_map(|id| (0..3).map(move |m| conformance::minute_count(id, "default", m, 1, 0)))
        .collect();
    let batch = tokenlb_store::StatsBatch {
        counters: vec![],
        minutes,
    };
    let (ra, rb) = tokio::join!(a.write_stats(&batch), b.write_stats(&batch));
    ra.unwrap();
    rb.unwrap();
    let q = tokenlb_store::MinuteQuery::default();
    assert_eq!(
        a.minutes(&q).await.unwrap(),
        vec![(0, 600, 0), (1, 600, 0), (2, 600, 0)]
    );
    a.close().await;
    b.close().await;
}
