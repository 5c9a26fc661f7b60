//! `weighted`: smooth weighted rotation by stride scheduling.
//!
//! After Waldspurger & Weihl, "Stride Scheduling: Deterministic Proportional-Share Resource
//! Management" (MIT/LCS/TM-528, 1995). Every token has a *stride* inversely proportional to
//! its weight (`2³² / weight`) and a *pass*. A pick takes the eligible token with the smallest
//! pass (ties by slot) and advances its pass by its stride. Over any cycle each token gets its
//! weight's share of the picks, and picks are interleaved smoothly (weights 3:1 give
//! a a b a a a b a …, never long runs of one token), deterministically.
//!
//! The index is an ordered set of (pass, slot): O(log n) per pick. The global virtual time is
//! the pass of the last pick; a token that (re)joins the eligible set starts no earlier than
//! that time — Waldspurger's rule for dynamic joins — so a token that was cooling or at its
//! limit does not get a burst of "catch-up" picks when it returns.

use std::collections::BTreeSet;

/// Stride of a weight-1 token; a weight-w token advances by `STRIDE1 / w`.
pub const STRIDE1: u64 = 1 << 32;

/// `weighted`'s index: each slot's pass, the members by (pass, slot), the virtual time.
#[derive(Debug, Default)]
pub struct Weighted {
    pass: Vec<u64>,
    set: BTreeSet<(u64, u32)>,
    /// Virtual time: the pass of the last token picked.
    vt: u64,
}

impl Weighted {
    /// Starts a new token at `slot` at the current virtual time.
    pub fn register(&mut self, slot: u32) {
        let i = slot as usize;
        if self.pass.len() <= i {
            self.pass.resize(i + 1, 0);
        }
        self.pass[i] = self.vt;
    }

    /// Members in the ordered set.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// The ordered set is empty.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Adds `slot`, its pass moved up to the virtual time if behind (no catch-up burst).
    pub fn insert(&mut self, slot: u32) {
        let p = &mut self.pass[slot as usize];
        *p = (*p).max(self.vt);
        self.set.insert((*p, slot));
    }

    /// Removes `slot` (no-op when absent); its pass is kept for its return.
    pub fn remove(&mut self, slot: u32) {
        self.set.remove(&(self.pass[slot as usize], slot));
    }

    /// The eligible token with the smallest pass.
    pub fn first(&self) -> Option<u32> {
        self.set.first().map(|&(_, s)| s)
    }

    /// Charges one pick to `slot` (a member) with weight `weight`.
    pub fn charge(&mut self, slot: u32, weight: u32) {
        let i = slot as usize;
        let old = self.pass[i];
        let member = self.set.remove(&(old, slot));
        self.vt = self.vt.max(old);
        self.pass[i] = old.saturating_add(STRIDE1 / u64::from(weight.clamp(1, 1000)));
        if member {
            self.set.insert((self.pass[i], slot));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_follow_weights_and_interleave() {
        let mut w = Weighted::default();
        let weights = [3u32, 1];
        for s in 0..2 {
            w.register(s);
            w.insert(s);
        }
        let mut seq = Vec::new();
        for _ in 0..8 {
            let s = w.first().unwrap();
            w.charge(s, weights[s as usize]);
            seq.push(s);
        }
        assert_eq!(seq.iter().filter(|&&s| s == 0).count(), 6);
        assert!(
            !seq.windows(4).any(|x| x.iter().all(|&s| s == 0)),
            "{seq:?}"
        );
    }

    #[test]
    fn a_returning_token_gets_no_catch_up_burst() {
        let mut w = Weighted::default();
        for s in 0..2 {
            w.register(s);
            w.insert(s);
        }
        w.remove(1);
        for _ in 0..100 {
            let s = w.first().unwrap();
            w.charge(s, 1);
        }
        w.insert(1);
        let mut ones = 0;
        for _ in 0..10 {
            let s = w.first().unwrap();
            w.charge(s, 1);
            ones += usize::from(s == 1);
        }
        assert_eq!(ones, 5);
    }
}
