//! Issue 14, point 5: logs at the level their meaning deserves. A 503 for an empty pool was
//! `ERROR … response failed` with no reason; a recovery ("cooling ended: half-open") was a
//! WARN. (A global subscriber: the manager's tasks log from other threads; nextest runs each
//! test in a process of its own.)

use crate::common::TestServer;
use serde_json::json;
use tokenlb_test_support::logs::Logs;

fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

#[tokio::test]
async fn answers_and_recoveries_log_at_their_level_with_their_reason() {
    let capture = Logs::global(tracing::Level::DEBUG);
    let s = TestServer::start_with(|c| {
        let p = c.pools.get_mut("default").expect("default pool");
        p.policy.consecutive_failures = 1;
        p.policy.cooling_base_s = 1;
        p.policy.cooling_jitter = 0.0;
        p.policy.max_cooling_percent = 100;
    })
    .await;
    // An empty pool: a WARN naming the route and the reason, not an ERROR.
    assert_eq!(s.lease("").await.status(), 503);
    let logs = capture.text();
    let lines = lines_with(&logs, "/api/token/get");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" WARN ") && l.contains("has no tokens")),
        "{logs}"
    );
    assert!(!logs.contains(" ERROR "), "{logs}");
    assert!(!logs.contains("response failed"), "{logs}");

    // A token cools (WARN), then its cooling ends (INFO: it is on probation, not failing).
    s.add("log-level-token-0123456789", "lvl").await;
    let r = s.lease("").await;
    let lease: serde_json::Value = r.json().await.unwrap();
    let r = s
        .report(json!({"lease": lease["lease"], "outcome": "transient"}))
        .await;
    assert_eq!(r.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    assert_eq!(s.lease("").await.status(), 200, "the half-open probe");
    let logs = capture.text();
    let cooled = lines_with(&logs, "temporarily disabled");
    assert!(
        cooled.iter().all(|l| l.contains(" WARN ")) && !cooled.is_empty(),
        "{logs}"
    );
    let probation = lines_with(&logs, "on probation");
    assert!(
        probation.iter().all(|l| l.contains(" INFO ")) && !probation.is_empty(),
        "{logs}"
    );
    // The token is named once per line, without a repeated `token=` field.
    assert!(!cooled[0].contains("token=t_"), "{}", cooled[0]);
    s.stop().await;
}
