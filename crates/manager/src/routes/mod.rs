//! HTTP handlers, one module per area. Each handler is thin: it authenticates through an
//! extractor, validates, calls the pool or the store, and shapes the answer.

pub mod auth;
pub mod events;
pub mod lease;
pub mod ops;
pub mod stats;
pub mod token;
pub mod tokens;
pub mod ui;
