//! The demo of `tokenlb up --demo`: the built-in Wopan emulator and its demo tokens.
//!
//! The demo tokens go to their own pool, `demo`, never to `default`: a data dir that also
//! holds real tokens keeps them apart, so the web API never sends a real token to the
//! emulator (which would reject it and get it marked invalid) and a later run without --demo
//! never leases a demo token. They are imported like `tokens.json` — merged by value in one
//! store transaction — so starting again on the same data dir adds nothing twice.

use anyhow::Context;
use std::future::Future;
use tokenlb_core::Secret;
use tokenlb_manager::import::{self, ImportItem, ImportSummary, Parsed, Position};
use tokenlb_manager::AppState;
use tokenlb_wopan::emulator::{self, EmulatorConfig, DEMO_TOKENS};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The pool the demo tokens are added to and the demo web API leases from.
pub const DEMO_POOL: &str = "demo";

/// Adds the demo tokens (with their refresh tokens) to pool `demo`; known ones are skipped.
pub async fn add_tokens(state: &AppState) -> anyhow::Result<ImportSummary> {
    let items = DEMO_TOKENS
        .iter()
        .enumerate()
        .map(|(i, t)| ImportItem {
            at: Position::Entry(i + 1),
            secret: Secret::new(t.access_token),
            name: Some(t.name.to_string()),
            active: true,
            pool: Some(DEMO_POOL.to_string()),
            weight: None,
            expires_at: None,
            refresh: Some(Secret::new(t.refresh_token)),
        })
        .collect();
    let parsed = Parsed {
        items,
        errors: Vec::new(),
    };
    import::apply(state, parsed, DEMO_POOL)
        .await
        .map_err(|e| anyhow::anyhow!("adding the demo tokens: {}", e.message))
}

/// Runs the emulator with the built-in demo data on `listener` until `stop` resolves.
pub fn spawn_emulator(
    listener: TcpListener,
    stop: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<anyhow::Result<()>> {
    tokio::spawn(async move {
        emulator::serve(listener, EmulatorConfig::default(), stop)
            .await
            .context("the Wopan emulator stopped")
    })
}

/// The number of demo tokens (for messages).
pub fn count() -> usize {
    DEMO_TOKENS.len()
}
