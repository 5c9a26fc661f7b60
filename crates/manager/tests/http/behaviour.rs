//! Pool behaviour through the API: 503 + Retry-After, waiting gets, cooling, lease expiry.

use crate::common::{error_code, TestServer};
use serde_json::{json, Value};
use std::time::Duration;

const T1: &str = "c3f0362b-0000-4997-a9c2-0478702a5fea";

async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test]
async fn all_cooling_gives_503_with_retry_after_and_events() {
    let s = TestServer::start().await;
    let id = s.add(T1, "one").await;
    let lease: Value = s.lease("").await.json().await.unwrap();
    let r = s.report(json!({"lease": lease["lease"], "outcome": "rate_limited", "retry_after_s": 30, "error": "HTTP 429"})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["state"], "cooling");

    let r = s.lease("").await;
    assert_eq!(r.status(), 503);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "Retry-After {retry}");
    assert_eq!(error_code(r).await, "no_token_available");

    let row = s.row(&id).await;
    assert_eq!(row["state"], "cooling");
    assert!(row["state_reason"].is_string());
    assert!(row["state_until"].is_string());

    let s = &s;
    let id = &id;
    until("a cooling event is stored", || async move {
        let ev: Value = s
            .admin(s.get("/api/events"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ev["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["to"] == "cooling" && e["token_id"] == id.as_str())
    })
    .await;
    let text = tokenlb_test_support::metrics::scrape(&s.http, &s.url).await;
    assert!(text.contains("tokenlb_get_unavailable_total 1"));
}

#[tokio::test]
async fn consecutive_transient_failures_cool_a_token() {
    let s = TestServer::start().await;
    let id = s.add(T1, "one").await;
    for i in 0..3 {
        s.add(&format!("other-token-{i}-abcdefgh"), &format!("o{i}"))
            .await;
    }
    for _ in 0..5 {
        let r = s
            .report(json!({"id": id, "success": false, "error": "HTTP 502"}))
            .await;
        assert_eq!(r.status(), 200);
    }
    let row = s.row(&id).await;
    assert_eq!(row["state"], "cooling", "{row}");
    assert_eq!(row["failure"], 5);
    assert_eq!(row["failures_by_class"]["transient"], 5);
    // The others still serve.
    for _ in 0..6 {
        let v: Value = s.lease("?strategy=round_robin").await.json().await.unwrap();
        assert_ne!(v["id"], id.as_str());
    }
}

#[tokio::test]
async fn wait_ms_returns_a_token_freed_meanwhile() {
    let s = TestServer::start().await;
    s.add_json(json!({"token": T1, "name": "one", "limits": {"max_in_flight": 1}}))
        .await;
    let first: Value = s.lease("").await.json().await.unwrap();
    assert_eq!(s.lease("").await.status(), 503, "the only slot is taken");
    let waiting = {
        let http = s.http.clone();
        let url = s.u("/api/token/get?wait_ms=20000");
        tokio::spawn(async move { http.get(url).send().await.unwrap() })
    };
    // Let the waiting request reach the server before the slot frees.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the get waits instead of answering 503"
    );
    let r = s
        .report(json!({"lease": first["lease"], "outcome": "success"}))
        .await;
    assert_eq!(r.status(), 200);
    let r = waiting.await.unwrap();
    assert_eq!(r.status(), 200);
    let second: Value = r.json().await.unwrap();
    assert_eq!(second["id"], first["id"]);
    assert_ne!(second["lease"], first["lease"]);
}

#[tokio::test]
async fn wait_ms_gives_up_with_503() {
    let s = TestServer::start().await;
    let r = s.lease("?wait_ms=200").await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn an_unreported_lease_expires_and_frees_its_slot() {
    let s = TestServer::start_with(|c| {
        for pool in c.pools.values_mut() {
            pool.policy.lease_ttl_s = 1;
        }
    })
    .await;
    let id = s.add(T1, "one").await;
    let lease: Value = s.lease("").await.json().await.unwrap();
    assert_eq!(s.row(&id).await["in_flight"], 1);
    let s = &s;
    let id = &id;
    until("the lease expires", || async move {
        s.row(id).await["in_flight"] == 0
    })
    .await;
    let row = s.row(id).await;
    assert_eq!(row["failures_by_class"]["unknown"], 1);
    assert_eq!(row["failure"], 0, "an expired lease is not a failure");
    let r = s
        .report(json!({"lease": lease["lease"], "outcome": "success"}))
        .await;
    assert_eq!(r.status(), 404, "an expired lease cannot be reported");
    let text = tokenlb_test_support::metrics::scrape(&s.http, &s.url).await;
    assert!(
        text.contains("tokenlb_lease_expiries_total{pool=\"default\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn auth_failure_invalidates_and_admin_brings_back() {
    let s = TestServer::start().await;
    let id = s.add(T1, "one").await;
    let lease: Value = s.lease("").await.json().await.unwrap();
    let r = s
        .report(json!({"lease": lease["lease"], "outcome": "auth", "status": 401}))
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["state"], "invalid");
    assert_eq!(s.lease("").await.status(), 503);
    let r = s
        .admin(s.http.patch(s.u(&format!("/api/tokens/{id}"))))
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["state"], "active");
    assert_eq!(s.lease("").await.status(), 200);
}

#[tokio::test]
async fn a_token_echoed_in_an_error_is_masked() {
    let s = TestServer::start().await;
    let id = s.add(T1, "one").await;
    let r = s
        .report(json!({"token": T1, "success": false, "error": format!("upstream rejected {T1}")}))
        .await;
    assert_eq!(r.status(), 200);
    let row = s.row(&id).await;
    let last = row["last_error"].as_str().unwrap();
    assert!(last.contains("c3f0…5fea") && !last.contains(T1), "{last}");
}

#[tokio::test]
async fn shutdown_releases_waiting_gets() {
    let s = TestServer::start().await;
    let waiting = {
        let (http, url) = (s.http.clone(), s.u("/api/token/get?wait_ms=30000"));
        tokio::spawn(async move { http.get(url).send().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished());
    s.stop().await;
    let r = waiting.await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(error_code(r).await, "shutting_down");
}

#[tokio::test]
async fn minute_series_show_flushed_requests_and_failures() {
    let s = TestServer::start().await;
    let id = s.add(T1, "one").await;
    for outcome in ["success", "success", "transient"] {
        let l: Value = s.lease("").await.json().await.unwrap();
        s.report(json!({"lease": l["lease"], "outcome": outcome}))
            .await;
    }
    let s = &s;
    let id = &id;
    for query in [
        String::new(),
        format!("&token={id}"),
        "&pool=default".to_string(),
    ] {
        let query = &query;
        until("the minute rows are flushed", || async move {
            let m: Value = s
                .admin(s.get(&format!("/api/stats/minutes?window=24h{query}")))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let minutes = m["minutes"].as_array().unwrap();
            assert_eq!(minutes.len(), 24 * 60);
            let requests: u64 = minutes
                .iter()
                .map(|x| x["requests"].as_u64().unwrap())
                .sum();
            let failures: u64 = minutes
                .iter()
                .map(|x| x["failures"].as_u64().unwrap())
                .sum();
            requests == 3 && failures == 1
        })
        .await;
    }
}

/// DESIGN §9: a renewed lease keeps its token past its first deadline while a lease taken
/// with it expires on time; renewals are bounded and only for open leases.
#[tokio::test]
async fn a_renewed_lease_outlives_its_first_deadline() {
    let s = TestServer::start_with(|c| {
        for pool in c.pools.values_mut() {
            pool.policy.lease_ttl_s = 1;
        }
    })
    .await;
    let id = s.add(T1, "one").await;
    let renewed: Value = s.lease("").await.json().await.unwrap();
    let plain: Value = s.lease("").await.json().await.unwrap();
    let renew = |body: Value| {
        let s = &s;
        async move { s.post("/api/token/renew").json(&body).send().await.unwrap() }
    };
    let r = renew(json!({ "lease": renewed["lease"], "extend_s": 60 })).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], id.as_str());
    assert!(
        v["lease_expires_at"].as_str().unwrap() > renewed["lease_expires_at"].as_str().unwrap()
    );
    for bad in [0, 3601] {
        let r = renew(json!({ "lease": plain["lease"], "extend_s": bad })).await;
        assert_eq!(r.status(), 400, "extend_s {bad}");
    }
    let r = renew(json!({ "lease": "0.424242" })).await;
    assert_eq!(error_code(r).await, "unknown_lease");
    // The plain lease expires at its deadline; the renewed one is still held.
    let s = &s;
    let id = &id;
    until("the plain lease expires", || async move {
        s.row(id).await["failures_by_class"]["unknown"] == 1
    })
    .await;
    assert_eq!(
        s.row(id).await["in_flight"],
        1,
        "the renewed lease still holds its slot"
    );
    let r = s
        .report(json!({"lease": renewed["lease"], "outcome": "success"}))
        .await;
    assert_eq!(r.status(), 200, "a renewed lease is reported normally");
    assert_eq!(s.row(id).await["in_flight"], 0);
    let r = renew(json!({ "lease": renewed["lease"] })).await;
    assert_eq!(r.status(), 404, "a reported lease cannot be renewed");
}

/// `retry_after_s` is clamped to [1 s, 1 h] (issue 13, finding 5): one report cannot cool a
/// token for a month.
#[tokio::test]
async fn a_huge_retry_after_cools_for_an_hour_at_most() {
    let s = TestServer::start().await;
    let id = s.add(T1, "one").await;
    let lease: Value = s.lease("").await.json().await.unwrap();
    let r = s
        .report(json!({"lease": lease["lease"], "outcome": "rate_limited", "retry_after_s": 2_678_400u64}))
        .await;
    assert_eq!(r.status(), 200);
    let row = s.row(&id).await;
    assert_eq!(row["state"], "cooling", "{row}");
    let until = chrono::DateTime::parse_from_rfc3339(row["state_until"].as_str().unwrap()).unwrap();
    let left = until
        .signed_duration_since(chrono::Utc::now())
        .num_seconds();
    assert!(left <= 3600, "cooling for {left} s");
    assert!(left > 60, "cooling for {left} s");
}

/// Lease ids are never reused (issue 13, finding 4): after a restart the old run's ids name
/// nothing, so a report queued across the restart cannot land on whichever lease now has the
/// same number, and an id cannot be made up by counting.
#[tokio::test]
async fn lease_ids_from_before_a_restart_or_made_up_are_refused() {
    let s = TestServer::start().await;
    let id = s.add(T1, "one").await;
    let old: Value = s.lease("").await.json().await.unwrap();
    let dir = s.stop().await;
    let config = crate::common::test_config(&dir);
    let s = TestServer::start_in(dir, config).await;
    let new: Value = s.lease("").await.json().await.unwrap();
    assert_ne!(old["lease"], new["lease"]);
    let r = s
        .report(json!({"lease": old["lease"], "outcome": "auth"}))
        .await;
    assert_eq!(r.status(), 404, "a lease of the previous run");
    assert_eq!(error_code(r).await, "unknown_lease");
    let row = s.row(&id).await;
    assert_eq!(
        (row["state"].as_str(), row["in_flight"].as_u64()),
        (Some("active"), Some(1)),
        "{row}"
    );
    // The next number with the current lease's epoch and tag: not a lease.
    let text = new["lease"].as_str().unwrap();
    let parts: Vec<&str> = text.split('.').collect();
    let n: u64 = parts[2].parse().unwrap();
    let forged = format!("{}.{}.{}.{}", parts[0], parts[1], n + 1, parts[3]);
    let r = s
        .report(json!({"lease": forged, "outcome": "success"}))
        .await;
    assert_eq!(r.status(), 404);
    let r = s
        .report(json!({"lease": new["lease"], "outcome": "success"}))
        .await;
    assert_eq!(r.status(), 200);
}
