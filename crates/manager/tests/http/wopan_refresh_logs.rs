//! Refreshes, refused refreshes and wopan health checks never put a token, access or
//! refresh, in the logs or in the events. (It installs a global subscriber, since the
//! manager's tasks log from other threads; nextest runs each test in a process of its own.)

use crate::wopan_common::*;
use serde_json::{json, Value};
use tokenlb_core::TokenId;
use tokenlb_manager::refresh::{self, Trigger};
use tokenlb_test_support::logs::Logs;
use tokenlb_wopan::emulator::{DEMO_EXPIRED_TOKEN, DEMO_TOKENS};

#[tokio::test]
async fn secrets_never_reach_logs_or_events() {
    let capture = Logs::global(tracing::Level::TRACE);

    let emu = emulator().await;
    let s = start(&emu, 3600).await;
    let t = &DEMO_TOKENS[0];
    let id = add_refreshable(&s, t.access_token, t.refresh_token, "logged").await;
    emu.control(json!({"tokens": {t.access_token: "expired"}}))
        .await;
    check(&s, &id).await;
    until("refreshed", || async {
        events(&s, &id)
            .await
            .iter()
            .any(|e| e["kind"] == "refreshed")
    })
    .await;
    let (new_access, new_refresh) = stored(&s, &id).await;
    let dead = add_refreshable(&s, DEMO_EXPIRED_TOKEN.access_token, UNKNOWN_REFRESH, "dead").await;
    let e =
        refresh::refresh_now(s.state.refresher(), &TokenId(dead.clone()), Trigger::Manual).await;
    assert!(e.is_err());
    until("refresh_failed", || async {
        events(&s, &dead)
            .await
            .iter()
            .any(|e| e["kind"] == "refresh_failed")
    })
    .await;

    let mut all: Vec<Value> = events(&s, &id).await;
    all.extend(events(&s, &dead).await);
    let events_text = serde_json::to_string(&all).unwrap();
    let logs = capture.text();
    assert!(
        logs.contains("refreshed"),
        "the capture saw the manager's logs"
    );
    assert!(logs.contains("refresh refused"), "{logs}");
    let secrets = [
        t.access_token,
        t.refresh_token,
        new_access.as_str(),
        new_refresh.as_deref().unwrap(),
        DEMO_EXPIRED_TOKEN.access_token,
        UNKNOWN_REFRESH,
    ];
    for secret in secrets {
        assert!(!logs.contains(secret), "a secret is in the logs");
        assert!(!events_text.contains(secret), "a secret is in the events");
        // Nor its wohome key (the first 16 characters).
        assert!(!logs.contains(&secret[..16]), "a wohome key is in the logs");
    }
}
