//! The whole public API in one pass: insert, pick with every strategy, report, tick, views,
//! stats, dirty counters, patch, remove.

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokenlb_core::*;

#[test]
fn whole_api_round_trip() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut pool = Pool::new("default", Policy::default());
    let now = 1_700_000_000_000;
    for i in 0..3 {
        let id = TokenId(format!("t_{i}"));
        let spec = TokenSpec::new(
            id,
            format!("tok{i}"),
            Secret::new(format!("secret-value-{i}-xyz")),
        );
        pool.insert(spec, now).unwrap();
    }
    assert!(matches!(
        pool.insert(
            TokenSpec::new(TokenId("t_0".into()), "dup", Secret::new("x")),
            now
        ),
        Err(PoolError::DuplicateId(_))
    ));
    for s in Strategy::ALL {
        let lease = pool.pick(s, now, &mut rng).unwrap();
        assert_eq!(pool.stats().in_flight, 1);
        let (id, changes) = pool
            .report(lease.id, &Outcome::success(), now + 5, &mut rng)
            .unwrap();
        assert_eq!(id, lease.token_id);
        assert!(changes.is_empty());
        assert_eq!(
            pool.report(lease.id, &Outcome::success(), now, &mut rng),
            Err(PoolError::UnknownLease)
        );
    }
    let st = pool.stats();
    assert_eq!(
        (st.total, st.success, st.requests, st.in_flight),
        (3, 6, 6, 0)
    );
    let dirty = pool.take_dirty();
    assert_eq!(dirty.iter().map(|d| d.counters.success).sum::<u64>(), 6);
    assert!(pool.take_dirty().is_empty());
    let series = pool.minute_series(now);
    assert_eq!(series.len(), 1440);
    assert_eq!(series.last().unwrap().1, 6);
    let id = TokenId("t_1".into());
    let ch = pool
        .patch(
            &id,
            TokenPatch {
                enabled: Some(false),
                ..TokenPatch::default()
            },
            now,
        )
        .unwrap();
    assert_eq!(ch[0].to, TokenState::Disabled);
    assert_eq!(pool.get(&id).unwrap().state, TokenState::Disabled);
    assert!(pool.views().iter().all(|v| !v.masked.contains("value")));
    assert!(pool.remove(&id).is_some());
    assert_eq!(pool.len(), 2);
    let (_, n) = pool.tick(now + 1000, &mut rng);
    assert_eq!(n, 0);
}
