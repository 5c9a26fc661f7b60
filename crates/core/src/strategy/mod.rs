//! Load-balancing strategies over the pool's "eligible now" index.
//!
//! No strategy looks at an ineligible token, and none scans the pool on a pick: the pool keeps
//! [`Eligible`], a set of the tokens that may be leased right now, and updates it whenever a
//! token's state or limits change (a token at its rpm or in-flight limit leaves it and comes
//! back on a timer or on release). `Eligible` holds one index per strategy, each keeping its
//! per-slot keys in flat vectors (a few dozen bytes per token):
//!
//! | strategy | index | pick |
//! |---|---|---|
//! | `round_robin` | [`round_robin::RoundRobin`]: ordered map seq → slot + cursor | O(log n) |
//! | `best` | [`best::Best`]: ordered set (score desc, last used asc, slot) | O(log n) |
//! | `weighted` | [`weighted::Weighted`]: stride scheduling, ordered set (pass, slot) | O(log n) |
//! | `random` | [`random::RandomSet`]: dense vector with positions, swap-remove | O(1) |
//! | `least_in_flight`, `latency` | [`p2c`] over `RandomSet` | O(1) |
//!
//! Every membership change costs O(log n) per ordered index, which is what makes every pick
//! cheap and pool-size independent in practice (see `benches/pick.rs`).

pub mod best;
pub mod p2c;
pub mod random;
pub mod round_robin;
pub mod weighted;

/// The set of tokens (by slot) that may be leased now, indexed for every strategy.
#[derive(Debug, Default)]
pub struct Eligible {
    member: Vec<bool>,
    pub rr: round_robin::RoundRobin,
    pub best: best::Best,
    pub weighted: weighted::Weighted,
    pub random: random::RandomSet,
}

impl Eligible {
    /// Makes room for `slot` (a newly inserted token, not yet a member) with its rotation
    /// order `seq`.
    pub fn register(&mut self, slot: u32, seq: u64) {
        let i = slot as usize;
        if self.member.len() <= i {
            self.member.resize(i + 1, false);
        }
        self.member[i] = false;
        self.rr.register(slot, seq);
        self.weighted.register(slot);
        self.best.register(slot);
        self.random.register(slot);
    }

    pub fn contains(&self, slot: u32) -> bool {
        self.member.get(slot as usize).copied().unwrap_or(false)
    }

    pub fn len(&self) -> usize {
        self.random.len()
    }

    pub fn is_empty(&self) -> bool {
        self.random.len() == 0
    }

    /// Adds `slot` to every index (no-op when already a member).
    pub fn insert(&mut self, slot: u32) {
        if self.contains(slot) {
            return;
        }
        self.member[slot as usize] = true;
        self.rr.insert(slot);
        self.best.insert(slot);
        self.weighted.insert(slot);
        self.random.insert(slot);
    }

    /// Removes `slot` from every index (no-op when not a member).
    pub fn remove(&mut self, slot: u32) {
        if !self.contains(slot) {
            return;
        }
        self.member[slot as usize] = false;
        self.rr.remove(slot);
        self.best.remove(slot);
        self.weighted.remove(slot);
        self.random.remove(slot);
    }

    /// Sizes of the four indexes (equal when consistent).
    pub fn index_lens(&self) -> [usize; 4] {
        [
            self.rr.len(),
            self.best.len(),
            self.weighted.len(),
            self.random.len(),
        ]
    }

    /// Sets `best`'s key for `slot`, re-sorting it when it is a member.
    pub fn set_best_key(&mut self, slot: u32, score: f64, last_used: u64) {
        let member = self.contains(slot);
        self.best.set_key(slot, score, last_used, member);
    }
}
