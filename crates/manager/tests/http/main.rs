//! The manager's integration tests: a real manager on 127.0.0.1:0 per test (the router, the
//! service and the store as they run), one module per area. One binary, so the crate is
//! linked once; nextest still runs every test in its own process.

#![allow(dead_code)] // each module uses a different part of the support code

mod access;
mod api;
mod behaviour;
mod common;
mod health;
mod import_scale;
mod log_levels;
mod paging;
mod proxy;
mod reasons;
mod session;
mod startup;
mod trust;
mod ui_security;
mod validation;
mod wopan_common;
mod wopan_health;
mod wopan_refresh_logs;
