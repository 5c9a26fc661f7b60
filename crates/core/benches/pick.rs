//! One pick per strategy at 10, 1,000 and 100,000 tokens (issue 2 goal: < 1 µs at 100,000
//! and 100,000 no more than 3× slower than 1,000).
//!
//! - `pick+report/…`: a pick and the immediate report of its lease (success, 40 ms), so
//!   in-flight stays bounded — the steady state of a busy pool.
//! - `pick/…`: picks alone, timed in batches of 1,000 whose leases are then reported
//!   outside the timed section.
//!
//! Time advances 1 ms per operation so windows, minutes and heaps move as in real use.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::hint::black_box;
use std::time::{Duration, Instant};
use tokenlb_core::*;

const T0: Millis = 1_700_000_000_000;
const SIZES: [usize; 3] = [10, 1_000, 100_000];

/// A pool of `n` tokens whose policy's strategy is `s` (as a pool configured for it would be).
fn pool(n: usize, s: Strategy) -> Pool {
    let policy = Policy {
        strategy: s,
        ..Policy::default()
    };
    let mut p = Pool::new("bench", policy);
    for i in 0..n {
        let mut s = TokenSpec::new(
            TokenId(format!("t_{i:07}")),
            format!("token {i}"),
            Secret::new(format!("secret-{i:07}-0123456789abcdef")),
        );
        s.weight = 1 + (i as u32 * 7919) % 1000;
        p.insert(s, T0).unwrap();
    }
    p
}

fn ok() -> Outcome {
    let mut o = Outcome::success();
    o.latency_ms = Some(40);
    o
}

fn pick_and_report(c: &mut Criterion) {
    let mut g = c.benchmark_group("pick+report");
    for s in Strategy::ALL {
        for n in SIZES {
            let mut p = pool(n, s);
            let mut rng = SmallRng::seed_from_u64(1);
            let mut now = T0;
            let o = ok();
            g.bench_function(BenchmarkId::new(s.as_str(), n), |b| {
                b.iter(|| {
                    now += 1;
                    let l = p.pick(s, now, &mut rng).unwrap();
                    black_box(p.report(l.id, &o, now, &mut rng).unwrap());
                })
            });
        }
    }
    g.finish();
}

fn pick_alone(c: &mut Criterion) {
    let mut g = c.benchmark_group("pick");
    for s in Strategy::ALL {
        for n in SIZES {
            let mut p = pool(n, s);
            let mut rng = SmallRng::seed_from_u64(2);
            let mut now = T0;
            let o = ok();
            let mut leases = Vec::with_capacity(1000);
            g.bench_function(BenchmarkId::new(s.as_str(), n), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        let batch = left.min(1000);
                        left -= batch;
                        now += 1;
                        let start = Instant::now();
                        for _ in 0..batch {
                            leases.push(black_box(p.pick(s, now, &mut rng).unwrap()).id);
                        }
                        total += start.elapsed();
                        for id in leases.drain(..) {
                            p.report(id, &o, now, &mut rng).unwrap();
                        }
                    }
                    total
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, pick_and_report, pick_alone);
criterion_main!(benches);
