//! HTTP health checks against a fake upstream on 127.0.0.1:0.

use crate::common::{error_code, TestServer};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokenlb_manager::config::HealthKind;
use tokio::sync::Semaphore;

const GOOD: &str = "good-token-aaaaaaaaaaaa";
const BAD: &str = "bad-token-bbbbbbbbbbbbb";

/// The fake upstream: accepts the tokens in `valid`; `gate` holds probes while closed.
#[derive(Clone)]
struct Upstream {
    valid: Arc<Mutex<HashSet<String>>>,
    gate: Arc<Semaphore>,
    seen_headers: Arc<Mutex<Vec<String>>>,
}

async fn probe(State(u): State<Upstream>, headers: HeaderMap) -> StatusCode {
    let value = headers
        .get("x-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    u.seen_headers.lock().unwrap().push(value.clone());
    let _permit = u.gate.acquire().await;
    let token = value.strip_prefix("tok ").unwrap_or("");
    if u.valid.lock().unwrap().contains(token) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::UNAUTHORIZED
    }
}

async fn upstream() -> (String, Upstream) {
    let u = Upstream {
        valid: Arc::new(Mutex::new([GOOD.to_string()].into_iter().collect())),
        gate: Arc::new(Semaphore::new(1000)),
        seen_headers: Arc::new(Mutex::new(Vec::new())),
    };
    let app = axum::Router::new()
        .route("/check", get(probe))
        .with_state(u.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/check", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, u)
}

async fn check(s: &TestServer, id: &str) -> reqwest::Response {
    s.admin(s.post(&format!("/api/tokens/{id}/check")))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn http_checks_on_demand_and_in_the_background() {
    let (url, up) = upstream().await;
    let s = TestServer::start_with(|c| {
        let h = &mut c.pools.get_mut("default").unwrap().health;
        h.kind = HealthKind::Http;
        h.url = Some(url);
        h.header = "X-Token".into();
        h.header_format = "tok {token}".into();
        h.expect_status = 204;
        h.probe_interval_s = 1;
    })
    .await;
    let good = s.add(GOOD, "good").await;
    let bad = s.add(BAD, "bad").await;

    let r = check(&s, &good).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["state"], "active");
    assert_eq!(v["status"], 204);
    assert!(up
        .seen_headers
        .lock()
        .unwrap()
        .contains(&format!("tok {GOOD}")));

    let v: Value = check(&s, &bad).await.json().await.unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["outcome"], "auth");
    assert_eq!(v["state"], "invalid");
    assert!(
        !v.to_string().contains(BAD),
        "the answer never carries the token"
    );

    // The upstream now accepts it: the background prober brings it back.
    up.valid.lock().unwrap().insert(BAD.to_string());
    let mut state = String::new();
    for _ in 0..100 {
        state = s.row(&bad).await["state"].as_str().unwrap().to_string();
        if state == "active" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        state, "active",
        "a passing background probe revives an invalid token"
    );
    s.stop().await;
}

#[tokio::test]
async fn one_probe_at_a_time_per_token() {
    let (url, up) = upstream().await;
    let s = TestServer::start_with(|c| {
        let h = &mut c.pools.get_mut("default").unwrap().health;
        h.kind = HealthKind::Http;
        h.url = Some(url);
        h.header = "X-Token".into();
        h.header_format = "tok {token}".into();
        h.expect_status = 204;
    })
    .await;
    let good = s.add(GOOD, "good").await;
    // Close the gate so the first probe hangs in the upstream.
    let held = up.gate.acquire_many(1000).await.unwrap();
    let first = {
        let (http, u) = (s.http.clone(), s.u(&format!("/api/tokens/{good}/check")));
        tokio::spawn(async move {
            http.post(u)
                .bearer_auth(crate::common::ADMIN_KEY)
                .send()
                .await
                .unwrap()
        })
    };
    for _ in 0..100 {
        if !up.seen_headers.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = check(&s, &good).await;
    assert_eq!(r.status(), 409);
    assert_eq!(error_code(r).await, "check_in_progress");
    drop(held);
    let r = first.await.unwrap();
    assert_eq!(r.status(), 200);
    // Once done, a new check may run.
    assert_eq!(check(&s, &good).await.status(), 200);
    assert_eq!(check(&s, "t_unknown").await.status(), 404);
    s.stop().await;
}
