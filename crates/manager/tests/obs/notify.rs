//! Webhooks against a receiver on loopback: a burst becomes one signed delivery, a 500 is
//! retried with the same delivery id, shutdown drains what is pending, bodies and logs never
//! carry a token, and bad `[[notify]]` settings are clear start-up errors.

use crate::common::{test_config, TestServer};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokenlb_core::Secret;
use tokenlb_manager::config::{Config, NotifyConfig};
use tokenlb_test_support::logs::Logs;

const HOOK_SECRET: &str = "whsec-0123456789abcdef";
const TOKENS: [&str; 3] = [
    "sk-notify-secret-111111111111",
    "sk-notify-secret-222222222222",
    "sk-notify-secret-333333333333",
];

/// What the receiver saw, and how many of the first requests it answers 500.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    fail_first: Arc<Mutex<usize>>,
    /// How long each answer takes.
    delay: Arc<Mutex<Duration>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    r.seen.lock().unwrap().push((headers, body));
    let delay = *r.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    let mut fail = r.fail_first.lock().unwrap();
    if *fail > 0 {
        *fail -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::NO_CONTENT
}

async fn start_receiver(fail_first: usize) -> (Receiver, String) {
    start_slow_receiver(fail_first, Duration::ZERO).await
}

async fn start_slow_receiver(fail_first: usize, delay: Duration) -> (Receiver, String) {
    let r = Receiver::default();
    *r.delay.lock().unwrap() = delay;
    *r.fail_first.lock().unwrap() = fail_first;
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, url)
}

async fn wait_for(r: &Receiver, n: usize, within: Duration) {
    let end = tokio::time::Instant::now() + within;
    while r.seen.lock().unwrap().len() < n {
        assert!(
            tokio::time::Instant::now() < end,
            "the receiver saw {} requests, expected {n}",
            r.seen.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn target(url: &str) -> NotifyConfig {
    let mut t = NotifyConfig::to(url);
    t.secret = Some(Secret::new(HOOK_SECRET));
    t.coalesce_ms = 500;
    t
}

/// Adds the three tokens to pool `np` and has the upstream reject every one: three
/// `token_invalid` and one `pool_unavailable`.
async fn invalidate_all(s: &TestServer) {
    let mut ids = Vec::new();
    for (i, t) in TOKENS.iter().enumerate() {
        ids.push(
            s.add_json(json!({ "token": t, "name": format!("n{i}"), "pool": "np" }))
                .await,
        );
    }
    for id in &ids {
        let r = s
            .report(json!({ "id": id, "outcome": "auth", "status": 401 }))
            .await;
        assert!(r.status().is_success());
    }
}

fn verify(headers: &HeaderMap, body: &str) {
    let ts = headers["x-tokenlb-timestamp"].to_str().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now - ts.parse::<i64>().unwrap()).abs() < 60,
        "fresh timestamp"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(HOOK_SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}.{body}").as_bytes());
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(headers["x-tokenlb-signature"].to_str().unwrap(), want);
    assert_eq!(headers["content-type"], "application/json");
}

fn assert_no_secret(text: &str) {
    for t in TOKENS.iter().chain([&HOOK_SECRET]) {
        assert!(!text.contains(t), "a secret in {text}");
    }
    assert!(!text.contains("sk-notify"), "a token prefix in {text}");
}

#[tokio::test]
async fn a_burst_is_one_signed_delivery_retried_after_a_500() {
    let logs = Logs::global(tracing::Level::TRACE);
    let (r, url) = start_receiver(1).await;
    let s = TestServer::start_with(|c| c.notify = vec![target(&url)]).await;
    invalidate_all(&s).await;
    // The first attempt answers 500; the retry comes after the 1 s backoff.
    wait_for(&r, 2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let seen = r.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one delivery, attempted twice: {seen:?}");
    let (h1, b1) = &seen[0];
    let (h2, b2) = &seen[1];
    assert_eq!(h1["x-tokenlb-delivery"], h2["x-tokenlb-delivery"]);
    assert_eq!(b1, b2);
    verify(h1, b1);
    verify(h2, b2);
    let body: Value = serde_json::from_str(b2).unwrap();
    assert_eq!(body["source"], "tokenlb");
    assert_eq!(body["delivery"], h2["x-tokenlb-delivery"].to_str().unwrap());
    assert_eq!(body["count"], 4, "{body}");
    assert_eq!(body["counts"]["token_invalid"], 3);
    assert_eq!(body["counts"]["pool_unavailable"], 1);
    let notices = body["notices"].as_array().unwrap();
    let invalid: Vec<_> = notices
        .iter()
        .filter(|n| n["event"] == "token_invalid")
        .collect();
    assert_eq!(invalid.len(), 3);
    for n in &invalid {
        assert_eq!(n["pool"], "np");
        assert_eq!(n["to"], "invalid");
        assert!(n["token_id"].as_str().unwrap().starts_with("t_"), "{n}");
        let keys: Vec<_> = n.as_object().unwrap().keys().cloned().collect();
        assert!(
            !keys.iter().any(|k| k == "token" || k == "secret"),
            "{keys:?}"
        );
    }
    for (_, b) in &seen {
        assert_no_secret(b);
    }
    let text = tokenlb_test_support::metrics::scrape(&s.http, &s.url).await;
    assert_eq!(
        tokenlb_test_support::metrics::value(
            &text,
            "tokenlb_notify_deliveries_total{result=\"delivered\"}"
        ),
        Some(1.0)
    );
    s.stop().await;
    let logs = logs.text();
    assert!(logs.contains("notify[0]"), "the retry was logged: {logs}");
    for t in TOKENS.iter().chain([&HOOK_SECRET]) {
        assert!(!logs.contains(t), "a secret in the logs");
    }
    assert!(!logs.contains(&url), "the webhook URL in the logs");
}

#[tokio::test]
async fn shutdown_delivers_what_is_still_coalescing() {
    let (r, url) = start_receiver(0).await;
    let s = TestServer::start_with(|c| {
        let mut t = target(&url);
        t.coalesce_ms = 60_000; // would wait a minute; shutdown must not
        t.events = vec![tokenlb_manager::config::NotifyEvent::TokenInvalid];
        c.notify = vec![t];
    })
    .await;
    invalidate_all(&s).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(r.seen.lock().unwrap().is_empty(), "still coalescing");
    s.stop().await;
    wait_for(&r, 1, Duration::from_secs(5)).await;
    let seen = r.seen.lock().unwrap().clone();
    let body: Value = serde_json::from_str(&seen[0].1).unwrap();
    assert_eq!(
        body["count"], 3,
        "the filter keeps token_invalid only: {body}"
    );
    assert!(body["counts"].get("pool_unavailable").is_none());
    verify(&seen[0].0, &seen[0].1);
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_and_counts_it() {
    let (r, url) = start_slow_receiver(0, Duration::from_millis(1500)).await;
    let s = TestServer::start_with(|c| {
        let mut t = target(&url);
        t.coalesce_ms = 0; // every notice its own delivery
        t.queue = 1;
        c.notify = vec![t];
    })
    .await;
    // Three deliveries: two token_invalid, then the third with the pool_unavailable it
    // caused (one event, so one window even at coalesce_ms = 0).
    invalidate_all(&s).await;
    let metric = "tokenlb_notify_dropped_total";
    let end = tokio::time::Instant::now() + Duration::from_secs(15);
    let (dropped, delivered) = loop {
        let text = tokenlb_test_support::metrics::scrape(&s.http, &s.url).await;
        let get = |k: &str| tokenlb_test_support::metrics::value(&text, k).unwrap_or(0.0);
        let (d, ok) = (
            get(metric),
            get("tokenlb_notify_deliveries_total{result=\"delivered\"}"),
        );
        if d + ok >= 3.0 {
            break (d, ok);
        }
        assert!(
            tokio::time::Instant::now() < end,
            "dropped {d}, delivered {ok}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        dropped >= 1.0,
        "a queue of one under three deliveries drops: {dropped}"
    );
    assert_eq!(dropped + delivered, 3.0);
    assert_eq!(r.seen.lock().unwrap().len() as f64, delivered);
    s.stop().await;
}

#[tokio::test]
async fn bad_notify_settings_are_clear_start_up_errors() {
    let path = Path::new("tokenlb.toml");
    let err = |text: &str| {
        Config::from_toml_str(text, path)
            .expect_err("refused")
            .to_string()
    };
    let e = err("[[notify]]\nurl = \"not a url\"\n");
    assert!(
        e.contains("`notify[0].url`") && e.contains("not a valid URL"),
        "{e}"
    );
    assert!(e.contains("tokenlb.toml"), "{e}");
    let e = err("[[notify]]\nurl = \"ftp://example.com/x\"\n");
    assert!(
        e.contains("`notify[0].url` must be an http:// or https:// URL"),
        "{e}"
    );
    let e =
        err("[[notify]]\nurl = \"https://example.com/secret-path\"\nsecret = \"short-secret\"\n");
    assert!(e.contains("`notify[0].secret` must be at least 16"), "{e}");
    assert!(
        !e.contains("short-secret") && !e.contains("secret-path"),
        "{e}"
    );
    let e = err("[[notify]]\nurl = \"https://e.com/\"\n[[notify]]\nurl = \"https://e.com/\"\nmax_attempts = 0\n");
    assert!(
        e.contains("`notify[1].max_attempts` must be between 1 and 20"),
        "{e}"
    );
    let e = err("[[notify]]\nurl = \"https://e.com/\"\nevents = [\"token_gone\"]\n");
    assert!(
        e.contains("line 3") && e.contains("token_gone") && e.contains("token_invalid"),
        "{e}"
    );
    let e = err("[[notify]]\nurl = \"https://e.com/\"\nevents = []\n");
    assert!(
        e.contains("`notify[0].events` must name at least one"),
        "{e}"
    );
    let e = err("[[notify]]\nsecret = \"0123456789abcdef0\"\n");
    assert!(e.contains("url"), "{e}");

    // `config check` shows the target without its path, query or secret.
    let ok = Config::from_toml_str(
        "[[notify]]\nurl = \"https://hooks.example.com/T000/B000/XXXX?k=v\"\nsecret = \"0123456789abcdef-x\"\n",
        path,
    )
    .expect("valid");
    let shown = ok.to_masked_toml();
    assert!(shown.contains("https://hooks.example.com/…"), "{shown}");
    assert!(
        !shown.contains("XXXX") && !shown.contains("0123456789abcdef-x"),
        "{shown}"
    );

    // The manager refuses it at start too (`Config::load` is what the binary runs).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokenlb.toml");
    std::fs::write(&file, "[[notify]]\nurl = \"nope\"\n").unwrap();
    let env: std::collections::BTreeMap<String, String> = Default::default();
    let e = Config::load(
        &tokenlb_manager::config::ConfigFile::Explicit(file),
        &env,
        &Default::default(),
    )
    .expect_err("refused")
    .to_string();
    assert!(e.contains("`notify[0].url`"), "{e}");
    let _ = test_config(&dir);
}

#[tokio::test]
async fn a_refused_refresh_is_notified_without_the_tokens() {
    use tokenlb_core::TokenId;
    use tokenlb_manager::refresh::{self, RefreshError, Trigger};
    use tokenlb_wopan::emulator::DEMO_TOKENS;
    let emu = crate::wopan_common::emulator().await;
    let (r, url) = start_receiver(0).await;
    let base = emu.base.clone();
    let s = TestServer::start_with(move |c| {
        crate::wopan_common::wopan_pool(c, &base, 3600);
        let mut t = target(&url);
        t.coalesce_ms = 300;
        c.notify = vec![t];
    })
    .await;
    let access = DEMO_TOKENS[0].access_token;
    let refresh_token = crate::wopan_common::UNKNOWN_REFRESH;
    let in_3d = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    let id = s
        .add_json(json!({"token": access, "name": "soon", "refresh_token": refresh_token, "expires_at": in_3d}))
        .await;
    let e = refresh::refresh_now(s.state.refresher(), &TokenId(id.clone()), Trigger::Expiring)
        .await
        .unwrap_err();
    assert!(matches!(e, RefreshError::Refused(_)), "{e}");
    wait_for(&r, 1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = r.seen.lock().unwrap().clone();
    let mut events = Vec::new();
    for (h, b) in &seen {
        verify(h, b);
        assert!(
            !b.contains(access) && !b.contains(refresh_token),
            "a token in {b}"
        );
        let body: Value = serde_json::from_str(b).unwrap();
        for n in body["notices"].as_array().unwrap() {
            if n["event"] != "pool_unavailable" {
                assert_eq!(n["token_id"], id.as_str());
            }
            events.push(n["event"].as_str().unwrap().to_string());
        }
    }
    events.sort();
    // The refusal, and the token it made invalid (the pool, whose only token it was, is
    // left with none eligible).
    assert_eq!(
        events,
        ["pool_unavailable", "refresh_refused", "token_invalid"],
        "{seen:?}"
    );
    s.stop().await;
}
