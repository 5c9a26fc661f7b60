//! Every error mapping, end to end: the emulator's injected faults and tiny fakes that send
//! garbage, the wrong envelope, an endless body or nothing at all. Each assertion checks both
//! the typed error and its outcome class, and that no token appears in the message.

use crate::common::{client_for, demo, fake, raw_tcp, start, start_demo};
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::time::Duration;
use tokenlb_core::{OutcomeClass, Secret};
use tokenlb_wopan::emulator::fixture::{ExpiresAt, FixtureToken};
use tokenlb_wopan::emulator::{demo_fixture, EmulatorConfig, DEMO_TOKENS};
use tokenlb_wopan::{ClientConfig, Space, WopanClient, WopanError};

/// The error's message never contains a token's value.
fn assert_no_secret(e: &WopanError) {
    let text = format!("{e} {e:?}");
    for t in DEMO_TOKENS {
        assert!(!text.contains(t.access_token), "{text}");
        assert!(!text.contains(&t.access_token[..16]), "{text}");
        assert!(!text.contains(t.refresh_token), "{text}");
    }
}

#[tokio::test]
async fn expired_token_gives_9999_then_1001_when_selected() {
    let emu = start_demo().await;
    let c = emu.client();
    let t = demo(0);
    emu.control(json!({"tokens": {DEMO_TOKENS[0].access_token: "expired"}}))
        .await;
    for e in [
        c.query_user(&t).await.unwrap_err(),
        c.list_page(&t, &Space::Personal, "0", 0, 10)
            .await
            .unwrap_err(),
    ] {
        assert_eq!(e.api_code(), Some("9999"));
        assert!(e.is_token_expired());
        assert_eq!(e.outcome_class(), OutcomeClass::Auth);
        assert_no_secret(&e);
    }
    emu.control(json!({"invalid_code": 1001})).await;
    let e = c.download_url(&t, "whatever").await.unwrap_err();
    assert_eq!(e.api_code(), Some("1001"));
    assert_eq!(e.outcome_class(), OutcomeClass::Auth);
    // Other tokens are unaffected; "ok" restores the first.
    c.query_user(&demo(1)).await.unwrap();
    emu.control(json!({"tokens": {DEMO_TOKENS[0].access_token: "ok"}}))
        .await;
    c.query_user(&t).await.unwrap();
}

#[tokio::test]
async fn unknown_and_time_expired_tokens_are_auth() {
    let mut fixture = demo_fixture();
    fixture.tokens.push(FixtureToken {
        access_token: "0ld00000-7e57-4a1b-9c2d-0000000000aa".into(),
        refresh_token: None,
        expires_at: Some(ExpiresAt::Rfc3339("2020-01-01T00:00:00Z".into())),
        ttl_s: None,
        family_id: None,
        user: None,
    });
    let emu = start(EmulatorConfig {
        fixture,
        invalid_code: 1001,
        ..EmulatorConfig::default()
    })
    .await;
    let c = emu.client();
    let e = c
        .query_user(&Secret::new("0ld00000-7e57-4a1b-9c2d-0000000000aa"))
        .await
        .unwrap_err();
    assert_eq!(e.api_code(), Some("1001"));
    let e = c
        .list_page(
            &Secret::new("ffffffff-ffff-4fff-8fff-ffffffffffff"),
            &Space::Personal,
            "0",
            0,
            1,
        )
        .await
        .unwrap_err();
    assert_eq!(e.api_code(), Some("1001"));
    assert_eq!(e.outcome_class(), OutcomeClass::Auth);
}

#[tokio::test]
async fn rate_limited_and_quota_tokens() {
    let emu = start_demo().await;
    let c = emu.client();
    emu.control(json!({"retry_after_s": 7, "tokens": {
        DEMO_TOKENS[0].access_token: "rate_limited",
        DEMO_TOKENS[1].access_token: "quota"}}))
        .await;
    let e = c
        .list_page(&demo(0), &Space::Personal, "0", 0, 10)
        .await
        .unwrap_err();
    assert!(matches!(e, WopanError::Http { status: 429, .. }), "{e:?}");
    assert_eq!(e.outcome_class(), OutcomeClass::RateLimited);
    assert_eq!(e.retry_after_s(), Some(7));
    emu.control(json!({"rate_limit_status": 503})).await;
    let e = c.query_user(&demo(0)).await.unwrap_err();
    assert!(matches!(e, WopanError::Http { status: 503, .. }), "{e:?}");
    assert_eq!(e.outcome_class(), OutcomeClass::RateLimited);
    assert_eq!(e.retry_after_s(), Some(7));
    let e = c.query_user(&demo(1)).await.unwrap_err();
    assert!(matches!(e, WopanError::Http { status: 509, .. }), "{e:?}");
    assert_eq!(e.outcome_class(), OutcomeClass::QuotaExhausted);
    assert_no_secret(&e);
}

#[tokio::test]
async fn downloads_obey_injected_limits() {
    let emu = start_demo().await;
    let c = emu.client();
    let t = demo(2);
    let file = c
        .resolve_path(&t, &Space::Personal, "welcome.txt")
        .await
        .unwrap();
    let url = c.download_url(&t, &file.fid).await.unwrap();
    let http = reqwest::Client::new();
    emu.control(json!({"downloads": "rate_limited"})).await;
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    emu.control(json!({"downloads": "quota"})).await;
    assert_eq!(http.get(&url).send().await.unwrap().status(), 509);
    emu.control(json!({"downloads": "ok", "tokens": {DEMO_TOKENS[2].access_token: "rate_limited"}, "rate_limit_status": 503})).await;
    assert_eq!(http.get(&url).send().await.unwrap().status(), 503);
    emu.control(json!({"tokens": {DEMO_TOKENS[2].access_token: "ok"}}))
        .await;
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
    emu.control(json!({"down": true})).await;
    assert_eq!(http.get(&url).send().await.unwrap().status(), 502);
    emu.control(json!({"down": false})).await;
    assert!(emu.calls("download").await >= 4);
}

#[tokio::test]
async fn down_and_error_rate() {
    let emu = start_demo().await;
    let c = emu.client();
    emu.control(json!({"down": true})).await;
    let e = c.query_user(&demo(0)).await.unwrap_err();
    assert!(
        matches!(
            e,
            WopanError::Http {
                status: 502,
                retry_after_s: None,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.outcome_class(), OutcomeClass::Transient);
    emu.control(json!({"down": false, "error_rate": 1.0})).await;
    let e = c
        .list_page(&demo(0), &Space::Personal, "0", 0, 1)
        .await
        .unwrap_err();
    assert!(matches!(e, WopanError::Http { status: 500, .. }), "{e:?}");
    assert_eq!(e.outcome_class(), OutcomeClass::Transient);
    emu.control(json!({"error_rate": 0.0})).await;
    c.query_user(&demo(0)).await.unwrap();
}

#[tokio::test]
async fn latency_above_the_timeout_is_a_transient_timeout() {
    let emu = start_demo().await;
    emu.control(json!({"latency_ms": 5000})).await;
    let c = client_for(&emu.base, Duration::from_millis(300));
    let bounded = tokio::time::timeout(Duration::from_secs(30), c.query_user(&demo(0))).await;
    let e = bounded.expect("the client gave up on its own").unwrap_err();
    assert!(matches!(e, WopanError::Timeout { .. }), "{e:?}");
    assert_eq!(e.outcome_class(), OutcomeClass::Transient);
}

#[tokio::test]
async fn garbage_body_is_transient() {
    let base = fake(|| "<html><body>captive portal</body></html>".into_response()).await;
    let e = client_for(&base, Duration::from_secs(5))
        .query_user(&demo(0))
        .await
        .unwrap_err();
    assert!(matches!(e, WopanError::Malformed { .. }), "{e:?}");
    assert_eq!(e.outcome_class(), OutcomeClass::Transient);
    assert_no_secret(&e);
}

#[tokio::test]
async fn wrong_envelope_is_transient() {
    fn wrong() -> Response {
        axum::Json(json!({"code": 0, "data": {"files": []}})).into_response()
    }
    let base = fake(wrong).await;
    let e = client_for(&base, Duration::from_secs(5))
        .list_page(&demo(0), &Space::Personal, "0", 0, 1)
        .await
        .unwrap_err();
    assert!(matches!(e, WopanError::Malformed { .. }), "{e:?}");
    assert_eq!(e.outcome_class(), OutcomeClass::Transient);
    // A gateway failure inside a 200 and a DATA that does not decrypt are transient too.
    fn gateway() -> Response {
        axum::Json(json!({"STATUS": "500", "MSG": "服务调用失败", "LOGID": "x"})).into_response()
    }
    let e = client_for(&fake(gateway).await, Duration::from_secs(5))
        .query_user(&demo(0))
        .await
        .unwrap_err();
    assert!(matches!(e, WopanError::Gateway { .. }), "{e:?}");
    assert_eq!(e.outcome_class(), OutcomeClass::Transient);
    fn undecryptable() -> Response {
        axum::Json(json!({"STATUS": "200", "MSG": "", "LOGID": "x",
            "RSP": {"RSP_CODE": "0000", "RSP_DESC": "成功", "DATA": "bm90IGNpcGhlcg=="}}))
        .into_response()
    }
    let e = client_for(&fake(undecryptable).await, Duration::from_secs(5))
        .family_info(&demo(0))
        .await
        .unwrap_err();
    assert!(matches!(e, WopanError::Malformed { .. }), "{e:?}");
    assert_eq!(e.outcome_class(), OutcomeClass::Transient);
}

#[tokio::test]
async fn huge_body_is_refused_without_buffering_it() {
    fn endless() -> Response {
        let chunk = axum::body::Bytes::from(vec![b' '; 64 * 1024]);
        let stream = futures::stream::repeat(Ok::<_, std::convert::Infallible>(chunk)).take(10_000);
        Response::new(Body::from_stream(stream))
    }
    use futures::StreamExt;
    let base = fake(endless).await;
    let c = WopanClient::new(ClientConfig {
        base_url: base,
        max_response_bytes: 1024 * 1024,
        timeout: Duration::from_secs(20),
        ..ClientConfig::default()
    })
    .unwrap();
    let e = c.query_user(&demo(0)).await.unwrap_err();
    assert!(
        matches!(
            e,
            WopanError::TooLarge {
                limit: 1_048_576,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.outcome_class(), OutcomeClass::Transient);
    fn declared() -> Response {
        let mut r = (StatusCode::OK, vec![b'x'; 2 * 1024 * 1024]).into_response();
        r.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        r
    }
    let c2 = WopanClient::new(ClientConfig {
        base_url: fake(declared).await,
        max_response_bytes: 1024 * 1024,
        ..ClientConfig::default()
    })
    .unwrap();
    let e = c2.query_user(&demo(0)).await.unwrap_err();
    assert!(matches!(e, WopanError::TooLarge { .. }), "{e:?}");
}

#[tokio::test]
async fn dropped_connections_and_raw_garbage_are_transient() {
    let closed = raw_tcp(b"").await;
    let e = client_for(&closed, Duration::from_secs(5))
        .query_user(&demo(0))
        .await
        .unwrap_err();
    assert!(matches!(e, WopanError::Network { .. }), "{e:?}");
    assert_eq!(e.outcome_class(), OutcomeClass::Transient);
    let junk = raw_tcp(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n\x00\x01\x02garbag").await;
    let e = client_for(&junk, Duration::from_secs(5))
        .query_user(&demo(0))
        .await
        .unwrap_err();
    assert!(matches!(e, WopanError::Malformed { .. }), "{e:?}");
    assert_eq!(e.outcome_class(), OutcomeClass::Transient);
    // Nothing listening at all.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let e = client_for(&format!("http://{addr}"), Duration::from_secs(5))
        .query_user(&demo(0))
        .await
        .unwrap_err();
    assert!(matches!(e, WopanError::Network { .. }), "{e:?}");
    assert_eq!(e.outcome_class(), OutcomeClass::Transient);
}

#[tokio::test]
async fn short_token_is_a_clear_auth_error_before_any_call() {
    let emu = start_demo().await;
    let e = emu
        .client()
        .list_page(&Secret::new("short-token"), &Space::Personal, "0", 0, 1)
        .await
        .unwrap_err();
    assert_eq!(e, WopanError::TokenTooShort { len: 11 });
    assert_eq!(e.outcome_class(), OutcomeClass::Auth);
    assert!(!e.to_string().contains("short-token"));
    assert_eq!(emu.calls("QueryAllFiles").await, 0);
    let e = emu
        .client()
        .query_user(&Secret::new("bad\ntoken-0123456789"))
        .await
        .unwrap_err();
    assert_eq!(e.outcome_class(), OutcomeClass::Auth);
}

#[test]
fn bad_base_urls_are_refused() {
    for base in ["", "ftp://x", "not a url", "http://"] {
        let e = WopanClient::new(ClientConfig {
            base_url: base.into(),
            ..ClientConfig::default()
        })
        .unwrap_err();
        assert_eq!(e.outcome_class(), OutcomeClass::ClientError, "{base}");
    }
}
