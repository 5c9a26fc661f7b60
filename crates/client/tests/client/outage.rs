//! The client while the manager is away: the grace period with cached tokens, its end, and
//! the recovery with queued reports delivered.
//!
//! In its own test binary because these tests capture logs with a thread-local subscriber:
//! tests without one on other threads of the same process could otherwise leave tracing's
//! per-callsite interest cache disabled for an event these tests look for.

use crate::support::{client_config as config, Fail, Logs, TestManager, GOOD, GOOD2, REPORTER_KEY};
use std::time::Duration;
use tokenlb_client::{Client, Outcome};
use tokenlb_core::OutcomeClass;

/// Leases every token once and reports success, so the client knows them all.
async fn warm_up(client: &Client, n: usize) {
    for _ in 0..n {
        let lease = client.lease().await.unwrap();
        client.report(&lease, Outcome::success()).await.unwrap();
    }
}

#[tokio::test]
async fn grace_period_uses_cached_tokens_then_ends() {
    let (logs, _guard) = Logs::install();
    let dir = tempfile::tempdir().unwrap();
    let mut m = TestManager::start(dir.path(), &[]).await;
    let a = m.add(GOOD, "a").await;
    let b = m.add(GOOD2, "b").await;
    let mut cfg = config(&m);
    cfg.grace_period = Duration::from_millis(1500);
    let client = Client::new(cfg).unwrap();
    warm_up(&client, 2).await;
    m.stop().await;

    // Round robin over both cached tokens, while the manager is away.
    let mut seen = Vec::new();
    for _ in 0..4 {
        let lease = client.lease().await.unwrap();
        assert!(lease.is_cached());
        seen.push(lease.token_id().0.clone());
        client.report(&lease, Outcome::success()).await.unwrap();
    }
    assert_eq!(seen.iter().filter(|id| **id == a).count(), 2, "{seen:?}");
    assert_eq!(seen.iter().filter(|id| **id == b).count(), 2, "{seen:?}");
    let status = client.status();
    assert!(!status.manager_reachable);
    assert_eq!(status.queued_reports, 4);

    // A token that fails for auth is skipped from then on; `call` works on the other one.
    let answer = client
        .call(|token| {
            let rejected = token.id.as_str() == a;
            async move {
                if rejected {
                    Err(Fail(OutcomeClass::Auth))
                } else {
                    Ok(token.id.0.clone())
                }
            }
        })
        .await
        .unwrap();
    assert_eq!(answer, b);
    for _ in 0..3 {
        assert_eq!(client.lease().await.unwrap().token_id().as_str(), b);
    }

    // After the grace period: a clear error, no token.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let err = client.lease().await.unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    assert!(err.to_string().contains("grace period"), "{err}");

    let text = logs.text();
    assert_eq!(
        text.matches("manager unreachable, using 2 cached tokens for up to 1 s")
            .count(),
        1,
        "{text}"
    );
    assert!(text.contains("grace period is over"), "{text}");
    for secret in [GOOD, GOOD2] {
        assert!(!text.contains(secret), "a token reached the logs");
    }
}

#[tokio::test]
async fn recovers_when_the_manager_is_back_and_delivers_queued_reports() {
    let (logs, _guard) = Logs::install();
    let dir = tempfile::tempdir().unwrap();
    let mut m = TestManager::start(dir.path(), &[REPORTER_KEY]).await;
    let a = m.add(GOOD, "a").await;
    let client = Client::new(config(&m)).unwrap();
    warm_up(&client, 1).await;
    assert_eq!(m.row(&a).await["success"], 1);
    m.stop().await;

    let lease = client.lease().await.unwrap();
    assert!(lease.is_cached());
    client.report(&lease, Outcome::success()).await.unwrap();
    assert_eq!(client.status().queued_reports, 1);

    m.restart().await;
    let mut from_manager = None;
    for _ in 0..100 {
        let lease = client.lease().await.unwrap();
        if !lease.is_cached() {
            from_manager = Some(lease);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lease = from_manager.expect("the client went back to the manager");
    client.report(&lease, Outcome::success()).await.unwrap();
    assert!(client.status().manager_reachable);
    client.flush_reports().await;
    assert_eq!(client.status().queued_reports, 0);
    // One before the outage, one queued during it, one after.
    assert_eq!(m.row(&a).await["success"], 3);
    assert!(
        logs.text().contains("manager reachable again"),
        "{}",
        logs.text()
    );
}
