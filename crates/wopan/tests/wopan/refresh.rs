//! Token refresh against the emulator: a new pair, rotation (or not), the old access token
//! dying, dead refresh tokens answering 8005, and the demo's expired token coming back.

use crate::common::{demo, demo_refresh, start, start_demo};
use serde_json::json;
use tokenlb_core::{OutcomeClass, Secret};
use tokenlb_wopan::emulator::{EmulatorConfig, DEMO_EXPIRED_TOKEN, DEMO_TOKENS};
use tokenlb_wopan::Space;

#[tokio::test]
async fn refresh_issues_a_new_pair_and_rotates() {
    let emu = start_demo().await;
    let c = emu.client();
    let pair = c.refresh_token(&demo_refresh(0)).await.unwrap();
    assert_ne!(pair.access_token, demo(0));
    assert_ne!(pair.refresh_token, demo_refresh(0), "rotated by default");
    assert_eq!(pair.access_token.len(), 36, "UUID format");
    assert_eq!(pair.expires_in_s, 604_799);
    assert!(pair.expires_at > 604_799_000);
    // The new token works on both channels (its own wohome key).
    c.query_user(&pair.access_token).await.unwrap();
    c.list_page(&pair.access_token, &Space::Personal, "0", 0, 1)
        .await
        .unwrap();
    // The old access token and the old refresh token are dead.
    let e = c.query_user(&demo(0)).await.unwrap_err();
    assert!(e.is_token_expired());
    let e = c.refresh_token(&demo_refresh(0)).await.unwrap_err();
    assert_eq!(e.api_code(), Some("8005"));
    assert_eq!(e.outcome_class(), OutcomeClass::Auth);
    assert!(!e.is_token_expired());
    // The rotated refresh token works once more.
    let again = c.refresh_token(&pair.refresh_token).await.unwrap();
    c.query_user(&again.access_token).await.unwrap();
    // State shows tokens masked only.
    let state = emu.state().await.to_string();
    assert!(!state.contains(again.access_token.expose()));
    assert!(!state.contains(again.refresh_token.expose()));
    assert!(state.contains(&again.access_token.masked()));
}

#[tokio::test]
async fn refresh_without_rotation_keeps_the_refresh_token() {
    let emu = start(EmulatorConfig {
        rotate_refresh: false,
        token_ttl_s: 3600,
        ..EmulatorConfig::default()
    })
    .await;
    let c = emu.client();
    let first = c.refresh_token(&demo_refresh(1)).await.unwrap();
    assert_eq!(first.refresh_token, demo_refresh(1));
    assert_eq!(first.expires_in_s, 3600);
    let second = c.refresh_token(&demo_refresh(1)).await.unwrap();
    assert_ne!(second.access_token, first.access_token);
    assert!(c
        .query_user(&first.access_token)
        .await
        .unwrap_err()
        .is_token_expired());
    c.query_user(&second.access_token).await.unwrap();
    // Rotation can be switched on at run time.
    emu.control(json!({"rotate_refresh": true})).await;
    let third = c.refresh_token(&demo_refresh(1)).await.unwrap();
    assert_ne!(third.refresh_token, demo_refresh(1));
}

#[tokio::test]
async fn unknown_refresh_token_is_8005() {
    let emu = start_demo().await;
    let e = emu
        .client()
        .refresh_token(&Secret::new("00000000-0000-4000-8000-000000000000"))
        .await
        .unwrap_err();
    assert_eq!(e.api_code(), Some("8005"));
    assert_eq!(e.outcome_class(), OutcomeClass::Auth);
    assert!(!e.to_string().contains("00000000-0000-4000"));
}

#[tokio::test]
async fn expired_demo_token_comes_back_after_refresh() {
    let emu = start_demo().await;
    let c = emu.client();
    let old = Secret::new(DEMO_EXPIRED_TOKEN.access_token);
    assert!(c.check_light(&old).await.unwrap_err().is_token_expired());
    let pair = c
        .refresh_token(&Secret::new(DEMO_EXPIRED_TOKEN.refresh_token))
        .await
        .unwrap();
    c.check_deep(&pair.access_token, &Space::Personal)
        .await
        .unwrap();
    // A token expired by control is also revived by a refresh.
    emu.control(json!({"tokens": {DEMO_TOKENS[2].access_token: "expired"}}))
        .await;
    assert!(c.check_light(&demo(2)).await.is_err());
    let pair = c.refresh_token(&demo_refresh(2)).await.unwrap();
    c.check_light(&pair.access_token).await.unwrap();
}
