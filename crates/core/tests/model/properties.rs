//! Property tests of the pool's invariants under arbitrary sequences of picks, outcomes,
//! ticks, health checks, patches, refreshes, inserts and removals:
//! - the incremental bookkeeping (eligible index, counts, in-flight) always equals a
//!   brute-force recount (`Pool::check_invariants`);
//! - a pick never takes a token past its in-flight limit (1 on half-open probation) nor past
//!   its rpm in a minute;
//! - no token is left out of rotation without a visible reason, and every token has a way
//!   back: time ends cooling and leases, a health check brings invalid back, an admin brings
//!   disabled and expired back.

use crate::common::*;
use proptest::prelude::*;
use std::collections::HashMap;
use tokenlb_core::Strategy as LbStrategy;
use tokenlb_core::{
    Lease, Limits, Millis, Outcome, OutcomeClass, Policy, Pool, Secret, TokenId, TokenPatch,
    TokenState, TokenView,
};

#[derive(Clone, Debug)]
enum Op {
    Pick(usize),
    Report(usize, usize, Option<u64>, Option<u32>),
    ReportToken(usize, usize),
    Wait(u64),
    Health(usize, usize),
    Enable(usize, bool),
    Limits(usize, Option<u32>, Option<u32>),
    Expires(usize, Option<u64>),
    Refresh(usize),
    Remove(usize),
    Insert,
}

const CLASSES: [OutcomeClass; 7] = OutcomeClass::ALL;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..6usize).prop_map(Op::Pick),
        6 => (0..8usize, 0..7usize, proptest::option::of(0..120u64), proptest::option::of(1..2000u32))
            .prop_map(|(l, c, r, ms)| Op::Report(l, c, r, ms)),
        3 => (0..8usize, 0..7usize).prop_map(|(t, c)| Op::ReportToken(t, c)),
        4 => prop_oneof![0..2_000u64, 0..120_000u64, 0..1_000_000u64].prop_map(Op::Wait),
        1 => (0..8usize, 0..7usize).prop_map(|(t, c)| Op::Health(t, c)),
        1 => (0..8usize, any::<bool>()).prop_map(|(t, e)| Op::Enable(t, e)),
        1 => (0..8usize, proptest::option::of(1..5u32), proptest::option::of(1..4u32))
            .prop_map(|(t, r, m)| Op::Limits(t, r, m)),
        1 => (0..8usize, proptest::option::of(0..600_000u64)).prop_map(|(t, e)| Op::Expires(t, e)),
        1 => (0..8usize).prop_map(Op::Refresh),
        1 => (0..8usize).prop_map(Op::Remove),
        1 => Just(Op::Insert),
    ]
}

struct World {
    pool: Pool,
    now: Millis,
    rng: rand::rngs::StdRng,
    open: Vec<Lease>,
    next_token: usize,
    /// Picks per (token, minute), to check rpm.
    per_minute: HashMap<(TokenId, u64), u32>,
}

impl World {
    fn ids(&self) -> Vec<TokenId> {
        self.pool.views().into_iter().map(|v| v.id).collect()
    }

    fn nth(&self, i: usize) -> Option<TokenId> {
        let ids = self.ids();
        (!ids.is_empty()).then(|| ids[i % ids.len()].clone())
    }

    fn apply(&mut self, op: Op) {
        let now = self.now;
        match op {
            Op::Pick(s) => {
                let before: HashMap<TokenId, TokenView> = self
                    .pool
                    .views()
                    .into_iter()
                    .map(|v| (v.id.clone(), v))
                    .collect();
                if let Ok(l) = self.pool.pick(LbStrategy::ALL[s], now, &mut self.rng) {
                    let v = self.pool.get(&l.token_id).unwrap();
                    let b = &before[&l.token_id];
                    let max = if b.half_open {
                        Some(1)
                    } else {
                        v.limits.max_in_flight
                    };
                    assert!(
                        max.is_none_or(|m| v.in_flight <= m),
                        "in-flight over limit: {v:?}"
                    );
                    let n = self
                        .per_minute
                        .entry((l.token_id.clone(), now / 60_000))
                        .or_default();
                    *n += 1;
                    assert!(v.limits.rpm.is_none_or(|r| *n <= r), "rpm exceeded: {v:?}");
                    assert!(matches!(b.state, TokenState::Active | TokenState::Cooling));
                    self.open.push(l);
                }
            }
            Op::Report(l, c, retry, ms) => {
                if self.open.is_empty() {
                    return;
                }
                let lease = self.open.swap_remove(l % self.open.len());
                let mut o = Outcome::new(CLASSES[c]);
                o.retry_after_s = retry;
                o.latency_ms = ms;
                // Unknown if it expired or its token was removed; never a panic.
                let _ = self.pool.report(lease.id, &o, now, &mut self.rng);
            }
            Op::ReportToken(t, c) => {
                if let Some(id) = self.nth(t) {
                    self.pool
                        .report_token(&id, &Outcome::new(CLASSES[c]), now, &mut self.rng)
                        .unwrap();
                }
            }
            Op::Wait(ms) => self.now += ms,
            Op::Health(t, c) => {
                if let Some(id) = self.nth(t) {
                    self.pool
                        .health_result(&id, &Outcome::new(CLASSES[c]), now, &mut self.rng)
                        .unwrap();
                }
            }
            Op::Enable(t, e) => {
                if let Some(id) = self.nth(t) {
                    let r = self.pool.patch(
                        &id,
                        TokenPatch {
                            enabled: Some(e),
                            ..Default::default()
                        },
                        now,
                    );
                    assert!(r.is_ok() || e, "disabling always works");
                }
            }
            Op::Limits(t, rpm, mif) => {
                if let Some(id) = self.nth(t) {
                    let limits = Limits {
                        rpm,
                        max_in_flight: mif,
                    };
                    self.pool
                        .patch(
                            &id,
                            TokenPatch {
                                limits: Some(limits),
                                ..Default::default()
                            },
                            now,
                        )
                        .unwrap();
                }
            }
            Op::Expires(t, e) => {
                if let Some(id) = self.nth(t) {
                    let at = e.map(|d| now + d);
                    self.pool
                        .patch(
                            &id,
                            TokenPatch {
                                expires_at: Some(at),
                                ..Default::default()
                            },
                            now,
                        )
                        .unwrap();
                }
            }
            Op::Refresh(t) => {
                if let Some(id) = self.nth(t) {
                    self.pool
                        .replace_secret(&id, Secret::new("refreshed-secret-0000"), None, now)
                        .unwrap();
                }
            }
            Op::Remove(t) => {
                if let Some(id) = self.nth(t) {
                    assert!(self.pool.remove(&id).is_some());
                }
            }
            Op::Insert => {
                self.pool.insert(spec(self.next_token), now).unwrap();
                self.next_token += 1;
            }
        }
    }

    fn check(&mut self) {
        self.pool.tick(self.now, &mut self.rng);
        self.pool.check_invariants(self.now).unwrap();
        for v in self.pool.views() {
            if v.state != TokenState::Active {
                assert!(v.state_reason.is_some(), "no reason: {v:?}");
            }
            if v.state == TokenState::Cooling {
                assert!(v.state_until.is_some(), "cooling without an end: {v:?}");
            }
        }
    }

    /// Every token can be brought back into rotation.
    fn bring_everything_back(&mut self) {
        self.now += 40 * 86_400_000; // past any cooling (≤ 31 days), lease and rpm window
        self.check();
        assert_eq!(self.pool.leases_open(), 0);
        for v in self.pool.views() {
            let back = |p: &mut Pool, patch: TokenPatch, now| p.patch(&v.id, patch, now).unwrap();
            match v.state {
                TokenState::Active => {}
                TokenState::Cooling => assert!(v.half_open, "cooling ended: {v:?}"),
                TokenState::Invalid => {
                    let ch = self
                        .pool
                        .health_result(&v.id, &Outcome::success(), self.now, &mut self.rng)
                        .unwrap();
                    assert_eq!(ch.last().unwrap().to, TokenState::Active);
                }
                TokenState::Disabled | TokenState::Expired => {
                    let patch = TokenPatch {
                        expires_at: Some(None),
                        enabled: Some(true),
                        ..Default::default()
                    };
                    back(&mut self.pool, patch, self.now);
                }
            }
        }
        self.check();
        assert_eq!(
            self.pool.eligible_len(),
            self.pool.len(),
            "{:#?}",
            self.pool.views()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn pool_invariants_hold_under_any_sequence(
        n in 1..6usize,
        pct in prop_oneof![Just(0u32), Just(50), Just(100)],
        seed in any::<u64>(),
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let policy = Policy { max_cooling_percent: pct, consecutive_failures: 2, lease_ttl_s: 30, ..Policy::default() };
        let mut w = World {
            pool: pool_with(n, policy),
            now: T0,
            rng: rand::SeedableRng::seed_from_u64(seed),
            open: Vec::new(),
            next_token: n,
            per_minute: HashMap::new(),
        };
        for op in ops {
            w.apply(op);
            w.check();
        }
        w.bring_everything_back();
    }
}
