//! One test per state transition of DESIGN §2 "failure handling", through the pool API.

use crate::common::*;
use tokenlb_core::*;

fn with_retry(class: OutcomeClass, secs: u64) -> Outcome {
    let mut o = Outcome::new(class);
    o.retry_after_s = Some(secs);
    o.error = Some(format!("HTTP sample for {class}"));
    o
}

fn no_rail() -> Policy {
    Policy {
        max_cooling_percent: 100,
        ..Policy::default()
    }
}

#[test]
fn auth_makes_a_token_invalid_at_once_with_the_sample_error() {
    let mut p = pool(2);
    let mut o = with_retry(OutcomeClass::Auth, 0);
    o.status = Some(401);
    let ch = p.report_token(&id(0), &o, T0, &mut rng()).unwrap();
    assert_eq!(ch.len(), 1);
    let c = &ch[0];
    assert_eq!(
        (c.from, c.to, c.at),
        (TokenState::Active, TokenState::Invalid, T0)
    );
    assert!(c.reason.contains("401"), "{}", c.reason);
    assert_eq!(c.sample_error.as_deref(), Some("HTTP sample for auth"));
    let v = p.get(&id(0)).unwrap();
    assert_eq!(v.state_reason.as_deref(), Some(c.reason.as_str()));
    // Invalid never comes back on its own.
    let (ch, _) = p.tick(T0 + 86_400_000, &mut rng());
    assert!(ch.is_empty());
    assert_eq!(state(&p, 0), TokenState::Invalid);
}

#[test]
fn rate_limit_cools_until_retry_after_then_half_open() {
    let mut p = pool(2);
    let ch = p
        .report_token(
            &id(0),
            &with_retry(OutcomeClass::RateLimited, 42),
            T0,
            &mut rng(),
        )
        .unwrap();
    assert_eq!(ch[0].to, TokenState::Cooling);
    let v = p.get(&id(0)).unwrap();
    assert_eq!(v.state_until, Some(T0 + 42_000));
    assert_eq!(v.counters.times_cooled, 1);
    assert!(p.tick(T0 + 41_999, &mut rng()).0.is_empty());
    let (ch, _) = p.tick(T0 + 42_000, &mut rng());
    assert_eq!(ch.len(), 1);
    assert!(ch[0].reason.contains("half-open"));
    assert!(p.get(&id(0)).unwrap().half_open);
}

#[test]
fn rate_limit_and_quota_without_retry_after_use_the_default() {
    let mut p = pool(2);
    report(&mut p, 0, OutcomeClass::RateLimited, T0);
    report(&mut p, 1, OutcomeClass::QuotaExhausted, T0);
    for i in 0..2 {
        let v = p.get(&id(i)).unwrap();
        assert_eq!(
            (v.state, v.state_until),
            (TokenState::Cooling, Some(T0 + 60_000))
        );
    }
    assert!(p
        .get(&id(1))
        .unwrap()
        .state_reason
        .unwrap()
        .contains("quota"));
}

#[test]
fn quota_cools_until_the_reset_time() {
    let mut p = pool(1);
    p.report_token(
        &id(0),
        &with_retry(OutcomeClass::QuotaExhausted, 3600),
        T0,
        &mut rng(),
    )
    .unwrap();
    assert_eq!(p.get(&id(0)).unwrap().state_until, Some(T0 + 3_600_000));
}

#[test]
fn transient_cools_after_n_consecutive_failures() {
    let mut p = pool_with(4, no_rail());
    for k in 0..4 {
        assert!(report(&mut p, 0, OutcomeClass::Transient, T0 + k).is_empty());
    }
    // A success resets the streak.
    report(&mut p, 0, OutcomeClass::Success, T0 + 5);
    for k in 0..4 {
        assert!(report(&mut p, 0, OutcomeClass::Transient, T0 + 10 + k).is_empty());
    }
    // client_error never counts against the token.
    report(&mut p, 0, OutcomeClass::ClientError, T0 + 20);
    let ch = report(&mut p, 0, OutcomeClass::Transient, T0 + 21);
    assert_eq!(ch.len(), 1, "{ch:?}");
    assert!(
        ch[0].reason.contains("5 consecutive failures"),
        "{}",
        ch[0].reason
    );
    assert_eq!(state(&p, 0), TokenState::Cooling);
}

#[test]
fn transient_cools_when_the_windowed_error_rate_passes_the_threshold() {
    let mut p = pool_with(2, no_rail());
    // Alternate failures (never 5 in a row): 11 successes, 10 failures → 47.6 %, then 52 %.
    let mut now = T0;
    for k in 0..21 {
        let class = if k % 2 == 0 {
            OutcomeClass::Success
        } else {
            OutcomeClass::Transient
        };
        assert!(report(&mut p, 0, class, now).is_empty(), "k={k}");
        now += 1000;
    }
    assert!(
        report(&mut p, 0, OutcomeClass::Transient, now).is_empty(),
        "11/22 = 50 % is not > 50 %"
    );
    let ch = report(&mut p, 0, OutcomeClass::Transient, now + 1);
    assert_eq!(ch.len(), 1);
    assert!(ch[0].reason.contains("error rate"), "{}", ch[0].reason);
    // Fewer than 20 requests in the window never trip the rate breaker: 75 % errors over 19
    // requests (never 5 in a row) stay active; the 20th request trips it.
    let mut q = pool_with(2, no_rail());
    for k in 0..19 {
        let class = if k % 4 == 0 {
            OutcomeClass::Success
        } else {
            OutcomeClass::Transient
        };
        assert!(report(&mut q, 0, class, T0 + k).is_empty(), "k={k}");
    }
    let ch = report(&mut q, 0, OutcomeClass::Transient, T0 + 19);
    assert!(
        ch[0].reason.contains("error rate 75% over 20 requests"),
        "{}",
        ch[0].reason
    );
}

/// Cools token 0 for transient errors `times` times in a row (via failed half-open probes).
fn cool_repeatedly(p: &mut Pool, times: u32) -> Vec<u64> {
    let mut durations = Vec::new();
    let mut now = T0;
    for _ in 0..5 {
        report(p, 0, OutcomeClass::Transient, now);
    }
    for n in 0..times {
        let v = p.get(&id(0)).unwrap();
        assert_eq!(v.state, TokenState::Cooling);
        let until = v.state_until.unwrap();
        durations.push(until - now);
        now = until;
        p.tick(now, &mut rng());
        assert!(p.get(&id(0)).unwrap().half_open, "after cooling #{n}");
        if n + 1 < times {
            let ch = report(p, 0, OutcomeClass::Transient, now);
            assert!(
                ch[0].reason.contains("half-open probe failed"),
                "{}",
                ch[0].reason
            );
        }
    }
    durations
}

#[test]
fn cooling_time_grows_with_repeats_and_is_capped() {
    let policy = Policy {
        cooling_jitter: 0.0,
        ..no_rail()
    };
    let mut p = pool_with(2, policy);
    let d = cool_repeatedly(&mut p, 25);
    assert_eq!(&d[..4], &[30_000, 60_000, 90_000, 120_000]);
    assert!(d.iter().all(|&x| x <= 600_000));
    assert_eq!(d[24], 600_000);
    assert_eq!(p.get(&id(0)).unwrap().counters.times_cooled, 25);
}

#[test]
fn jitter_stays_within_its_bounds_and_varies() {
    let policy = Policy {
        cooling_jitter: 0.1,
        ..no_rail()
    };
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..40u64 {
        let mut p = pool_with(2, policy.clone());
        let mut r = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
        for _ in 0..5 {
            p.report_token(&id(0), &Outcome::new(OutcomeClass::Transient), T0, &mut r)
                .unwrap();
        }
        let d = p.get(&id(0)).unwrap().state_until.unwrap() - T0;
        assert!((27_000..=33_000).contains(&d), "{d}");
        seen.insert(d);
    }
    assert!(
        seen.len() > 10,
        "jitter should spread cooling times: {seen:?}"
    );
}

#[test]
fn half_open_lets_one_request_through_and_success_makes_it_active() {
    let mut p = pool(1);
    let mut r = rng();
    report(&mut p, 0, OutcomeClass::RateLimited, T0);
    assert!(p.pick(Strategy::Best, T0 + 1, &mut r).is_err());
    p.tick(T0 + 60_000, &mut r);
    let probe = p.pick(Strategy::Best, T0 + 60_001, &mut r).unwrap();
    // Only one at a time.
    let second = p
        .pick(Strategy::RoundRobin, T0 + 60_002, &mut r)
        .unwrap_err();
    assert_eq!(second.retry_at, Some(probe.deadline));
    let (_, ch) = p
        .report(probe.id, &Outcome::success(), T0 + 60_003, &mut r)
        .unwrap();
    assert_eq!(
        (ch[0].from, ch[0].to),
        (TokenState::Cooling, TokenState::Active)
    );
    let v = p.get(&id(0)).unwrap();
    assert!(!v.half_open && v.state_reason.is_none() && v.state_until.is_none());
    // Active again: no more one-at-a-time.
    let a = p.pick(Strategy::Best, T0 + 60_004, &mut r).unwrap();
    let b = p.pick(Strategy::Best, T0 + 60_004, &mut r).unwrap();
    assert_ne!(a.id, b.id);
}

#[test]
fn half_open_failure_cools_again_for_longer() {
    let policy = Policy {
        cooling_jitter: 0.0,
        ..no_rail()
    };
    let mut p = pool_with(2, policy);
    let d = cool_repeatedly(&mut p, 2);
    assert!(d[1] > d[0]);
}

#[test]
fn the_rail_keeps_the_pool_serving_in_an_upstream_wide_outage() {
    let mut p = pool(10); // max_cooling_percent 50
    let mut r = rng();
    let mut now = T0;
    for _ in 0..200 {
        if let Ok(l) = p.pick(Strategy::RoundRobin, now, &mut r) {
            p.report(l.id, &Outcome::new(OutcomeClass::Transient), now, &mut r)
                .unwrap();
        }
        now += 10;
    }
    let st = p.stats();
    assert_eq!(st.by_state[1], (TokenState::Cooling, 5), "{st:?}");
    assert_eq!(st.by_state[0], (TokenState::Active, 5));
    let kept: Vec<_> = p
        .views()
        .into_iter()
        .filter(|v| v.state == TokenState::Active)
        .collect();
    assert!(kept.iter().all(|v| v
        .state_reason
        .as_deref()
        .unwrap_or("")
        .contains("max_cooling_percent")));
    assert!(
        p.pick(Strategy::Best, now, &mut r).is_ok(),
        "the pool still serves"
    );
    // Rate limits are token problems: the rail does not hold them back.
    for i in 0..10 {
        p.report_token(
            &id(i),
            &Outcome::new(OutcomeClass::RateLimited),
            now,
            &mut r,
        )
        .unwrap();
    }
    assert_eq!(p.stats().by_state[1].1, 10);
}

#[test]
fn a_disabled_token_is_never_re_enabled_automatically() {
    let mut p = pool(2);
    let mut r = rng();
    report(&mut p, 0, OutcomeClass::RateLimited, T0);
    p.patch(
        &id(0),
        TokenPatch {
            enabled: Some(false),
            ..Default::default()
        },
        T0,
    )
    .unwrap();
    for o in [OutcomeClass::Success, OutcomeClass::Auth] {
        p.health_result(&id(0), &Outcome::new(o), T0 + 1, &mut r)
            .unwrap();
        report(&mut p, 0, o, T0 + 1);
    }
    p.replace_secret(&id(0), Secret::new("new-secret-value-1234"), None, T0 + 2)
        .unwrap();
    p.tick(T0 + 86_400_000, &mut r);
    assert_eq!(state(&p, 0), TokenState::Disabled);
    for _ in 0..10 {
        assert_ne!(
            p.pick(Strategy::RoundRobin, T0 + 86_400_000, &mut r)
                .unwrap()
                .token_id,
            id(0)
        );
    }
    let ch = p
        .patch(
            &id(0),
            TokenPatch {
                enabled: Some(true),
                ..Default::default()
            },
            T0 + 86_400_001,
        )
        .unwrap();
    assert_eq!(
        (ch[0].from, ch[0].to),
        (TokenState::Disabled, TokenState::Active)
    );
}

#[test]
fn expires_at_passing_makes_the_token_expired() {
    let mut p = pool(1);
    let mut r = rng();
    let mut s = spec(1);
    s.expires_at = Some(T0 + 5_000);
    p.insert(s, T0).unwrap();
    assert_eq!(p.next_deadline(), Some(T0 + 5_000));
    let (ch, _) = p.tick(T0 + 5_000, &mut r);
    assert_eq!(
        (ch[0].token_id.clone(), ch[0].to),
        (id(1), TokenState::Expired)
    );
    // Enabling needs a future expiry; moving expires_at forward brings it back.
    let e = p.patch(
        &id(1),
        TokenPatch {
            enabled: Some(true),
            ..Default::default()
        },
        T0 + 6_000,
    );
    assert!(matches!(e, Err(PoolError::Invalid(_))));
    let patch = TokenPatch {
        expires_at: Some(Some(T0 + 100_000)),
        ..Default::default()
    };
    let ch = p.patch(&id(1), patch, T0 + 6_000).unwrap();
    assert_eq!(ch[0].to, TokenState::Active);
}

#[test]
fn a_pick_never_hands_out_a_token_past_expires_at_even_without_tick() {
    let mut p = Pool::new("x", Policy::default());
    let mut s = spec(0);
    s.expires_at = Some(T0 + 10);
    p.insert(s, T0).unwrap();
    let e = p.pick(Strategy::Random, T0 + 10, &mut rng()).unwrap_err();
    assert_eq!(e.retry_at, None);
    let (ch, _) = p.tick(T0 + 11, &mut rng());
    assert_eq!(
        ch[0].to,
        TokenState::Expired,
        "the change found inside pick is not lost"
    );
}

#[test]
fn an_unreported_lease_is_closed_as_unknown_at_its_deadline() {
    let policy = Policy {
        lease_ttl_s: 5,
        ..Policy::default()
    };
    let mut p = pool_with(1, policy);
    let mut r = rng();
    p.patch(
        &id(0),
        TokenPatch {
            limits: Some(Limits {
                rpm: None,
                max_in_flight: Some(1),
            }),
            ..Default::default()
        },
        T0,
    )
    .unwrap();
    let l = p.pick(Strategy::Best, T0, &mut r).unwrap();
    assert_eq!(l.deadline, T0 + 5_000);
    let e = p.pick(Strategy::Best, T0 + 1, &mut r).unwrap_err();
    assert_eq!(e.retry_at, Some(T0 + 5_000));
    let (_, expired) = p.tick(T0 + 5_000, &mut r);
    assert_eq!(expired, 1);
    let v = p.get(&id(0)).unwrap();
    assert_eq!(
        (
            v.in_flight,
            v.counters.unknown,
            v.counters.success,
            v.counters.failures()
        ),
        (0, 1, 0, 0)
    );
    assert_eq!(v.state, TokenState::Active);
    assert!(
        p.pick(Strategy::Best, T0 + 5_001, &mut r).is_ok(),
        "the slot is free again"
    );
    assert_eq!(
        p.report(l.id, &Outcome::success(), T0 + 5_002, &mut r),
        Err(PoolError::UnknownLease)
    );
}

#[test]
fn a_passing_health_check_brings_an_invalid_or_cooling_token_back() {
    let mut p = pool(2);
    let mut r = rng();
    report(&mut p, 0, OutcomeClass::Auth, T0);
    report(&mut p, 1, OutcomeClass::RateLimited, T0);
    // A failing check changes nothing for an invalid token.
    assert!(p
        .health_result(&id(0), &Outcome::new(OutcomeClass::Auth), T0 + 1, &mut r)
        .unwrap()
        .is_empty());
    for i in 0..2 {
        let ch = p
            .health_result(&id(i), &Outcome::success(), T0 + 2, &mut r)
            .unwrap();
        assert_eq!(ch[0].to, TokenState::Active);
        assert_eq!(ch[0].reason, "health check passed");
    }
    // A failing check on an active token counts like the outcome.
    let ch = p
        .health_result(&id(0), &Outcome::new(OutcomeClass::Auth), T0 + 3, &mut r)
        .unwrap();
    assert_eq!(ch[0].to, TokenState::Invalid);
}

#[test]
fn replace_secret_brings_an_invalid_token_back_with_its_stats() {
    let mut p = pool(1);
    let mut r = rng();
    report(&mut p, 0, OutcomeClass::Success, T0);
    report(&mut p, 0, OutcomeClass::Auth, T0);
    let ch = p
        .replace_secret(
            &id(0),
            Secret::new("refreshed-access-token-xyz"),
            Some(T0 + 3_600_000),
            T0 + 1,
        )
        .unwrap();
    assert_eq!(
        (ch[0].from, ch[0].to),
        (TokenState::Invalid, TokenState::Active)
    );
    let v = p.get(&id(0)).unwrap();
    assert_eq!((v.counters.success, v.counters.auth), (1, 1));
    assert_eq!(v.expires_at, Some(T0 + 3_600_000));
    assert_eq!(
        p.secret(&id(0)).unwrap().expose(),
        "refreshed-access-token-xyz"
    );
    assert_eq!(
        p.pick(Strategy::Best, T0 + 2, &mut r)
            .unwrap()
            .secret
            .expose(),
        "refreshed-access-token-xyz"
    );
}

#[test]
fn unavailable_retry_at_is_the_earliest_recovery() {
    let mut p = pool(3);
    let mut r = rng();
    p.report_token(
        &id(0),
        &with_retry(OutcomeClass::RateLimited, 90),
        T0,
        &mut r,
    )
    .unwrap();
    p.report_token(
        &id(1),
        &with_retry(OutcomeClass::RateLimited, 30),
        T0,
        &mut r,
    )
    .unwrap();
    report(&mut p, 2, OutcomeClass::Auth, T0);
    let e = p.pick(Strategy::Best, T0 + 1, &mut r).unwrap_err();
    assert_eq!(e.retry_at, Some(T0 + 30_000));
    assert!(
        e.reason.contains("2 cooling") && e.reason.contains("1 invalid"),
        "{}",
        e.reason
    );
    // An rpm window roll is a recovery too, and can be the earliest.
    let mut q = pool(1);
    q.patch(
        &id(0),
        TokenPatch {
            limits: Some(Limits {
                rpm: Some(1),
                max_in_flight: None,
            }),
            ..Default::default()
        },
        T0,
    )
    .unwrap();
    q.pick(Strategy::Best, T0, &mut r).unwrap();
    let e = q.pick(Strategy::Best, T0 + 1, &mut r).unwrap_err();
    let next_minute = (T0 / 60_000 + 1) * 60_000;
    assert_eq!(e.retry_at, Some(next_minute));
    assert!(q.pick(Strategy::Best, next_minute, &mut r).is_ok());
    // Nothing can recover on its own: no retry_at.
    report(&mut q, 0, OutcomeClass::Auth, next_minute);
    assert_eq!(
        q.pick(Strategy::Best, next_minute + 1, &mut r)
            .unwrap_err()
            .retry_at,
        None
    );
}
