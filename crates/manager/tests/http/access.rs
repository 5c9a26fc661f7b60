//! Access rules of DESIGN §3: admin key for management, client keys or loopback for clients.

use crate::common::{error_code, TestServer, ADMIN_KEY};
use serde_json::json;
use std::net::IpAddr;
use tokenlb_manager::config::ClientKey;

const T1: &str = "c3f0362b-0000-4997-a9c2-0478702a5fea";

/// Every management route, with a body where it needs one.
fn management(id: &str) -> Vec<(reqwest::Method, String, Option<serde_json::Value>)> {
    use reqwest::Method;
    vec![
        (
            Method::POST,
            "/api/token/add".into(),
            Some(json!({"token": "x-token-1234567890", "name": "x"})),
        ),
        (
            Method::DELETE,
            "/api/token/remove".into(),
            Some(json!({"id": id})),
        ),
        (Method::GET, "/api/tokens".into(), None),
        (
            Method::PATCH,
            format!("/api/tokens/{id}"),
            Some(json!({"weight": 5})),
        ),
        (Method::POST, format!("/api/tokens/{id}/check"), None),
        (Method::POST, "/api/tokens/import".into(), None),
        (Method::GET, "/api/tokens/export".into(), None),
        (Method::GET, "/api/events".into(), None),
        (Method::GET, "/api/stats/minutes".into(), None),
        (Method::GET, "/api/pools".into(), None),
    ]
}

#[tokio::test]
async fn management_needs_the_admin_key() {
    let s = TestServer::start().await;
    let id = s.add(T1, "one").await;
    for (method, path, body) in management(&id) {
        // The seed's add and remove are open to loopback services (the next test); a
        // wrong key is still refused.
        let seed = path.starts_with("/api/token/");
        let keys: &[Option<&str>] = if seed {
            &[Some("wrong-key"), Some("")]
        } else {
            &[None, Some("wrong-key"), Some("")]
        };
        for &key in keys {
            let mut rb = s.http.request(method.clone(), s.u(&path));
            if let Some(k) = key {
                rb = rb.bearer_auth(k);
            }
            if let Some(b) = &body {
                rb = rb.json(b);
            }
            let r = rb.send().await.unwrap();
            assert_eq!(r.status(), 401, "{method} {path} with key {key:?}");
            assert!(r.headers().contains_key("www-authenticate"));
            assert_eq!(error_code(r).await, "unauthorized");
        }
    }
    // The token is untouched, and the admin key works.
    assert_eq!(s.stats().await["total_tokens"], 1);
    let r = s.admin(s.get("/api/tokens")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn the_seeds_add_and_remove_follow_the_loopback_rule() {
    // Issue 14: the seed's own `curl -X POST …/api/token/add` answered 401, while the seed
    // says `/api/*` needs no authentication for service calls.
    let s = TestServer::start().await;
    let add = |token: &str| {
        s.post("/api/token/add")
            .json(&json!({"token": token, "name": "新Token"}))
    };
    let r = add("seed-curl-token-0123456789").send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = s
        .http
        .delete(s.u("/api/token/remove"))
        .json(&json!({"token": "seed-curl-token-0123456789"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The events say a loopback service did it, not the admin.
    let mut kinds = Vec::new();
    for _ in 0..100 {
        let v: serde_json::Value = s
            .admin(s.get("/api/events?limit=10"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        kinds = v["events"].as_array().unwrap().clone();
        if kinds.iter().any(|e| e["kind"] == "removed") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for kind in ["added", "removed"] {
        let e = kinds.iter().find(|e| e["kind"] == kind).expect("the event");
        assert_eq!(
            e["reason_params"]["by"], "a service on this machine (loopback)",
            "{e}"
        );
        assert!(!e["reason"].as_str().unwrap().contains("admin"), "{e}");
    }
    // A page in the operator's browser is not a loopback service.
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let r = add("browser-token-0123456789")
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{name}");
        assert_eq!(error_code(r).await, "browser_origin");
        let r = s.lease("").await;
        assert_eq!(r.status(), 503, "no token, but not refused");
        let r = s
            .get("/api/token/get")
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{name} on get");
    }
    // Remote peers need the admin key.
    s.set_peer_override(Some("203.0.113.7".parse::<IpAddr>().unwrap()));
    let r = add("remote-token-0123456789").send().await.unwrap();
    assert_eq!(r.status(), 401);
    s.set_peer_override(None);
    assert_eq!(s.stats().await["total_tokens"], 0);
    s.stop().await;

    // With client keys configured, neither no key nor a client key may add.
    let s = TestServer::start_with(|c| {
        c.client_keys = vec![ClientKey::bare("client-key-one-123456", 1)]
    })
    .await;
    let body = json!({"token": "keyed-token-0123456789", "name": "k"});
    let r = s.post("/api/token/add").json(&body).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = s
        .post("/api/token/add")
        .bearer_auth("client-key-one-123456")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = s
        .admin(s.post("/api/token/add"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    s.stop().await;
}

#[tokio::test]
async fn without_client_keys_client_routes_are_loopback_only() {
    let s = TestServer::start().await;
    s.add(T1, "one").await;
    // Loopback (the real peer): open.
    assert_eq!(s.lease("").await.status(), 200);
    assert_eq!(
        s.get("/api/token/stats").send().await.unwrap().status(),
        200
    );
    // A remote peer: refused, on all three client routes.
    s.set_peer_override(Some("203.0.113.7".parse::<IpAddr>().unwrap()));
    let r = s.lease("").await;
    assert_eq!(r.status(), 401);
    assert_eq!(error_code(r).await, "unauthorized");
    assert_eq!(
        s.get("/api/token/stats").send().await.unwrap().status(),
        401
    );
    assert_eq!(
        s.post("/api/token/report")
            .json(&json!({"token": T1, "success": true}))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // The admin key still works from anywhere.
    let r = s.admin(s.get("/api/token/stats")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // IPv4-mapped loopback counts as loopback.
    s.set_peer_override(Some("::ffff:127.0.0.1".parse::<IpAddr>().unwrap()));
    assert_eq!(
        s.get("/api/token/stats").send().await.unwrap().status(),
        200
    );
    s.stop().await;
}

#[tokio::test]
async fn with_client_keys_a_key_is_required_even_on_loopback() {
    let s = TestServer::start_with(|c| {
        c.client_keys = vec![
            ClientKey::bare("client-key-one-123456", 1),
            ClientKey::bare("client-key-two-123456", 2),
        ]
    })
    .await;
    s.add(T1, "one").await;
    let r = s.lease("").await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = s
        .get("/api/token/get")
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = s
        .get("/api/token/get")
        .bearer_auth("client-key-two-123456")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let lease: serde_json::Value = r.json().await.unwrap();
    let r = s
        .post("/api/token/report")
        .bearer_auth("client-key-one-123456")
        .json(&json!({"lease": lease["lease"], "outcome": "success"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .get("/api/token/stats")
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the admin key works on client routes");
    // A client key is not an admin key.
    let r = s
        .get("/api/tokens")
        .bearer_auth("client-key-one-123456")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    s.stop().await;
}

#[tokio::test]
async fn ops_routes_are_public() {
    let s = TestServer::start().await;
    s.set_peer_override(Some("203.0.113.7".parse::<IpAddr>().unwrap()));
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/openapi.json",
        "/login",
    ] {
        assert_eq!(s.get(path).send().await.unwrap().status(), 200, "{path}");
    }
    s.stop().await;
}
