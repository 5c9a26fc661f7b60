//! Health check kind `wopan` and token refresh, end to end: a real manager on 127.0.0.1:0
//! whose pool checks and refreshes tokens against the Wopan emulator on 127.0.0.1:0.

use crate::common::TestServer;
use crate::wopan_common::*;
use serde_json::json;
use std::time::{SystemTime, UNIX_EPOCH};
use tokenlb_core::TokenId;
use tokenlb_manager::refresh::{self, RefreshError, Trigger};
use tokenlb_wopan::emulator::{DEMO_EXPIRED_TOKEN, DEMO_TOKENS};

fn rfc3339_in(secs: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    chrono::DateTime::from_timestamp(now + secs, 0)
        .unwrap()
        .to_rfc3339()
}

async fn state_of(s: &TestServer, id: &str) -> String {
    s.row(id).await["state"].as_str().unwrap_or("").to_string()
}

async fn has_event(s: &TestServer, id: &str, kind: &str) -> bool {
    events(s, id).await.iter().any(|e| e["kind"] == kind)
}

#[tokio::test]
async fn expired_token_is_marked_invalid_then_back_after_a_refresh() {
    let emu = emulator().await;
    let s = start(&emu, 0).await;
    let t = &DEMO_TOKENS[0];
    let id = add_refreshable(&s, t.access_token, t.refresh_token, "refreshable").await;
    let plain = s.add(DEMO_TOKENS[1].access_token, "plain").await;

    let ok = check(&s, &id).await;
    assert_eq!(
        (ok["ok"].as_bool(), ok["state"].as_str()),
        (Some(true), Some("active")),
        "{ok}"
    );

    emu.control(
        json!({"tokens": {t.access_token: "expired", DEMO_TOKENS[1].access_token: "expired"}}),
    )
    .await;
    // Without a refresh token: invalid, with the upstream's answer, and it stays so.
    let r = check(&s, &plain).await;
    assert_eq!(
        (
            r["ok"].as_bool(),
            r["outcome"].as_str(),
            r["state"].as_str()
        ),
        (Some(false), Some("auth"), Some("invalid")),
        "{r}"
    );
    assert!(r["message"].as_str().unwrap().contains("9999"), "{r}");
    // With one: the failing check marks it invalid, the refresh brings it back.
    let r = check(&s, &id).await;
    assert_eq!(
        (r["outcome"].as_str(), r["state"].as_str()),
        (Some("auth"), Some("invalid")),
        "{r}"
    );
    until("the refreshed token is active", || async {
        state_of(&s, &id).await == "active"
    })
    .await;
    until("a refreshed event", || has_event(&s, &id, "refreshed")).await;
    let evs = events(&s, &id).await;
    let invalid = evs
        .iter()
        .find(|e| e["to"] == "invalid")
        .expect("invalid event");
    assert!(
        invalid["error"].as_str().unwrap().contains("9999"),
        "{invalid}"
    );

    let (secret, refresh) = stored(&s, &id).await;
    assert_ne!(secret, t.access_token);
    assert_ne!(
        refresh.as_deref(),
        Some(t.refresh_token),
        "rotated refresh token stored"
    );
    emu.works(&secret)
        .await
        .expect("the new access token works");
    assert!(emu
        .works(t.access_token)
        .await
        .unwrap_err()
        .is_token_expired());
    let r = check(&s, &id).await;
    assert_eq!(r["ok"].as_bool(), Some(true), "{r}");
    assert_eq!(state_of(&s, &plain).await, "invalid");
    assert!(!has_event(&s, &plain, "refreshed").await);
}

#[tokio::test]
async fn deep_check_lists_the_root_and_rate_limits_cool() {
    let emu = emulator().await;
    let base = emu.base.clone();
    let s = TestServer::start_with(move |c| {
        wopan_pool(c, &base, 0);
        c.pools.get_mut("default").unwrap().health.wopan_deep = true;
    })
    .await;
    let id = s.add(DEMO_TOKENS[2].access_token, "deep").await;
    emu.control(json!({"reset_counts": true})).await;
    assert_eq!(check(&s, &id).await["ok"].as_bool(), Some(true));
    let st = emu.control(json!({})).await;
    assert_eq!(
        (
            st["calls"]["AppQueryUser"].as_u64(),
            st["calls"]["QueryAllFiles"].as_u64()
        ),
        (Some(1), Some(1)),
        "{st}"
    );

    emu.control(
        json!({"tokens": {DEMO_TOKENS[2].access_token: "rate_limited"}, "retry_after_s": 120}),
    )
    .await;
    let r = check(&s, &id).await;
    assert_eq!(
        (r["outcome"].as_str(), r["state"].as_str()),
        (Some("rate_limited"), Some("cooling")),
        "{r}"
    );
    // An outage is not the token's fault: no invalid, no cooling from one failed check.
    let other = s.add(DEMO_TOKENS[0].access_token, "other").await;
    emu.control(json!({"down": true})).await;
    let r = check(&s, &other).await;
    assert_eq!(
        (r["outcome"].as_str(), r["state"].as_str()),
        (Some("transient"), Some("active")),
        "{r}"
    );
}

#[tokio::test]
async fn a_token_is_refreshed_before_it_expires() {
    let emu = emulator().await;
    let s = start(&emu, 3600).await;
    let near = &DEMO_TOKENS[1];
    let far = &DEMO_TOKENS[2];
    let near_id = s
        .add_json(json!({"token": near.access_token, "name": "near", "refresh_token": near.refresh_token, "expires_at": rfc3339_in(600)}))
        .await;
    let far_id = s
        .add_json(json!({"token": far.access_token, "name": "far", "refresh_token": far.refresh_token, "expires_at": rfc3339_in(3 * 86_400)}))
        .await;
    let before = s.row(&near_id).await["expires_at"].clone();

    refresh::refresh_due(s.state.refresher()).await;
    until("the near token is refreshed", || {
        has_event(&s, &near_id, "refreshed")
    })
    .await;
    let row = s.row(&near_id).await;
    assert_eq!(row["state"], "active");
    assert_ne!(row["expires_at"], before, "a new expiry, a week ahead");
    let (secret, _) = stored(&s, &near_id).await;
    assert_ne!(secret, near.access_token);
    emu.works(&secret).await.expect("new token works");
    let ev = events(&s, &near_id).await;
    let refreshed: Vec<_> = ev.iter().filter(|e| e["kind"] == "refreshed").collect();
    assert_eq!(refreshed.len(), 1, "refreshed once: {ev:?}");
    assert!(refreshed[0]["reason"]
        .as_str()
        .unwrap()
        .contains("expires soon"));

    // Not yet due: neither in the due list nor refreshed by another pass.
    let due = refresh::due(s.state.refresher(), tokenlb_manager::state::now_ms());
    assert!(!due.iter().any(|(id, _)| id.as_str() == far_id), "{due:?}");
    refresh::refresh_due(s.state.refresher()).await;
    assert!(!has_event(&s, &far_id, "refreshed").await);
    assert_eq!(stored(&s, &far_id).await.0, far.access_token);
}

#[tokio::test]
async fn an_auth_report_refreshes_and_the_token_stays_in_service() {
    let emu = emulator().await;
    let s = start(&emu, 0).await;
    let t = &DEMO_TOKENS[2];
    let id = add_refreshable(&s, t.access_token, t.refresh_token, "reported").await;
    let lease = s.lease("").await;
    let lease: serde_json::Value = lease.json().await.unwrap();
    assert_eq!(lease["id"], id.as_str());
    let r = s
        .report(json!({"lease": lease["lease"], "outcome": "auth", "error": "Wopan answered 9999 系统异常"}))
        .await;
    assert_eq!(r.status(), 200);
    until("a refreshed event", || has_event(&s, &id, "refreshed")).await;
    until("active again", || async {
        state_of(&s, &id).await == "active"
    })
    .await;

    let (secret, _) = stored(&s, &id).await;
    assert_ne!(secret, t.access_token);
    emu.works(&secret)
        .await
        .expect("the new value works at the emulator");
    assert!(emu
        .works(t.access_token)
        .await
        .unwrap_err()
        .is_token_expired());
    let row = s.row(&id).await;
    assert_eq!(row["failure"], 1, "stats kept across the refresh: {row}");
    // The lookup by value follows the new secret.
    let r = s.report(json!({"token": secret, "success": true})).await;
    assert_eq!(r.status(), 200);
    let r = s
        .report(json!({"token": t.access_token, "success": true}))
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(s.row(&id).await["success"], 1);
    let dup = s
        .admin(s.post("/api/token/add"))
        .json(&json!({"token": secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), 409);
    let lease: serde_json::Value = s.lease("").await.json().await.unwrap();
    assert_eq!(lease["token"], secret.as_str());
}

#[tokio::test]
async fn a_refused_refresh_marks_the_token_invalid_with_the_upstreams_reason() {
    let emu = emulator().await;
    let s = start(&emu, 3600).await;
    // Rejected, then the refresh is refused.
    let dead = add_refreshable(&s, DEMO_EXPIRED_TOKEN.access_token, UNKNOWN_REFRESH, "dead").await;
    let r = check(&s, &dead).await;
    assert_eq!(r["state"], "invalid", "{r}");
    until("refresh_failed", || has_event(&s, &dead, "refresh_failed")).await;
    let ev = events(&s, &dead).await;
    let failed = ev.iter().find(|e| e["kind"] == "refresh_failed").unwrap();
    assert!(
        failed["reason"].as_str().unwrap().contains("8005"),
        "{failed}"
    );
    assert_eq!(state_of(&s, &dead).await, "invalid");
    assert!(!has_event(&s, &dead, "refreshed").await);

    // Active, refresh refused: invalid, the upstream's answer in the event. (Not yet due by
    // the pool's window, so only this call refreshes it.)
    let t = &DEMO_TOKENS[0];
    let id = s
        .add_json(json!({"token": t.access_token, "name": "soon", "refresh_token": UNKNOWN_REFRESH, "expires_at": rfc3339_in(3 * 86_400)}))
        .await;
    let e = refresh::refresh_now(s.state.refresher(), &TokenId(id.clone()), Trigger::Expiring)
        .await
        .unwrap_err();
    assert!(matches!(e, RefreshError::Refused(_)), "{e}");
    assert!(e.to_string().contains("8005"), "{e}");
    let row = s.row(&id).await;
    assert_eq!(row["state"], "invalid", "{row}");
    until("invalid event", || async {
        events(&s, &id).await.iter().any(|e| {
            e["to"] == "invalid" && e["error"].as_str().is_some_and(|m| m.contains("8005"))
        })
    })
    .await;
    // Waits for its retry time: the background pass does not hammer the upstream.
    assert!(
        !refresh::due(s.state.refresher(), tokenlb_manager::state::now_ms())
            .iter()
            .any(|(d, _)| d.as_str() == id)
    );
}

#[tokio::test]
async fn concurrent_triggers_refresh_once() {
    let emu = emulator().await;
    let s = start(&emu, 0).await;
    let t = &DEMO_TOKENS[1];
    let id = TokenId(add_refreshable(&s, t.access_token, t.refresh_token, "once").await);
    let (a, b) = tokio::join!(
        refresh::refresh_now(s.state.refresher(), &id, Trigger::Manual),
        refresh::refresh_now(s.state.refresher(), &id, Trigger::Manual)
    );
    let oks = [a.is_ok(), b.is_ok()].iter().filter(|x| **x).count();
    let busy = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Err(RefreshError::InProgress)))
        .count();
    assert_eq!((oks, busy), (1, 1), "{a:?} {b:?}");
    let st = emu.control(json!({})).await;
    assert_eq!(st["calls"]["AppRefreshToken"].as_u64(), Some(1), "{st}");
    // A token of a pool that is not `wopan`, or without a refresh token, is not refreshed.
    let plain = TokenId(s.add(DEMO_TOKENS[0].access_token, "plain").await);
    assert!(matches!(
        refresh::refresh_now(s.state.refresher(), &plain, Trigger::Manual).await,
        Err(RefreshError::NoRefreshToken)
    ));
}

#[tokio::test]
async fn the_rotated_pair_survives_a_restart_with_its_stats() {
    let emu = emulator().await;
    let base = emu.base.clone();
    let s = start(&emu, 0).await;
    let t = &DEMO_TOKENS[0];
    let id = add_refreshable(&s, t.access_token, t.refresh_token, "durable").await;
    for _ in 0..3 {
        let r = s.report(json!({"id": id, "success": true})).await;
        assert_eq!(r.status(), 200);
    }
    refresh::refresh_now(s.state.refresher(), &TokenId(id.clone()), Trigger::Manual)
        .await
        .expect("refresh");
    let (secret, refresh_secret) = stored(&s, &id).await;
    // A graceful stop writes the stats it still holds.
    let dir = s.stop().await;

    let mut config = crate::common::test_config(&dir);
    wopan_pool(&mut config, &base, 0);
    let s = TestServer::start_in(dir, config).await;
    let row = s.row(&id).await;
    assert_eq!(
        (row["state"].as_str(), row["success"].as_u64()),
        (Some("active"), Some(3)),
        "{row}"
    );
    assert_eq!(row["has_refresh_token"], true);
    assert_eq!(stored(&s, &id).await, (secret.clone(), refresh_secret));
    // The stored refresh token is the rotated one: it refreshes again (the old one is spent).
    let again = refresh::refresh_now(s.state.refresher(), &TokenId(id.clone()), Trigger::Manual)
        .await
        .expect("refresh with the stored rotated refresh token");
    assert!(again.rotated);
    assert_ne!(stored(&s, &id).await.0, secret);
}

#[tokio::test]
async fn a_refresh_token_rotated_elsewhere_is_read_again_from_the_store() {
    let emu = emulator().await;
    let s = start(&emu, 0).await;
    let t = &DEMO_TOKENS[2];
    let id = TokenId(add_refreshable(&s, t.access_token, t.refresh_token, "shared").await);
    refresh::refresh_now(s.state.refresher(), &id, Trigger::Manual)
        .await
        .expect("first refresh");
    // Another manager sharing the store refreshes the token: the pair this one remembers is
    // spent at the upstream.
    let (_, remembered) = stored(&s, id.as_str()).await;
    let pair = emu
        .client()
        .refresh_token(&tokenlb_core::Secret::new(remembered.unwrap()))
        .await
        .expect("refresh elsewhere");
    let update = tokenlb_store::TokenUpdate {
        secret: Some(pair.access_token.clone()),
        refresh_secret: Some(Some(pair.refresh_token.clone())),
        ..Default::default()
    };
    s.state
        .service()
        .store()
        .update_token(&id, &update)
        .await
        .unwrap();

    let done = refresh::refresh_now(s.state.refresher(), &id, Trigger::Manual)
        .await
        .expect("the stored refresh token is used after the remembered one is refused");
    assert!(done.rotated);
    assert_eq!(state_of(&s, id.as_str()).await, "active");
    let (secret, _) = stored(&s, id.as_str()).await;
    emu.works(&secret).await.expect("newest token works");
    assert!(!has_event(&s, id.as_str(), "refresh_failed").await);
}

#[tokio::test]
async fn an_expired_token_is_refreshed_by_the_background_tasks() {
    let emu = emulator().await;
    let s = start(&emu, 0).await;
    let t = &DEMO_TOKENS[0];
    let id = s
        .add_json(json!({"token": t.access_token, "name": "lapsing", "refresh_token": t.refresh_token, "expires_at": rfc3339_in(1)}))
        .await;
    // The ticker expires it, the state change starts the refresh: no call from the test.
    until("expired, then refreshed", || async {
        let ev = events(&s, &id).await;
        ev.iter().any(|e| e["to"] == "expired") && ev.iter().any(|e| e["kind"] == "refreshed")
    })
    .await;
    until("active", || async { state_of(&s, &id).await == "active" }).await;
    let (secret, _) = stored(&s, &id).await;
    emu.works(&secret).await.expect("the refreshed token works");
}
