//! Strategy behaviour through the public pool API (issue 2, "It must show": strategies).

use crate::common::*;
use std::collections::HashMap;
use tokenlb_core::*;

#[test]
fn round_robin_gives_every_eligible_token_exactly_once_per_cycle() {
    let mut p = pool(7);
    let mut r = rng();
    // Take token 3 out of rotation.
    p.patch(
        &id(3),
        TokenPatch {
            enabled: Some(false),
            ..Default::default()
        },
        T0,
    )
    .unwrap();
    for cycle in 0..5 {
        let mut seen = Vec::new();
        for _ in 0..6 {
            let l = p.pick(Strategy::RoundRobin, T0 + cycle, &mut r).unwrap();
            p.report(l.id, &Outcome::success(), T0 + cycle, &mut r)
                .unwrap();
            seen.push(l.token_id);
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 6, "cycle {cycle}: {seen:?}");
        assert!(!seen.contains(&id(3)));
    }
}

#[test]
fn weighted_matches_weights_within_one_percent_over_100k_picks() {
    let weights = [1u32, 10, 100, 250, 639];
    let mut p = Pool::new("w", Policy::default());
    for (i, &w) in weights.iter().enumerate() {
        let mut s = spec(i);
        s.weight = w;
        p.insert(s, T0).unwrap();
    }
    let mut r = rng();
    let mut got: HashMap<TokenId, u64> = HashMap::new();
    for _ in 0..100_000 {
        let l = p.pick(Strategy::Weighted, T0, &mut r).unwrap();
        p.report(l.id, &Outcome::success(), T0, &mut r).unwrap();
        *got.entry(l.token_id).or_default() += 1;
    }
    let total: u32 = weights.iter().sum();
    for (i, &w) in weights.iter().enumerate() {
        let want = 100_000.0 * f64::from(w) / f64::from(total);
        let have = got.get(&id(i)).copied().unwrap_or(0) as f64;
        // Within 1 % of the expected count (and at least one pick for the lightest).
        assert!(
            (have - want).abs() <= (want * 0.01).max(1.0),
            "token {i} weight {w}: {have} vs {want}"
        );
    }
}

/// Picks with `best` and reports `class_of(token index)`, `n` times, one millisecond apart;
/// returns the picks per token index.
fn best_shares(
    p: &mut Pool,
    n: usize,
    start: Millis,
    mut class_of: impl FnMut(usize) -> OutcomeClass,
) -> Vec<usize> {
    let mut r = rng();
    let mut got = vec![0usize; p.len()];
    for k in 0..n {
        let now = start + k as Millis;
        let l = p.pick(Strategy::Best, now, &mut r).expect("a token");
        let i: usize = l.token_id.0[2..].parse().unwrap();
        got[i] += 1;
        p.report(l.id, &outcome(class_of(i)), now, &mut r).unwrap();
    }
    got
}

#[test]
fn best_spreads_over_equally_healthy_tokens() {
    // Issue 14: 60 picks all went to the token with the most successes. Give token 0 a long
    // history first, as demo-1 had; every token still gets its share.
    let mut p = pool(10);
    for _ in 0..1000 {
        report(&mut p, 0, OutcomeClass::Success, T0);
    }
    let got = best_shares(&mut p, 1000, T0 + 1, |_| OutcomeClass::Success);
    println!("best over 1,000 picks, 10 healthy tokens: {got:?}");
    let fair = 1000 / 10;
    for (i, &n) in got.iter().enumerate() {
        assert!(n <= 2 * fair && n >= fair / 2, "token {i}: {got:?}");
    }
}

#[test]
fn best_gives_a_failing_token_less_than_five_percent() {
    // Default policy (the failing token cools, then gets half-open probes) and a lenient one
    // (it stays active and only its score keeps it out).
    let lenient = Policy {
        consecutive_failures: 1000,
        error_rate_threshold: 1.0,
        ..Policy::default()
    };
    for policy in [Policy::default(), lenient] {
        let mut p = pool_with(10, policy.clone());
        let got = best_shares(&mut p, 1000, T0, |i| {
            if i == 3 {
                OutcomeClass::Transient
            } else {
                OutcomeClass::Success
            }
        });
        println!("best over 1,000 picks, token 3 always failing: {got:?}");
        assert!(got[3] * 20 < 1000, "{policy:?}: {got:?}");
        let healthy = &got[..3]
            .iter()
            .chain(&got[4..])
            .copied()
            .collect::<Vec<_>>();
        assert!(healthy.iter().all(|&n| n >= 80), "{got:?}");
    }
}

#[test]
fn best_probes_a_half_open_token_at_its_next_pick() {
    let mut p = pool(5);
    let mut now = T0;
    while state(&p, 2) != TokenState::Cooling {
        report(&mut p, 2, OutcomeClass::Transient, now);
        now += 1;
    }
    let until = p
        .get(&id(2))
        .unwrap()
        .state_until
        .expect("cooling deadline");
    // Busy traffic on the others until the cooling ends; the first pick after it is the probe.
    best_shares(&mut p, 50, now, |_| OutcomeClass::Success);
    let l = p.pick(Strategy::Best, until + 1, &mut rng()).unwrap();
    assert_eq!(l.token_id, id(2));
    assert!(p.get(&id(2)).unwrap().half_open);
    p.report(l.id, &Outcome::success(), until + 2, &mut rng())
        .unwrap();
    assert_eq!(state(&p, 2), TokenState::Active);
}

#[test]
fn best_scores_optimistically_and_halves_per_consecutive_failure() {
    let mut p = pool(3);
    assert_eq!(p.get(&id(0)).unwrap().score, 1.0);
    let mut order = Vec::new();
    for k in 0..6 {
        order.push(use_once(&mut p, Strategy::Best, T0 + k, OutcomeClass::ClientError).0);
    }
    // Equal scores (client errors count for nothing): least recently used first → rotation.
    assert_eq!(order, vec![id(0), id(1), id(2), id(0), id(1), id(2)]);
    report(&mut p, 0, OutcomeClass::Transient, T0 + 10);
    let s = p.get(&id(0)).unwrap().score;
    assert!((s - 0.5 * 0.5).abs() < 1e-6, "{s}");
    for k in 0..20 {
        assert_ne!(
            use_once(
                &mut p,
                Strategy::Best,
                T0 + 20 + k,
                OutcomeClass::ClientError
            )
            .0,
            id(0)
        );
    }
}

#[test]
fn least_in_flight_prefers_the_lighter_token() {
    let mut p = pool(2);
    let mut r = rng();
    // Load token 0 with three open leases through round robin + a limit on token 1.
    let mut open = Vec::new();
    for _ in 0..6 {
        open.push(p.pick(Strategy::RoundRobin, T0, &mut r).unwrap());
    }
    for l in open.iter().filter(|l| l.token_id == id(1)) {
        p.report(l.id, &Outcome::success(), T0, &mut r).unwrap();
    }
    for _ in 0..50 {
        let l = p.pick(Strategy::LeastInFlight, T0, &mut r).unwrap();
        assert_eq!(l.token_id, id(1));
        p.report(l.id, &Outcome::success(), T0, &mut r).unwrap();
    }
}

#[test]
fn latency_prefers_the_faster_token() {
    let mut p = pool(2);
    let mut r = rng();
    for (i, ms) in [(0usize, 900u32), (1, 20)] {
        let mut o = Outcome::success();
        o.latency_ms = Some(ms);
        for _ in 0..5 {
            p.report_token(&id(i), &o, T0, &mut r).unwrap();
        }
    }
    for _ in 0..50 {
        let l = p.pick(Strategy::Latency, T0 + 100, &mut r).unwrap();
        assert_eq!(l.token_id, id(1));
        p.report(l.id, &Outcome::success(), T0 + 100, &mut r)
            .unwrap();
    }
}

#[test]
fn every_strategy_skips_ineligible_tokens_and_respects_limits() {
    for s in Strategy::ALL {
        let mut p = pool(6);
        let mut r = rng();
        p.patch(
            &id(0),
            TokenPatch {
                enabled: Some(false),
                ..Default::default()
            },
            T0,
        )
        .unwrap();
        report(&mut p, 1, OutcomeClass::Auth, T0);
        report(&mut p, 2, OutcomeClass::RateLimited, T0);
        let lim = |rpm, mif| TokenPatch {
            limits: Some(Limits {
                rpm,
                max_in_flight: mif,
            }),
            ..Default::default()
        };
        p.patch(&id(3), lim(Some(4), None), T0).unwrap();
        p.patch(&id(4), lim(None, Some(2)), T0).unwrap();
        p.patch(&id(5), lim(Some(3), Some(1)), T0).unwrap();
        let mut picks: HashMap<TokenId, u32> = HashMap::new();
        let mut open = Vec::new();
        // Never report: in-flight only grows, so limits must hold on their own.
        while let Ok(l) = p.pick(s, T0 + 1000, &mut r) {
            *picks.entry(l.token_id.clone()).or_default() += 1;
            open.push(l);
            assert!(open.len() <= 10, "{s}: too many picks {picks:?}");
        }
        assert_eq!(picks.get(&id(3)), Some(&4), "{s}");
        assert_eq!(picks.get(&id(4)), Some(&2), "{s}");
        assert_eq!(picks.get(&id(5)), Some(&1), "{s}");
        assert_eq!(picks.len(), 3, "{s}: {picks:?}");
        p.check_invariants(T0 + 1000).unwrap();
        // Releasing token 5's lease does not beat its rpm… but token 4 comes back.
        for l in open.drain(..) {
            p.report(l.id, &Outcome::success(), T0 + 2000, &mut r)
                .unwrap();
        }
        let mut again: HashMap<TokenId, u32> = HashMap::new();
        for _ in 0..20 {
            let l = p.pick(s, T0 + 2000, &mut r).unwrap();
            *again.entry(l.token_id.clone()).or_default() += 1;
            p.report(l.id, &Outcome::success(), T0 + 2000, &mut r)
                .unwrap();
        }
        assert_eq!(again.get(&id(3)), None, "{s}: rpm 4 used up this minute");
        assert!(
            again.get(&id(5)).copied().unwrap_or(0) <= 2,
            "{s}: rpm 3 in total"
        );
        assert!(again.contains_key(&id(4)), "{s}");
    }
}
