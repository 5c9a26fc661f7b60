//! The load client against servers on 127.0.0.1:0: the real baseline, and a fake manager
//! that checks every lease handed out comes back in a report.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokenlb_bench::load::{self, Load, LoadError, Work};
use tokenlb_bench::{baseline, http1};
use tokio::net::TcpListener;

async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn load(addr: SocketAddr, connections: usize, work: Work) -> Load {
    Load {
        addr,
        connections,
        warmup: Duration::from_millis(50),
        duration: Duration::from_secs(10),
        max_units: None,
        timeout: Duration::from_secs(5),
        work,
        cpu_pids: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_requests_against_the_baseline_stop_at_the_budget() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(baseline::serve(listener, std::future::pending()));
    let mut l = load(
        addr,
        4,
        Work::Fixed {
            request: Arc::new(http1::get(&addr.to_string(), "/", "")),
            expect: 200,
        },
    );
    l.max_units = Some(500);
    let s = load::run(&l).await.unwrap();
    assert_eq!((s.count, s.errors), (500, 0));
    assert!(s.p50_us > 0.0 && s.p50_us <= s.p99_us && s.p99_us <= s.max_us);

    // A status other than the expected one is an error, never a sample.
    l.work = Work::Fixed {
        request: Arc::new(http1::get(&addr.to_string(), "/", "")),
        expect: 204,
    };
    l.max_units = Some(50);
    let s = load::run(&l).await.unwrap();
    assert_eq!(s.count, 0);
    assert_eq!(s.errors, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_cpu_per_request_is_measured_over_the_window() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(baseline::serve(listener, std::future::pending()));
    let request = Arc::new(http1::get(&addr.to_string(), "/", ""));
    let mut l = load(
        addr,
        2,
        Work::Fixed {
            request,
            expect: 200,
        },
    );
    l.duration = Duration::from_millis(400);
    l.cpu_pids = vec![std::process::id()];
    let s = load::run(&l).await.unwrap();
    assert!(s.count > 0);
    assert!(s.server_cpu_us.is_some_and(|us| us > 0.0), "{s:?}");
    l.cpu_pids.clear();
    assert_eq!(load::run(&l).await.unwrap().server_cpu_us, None);
}

#[derive(Default)]
struct Fake {
    next: AtomicU64,
    open: Mutex<HashSet<String>>,
    reported: AtomicU64,
}

async fn fake_get(State(f): State<Arc<Fake>>) -> Json<Value> {
    let lease = format!("0.{}", f.next.fetch_add(1, Ordering::Relaxed));
    f.open.lock().unwrap().insert(lease.clone());
    Json(json!({"id": "t1", "lease": lease, "token": "secret"}))
}

async fn fake_report(
    State(f): State<Arc<Fake>>,
    Json(b): Json<Value>,
) -> Result<Json<Value>, axum::http::StatusCode> {
    let lease = b["lease"].as_str().unwrap_or_default().to_string();
    if b["outcome"] != "success" || !f.open.lock().unwrap().remove(&lease) {
        return Err(axum::http::StatusCode::NOT_FOUND);
    }
    f.reported.fetch_add(1, Ordering::Relaxed);
    Ok(Json(json!({"ok": true})))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_pairs_report_every_lease_they_get() {
    let fake = Arc::new(Fake::default());
    let app = Router::new()
        .route("/api/token/get", get(fake_get))
        .route("/api/token/report", post(fake_report))
        .with_state(fake.clone());
    let addr = serve(app).await;
    let host = addr.to_string();
    let mut l = load(
        addr,
        3,
        Work::LeasePair {
            get: Arc::new(http1::get(&host, "/api/token/get", "")),
            host,
        },
    );
    l.warmup = Duration::ZERO;
    l.max_units = Some(300);
    let s = load::run(&l).await.unwrap();
    assert_eq!((s.count, s.errors), (300, 0));
    assert_eq!(fake.reported.load(Ordering::Relaxed), 300);
    assert!(fake.open.lock().unwrap().is_empty());
}

#[tokio::test]
async fn only_loopback_and_sane_connection_counts() {
    let work = Work::Fixed {
        request: Arc::new(vec![]),
        expect: 200,
    };
    let far = load("192.0.2.1:80".parse().unwrap(), 1, work.clone());
    assert!(matches!(
        load::run(&far).await,
        Err(LoadError::NotLoopback(_))
    ));
    let none = load("127.0.0.1:9".parse().unwrap(), 0, work);
    assert!(matches!(
        load::run(&none).await,
        Err(LoadError::Connections)
    ));
}

#[tokio::test]
async fn a_dead_server_gives_errors_not_a_hang() {
    let port = tokenlb_bench::procs::free_port().unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut l = load(
        addr,
        2,
        Work::Fixed {
            request: Arc::new(http1::get("x", "/", "")),
            expect: 200,
        },
    );
    l.warmup = Duration::ZERO;
    l.duration = Duration::from_millis(200);
    let s = load::run(&l).await.unwrap();
    assert_eq!(s.count, 0);
    assert!(s.errors > 0);
}
