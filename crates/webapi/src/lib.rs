//! tokenlb-webapi: the cloud-drive web API (`tokenlb webapi`, the seed's `wopan_web_api.py`).
//!
//! Lists Wopan folders and files and hands out download links, using tokens leased from the
//! tokenlb manager through [`tokenlb_client`], and keeps answering from its cache when Wopan
//! or every token fails (DESIGN §5):
//!
//! - `GET /api/folders?realtime=` — folders in the root (or in `folder=`);
//! - `GET /api/files?folder=A/B&realtime=` — every entry of a folder;
//! - `GET /api/download/?url=A/B/file[&redirect=true|&proxy=true]` — a download link, a 302
//!   to it, or the bytes streamed through with `Range` passed on;
//! - the drive's writes and quota (DESIGN §11, [`drive_routes`]): `POST /api/folders`,
//!   `POST /api/rename`, `POST /api/move`, `POST /api/copy`, `DELETE /api/files`,
//!   `PUT /api/upload?path=`, `GET /api/usage`; writes need the web API key ([`auth`]),
//!   refresh or drop the cached listings they touch ([`drive`]), and an upload streams its
//!   body on one token ([`upload`]);
//! - `GET /api/openapi.json` ([`openapi`]), `GET /healthz`, `GET /metrics`.
//!
//! Every JSON answer says `source` (`realtime`/`cache`), `cached_at` and `stale`. Listings
//! are cached on disk ([`cache`]) with a TTL, links briefly in memory ([`links`]), identical
//! concurrent upstream calls are merged ([`flight`]), and the three modes of `realtime=` are
//! described in [`service`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), tokenlb_webapi::WebapiError> {
//! let config = tokenlb_webapi::WebapiConfig::new("http://127.0.0.1:8000");
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
//! tokenlb_webapi::run(config, listener, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

pub mod auth;
pub mod cache;
pub mod config;
pub mod download;
pub mod drive;
pub mod drive_routes;
pub mod error;
pub mod flight;
pub mod links;
pub use tokenlb_listen as listen;
pub mod metrics;
pub mod names;
pub mod openapi;
pub mod proxy;
pub mod render;
pub mod routes;
pub mod service;
pub mod upload;
pub mod upstream;
pub mod writer;

pub use config::WebapiConfig;

use axum::routing::{get, post, put};
use axum::Router;
use std::future::Future;
use std::sync::Arc;
use tower_http::trace::TraceLayer;

/// Failures of starting or running the web API.
#[derive(Debug, thiserror::Error)]
pub enum WebapiError {
    #[error("invalid web API configuration: {0}")]
    Config(String),
    #[error("cannot open the listing cache or the key file in {dir}: {source}")]
    Cache { dir: String, source: std::io::Error },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The state every handler shares: one `Arc`, so the clone axum makes for each extractor
/// and middleware is a reference count, not copies of the key and the host list (that
/// clone and its drop were 3 % of a cached answer's CPU).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct Shared {
    pub service: Arc<service::Service>,
    /// The token client (also inside the service), for `/healthz`.
    pub client: tokenlb_client::Client,
    /// HTTP client for `proxy=true` downloads.
    pub download_http: reqwest::Client,
    /// The key the write routes require.
    pub api_key: tokenlb_core::Secret,
    /// Largest upload accepted.
    pub max_upload_bytes: u64,
    /// How an upload keeps its token's lease alive.
    pub renewal: upload::Renewal,
    /// Names besides its own the `Host` header may carry.
    pub allowed_hosts: Vec<String>,
    /// Connections open at once.
    pub max_connections: usize,
}

impl AppState {
    /// Builds the state: validates the configuration, opens the cache in
    /// `<data_dir>/webapi-cache`, builds the token and Wopan clients. Needs neither the
    /// manager nor Wopan to be up.
    pub fn new(config: &WebapiConfig) -> Result<AppState, WebapiError> {
        config.validate().map_err(WebapiError::Config)?;
        let client = tokenlb_client::Client::new(config.client_config())
            .map_err(|e| WebapiError::Config(e.to_string()))?;
        let wopan = tokenlb_wopan::WopanClient::new(config.wopan_config())
            .map_err(|e| WebapiError::Config(e.to_string()))?;
        let dir = config.data_dir.join("webapi-cache");
        let cache = cache::ListingCache::open(&dir, &config.space_key()).map_err(|source| {
            WebapiError::Cache {
                dir: dir.display().to_string(),
                source,
            }
        })?;
        let metrics = Arc::new(metrics::Metrics::default());
        let realtime = upstream::Realtime {
            client: client.clone(),
            wopan,
            space: config.space.clone(),
            metrics,
        };
        let links = links::LinkCache::new(config.link_ttl);
        let service = Arc::new(service::Service::new(
            cache,
            links,
            realtime,
            config.cache_ttl,
        ));
        let download_http = proxy::download_client().map_err(WebapiError::Config)?;
        let api_key = match &config.api_key {
            Some(k) => k.clone(),
            None => {
                auth::read_or_generate(&config.data_dir).map_err(|source| WebapiError::Cache {
                    dir: config.data_dir.display().to_string(),
                    source,
                })?
            }
        };
        Ok(AppState(Arc::new(Shared {
            service,
            client,
            download_http,
            api_key,
            max_upload_bytes: config.max_upload_bytes,
            renewal: upload::Renewal {
                every: config.lease_renew_every,
                extend: config.lease_extend,
            },
            allowed_hosts: config.allowed_hosts.clone(),
            max_connections: config.max_connections,
        })))
    }
}

/// How long a clean shutdown waits for the background work of answers already given.
const SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl AppState {
    /// Finishes the work answers left behind: listings not yet written to disk and token
    /// reports not yet sent (bounded by [`SETTLE_TIMEOUT`]; reports for an unreachable manager
    /// are given up, and their leases expire as `unknown` at their deadline).
    pub async fn settle(&self) {
        let work = async {
            self.service.cache.flush().await;
            self.client.flush().await;
            if self.client.status().manager_reachable {
                self.client.flush_reports().await;
            }
        };
        if tokio::time::timeout(SETTLE_TIMEOUT, work).await.is_err() {
            tracing::warn!(
                "shutdown: gave up waiting for pending cache writes and token reports after {} s",
                SETTLE_TIMEOUT.as_secs()
            );
        }
    }
}

/// The router, apart from any listener (tests drive it directly or on port 0).
pub fn app(state: AppState) -> Router {
    Router::new()
        .route(
            "/api/folders",
            get(routes::folders).post(drive_routes::create_folder),
        )
        .route(
            "/api/files",
            get(routes::files).delete(drive_routes::delete),
        )
        .route("/api/download", get(routes::download))
        .route("/api/download/", get(routes::download))
        .route("/api/rename", post(drive_routes::rename))
        .route("/api/move", post(drive_routes::move_entries))
        .route("/api/copy", post(drive_routes::copy_entries))
        .route("/api/upload", put(drive_routes::upload))
        .route("/api/usage", get(drive_routes::usage))
        .route("/api/openapi.json", get(routes::openapi))
        .route("/healthz", get(routes::healthz))
        .route("/metrics", get(routes::metrics))
        .route_layer(axum::middleware::from_fn(log_answer))
        .fallback(routes::not_found)
        // Spans per request; the failure line is `log_answer`'s (route, status and cause).
        .layer(TraceLayer::new_for_http().on_failure(()))
        .with_state(state)
}

/// Logs a failed answer with its route and cause ([`listen::log_answer`]).
async fn log_answer(
    route: axum::extract::MatchedPath,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = req.method().clone();
    let resp = next.run(req).await;
    listen::log_answer(
        method.as_str(),
        route.as_str(),
        resp.status(),
        resp.extensions().get::<listen::ErrorNote>(),
    );
    resp
}

/// Serves the web API on `listener` until `shutdown` completes.
pub async fn run(
    config: WebapiConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WebapiError> {
    let state = AppState::new(&config)?;
    serve(state, listener, shutdown).await
}

/// Serves an already built state (lets tests keep a handle on its metrics and cache).
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WebapiError> {
    let addr = listener
        .local_addr()
        .map_err(|e| WebapiError::Config(format!("cannot read the listening address: {e}")))?;
    tracing::info!(%addr, "web API listening on http://{addr}");
    let hosts = listen::Hosts::for_listener(addr, &state.allowed_hosts);
    tracing::info!("answering for Host: {}", hosts.describe());
    let options = listen::Options {
        max_connections: state.max_connections,
        ..listen::Options::new(hosts)
    };
    // Not `axum::serve`: it offers no header or idle timeout, no connection cap, no
    // request-head cap and no Host check.
    listen::serve(listener, app(state.clone()), shutdown, options).await;
    state.settle().await;
    Ok(())
}
