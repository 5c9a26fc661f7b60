//! Tracing set-up: human-readable or JSON lines on stderr.
//!
//! Logs go to stderr so that stdout stays clean for command output (`token list --json`,
//! `token export`, `config example`). The filter comes from, in order of precedence:
//! `--log-level`, `RUST_LOG`, the configured level (`TOKENLB_LOG_LEVEL` or `[log] level`),
//! the command's default.

use crate::cmd::CliError;
use std::io::IsTerminal;
use tokenlb_manager::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `flag` is `--log-level`; `configured` is the level from the
/// configuration (or the command's default).
pub fn init(format: LogFormat, flag: Option<&str>, configured: &str) -> Result<(), CliError> {
    let (source, filter) = match (flag, std::env::var("RUST_LOG")) {
        (Some(f), _) => ("--log-level", f.to_string()),
        (None, Ok(env)) if !env.trim().is_empty() => ("RUST_LOG", env),
        _ => ("log level", configured.to_string()),
    };
    let filter = EnvFilter::try_new(&filter)
        .map_err(|e| CliError::usage(format!("{source} {filter:?} is not a valid filter: {e}")))?;
    // Colours only on a terminal, and never when NO_COLOR is set (https://no-color.org).
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A subscriber already installed (only possible in tests) is not an error.
    let _ = result;
    Ok(())
}

/// The log format for commands that do not load the manager configuration:
/// `--log-format`, else `TOKENLB_LOG_FORMAT`, else human.
pub fn format_from_env(flag: Option<LogFormat>) -> Result<LogFormat, CliError> {
    if let Some(f) = flag {
        return Ok(f);
    }
    match std::env::var("TOKENLB_LOG_FORMAT") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|e| CliError::usage(format!("TOKENLB_LOG_FORMAT: {e}"))),
        _ => Ok(LogFormat::Human),
    }
}

/// Sets up logging for a client command (default level `warn`, or `TOKENLB_LOG_LEVEL`).
pub fn init_for_client(global: &crate::cmd::Global) -> Result<(), CliError> {
    let format = format_from_env(global.log_format)?;
    let level = std::env::var("TOKENLB_LOG_LEVEL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "warn".to_string());
    init(format, global.log_level.as_deref(), &level)
}
