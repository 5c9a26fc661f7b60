//! `tokenlb manager`: load the configuration, bind the port, run the manager until a signal.
//!
//! The listener is bound here rather than in the library so that the most common start-up
//! problem — the port is taken — ends with one clear sentence instead of an I/O error chain.
//! Shutdown starts on Ctrl-C or SIGTERM; the library then stops accepting, finishes requests
//! and flushes stats.

use super::{CliError, Global};
use crate::logging;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokenlb_manager::config::{Config, ConfigFile, Overrides, ProcessEnv};
use tokio::net::TcpListener;

/// Run the token manager (DESIGN §1): pool, strategies, stats, health checks, REST API on
/// /api, admin UI on /.
///
/// Settings come from defaults < tokenlb.toml < TOKENLB_* environment < these flags; see
/// `tokenlb config example` for all of them. Stops gracefully on Ctrl-C or SIGTERM.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on. [default: 127.0.0.1:8000] [env: TOKENLB_LISTEN]
    #[arg(value_parser = tokenlb_listen::parse_addr, long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Directory for the SQLite store, key files and generated secrets. [default: ./data]
    /// [env: TOKENLB_DATA_DIR]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Configuration file. [default: ./tokenlb.toml if present]
    #[arg(long, value_name = "PATH", env = "TOKENLB_CONFIG")]
    config: Option<PathBuf>,
    /// Seed-format tokens.json imported at start when present (merged by token value).
    /// [default: ./tokens.json] [env: TOKENLB_TOKENS_FILE]
    #[arg(long, value_name = "PATH")]
    tokens_file: Option<PathBuf>,
    /// Durable store URL (postgres://…). [default: SQLite in the data dir] [env: TOKENLB_STORE]
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// Redis URL for live state shared by several managers (cluster mode, docs/cluster.md);
    /// `?prefix=NAME` namespaces its keys [default prefix: tokenlb]. [env: TOKENLB_REDIS]
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
}

pub fn run(args: Args, global: &Global) -> Result<(), CliError> {
    let overrides = Overrides {
        listen: args.listen,
        data_dir: args.data_dir,
        tokens_file: args.tokens_file,
        store: args.store,
        redis: args.redis,
        log_format: global.log_format,
        log_level: global.log_level.clone(),
    };
    let file = ConfigFile::from_flag(args.config);
    let config = Config::load(&file, &ProcessEnv, &overrides).map_err(CliError::usage)?;
    logging::init(
        config.log.format,
        global.log_level.as_deref(),
        &config.log.level,
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> Result<(), CliError> {
    let listener = bind(config.listen).await?;
    let coordinator = tokenlb_cluster::coordinator(&config).await?;
    tokenlb_manager::run(config, coordinator, listener, shutdown_signal()).await?;
    Ok(())
}

/// Binds the API port, turning the usual failures into one sentence.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, CliError> {
    TcpListener::bind(addr).await.map_err(|e| {
        CliError::runtime(match e.kind() {
            ErrorKind::AddrInUse => {
                format!("port {addr} is already in use (is another tokenlb manager running?)")
            }
            ErrorKind::PermissionDenied => {
                format!("no permission to listen on {addr} (ports below 1024 need privileges)")
            }
            ErrorKind::AddrNotAvailable => {
                format!("address {addr} does not belong to this machine")
            }
            _ => format!("cannot listen on {addr}: {e}"),
        })
    })
}

/// Resolves on Ctrl-C or SIGTERM.
///
/// The handlers are installed when this is called, not when the future is first polled: a
/// server announces its address before it polls its shutdown future, and a SIGTERM sent
/// right after that announcement must start a graceful shutdown rather than kill the
/// process (the default action). Call it inside the runtime, before serving.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (mut interrupt, mut terminate) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let ctrl_c = async {
                match interrupt.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let term = async {
                match terminate.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = ctrl_c => tracing::info!("Ctrl-C received, shutting down"),
                _ = term => tracing::info!("SIGTERM received, shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            tracing::info!("Ctrl-C received, shutting down");
        }
    }
}
