//! Issue 14, point 6: every state reason and event carries a `reason_code` with parameters,
//! so the UI can say it in Chinese as well as English.

use crate::common::TestServer;
use serde_json::{json, Value};

#[tokio::test]
async fn reasons_and_events_carry_codes_with_parameters() {
    let s = TestServer::start().await;
    let id = s.add("reason-code-token-0123456789", "coded").await;
    let lease: Value = s.lease("").await.json().await.unwrap();
    let r = s
        .report(json!({"lease": lease["lease"], "outcome": "rate_limited", "retry_after_s": 90}))
        .await;
    assert_eq!(r.status(), 200);
    let row = s.row(&id).await;
    assert_eq!(row["state"], "cooling", "{row}");
    assert_eq!(row["state_reason_code"], "rate_limited", "{row}");
    assert_eq!(row["state_reason_params"]["seconds"], "90", "{row}");
    assert_eq!(row["state_reason_params"]["source"], "retry-after", "{row}");

    let r = s
        .admin(s.http.patch(s.u(&format!("/api/tokens/{id}"))))
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Events are written in the background: wait for the patch's.
    let mut events = Vec::new();
    for _ in 0..100 {
        let v: Value = s
            .admin(s.get("/api/events?limit=20"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        events = v["events"].as_array().unwrap().clone();
        if events.iter().any(|e| e["reason_code"] == "patched") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let find = |code: &str| {
        events
            .iter()
            .find(|e| e["reason_code"] == code)
            .unwrap_or_else(|| panic!("no {code} event in {events:?}"))
            .clone()
    };
    assert_eq!(find("rate_limited")["reason_params"]["seconds"], "90");
    let disabled = find("admin");
    assert_eq!(
        disabled["reason_params"]["action"], "disabled",
        "{disabled}"
    );
    assert_eq!(disabled["reason_params"]["by"], "admin", "{disabled}");
    assert_eq!(find("added")["reason_params"]["by"], "admin");
    assert_eq!(find("patched")["reason_params"]["by"], "the admin");
    s.stop().await;
}

/// Issue 14, point 3: "pool default has no tokens" while the tokens were in another pool.
#[tokio::test]
async fn an_empty_pools_503_names_the_pools_that_have_tokens() {
    let s = TestServer::start().await;
    let r = s.lease("").await;
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    let m = v["error"]["message"].as_str().unwrap();
    assert!(m.contains("no pool has tokens yet"), "{m}");
    let r = s
        .admin(s.post("/api/token/add"))
        .json(&json!({"token": "in-another-pool-0123456789", "name": "x", "pool": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = s.lease("").await.json().await.unwrap();
    let m = v["error"]["message"].as_str().unwrap();
    assert!(m.contains("pool \"default\" has no tokens"), "{m}");
    assert!(m.contains("pools with tokens: demo (1)"), "{m}");
    assert!(m.contains("?pool=NAME"), "{m}");
    s.stop().await;
}
