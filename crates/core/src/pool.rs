//! A named pool of tokens: leasing with a strategy, outcomes, the state machine, timers, stats.
//!
//! `Pool` is plain data with `&mut self` methods; the manager keeps one per pool behind a
//! short-held lock (never across `.await`). All time is `now: Millis`, all randomness an
//! `rng` argument, so a seeded RNG makes every run reproducible.
//!
//! Layout:
//! - tokens live in a slot vector (`slots`, reused through a free list, each reuse bumping a
//!   generation so stale timers are recognised) with a `TokenId → slot` map;
//! - [`crate::strategy::Eligible`] indexes the tokens that may be leased *now*; every change
//!   to a token ends in `Pool::refresh`, which moves it in or out — so a pick never scans;
//! - open leases and their deadlines are kept in the lease book (`lease_book`), a ring by
//!   lease number; the other timers are min-heaps with lazy deletion (`timers`): cooling
//!   ends and rpm-window rolls (recoveries), `expires_at`. `tick` processes what is due; `pick`,
//!   `report` and friends do the same first, so a caller that forgets to tick still never
//!   gets an expired token. State changes found that way are kept and returned by the next
//!   call that returns changes (`tick`, `report`, `patch`, …): the returned list may include
//!   other tokens' changes — each carries its token id.
//!
//! Submodules: `admin` (insert, remove, patch, refresh, health results), `pick` (pick,
//! report), `lease_book` (open leases and their deadlines), `timers`, `view` (views, stats),
//! `dirty` (changed counters handed over in chunks), `token` (one token's data, laid out for
//! cache locality), `cells` (compact counters), `check` (a brute-force self-check for
//! tests), `types` (the public data types).

mod admin;
mod cells;
mod check;
mod dirty;
mod lease_book;
mod pick;
mod timers;
mod token;
mod types;
mod view;

pub use dirty::DirtyTake;
pub use types::{
    Lease, LeaseId, PoolError, StateChange, TokenPatch, TokenSpec, TokenView, Unavailable,
};
pub use view::TokenKey;

use crate::ewma::PeakEwma;
use crate::policy::Policy;
use crate::state::{Ctx, Health, Transition};
use crate::stats::MinuteRing;
use crate::strategy::{best, Eligible};
use crate::types::{Millis, Strategy, TokenId, TokenState};
use lease_book::LeaseBook;
use std::collections::{BinaryHeap, HashMap};
use timers::Timer;
use token::Token;

/// A named set of tokens with its policy. See the module docs.
#[derive(Debug)]
pub struct Pool {
    name: String,
    policy: Policy,
    /// Tokens by slot; `None` = free slot.
    slots: Vec<Option<Token>>,
    /// Generation of each slot, bumped on reuse (stale timers carry the old one).
    gens: Vec<u32>,
    free: Vec<u32>,
    /// Id → slot; the key is the token's own `Arc<str>`.
    by_id: HashMap<std::sync::Arc<str>, u32>,
    /// Rotation order for the next inserted token.
    next_seq: u64,
    eligible: Eligible,
    /// Per slot: (in flight, latency estimate) — a dense copy of what P2C compares, so
    /// `least_in_flight` and `latency` read two small entries instead of two cold tokens.
    loads: Vec<(u32, PeakEwma)>,
    /// Cooling ends and rpm-window rolls.
    recover: BinaryHeap<Timer>,
    /// `best` rescore times of penalised tokens (not recoveries: never a `retry_at`).
    rescore: BinaryHeap<Timer>,
    /// `expires_at` times.
    expiry: BinaryHeap<Timer>,
    /// Open leases by number, with their slots and deadlines.
    leases: LeaseBook,
    /// Tokens per state, in `TokenState::ALL` order.
    counts: [usize; 5],
    /// Tokens cooling for transient errors (the `max_cooling_percent` rail).
    transient_cooling: usize,
    /// Serviceable tokens at their in-flight limit (a lease deadline frees them).
    in_flight_blocked: usize,
    in_flight: u64,
    success: u64,
    failures: u64,
    requests: u64,
    minutes: MinuteRing,
    dirty: Vec<u32>,
    /// Finished minutes of tokens not yet taken: (slot, generation, (minute, requests,
    /// failures)). A flat list (appending is cheap); grouped by token when taken (`dirty`).
    rolled: Vec<(u32, u32, (u64, u32, u32))>,
    /// Changes found while advancing time inside calls that cannot return them.
    pending: Vec<StateChange>,
}

pub(crate) fn state_index(s: TokenState) -> usize {
    match s {
        TokenState::Active => 0,
        TokenState::Cooling => 1,
        TokenState::Invalid => 2,
        TokenState::Disabled => 3,
        TokenState::Expired => 4,
    }
}

impl Pool {
    /// An empty pool. The index of `policy.strategy` is maintained from the start; other
    /// ordered indexes are built on their first use (see [`crate::strategy`]).
    pub fn new(name: impl Into<String>, policy: Policy) -> Pool {
        let mut eligible = Eligible::default();
        eligible.activate(policy.strategy, |_| (1.0, 0, false));
        Pool {
            name: name.into(),
            policy,
            slots: Vec::new(),
            gens: Vec::new(),
            free: Vec::new(),
            by_id: HashMap::new(),
            next_seq: 0,
            eligible,
            loads: Vec::new(),
            recover: BinaryHeap::new(),
            rescore: BinaryHeap::new(),
            expiry: BinaryHeap::new(),
            leases: LeaseBook::new(1),
            counts: [0; 5],
            transient_cooling: 0,
            in_flight_blocked: 0,
            in_flight: 0,
            success: 0,
            failures: 0,
            requests: 0,
            minutes: MinuteRing::default(),
            dirty: Vec::new(),
            rolled: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// The pool's name, as its messages (`Unavailable::reason`) quote it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Replaces the policy; applies to what happens from now on (open leases keep their
    /// deadlines, cooling tokens their end).
    pub fn set_policy(&mut self, policy: Policy) {
        self.activate(policy.strategy);
        self.policy = policy;
    }

    /// Makes sure the index `strategy` picks from is maintained (see [`crate::strategy`]).
    fn activate(&mut self, strategy: Strategy) {
        if self.eligible.is_active(strategy) {
            return;
        }
        let slots = &self.slots;
        self.eligible.activate(strategy, |s| {
            let t = slots[s as usize].as_ref().expect("member is live");
            (f64::from(t.score), t.last_used, t.health.half_open)
        });
    }

    /// Tokens in the pool, in any state.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// The pool holds no token at all.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// How many tokens may be leased right now (as of the last time advance).
    pub fn eligible_len(&self) -> usize {
        self.eligible.len()
    }

    fn slot_of(&self, id: &TokenId) -> Result<u32, PoolError> {
        self.by_id
            .get(id.as_str())
            .copied()
            .ok_or_else(|| PoolError::UnknownToken(id.clone()))
    }

    fn tok(&self, slot: u32) -> &Token {
        self.slots[slot as usize]
            .as_ref()
            .expect("slot of a live token")
    }

    fn tok_mut(&mut self, slot: u32) -> &mut Token {
        self.slots[slot as usize]
            .as_mut()
            .expect("slot of a live token")
    }

    /// Brings `slot`'s membership in the eligible index in line with its state and limits at
    /// `now`, and keeps `best`'s key and the in-flight-blocked count current.
    fn refresh(&mut self, slot: u32, now: Millis) {
        let window = self.policy.best_window_s;
        let t = self.slots[slot as usize].as_ref().expect("live slot");
        let eligible = t.eligible(now);
        let blocked = t.health.serviceable() && t.in_flight_full();
        if blocked != t.blocked {
            if blocked {
                self.in_flight_blocked += 1;
            } else {
                self.in_flight_blocked -= 1;
            }
            self.tok_mut(slot).blocked = blocked;
        }
        if self.eligible.is_active(Strategy::Best) {
            // Only `best` needs the score on every touch; otherwise reports keep it fresh.
            let t = self.tok_mut(slot);
            let score = t.score(now, window);
            t.score = score as f32;
            let (last_used, probe) = (t.last_used, t.health.half_open);
            // A penalised token is re-scored when its failures leave the window, even if
            // nothing touches it (one timer per token at most).
            let rescore = (best::weight(score) < 1.0 && t.rescore_at <= now)
                .then(|| t.rescore_time(window))
                .filter(|&at| at > now);
            if let Some(at) = rescore {
                t.rescore_at = at;
            }
            self.eligible.set_best_key(slot, score, last_used, probe);
            if let Some(at) = rescore {
                self.rescore
                    .push(std::cmp::Reverse((at, slot, self.gens[slot as usize])));
            }
        }
        if eligible {
            self.eligible.insert(slot);
        } else {
            self.eligible.remove(slot);
        }
    }

    /// Runs a state-machine step on `slot`, keeping counts, timers and the index right, and
    /// turns its transition into a `StateChange`.
    fn with_health<F>(&mut self, slot: u32, now: Millis, f: F) -> Option<StateChange>
    where
        F: FnOnce(&mut Health, Ctx<'_>) -> Option<Transition>,
    {
        let serviceable = self.counts[0] + self.counts[1];
        let pct = u64::from(self.policy.max_cooling_percent.min(100));
        let rail_room = (self.transient_cooling as u64 + 1) * 100 <= pct * serviceable as u64;
        let policy = &self.policy;
        let t = self.slots[slot as usize].as_mut().expect("live slot");
        let before = (t.health.state, counted(&t.health));
        let ctx = Ctx {
            now,
            policy,
            rail_room,
        };
        let tr = f(&mut t.health, ctx);
        let after = (t.health.state, counted(&t.health));
        let (until, half_open) = (t.health.until, t.health.half_open);
        let mut change = None;
        if let Some(tr) = tr {
            if tr.cooled {
                t.counters.times_cooled = t.counters.times_cooled.saturating_add(1);
            }
            change = Some(StateChange {
                at: now,
                token_id: t.token_id(),
                from: tr.from,
                to: tr.to,
                reason: tr.reason,
                cause: tr.cause,
                params: tr.params,
                sample_error: tr.sample_error,
            });
        }
        self.counts[state_index(before.0)] -= 1;
        self.counts[state_index(after.0)] += 1;
        self.transient_cooling =
            self.transient_cooling + usize::from(after.1) - usize::from(before.1);
        if change.is_some() {
            if let (TokenState::Cooling, Some(u), false) = (after.0, until, half_open) {
                self.push_recover(u, slot);
            }
            let t = self.tok(slot);
            if t.health.serviceable() && t.rpm_full(now) {
                // Back in service with this minute's rpm used up: wake when it rolls.
                self.push_recover(Self::next_minute(now), slot);
            }
            self.mark_dirty(slot);
        }
        self.refresh(slot, now);
        change
    }
}

/// Counts against the `max_cooling_percent` rail.
fn counted(h: &Health) -> bool {
    h.state == TokenState::Cooling && h.transient_cooling
}
