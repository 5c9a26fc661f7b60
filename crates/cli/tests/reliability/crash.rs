//! Crash safety (RELIABILITY.md §1): under concurrent gets, reports, adds, removes and patches,
//! the manager is SIGKILLed at seeded random moments and restarted on the same data directory,
//! `TOKENLB_CRASH_KILLS` times (default 24). After each restart:
//! - the database opens (the manager starts and lists its tokens) and, where the sqlite3
//!   shell is installed, passes `PRAGMA integrity_check`;
//! - every add, remove and patch the API acknowledged is there (a request in flight at the
//!   kill may land either way, and is accepted either way);
//! - no token is left with a lease in flight (leases do not survive a restart);
//! - the success counts lost are no more than the reports acknowledged within the flush window
//!   (`stats_flush_ms` = 1000, plus the flush's own write, 500 ms) before the kill.
//!
//! Workers own the tokens they add (and a share of the seed tokens), so the last acknowledged
//! patch of each token is well defined. The seed is printed; replay with
//! `TOKENLB_RELIABILITY_SEED`.

use crate::support::{http, list_tokens, start_manager, Rng, Scratch, ADMIN_KEY};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WORKERS: usize = 8;
const FLUSH_MS: u64 = 1000;
const FLUSH_WRITE_ALLOWANCE_MS: u64 = 500;

/// What the API acknowledged, and what was in flight when the process died.
#[derive(Default)]
struct Model {
    /// id → last acknowledged weight.
    weight: HashMap<String, u32>,
    /// id → weight of a patch sent but not answered (it may or may not have landed).
    pending_weight: HashMap<String, u32>,
    /// Acknowledged removes.
    removed: HashSet<String>,
    /// Removes sent but not answered.
    pending_remove: HashSet<String>,
    /// id → successes acknowledged (cumulative, re-based on each restart).
    successes: HashMap<String, u64>,
    /// When each success report was acknowledged (this round).
    report_acks: Vec<Instant>,
    /// Reports sent but not answered.
    pending_reports: u64,
    /// Per worker: the ids it owns (may patch or remove).
    owned: Vec<Vec<String>>,
    ops: u64,
}

type Shared = Arc<Mutex<Model>>;

fn secret(worker: usize, n: u64, round: usize) -> String {
    format!("crash-secret-r{round}-w{worker}-n{n}-6f1d2c9ab4e7")
}

async fn worker(
    url: String,
    model: Shared,
    stop: Arc<AtomicBool>,
    w: usize,
    seed: u64,
    round: usize,
) {
    let http = http();
    let mut rng = Rng::new(seed);
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let dice = rng.range(0, 100);
        if dice < 50 {
            // get + report success
            let Ok(r) = http
                .get(format!("{url}/api/token/get?strategy=round_robin"))
                .send()
                .await
            else {
                return;
            };
            if r.status() != 200 {
                continue;
            }
            let Ok(lease) = r.json::<Value>().await else {
                return;
            };
            let id = lease["id"].as_str().unwrap_or_default().to_string();
            model.lock().unwrap().pending_reports += 1;
            let sent = http
                .post(format!("{url}/api/token/report"))
                .json(&json!({"lease": lease["lease"], "outcome": "success", "latency_ms": 3}))
                .send()
                .await;
            let mut m = model.lock().unwrap();
            match sent {
                Ok(r) if r.status() == 200 => {
                    m.pending_reports -= 1;
                    *m.successes.entry(id).or_default() += 1;
                    m.report_acks.push(Instant::now());
                }
                // The token was removed by its owner meanwhile: nothing to count.
                Ok(r) if r.status() == 404 => m.pending_reports -= 1,
                Ok(r) => panic!("report answered {}", r.status()),
                Err(_) => return, // killed: stays pending
            }
        } else if dice < 60 {
            let Ok(r) = http.get(format!("{url}/api/token/stats")).send().await else {
                return;
            };
            assert_eq!(r.status(), 200);
        } else if dice < 70 {
            n += 1;
            let r = http
                .post(format!("{url}/api/token/add"))
                .bearer_auth(ADMIN_KEY)
                .json(&json!({"token": secret(w, n, round), "name": format!("w{w} r{round} n{n}")}))
                .send()
                .await;
            let Ok(r) = r else { return };
            assert_eq!(r.status(), 201, "add");
            let Ok(v) = r.json::<Value>().await else {
                return;
            };
            let id = v["id"].as_str().expect("id").to_string();
            let mut m = model.lock().unwrap();
            m.weight
                .insert(id.clone(), v["weight"].as_u64().unwrap_or(100) as u32);
            m.owned[w].push(id);
        } else if dice < 84 {
            let id = {
                let mut m = model.lock().unwrap();
                if m.owned[w].len() < 2 {
                    continue;
                }
                let i = rng.range(0, m.owned[w].len() as u64) as usize;
                let id = m.owned[w].swap_remove(i);
                m.pending_remove.insert(id.clone());
                id
            };
            let r = http
                .delete(format!("{url}/api/token/remove"))
                .bearer_auth(ADMIN_KEY)
                .json(&json!({"id": id}))
                .send()
                .await;
            let Ok(r) = r else { return };
            assert_eq!(r.status(), 200, "remove");
            let mut m = model.lock().unwrap();
            m.pending_remove.remove(&id);
            m.weight.remove(&id);
            m.removed.insert(id);
        } else {
            let weight = rng.range(1, 1001) as u32;
            let id = {
                let mut m = model.lock().unwrap();
                if m.owned[w].is_empty() {
                    continue;
                }
                let i = rng.range(0, m.owned[w].len() as u64) as usize;
                let id = m.owned[w][i].clone();
                m.pending_weight.insert(id.clone(), weight);
                id
            };
            let r = http
                .patch(format!("{url}/api/tokens/{id}"))
                .bearer_auth(ADMIN_KEY)
                .json(&json!({"weight": weight}))
                .send()
                .await;
            let Ok(r) = r else { return };
            assert_eq!(r.status(), 200, "patch");
            let mut m = model.lock().unwrap();
            m.pending_weight.remove(&id);
            m.weight.insert(id, weight);
        }
        model.lock().unwrap().ops += 1;
    }
}

/// Checks the restarted manager against the model; re-bases the model on what is listed.
/// Returns the number of success reports lost and how long before the kill the oldest of them
/// (at the earliest) was acknowledged.
fn verify(
    model: &mut Model,
    listed: &[Value],
    killed_at: Instant,
    round: usize,
) -> (u64, Duration) {
    let rows: HashMap<String, &Value> = listed
        .iter()
        .map(|r| (r["id"].as_str().unwrap_or_default().to_string(), r))
        .collect();
    for id in &model.removed {
        assert!(
            !rows.contains_key(id),
            "round {round}: acknowledged remove of {id} undone"
        );
    }
    let mut lost = 0u64;
    for (id, weight) in &model.weight {
        let pending_remove = model.pending_remove.contains(id);
        let Some(row) = rows.get(id) else {
            assert!(
                pending_remove,
                "round {round}: acknowledged token {id} lost"
            );
            continue;
        };
        let got = row["weight"].as_u64().unwrap_or(0) as u32;
        let pending = model.pending_weight.get(id).copied();
        assert!(
            got == *weight || Some(got) == pending,
            "round {round}: token {id} weight {got}, acknowledged {weight} (pending {pending:?})"
        );
        assert_eq!(
            row["in_flight"], 0,
            "round {round}: {id} in flight after restart"
        );
        let acked = model.successes.get(id).copied().unwrap_or(0);
        let stored = row["success"].as_u64().unwrap_or(0);
        assert!(
            stored <= acked + model.pending_reports,
            "round {round}: {id} has {stored} successes, only {acked} reported"
        );
        lost += acked.saturating_sub(stored);
    }
    let window = Duration::from_millis(FLUSH_MS + FLUSH_WRITE_ALLOWANCE_MS);
    let in_window = model
        .report_acks
        .iter()
        .filter(|t| killed_at.duration_since(**t) <= window)
        .count() as u64;
    assert!(
        lost <= in_window,
        "round {round}: {lost} acknowledged success reports lost, only {in_window} were within the flush window"
    );
    // Batches lose the newest reports: the lost ones are at least the `lost` most recent.
    let mut ages: Vec<Duration> = model
        .report_acks
        .iter()
        .map(|t| killed_at.duration_since(*t))
        .collect();
    ages.sort_unstable();
    let oldest_lost = match lost {
        0 => Duration::ZERO,
        n => ages.get(n as usize - 1).copied().unwrap_or_default(),
    };
    // Re-base on the listing: adds in flight at the kill that did land are adopted by worker 0.
    let known: HashSet<String> = model.owned.iter().flatten().cloned().collect();
    model.weight.clear();
    model.successes.clear();
    for (id, row) in &rows {
        model
            .weight
            .insert(id.clone(), row["weight"].as_u64().unwrap_or(0) as u32);
        model
            .successes
            .insert(id.clone(), row["success"].as_u64().unwrap_or(0));
        if !known.contains(id) && !model.pending_remove.contains(id) {
            model.owned[0].push(id.clone());
        }
    }
    for owned in &mut model.owned {
        owned.retain(|id| rows.contains_key(id));
    }
    model.pending_weight.clear();
    model.pending_remove.clear();
    model.pending_reports = 0;
    model.report_acks.clear();
    (lost, oldest_lost)
}

/// `PRAGMA integrity_check` through the sqlite3 shell, read-only beside the running manager
/// (WAL allows it). Returns false when no sqlite3 shell is installed; fails on any answer
/// other than `ok`.
fn integrity_ok(db: &std::path::Path, round: usize) -> bool {
    let Ok(out) = std::process::Command::new("sqlite3")
        .arg("-readonly")
        .arg(db)
        .arg("PRAGMA integrity_check;")
        .output()
    else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.trim(),
        "ok",
        "round {round}: integrity_check: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill_under_load() {
    let kills: usize = std::env::var("TOKENLB_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let mut rng = Rng::from_env("crash");
    let scratch = Scratch::new("crash");
    let dir = scratch.path();
    let client = http();
    let began = Instant::now();
    let mut model = Model {
        owned: vec![Vec::new(); WORKERS],
        ..Model::default()
    };

    let first = start_manager(dir, "run-0", &[]);
    for i in 0..(2 * WORKERS) {
        let r = client
            .post(format!("{}/api/token/add", first.url))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"token": format!("crash-seed-{i}-0c9d8e7f6a5b"), "name": format!("seed {i}")}))
            .send()
            .await
            .expect("seed add");
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.expect("json");
        let id = v["id"].as_str().expect("id").to_string();
        model.weight.insert(id.clone(), 100);
        model.owned[i % WORKERS].push(id);
    }
    let mut proc = first;
    let (mut total_lost, mut total_ops, mut max_lost) = (0u64, 0u64, 0u64);
    let mut max_age = Duration::ZERO;
    let mut integrity_checks = 0usize;
    for round in 1..=kills {
        let model_arc: Shared = Arc::new(Mutex::new(std::mem::take(&mut model)));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = (0..WORKERS)
            .map(|w| {
                tokio::spawn(worker(
                    proc.url.clone(),
                    model_arc.clone(),
                    stop.clone(),
                    w,
                    rng.next_u64(),
                    round,
                ))
            })
            .collect();
        let after = Duration::from_millis(rng.range(300, 1800));
        tokio::time::sleep(after).await;
        proc.kill();
        let killed_at = Instant::now();
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.expect("worker panicked");
        }
        model = Arc::try_unwrap(model_arc)
            .ok()
            .expect("workers done")
            .into_inner()
            .unwrap();
        proc = start_manager(dir, &format!("run-{round}"), &[]);
        let listed = list_tokens(&client, &proc.url).await;
        integrity_checks += usize::from(integrity_ok(&dir.join("data/tokenlb.db"), round));
        let acks = model.report_acks.len();
        let ops = model.ops;
        let (lost, age) = verify(&mut model, &listed, killed_at, round);
        max_age = max_age.max(age);
        println!(
            "kill {round}: after {} ms, {ops} ops, {acks} success reports acknowledged, {lost} lost (acknowledged ≥ {} ms before the kill), {} tokens",
            after.as_millis(),
            age.as_millis(),
            listed.len()
        );
        total_lost += lost;
        total_ops += ops;
        max_lost = max_lost.max(lost);
        model.ops = 0;
    }
    // The last start must also answer the client routes.
    let r = client
        .get(format!("{}/api/token/get", proc.url))
        .send()
        .await
        .expect("get after the last restart");
    assert_eq!(r.status(), 200);
    proc.kill();
    println!(
        "RELIABILITY crash: {kills} kills, {total_ops} ops, {total_lost} success reports lost in total (max {max_lost} in one kill; the oldest lost was acknowledged ≥ {} ms before its kill), PRAGMA integrity_check ok after {integrity_checks} restarts, {:.1} s",
        max_age.as_millis(),
        began.elapsed().as_secs_f64()
    );
}

/// Issue 13 finding 7: a report that turns a token `invalid` is in the store before it is
/// answered. 20 acknowledged `auth` reports, then SIGKILL at once: all 20 tokens come back
/// `invalid` (before the fix, 5 came back `active`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_invalidations_survive_sigkill() {
    let scratch = Scratch::new("durable-invalid");
    let mut m = start_manager(scratch.path(), "durable-invalid", &[]);
    let client = http();
    let mut ids = Vec::new();
    for i in 0..20 {
        let r: Value = client
            .post(format!("{}/api/token/add", m.url))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"token": format!("durable-token-{i:04}-0123456789abcdef"), "name": format!("t{i}")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(r["id"].as_str().unwrap().to_string());
    }
    for _ in 0..20 {
        let lease: Value = client
            .get(format!("{}/api/token/get?strategy=round_robin", m.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let r = client
            .post(format!("{}/api/token/report", m.url))
            .json(&json!({"lease": lease["lease"], "outcome": "auth", "error": "HTTP 401"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    m.kill();
    let m = start_manager(scratch.path(), "durable-invalid-2", &[]);
    let rows = list_tokens(&client, &m.url).await;
    let active: Vec<&Value> = rows.iter().filter(|t| t["state"] != "invalid").collect();
    assert!(
        active.is_empty(),
        "{} of 20 acknowledged invalidations were lost: {active:?}",
        active.len()
    );
    println!(
        "RELIABILITY durable transitions: 20 of 20 acknowledged invalidations survived SIGKILL"
    );
}
