//! `Client::renew` (`POST /api/token/renew {"lease","extend_s"?}`, DESIGN §9) against a small
//! stub of the manager's routes: what is sent, how the answers are read, and the errors.
//! (A stub because the manager gains the route in a parallel change; the stub follows the
//! design's shape and the manager's error body.)

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokenlb_client::{Client, ClientConfig, ClientError, Secret};

/// A renew body received, with its Authorization header.
type Seen = (Value, Option<String>);

#[derive(Clone, Default)]
struct Stub {
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn lease_route() -> Json<Value> {
    Json(
        json!({"token": "tok-secret-value-0123456789", "id": "t1", "name": "one",
        "pool": "default", "lease": "default.e1.1.abcd", "lease_expires_at": "2026-01-01T00:00:00Z"}),
    )
}

async fn renew_route(
    State(s): State<Stub>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> impl IntoResponse {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    s.seen.lock().unwrap().push((body.clone(), auth));
    match body["lease"].as_str() {
        Some("default.e1.1.abcd") => (
            StatusCode::OK,
            Json(json!({"ok": true, "lease": body["lease"],
                "lease_expires_at": "2026-01-01T01:00:00Z"})),
        )
            .into_response(),
        _ => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": "unknown_lease",
            "message": "no such lease"}})),
        )
            .into_response(),
    }
}

async fn stub() -> (String, Stub) {
    let state = Stub::default();
    let app = Router::new()
        .route("/api/token/get", get(lease_route))
        .route("/api/token/renew", post(renew_route))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, state)
}

#[tokio::test]
async fn renew_sends_the_lease_and_reads_the_new_deadline() {
    let (url, s) = stub().await;
    let mut cfg = ClientConfig::new(url);
    cfg.client_key = Some(Secret::new("svc-key-0123456789"));
    let client = Client::new(cfg).unwrap();
    let lease = client.lease().await.unwrap();
    let deadline = client
        .renew(&lease, Some(Duration::from_secs(600)))
        .await
        .unwrap();
    assert_eq!(deadline.as_deref(), Some("2026-01-01T01:00:00Z"));
    client.renew(&lease, None).await.unwrap();
    let seen = s.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].0,
        json!({"lease": "default.e1.1.abcd", "extend_s": 600})
    );
    assert_eq!(seen[1].0, json!({"lease": "default.e1.1.abcd"}));
    assert_eq!(seen[0].1.as_deref(), Some("Bearer svc-key-0123456789"));
}

#[tokio::test]
async fn an_unknown_lease_is_the_managers_404_and_an_absent_manager_is_unreachable() {
    let (url, _s) = stub().await;
    let client = Client::new(ClientConfig::new(url)).unwrap();
    let lease = client.lease().await.unwrap();
    // A manager that no longer knows the lease (closed, or it restarted).
    let refusing = Router::new().route(
        "/api/token/renew",
        post(|| async {
            (
                StatusCode::NOT_FOUND,
                Json(json!({"error": {"code": "unknown_lease", "message": "lease closed"}})),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refusing_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, refusing).await;
    });
    let c3 = Client::new(ClientConfig::new(refusing_url)).unwrap();
    match c3.renew(&lease, None).await {
        Err(ClientError::Rejected { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (404, "unknown_lease"))
        }
        other => panic!("{other:?}"),
    }
    // Nobody listening.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let c4 = Client::new(ClientConfig::new(dead_url)).unwrap();
    let e = c4.renew(&lease, None).await.unwrap_err();
    assert!(e.is_unreachable(), "{e}");
    assert!(!format!("{e}").contains("tok-secret-value"));
}
