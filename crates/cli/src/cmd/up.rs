//! `tokenlb up`: the seed's `start_services.py` — the token manager and the web API in one
//! process (with `--demo` also the Wopan emulator, its demo data and demo tokens), a self-test
//! through HTTP like a user's, then the addresses and what to try.
//!
//! One process and one runtime so a new user runs one command; the services still listen on
//! their own ports, so everything a user tries (curl, the admin UI, `tokenlb token`) goes
//! through the same HTTP interfaces as in a split deployment. Every port is bound before
//! anything starts, so a taken port ends the command with one sentence naming the flag to
//! change. Shutdown runs in order: the web API first (its last reports still reach the
//! manager), then the manager (which flushes stats) and the emulator.

mod demo;
mod selftest;
mod services;
mod summary;

use super::{webapi, CliError, Global};
use crate::logging;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokenlb_manager::config::{Config, ConfigFile, Overrides, ProcessEnv};

/// Start the manager and the web API in one process, self-test them, print the addresses.
///
/// The seed's one-command launcher. With --demo it also runs the Wopan emulator with demo data
/// and adds demo tokens (pool "default" of its own data dir, ./data/demo), so the whole system
/// and the seed's curl commands work without a Wopan account: `tokenlb up --demo`. Every pool
/// without a [pools.NAME.health] table gets the Wopan health check and token refresh. Stops cleanly (stats flushed) on Ctrl-C or SIGTERM. A failing
/// self-test is an error with --demo and a warning otherwise (the services keep running).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Also run the built-in Wopan emulator with demo data, point the web API at it and add
    /// the demo tokens to pool "default" (or --pool) of the demo's own data dir, ./data/demo
    /// unless --data-dir is given (merged by value: a restart adds none twice).
    #[arg(long)]
    pub demo: bool,
    /// Address of the token manager (API and admin UI). [default: 127.0.0.1:8000]
    /// [env: TOKENLB_LISTEN]
    #[arg(value_parser = tokenlb_listen::parse_addr, long, value_name = "ADDR")]
    pub manager_listen: Option<SocketAddr>,
    /// Address of the web API.
    #[arg(
        value_parser = tokenlb_listen::parse_addr,
        long,
        value_name = "ADDR",
        env = "TOKENLB_WEBAPI_LISTEN",
        default_value = "127.0.0.1:5000"
    )]
    pub webapi_listen: SocketAddr,
    /// Address of the Wopan emulator (with --demo).
    #[arg(value_parser = tokenlb_listen::parse_addr, long, value_name = "ADDR", default_value = "127.0.0.1:8900")]
    pub emulator_listen: SocketAddr,
    /// Directory for the store, generated secrets and the web API's cache. [default: ./data]
    /// [env: TOKENLB_DATA_DIR]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Manager configuration file. [default: ./tokenlb.toml if present]
    #[arg(long, value_name = "PATH", env = "TOKENLB_CONFIG")]
    pub config: Option<PathBuf>,
    /// Seed-format tokens.json imported at start when present. [default: ./tokens.json;
    /// none with --demo] [env: TOKENLB_TOKENS_FILE]
    #[arg(long, value_name = "PATH")]
    pub tokens_file: Option<PathBuf>,
    /// Pool the web API leases Wopan tokens from (and --demo adds its tokens to).
    /// [default: default]
    #[arg(long, value_name = "NAME", env = "TOKENLB_POOL")]
    pub pool: Option<String>,
    /// Wopan space: personal or family (family needs --family-id).
    #[arg(
        long,
        value_name = "SPACE",
        env = "TOKENLB_WOPAN_SPACE",
        default_value = "personal"
    )]
    pub space: String,
    /// Wopan family id (familyId), for --space family.
    #[arg(long, value_name = "ID", env = "TOKENLB_WOPAN_FAMILY_ID")]
    pub family_id: Option<String>,
    /// Wopan dispatcher base URL (not with --demo, which uses its own emulator).
    /// [default: the real Wopan service]
    #[arg(long, value_name = "URL", env = "TOKENLB_WOPAN_BASE_URL")]
    pub wopan_base_url: Option<String>,
}

/// The command: configuration (bad values exit 64), logging, the runtime, then the services.
pub fn run(args: Args, global: &Global) -> Result<(), CliError> {
    if args.demo && args.wopan_base_url.is_some() {
        return Err(CliError::usage(
            "--wopan-base-url cannot be combined with --demo (the demo points the web API at its own emulator)",
        ));
    }
    let overrides = Overrides {
        listen: args.manager_listen,
        data_dir: args.data_dir.clone(),
        tokens_file: args.tokens_file.clone(),
        store: None,
        redis: None,
        log_format: global.log_format,
        log_level: global.log_level.clone(),
    };
    let file = ConfigFile::from_flag(args.config.clone());
    let mut config = Config::load(&file, &ProcessEnv, &overrides).map_err(CliError::usage)?;
    if args.demo && data_dir_is_default(&args, &config) {
        config.data_dir = config.data_dir.join(demo::DEMO_DIR);
    }
    if args.demo && args.tokens_file.is_none() {
        // The demo's pool holds demo tokens only; real ones in ./tokens.json stay out of it.
        config.tokens_file = PathBuf::new();
    }
    // The launcher's own lines are the output; service logs show warnings unless asked, and
    // not the per-request failure lines (the self-test reports those in its own words).
    let level = std::env::var("TOKENLB_LOG_LEVEL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "warn,tower_http=off".to_string());
    logging::init(config.log.format, global.log_level.as_deref(), &level)?;
    // The web API's flags are checked before any port is bound (its URLs come later).
    let wopan = args
        .wopan_base_url
        .clone()
        .unwrap_or_else(|| tokenlb_wopan::client::DEFAULT_BASE_URL.to_string());
    let check = webapi_args(
        &args,
        "http://127.0.0.1:8000".into(),
        None,
        wopan,
        config.data_dir.clone(),
    );
    webapi::config(&check)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(services::up(args, config))
}

/// The pool the web API leases from (and, with --demo, the demo tokens go to).
fn pool(args: &Args) -> String {
    args.pool
        .clone()
        .unwrap_or_else(|| tokenlb_manager::config::DEFAULT_POOL.to_string())
}

/// Nobody chose the data dir (no flag, no variable, not in the config file): the demo then
/// uses its own under it, so it never mixes with real tokens.
fn data_dir_is_default(args: &Args, config: &Config) -> bool {
    args.data_dir.is_none()
        && std::env::var_os("TOKENLB_DATA_DIR").is_none_or(|v| v.is_empty())
        && config.data_dir == Config::default().data_dir
}

/// The web API's flags as `tokenlb webapi` would see them, so both commands check them alike.
fn webapi_args(
    args: &Args,
    manager_url: String,
    client_key: Option<String>,
    wopan_base_url: String,
    data_dir: PathBuf,
) -> webapi::Args {
    webapi::Args {
        listen: args.webapi_listen,
        manager_url,
        client_key,
        pool: pool(args),
        strategy: None,
        space: args.space.clone(),
        family_id: args.family_id.clone(),
        wopan_base_url,
        data_dir,
        cache_ttl_s: 1800,
        link_ttl_s: 30,
        max_attempts: 3,
        upstream_timeout_s: 15,
        grace_period_s: 300,
        api_key: None,
        // The names the manager answers for (TOKENLB_ALLOWED_HOSTS), the web API too.
        allowed_hosts: std::env::var("TOKENLB_ALLOWED_HOSTS")
            .map(|v| v.split(',').map(|h| h.trim().to_string()).collect())
            .unwrap_or_default(),
        max_connections: tokenlb_webapi::listen::MAX_CONNECTIONS,
    }
}
