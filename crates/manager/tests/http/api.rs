//! The seed's routes and the management routes, against a real server on 127.0.0.1:0.

use crate::common::{error_code, TestServer};
use serde_json::{json, Value};

const T1: &str = "c3f0362b-0000-4997-a9c2-0478702a5fea";
const T2: &str = "9a1b2c3d-1111-4aaa-bbbb-ccccdddd0002";

#[tokio::test]
async fn seed_routes_round_trip() {
    let s = TestServer::start().await;
    let r = s
        .admin(s.post("/api/token/add"))
        .json(&json!({"token": T1, "name": "主Token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let added: Value = r.json().await.unwrap();
    assert_eq!(added["token"], "c3f0…5fea");
    assert_eq!(added["name"], "主Token");
    assert_eq!(added["state"], "active");
    let id = added["id"].as_str().unwrap().to_string();

    let r = s.lease("?strategy=best").await;
    assert_eq!(r.status(), 200);
    let lease: Value = r.json().await.unwrap();
    for key in ["token", "id", "name", "pool", "lease", "lease_expires_at"] {
        assert!(lease.get(key).is_some(), "get answer has {key}: {lease}");
    }
    assert_eq!(lease["token"], T1);
    assert_eq!(lease["id"], id.as_str());
    assert_eq!(lease["pool"], "default");
    assert_eq!(s.row(&id).await["in_flight"], 1);

    let r = s
        .report(json!({"lease": lease["lease"], "outcome": "success", "latency_ms": 12}))
        .await;
    assert_eq!(r.status(), 200);
    let row = s.row(&id).await;
    assert_eq!(row["in_flight"], 0);
    assert_eq!(row["success"], 1);

    // The seed's report form, by token value.
    let r = s
        .report(json!({"token": T1, "success": false, "error": "boom"}))
        .await;
    assert_eq!(r.status(), 200);
    let stats = s.stats().await;
    for key in [
        "total_tokens",
        "active_tokens",
        "total_requests",
        "success_rate",
        "tokens",
    ] {
        assert!(stats.get(key).is_some(), "stats has {key}");
    }
    assert_eq!(stats["total_tokens"], 1);
    assert_eq!(stats["total_requests"], 2);
    assert_eq!(stats["success_rate"], 0.5);
    let row = &stats["tokens"][0];
    for key in [
        "id",
        "name",
        "pool",
        "token",
        "state",
        "state_reason",
        "success",
        "failure",
        "success_rate",
        "in_flight",
        "last_used",
        "last_error",
        "expires_at",
    ] {
        assert!(row.get(key).is_some(), "row has {key}");
    }
    assert!(row["last_error"].as_str().unwrap().contains("boom"));
    assert!(
        !stats.to_string().contains(T1),
        "stats never carry the full token"
    );

    let r = s
        .admin(s.http.delete(s.u("/api/token/remove")))
        .json(&json!({"token": T1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(s.stats().await["total_tokens"], 0);
    let r = s
        .admin(s.http.delete(s.u("/api/token/remove")))
        .json(&json!({"id": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "not_found");
    s.stop().await;
}

#[tokio::test]
async fn duplicate_add_is_409_and_every_strategy_leases() {
    let s = TestServer::start().await;
    s.add(T1, "one").await;
    s.add(T2, "two").await;
    let r = s
        .admin(s.post("/api/token/add"))
        .json(&json!({"token": T1, "name": "again"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(error_code(r).await, "duplicate");
    for strategy in [
        "round_robin",
        "best",
        "weighted",
        "random",
        "least_in_flight",
        "latency",
    ] {
        let r = s.lease(&format!("?strategy={strategy}")).await;
        assert_eq!(r.status(), 200, "strategy {strategy}");
        let v: Value = r.json().await.unwrap();
        let r = s
            .report(json!({"lease": v["lease"], "outcome": "success"}))
            .await;
        assert_eq!(r.status(), 200);
    }
    let r = s.lease("?pool=nope").await;
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "unknown_pool");
    s.stop().await;
}

#[tokio::test]
async fn management_routes() {
    let s = TestServer::start().await;
    let id = s.add(T1, "one").await;

    let list: Value = s
        .admin(s.get("/api/tokens"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["tokens"].as_array().unwrap().len(), 1);

    let r = s.admin(s.http.patch(s.u(&format!("/api/tokens/{id}"))))
        .json(&json!({"name": "renamed", "weight": 7, "enabled": false, "limits": {"rpm": 10, "max_in_flight": 2}}))
        .send().await.unwrap();
    assert_eq!(r.status(), 200);
    let row: Value = r.json().await.unwrap();
    assert_eq!(row["name"], "renamed");
    assert_eq!(row["weight"], 7);
    assert_eq!(row["state"], "disabled");
    assert_eq!(row["limits"]["rpm"], 10);
    let r = s.lease("").await;
    assert_eq!(r.status(), 503, "a disabled token is not leased");
    let r = s
        .admin(s.http.patch(s.u(&format!("/api/tokens/{id}"))))
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["state"], "active");
    let r = s
        .admin(s.http.patch(s.u("/api/tokens/t_missing")))
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Import: a list, with a duplicate and a bad line.
    let body = format!("{T1}\nnew-token-aaaaaaaaaaaa\nnew-token-aaaaaaaaaaaa\nbad\u{7}token\n");
    let r = s
        .admin(s.post("/api/tokens/import"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let summary: Value = r.json().await.unwrap();
    assert_eq!(summary["added"], 1);
    assert_eq!(summary["skipped"], 2);
    assert_eq!(summary["errors"][0]["line"], 4);

    let r = s
        .admin(s.post("/api/tokens/import?pool=other"))
        .body(r#"{"tokens":[{"token":"json-token-bbbbbbbbbb","name":"J","is_active":false}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["added"], 1);
    let r = s
        .admin(s.post("/api/tokens/import"))
        .body("{\"tokens\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let r = s.admin(s.get("/api/tokens/export")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    let export: Value = r.json().await.unwrap();
    let tokens = export["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 3);
    let j = tokens
        .iter()
        .find(|t| t["token"] == "json-token-bbbbbbbbbb")
        .unwrap();
    assert_eq!(j["is_active"], false);
    assert_eq!(j["pool"], "other");

    let pools: Value = s
        .admin(s.get("/api/pools"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = pools
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"default") && names.contains(&"other"));

    // Events are written in the background; they show up shortly.
    let mut kinds = Vec::new();
    for _ in 0..50 {
        let ev: Value = s
            .admin(s.get("/api/events?limit=50"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        kinds = ev["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_string())
            .collect();
        if kinds.iter().any(|k| k == "patched") && kinds.iter().any(|k| k == "added") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(kinds.iter().any(|k| k == "added"), "events: {kinds:?}");
    assert!(
        kinds.iter().any(|k| k == "state_change"),
        "events: {kinds:?}"
    );

    let m: Value = s
        .admin(s.get("/api/stats/minutes?window=1h"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["window"], "1h");
    assert_eq!(m["minutes"].as_array().unwrap().len(), 60);
    let r = s
        .admin(s.get("/api/stats/minutes?window=2h"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // No health check configured for the pool: a clear 409.
    let r = s
        .admin(s.post(&format!("/api/tokens/{id}/check")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(error_code(r).await, "no_health_check");
    s.stop().await;
}

#[tokio::test]
async fn ops_routes_and_json_404() {
    let s = TestServer::start().await;
    let id = s.add(T1, "one").await;
    let v: Value = s.lease("?strategy=round_robin").await.json().await.unwrap();
    s.report(json!({"lease": v["lease"], "outcome": "transient"}))
        .await;
    assert_eq!(s.get("/healthz").send().await.unwrap().status(), 200);
    assert_eq!(s.get("/readyz").send().await.unwrap().status(), 200);
    let text = tokenlb_test_support::metrics::scrape(&s.http, &s.url).await;
    assert!(
        text.contains("tokenlb_picks_total{strategy=\"round_robin\",pool=\"default\"} 1"),
        "{text}"
    );
    assert!(text.contains("tokenlb_outcomes_total{class=\"transient\",pool=\"default\"} 1"));
    assert!(text.contains("tokenlb_tokens{state=\"active\",pool=\"default\"} 1"));
    assert!(text.contains("tokenlb_in_flight{pool=\"default\"} 0"));
    // The two routes served without the router (app::Routes) are labelled as the router
    // would label them.
    assert!(text.contains(
        "tokenlb_http_requests_total{route=\"/api/token/get\",method=\"GET\",status=\"200\"} 1"
    ));
    assert!(text.contains(
        "tokenlb_http_requests_total{route=\"/api/token/report\",method=\"POST\",status=\"200\"} 1"
    ));
    assert!(!text.contains(T1) && !text.contains(&id) || !text.contains(T1));

    let doc: Value = s
        .get("/api/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    // Every documented operation is routed (never the router's own 404/405), and answers
    // with a documented status, with and without the admin key.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let concrete = path.replace("{id}", &id).replace("{file}", "app.js");
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            for with_key in [false, true] {
                let mut rb = s.http.request(m.clone(), s.u(&concrete));
                if with_key {
                    rb = s.admin(rb);
                }
                let r = rb.send().await.unwrap();
                let status = r.status().as_u16().to_string();
                assert!(
                    op["responses"].get(&status).is_some(),
                    "{method} {path} (key: {with_key}) answered undocumented {status}"
                );
                if status == "404" || status == "405" {
                    let code = error_code(r).await;
                    assert!(
                        code != "route_not_found" && code != "method_not_allowed",
                        "{method} {path} is not routed"
                    );
                }
            }
        }
    }
    let r = s.get("/nope").send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r).await, "route_not_found");
    // Other methods on those two paths still go through the router.
    for path in ["/api/token/add", "/api/token/report", "/api/token/get"] {
        let r = s.http.put(s.u(path)).send().await.unwrap();
        assert_eq!(r.status(), 405, "{path}");
        assert_eq!(error_code(r).await, "method_not_allowed");
    }
    s.stop().await;
}

/// DESIGN §9: `{"reports":[…]}` applies each report on its own and answers one result per
/// report, in order; a refused one does not stop the others; the size and the form are
/// checked.
#[tokio::test]
async fn batch_reports_answer_in_order_and_stand_alone() {
    let s = TestServer::start().await;
    let a = s.add("batch-token-aaaaaaaaaaaaaaaa", "a").await;
    let b = s.add("batch-token-bbbbbbbbbbbbbbbb", "b").await;
    let mut leases = Vec::new();
    for _ in 0..2 {
        let v: Value = s.lease("?strategy=round_robin").await.json().await.unwrap();
        leases.push(v["lease"].as_str().unwrap().to_string());
    }
    let r = s
        .report(json!({ "reports": [
            { "lease": leases[0], "outcome": "success", "latency_ms": 12 },
            { "lease": "0.999999", "outcome": "success" },
            { "lease": leases[1], "outcome": "auth" },
            { "lease": leases[0], "outcome": "success" },
            { "lease": "x" },
        ]}))
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let results = v["results"].as_array().expect("results");
    assert_eq!(results.len(), 5);
    assert_eq!(results[0]["ok"], true);
    assert_eq!(results[1]["error"]["code"], "unknown_lease");
    assert_eq!(results[2]["ok"], true);
    assert_eq!(results[2]["state"], "invalid");
    // The same lease twice: closed by the first.
    assert_eq!(results[3]["error"]["code"], "unknown_lease");
    assert_eq!(results[4]["error"]["code"], "invalid");
    // Both reports that were applied show in the stats.
    let stats = s.stats().await;
    let rows = stats["tokens"].as_array().unwrap();
    let row = |id: &str| rows.iter().find(|t| t["id"] == id).unwrap().clone();
    let (ra, rb) = (row(&a), row(&b));
    assert_eq!(
        ra["success"].as_u64().unwrap() + rb["success"].as_u64().unwrap(),
        1
    );
    assert!(ra["state"] == "invalid" || rb["state"] == "invalid");

    // More than 1,000 reports, or a batch with a report beside it, or nested: refused whole.
    let many: Vec<Value> = (0..1001)
        .map(|_| json!({ "lease": "0.1", "outcome": "success" }))
        .collect();
    let r = s.report(json!({ "reports": many })).await;
    assert_eq!(r.status(), 400);
    let r = s
        .report(json!({ "reports": [], "lease": leases[0], "outcome": "success" }))
        .await;
    assert_eq!(r.status(), 400);
    let r = s.report(json!({ "reports": [ { "reports": [] } ] })).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["results"][0]["error"]["code"], "invalid");
    let r = s.report(json!({ "reports": [] })).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!({ "results": [] }));
    s.stop().await;
}

/// Invented methods do not become metric labels (issue 13, finding 3): they count as
/// `other`, so `/metrics` stays bounded whatever clients send.
#[tokio::test]
async fn invented_methods_are_counted_as_other() {
    let s = TestServer::start().await;
    for i in 0..40 {
        let m = reqwest::Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap();
        let r = s
            .http
            .request(m, s.u("/api/token/stats"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405);
    }
    let text = tokenlb_test_support::metrics::scrape(&s.http, &s.url).await;
    assert!(!text.contains("BREW"), "a request's method became a label");
    let other = text
        .lines()
        .find(|l| l.contains("method=\"other\"") && l.contains("status=\"405\""))
        .unwrap_or_else(|| panic!("no `other` series:\n{text}"));
    assert!(other.ends_with(" 40"), "{other}");
}
