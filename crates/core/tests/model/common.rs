//! Helpers shared by the integration tests: a seeded RNG, a fixed start time, pools of
//! numbered tokens.

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokenlb_core::*;

/// A fixed "now" (2023-11-14T22:13:20Z) so minute boundaries are predictable.
pub const T0: Millis = 1_700_000_000_000;

pub fn rng() -> StdRng {
    StdRng::seed_from_u64(0x7031_6b65)
}

pub fn id(i: usize) -> TokenId {
    TokenId(format!("t_{i:05}"))
}

pub fn spec(i: usize) -> TokenSpec {
    TokenSpec::new(
        id(i),
        format!("token {i}"),
        Secret::new(format!("secret-{i:05}-abcdefgh")),
    )
}

/// A pool of `n` active tokens with the given policy.
pub fn pool_with(n: usize, policy: Policy) -> Pool {
    let mut p = Pool::new("default", policy);
    for i in 0..n {
        p.insert(spec(i), T0).unwrap();
    }
    p
}

pub fn pool(n: usize) -> Pool {
    pool_with(n, Policy::default())
}

pub fn outcome(class: OutcomeClass) -> Outcome {
    Outcome::new(class)
}

/// Picks and reports `class` at once.
pub fn use_once(
    p: &mut Pool,
    s: Strategy,
    now: Millis,
    class: OutcomeClass,
) -> (TokenId, Vec<StateChange>) {
    let mut r = rng();
    let lease = p.pick(s, now, &mut r).expect("a token");
    p.report(lease.id, &outcome(class), now, &mut r).unwrap()
}

/// Reports `class` for token `i` directly (no lease).
pub fn report(p: &mut Pool, i: usize, class: OutcomeClass, now: Millis) -> Vec<StateChange> {
    p.report_token(&id(i), &outcome(class), now, &mut rng())
        .unwrap()
}

pub fn state(p: &Pool, i: usize) -> TokenState {
    p.get(&id(i)).unwrap().state
}
