//! The web API end to end under faults: an expired token, every token rate limited, the
//! upstream down, the manager down, and a restart of the web API itself.

use crate::support::Stack;
use serde_json::{json, Value};
use tokenlb_wopan::emulator::DEMO_TOKENS;

fn assert_source(v: &Value, source: &str, stale: bool) {
    assert_eq!(v["source"], source, "{v}");
    assert_eq!(v["stale"], stale, "{v}");
}

#[tokio::test]
async fn an_expired_token_is_skipped_and_becomes_invalid() {
    let s = Stack::start().await;
    s.control(json!({"tokens": {DEMO_TOKENS[0].access_token: "expired"}}))
        .await;
    // Round robin over three tokens: the expired one comes up within the first three leases.
    for q in [
        "/api/folders?realtime=true",
        "/api/files?folder=Docs&realtime=true",
        "/api/files?folder=BD-another&realtime=true",
    ] {
        let (st, v) = s.get(q).await;
        assert_eq!(st, 200, "{q}: {v}");
        assert_source(&v, "realtime", false);
    }
    let (st, v) = s
        .get("/api/download/?url=BD-another/01.mp4&realtime=true")
        .await;
    assert_eq!(st, 200, "{v}");
    let row = s.row(&s.token_ids[0]).await;
    assert_eq!(row["state"], "invalid", "{row}");
    assert_eq!(row["failures_by_class"]["auth"], 1, "{row}");
    for id in &s.token_ids[1..] {
        assert_eq!(s.row(id).await["state"], "active");
    }
}

#[tokio::test]
async fn every_token_rate_limited_answers_stale_from_cache_then_recovers() {
    let s = Stack::start().await;
    assert_eq!(s.get("/api/folders?realtime=true").await.0, 200);
    assert_eq!(
        s.get("/api/files?folder=BD-another&realtime=true").await.0,
        200
    );
    let all: serde_json::Map<String, Value> = DEMO_TOKENS
        .iter()
        .map(|t| (t.access_token.to_string(), json!("rate_limited")))
        .collect();
    s.control(json!({"tokens": all, "retry_after_s": 1})).await;

    let (st, v) = s.get("/api/folders?realtime=true").await;
    assert_eq!(st, 200, "{v}");
    assert_source(&v, "cache", true);
    let (st, v) = s.get("/api/files?folder=BD-another&realtime=true").await;
    assert_eq!(st, 200, "{v}");
    assert_source(&v, "cache", true);
    // Nothing cached for this one: a clear 503.
    let (st, v) = s.get("/api/files?folder=Photos&realtime=true").await;
    assert_eq!(st, 503, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing is cached"),
        "{v}"
    );

    let ok: serde_json::Map<String, Value> = DEMO_TOKENS
        .iter()
        .map(|t| (t.access_token.to_string(), json!("ok")))
        .collect();
    s.control(json!({"tokens": ok})).await;
    let (st, v) = s
        .until_realtime("/api/files?folder=BD-another&realtime=true")
        .await;
    assert_eq!(st, 200, "{v}");
    assert_source(&v, "realtime", false);
}

#[tokio::test]
async fn upstream_down_answers_stale_from_cache_then_recovers() {
    let s = Stack::start().await;
    assert_eq!(
        s.get("/api/files?folder=Docs/2024&realtime=true").await.0,
        200
    );
    s.control(json!({"down": true})).await;
    let (st, v) = s.get("/api/files?folder=Docs/2024&realtime=true").await;
    assert_eq!(st, 200, "{v}");
    assert_source(&v, "cache", true);
    let (st, v) = s.get("/api/folders?realtime=true").await;
    assert_eq!(st, 200, "{v}");
    assert_source(&v, "cache", true);
    let metrics = tokenlb_test_support::metrics::scrape(&s.http, &s.web_url).await;
    assert!(
        metrics.contains("tokenlb_webapi_cache_total{result=\"stale\"} 2"),
        "{metrics}"
    );

    s.control(json!({"down": false})).await;
    let (st, v) = s
        .until_realtime("/api/files?folder=Docs/2024&realtime=true")
        .await;
    assert_eq!(st, 200, "{v}");
    assert_source(&v, "realtime", false);
}

#[tokio::test]
async fn manager_down_keeps_cached_and_realtime_answers_working() {
    let mut s = Stack::start().await;
    // Realtime calls teach the web API's client every token.
    for q in [
        "/api/folders?realtime=true",
        "/api/files?folder=BD-another&realtime=true",
        "/api/files?folder=Docs&realtime=true",
    ] {
        assert_eq!(s.get(q).await.0, 200);
    }
    s.stop_manager().await;

    let (st, v) = s.get("/api/files?folder=BD-another&realtime=false").await;
    assert_eq!(st, 200, "{v}");
    assert_source(&v, "cache", false);
    let (st, v) = s.get("/api/files?folder=BD-another&realtime=true").await;
    assert_eq!(st, 200, "{v}");
    assert_source(&v, "realtime", false);
    let (st, v) = s.get("/api/download/?url=BD-another/03.mp4").await;
    assert_eq!(st, 200, "{v}");
    assert_source(&v, "realtime", false);
    let (_, health) = s.get("/healthz").await;
    assert_eq!(health["manager_reachable"], false, "{health}");
    assert!(health["queued_reports"].as_u64().unwrap() >= 2, "{health}");

    s.restart_manager().await;
    let (st, _) = s.get("/api/files?folder=Docs&realtime=true").await;
    assert_eq!(st, 200);
    let mut reachable = false;
    for _ in 0..100 {
        s.get("/api/folders?realtime=true").await;
        let (_, h) = s.get("/healthz").await;
        if h["manager_reachable"] == true && h["queued_reports"] == 0 {
            reachable = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        reachable,
        "the web API went back to the manager and delivered its reports"
    );
}

#[tokio::test]
async fn the_cache_survives_a_restart_of_the_web_api() {
    let mut s = Stack::start().await;
    let (_, before) = s.get("/api/files?folder=Docs/2024/Q4&realtime=true").await;
    assert_eq!(s.get("/api/folders?realtime=true").await.0, 200);
    s.restart_webapi().await;
    s.reset_counts().await;
    let (st, after) = s.get("/api/files?folder=Docs/2024/Q4&realtime=false").await;
    assert_eq!(st, 200, "{after}");
    assert_source(&after, "cache", false);
    assert_eq!(after["files"], before["files"]);
    assert_eq!(after["cached_at"], before["cached_at"]);
    let (st, _) = s.get("/api/folders?realtime=false").await;
    assert_eq!(st, 200);
    assert_eq!(s.upstream_calls().await, 0);
}
