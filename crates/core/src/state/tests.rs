//! Unit tests of the pure state machine (the pool-level tests are in `tests/`).

use super::*;
use crate::outcome::{Outcome, OutcomeClass};
use crate::policy::Policy;
use crate::types::{Millis, TokenState};
use rand::SeedableRng;

fn ctx(now: Millis, policy: &Policy, rail_room: bool) -> Ctx<'_> {
    Ctx {
        now,
        policy,
        rail_room,
    }
}

fn fresh() -> Health {
    Health::new(TokenState::Active, None, None, 0)
}

#[test]
fn client_error_and_unknown_change_nothing() {
    let p = Policy::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut h = fresh();
    for _ in 0..50 {
        for c in [OutcomeClass::ClientError, OutcomeClass::Unknown] {
            assert_eq!(
                h.on_outcome(&Outcome::new(c), ctx(1, &p, true), &mut rng),
                None
            );
        }
    }
    assert_eq!((h.state, h.consec_fail), (TokenState::Active, 0));
}

#[test]
fn a_rate_limit_while_cooling_only_extends() {
    let p = Policy::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut h = fresh();
    let mut o = Outcome::new(OutcomeClass::RateLimited);
    o.retry_after_s = Some(100);
    assert!(h.on_outcome(&o, ctx(0, &p, true), &mut rng).is_some());
    o.retry_after_s = Some(10);
    assert_eq!(h.on_outcome(&o, ctx(1_000, &p, true), &mut rng), None);
    assert_eq!(h.until, Some(100_000));
    o.retry_after_s = Some(200);
    assert!(h.on_outcome(&o, ctx(1_000, &p, true), &mut rng).is_some());
    assert_eq!(h.until, Some(201_000));
    // An absurd retry-after is capped.
    o.retry_after_s = Some(u64::MAX);
    h.on_outcome(&o, ctx(1_000, &p, true), &mut rng);
    assert_eq!(h.until, Some(1_000 + MAX_RETRY_AFTER_S * 1000));
}

#[test]
fn the_backoff_starts_over_after_a_quiet_period() {
    let p = Policy {
        cooling_jitter: 0.0,
        ..Policy::default()
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut h = fresh();
    let t = Outcome::new(OutcomeClass::Transient);
    let cool = |h: &mut Health, now: Millis, rng: &mut rand::rngs::StdRng| {
        for _ in 0..5 {
            h.on_outcome(&t, ctx(now, &p, true), rng);
        }
        let until = h.until.unwrap();
        h.health_ok(until);
        until - now
    };
    assert_eq!(cool(&mut h, 1_000, &mut rng), 30_000);
    assert_eq!(cool(&mut h, 40_000, &mut rng), 60_000, "soon again: longer");
    assert_eq!(
        cool(&mut h, 10_000_000, &mut rng),
        30_000,
        "after 10 quiet minutes: base"
    );
}

#[test]
fn without_rail_room_a_failing_token_stays_active_and_says_why() {
    let p = Policy::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut h = fresh();
    for _ in 0..6 {
        assert_eq!(
            h.on_outcome(
                &Outcome::new(OutcomeClass::Transient),
                ctx(5, &p, false),
                &mut rng
            ),
            None
        );
    }
    assert_eq!(h.state, TokenState::Active);
    assert!(h
        .reason
        .as_deref()
        .unwrap()
        .starts_with("kept active: 6 consecutive failures"));
    h.on_outcome(&Outcome::success(), ctx(6, &p, false), &mut rng);
    assert_eq!(h.reason, None, "the note goes with the next success");
}

#[test]
fn cooling_ms_respects_cap_and_jitter_even_with_odd_policies() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let p = Policy {
        cooling_jitter: f64::NAN,
        ..Policy::default()
    };
    assert_eq!(cooling_ms(&p, 3, &mut rng), 90_000);
    let p = Policy {
        cooling_jitter: 5.0,
        cooling_base_s: 0,
        ..Policy::default()
    };
    for streak in [0, 1, u32::MAX] {
        let d = cooling_ms(&p, streak, &mut rng);
        assert!((1..=(600_000.0 * 1.9) as u64).contains(&d), "{d}");
    }
}

#[test]
fn every_transition_names_its_cause_from_the_fixed_set() {
    let p = Policy {
        consecutive_failures: 1,
        ..Policy::default()
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let cause = |t: Option<Transition>| t.map(|t| t.cause);
    let mut h = fresh();
    let transient = Outcome::new(OutcomeClass::Transient);
    assert_eq!(
        cause(h.on_outcome(&transient, ctx(0, &p, true), &mut rng)),
        Some(ChangeCause::ConsecutiveFailures)
    );
    let until = h.until.expect("cooling has an end");
    assert_eq!(cause(h.end_cooling(until)), Some(ChangeCause::CoolingEnded));
    let ok = Outcome::new(OutcomeClass::Success);
    assert_eq!(
        cause(h.on_outcome(&ok, ctx(until, &p, true), &mut rng)),
        Some(ChangeCause::ProbeSucceeded)
    );
    let auth = Outcome::new(OutcomeClass::Auth);
    assert_eq!(
        cause(h.on_outcome(&auth, ctx(until, &p, true), &mut rng)),
        Some(ChangeCause::AuthFailure)
    );
    assert_eq!(cause(h.health_ok(until)), Some(ChangeCause::HealthCheck));
    let limited = Outcome::new(OutcomeClass::RateLimited);
    assert_eq!(
        cause(h.on_outcome(&limited, ctx(until, &p, true), &mut rng)),
        Some(ChangeCause::RateLimited)
    );
    assert_eq!(cause(h.set_enabled(false, until)), Some(ChangeCause::Admin));
    assert_eq!(cause(h.set_enabled(true, until)), Some(ChangeCause::Admin));
    assert_eq!(cause(h.expire(until)), Some(ChangeCause::Expired));
    assert_eq!(cause(h.refreshed(until)), Some(ChangeCause::Refreshed));
    let names: std::collections::HashSet<_> = ChangeCause::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(names.len(), ChangeCause::ALL.len(), "names are distinct");
}
