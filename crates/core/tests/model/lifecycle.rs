//! Token lifecycle and stats through the public API: insert validation and restore, removal
//! with open leases, per-minute deltas for the store, the pool's 24-hour series, totals.

use crate::common::*;
use tokenlb_core::*;

#[test]
fn insert_rejects_bad_weights_and_limits_clearly() {
    let mut p = pool(0);
    for w in [0, 1001] {
        let mut s = spec(1);
        s.weight = w;
        let e = p.insert(s, T0).unwrap_err();
        assert!(
            matches!(&e, PoolError::Invalid(m) if m.contains("weight")),
            "{e}"
        );
    }
    let mut s = spec(1);
    s.limits = Limits {
        rpm: Some(0),
        max_in_flight: None,
    };
    assert!(matches!(p.insert(s, T0), Err(PoolError::Invalid(m)) if m.contains("rpm")));
    let mut s = spec(1);
    s.limits = Limits {
        rpm: None,
        max_in_flight: Some(0),
    };
    assert!(p.insert(s, T0).is_err());
    assert!(p.is_empty());
    let patch = TokenPatch {
        weight: Some(0),
        name: Some("x".into()),
        ..Default::default()
    };
    p.insert(spec(1), T0).unwrap();
    assert!(p.patch(&id(1), patch, T0).is_err());
    assert_eq!(
        p.get(&id(1)).unwrap().name,
        "token 1",
        "a rejected patch changes nothing"
    );
    assert_eq!(
        p.patch(&id(9), TokenPatch::default(), T0),
        Err(PoolError::UnknownToken(id(9)))
    );
    assert_eq!(report_err(&mut p), PoolError::UnknownToken(id(9)));
}

fn report_err(p: &mut Pool) -> PoolError {
    p.report_token(&id(9), &Outcome::success(), T0, &mut rng())
        .unwrap_err()
}

#[test]
fn restored_tokens_keep_state_and_counters() {
    let mut p = pool(0);
    let mut cooling = spec(0);
    cooling.state = TokenState::Cooling;
    cooling.state_reason = Some("rate limited".into());
    cooling.state_until = Some(T0 + 10_000);
    cooling.counters.success = 7;
    cooling.counters.transient = 3;
    cooling.counters.client_error = 2;
    p.insert(cooling, T0).unwrap();
    let mut lost_end = spec(1);
    lost_end.state = TokenState::Cooling;
    p.insert(lost_end, T0).unwrap();
    let mut disabled = spec(2);
    disabled.state = TokenState::Disabled;
    p.insert(disabled, T0).unwrap();
    let st = p.stats();
    assert_eq!((st.success, st.failures, st.requests), (7, 3, 12));
    assert!((st.success_rate - 0.7).abs() < 1e-9);
    assert_eq!(
        p.get(&id(2)).unwrap().state_reason.as_deref(),
        Some("restored as disabled")
    );
    // A cooling token without an end recovers at the next tick; the other at its end.
    let (ch, _) = p.tick(T0, &mut rng());
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].token_id, id(1));
    assert_eq!(p.next_deadline(), Some(T0 + 10_000));
    let (ch, _) = p.tick(T0 + 10_000, &mut rng());
    assert_eq!(ch[0].token_id, id(0));
    assert!(p.get(&id(0)).unwrap().half_open);
    assert_eq!(state(&p, 2), TokenState::Disabled);
}

#[test]
fn removing_a_token_forgets_its_leases_and_its_totals() {
    let mut p = pool(2);
    let mut r = rng();
    report(&mut p, 0, OutcomeClass::Success, T0);
    let l = p.pick(Strategy::RoundRobin, T0, &mut r).unwrap();
    let victim = l.token_id.clone();
    assert_eq!(p.stats().in_flight, 1);
    let v = p.remove(&victim).unwrap();
    assert_eq!(v.in_flight, 1);
    assert_eq!(p.stats().in_flight, 0);
    assert_eq!(p.leases_open(), 0);
    assert_eq!(
        p.report(l.id, &Outcome::success(), T0, &mut r),
        Err(PoolError::UnknownLease)
    );
    assert!(p.remove(&victim).is_none());
    assert!(p.secret(&victim).is_none());
    p.check_invariants(T0).unwrap();
    // The slot is reused by a new token without inheriting anything.
    p.insert(spec(5), T0).unwrap();
    let v = p.get(&id(5)).unwrap();
    assert_eq!((v.in_flight, v.counters.success), (0, 0));
    p.check_invariants(T0).unwrap();
}

#[test]
fn take_dirty_hands_over_counters_and_per_minute_deltas_once() {
    let mut p = pool(3);
    let m0 = T0 / 60_000;
    report(&mut p, 0, OutcomeClass::Success, T0);
    report(&mut p, 0, OutcomeClass::Transient, T0 + 1);
    report(&mut p, 0, OutcomeClass::ClientError, T0 + 60_000); // next minute
    report(&mut p, 1, OutcomeClass::Success, T0);
    let mut d = p.take_dirty();
    d.sort_by(|a, b| a.token_id.cmp(&b.token_id));
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].token_id, id(0));
    assert_eq!(d[0].minutes, vec![(m0, 2, 1), (m0 + 1, 1, 0)]);
    assert_eq!(
        (
            d[0].counters.success,
            d[0].counters.transient,
            d[0].counters.client_error
        ),
        (1, 1, 1)
    );
    assert_eq!(d[1].minutes, vec![(m0, 1, 0)]);
    assert!(p.take_dirty().is_empty(), "nothing twice");
    // More in the same minute: only the new delta.
    report(&mut p, 0, OutcomeClass::Success, T0 + 60_001);
    assert_eq!(p.take_dirty()[0].minutes, vec![(m0 + 1, 1, 0)]);
    // A pick alone (last_used) makes a token dirty without minutes.
    let l = p
        .pick(Strategy::RoundRobin, T0 + 60_002, &mut rng())
        .unwrap();
    let d = p.take_dirty();
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].token_id.clone(), d[0].minutes.len()), (l.token_id, 0));
    assert_eq!(d[0].counters.last_used, Some(T0 + 60_002));
    // A removed token's untaken minutes are dropped.
    report(&mut p, 2, OutcomeClass::Success, T0);
    report(&mut p, 2, OutcomeClass::Success, T0 + 120_000);
    p.remove(&id(2));
    assert!(p.take_dirty().iter().all(|d| d.token_id != id(2)));
}

#[test]
fn the_pool_series_covers_24_hours_densely() {
    let mut p = pool(2);
    report(&mut p, 0, OutcomeClass::Success, T0);
    report(&mut p, 1, OutcomeClass::Auth, T0);
    report(&mut p, 1, OutcomeClass::Success, T0 + 3_600_000);
    let s = p.minute_series(T0 + 3_600_000);
    assert_eq!(s.len(), 1440);
    assert_eq!(s[1439], ((T0 + 3_600_000) / 60_000, 1, 0));
    assert_eq!(s[1439 - 60], (T0 / 60_000, 2, 1));
    assert!(
        s.windows(2).all(|w| w[1].0 == w[0].0 + 1),
        "consecutive minutes"
    );
    assert_eq!(s.iter().map(|b| b.1).sum::<u32>(), 3);
    let st = p.stats();
    assert_eq!(
        (st.requests, st.success, st.failures, st.total),
        (3, 2, 1, 2)
    );
    assert_eq!(st.by_state[2], (TokenState::Invalid, 1));
}

#[test]
fn views_mask_secrets_and_show_limits_and_scores() {
    let mut p = pool(1);
    let v = p.get(&id(0)).unwrap();
    assert_eq!(v.masked, "secr…efgh");
    assert!(!format!("{v:?}").contains("00000-abcd"));
    assert_eq!((v.weight, v.score, v.success_rate), (100, 1.0, 1.0));
    let mut o = Outcome::success();
    o.latency_ms = Some(100);
    p.report_token(&id(0), &o, T0, &mut rng()).unwrap();
    o.latency_ms = Some(200);
    p.report_token(&id(0), &o, T0, &mut rng()).unwrap();
    let v = p.get(&id(0)).unwrap();
    assert_eq!(v.counters.latency_ewma_ms, Some(120.0));
    assert_eq!(v.score, 1.0);
    assert_eq!(p.views().len(), 1);
}

#[test]
fn set_policy_applies_to_what_happens_next() {
    let mut p = pool(2);
    let mut r = rng();
    p.set_policy(Policy {
        lease_ttl_s: 7,
        strategy: Strategy::Weighted,
        ..Policy::default()
    });
    assert_eq!(p.policy().lease_ttl_s, 7);
    assert_eq!(p.name(), "default");
    let l = p.pick(Strategy::Weighted, T0, &mut r).unwrap();
    assert_eq!(l.deadline, T0 + 7_000);
    assert_eq!(p.next_deadline(), Some(T0 + 7_000));
    p.check_invariants(T0).unwrap();
}

#[test]
fn a_report_for_a_token_on_probation_from_before_the_cooling_counts() {
    // A lease taken before a rate limit, reported (success) while half-open: it is evidence
    // the token works, so the token is active again.
    let mut p = pool(1);
    let mut r = rng();
    let early = p.pick(Strategy::Best, T0, &mut r).unwrap();
    let mut limited = Outcome::new(OutcomeClass::RateLimited);
    limited.retry_after_s = Some(30);
    p.report_token(&id(0), &limited, T0, &mut r).unwrap();
    p.tick(T0 + 30_000, &mut r);
    assert!(p.get(&id(0)).unwrap().half_open);
    let (_, ch) = p
        .report(early.id, &Outcome::success(), T0 + 30_001, &mut r)
        .unwrap();
    assert_eq!(ch[0].to, TokenState::Active);
}
