//! Handing dirty counters over in chunks (`begin_take_dirty` / `take_dirty_chunk`): however
//! requests interleave with the chunks, every per-minute count reaches the store exactly once,
//! a token comes at most once per take, and the last record of a token carries its current
//! counters.

use crate::common::*;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use tokenlb_core::*;

type Minutes = HashMap<(TokenId, u64), (u32, u32)>;

fn absorb(got: &mut Minutes, last: &mut HashMap<TokenId, Counters>, out: Vec<Dirty>) {
    for d in out {
        for (m, r, f) in d.minutes {
            let e = got.entry((d.token_id.clone(), m)).or_default();
            e.0 += r;
            e.1 += f;
        }
        last.insert(d.token_id, d.counters);
    }
}

#[test]
fn chunked_takes_hand_every_count_over_once_while_requests_continue() {
    for seed in 0..30u64 {
        let mut r = rand::rngs::StdRng::seed_from_u64(seed);
        let n = 40;
        let mut p = pool(n);
        let mut now = T0;
        let mut sent: Minutes = HashMap::new();
        let mut got: Minutes = HashMap::new();
        let mut last: HashMap<TokenId, Counters> = HashMap::new();
        let mut removed = Vec::new();
        let mut next_id = n;
        let mut live: Vec<usize> = (0..n).collect();
        let mut touch = |p: &mut Pool, r: &mut rand::rngs::StdRng, live: &[usize], now: Millis| {
            let i = live[r.gen_range(0..live.len())];
            let failed = r.gen_bool(0.2);
            let class = if failed {
                OutcomeClass::Transient
            } else {
                OutcomeClass::Success
            };
            report(p, i, class, now);
            let e = sent.entry((id(i), now / 60_000)).or_default();
            e.0 += 1;
            e.1 += u32::from(failed);
        };
        for _round in 0..20 {
            for _ in 0..r.gen_range(0..60) {
                touch(&mut p, &mut r, &live, now);
                now += r.gen_range(0..4_000);
            }
            let mut take = p.begin_take_dirty();
            let mut seen = std::collections::HashSet::new();
            if r.gen_bool(0.5) {
                take.prepare();
            }
            while !take.is_done() {
                let mut out = Vec::new();
                let max = r.gen_range(1..8);
                let visited = p.take_dirty_chunk(&mut take, max, &mut out);
                assert!(visited <= max && out.len() <= visited);
                for d in &out {
                    assert!(
                        seen.insert(d.token_id.clone()),
                        "seed {seed}: once per take"
                    );
                }
                absorb(&mut got, &mut last, out);
                // Requests between chunks, sometimes across a minute boundary.
                for _ in 0..r.gen_range(0..4) {
                    touch(&mut p, &mut r, &live, now);
                    now += r.gen_range(0..20_000);
                }
                if r.gen_bool(0.05) && live.len() > 5 {
                    // A token goes; a new one may take its slot.
                    let k = live.swap_remove(r.gen_range(0..live.len()));
                    p.remove(&id(k));
                    removed.push(id(k));
                    p.insert(spec(next_id), now).unwrap();
                    live.push(next_id);
                    next_id += 1;
                }
            }
        }
        absorb(&mut got, &mut last, p.take_dirty());
        assert!(p.take_dirty().is_empty(), "seed {seed}: nothing twice");
        sent.retain(|(t, _), _| !removed.contains(t));
        got.retain(|(t, _), _| !removed.contains(t));
        assert_eq!(got, sent, "seed {seed}: every minute count exactly once");
        for &i in &live {
            if let Some(c) = last.get(&id(i)) {
                assert_eq!(
                    *c,
                    p.get(&id(i)).unwrap().counters,
                    "seed {seed}, token {i}"
                );
            }
        }
        p.check_invariants(now).unwrap();
    }
}

#[test]
fn a_token_touched_before_its_chunk_is_taken_once_with_the_newest_counters() {
    let mut p = pool(3);
    for i in 0..3 {
        report(&mut p, i, OutcomeClass::Success, T0);
    }
    let mut take = p.begin_take_dirty();
    take.prepare();
    assert_eq!(take.remaining(), 3);
    let mut out = Vec::new();
    p.take_dirty_chunk(&mut take, 1, &mut out);
    let first = out[0].token_id.clone();
    // Both an already-taken and a not-yet-taken token are touched again.
    let other = (0..3).map(id).find(|t| *t != first).unwrap();
    p.report_token(&first, &Outcome::success(), T0 + 1, &mut rng())
        .unwrap();
    p.report_token(&other, &Outcome::success(), T0 + 1, &mut rng())
        .unwrap();
    while !take.is_done() {
        p.take_dirty_chunk(&mut take, 1, &mut out);
    }
    assert_eq!(out.len(), 3);
    let o = out.iter().find(|d| d.token_id == other).unwrap();
    assert_eq!(
        (o.counters.success, o.minutes.clone()),
        (2, vec![(T0 / 60_000, 2, 0)])
    );
    // The already-taken token comes again in the next take, with its one new request.
    let next = p.take_dirty();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].token_id, first);
    assert_eq!(next[0].minutes, vec![(T0 / 60_000, 1, 0)]);
    assert_eq!(next[0].counters.success, 2);
}
