//! `tokenlb webapi`: the cloud-drive web API (DESIGN §5), the seed's `wopan_web_api.py`.
//!
//! A thin shell over [`tokenlb_webapi`]: read the flags (environment variables as fallbacks),
//! check them once (a bad value exits 64 naming the flag), bind the port (one clear sentence
//! when it is taken), serve until Ctrl-C or SIGTERM. [`config`] and [`serve`] are public so
//! `tokenlb up` can run the same service in its own process.

use super::{CliError, Global};
use crate::logging;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokenlb_core::{Secret, Strategy};
use tokenlb_webapi::WebapiConfig;
use tokenlb_wopan::Space;
use tokio::net::TcpListener;

/// Run the web API: Wopan folders, files and download links using pool tokens, with a disk
/// cache that answers when Wopan or every token fails.
///
/// Routes: GET /api/folders?realtime=, GET /api/files?folder=A/B&realtime=,
/// GET /api/download/?url=FOLDER/FILE[&redirect=true|&proxy=true], GET /api/usage,
/// /healthz, /metrics, /api/openapi.json; with the web API key: POST /api/folders,
/// POST /api/rename, POST /api/move, POST /api/copy, DELETE /api/files, PUT /api/upload?path=.
/// realtime=true asks Wopan now (falling back to the cache, marked stale), realtime=false
/// answers from the cache only, and without it a fresh cached listing answers.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Address to listen on.
    #[arg(
        value_parser = tokenlb_listen::parse_addr,
        long,
        value_name = "ADDR",
        env = "TOKENLB_WEBAPI_LISTEN",
        default_value = "127.0.0.1:5000"
    )]
    pub listen: SocketAddr,
    /// Base URL of the token manager.
    #[arg(
        long,
        value_name = "URL",
        env = "TOKENLB_MANAGER_URL",
        default_value = "http://127.0.0.1:8000"
    )]
    pub manager_url: String,
    /// Client key for the manager's get/report routes (prefer the environment variable: a
    /// flag is visible to other users in the process list).
    #[arg(
        long,
        value_name = "KEY",
        env = "TOKENLB_CLIENT_KEY",
        hide_env_values = true
    )]
    pub client_key: Option<String>,
    /// Pool to lease Wopan tokens from.
    #[arg(
        long,
        value_name = "NAME",
        env = "TOKENLB_POOL",
        default_value = "default"
    )]
    pub pool: String,
    /// Strategy to ask the manager for. [default: the pool's]
    #[arg(long, value_name = "STRATEGY", value_parser = parse_strategy)]
    pub strategy: Option<Strategy>,
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
    /// Wopan dispatcher base URL (point it at `tokenlb wopan-emulator` for tests and demos).
    #[arg(long, value_name = "URL", env = "TOKENLB_WOPAN_BASE_URL", default_value = tokenlb_wopan::client::DEFAULT_BASE_URL)]
    pub wopan_base_url: String,
    /// Directory for the listing cache (kept in <DIR>/webapi-cache).
    #[arg(
        long,
        value_name = "DIR",
        env = "TOKENLB_DATA_DIR",
        default_value = "./data"
    )]
    pub data_dir: PathBuf,
    /// How long a cached listing answers requests without realtime= (seconds).
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    pub cache_ttl_s: u64,
    /// How long a download link is reused (seconds, at most 60).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub link_ttl_s: u64,
    /// Attempts per upstream operation, each on another token.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub max_attempts: u32,
    /// Timeout of one Wopan call (seconds).
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    pub upstream_timeout_s: u64,
    /// How long to keep using the last tokens while the manager is unreachable (seconds).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub grace_period_s: u64,
    /// Key the write routes require (mkdir, rename, move, copy, delete, upload); at least 16
    /// characters. [default: read from, or generated into, <DIR>/webapi-key]
    #[arg(
        long,
        value_name = "KEY",
        env = "TOKENLB_WEBAPI_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// Names besides localhost, 127.0.0.1, [::1] and the listen address that the Host header
    /// may carry (comma-separated); others get 421, which stops DNS rebinding. Add the name a
    /// reverse proxy or other machines use; "*" turns the check off.
    #[arg(
        long,
        value_name = "NAMES",
        env = "TOKENLB_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,
    /// Connections open at once; more are closed at accept.
    #[arg(long, value_name = "N", env = "TOKENLB_MAX_CONNECTIONS", default_value_t = tokenlb_webapi::listen::MAX_CONNECTIONS)]
    pub max_connections: usize,
}

fn parse_strategy(s: &str) -> Result<Strategy, String> {
    s.parse()
        .map_err(|e: tokenlb_core::types::UnknownName| e.to_string())
}

/// The service configuration these flags describe; a bad combination is a usage error.
pub fn config(args: &Args) -> Result<WebapiConfig, CliError> {
    let space = match (args.space.trim(), args.family_id.as_deref()) {
        ("personal", None) => Space::Personal,
        ("personal", Some(_)) => return Err(CliError::usage("--family-id needs --space family")),
        ("family", Some(id)) => Space::Family {
            family_id: id.trim().to_string(),
        },
        ("family", None) => return Err(CliError::usage("--space family needs --family-id")),
        (other, _) => {
            return Err(CliError::usage(format!(
                "--space must be personal or family, not {other:?}"
            )))
        }
    };
    if args.max_attempts == 0 || args.max_attempts > 10 {
        return Err(CliError::usage("--max-attempts must be between 1 and 10"));
    }
    if args.upstream_timeout_s == 0 {
        return Err(CliError::usage("--upstream-timeout-s must be at least 1"));
    }
    let mut c = WebapiConfig::new(args.manager_url.trim());
    c.client_key = args
        .client_key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(Secret::new);
    c.pool = args.pool.clone();
    c.strategy = args.strategy;
    c.space = space;
    c.wopan_base_url = args.wopan_base_url.trim().to_string();
    c.data_dir = args.data_dir.clone();
    c.cache_ttl = Duration::from_secs(args.cache_ttl_s);
    c.link_ttl = Duration::from_secs(args.link_ttl_s);
    c.max_attempts = args.max_attempts;
    c.upstream_timeout = Duration::from_secs(args.upstream_timeout_s);
    c.retry_budget = c.upstream_timeout * (args.max_attempts + 1);
    c.grace_period = Duration::from_secs(args.grace_period_s);
    c.api_key = args
        .api_key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(Secret::new);
    c.allowed_hosts = args
        .allowed_hosts
        .iter()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .collect();
    c.max_connections = args.max_connections;
    c.validate().map_err(CliError::usage)?;
    tokenlb_client::ClientConfig::validate(&c.client_config()).map_err(CliError::usage)?;
    Ok(c)
}

/// The command: logging, the flags checked (bad ones exit 64), the runtime, then [`serve`].
pub fn run(args: Args, global: &Global) -> Result<(), CliError> {
    let format = logging::format_from_env(global.log_format)?;
    logging::init(format, global.log_level.as_deref(), "info")?;
    let cfg = config(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(serve(cfg, args.listen))
}

/// Binds `listen` and serves the web API until Ctrl-C or SIGTERM.
pub async fn serve(cfg: WebapiConfig, listen: SocketAddr) -> Result<(), CliError> {
    let listener = TcpListener::bind(listen).await.map_err(|e| {
        CliError::runtime(match e.kind() {
            ErrorKind::AddrInUse => {
                format!("port {listen} is already in use (is another tokenlb webapi running?)")
            }
            ErrorKind::PermissionDenied => format!("no permission to listen on {listen}"),
            _ => format!("cannot listen on {listen}: {e}"),
        })
    })?;
    tracing::info!(manager = %cfg.manager_url, pool = %cfg.pool, wopan = %cfg.wopan_base_url, "web API starting");
    tokenlb_webapi::run(cfg, listener, super::manager::shutdown_signal())
        .await
        .map_err(|e| match e {
            tokenlb_webapi::WebapiError::Config(m) => CliError::usage(m),
            other => CliError::runtime(other),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(flags: &[&str]) -> Args {
        let mut argv = vec!["webapi"];
        argv.extend_from_slice(flags);
        Cli::try_parse_from(argv).expect("flags parse").args
    }

    fn usage(flags: &[&str]) -> String {
        match config(&parse(flags)) {
            Err(CliError::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn flags_become_the_service_configuration() {
        let c = config(&parse(&[
            "--space",
            "family",
            "--family-id",
            "9263097",
            "--pool",
            "wopan",
            "--strategy",
            "round_robin",
            "--link-ttl-s",
            "10",
            "--data-dir",
            "/tmp/x",
        ]))
        .unwrap();
        assert_eq!(c.space_key(), "family-9263097");
        assert_eq!(c.pool, "wopan");
        assert_eq!(c.strategy, Some(Strategy::RoundRobin));
        assert_eq!(c.link_ttl, Duration::from_secs(10));
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert!(c.api_key.is_none());
        let c = config(&parse(&["--api-key", "write-key-0123456789"])).unwrap();
        assert_eq!(c.api_key.unwrap().expose(), "write-key-0123456789");
        assert!(usage(&["--api-key", "short"]).contains("16"));
    }

    #[test]
    fn bad_combinations_are_usage_errors() {
        assert!(usage(&["--space", "family"]).contains("--family-id"));
        assert!(usage(&["--family-id", "1"]).contains("--space family"));
        assert!(usage(&["--space", "private"]).contains("personal or family"));
        assert!(usage(&["--link-ttl-s", "61"]).contains("60"));
        assert!(usage(&["--manager-url", "ftp://x"]).contains("manager_url"));
        assert!(usage(&["--space", "family", "--family-id", "abc"]).contains("family id"));
    }
}
