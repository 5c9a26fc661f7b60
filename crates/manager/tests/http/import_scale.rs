//! 100,000 tokens through `POST /api/tokens/import`: one transaction, then every token is
//! leasable. Prints the time taken (a figure for the report, not an assertion).

use crate::common::TestServer;
use serde_json::{json, Value};
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_tokens_import_in_one_request() {
    let s = TestServer::start().await;
    let entries: Vec<Value> = (0..100_000)
        .map(|i| json!({"token": format!("bulk-token-{i:06}-0123456789abcdef"), "name": format!("bulk {i}")}))
        .collect();
    let body = json!({ "tokens": entries }).to_string();
    let started = Instant::now();
    let r = s
        .admin(s.post("/api/tokens/import"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let summary: Value = r.json().await.unwrap();
    eprintln!(
        "imported 100,000 tokens ({} MB) in {:?}",
        body.len() / 1_000_000,
        started.elapsed()
    );
    assert_eq!(summary["added"], 100_000);
    assert_eq!(summary["skipped"], 0);

    // Importing the same file again adds nothing.
    let started = Instant::now();
    let summary: Value = s
        .admin(s.post("/api/tokens/import"))
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    eprintln!("re-import (all duplicates) in {:?}", started.elapsed());
    assert_eq!(summary["added"], 0);
    assert_eq!(summary["skipped"], 100_000);

    let r = s.lease("?strategy=weighted").await;
    assert_eq!(r.status(), 200);
    let pools: Value = s
        .admin(s.get("/api/pools"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pools[0]["tokens"], 100_000);
    s.stop().await;
}
