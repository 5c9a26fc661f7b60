//! `tokenlb wopan-emulator`: a protocol-faithful Wopan server for tests, demos and fault
//! injection (DESIGN §7).
//!
//! A thin shell over [`tokenlb_wopan::emulator`]: read the flags and the fixture (a bad fixture
//! is a usage error, exit 64), bind the port (one clear sentence when it is taken), serve until
//! Ctrl-C or SIGTERM. The fixture format, the control API and the demo data are documented in
//! `crates/wopan/README.md`.

use super::{CliError, Global};
use crate::logging;
use anyhow::Context;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokenlb_core::secret::mask;
use tokenlb_wopan::emulator::{self, EmulatorConfig, Fixture, DEMO_EXPIRED_TOKEN, DEMO_TOKENS};
use tokio::net::TcpListener;

/// Run a Wopan emulator: both dispatchers, the download host, and `/_emulator/control` +
/// `/_emulator/state` for fault injection.
///
/// Without --fixture it serves built-in demo data (BD-another/01.mp4 …) and demo tokens.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8900")]
    pub listen: SocketAddr,
    /// JSON fixture with tokens and the tree of folders and files. [default: built-in demo]
    #[arg(long, value_name = "FILE")]
    pub fixture: Option<PathBuf>,
    /// Scheme and host put in download links. [default: the request's Host header]
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Lifetime of download links, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub link_ttl: u64,
    /// Lifetime of tokens issued by AppRefreshToken, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 604_799)]
    pub token_ttl: u64,
    /// RSP_CODE for unknown or expired access tokens: 9999 or 1001.
    #[arg(long, value_name = "CODE", default_value_t = 9999, value_parser = parse_invalid_code)]
    pub invalid_code: u32,
    /// Keep the refresh token on AppRefreshToken instead of issuing a new one.
    #[arg(long)]
    pub no_rotate_refresh: bool,
}

fn parse_invalid_code(s: &str) -> Result<u32, String> {
    match s.trim() {
        "9999" => Ok(9999),
        "1001" => Ok(1001),
        _ => Err("must be 9999 or 1001".into()),
    }
}

/// The emulator configuration these flags describe (reads and checks the fixture).
pub fn config(args: &Args) -> Result<EmulatorConfig, CliError> {
    let mut cfg = EmulatorConfig::default();
    if let Some(path) = &args.fixture {
        cfg.fixture = Fixture::from_file(path).map_err(CliError::usage)?;
    }
    cfg.public_url = args.public_url.clone();
    cfg.link_ttl_s = args.link_ttl;
    cfg.token_ttl_s = args.token_ttl;
    cfg.invalid_code = args.invalid_code;
    cfg.rotate_refresh = !args.no_rotate_refresh;
    cfg.validate().map_err(CliError::usage)?;
    Ok(cfg)
}

/// The command: logging, a check of the flags and fixture (bad ones exit 64), the runtime,
/// then [`run`].
pub fn main(args: Args, global: &Global) -> Result<(), CliError> {
    let format = logging::format_from_env(global.log_format)?;
    logging::init(format, global.log_level.as_deref(), "info")?;
    config(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(run(args)).map_err(CliError::Runtime)
}

/// Runs the emulator described by `args` until Ctrl-C or SIGTERM, then finishes in-flight
/// requests and returns. Needs a Tokio runtime; sets up no logging.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let cfg = config(&args).map_err(into_anyhow)?;
    serve(args.listen, args.fixture.is_none(), cfg)
        .await
        .map_err(into_anyhow)
}

fn into_anyhow(e: CliError) -> anyhow::Error {
    match e {
        CliError::Usage(m) => anyhow::anyhow!(m),
        CliError::Runtime(e) => e,
    }
}

async fn serve(listen: SocketAddr, demo: bool, cfg: EmulatorConfig) -> Result<(), CliError> {
    let listener = TcpListener::bind(listen).await.map_err(|e| {
        CliError::runtime(match e.kind() {
            ErrorKind::AddrInUse => format!("port {listen} is already in use"),
            ErrorKind::PermissionDenied => format!("no permission to listen on {listen}"),
            _ => format!("cannot listen on {listen}: {e}"),
        })
    })?;
    let addr = listener.local_addr().context("listening address")?;
    tracing::info!(url = %format!("http://{addr}"), "Wopan emulator listening");
    if demo {
        let shown: Vec<String> = DEMO_TOKENS.iter().map(|t| mask(t.access_token)).collect();
        tracing::info!(
            tokens = %shown.join(", "),
            expired = %mask(DEMO_EXPIRED_TOKEN.access_token),
            "serving built-in demo data; demo tokens are listed in crates/wopan/README.md"
        );
    }
    emulator::serve(listener, cfg, super::manager::shutdown_signal())
        .await
        .context("the Wopan emulator stopped")?;
    Ok(())
}
