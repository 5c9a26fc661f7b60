//! tokenlb-client: lease tokens from a tokenlb manager, report how they did, and retry on
//! another token when one fails.
//!
//! A service that calls a rate-limited or token-guarded upstream (the Wopan cloud drive, for
//! one) asks the manager for a token, uses it, and says how it went, so the manager can take
//! bad tokens out of rotation. This crate does that loop:
//!
//! - [`Client::lease`] — `GET /api/token/get` on the configured pool and strategy;
//! - [`Client::report`] — `POST /api/token/report` with the outcome class (DESIGN §2),
//!   latency, HTTP status, retry-after and a short error sample;
//! - [`Client::call`] — lease, run your operation, classify its error through [`Classify`],
//!   report, and retry on *another* token for auth / rate-limited / quota / transient
//!   failures, within `max_attempts` attempts and `retry_budget` time;
//! - [`Client::renew`] — `POST /api/token/renew` to keep one lease for a long piece of work
//!   (an upload holding one token throughout).
//!
//! `call` does not make its caller wait for the report of a success: it goes to a background
//! reporter (one task per client, a bounded queue delivered in order through the same path as
//! [`Client::report`]); a failure is delivered before the next attempt. Call
//! [`Client::flush`] before a clean shutdown. A process that dies without it loses at most
//! the reports still queued; the manager closes those leases as `unknown` at their deadline.
//!
//! When the manager cannot be reached, the client keeps working for `grace_period` with the
//! tokens it leased last (round robin, skipping those that failed), logs
//! `manager unreachable, using N cached tokens for up to X s` once, queues its reports
//! (bounded), and recovers by itself when the manager answers again. Tokens and the client
//! key are [`Secret`]s: redacted in every `Debug`, `Display` and log.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use tokenlb_client::{Classify, Client, ClientConfig};
//! use tokenlb_core::{OutcomeClass, Secret};
//!
//! /// The upstream's failure, as the caller knows it.
//! #[derive(Debug)]
//! struct UpstreamError { status: u16 }
//!
//! impl std::fmt::Display for UpstreamError {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
//!         write!(f, "upstream answered {}", self.status)
//!     }
//! }
//!
//! impl std::error::Error for UpstreamError {}
//!
//! impl Classify for UpstreamError {
//!     fn class(&self) -> OutcomeClass {
//!         OutcomeClass::from_http_status(self.status, false)
//!     }
//!     fn status(&self) -> Option<u16> {
//!         Some(self.status)
//!     }
//! }
//!
//! # async fn upstream(token: &str) -> Result<String, UpstreamError> { Ok(token.into()) }
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let mut config = ClientConfig::new("http://127.0.0.1:8000");
//!     config.client_key = std::env::var("TOKENLB_CLIENT_KEY").ok().map(Secret::new);
//!     config.grace_period = Duration::from_secs(120);
//!     let client = Client::new(config)?;
//!
//!     // One call, retried on another token if this one is rejected.
//!     let answer = client
//!         .call(|token| async move { upstream(token.secret.expose()).await })
//!         .await?;
//!     println!("{answer}");
//!     client.flush().await; // its success report went out in the background
//!
//!     // Or by hand: lease, use, report.
//!     let lease = client.lease().await?;
//!     let outcome = match upstream(lease.secret().expose()).await {
//!         Ok(_) => tokenlb_core::Outcome::success(),
//!         Err(e) => tokenlb_core::Outcome::new(e.class()),
//!     };
//!     client.report(&lease, outcome).await?;
//!     Ok(())
//! }
//! ```
//!
//! `examples/lease_and_call.rs` is a runnable version against a running manager.

#![warn(missing_docs)]

pub mod call;
pub mod classify;
mod client;
pub mod config;
pub mod drive;
pub mod error;
mod fallback;
pub mod lease;
mod manager_api;
mod reporter;

pub use classify::{is_retryable, Classify};
pub use client::{Client, ClientStatus};
pub use config::ClientConfig;
pub use drive::{DriveClient, DriveEntry, DriveError};
pub use error::{CallError, ClientError, GiveUp};
pub use lease::{Lease, LeaseSource, LeasedToken};
pub use tokenlb_core::{Outcome, OutcomeClass, Secret};

/// The README's Rust snippets, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
