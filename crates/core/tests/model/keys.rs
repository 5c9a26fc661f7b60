//! `Pool::keys` and `Pool::keys_in`: what a paged list reads instead of building views.
//! They agree with the views, chunks cover every token once (removed slots skipped), and
//! the masked form is the only way to the secret.

use crate::common::*;
use tokenlb_core::*;

#[test]
fn keys_agree_with_the_views() {
    let mut p = pool(5);
    report(&mut p, 1, OutcomeClass::Success, T0);
    report(&mut p, 1, OutcomeClass::Transient, T0);
    report(&mut p, 1, OutcomeClass::ClientError, T0);
    let views = p.views();
    let keys: Vec<TokenKey<'_>> = p.keys().collect();
    assert_eq!(keys.len(), views.len());
    for (k, v) in keys.iter().zip(&views) {
        assert_eq!(k.id, v.id.as_str());
        assert_eq!(k.name, v.name);
        assert_eq!(k.state, v.state);
        assert_eq!(k.success, v.counters.success);
        assert_eq!(k.failures, v.counters.failures());
        assert_eq!(k.weight, v.weight);
        assert_eq!(k.last_used, v.counters.last_used);
        assert_eq!(k.masked(), v.masked);
    }
    let k1 = &keys[1];
    assert_eq!((k1.success, k1.failures, k1.requests), (1, 1, 3));
}

#[test]
fn chunks_cover_every_token_once_and_skip_removed_slots() {
    let mut p = pool(10);
    p.remove(&id(3)).unwrap();
    p.remove(&id(7)).unwrap();
    let mut seen = Vec::new();
    let mut start = 0;
    while start < p.slot_count() {
        seen.extend(p.keys_in(start..start + 3).map(|k| k.id.to_string()));
        start += 3;
    }
    let all: Vec<String> = p.keys().map(|k| k.id.to_string()).collect();
    assert_eq!(seen, all);
    assert_eq!(all.len(), 8);
    assert!(!all.contains(&id(3).0));
    assert_eq!(p.keys_in(100..200).count(), 0, "past the end: nothing");
}
