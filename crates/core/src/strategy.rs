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
//! | `best` | [`best::Best`]: stride schedule weighted by score, ordered set (half-open first, pass, last used, slot) | O(log n) |
//! | `weighted` | [`weighted::Weighted`]: stride scheduling, ordered set (pass, slot) | O(log n) |
//! | `random` | [`random::RandomSet`]: dense vector with positions, swap-remove | O(1) |
//! | `least_in_flight`, `latency` | [`p2c`] over `RandomSet` | O(1) |
//!
//! Every membership change costs O(log n) per ordered index. The three ordered indexes are
//! *activated on first use*: a pool only pays for the strategies it is asked for (its
//! policy's default strategy is active from the start). Activating one builds it from the
//! current members in O(n log n), once; from then on it is kept up to date. This matters at
//! 100,000 tokens, where every ordered-index update is a handful of cache misses: a pool
//! used with `random` should not pay for keeping `best`'s order.

pub mod best;
pub mod p2c;
pub mod random;
pub mod round_robin;
pub mod weighted;

use crate::types::Strategy;

/// The set of tokens (by slot) that may be leased now, indexed for every strategy.
#[derive(Debug, Default)]
pub struct Eligible {
    member: Vec<bool>,
    /// `round_robin`'s index (maintained once activated).
    pub rr: round_robin::RoundRobin,
    /// `best`'s index (maintained once activated).
    pub best: best::Best,
    /// `weighted`'s index (maintained once activated); the pool charges a pick to it.
    pub weighted: weighted::Weighted,
    /// Every member, always maintained: `random` samples it, P2C draws its two from it, and
    /// its length is the member count.
    pub random: random::RandomSet,
    /// Which ordered indexes are maintained: round robin, best, weighted.
    on: [bool; 3],
}

/// Index of an ordered strategy in `Eligible::on`, `None` for the O(1) ones.
fn ordered(s: Strategy) -> Option<usize> {
    match s {
        Strategy::RoundRobin => Some(0),
        Strategy::Best => Some(1),
        Strategy::Weighted => Some(2),
        Strategy::Random | Strategy::LeastInFlight | Strategy::Latency => None,
    }
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

    /// `slot` may be leased now.
    pub fn contains(&self, slot: u32) -> bool {
        self.member.get(slot as usize).copied().unwrap_or(false)
    }

    /// How many tokens may be leased now.
    pub fn len(&self) -> usize {
        self.random.len()
    }

    /// No token may be leased now.
    pub fn is_empty(&self) -> bool {
        self.random.len() == 0
    }

    /// Is the index `strategy` picks from maintained?
    pub fn is_active(&self, strategy: Strategy) -> bool {
        ordered(strategy).is_none_or(|i| self.on[i])
    }

    /// Starts maintaining the index of `strategy`, building it from the current members.
    /// `best_key` gives (score, last used, half-open) of a slot for `best`.
    pub fn activate(
        &mut self,
        strategy: Strategy,
        mut best_key: impl FnMut(u32) -> (f64, u64, bool),
    ) {
        let Some(i) = ordered(strategy) else { return };
        if self.on[i] {
            return;
        }
        self.on[i] = true;
        for k in 0..self.random.len() {
            let slot = self.random.at(k);
            match strategy {
                Strategy::RoundRobin => self.rr.insert(slot),
                Strategy::Best => {
                    let (score, last_used, probe) = best_key(slot);
                    self.best.set_key(slot, score, last_used, probe, false);
                    self.best.insert(slot);
                }
                _ => self.weighted.insert(slot),
            }
        }
    }

    /// Adds `slot` to every index (no-op when already a member).
    pub fn insert(&mut self, slot: u32) {
        if self.contains(slot) {
            return;
        }
        self.member[slot as usize] = true;
        self.random.insert(slot);
        if self.on[0] {
            self.rr.insert(slot);
        }
        if self.on[1] {
            self.best.insert(slot);
        }
        if self.on[2] {
            self.weighted.insert(slot);
        }
    }

    /// Removes `slot` from every index (no-op when not a member).
    pub fn remove(&mut self, slot: u32) {
        if !self.contains(slot) {
            return;
        }
        self.member[slot as usize] = false;
        self.random.remove(slot);
        if self.on[0] {
            self.rr.remove(slot);
        }
        if self.on[1] {
            self.best.remove(slot);
        }
        if self.on[2] {
            self.weighted.remove(slot);
        }
    }

    /// Sizes of the active indexes and the member count (equal when consistent).
    pub fn index_lens(&self) -> Vec<usize> {
        let mut v = vec![self.random.len()];
        for (on, len) in self
            .on
            .iter()
            .zip([self.rr.len(), self.best.len(), self.weighted.len()])
        {
            if *on {
                v.push(len);
            }
        }
        v
    }

    /// Sets `best`'s key for `slot`, re-sorting it when it is a member (only while `best`'s
    /// index is active; activation computes every key afresh).
    pub fn set_best_key(&mut self, slot: u32, score: f64, last_used: u64, probe: bool) {
        if self.on[1] {
            let member = self.contains(slot);
            self.best.set_key(slot, score, last_used, probe, member);
        }
    }
}
