//! tokenlb-manager: the token manager service.
//!
//! HTTP API (DESIGN §3), access control, background tasks (lease expiry, cooling, stats
//! flushing, pruning, health checks) and the embedded admin UI, around one
//! [`tokenlb_core::Pool`] per pool name and one [`tokenlb_store::Store`].
//!
//! Entry points: [`run`] (open + serve until a shutdown future resolves), or
//! [`Manager::open`] then [`Manager::serve`] when the caller wants the [`AppState`] first;
//! [`app`] builds the router alone.

pub mod app;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod error;
pub mod health;
pub mod import;
pub use tokenlb_listen as listen;
pub mod metrics;
pub mod openapi;
pub mod refresh;
pub mod routes;
pub mod server;
pub mod session;
pub mod state;
pub mod tasks;
pub mod validate;
pub mod views;
pub mod wopan_health;

pub use app::app;
pub use error::ApiError;
pub use server::{run, Manager};
pub use state::AppState;
