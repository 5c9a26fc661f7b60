//! Bad input gets a 4xx with the JSON error, never a panic or an HTML page.

use crate::common::{error_code, TestServer};
use serde_json::json;

const T1: &str = "c3f0362b-0000-4997-a9c2-0478702a5fea";

#[tokio::test]
async fn malformed_json_and_wrong_types_are_400() {
    let s = TestServer::start().await;
    let add = || {
        s.admin(s.post("/api/token/add"))
            .header("content-type", "application/json")
    };
    let r = add().body("{\"token\": ").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "malformed_json");
    let r = add()
        .body(r#"{"token": 123, "name": "x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "invalid_json");
    let r = add()
        .body(r#"{"token": "abcdefghijklmnop", "weight": "heavy"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = add()
        .body(r#"{"token": "abcdefghijklmnop", "surprise": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "unknown fields are refused");
    let r = s.report(json!({"lease": "0.1", "outcome": "great"})).await;
    assert_eq!(r.status(), 400);
    let r = s
        .post("/api/token/report")
        .body("not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    s.stop().await;
}

#[tokio::test]
async fn invalid_values_are_400() {
    let s = TestServer::start().await;
    let cases = [
        json!({"token": ""}),
        json!({"token": "abc\u{0}def"}),
        json!({"token": "x".repeat(4097)}),
        json!({"token": "abcdefghijklmnop", "name": ""}),
        json!({"token": "abcdefghijklmnop", "name": "n".repeat(201)}),
        json!({"token": "abcdefghijklmnop", "weight": 0}),
        json!({"token": "abcdefghijklmnop", "weight": 1001}),
        json!({"token": "abcdefghijklmnop", "pool": "no spaces"}),
        json!({"token": "abcdefghijklmnop", "expires_at": "tomorrow"}),
    ];
    for body in cases {
        let r = s
            .admin(s.post("/api/token/add"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        assert_eq!(error_code(r).await, "invalid");
    }
    assert_eq!(s.stats().await["total_tokens"], 0);
    let id = s.add(T1, "one").await;
    let r = s
        .admin(s.http.patch(s.u(&format!("/api/tokens/{id}"))))
        .json(&json!({"weight": 5000}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = s
        .admin(s.http.delete(s.u("/api/token/remove")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    s.stop().await;
}

#[tokio::test]
async fn get_parameters_are_checked() {
    let s = TestServer::start().await;
    s.add(T1, "one").await;
    let r = s.lease("?strategy=fastest").await;
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "unknown_strategy");
    let r = s.lease("?wait_ms=-1").await;
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r).await, "bad_query");
    let r = s.lease("?wait_ms=999999").await;
    assert_eq!(r.status(), 400);
    let r = s.lease("?pool=missing").await;
    assert_eq!(r.status(), 404);
    s.stop().await;
}

#[tokio::test]
async fn oversized_body_is_413_json() {
    let s = TestServer::start().await;
    let big = format!("{{\"token\": \"{}\"}}", "a".repeat(2 * 1024 * 1024));
    let r = s
        .admin(s.post("/api/token/add"))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(error_code(r).await, "payload_too_large");
    let r = s
        .post("/api/token/report")
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    s.stop().await;
}

#[tokio::test]
async fn unknown_remove_and_report_are_404() {
    let s = TestServer::start().await;
    let r = s
        .admin(s.http.delete(s.u("/api/token/remove")))
        .json(&json!({"token": "never-added-123456"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = s
        .report(json!({"lease": "0.999", "outcome": "success"}))
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "unknown_lease");
    let r = s
        .report(json!({"lease": "garbage", "outcome": "success"}))
        .await;
    assert_eq!(r.status(), 404);
    let r = s.report(json!({"id": "t_nothere", "success": true})).await;
    assert_eq!(r.status(), 404);
    s.stop().await;
}

#[tokio::test]
async fn zero_limits_are_refused_before_anything_is_stored() {
    let s = TestServer::start().await;
    for limits in [json!({"rpm": 0}), json!({"max_in_flight": 0})] {
        let r = s
            .admin(s.post("/api/token/add"))
            .json(&json!({"token": T1, "limits": limits}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "limits {limits}");
        assert_eq!(error_code(r).await, "invalid");
    }
    assert_eq!(s.stats().await["total_tokens"], 0);
    // Nothing half-stored: a restart on the same data dir starts and still has no token.
    let dir = s.stop().await;
    let config = crate::common::test_config(&dir);
    let s = TestServer::start_in(dir, config).await;
    assert_eq!(s.stats().await["total_tokens"], 0);
    s.admin(s.post("/api/token/add"))
        .json(&json!({"token": T1, "limits": {"rpm": 1, "max_in_flight": 1}}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
}

/// A typo in `limits` is refused, not taken as "no limits" (issue 13, finding 10).
#[tokio::test]
async fn a_misspelt_limit_is_refused_not_dropped() {
    let s = TestServer::start().await;
    let id = s.add(T1, "one").await;
    let r = s
        .http
        .patch(s.u(&format!("/api/tokens/{id}")))
        .bearer_auth(crate::common::ADMIN_KEY)
        .json(&json!({"limits": {"max_inflight": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = s
        .admin(s.post("/api/token/add"))
        .json(&json!({"token": "second-token-0123456789abcdef", "limits": {"rpm_limit": 5}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let row = s.row(&id).await;
    assert_eq!(
        row["limits"],
        json!({"rpm": null, "max_in_flight": null}),
        "{row}"
    );
}

/// Issue 14, point 7: `short`, `has space in it 1234567890` and `{"token":"x"}` imported as
/// tokens. Each pool's token rules refuse them, by position; a dry run writes nothing; a
/// Wopan pool takes Wopan-shaped tokens only.
#[tokio::test]
async fn import_refuses_junk_by_position_and_a_dry_run_writes_nothing() {
    use tokenlb_manager::config::{HealthConfig, HealthKind, PoolConfig};
    let s = TestServer::start_with(|c| {
        c.pools.insert(
            "wopan".into(),
            PoolConfig {
                health: HealthConfig {
                    kind: HealthKind::Wopan,
                    wopan_base_url: "http://127.0.0.1:9".into(),
                    ..HealthConfig::default()
                },
                ..PoolConfig::default()
            },
        );
    })
    .await;
    let import = |query: &str, body: &str| {
        s.admin(s.post(&format!("/api/tokens/import{query}")))
            .header("content-type", "text/plain")
            .body(body.to_string())
    };
    let junk =
        "short\nhas space in it 1234567890\n{\"token\":\"x\"}\ngood-token-0123456789abcdef\n";
    let r = import("?dry_run=true", junk).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (v["added"].as_u64(), v["dry_run"].as_bool()),
        (Some(1), Some(true)),
        "{v}"
    );
    assert_eq!(
        s.stats().await["total_tokens"],
        0,
        "a dry run writes nothing"
    );

    let v: serde_json::Value = import("", junk).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["added"], 1, "{v}");
    assert!(v.get("dry_run").is_none(), "{v}");
    let errors = v["errors"].as_array().unwrap();
    let lines: Vec<u64> = errors.iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, vec![1, 2, 3], "{v}");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("at least 16"),
        "{v}"
    );
    assert!(
        errors[1]["message"]
            .as_str()
            .unwrap()
            .contains("whitespace"),
        "{v}"
    );
    for e in errors {
        let m = e["message"].as_str().unwrap();
        assert!(
            !m.contains("short") && !m.contains("has space"),
            "no value echoed: {m}"
        );
    }
    // Again as a dry run: the good one is now "already there".
    let v: serde_json::Value = import("?dry_run=true", "good-token-0123456789abcdef\n")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (v["added"].as_u64(), v["skipped"].as_u64()),
        (Some(0), Some(1)),
        "{v}"
    );

    let v: serde_json::Value = import(
        "?pool=wopan",
        "another-token-0123456789abcdef\nc3f0362b-0000-4997-a9c2-0478702a5fea\n",
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(v["added"], 1, "{v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not a Wopan token"),
        "{v}"
    );
    s.stop().await;
}
