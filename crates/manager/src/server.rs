//! Start-up and serving: [`Manager::open`] opens the store, loads the tokens into their
//! pools, imports `tokens.json`, prepares the credentials and starts the background tasks;
//! [`Manager::serve`] serves the router until the shutdown future resolves, lets in-flight
//! requests finish, stops the tasks and flushes the last stats. [`run`] does both.
//!
//! Every start-up failure is an `anyhow` error with context naming the file or setting, so
//! the binary prints one clear line and exits non-zero; nothing here panics.

use crate::auth::Auth;
use crate::auth::Keys;
use crate::config::Config;
use crate::health::Probes;
use crate::import;
use crate::metrics::Metrics;
use crate::refresh::Refresher;
use crate::service::{Coordinator, Local, TokenService};
use crate::state::AppState;
use crate::tasks::Tasks;
use anyhow::Context;
use std::future::Future;
use std::sync::Arc;
use tokenlb_store::{Cipher, KeySource, PgOptions, PgStore, Store};
use tokio::net::TcpListener;

/// An opened manager: state and running background tasks, not yet serving.
pub struct Manager {
    state: AppState,
    tasks: Tasks,
    tokens_file: Option<import::ImportSummary>,
}

/// Opens the manager with `coordinator` and serves it on `listener` until `shutdown`
/// resolves.
pub async fn run(
    config: Config,
    coordinator: Arc<dyn Coordinator>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    Manager::open_with(config, coordinator)
        .await?
        .serve(listener, shutdown)
        .await
}

impl Manager {
    /// Opens a single-node manager ([`Local`] coordinator). Cluster mode needs its
    /// coordinator from the `tokenlb-cluster` crate: [`Manager::open_with`].
    pub async fn open(config: Config) -> anyhow::Result<Manager> {
        if config.redis.is_some() {
            anyhow::bail!("cluster mode (--redis) needs the Redis coordinator: open the manager through the tokenlb binary");
        }
        Manager::open_with(config, Arc::new(Local)).await
    }

    /// Opens the manager with `coordinator` as its link to peers.
    pub async fn open_with(
        config: Config,
        coordinator: Arc<dyn Coordinator>,
    ) -> anyhow::Result<Manager> {
        let config = Arc::new(config);
        let store = open_store(&config).await?;
        let keys = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || Keys::load(&config))
                .await
                .context("preparing the admin credentials")??
        };
        let metrics = Arc::new(Metrics::default());
        let events = Arc::new(crate::service::events::EventQueue::default());
        let svc = TokenService::new(config.clone(), store, coordinator, metrics.clone(), events);
        for name in config.pools.keys() {
            svc.pool_or_create(name)
                .map_err(|e| anyhow::anyhow!("pool {name}: {e}"))?;
        }
        load_tokens(&svc).await?;
        let tokens_file = import_tokens_file(&svc).await?;
        let probes = Arc::new(Probes::default());
        let refresher = Arc::new(Refresher::new(svc.clone()));
        let tasks = Tasks::spawn(&svc, &probes, &refresher);
        let auth = Auth::new(&config, keys);
        let state = AppState::new(svc, auth, probes, refresher, metrics);
        Ok(Manager {
            state,
            tasks,
            tokens_file,
        })
    }

    /// What importing `tokens_file` at open did (`None`: there was no such file).
    pub fn tokens_file_import(&self) -> Option<&import::ImportSummary> {
        self.tokens_file.as_ref()
    }

    /// The shared state (the launcher adds its demo tokens through its service).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.serve_with(listener, shutdown, None).await
    }

    /// [`Manager::serve`] with `prepare` run on every request before it is routed (tests
    /// stand in for the peer address with it, to exercise the loopback rule from loopback).
    pub async fn serve_with(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
        prepare: Option<crate::app::Prepare>,
    ) -> anyhow::Result<()> {
        let addr = listener
            .local_addr()
            .context("reading the listening address")?;
        tracing::info!(%addr, "token manager listening on http://{addr}");
        // `tokenlb token …` finds the manager it should call here (after `--listen` or
        // `up --manager-listen`), as it finds the admin key.
        let url = format!("http://{}\n", reachable(addr));
        let url_file = self
            .state
            .service()
            .config()
            .data_dir
            .join(MANAGER_URL_FILE);
        if let Err(e) = std::fs::write(&url_file, url) {
            tracing::warn!(path = %url_file.display(), "cannot record the manager URL: {e}");
        }
        let app = crate::app::routes(self.state.clone(), prepare);
        let svc = self.state.service().clone();
        let shutdown = async move {
            shutdown.await;
            svc.begin_shutdown();
        };
        let config = self.state.service().config();
        let hosts = crate::listen::Hosts::for_listener(addr, &config.allowed_hosts);
        tracing::info!("answering for Host: {}", hosts.describe());
        let options = crate::listen::Options {
            max_connections: config.max_connections,
            ..crate::listen::Options::new(hosts)
        };
        // Not `axum::serve`: it offers no header or idle timeout, no connection cap, no
        // request-head cap and no Host check.
        crate::listen::serve(listener, app, shutdown, options).await;
        tracing::info!("shutting down: flushing stats and events");
        self.tasks.shutdown().await;
        Ok(())
    }
}

async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    if let Some(url) = &config.store {
        let (cipher, source) =
            Cipher::load_or_create(&config.data_dir, config.encryption_key.as_ref())
                .context("loading the encryption key")?;
        log_key_source(source);
        let options = PgOptions {
            acquire_timeout: std::time::Duration::from_secs(2),
            ..PgOptions::default()
        };
        let store = PgStore::connect_with(url, cipher, options)
            .await
            .with_context(|| format!("opening the store {}", redact_url(url)))?;
        return Ok(Arc::new(store));
    }
    // `open_sqlite` also finishes (or discards) a key rotation that a crash interrupted, and
    // refuses to invent a new key for a database whose key file is missing.
    let path = config.data_dir.join(tokenlb_store::sqlite::DEFAULT_FILE);
    let (store, source) =
        tokenlb_store::keys::open_sqlite(&config.data_dir, config.encryption_key.as_ref())
            .await
            .with_context(|| format!("opening the store {}", path.display()))?;
    log_key_source(source);
    Ok(Arc::new(store))
}

/// Says where the encryption key came from: the path of the key file, never the key.
fn log_key_source(source: KeySource) {
    match source {
        KeySource::Configured => tracing::info!("encryption key from the configuration"),
        KeySource::File {
            path,
            created,
            loose_permissions,
        } => {
            if created {
                tracing::info!("generated the encryption key into {}", path.display());
            }
            if loose_permissions {
                tracing::warn!(
                    "the key file {} is readable by others; chmod 600 it",
                    path.display()
                );
            }
        }
    }
}

fn redact_url(url: &str) -> String {
    match url.split_once('@') {
        Some((_, host)) => format!("…@{host}"),
        None => url.to_string(),
    }
}

async fn load_tokens(svc: &TokenService) -> anyhow::Result<()> {
    let tokens = svc
        .store()
        .load_tokens()
        .await
        .context("loading tokens from the store")?;
    let n = tokens.len();
    for t in tokens.iter().take(20) {
        tracing::info!(token = %t.id, pool = %t.pool, "loaded token {} ({})", t.name, t.id);
    }
    svc.insert_many(tokens)
        .map_err(|e| anyhow::anyhow!("loading tokens: {e}"))?;
    let noun = if n == 1 { "token" } else { "tokens" };
    tracing::info!("loaded {n} {noun} from {}", svc.store().describe());
    Ok(())
}

async fn import_tokens_file(svc: &TokenService) -> anyhow::Result<Option<import::ImportSummary>> {
    let path = &svc.config().tokens_file;
    if path.as_os_str().is_empty() || !path.exists() {
        tracing::debug!("no tokens file at {}", path.display());
        return Ok(None);
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the tokens file {}", path.display()))?;
    let parsed = import::parse(&text)
        .map_err(|e| anyhow::anyhow!("the tokens file {} is malformed: {e}", path.display()))?;
    let summary = svc
        .import(parsed, crate::config::DEFAULT_POOL)
        .await
        .map_err(|e| anyhow::anyhow!("importing the tokens file {}: {e}", path.display()))?;
    for e in &summary.errors {
        tracing::warn!(
            "tokens file {}: {:?} skipped: {}",
            path.display(),
            e.at,
            e.message
        );
    }
    tracing::info!(
        "imported {} new tokens from {} ({} already present, {} invalid)",
        summary.added,
        path.display(),
        summary.skipped,
        summary.errors.len()
    );
    Ok(Some(summary))
}

/// The file in the data dir that holds the running manager's URL (for the CLI).
pub const MANAGER_URL_FILE: &str = "manager-url";

/// The address a local client connects to: loopback for a wildcard bind.
pub fn reachable(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}
