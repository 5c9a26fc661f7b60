//! Test fixtures shared by tokenlb's crates (`publish = false`, a dev-dependency only).
//!
//! - [`logs`]: capture what `tracing` writes, for the tests that prove a secret never
//!   reaches the logs;
//! - [`process`]: run the `tokenlb` binary with a clean environment, collect its output and
//!   scrape the address it listens on;
//! - [`metrics`]: fetch `/metrics` and read one series;
//! - [`store_story`]: the conformance story every `Store` backend must pass.
//!
//! Everything here listens on, or talks to, loopback only.

#![warn(missing_docs)]

pub mod logs;
pub mod metrics;
pub mod process;
pub mod store_story;
