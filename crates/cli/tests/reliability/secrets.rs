//! Secrets (RELIABILITY.md §7): a manager at debug log level is driven through every path
//! that handles a token value — add, duplicate add, invalid add, remove by value, seed-style
//! failure reports that echo the token in their error text, an auth outcome (the token turns
//! invalid, an event is written), an import with rejected entries, health checks, the CLI's
//! `token list` — and afterwards the raw value of every test token appears in none of: the
//! log, any error body, `/metrics`, the UI pages and assets, `/api/events`, `/api/tokens`,
//! `/api/token/stats`, `/api/pools`, `/api/stats/minutes`, the CLI's display output, or any
//! file of the data directory (database, WAL, key and credential files).
//!
//! Only `GET /api/token/get` (the lease a client asked for) and the admin backup export
//! (`/api/tokens/export`, `tokenlb token export`) carry full values, by design.

use crate::support::{files_containing, files_under, http, tokenlb, Proc, Scratch, ADMIN_KEY};
use serde_json::{json, Value};

fn secret(i: usize) -> String {
    format!("leakcheck-{i:02}-Zq8Rw4Tn6Yp2Ux0Vb")
}

fn keep(shown: &mut Vec<(String, String)>, what: &str, text: String) {
    shown.push((what.to_string(), text));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_raw_token_value_leaks_anywhere_meant_for_display() {
    let scratch = Scratch::new("secrets");
    let dir = scratch.path();
    let mut cmd = crate::support::manager_cmd(dir, &[]);
    cmd.env("RUST_LOG", "debug");
    let mut m = Proc::spawn(cmd, dir.join("manager.log")).expect("manager");
    let c = http();
    let url = m.url.clone();
    let mut shown: Vec<(String, String)> = Vec::new(); // (what, text) to scan

    let mut ids = Vec::new();
    for i in 0..8 {
        let r = c
            .post(format!("{url}/api/token/add"))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"token": secret(i), "name": format!("leak {i}"), "refresh_token": secret(40 + i)}))
            .send()
            .await
            .expect("add");
        assert_eq!(r.status(), 201);
        let text = r.text().await.expect("body");
        ids.push(
            serde_json::from_str::<Value>(&text).expect("json")["id"]
                .as_str()
                .expect("id")
                .to_string(),
        );
        keep(&mut shown, "add answer", text);
    }
    // Refusals that had a secret in their request.
    for (what, method, path, body) in [
        (
            "duplicate add",
            "POST",
            "/api/token/add",
            json!({"token": secret(0)}),
        ),
        (
            "invalid add",
            "POST",
            "/api/token/add",
            json!({"token": secret(20), "weight": 0}),
        ),
        (
            "unknown field",
            "POST",
            "/api/token/add",
            json!({"token": secret(21), "secret": secret(21)}),
        ),
        (
            "remove unknown value",
            "DELETE",
            "/api/token/remove",
            json!({"token": secret(22)}),
        ),
        (
            "wrong type",
            "POST",
            "/api/token/add",
            json!({"token": [secret(23)]}),
        ),
        (
            "report unknown",
            "POST",
            "/api/token/report",
            json!({"token": secret(24), "success": true}),
        ),
    ] {
        let r = c
            .request(method.parse().expect("method"), format!("{url}{path}"))
            .bearer_auth(ADMIN_KEY)
            .json(&body)
            .send()
            .await
            .expect(what);
        assert!(r.status().is_client_error(), "{what}: {}", r.status());
        keep(&mut shown, what, r.text().await.unwrap_or_default());
    }
    let r = c
        .post(format!("{url}/api/token/add"))
        .bearer_auth(ADMIN_KEY)
        .header("content-type", "application/json")
        .body(format!("{{\"token\": \"{}\", ", secret(25)))
        .send()
        .await
        .expect("malformed");
    keep(
        &mut shown,
        "malformed JSON",
        r.text().await.unwrap_or_default(),
    );
    // Reports that echo the token, seed-style and lease-style.
    for i in 0..3 {
        // (Reports by value need the admin: DESIGN §9.)
        let r = c
            .post(format!("{url}/api/token/report"))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"token": secret(i), "success": false, "error": format!("401 for token {} at upstream", secret(i))}))
            .send()
            .await
            .expect("report");
        assert_eq!(r.status(), 200);
    }
    let lease: Value = c
        .get(format!("{url}/api/token/get?strategy=round_robin"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let leased = lease["token"].as_str().expect("token").to_string();
    let r = c
        .post(format!("{url}/api/token/report"))
        .json(&json!({"lease": lease["lease"], "outcome": "auth", "status": 401, "error": format!("token {leased} rejected")}))
        .send()
        .await
        .expect("auth report");
    assert_eq!(r.status(), 200);
    // An import with a duplicate and a rejected entry.
    let r = c
        .post(format!("{url}/api/tokens/import"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"tokens": [
            {"token": secret(30), "name": "imported"},
            {"token": secret(1), "name": "dup"},
            {"token": secret(31), "name": "bad", "weight": 0},
            {"token": "x", "name": "too short"}
        ]}))
        .send()
        .await
        .expect("import");
    keep(
        &mut shown,
        "import summary",
        r.text().await.unwrap_or_default(),
    );
    let r = c
        .post(format!("{url}/api/tokens/{}/check", ids[3]))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("check");
    keep(&mut shown, "check", r.text().await.unwrap_or_default());
    let r = c
        .patch(format!("{url}/api/tokens/{}", ids[4]))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .expect("patch");
    keep(
        &mut shown,
        "patch answer",
        r.text().await.unwrap_or_default(),
    );

    // Everything meant for display.
    for path in [
        "/api/token/stats",
        "/api/tokens",
        "/api/events",
        "/api/pools",
        "/api/stats/minutes",
        "/metrics",
        "/",
        "/login",
        "/api/openapi.json",
        "/api/auth/me",
    ] {
        let r = c
            .get(format!("{url}{path}"))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .expect(path);
        keep(&mut shown, path, r.text().await.unwrap_or_default());
    }
    for asset in ["app.js", "api.js", "table.js", "index.html"] {
        let r = c
            .get(format!("{url}/assets/{asset}"))
            .send()
            .await
            .expect("asset");
        keep(&mut shown, asset, r.text().await.unwrap_or_default());
    }
    let out = tokenlb(dir)
        .env("TOKENLB_ADMIN_KEY", ADMIN_KEY)
        .args(["token", "--manager-url", &url, "list"])
        .output()
        .expect("token list");
    assert!(out.status.success());
    keep(
        &mut shown,
        "token list",
        String::from_utf8_lossy(&out.stdout).into_owned(),
    );
    keep(
        &mut shown,
        "token list stderr",
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    let events = &shown
        .iter()
        .find(|(w, _)| w == "/api/events")
        .expect("events")
        .1;
    assert!(
        events.contains("invalid"),
        "the auth report made an event: {events}"
    );
    let stats = &shown
        .iter()
        .find(|(w, _)| w == "/api/token/stats")
        .expect("stats")
        .1;
    assert!(stats.contains('…'), "stats show masked values: {stats}");

    assert!(m.terminate().is_some_and(|s| s.success()));
    keep(&mut shown, "manager log", m.log_text());

    let secrets: Vec<String> = (0..50).map(secret).collect();
    let mut leaks = Vec::new();
    for (what, text) in &shown {
        for s in &secrets {
            if text.contains(s.as_str()) {
                leaks.push(format!("{what} shows {s}"));
            }
        }
    }
    let files = files_under(&dir.join("data"));
    assert!(files.len() >= 3, "{files:?}");
    for s in &secrets {
        for f in files_containing(&files, s) {
            leaks.push(format!("{} holds {s}", f.display()));
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
    println!(
        "RELIABILITY secrets: {} answers and outputs and {} data files scanned for {} token values: none found",
        shown.len(),
        files.len(),
        secrets.len()
    );
}
