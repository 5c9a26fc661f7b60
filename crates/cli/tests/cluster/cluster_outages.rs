//! Cluster mode when a shared service goes away (docs/cluster.md, "When Redis or PostgreSQL
//! is unreachable"):
//! - Redis stopped during traffic: picks and reports go on from local state (no 5xx; only
//!   the documented 503 `cluster_unavailable` for a lease of another instance reported
//!   while Redis is down), and after Redis is back both instances converge: a state change
//!   made while it was down reaches the other instance, rotation is global again.
//! - PostgreSQL cut (a proxy between one manager and the database): writes answer 503
//!   `store_unavailable`, picks and reports go on; writes work again once it is back.
//!
//! Redis is a private server on a free port, so the machine's shared one is never stopped.

use crate::cluster_support::http::{add, get, report, row};
use crate::cluster_support::proxy::Proxy;
use crate::cluster_support::{unique, within, Db, Node, Redis};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Gets and reports (on the same instance) in a loop on `base` until `stop`; counts answers
/// other than 200: an instance takes the reports of its own leases whether Redis is up or not.
async fn traffic(
    base: String,
    stop: Arc<AtomicBool>,
    bad: Arc<AtomicUsize>,
    log: Arc<std::sync::Mutex<Vec<String>>>,
) {
    while !stop.load(Ordering::Relaxed) {
        let (s, l) = get(&base, "round_robin").await;
        if s != 200 {
            bad.fetch_add(1, Ordering::Relaxed);
            log.lock().expect("log").push(format!("get {s} {l}"));
            continue;
        }
        let (s, r) = report(&base, l["lease"].as_str().unwrap_or(""), "success").await;
        if s != 200 {
            bad.fetch_add(1, Ordering::Relaxed);
            log.lock().expect("log").push(format!("report {s} {r}"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_and_started_during_traffic() {
    let _one = SERIAL.lock().await;
    let db = Db::create();
    let mut redis = Redis::start();
    let prefix = unique("o");
    let a = Node::start(&db.url(5432), &redis.url(&prefix));
    let b = Node::start(&db.url(5432), &redis.url(&prefix));
    let mut ids = Vec::new();
    for i in 0..3 {
        let (s, t) = add(
            &a.url,
            &format!("outage-secret-{i}-abcdefgh"),
            &format!("t{i}"),
            json!({}),
        )
        .await;
        assert_eq!(s, 201, "{t}");
        ids.push(t["id"].as_str().expect("id").to_string());
    }
    assert!(within(Duration::from_secs(5), || async {
        row(&b.url, &ids[2]).await.is_some()
    })
    .await
    .is_some());

    let stop = Arc::new(AtomicBool::new(false));
    let bad = Arc::new(AtomicUsize::new(0));
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let tasks: Vec<_> = [&a, &b]
        .iter()
        .map(|n| {
            tokio::spawn(traffic(
                n.url.clone(),
                stop.clone(),
                bad.clone(),
                log.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, from_b) = get(&b.url, "round_robin").await;
    assert_eq!(s, 200, "{from_b}");
    redis.stop();
    tokio::time::sleep(Duration::from_millis(700)).await;
    // While Redis is down: a token fails on A (a local lease, reported on A).
    let (s, l) = get(&a.url, "best").await;
    assert_eq!(s, 200, "{l}");
    let failed = l["id"].as_str().expect("id").to_string();
    let (s, r) = report(&a.url, l["lease"].as_str().expect("lease"), "auth").await;
    assert_eq!(s, 200, "{r}");
    // The documented exception: B's lease reported on A while Redis is down.
    let (s, r) = report(&a.url, from_b["lease"].as_str().expect("lease"), "success").await;
    assert_eq!(
        (s, r["error"]["code"].clone()),
        (503, json!("cluster_unavailable")),
        "{r}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.restart();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("traffic task");
    }
    assert_eq!(
        bad.load(Ordering::Relaxed),
        0,
        "{:?}",
        log.lock().expect("log")
    );

    // Converged: B learns the change made on A while Redis was down ...
    let took = within(Duration::from_secs(5), || async {
        row(&b.url, &failed)
            .await
            .is_some_and(|r| r["state"] == "invalid")
    })
    .await;
    assert!(
        took.is_some(),
        "B did not learn of the change made during the outage"
    );
    println!("converged {took:?} after Redis came back");
    // ... and rotation is global again (cluster lease ids, strict alternation over the rest).
    let ok = within(Duration::from_secs(5), || async {
        let mut seen = Vec::new();
        for n in [&a, &b, &a, &b] {
            let (s, l) = get(&n.url, "round_robin").await;
            if s != 200
                || l["lease"]
                    .as_str()
                    // A cluster id starts with its 8-hex instance; a local one with the pool.
                    .is_none_or(|x| x.split('.').next().is_none_or(|o| o.len() != 8))
            {
                return false;
            }
            seen.push(l["id"].as_str().unwrap_or("").to_string());
        }
        seen[0] != seen[1] && seen[1] != seen[2] && seen[2] != seen[3] && !seen.contains(&failed)
    })
    .await;
    assert!(ok.is_some(), "rotation did not become global again");
    assert!(a.log_text().contains("unreachable"), "{}", a.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_writes_answer_503_picks_go_on() {
    let _one = SERIAL.lock().await;
    let db = Db::create();
    let redis = Redis::start();
    let proxy = Proxy::start(5432).await;
    let prefix = unique("pg");
    let a = Node::start(&db.url(proxy.port), &redis.url(&prefix));
    let (s, t) = add(&a.url, "pg-cut-secret-abcdefgh", "t", json!({})).await;
    assert_eq!(s, 201, "{t}");

    proxy.cut().await;
    let (s, body) = add(&a.url, "pg-cut-second-abcdefgh", "u", json!({})).await;
    assert_eq!(s, 503, "{body}");
    assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
    for _ in 0..5 {
        let (s, l) = get(&a.url, "round_robin").await;
        assert_eq!(s, 200, "{l}");
        let (s, r) = report(&a.url, l["lease"].as_str().expect("lease"), "success").await;
        assert_eq!(s, 200, "{r}");
    }

    proxy.restore();
    let ok = within(Duration::from_secs(10), || async {
        add(&a.url, "pg-cut-second-abcdefgh", "u", json!({}))
            .await
            .0
            == 201
    })
    .await;
    assert!(
        ok.is_some(),
        "writes did not recover after the database came back"
    );
}
