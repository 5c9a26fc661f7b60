//! The conformance story every `Store` backend must pass, written once over `&dyn Store`.
//!
//! Modelled on atuin's `tests-database`: a backend's test opens a [`Harness`] (a fresh, empty
//! database — a temp dir for SQLite, a unique schema for PostgreSQL) and runs [`run_all`]. The
//! story reopens the store through the harness to prove durability, and checks behaviour only
//! through the trait, so a new backend is conformant when this passes unchanged.
//!
//! Every secret the story writes comes from `tokenlb_store::fixtures::secret`, which starts with `SECRET_MARKER`; a
//! backend test can scan its files for the marker to prove no secret was stored in plain.

use async_trait::async_trait;
#[allow(unused_imports)] // the stories below use them through `super::*`
use tokenlb_core::{Limits, Secret, TokenId, TokenState};
pub use tokenlb_store::fixtures::*;
#[allow(unused_imports)]
use tokenlb_store::{
    Cipher, EventQuery, EventRecord, MinuteCount, MinuteQuery, StatsBatch, Store, StoreError,
    StoreResult, StoredPool, StoredToken, TokenCounters, TokenUpdate,
};

mod record_story;
mod token_story;

pub use record_story::{events, minutes_and_prune, pools, reencrypt, stats};
pub use token_story::tokens;

/// Opens the backend under test. Each call opens the *same* database (a reopen), with the
/// given key.
#[async_trait]
pub trait Harness: Send + Sync {
    /// Opens the store under test with `cipher` (the same database every time).
    async fn open(&self, cipher: &Cipher) -> StoreResult<Box<dyn Store>>;
}

/// Runs every part of the story, each on a fresh database from `fresh()`.
pub async fn run_all<H: Harness>(mut fresh: impl FnMut() -> H) {
    tokens(&fresh()).await;
    stats(&fresh()).await;
    events(&fresh()).await;
    minutes_and_prune(&fresh()).await;
    pools(&fresh()).await;
    reencrypt(&fresh()).await;
}

/// Opens with [`key`]`(1)`, panicking with the error if it fails (this is test code).
pub async fn open(h: &dyn Harness) -> Box<dyn Store> {
    open_with(h, &key(1)).await
}

/// Opens with `cipher`, panicking with the error if it fails.
pub async fn open_with(h: &dyn Harness, cipher: &Cipher) -> Box<dyn Store> {
    match h.open(cipher).await {
        Ok(s) => s,
        Err(e) => panic!("open failed: {e}"),
    }
}
