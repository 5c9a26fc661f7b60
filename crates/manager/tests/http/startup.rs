//! Start-up: tokens.json import (merge by value), malformed files, generated credentials,
//! and state kept across a restart.

use crate::common::{test_config, TestServer};
use serde_json::{json, Value};
use tokenlb_manager::Manager;

const SEED: &str = r#"{
  "tokens": [
    {"token": "seed-token-one-1234567890", "name": "主Token", "is_active": true},
    {"token": "seed-token-two-1234567890", "name": "备用", "is_active": false}
  ]
}"#;

#[tokio::test]
async fn tokens_json_is_imported_once_and_merged_by_value() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tokens.json"), SEED).unwrap();
    let config = test_config(&dir);
    let s = TestServer::start_in(dir, config.clone()).await;
    let stats = s.stats().await;
    assert_eq!(stats["total_tokens"], 2);
    assert_eq!(stats["active_tokens"], 1);
    let names: Vec<&str> = stats["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"主Token") && names.contains(&"备用"));
    s.add("added-later-1234567890", "later").await;
    let dir = s.stop().await;

    // Restart with the same file: nothing doubles, the API-added token is still there.
    let s = TestServer::start_in(dir, config).await;
    let stats = s.stats().await;
    assert_eq!(stats["total_tokens"], 3);
    s.stop().await;
}

#[tokio::test]
async fn a_malformed_tokens_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    std::fs::write(
        &path,
        "{\n  \"tokens\": [\n    {\"token\": \"x\",}\n  ]\n}\n",
    )
    .unwrap();
    let err = match Manager::open(test_config(&dir)).await {
        Ok(_) => panic!("a malformed tokens.json must stop the start"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("line 3, column"), "{err}");
}

#[tokio::test]
async fn an_unreachable_store_is_a_clear_error_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir);
    // Loopback port 1: nothing listens there, so this fails fast and never leaves the host.
    config.store = Some("postgres://tokenlb:s3cr3t-store-pw@127.0.0.1:1/tokenlb".into());
    let err = match Manager::open(config).await {
        Ok(_) => panic!("an unreachable store must stop the start"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("store"), "{err}");
    assert!(
        !err.contains("s3cr3t-store-pw"),
        "the password is not shown: {err}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn credentials_are_generated_into_private_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir);
    config.admin.key = None;
    config.admin.password = None;
    let s = TestServer::start_in(dir, config.clone()).await;
    let data = &config.data_dir;
    for file in ["admin-key", "admin-password"] {
        let meta = std::fs::metadata(data.join(file)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{file}");
    }
    let key = std::fs::read_to_string(data.join("admin-key")).unwrap();
    let password = std::fs::read_to_string(data.join("admin-password")).unwrap();
    let r = s
        .get("/api/tokens")
        .bearer_auth(key.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .post("/api/auth/login")
        .json(&json!({"username": "admin", "password": password.trim()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let dir = s.stop().await;
    // A restart reads the same files.
    let s = TestServer::start_in(dir, config).await;
    let r = s
        .get("/api/tokens")
        .bearer_auth(key.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn graceful_stop_flushes_stats_and_keeps_states() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&dir);
    let s = TestServer::start_in(dir, config.clone()).await;
    let id = s.add("flush-token-1234567890", "f").await;
    let other = s.add("cool-token-12345678901", "c").await;
    for _ in 0..4 {
        let l: Value = s.lease("?strategy=round_robin").await.json().await.unwrap();
        let outcome = if l["id"] == other.as_str() {
            "rate_limited"
        } else {
            "success"
        };
        s.report(json!({"lease": l["lease"], "outcome": outcome, "retry_after_s": 600}))
            .await;
    }
    let before = s.row(&id).await;
    let dir = s.stop().await;
    let s = TestServer::start_in(dir, config).await;
    let after = s.row(&id).await;
    assert_eq!(after["success"], before["success"]);
    assert!(after["success"].as_u64().unwrap() >= 1);
    assert_eq!(
        s.row(&other).await["state"],
        "cooling",
        "a cooling token is still cooling after a restart"
    );
    s.stop().await;
}
