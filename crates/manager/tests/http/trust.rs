//! DESIGN §9's trust rules, one test per finding of issue 13 that the router shows (the
//! connection limits and crash durability are tested against the binary, in
//! `crates/cli/tests/reliability`). Each of these failed on the code before its fix.

use crate::common::{error_code, TestServer, ADMIN_KEY, PASSWORD};
use serde_json::{json, Value};
use std::time::Duration;
use tokenlb_manager::config::ClientKey;

const T1: &str = "c3f0362b-0000-4997-a9c2-0478702a5fea";
const T2: &str = "9a1b2c3d-1111-4997-a9c2-0478702a5feb";

fn port(s: &TestServer) -> u16 {
    s.url.rsplit(':').next().unwrap().parse().unwrap()
}

async fn status_with_host(s: &TestServer, path: &str, host: &str) -> (u16, Value) {
    let r = s.get(path).header("host", host).send().await.unwrap();
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Finding 1: DNS rebinding. A page that re-points its domain at 127.0.0.1 sends its own
/// domain as `Host`; it gets 421 on every route, the UI and the client routes included.
#[tokio::test]
async fn a_foreign_host_gets_421_and_own_names_pass_in_every_spelling() {
    let s = TestServer::start_with(|c| c.allowed_hosts = vec!["tokens.internal".into()]).await;
    s.add(T1, "one").await;
    let p = port(&s);
    for path in [
        "/api/token/get",
        "/api/token/stats",
        "/healthz",
        "/",
        "/nope",
    ] {
        for host in [
            "evil.example",
            &format!("evil.example:{p}"),
            "127.0.0.2",
            "[::2]",
        ] {
            let (status, body) = status_with_host(&s, path, host).await;
            assert_eq!(status, 421, "{path} with Host {host}");
            assert_eq!(body["error"]["code"], "misdirected_request");
            assert!(!body.to_string().contains("evil"), "the Host is not echoed");
        }
    }
    for host in [
        "localhost".to_string(),
        format!("localhost:{p}"),
        format!("LOCALHOST:{p}"),
        "127.0.0.1".into(),
        format!("127.0.0.1:{p}"),
        "[::1]".into(),
        format!("[::1]:{p}"),
        "tokens.internal".into(),
        "Tokens.Internal:443".into(),
    ] {
        let (status, body) = status_with_host(&s, "/api/token/get", &host).await;
        assert_eq!(status, 200, "Host {host}: {body}");
    }
    s.stop().await;
}

/// Finding 1: behind a reverse proxy on the same host every caller is loopback, so a
/// request carrying forwarded headers is remote unless the proxy is trusted; a trusted
/// proxy's headers give the client's address.
#[tokio::test]
async fn forwarded_headers_void_the_loopback_rule_unless_the_proxy_is_trusted() {
    let s = TestServer::start().await;
    s.add(T1, "one").await;
    for (name, value) in [
        ("x-forwarded-for", "203.0.113.5"),
        ("x-real-ip", "203.0.113.5"),
        ("forwarded", "for=203.0.113.5"),
        ("x-forwarded-for", "127.0.0.1"),
    ] {
        let r = s
            .get("/api/token/get")
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{name}: {value}");
    }
    // The admin key is still good from behind any proxy.
    let r = s
        .admin(s.get("/api/token/get"))
        .header("x-forwarded-for", "203.0.113.5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;

    let s =
        TestServer::start_with(|c| c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]).await;
    s.add(T1, "one").await;
    let get = |xff: &'static str| {
        s.get("/api/token/get")
            .header("x-forwarded-for", xff)
            .send()
    };
    assert_eq!(
        get("203.0.113.5").await.unwrap().status(),
        401,
        "a remote client"
    );
    assert_eq!(
        get("127.0.0.1").await.unwrap().status(),
        200,
        "a local client through the trusted proxy"
    );
    // The proxy appends the address it saw; what is left of it the client may have made up.
    assert_eq!(
        get("127.0.0.1, 203.0.113.5").await.unwrap().status(),
        401,
        "a remote client cannot pass as loopback by prepending it"
    );
    assert_eq!(
        get("203.0.113.5, 127.0.0.1").await.unwrap().status(),
        401,
        "the nearest hop the trusted proxies did not add is the client"
    );
    s.stop().await;
}

/// Finding 1: a scoped client key sees its pools only, and is named in errors by its name.
#[tokio::test]
async fn a_scoped_key_is_refused_outside_its_pools() {
    let s = TestServer::start_with(|c| {
        c.client_keys = vec![
            ClientKey {
                name: "svc-a".into(),
                pools: Some(vec!["p1".into()]),
                ..ClientKey::bare("scoped-key-for-p1-only", 1)
            },
            ClientKey::bare("unscoped-key-every-pool", 2),
        ]
    })
    .await;
    s.add_json(json!({"token": T1, "name": "in-p1", "pool": "p1"}))
        .await;
    s.add(T2, "in-default").await;
    let as_key = |key: &'static str, path: &str| s.get(path).bearer_auth(key);
    let scoped = "scoped-key-for-p1-only";
    let r = as_key(scoped, "/api/token/get?pool=p1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let lease: Value = r.json().await.unwrap();
    let r = as_key(scoped, "/api/token/get").send().await.unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(body["error"]["message"].as_str().unwrap().contains("svc-a"));
    assert!(!body.to_string().contains(scoped), "never the key's value");
    let stats: Value = as_key(scoped, "/api/token/stats")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = stats["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["in-p1"], "stats show only the key's pools");
    assert_eq!(
        as_key(scoped, "/api/token/stats?pool=default")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    // Its own lease reports fine; a report by id needs report_by_id.
    let r = s
        .post("/api/token/report")
        .bearer_auth(scoped)
        .json(&json!({"lease": lease["lease"], "outcome": "success"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .post("/api/token/report")
        .bearer_auth(scoped)
        .json(&json!({"id": lease["id"], "outcome": "auth"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // The unscoped key reaches every pool.
    assert_eq!(
        as_key("unscoped-key-every-pool", "/api/token/get")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    s.stop().await;
}

/// Finding 4: a report may name the token it believes holds the lease; a mismatch is 409
/// and leaves the lease open.
#[tokio::test]
async fn a_report_with_the_wrong_token_id_is_409_and_the_lease_stays_open() {
    let s = TestServer::start().await;
    let id = s.add(T1, "one").await;
    let other = s.add(T2, "two").await;
    let lease: Value = s.lease("?strategy=round_robin").await.json().await.unwrap();
    let holder = lease["id"].as_str().unwrap();
    let wrong = if holder == id { &other } else { &id };
    let r = s
        .report(json!({"lease": lease["lease"], "token_id": wrong, "outcome": "auth"}))
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(error_code(r).await, "lease_token_mismatch");
    assert_eq!(s.row(wrong).await["state"], "active");
    let r = s
        .report(json!({"lease": lease["lease"], "token_id": holder, "outcome": "success"}))
        .await;
    assert_eq!(r.status(), 200, "the lease was still open");
    s.stop().await;
}

/// Finding 5: a loopback client (no keys) may report leases only: the seed's by-id form
/// that turned any token `invalid` is 403 for it, and stays open to the admin.
#[tokio::test]
async fn reports_by_id_need_the_admin_or_report_by_id() {
    let s = TestServer::start().await;
    let id = s.add(T1, "one").await;
    for body in [
        json!({"id": id, "outcome": "auth"}),
        json!({"token": T1, "success": false}),
    ] {
        let r = s
            .post("/api/token/report")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{body}");
        assert_eq!(error_code(r).await, "forbidden");
    }
    assert_eq!(s.row(&id).await["state"], "active");
    let r = s
        .admin(s.post("/api/token/report"))
        .json(&json!({"id": id, "success": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;
}

async fn events_of(s: &TestServer, id: &str) -> Vec<Value> {
    let v: Value = s
        .admin(s.get(&format!("/api/events?token={id}&limit=1000")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["events"].as_array().cloned().unwrap_or_default()
}

/// Finding 5: a token flapping between `cooling` and `active` (the 10-second reproduction
/// wrote 2,076 event rows) writes a handful of events, the repeats counted in one summary.
#[tokio::test]
async fn a_flapping_token_writes_a_few_events_not_thousands() {
    let s = TestServer::start().await;
    let id = s.add(T1, "flappy").await;
    let flaps = 200;
    for _ in 0..flaps {
        // The reproduction's alternation, as the admin (who may report by id).
        for body in [
            json!({"id": id, "outcome": "rate_limited", "retry_after_s": 1}),
            json!({"id": id, "outcome": "success"}),
        ] {
            assert_eq!(s.report(body).await.status(), 200);
        }
    }
    let changes = s.row(&id).await;
    assert!(changes["success"].as_u64().unwrap() >= flaps);
    // Let the writer store what it has.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = events_of(&s, &id).await;
    let state_changes = events
        .iter()
        .filter(|e| e["kind"] == "state_change")
        .count();
    assert!(
        (1..=3).contains(&state_changes),
        "{state_changes} state-change events for {flaps} flaps: {events:#?}"
    );
    // A stop closes the open windows: their summaries say how often it repeated.
    let dir = s.stop().await;
    let config = crate::common::test_config(&dir);
    let s = TestServer::start_in(dir, config).await;
    let events = events_of(&s, &id).await;
    let summaries: Vec<&Value> = events
        .iter()
        .filter(|e| e["reason"].as_str().unwrap_or("").contains("repeated"))
        .collect();
    // Transitions seen: active→cooling, cooling→cooling (extended), cooling→active (the
    // 1-s cooling over): each writes its first event and one summary of its repeats.
    assert!(
        !summaries.is_empty(),
        "the repeats are counted: {events:#?}"
    );
    let written = events
        .iter()
        .filter(|e| e["kind"] == "state_change")
        .count();
    assert!(
        written <= 6,
        "{written} events for {flaps} flaps: {events:#?}"
    );
    println!(
        "RELIABILITY events: {flaps} flaps by id wrote {} events ({} summaries)",
        events
            .iter()
            .filter(|e| e["kind"] == "state_change")
            .count(),
        summaries.len()
    );
    s.stop().await;
}

/// Finding 6: the token's own secret is cut out of reported errors whatever its length or
/// characters: not in `last_error`, not in events, not in the database file.
#[tokio::test]
async fn a_short_secret_with_a_slash_is_cut_out_of_reported_errors() {
    let s = TestServer::start().await;
    let secret = "ab/cd9";
    let id = s.add(secret, "short").await;
    let lease: Value = s.lease("").await.json().await.unwrap();
    let r = s
        .report(json!({"lease": lease["lease"], "outcome": "auth", "error": format!("HTTP 401 for token {secret} (token={secret})")}))
        .await;
    assert_eq!(r.status(), 200);
    let row = s.row(&id).await;
    let last = row["last_error"].as_str().unwrap();
    assert!(!last.contains(secret), "{last}");
    assert!(last.contains("HTTP 401 for token"), "{last}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = events_of(&s, &id).await;
    assert!(!events.is_empty());
    assert!(!Value::Array(events.clone()).to_string().contains(secret));
    let dir = s.stop().await;
    for entry in std::fs::read_dir(dir.path().join("data")).unwrap() {
        let path = entry.unwrap().path();
        // SQLite's -wal/-shm files may go as the store closes.
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found, "{} holds the secret in plain text", path.display());
    }
}

/// Finding 8: a report wakes one long-poll waiter, not every one; beyond `max_waiters` a
/// caller is refused at once with 503 instead of joining the crowd.
#[tokio::test]
async fn a_freed_slot_wakes_one_waiter_and_the_waiter_count_is_capped() {
    let s = TestServer::start_with(|c| c.max_waiters = 40).await;
    s.add_json(json!({"token": T1, "name": "one", "limits": {"max_in_flight": 1}}))
        .await;
    let first: Value = s.lease("").await.json().await.unwrap();
    let waiters: Vec<_> = (0..40)
        .map(|_| {
            let rb = s.get("/api/token/get?wait_ms=3000");
            tokio::spawn(async move { rb.send().await.unwrap().status().as_u16() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = s.lease("?wait_ms=3000").await;
    assert_eq!(r.status(), 503, "the 41st waiter");
    assert_eq!(error_code(r).await, "too_many_waiters");
    let metric = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("tokenlb_waiter_wakeups_total{pool=\"default\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let scrape = || async {
        s.get("/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let before = metric(&scrape().await);
    // One report frees the one slot: one waiter is woken and takes it.
    s.report(json!({"lease": first["lease"], "outcome": "success"}))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let woken = metric(&scrape().await) - before;
    assert!(
        (1..=3).contains(&woken),
        "one report woke {woken} of 40 waiters"
    );
    println!("RELIABILITY waiters: one report woke {woken} of 40 waiters; the 41st refused");
    for w in waiters {
        let _ = w.await;
    }
    s.stop().await;
}

/// Finding 9: someone failing logins from the admin's address no longer locks the admin
/// out: the admin key as the password always signs in, another user name is not affected,
/// and the lock grows with each further failure instead of 300 s after the fifth.
#[tokio::test]
async fn failed_logins_do_not_lock_out_the_admin_key() {
    let s = TestServer::start_with(|c| c.admin.login_max_failures = 3).await;
    let login = |user: &'static str, password: &'static str| {
        s.post("/api/auth/login")
            .json(&json!({"username": user, "password": password}))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(
            login("admin", "wrong-password").await.unwrap().status(),
            401
        );
    }
    let r = login("admin", PASSWORD).await.unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        wait <= 2,
        "the first lock is short, not the whole window: {wait}"
    );
    assert_eq!(login("admin", ADMIN_KEY).await.unwrap().status(), 200);
    // After the lock, the right password gets in and clears the count.
    tokio::time::sleep(Duration::from_millis(1100 * wait)).await;
    assert_eq!(login("admin", PASSWORD).await.unwrap().status(), 200);
    s.stop().await;
}
