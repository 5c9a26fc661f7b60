//! The demo of `tokenlb up --demo`: the built-in Wopan emulator and its demo tokens.
//!
//! The demo keeps its own data dir (`./data/demo` unless --data-dir, `TOKENLB_DATA_DIR` or
//! the config file names one) and puts its tokens in pool `default` there, so every command
//! of the seed works verbatim against it (`curl …/api/token/get?strategy=best` names no
//! pool) while real tokens in `./data` stay apart: the web API never sends a real token to
//! the emulator (which would reject it and get it marked invalid), and a later run without
//! --demo never leases a demo token. A data dir that holds tokens but was never a demo's is
//! refused ([`claim`]). The demo tokens are imported like `tokens.json`, merged
//! by value in one store transaction, so starting again adds nothing twice. The emulator
//! starts fresh each time, so demo tokens an earlier demo refreshed are reset to the
//! originals ([`reset_refreshed`]), and those it left `invalid` or `cooling` (fault
//! injection) work again: [`reactivate`] enables them through the admin API as the
//! launcher (its event says so); tokens an admin disabled stay disabled. The demo also
//! serves one proxy route, `demo` ([`add_proxy_route`]), to the emulator's demo API.

use anyhow::Context;
use std::future::Future;
use std::path::Path;
use tokenlb_core::secret::mask;
use tokenlb_core::Secret;
use tokenlb_core::TokenState;
use tokenlb_manager::config::{Config, Inject, ProxyConfig};
use tokenlb_manager::import::{ImportItem, ImportSummary, Parsed, Position};
use tokenlb_manager::service::{TokenChanges, TokenRef, TokenService};
use tokenlb_wopan::emulator::{self, EmulatorConfig, DEMO_TOKENS};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The demo's data dir under the default one.
pub const DEMO_DIR: &str = "demo";

/// Marks a data dir as the demo's (its tokens are the demo's to manage).
const MARKER: &str = "demo-data-dir";

/// Refuses a data dir that holds tokens but was never a demo's: the demo would send them to
/// its emulator. Marks the dir as the demo's otherwise.
pub fn claim(svc: &TokenService, data_dir: &Path) -> anyhow::Result<()> {
    let marker = data_dir.join(MARKER);
    if marker.exists() {
        return Ok(());
    }
    let n = svc.token_count();
    if n > 0 {
        anyhow::bail!(
            "{} holds {n} token(s) and is not a demo's data dir; the demo would send them to \
             its emulator. Start the demo without --data-dir (it uses ./data/demo) or with an \
             empty one",
            data_dir.display()
        );
    }
    std::fs::write(&marker, "tokenlb up --demo keeps its tokens here\n")
        .with_context(|| format!("writing {}", marker.display()))
}

/// Removes demo tokens of `pool` that an earlier demo's emulator refreshed (same name, new
/// secret): this run's emulator starts fresh and knows only the originals, which
/// [`add_tokens`] adds back. Returns how many.
pub async fn reset_refreshed(svc: &TokenService, pool: &str) -> anyhow::Result<usize> {
    let Some(handle) = svc.pool_by_name(pool) else {
        return Ok(0);
    };
    let stale: Vec<_> = handle
        .views()
        .into_iter()
        .filter(|v| {
            DEMO_TOKENS
                .iter()
                .any(|t| t.name == v.name && mask(t.access_token) != v.masked)
        })
        .collect();
    for v in &stale {
        let by = TokenRef {
            token: None,
            id: Some(v.id.clone()),
            by: None,
        };
        svc.remove(&by)
            .await
            .map_err(|e| anyhow::anyhow!("resetting the demo token {}: {e}", v.name))?;
    }
    Ok(stale.len())
}

/// Adds the demo tokens (with their refresh tokens) to `pool`; known ones are skipped.
pub async fn add_tokens(svc: &TokenService, pool: &str) -> anyhow::Result<ImportSummary> {
    let items = DEMO_TOKENS
        .iter()
        .enumerate()
        .map(|(i, t)| ImportItem {
            at: Position::Entry(i + 1),
            secret: Secret::new(t.access_token),
            name: Some(t.name.to_string()),
            active: true,
            pool: Some(pool.to_string()),
            weight: None,
            expires_at: None,
            refresh: Some(Secret::new(t.refresh_token)),
        })
        .collect();
    let parsed = Parsed {
        items,
        errors: Vec::new(),
    };
    svc.import(parsed, pool)
        .await
        .map_err(|e| anyhow::anyhow!("adding the demo tokens: {e}"))
}

/// Enables the demo tokens of `pool` that are `invalid` or `cooling`; how many. The events
/// say the launcher did it ("enabled by the launcher (tokenlb up --demo)"), not the admin.
pub async fn reactivate(svc: &TokenService, pool: &str) -> anyhow::Result<usize> {
    let Some(handle) = svc.pool_by_name(pool) else {
        return Ok(0);
    };
    let demo: Vec<String> = DEMO_TOKENS.iter().map(|t| mask(t.access_token)).collect();
    let stuck: Vec<_> = handle
        .views()
        .into_iter()
        .filter(|v| matches!(v.state, TokenState::Invalid | TokenState::Cooling))
        .filter(|v| demo.contains(&v.masked))
        .collect();
    for v in &stuck {
        let changes = TokenChanges {
            enabled: Some(true),
            by: Some("the launcher (tokenlb up --demo)".to_string()),
            ..TokenChanges::default()
        };
        svc.patch(&v.id, &changes)
            .await
            .map_err(|e| anyhow::anyhow!("enabling the demo token {}: {e}", v.name))?;
    }
    Ok(stuck.len())
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

/// Name of the demo's proxy route (DESIGN §10), served at `/proxy/demo/…`.
pub const PROXY_ROUTE: &str = "demo";

/// Adds the demo's proxy route, unless the configuration has one of that name: the
/// emulator's demo API (`/demo-api`, wants `Authorization: Bearer <demo token>`) behind
/// `/proxy/demo/…`, with the demo tokens of `pool`.
pub fn add_proxy_route(config: &mut Config, emulator_url: &str, pool: &str) {
    if config.proxy_route(PROXY_ROUTE).is_some() {
        return;
    }
    let upstream = format!("{}/demo-api", emulator_url.trim_end_matches('/'));
    let inject = Inject::header("Authorization", "Bearer {token}");
    config
        .proxy
        .push(ProxyConfig::new(PROXY_ROUTE, &upstream, pool, inject));
}

/// The number of demo tokens (for messages).
pub fn count() -> usize {
    DEMO_TOKENS.len()
}
