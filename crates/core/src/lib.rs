//! tokenlb-core: the pure logic of a token pool.
//!
//! Everything here is deterministic: time comes in as a [`Millis`] argument and randomness as a
//! `&mut impl rand::Rng`, so every behaviour can be tested without clocks or sleeps. There is no
//! I/O and no async; the manager wraps a [`pool::Pool`] in a short-held lock and persists what
//! it produces (events, stats) through the store.

pub mod outcome;
pub mod secret;
pub mod types;

pub use outcome::{Outcome, OutcomeClass};
pub use secret::Secret;
pub use types::{Counters, Limits, Millis, Strategy, TokenId, TokenState};
