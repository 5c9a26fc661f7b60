//! Load (RELIABILITY.md §4): `TOKENLB_LOAD_SECS` (default 60) seconds of mixed traffic on
//! `TOKENLB_LOAD_CONNS` (default 128) keep-alive connections against the real manager binary:
//! get + report (mostly success, some transient and rate-limited outcomes), stats, add and
//! remove. It must show zero 5xx, zero transport errors and no status other than the
//! documented ones (200/201, 503 and 429 when nothing is eligible, 404 only for a report whose
//! token was removed meanwhile); afterwards every token's `in_flight` is 0 and the manager's
//! resident memory grew by at most `RSS_GROWTH_BOUND_MIB` after the warm-up.
//!
//! The generator is a closed loop: each connection sends its next request when the previous
//! one is answered, so the manager is never asked for more than it can take and the test is
//! bounded by its duration plus one request timeout.

use crate::support::{http, list_tokens, start_manager, Rng, Scratch, ADMIN_KEY};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Resident memory may grow by this much between the end of the warm-up and the end of the run.
const RSS_GROWTH_BOUND_MIB: u64 = 64;
const SEED_TOKENS: usize = 64;

#[derive(Default)]
struct Tally {
    statuses: BTreeMap<String, u64>,
    unexpected: Vec<String>,
    latencies_us: Vec<u64>,
}

struct Shared {
    tally: Mutex<Tally>,
    removed: Mutex<HashSet<String>>,
    stop: AtomicBool,
}

impl Shared {
    fn record(&self, op: &str, status: u16, started: Instant, ok: bool) {
        let mut t = self.tally.lock().unwrap();
        *t.statuses.entry(format!("{op} {status}")).or_default() += 1;
        t.latencies_us.push(started.elapsed().as_micros() as u64);
        if !ok && t.unexpected.len() < 20 {
            t.unexpected.push(format!("{op} answered {status}"));
        }
    }
    fn error(&self, op: &str, e: reqwest::Error) {
        let mut t = self.tally.lock().unwrap();
        *t.statuses
            .entry(format!("{op} transport-error"))
            .or_default() += 1;
        if t.unexpected.len() < 20 {
            t.unexpected.push(format!("{op}: {e}"));
        }
    }
}

async fn connection(url: String, shared: Arc<Shared>, conn: usize, seed: u64) {
    // One client per connection: 128 connections really are 128 sockets.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(1)
        .build()
        .expect("client");
    let mut rng = Rng::new(seed);
    let mut mine: Vec<String> = Vec::new();
    let mut n = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        let dice = rng.range(0, 100);
        let started = Instant::now();
        if dice < 70 {
            let r = http.get(format!("{url}/api/token/get")).send().await;
            let r = match r {
                Ok(r) => r,
                Err(e) => {
                    shared.error("get", e);
                    continue;
                }
            };
            let status = r.status().as_u16();
            shared.record("get", status, started, matches!(status, 200 | 429 | 503));
            if status != 200 {
                continue;
            }
            let Ok(lease) = r.json::<Value>().await else {
                shared.record("get-body", 0, started, false);
                continue;
            };
            let outcome = match rng.range(0, 100) {
                0..=89 => json!({"lease": lease["lease"], "outcome": "success", "latency_ms": 5}),
                90..=94 => json!({"lease": lease["lease"], "outcome": "transient", "status": 502}),
                _ => {
                    json!({"lease": lease["lease"], "outcome": "rate_limited", "retry_after_s": 1})
                }
            };
            let started = Instant::now();
            match http
                .post(format!("{url}/api/token/report"))
                .json(&outcome)
                .send()
                .await
            {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let id = lease["id"].as_str().unwrap_or_default();
                    let gone = status == 404 && shared.removed.lock().unwrap().contains(id);
                    shared.record("report", status, started, status == 200 || gone);
                }
                Err(e) => shared.error("report", e),
            }
        } else if dice < 85 {
            match http.get(format!("{url}/api/token/stats")).send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    shared.record("stats", status, started, status == 200);
                }
                Err(e) => shared.error("stats", e),
            }
        } else if dice < 93 || mine.is_empty() {
            n += 1;
            let body = json!({"token": format!("load-secret-c{conn}-n{n}-5e6f7a8b9c"), "name": format!("load c{conn} n{n}")});
            match http
                .post(format!("{url}/api/token/add"))
                .bearer_auth(ADMIN_KEY)
                .json(&body)
                .send()
                .await
            {
                Ok(r) => {
                    let status = r.status().as_u16();
                    shared.record("add", status, started, status == 201);
                    if let Ok(v) = r.json::<Value>().await {
                        if let Some(id) = v["id"].as_str() {
                            mine.push(id.to_string());
                        }
                    }
                }
                Err(e) => shared.error("add", e),
            }
        } else {
            let id = mine.swap_remove(rng.range(0, mine.len() as u64) as usize);
            shared.removed.lock().unwrap().insert(id.clone());
            match http
                .delete(format!("{url}/api/token/remove"))
                .bearer_auth(ADMIN_KEY)
                .json(&json!({"id": id}))
                .send()
                .await
            {
                Ok(r) => {
                    let status = r.status().as_u16();
                    shared.record("remove", status, started, status == 200);
                }
                Err(e) => shared.error("remove", e),
            }
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_load_on_128_connections_has_no_errors_and_no_leaks() {
    let secs: u64 = std::env::var("TOKENLB_LOAD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let conns: usize = std::env::var("TOKENLB_LOAD_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    let mut rng = Rng::from_env("load");
    let scratch = Scratch::new("load");
    let m = start_manager(scratch.path(), "load", &[]);
    let client = http();
    for i in 0..SEED_TOKENS {
        let r = client
            .post(format!("{}/api/token/add", m.url))
            .bearer_auth(ADMIN_KEY)
            .json(
                &json!({"token": format!("load-seed-{i}-4d3c2b1a0f"), "name": format!("seed {i}")}),
            )
            .send()
            .await
            .expect("seed");
        assert_eq!(r.status(), 201);
    }
    let shared = Arc::new(Shared {
        tally: Mutex::new(Tally::default()),
        removed: Mutex::new(HashSet::new()),
        stop: AtomicBool::new(false),
    });
    let began = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|c| tokio::spawn(connection(m.url.clone(), shared.clone(), c, rng.next_u64())))
        .collect();
    let warmup = Duration::from_secs((secs / 6).max(1));
    tokio::time::sleep(warmup).await;
    let rss_warm = m.rss_kib();
    let mut rss_peak = rss_warm;
    while began.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        rss_peak = rss_peak.max(m.rss_kib());
    }
    shared.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("connection task");
    }
    let elapsed = began.elapsed().as_secs_f64();
    let rss_end = m.rss_kib();

    let listed = list_tokens(&client, &m.url).await;
    let busy: Vec<_> = listed
        .iter()
        .filter(|r| r["in_flight"].as_u64() != Some(0))
        .map(|r| format!("{} in_flight={}", r["id"], r["in_flight"]))
        .collect();
    let stats: Value = client
        .get(format!("{}/api/token/stats", m.url))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("stats json");
    let tally = std::mem::take(&mut *shared.tally.lock().unwrap());
    let mut lat = tally.latencies_us.clone();
    lat.sort_unstable();
    let total: u64 = tally.statuses.values().sum();
    println!(
        "RELIABILITY load: {secs} s, {conns} connections, {total} requests ({:.0}/s), p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; RSS warm {} MiB, peak {} MiB, end {} MiB; {} tokens at the end",
        total as f64 / elapsed,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0),
        rss_warm / 1024,
        rss_peak / 1024,
        rss_end / 1024,
        listed.len()
    );
    println!("RELIABILITY load statuses: {:?}", tally.statuses);
    assert!(
        tally.unexpected.is_empty(),
        "unexpected answers: {:?}",
        tally.unexpected
    );
    assert!(
        !tally
            .statuses
            .keys()
            .any(|k| k.split(' ').nth(1).is_some_and(|s| s.starts_with('5')) && k != "get 503"),
        "5xx: {:?}",
        tally.statuses
    );
    assert!(
        busy.is_empty(),
        "tokens still in flight after the load: {busy:?}"
    );
    assert!(stats["tokens"]
        .as_array()
        .is_some_and(|t| t.iter().all(|r| r["in_flight"] == 0)));
    assert!(
        rss_end <= rss_warm + RSS_GROWTH_BOUND_MIB * 1024,
        "RSS grew from {rss_warm} KiB to {rss_end} KiB"
    );
    assert!(!m.log_text().contains("panicked"));
}
