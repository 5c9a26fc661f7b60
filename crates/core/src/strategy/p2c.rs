//! Power of two choices, for `least_in_flight` and `latency`.
//!
//! Mitzenmacher, "The Power of Two Choices in Randomized Load Balancing" (IEEE TPDS, 2001),
//! as tower's `balance::p2c` uses it: draw two distinct eligible tokens uniformly at random and
//! keep the one with the lower load. This gets exponentially better balance than one random
//! choice while costing O(1) and avoiding the herd behaviour of always taking the global
//! minimum. Loads: in-flight leases (`least_in_flight`) or tower's peak-EWMA latency ×
//! (in flight + 1) (`latency`, see [`crate::ewma`]).

use super::random::RandomSet;

/// Picks the lower-`load` of two distinct random members (the only one if there is one).
pub fn pick<R, F>(set: &RandomSet, rng: &mut R, mut load: F) -> Option<u32>
where
    R: rand::Rng + ?Sized,
    F: FnMut(u32) -> f64,
{
    let n = set.len();
    match n {
        0 => None,
        1 => Some(set.at(0)),
        _ => {
            let i = rng.gen_range(0..n);
            let mut j = rng.gen_range(0..n - 1);
            if j >= i {
                j += 1;
            }
            let (a, b) = (set.at(i), set.at(j));
            if load(b) < load(a) {
                Some(b)
            } else {
                Some(a)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn of_two_the_lighter_always_wins() {
        let mut set = RandomSet::default();
        for s in 0..2 {
            set.register(s);
            set.insert(s);
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let loads = [5.0, 1.0];
        for _ in 0..100 {
            assert_eq!(pick(&set, &mut rng, |s| loads[s as usize]), Some(1));
        }
    }
}
