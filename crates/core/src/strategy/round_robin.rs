//! `round_robin`: strict rotation over the eligible tokens (the seed's rotation).
//!
//! Each token gets a rotation number `seq` when it joins the pool. The index is an ordered
//! map seq → slot of the eligible tokens plus a cursor, the seq of the last token picked; a
//! pick takes the first entry after the cursor, wrapping to the start. Over one pass of the
//! cursor every token that stays eligible is picked exactly once, whatever joins or leaves in
//! between (a token that joins behind the cursor waits for the next pass). O(log n) per pick
//! and per membership change.

use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Unbounded};

/// `round_robin`'s index: each slot's rotation number, the members by it, and the cursor.
#[derive(Debug, Default)]
pub struct RoundRobin {
    seq: Vec<u64>,
    order: BTreeMap<u64, u32>,
    cursor: Option<u64>,
}

impl RoundRobin {
    /// Gives a new token at `slot` its place in the rotation, `seq` (unique, growing).
    pub fn register(&mut self, slot: u32, seq: u64) {
        let i = slot as usize;
        if self.seq.len() <= i {
            self.seq.resize(i + 1, 0);
        }
        self.seq[i] = seq;
    }

    /// Members in the rotation.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// The rotation is empty.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Puts `slot` back in the rotation at its place.
    pub fn insert(&mut self, slot: u32) {
        self.order.insert(self.seq[slot as usize], slot);
    }

    /// Takes `slot` out of the rotation (no-op when absent); the cursor stays.
    pub fn remove(&mut self, slot: u32) {
        self.order.remove(&self.seq[slot as usize]);
    }

    /// The next token in rotation; moves the cursor to it.
    pub fn pick_next(&mut self) -> Option<u32> {
        let after = self
            .cursor
            .and_then(|c| self.order.range((Excluded(c), Unbounded)).next());
        let (&seq, &slot) = after.or_else(|| self.order.iter().next())?;
        self.cursor = Some(seq);
        Some(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_in_order_and_wraps() {
        let mut rr = RoundRobin::default();
        for s in 0..3 {
            rr.register(s, u64::from(s) * 10);
            rr.insert(s);
        }
        let picks: Vec<u32> = (0..7).map(|_| rr.pick_next().unwrap()).collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2, 0]);
        rr.remove(1);
        assert_eq!(rr.pick_next(), Some(2));
        assert_eq!(rr.pick_next(), Some(0));
        rr.remove(0);
        rr.remove(2);
        assert_eq!(rr.pick_next(), None);
    }
}
