//! tokenlb-core: the pure logic of a token pool.
//!
//! Everything here is deterministic: time comes in as a [`Millis`] argument and randomness as a
//! `&mut impl rand::Rng`, so every behaviour can be tested without clocks or sleeps. There is no
//! I/O and no async; the manager wraps a [`pool::Pool`] in a short-held lock and persists what
//! it produces (events, stats) through the store.
//!
//! Modules, from the outside in:
//! - [`pool`]: the pool and its whole API (insert, pick, report, tick, patch, views, stats);
//!   the only module that holds tokens.
//! - [`state`]: the per-token state machine, apart from the pool, so its transitions are
//!   tested on their own; [`policy`]: the thresholds and times it follows.
//! - [`strategy`]: the six strategies over an index of the tokens eligible now, so a pick
//!   never scans the pool.
//! - [`window`] (time buckets), [`ewma`] (latency estimates), [`stats`] (totals, the minute
//!   series, the deltas the store persists): the numbers the pool keeps, per token and in all.
//! - [`types`], [`outcome`], [`secret`]: the vocabulary the other crates share (ids, states,
//!   strategies, outcome classes, a secret that never prints itself).

#![warn(missing_docs)]

pub mod ewma;
pub mod outcome;
pub mod policy;
pub mod pool;
pub mod secret;
pub mod state;
pub mod stats;
pub mod strategy;
pub mod types;
pub mod window;

pub use outcome::{Outcome, OutcomeClass};
pub use policy::Policy;
pub use pool::{
    DirtyTake, Lease, LeaseId, Pool, PoolError, StateChange, TokenKey, TokenPatch, TokenSpec,
    TokenView, Unavailable,
};
pub use secret::Secret;
pub use state::ChangeCause;
pub use stats::{Dirty, PoolStats};
pub use types::{Counters, Limits, Millis, Strategy, TokenId, TokenState};
