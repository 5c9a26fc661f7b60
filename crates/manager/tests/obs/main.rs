//! Observability, end to end: `/metrics` after real traffic (checked by promtool), the
//! Grafana dashboard and the Prometheus rules against a real scrape, and the webhook
//! notifier against a receiver on loopback. One binary; nextest runs each test in its own
//! process.

#![allow(dead_code)] // the shared server helpers are used in part

#[path = "../http/common.rs"]
mod common;
mod metrics;
mod notify;
mod promtool;
mod rules;
#[path = "../http/wopan_common.rs"]
mod wopan_common;
