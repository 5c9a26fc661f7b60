//! `best`: the seed's "by success rate and time of use", as a load balancer.
//!
//! **Score.** A token's score is its success rate over a sliding window (`best_window_s`, a
//! ring of time buckets, [`crate::window`]) under an optimistic prior, halved once per
//! consecutive failure:
//!
//! ```text
//! score = (ok + 1) / (ok + fail + 1) × ½^consecutive_failures
//! ```
//!
//! `(ok + 1) / (n + 1)` is the posterior mean under a Beta(1, 0) prior: a token with no
//! history scores 1 (innocent until it fails), one early failure does not sink it for good,
//! and a token with ten successes and one failure scores 0.92.
//!
//! **Share.** Tokens whose score is within [`MARGIN`] (10 %) of a perfect score count as
//! equally good and share the picks evenly; below that a token's share falls as the fourth
//! power of its score, down to a floor of 1/1024 of a full share:
//!
//! ```text
//! weight = clamp((score / 0.9)⁴, 1/1024, 1)
//! ```
//!
//! Shares are relative: when every token is equally flaky they still share evenly. So a
//! token failing half its requests gets about a tenth of a healthy token's picks, one that
//! fails every request about a thousandth, and none is ever starved for good: each is picked
//! again within 1024 turns, which is how a penalised token earns its score back.
//!
//! **Time of use.** The picks follow stride scheduling (Waldspurger & Weihl 1995, as in
//! [`super::weighted`]): each token has a *pass*, the virtual time of its next turn; a pick
//! takes the smallest pass, ties going to the least recently used token, and moves the pass
//! on by the token's stride `2²⁰ / weight`. Equally healthy tokens are therefore picked in
//! least-recently-used rotation, and a worse one waits its longer stride. The pass is kept as
//! (start, stride), so a weight change (a report) moves the next turn at once: a token that
//! just failed goes to the back, one that recovers comes forward. A token that (re)joins the
//! eligible set starts no earlier than the virtual time, and an overdue token gets one turn
//! and then the common cadence, so nobody gets a burst of catch-up picks.
//!
//! **Half-open.** A half-open token (cooling ended, one probe request allowed) comes before
//! every other: its probe is the next pick of `best` once it is eligible.
//!
//! The index is an ordered set keyed by (not half-open, pass, last used, slot): a pick is
//! `first()` plus one re-key, O(log n). A key is recomputed when its token is touched
//! (picked, reported, re-admitted); window decay of an untouched token is applied at its next
//! touch, which keeps the pick free of any pool-wide rescoring. Deterministic: no randomness.

use std::collections::BTreeSet;

/// Tokens within this fraction of a perfect score share the load evenly.
pub const MARGIN: f64 = 0.1;

/// Lowest weight (share of a full-weight token's picks).
pub const MIN_WEIGHT: f64 = 1.0 / 1024.0;

/// Stride of a full-weight token.
pub const STRIDE1: u64 = 1 << 20;

/// Above this virtual time every pass is moved back (after about 2³² picks at least).
const REBASE_AT: u64 = 1 << 62;

/// Key of one member: (0 when half-open else 1, pass, last used, slot).
type Key = (u8, u64, u64, u32);

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// Virtual time of the last turn (or of joining).
    start: u64,
    stride: u64,
    last_used: u64,
    probe: bool,
    score: f32,
}

impl Slot {
    fn pass(&self) -> u64 {
        self.start.saturating_add(self.stride)
    }
}

/// `best`'s index: each slot's schedule, the members ordered by it, the virtual time.
#[derive(Debug, Default)]
pub struct Best {
    slots: Vec<Slot>,
    set: BTreeSet<Key>,
    /// Virtual time: the pass of the last turn taken.
    vt: u64,
}

/// The score of a token with `ok` successes and `fail` failures in the window and `consec`
/// failures in a row.
pub fn score(ok: u64, fail: u64, consec: u32) -> f64 {
    let s = (ok as f64 + 1.0) / ((ok + fail) as f64 + 1.0);
    s * 0.5f64.powi(consec.min(60) as i32)
}

/// The share weight of a token with `score` (1 within [`MARGIN`] of perfect).
pub fn weight(score: f64) -> f64 {
    let score = if score.is_finite() { score } else { 0.0 };
    (score / (1.0 - MARGIN)).powi(4).clamp(MIN_WEIGHT, 1.0)
}

fn stride(score: f64) -> u64 {
    (STRIDE1 as f64 / weight(score)).round() as u64
}

impl Best {
    /// Gives a new token at `slot` the schedule of a token with no history (score 1, never
    /// used), starting at the virtual time.
    pub fn register(&mut self, slot: u32) {
        let i = slot as usize;
        if self.slots.len() <= i {
            self.slots.resize(i + 1, Slot::default());
        }
        let s = score(0, 0, 0);
        self.slots[i] = Slot {
            start: self.vt,
            stride: stride(s),
            last_used: 0,
            probe: false,
            score: s as f32,
        };
    }

    fn key(&self, slot: u32) -> Key {
        let s = &self.slots[slot as usize];
        (u8::from(!s.probe), s.pass(), s.last_used, slot)
    }

    /// Members in the ordered set.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// The ordered set is empty.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Adds `slot`, its next turn no earlier than the virtual time (no catch-up burst).
    pub fn insert(&mut self, slot: u32) {
        let vt = self.vt;
        let s = &mut self.slots[slot as usize];
        if s.pass() < vt {
            s.start = vt.saturating_sub(s.stride);
        }
        let k = self.key(slot);
        self.set.insert(k);
    }

    /// Removes `slot` (no-op when absent); its schedule is kept for its return.
    pub fn remove(&mut self, slot: u32) {
        let k = self.key(slot);
        self.set.remove(&k);
    }

    /// Updates `slot`'s score, last use and half-open flag; `member` says whether the slot
    /// is in the set and must be re-sorted. A new score changes the stride of the turn the
    /// token is waiting for.
    pub fn set_key(&mut self, slot: u32, score: f64, last_used: u64, probe: bool, member: bool) {
        let score = if score.is_finite() {
            score.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let new_stride = stride(score);
        let s = self.slots[slot as usize];
        if s.stride == new_stride && s.last_used == last_used && s.probe == probe {
            self.slots[slot as usize].score = score as f32;
            return;
        }
        if member {
            self.remove(slot);
        }
        let s = &mut self.slots[slot as usize];
        s.stride = new_stride;
        s.last_used = last_used;
        s.probe = probe;
        s.score = score as f32;
        if member {
            let k = self.key(slot);
            self.set.insert(k);
        }
    }

    /// The score last recorded for `slot`.
    pub fn score_of(&self, slot: u32) -> f64 {
        f64::from(self.slots[slot as usize].score)
    }

    /// The token whose turn it is.
    pub fn first(&self) -> Option<u32> {
        self.set.first().map(|k| k.3)
    }

    /// Charges one turn to `slot` (a member or not): the virtual time moves to its pass, and
    /// its next turn is one stride after that (after now, when it was overdue).
    pub fn charge(&mut self, slot: u32) {
        let k = self.key(slot);
        let member = self.set.remove(&k);
        let pass = self.slots[slot as usize].pass();
        self.vt = self.vt.max(pass);
        let s = &mut self.slots[slot as usize];
        s.start = pass.max(self.vt);
        if member {
            let k = self.key(slot);
            self.set.insert(k);
        }
        if self.vt > REBASE_AT {
            self.rebase();
        }
    }

    /// Moves every schedule back so the virtual time is small again, keeping the order of
    /// the turns to come (a start more than the longest stride behind is clamped: such a
    /// token is due at the next rejoin anyway).
    fn rebase(&mut self) {
        let base = self.vt - STRIDE1 * 1024;
        for s in &mut self.slots {
            s.start = s.start.saturating_sub(base);
        }
        self.vt -= base;
        let members: Vec<u32> = self.set.iter().map(|k| k.3).collect();
        self.set = members.into_iter().map(|slot| self.key(slot)).collect();
    }

    #[cfg(test)]
    fn set_virtual_time(&mut self, vt: u64) {
        let members: Vec<u32> = self.set.iter().map(|k| k.3).collect();
        let shift = vt.saturating_sub(self.vt);
        for s in &mut self.slots {
            s.start = s.start.saturating_add(shift);
        }
        self.vt = vt;
        self.set = members.into_iter().map(|slot| self.key(slot)).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: u32) -> Best {
        let mut b = Best::default();
        for s in 0..n {
            b.register(s);
            b.insert(s);
        }
        b
    }

    /// One pick as the pool does it: take the first, charge it, record its use.
    fn pick(b: &mut Best, now: u64) -> u32 {
        let s = b.first().unwrap();
        b.charge(s);
        let score = b.score_of(s);
        b.set_key(s, score, now, false, true);
        s
    }

    #[test]
    fn equal_tokens_rotate_least_recently_used_first() {
        let mut b = members(3);
        let seq: Vec<u32> = (1..=6).map(|t| pick(&mut b, t)).collect();
        assert_eq!(seq, vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn tokens_within_the_margin_share_evenly_and_worse_ones_less() {
        let mut b = members(3);
        b.set_key(0, score(1000, 0, 0), 0, false, true);
        b.set_key(1, score(95, 5, 0), 0, false, true);
        b.set_key(2, score(5, 5, 0), 0, false, true);
        let mut count = [0u32; 3];
        for t in 1..=2100 {
            count[pick(&mut b, t) as usize] += 1;
        }
        assert!(count[0].abs_diff(count[1]) <= 1, "{count:?}");
        // Score 6/11 → weight (0.606)^4 ≈ 0.135 of a full share.
        let want = 2100.0 * weight(score(5, 5, 0)) / (2.0 + weight(score(5, 5, 0)));
        assert!(
            (f64::from(count[2]) - want).abs() < 3.0,
            "{count:?} want {want}"
        );
    }

    #[test]
    fn a_half_open_token_goes_first() {
        let mut b = members(4);
        b.set_key(3, score(0, 5, 5), 0, false, true);
        for t in 1..=10 {
            assert_ne!(pick(&mut b, t), 3);
        }
        b.set_key(3, score(0, 5, 5), 0, true, true);
        assert_eq!(b.first(), Some(3));
    }

    #[test]
    fn a_failure_sends_a_token_back_at_once_and_recovery_brings_it_forward() {
        let mut b = members(2);
        b.set_key(0, score(0, 1, 1), 0, false, true);
        let seq: Vec<u32> = (1..=20).map(|t| pick(&mut b, t)).collect();
        assert!(seq.iter().all(|&s| s == 1), "{seq:?}");
        b.set_key(0, score(1, 1, 0), 20, false, true);
        b.set_key(0, score(50, 1, 0), 20, false, true);
        let seq: Vec<u32> = (21..=30).map(|t| pick(&mut b, t)).collect();
        let zeros = seq.iter().filter(|&&s| s == 0).count();
        assert!((4..=6).contains(&zeros), "{seq:?}");
    }

    #[test]
    fn a_returning_token_gets_no_catch_up_burst() {
        let mut b = members(2);
        b.remove(1);
        for t in 1..=100 {
            pick(&mut b, t);
        }
        b.insert(1);
        let ones = (101..=110).filter(|&t| pick(&mut b, t) == 1).count();
        assert_eq!(ones, 5);
    }

    #[test]
    fn the_floor_keeps_every_token_in_play() {
        let mut b = members(2);
        b.set_key(1, score(0, 100, 60), 0, false, true);
        let ones = (1..=3000).filter(|&t| pick(&mut b, t) == 1).count();
        assert!((2..=3).contains(&ones), "{ones}");
    }

    #[test]
    fn the_virtual_time_is_rebased_before_it_overflows() {
        let mut b = members(3);
        b.set_virtual_time(REBASE_AT - 2 * STRIDE1);
        let seq: Vec<u32> = (1..=9).map(|t| pick(&mut b, t)).collect();
        assert_eq!(seq, vec![0, 1, 2, 0, 1, 2, 0, 1, 2]);
        assert!(b.vt < REBASE_AT);
    }

    #[test]
    fn score_is_optimistic_and_halved_per_consecutive_failure() {
        assert_eq!(score(0, 0, 0), 1.0);
        assert_eq!(score(9, 0, 0), 1.0);
        assert!((score(10, 1, 0) - 11.0 / 12.0).abs() < 1e-12);
        assert_eq!(score(1, 1, 1), 1.0 / 3.0);
        assert!(score(0, 0, 1000) >= 0.0);
        assert_eq!(weight(0.95), 1.0);
        assert_eq!(weight(0.0), MIN_WEIGHT);
        assert_eq!(weight(f64::NAN), MIN_WEIGHT);
    }
}
