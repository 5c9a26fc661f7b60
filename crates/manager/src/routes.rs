//! HTTP handlers, one module per area. Each handler is thin: it authenticates through an
//! extractor, parses, calls one method of the service ([`crate::service`]), and renders
//! the answer. Errors are [`crate::error::ApiError`]s, most of them mapped from the
//! service's errors in one place.

pub mod admin_tokens;
pub mod auth;
pub mod events;
pub mod lease;
pub mod ops;
pub mod seed_tokens;
pub mod stats;
pub mod ui;
