//! Property tests of fairness: `weighted` gives each token its weight's share over a cycle of
//! picks (stride scheduling's bound), `round_robin` visits every eligible token exactly once
//! per cycle whatever was switched on or off before the cycle.

use crate::common::*;
use proptest::prelude::*;
use std::collections::HashMap;
use tokenlb_core::Strategy as LbStrategy;
use tokenlb_core::{Outcome, OutcomeClass, Policy, Pool, TokenId, TokenPatch};

fn pick_n(p: &mut Pool, s: LbStrategy, n: u64) -> HashMap<TokenId, u64> {
    let mut r = rng();
    let mut got = HashMap::new();
    for _ in 0..n {
        let l = p.pick(s, T0, &mut r).unwrap();
        p.report(l.id, &Outcome::success(), T0, &mut r).unwrap();
        *got.entry(l.token_id).or_default() += 1;
    }
    got
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn weighted_gives_each_token_its_share_of_every_cycle(
        weights in proptest::collection::vec(1..=1000u32, 1..8),
        cycles in 1..4u64,
    ) {
        let mut p = Pool::new("w", Policy::default());
        for (i, &w) in weights.iter().enumerate() {
            let mut s = spec(i);
            s.weight = w;
            p.insert(s, T0).unwrap();
        }
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let got = pick_n(&mut p, LbStrategy::Weighted, total * cycles);
        for (i, &w) in weights.iter().enumerate() {
            let have = got.get(&id(i)).copied().unwrap_or(0);
            let want = u64::from(w) * cycles;
            // Stride scheduling: off by at most about one pick per competing token.
            prop_assert!(have.abs_diff(want) <= weights.len() as u64, "token {} weight {}: {} vs {}", i, w, have, want);
        }
    }

    #[test]
    fn round_robin_visits_each_eligible_token_once_per_cycle(
        n in 1..12usize,
        toggles in proptest::collection::vec((0..12usize, any::<bool>()), 0..20),
    ) {
        let mut p = pool(n);
        for (t, on) in toggles {
            let patch = TokenPatch { enabled: Some(on), ..TokenPatch::default() };
            p.patch(&id(t % n), patch, T0).unwrap();
            // A few picks between toggles move the cursor somewhere arbitrary.
            let _ = p.pick(LbStrategy::RoundRobin, T0, &mut rng()).map(|l| p.report(l.id, &Outcome::success(), T0, &mut rng()));
        }
        let eligible = p.eligible_len() as u64;
        if eligible > 0 {
            for _ in 0..3 {
                let got = pick_n(&mut p, LbStrategy::RoundRobin, eligible);
                prop_assert_eq!(got.len() as u64, eligible);
                prop_assert!(got.values().all(|&c| c == 1));
            }
        }
    }

    #[test]
    fn best_leaves_no_token_stuck(
        n in 2..8usize,
        history in proptest::collection::vec((0..8usize, 0..4u8), 0..300),
    ) {
        // Any mix of outcomes (successes, transient failures, rate limits, client errors)
        // reported against `best`'s picks and straight to tokens; then the upstream heals.
        // Within the window plus the longest cooling every token is active again and back
        // to an even share: no score, schedule or half-open flag is left stuck.
        let mut p = pool(n);
        let mut r = rng();
        let mut now = T0;
        for (t, c) in history {
            let class = match c {
                0 => OutcomeClass::Success,
                1 => OutcomeClass::Transient,
                2 => OutcomeClass::RateLimited,
                _ => OutcomeClass::ClientError,
            };
            now += 100;
            if t < n {
                p.report_token(&id(t), &Outcome::new(class), now, &mut r).unwrap();
            } else if let Ok(l) = p.pick(LbStrategy::Best, now, &mut r) {
                p.report(l.id, &Outcome::new(class), now, &mut r).unwrap();
            }
        }
        let heal = now + 1000 * (Policy::default().cooling_cap_s * 2 + Policy::default().best_window_s);
        let mut last = HashMap::<TokenId, u64>::new();
        let total = 400 * n as u64;
        for k in 0..total * 2 {
            now = (now + 1000).max(if k == total { heal } else { 0 });
            if let Ok(l) = p.pick(LbStrategy::Best, now, &mut r) {
                p.report(l.id, &Outcome::success(), now, &mut r).unwrap();
                if k >= total {
                    *last.entry(l.token_id).or_default() += 1;
                }
            }
        }
        for i in 0..n {
            prop_assert_eq!(p.get(&id(i)).unwrap().state, tokenlb_core::TokenState::Active);
            let have = last.get(&id(i)).copied().unwrap_or(0);
            prop_assert!(have * 2 * n as u64 >= total, "token {}: {:?}", i, last);
        }
    }
}
