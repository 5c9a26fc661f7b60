//! `best`: the seed's "by success rate and time of use".
//!
//! A token's score is its smoothed success rate over a sliding window (`best_window_s`, a
//! ring of time buckets, [`crate::window`]), `(s + 1) / (n + 2)` — Laplace's rule of
//! succession, so a token with no history scores ½ and one early failure does not sink a
//! token for good — halved once per consecutive failure. The highest score wins; ties go to
//! the least recently used token. The index is an ordered set keyed by (score descending,
//! last used ascending, slot), so a pick is `first()`, O(log n). A key is recomputed when its
//! token is touched (picked, reported, re-admitted): window decay of an untouched token is
//! applied at its next touch, which keeps the pick free of any pool-wide rescoring.
//! Deterministic: no randomness.

use std::collections::BTreeSet;

/// Key of one token: (u64::MAX − score bits, last used, slot). For non-negative floats the
/// IEEE-754 bit pattern orders like the value, so this sorts by score descending.
type Key = (u64, u64, u32);

/// `best`'s index: each slot's key, and the members ordered by it.
#[derive(Debug, Default)]
pub struct Best {
    keys: Vec<(u64, u64)>,
    set: BTreeSet<Key>,
}

/// The score of a token with `ok` successes and `fail` failures in the window and `consec`
/// failures in a row.
pub fn score(ok: u64, fail: u64, consec: u32) -> f64 {
    let s = (ok as f64 + 1.0) / ((ok + fail) as f64 + 2.0);
    s * 0.5f64.powi(consec.min(60) as i32)
}

impl Best {
    /// Gives a new token at `slot` the key of a token with no history (score ½, never used).
    pub fn register(&mut self, slot: u32) {
        let i = slot as usize;
        if self.keys.len() <= i {
            self.keys.resize(i + 1, (0, 0));
        }
        self.keys[i] = (u64::MAX - score(0, 0, 0).to_bits(), 0);
    }

    fn key(&self, slot: u32) -> Key {
        let (s, l) = self.keys[slot as usize];
        (s, l, slot)
    }

    /// Members in the ordered set.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// The ordered set is empty.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Adds `slot` under its current key.
    pub fn insert(&mut self, slot: u32) {
        self.set.insert(self.key(slot));
    }

    /// Removes `slot` (no-op when absent); its key is kept for its return.
    pub fn remove(&mut self, slot: u32) {
        self.set.remove(&self.key(slot));
    }

    /// Updates the key; `member` says whether the slot is in the set and must be re-sorted.
    pub fn set_key(&mut self, slot: u32, score: f64, last_used: u64, member: bool) {
        let score = if score.is_finite() {
            score.max(0.0)
        } else {
            0.0
        };
        let new = (u64::MAX - score.to_bits(), last_used);
        if self.keys[slot as usize] == new {
            return;
        }
        if member {
            self.remove(slot);
        }
        self.keys[slot as usize] = new;
        if member {
            self.insert(slot);
        }
    }

    /// The score last recorded for `slot`.
    pub fn score_of(&self, slot: u32) -> f64 {
        f64::from_bits(u64::MAX - self.keys[slot as usize].0)
    }

    /// The best eligible token.
    pub fn first(&self) -> Option<u32> {
        self.set.first().map(|k| k.2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_score_wins_then_least_recently_used() {
        let mut b = Best::default();
        for s in 0..3 {
            b.register(s);
            b.insert(s);
        }
        b.set_key(0, score(9, 1, 0), 5, true);
        b.set_key(1, score(9, 1, 0), 3, true);
        b.set_key(2, score(5, 5, 0), 0, true);
        assert_eq!(b.first(), Some(1));
        b.set_key(1, score(9, 1, 0), 7, true);
        assert_eq!(b.first(), Some(0));
        b.remove(0);
        b.remove(1);
        assert_eq!(b.first(), Some(2));
    }

    #[test]
    fn score_is_laplace_smoothed_and_halved_per_consecutive_failure() {
        assert_eq!(score(0, 0, 0), 0.5);
        assert_eq!(score(8, 0, 0), 0.9);
        assert_eq!(score(8, 0, 2), 0.225);
        assert!(score(0, 0, 1000) >= 0.0);
    }
}
