//! The client against a real manager on 127.0.0.1:0: leasing, reporting, retries on another
//! token, budgets, client keys, and the grace period while the manager is away.

use crate::support::{client_config as config, Fail, TestManager, BAD, GOOD, GOOD2, REPORTER_KEY};
use std::future::pending;
use std::time::Duration;
use tokenlb_client::{CallError, Client, ClientError, GiveUp, Outcome};
use tokenlb_core::{OutcomeClass, Secret};

#[tokio::test]
async fn lease_and_report_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let m = TestManager::start(dir.path(), &[REPORTER_KEY]).await;
    let id = m.add(GOOD, "main").await;
    let client = Client::new(config(&m)).unwrap();

    let lease = client.lease().await.unwrap();
    assert_eq!(lease.token_id().as_str(), id);
    assert_eq!(lease.secret().expose(), GOOD);
    assert_eq!(lease.name(), "main");
    assert!(!lease.is_cached());
    assert!(lease.lease_id().is_some());
    assert!(
        !format!("{lease:?}").contains(GOOD),
        "Debug hides the token"
    );
    assert_eq!(m.row(&id).await["in_flight"], 1);

    let mut outcome = Outcome::success();
    outcome.latency_ms = Some(12);
    client.report(&lease, outcome).await.unwrap();
    let row = m.row(&id).await;
    assert_eq!(row["in_flight"], 0);
    assert_eq!(row["success"], 1);

    // A second report on the same lease: the manager no longer knows the lease, so the
    // client reports by token id and the outcome still counts.
    let mut failed = Outcome::new(OutcomeClass::Transient);
    failed.error = Some(format!("bad answer for {GOOD}"));
    client.report(&lease, failed).await.unwrap();
    let row = m.row(&id).await;
    assert_eq!(row["failure"], 1);
    let last_error = row["last_error"].as_str().unwrap_or_default().to_string();
    assert!(
        !last_error.contains(GOOD),
        "the token is cut out of the error sample: {last_error}"
    );
}

/// DESIGN §9: a caller without `report_by_id` may report leases only, so the client's
/// fallback to a report by token id (the lease is gone) is refused, with the manager's
/// `forbidden`, and the token's counts stay as they were.
#[tokio::test]
async fn a_lost_lease_is_not_reported_by_id_without_the_right_to() {
    let dir = tempfile::tempdir().unwrap();
    let m = TestManager::start(dir.path(), &[]).await;
    let id = m.add(GOOD, "main").await;
    let client = Client::new(config(&m)).unwrap();
    let lease = client.lease().await.unwrap();
    client.report(&lease, Outcome::success()).await.unwrap();
    let err = client
        .report(&lease, Outcome::new(OutcomeClass::Auth))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, tokenlb_client::ClientError::Unauthorized { status: 403, message } if message.contains("report_by_id")),
        "{err:?}"
    );
    let row = m.row(&id).await;
    assert_eq!(row["success"], 1);
    assert_eq!(row["failure"], 0);
    assert_eq!(row["state"], "active");
}

#[tokio::test]
async fn call_retries_on_another_token_and_the_rejected_one_becomes_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let m = TestManager::start(dir.path(), &[]).await;
    let bad_id = m.add(BAD, "expired").await;
    let good_id = m.add(GOOD, "fresh").await;
    let client = Client::new(config(&m)).unwrap();

    let used = std::sync::Mutex::new(Vec::new());
    for _ in 0..4 {
        let answer = client
            .call(|token| {
                used.lock().unwrap().push(token.id.0.clone());
                async move {
                    if token.secret.expose() == BAD {
                        Err(Fail(OutcomeClass::Auth))
                    } else {
                        Ok(token.name.clone())
                    }
                }
            })
            .await
            .unwrap();
        assert_eq!(answer, "fresh");
    }
    let used = used.into_inner().unwrap();
    assert_eq!(
        used.iter().filter(|id| **id == bad_id).count(),
        1,
        "the rejected token is tried once: {used:?}"
    );
    assert_eq!(used.iter().filter(|id| **id == good_id).count(), 4);
    // The auth failure was reported before the retry; the successes go in the background.
    let row = m.row(&bad_id).await;
    assert_eq!(row["state"], "invalid", "{row}");
    client.flush().await;
    let row = m.row(&bad_id).await;
    assert_eq!(row["state"], "invalid", "{row}");
    assert_eq!(m.row(&good_id).await["success"], 4);
}

#[tokio::test]
async fn budgets_bound_the_retries_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let m = TestManager::start(dir.path(), &[]).await;
    for (i, t) in [GOOD, GOOD2, BAD].iter().enumerate() {
        m.add(t, &format!("t{i}")).await;
    }
    let mut cfg = config(&m);
    cfg.max_attempts = 2;
    let client = Client::new(cfg).unwrap();

    // Every token fails transiently: two attempts, then a clear error.
    let err = client
        .call(|_| async { Err::<(), _>(Fail(OutcomeClass::Transient)) })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CallError::Exhausted {
                attempts: 2,
                reason: GiveUp::Attempts,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.class(), OutcomeClass::Transient);
    let text = err.to_string();
    assert!(
        text.contains("gave up after 2 attempt(s)") && text.contains("transient"),
        "{text}"
    );

    // The request's own fault is not retried.
    let err = client
        .call(|_| async { Err::<(), _>(Fail(OutcomeClass::ClientError)) })
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::Operation { attempts: 1, .. }),
        "{err:?}"
    );

    // An operation that never answers: each attempt times out, then the time budget ends.
    let mut cfg = config(&m);
    cfg.max_attempts = 50;
    cfg.attempt_timeout = Duration::from_millis(100);
    cfg.retry_budget = Duration::from_millis(250);
    let client = Client::new(cfg).unwrap();
    let err = client
        .call(|_| pending::<Result<(), Fail>>())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CallError::Exhausted {
                reason: GiveUp::Time,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.attempts() < 50);
}

#[tokio::test]
async fn client_key_is_required_and_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let m = TestManager::start(dir.path(), &["client-key-for-tests-0001"]).await;
    m.add(GOOD, "main").await;

    let err = Client::new(config(&m)).unwrap().lease().await.unwrap_err();
    assert!(
        matches!(err, ClientError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );

    let mut cfg = config(&m);
    cfg.client_key = Some(Secret::new("wrong-key-0000000000"));
    let err = Client::new(cfg).unwrap().lease().await.unwrap_err();
    assert!(matches!(err, ClientError::Unauthorized { .. }), "{err:?}");
    assert!(
        !err.is_unreachable(),
        "a refused key does not start the grace period"
    );

    let mut cfg = config(&m);
    cfg.client_key = Some(Secret::new("client-key-for-tests-0001"));
    assert!(!format!("{cfg:?}").contains("client-key-for-tests-0001"));
    let client = Client::new(cfg).unwrap();
    let lease = client.lease().await.unwrap();
    client.report(&lease, Outcome::success()).await.unwrap();
}

#[tokio::test]
async fn no_eligible_token_is_an_answer_not_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let m = TestManager::start(dir.path(), &[]).await;
    let client = Client::new(config(&m)).unwrap();
    let err = client.lease().await.unwrap_err();
    assert!(matches!(err, ClientError::NoToken { .. }), "{err:?}");
    assert!(client.status().manager_reachable);
}
