//! `random`: uniform choice over the eligible tokens, and the sampling base of P2C.
//!
//! A dense vector of eligible slots plus each slot's position in it: insert pushes, remove
//! swaps the last element into the hole. Picking uniformly is one `gen_range`: O(1).

/// The eligible slots in a dense vector, with each slot's position for O(1) removal.
#[derive(Debug, Default)]
pub struct RandomSet {
    items: Vec<u32>,
    pos: Vec<u32>,
}

impl RandomSet {
    /// Makes room for a new token at `slot`, not yet a member.
    pub fn register(&mut self, slot: u32) {
        let i = slot as usize;
        if self.pos.len() <= i {
            self.pos.resize(i + 1, u32::MAX);
        }
        self.pos[i] = u32::MAX;
    }

    /// Members.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// No members.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds `slot`, which must not be a member ([`super::Eligible`] checks).
    pub fn insert(&mut self, slot: u32) {
        self.pos[slot as usize] = self.items.len() as u32;
        self.items.push(slot);
    }

    /// Removes `slot`, which must be a member, by moving the last member into its place.
    pub fn remove(&mut self, slot: u32) {
        let p = self.pos[slot as usize] as usize;
        self.items.swap_remove(p);
        if let Some(&moved) = self.items.get(p) {
            self.pos[moved as usize] = p as u32;
        }
        self.pos[slot as usize] = u32::MAX;
    }

    /// The slot at position `i` (0 ≤ i < len).
    pub fn at(&self, i: usize) -> u32 {
        self.items[i]
    }

    /// A uniformly random member.
    pub fn sample<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> Option<u32> {
        if self.items.is_empty() {
            return None;
        }
        Some(self.items[rng.gen_range(0..self.items.len())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn swap_remove_keeps_positions_right() {
        let mut r = RandomSet::default();
        for s in 0..5 {
            r.register(s);
            r.insert(s);
        }
        r.remove(1);
        r.remove(4);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut seen = [0; 5];
        for _ in 0..300 {
            seen[r.sample(&mut rng).unwrap() as usize] += 1;
        }
        assert_eq!((seen[1], seen[4]), (0, 0));
        assert!(seen[0] > 50 && seen[2] > 50 && seen[3] > 50, "{seen:?}");
        r.remove(0);
        r.remove(2);
        r.remove(3);
        assert_eq!(r.sample(&mut rng), None);
    }
}
