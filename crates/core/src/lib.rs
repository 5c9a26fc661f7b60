//! tokenlb-core: the pure logic of a token pool.
//!
//! Everything here is deterministic: time comes in as a [`Millis`] argument and randomness as a
//! `&mut impl rand::Rng`, so every behaviour can be tested without clocks or sleeps. There is no
//! I/O and no async; the manager wraps a [`pool::Pool`] in a short-held lock and persists what
//! it produces (events, stats) through the store.
//!
//! Modules: [`pool`] (the pool and its API), [`state`] (the per-token state machine),
//! [`strategy`] (the six strategies and the eligible index), [`policy`], [`window`] (time
//! buckets), [`ewma`] (latency estimates), [`stats`] (minute series, dirty deltas).

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
    DirtyTake, Lease, LeaseId, Pool, PoolError, StateChange, TokenPatch, TokenSpec, TokenView,
    Unavailable,
};
pub use secret::Secret;
pub use stats::{Dirty, PoolStats};
pub use types::{Counters, Limits, Millis, Strategy, TokenId, TokenState};
