//! tokenlb-manager: the token manager service.
//!
//! Three layers, dependencies pointing down (docs/architecture.md):
//! - HTTP: [`app`] (router and per-request layer), [`routes`] (thin handlers), [`auth`],
//!   [`session`], [`error`] (one [`ApiError`]), [`openapi`], the embedded UI;
//! - service: [`service::TokenService`], the only door to the pools (lease, report, add,
//!   remove, patch, import, the `apply_*` entry points), with its
//!   [`service::Coordinator`] seam for peers (the `tokenlb-cluster` crate in cluster mode);
//! - background: [`tasks`], [`health`], [`refresh`], [`notify`] (webhooks), each handed
//!   only what it uses;
//!
//! all over one [`tokenlb_core::Pool`] per pool name and one [`tokenlb_store::Store`].
//!
//! Entry points: [`run`] (open + serve until a shutdown future resolves), or
//! [`Manager::open`] then [`Manager::serve`] when the caller wants the [`AppState`] first;
//! [`app`] builds the router alone.

pub mod app;
pub mod auth;
pub mod config;
pub mod error;
pub mod health;
pub mod import;
pub use tokenlb_listen as listen;
pub mod metrics;
pub mod notify;
pub mod openapi;
pub mod probe;
pub mod proxy;
pub mod refresh;
pub mod routes;
pub mod server;
pub mod service;
pub mod session;
pub mod shutdown;
pub mod state;
pub mod tasks;
pub mod validate;
pub mod views;
pub mod wopan_health;

pub use app::app;
pub use error::ApiError;
pub use server::{run, Manager};
pub use state::AppState;
