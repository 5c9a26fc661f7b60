//! tokenlb-core's integration tests: the pool model through its public API, one module per
//! concern (strategies, fairness, the state machine, lifecycle, properties, memory).

#![allow(dead_code)] // each module uses a different part of the support code

mod common;
mod dirty_chunks;
mod fairness;
mod keys;
mod lifecycle;
mod memory;
mod properties;
mod smoke;
mod state_machine;
mod strategies;
