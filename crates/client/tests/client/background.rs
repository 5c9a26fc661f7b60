//! Reports delivered by the background reporter: they reach the manager, in order, after
//! `flush`; while the manager is away they wait in the grace queue and go out when it is
//! back; `background_reports = false` keeps every report on the caller's path.

use crate::support::{client_config as config, Fail, TestManager, GOOD, GOOD2, REPORTER_KEY};
use std::time::Duration;
use tokenlb_client::{Client, Outcome};
use tokenlb_core::OutcomeClass;

#[tokio::test]
async fn background_reports_reach_the_manager_after_flush() {
    let dir = tempfile::tempdir().unwrap();
    let m = TestManager::start(dir.path(), &[]).await;
    let id = m.add(GOOD, "main").await;
    let client = Client::new(config(&m)).unwrap();

    // By hand: lease, then report without waiting.
    for _ in 0..5 {
        let lease = client.lease().await.unwrap();
        let mut outcome = Outcome::success();
        outcome.latency_ms = Some(3);
        client.report_in_background(&lease, outcome).await;
    }
    // Through `call`: its success report goes in the background too.
    for _ in 0..5 {
        let v = client
            .call(|t| async move { Ok::<_, Fail>(t.name.clone()) })
            .await
            .unwrap();
        assert_eq!(v, "main");
    }
    client.flush().await;
    assert_eq!(client.status().queued_reports, 0);
    let row = m.row(&id).await;
    assert_eq!(row["success"], 10, "{row}");
    assert_eq!(row["in_flight"], 0, "{row}");
}

#[tokio::test]
async fn a_failure_is_delivered_before_the_retry_and_after_earlier_successes() {
    let dir = tempfile::tempdir().unwrap();
    let m = TestManager::start(dir.path(), &[]).await;
    let a = m.add(GOOD, "a").await;
    let b = m.add(GOOD2, "b").await;
    let client = Client::new(config(&m)).unwrap();
    // Successes queued in the background, then a call whose first token is rejected: the
    // rejection reaches the manager (after the queued successes) before the call returns.
    for _ in 0..2 {
        let lease = client.lease().await.unwrap();
        client
            .report_in_background(&lease, Outcome::success())
            .await;
    }
    // Round robin: `a` comes up within two calls; the call that tried it returns only after
    // its rejection was delivered.
    let tried_a = std::sync::atomic::AtomicBool::new(false);
    for _ in 0..2 {
        let answer = client
            .call(|t| {
                let rejected = t.id.as_str() == a;
                if rejected {
                    tried_a.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                async move {
                    if rejected {
                        Err(Fail(OutcomeClass::Auth))
                    } else {
                        Ok(t.id.0.clone())
                    }
                }
            })
            .await
            .unwrap();
        assert_eq!(answer, b);
        if tried_a.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
    }
    assert!(tried_a.into_inner(), "round robin handed out a");
    let row_a = m.row(&a).await;
    assert_eq!(row_a["state"], "invalid", "{row_a}");
    assert_eq!(
        row_a["success"], 1,
        "the earlier success came first: {row_a}"
    );
    client.flush().await;
    let successes = m.row(&b).await["success"].as_u64().unwrap();
    assert!((2..=3).contains(&successes), "{successes}");
}

#[tokio::test]
async fn background_reports_wait_for_an_absent_manager_and_go_out_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = TestManager::start(dir.path(), &[REPORTER_KEY]).await;
    let a = m.add(GOOD, "a").await;
    let client = Client::new(config(&m)).unwrap();
    let lease = client.lease().await.unwrap();
    client.report(&lease, Outcome::success()).await.unwrap();
    m.stop().await;

    for _ in 0..3 {
        let v = client
            .call(|t| async move { Ok::<_, Fail>(t.id.0.clone()) })
            .await
            .unwrap();
        assert_eq!(v, a);
    }
    client.flush().await;
    let status = client.status();
    assert!(!status.manager_reachable);
    assert_eq!(status.queued_reports, 3, "held for the manager: {status:?}");

    m.restart().await;
    let mut back = false;
    for _ in 0..100 {
        let lease = client.lease().await.unwrap();
        if !lease.is_cached() {
            client.report(&lease, Outcome::success()).await.unwrap();
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(back, "the client went back to the manager");
    client.flush_reports().await;
    assert_eq!(client.status().queued_reports, 0);
    // One before the outage, three during it, one after.
    assert_eq!(m.row(&a).await["success"], 5);
}

#[tokio::test]
async fn reports_can_stay_on_the_callers_path() {
    let dir = tempfile::tempdir().unwrap();
    let m = TestManager::start(dir.path(), &[]).await;
    let id = m.add(GOOD, "main").await;
    let mut cfg = config(&m);
    cfg.background_reports = false;
    let client = Client::new(cfg).unwrap();
    for _ in 0..3 {
        client
            .call(|t| async move { Ok::<_, Fail>(t.name.clone()) })
            .await
            .unwrap();
    }
    // No flush: every report was delivered before `call` returned.
    assert_eq!(m.row(&id).await["success"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_makes_callers_wait_and_drops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let m = TestManager::start(dir.path(), &[]).await;
    let id = m.add(GOOD, "main").await;
    let mut cfg = config(&m);
    cfg.max_queued_reports = 1;
    let client = Client::new(cfg).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..5 {
                client
                    .call(|t| async move { Ok::<_, Fail>(t.name.clone()) })
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    client.flush().await;
    assert_eq!(client.status().queued_reports, 0);
    assert_eq!(m.row(&id).await["success"], 40);
}

/// The report requests the manager has answered with 200 so far (its own metrics).
async fn report_requests(m: &TestManager) -> u64 {
    let text = tokenlb_test_support::metrics::scrape(&m.http, &m.url).await;
    let series =
        r#"tokenlb_http_requests_total{route="/api/token/report",method="POST",status="200"}"#;
    tokenlb_test_support::metrics::value(&text, series).map_or(0, |v| v as u64)
}

/// DESIGN §9: background successes go to the manager in batch requests, so fifty reports
/// cost a handful of requests, and every one of them is applied.
#[tokio::test]
async fn background_successes_are_sent_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let m = TestManager::start(dir.path(), &[]).await;
    let id = m.add(GOOD, "main").await;
    let client = Client::new(config(&m)).unwrap();
    let mut leases = Vec::new();
    for _ in 0..50 {
        leases.push(client.lease().await.unwrap());
    }
    let before = report_requests(&m).await;
    for lease in &leases {
        client.report_in_background(lease, Outcome::success()).await;
    }
    client.flush().await;
    let requests = report_requests(&m).await - before;
    let row = m.row(&id).await;
    assert_eq!(row["success"], 50, "{row}");
    assert_eq!(row["in_flight"], 0, "{row}");
    assert!(
        (1..=25).contains(&requests),
        "50 reports took {requests} report requests"
    );
}
