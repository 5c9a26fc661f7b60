//! What the DESIGN §13 metrics cost on the hot path: one histogram observation (the bucket
//! walk and two relaxed atomic adds), and the manager's per-request bookkeeping built on it
//! (a pick-time observation under the pool map's read lock, a request-time observation by
//! route, method and status class), single-threaded and from two threads at once.
//!
//! `cargo bench -p tokenlb-manager --bench metrics`. No thresholds: figures go to
//! BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;
use tokenlb_core::{Outcome, OutcomeClass};
use tokenlb_manager::metrics::histogram::{Histogram, HTTP_BOUNDS, PICK_BOUNDS};
use tokenlb_manager::metrics::Metrics;

fn histogram(c: &mut Criterion) {
    let h = Histogram::default();
    let mut ns = 0u64;
    c.bench_function("histogram/observe", |b| {
        b.iter(|| {
            ns = (ns + 7919) % 20_000_000;
            h.observe(black_box(&PICK_BOUNDS), black_box(ns));
        })
    });
    let m = Metrics::default();
    m.pick_duration("default", Duration::from_micros(1));
    c.bench_function("metrics/pick_duration", |b| {
        b.iter(|| m.pick_duration(black_box("default"), black_box(Duration::from_nanos(900))))
    });
    m.http_duration("/api/token/get", "GET", 200, Duration::from_micros(1));
    c.bench_function("metrics/http_duration", |b| {
        b.iter(|| {
            m.http_duration(
                black_box("/api/token/get"),
                "GET",
                black_box(200),
                black_box(Duration::from_micros(80)),
            )
        })
    });
    let mut o = Outcome::new(OutcomeClass::Success);
    o.latency_ms = Some(40);
    c.bench_function("metrics/reported", |b| {
        b.iter(|| m.reported(black_box(&o), black_box("default")))
    });
    // Two threads observing the same series (contention on the same cache lines).
    let shared = Arc::new(Histogram::default());
    let other = shared.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let t = std::thread::spawn(move || {
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            other.observe(&HTTP_BOUNDS, 3_000_000);
        }
    });
    c.bench_function("histogram/observe_contended", |b| {
        b.iter(|| shared.observe(black_box(&HTTP_BOUNDS), black_box(3_000_000)))
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = t.join();
}

criterion_group!(benches, histogram);
criterion_main!(benches);
