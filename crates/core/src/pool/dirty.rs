//! Handing dirty counters to the store without holding the pool for long.
//!
//! With 100,000 tokens under `round_robin` every request touches another token, so one flush
//! can take tens of thousands of entries. Building them all in one call would hold the pool's
//! lock (and every `pick` waiting on it) for as long as that takes. The hand-over is
//! therefore split:
//!
//! 1. [`Pool::begin_take_dirty`] swaps the dirty list and the finished-minutes list out of the
//!    pool: O(1), under the lock.
//! 2. [`DirtyTake::prepare`] groups the finished minutes by token: outside the lock.
//! 3. [`Pool::take_dirty_chunk`] builds at most `max` [`Dirty`] records per call: under the
//!    lock, briefly; the caller releases the lock between chunks.
//!
//! A token stays marked dirty until its chunk is built, so a request in between does not queue
//! it again and its record carries the newest counters; a request after its chunk queues it
//! for the next flush. Each per-minute count is handed over exactly once: either as a finished
//! minute (`rolled`) or by the token's current-minute delta.

use super::Pool;
use crate::stats::Dirty;
use std::collections::HashMap;

/// (minute, requests, failures) of one token.
type Minutes = Vec<(u64, u32, u32)>;

/// One flush's worth of dirty tokens, taken out of a pool by [`Pool::begin_take_dirty`].
#[derive(Debug, Default)]
pub struct DirtyTake {
    /// Slots marked dirty when the take began.
    slots: Vec<u32>,
    /// Finished minutes as taken: (slot, generation, (minute, requests, failures)).
    rolled: Vec<(u32, u32, (u64, u32, u32))>,
    /// What to visit, built by `prepare`.
    work: Vec<Work>,
    prepared: bool,
    pos: usize,
}

/// One token to visit: a dirty slot, its finished minutes (if the slot's generation still
/// matches), or both.
#[derive(Debug)]
struct Work {
    slot: u32,
    from_dirty: bool,
    rolled_gen: u32,
    rolled: Vec<(u64, u32, u32)>,
}

impl DirtyTake {
    /// Groups the finished minutes by token. Cheap to call twice; call it without the pool's
    /// lock ([`Pool::take_dirty_chunk`] does it otherwise).
    pub fn prepare(&mut self) {
        if self.prepared {
            return;
        }
        self.prepared = true;
        // Finished minutes per (slot, generation), and the newest generation per slot: a
        // slot's generations only grow, so only the newest can be its current token's.
        let mut groups: HashMap<(u32, u32), Minutes> = HashMap::new();
        let mut newest: HashMap<u32, u32> = HashMap::new();
        for (slot, gen, m) in self.rolled.drain(..) {
            groups.entry((slot, gen)).or_default().push(m);
            let g = newest.entry(slot).or_insert(gen);
            *g = (*g).max(gen);
        }
        let mut work: Vec<Work> = Vec::with_capacity(self.slots.len() + groups.len());
        // A slot is listed twice when its token was removed and a new one there got dirty:
        // visit it once, or a token touched between chunks would come twice.
        let mut listed = std::collections::HashSet::with_capacity(self.slots.len());
        for slot in self.slots.drain(..) {
            if !listed.insert(slot) {
                continue;
            }
            let mut w = Work {
                slot,
                from_dirty: true,
                rolled_gen: 0,
                rolled: Vec::new(),
            };
            // The newest generation's minutes ride with the slot's dirty entry.
            if let Some(gen) = newest.remove(&slot) {
                w.rolled_gen = gen;
                w.rolled = groups.remove(&(slot, gen)).unwrap_or_default();
            }
            work.push(w);
        }
        // The rest: minutes of tokens not listed as dirty (or of an older generation, which
        // `take_dirty_chunk` drops), in slot order.
        let mut rest: Vec<((u32, u32), Minutes)> = groups.into_iter().collect();
        rest.sort_unstable_by_key(|(k, _)| *k);
        work.extend(rest.into_iter().map(|((slot, gen), rolled)| Work {
            slot,
            from_dirty: false,
            rolled_gen: gen,
            rolled,
        }));
        self.work = work;
    }

    /// Everything has been handed over.
    pub fn is_done(&self) -> bool {
        self.prepared && self.pos >= self.work.len()
    }

    /// Tokens still to visit (an upper bound on the records still to come).
    pub fn remaining(&self) -> usize {
        if self.prepared {
            self.work.len() - self.pos
        } else {
            self.slots.len() + self.rolled.len()
        }
    }
}

impl Pool {
    /// Starts handing over the tokens whose counters changed since the last take: swaps the
    /// dirty and finished-minute lists out (O(1)). Follow with [`DirtyTake::prepare`] and
    /// [`Pool::take_dirty_chunk`] until [`DirtyTake::is_done`]; a take must be finished (or
    /// dropped) before the next begins, or its tokens wait until they change again.
    pub fn begin_take_dirty(&mut self) -> DirtyTake {
        DirtyTake {
            slots: std::mem::take(&mut self.dirty),
            rolled: std::mem::take(&mut self.rolled),
            ..DirtyTake::default()
        }
    }

    /// Builds up to `max` (at least 1) records of `take`, appending them to `out`; returns how
    /// many tokens it visited. Minutes of a removed token are dropped.
    pub fn take_dirty_chunk(
        &mut self,
        take: &mut DirtyTake,
        max: usize,
        out: &mut Vec<Dirty>,
    ) -> usize {
        take.prepare();
        let end = take.work.len().min(take.pos.saturating_add(max.max(1)));
        let start = take.pos;
        for w in &mut take.work[start..end] {
            let slot = w.slot as usize;
            let gen_ok = self.gens.get(slot) == Some(&w.rolled_gen);
            let Some(t) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            let mut minutes = if gen_ok {
                std::mem::take(&mut w.rolled)
            } else {
                Vec::new()
            };
            let mut include = !minutes.is_empty();
            if w.from_dirty && t.dirty {
                t.dirty = false;
                minutes.extend(t.delta.take());
                include = true;
            }
            if include {
                out.push(Dirty {
                    token_id: t.token_id(),
                    counters: t.counters.to_counters(t.last_used),
                    minutes,
                });
            }
        }
        take.pos = end;
        end - start
    }

    /// Tokens whose counters changed since the last call, with their per-minute deltas, in
    /// one call (the pool stays busy for all of them; [`Pool::begin_take_dirty`] hands over in
    /// chunks). Call it regularly (the manager's flush, at least once a second): finished
    /// minutes wait in a list until taken.
    pub fn take_dirty(&mut self) -> Vec<Dirty> {
        let mut take = self.begin_take_dirty();
        let mut out = Vec::with_capacity(take.remaining());
        self.take_dirty_chunk(&mut take, usize::MAX, &mut out);
        out
    }
}
