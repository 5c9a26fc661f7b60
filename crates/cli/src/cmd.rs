//! Shared pieces of the commands: global flags, the error type that decides the exit code,
//! and the async runtime.
//!
//! Every command returns `Result<(), CliError>`. A [`CliError::Usage`] (bad flags, bad
//! configuration, missing admin key) exits 64 (EX_USAGE); a [`CliError::Runtime`] (the port
//! is taken, the manager is unreachable, the API refused) exits 1. Either prints one line on
//! stderr, never a backtrace.

pub mod config;
pub mod keys;
pub mod manager;
pub mod proxy_check;
pub mod token;
pub mod up;
pub mod webapi;
pub mod wopan_emulator;

use std::process::ExitCode;
use tokenlb_manager::config::LogFormat;

/// Exit code for bad usage or configuration (sysexits EX_USAGE).
pub const EXIT_USAGE: u8 = 64;
/// Exit code for a failure while running.
pub const EXIT_RUNTIME: u8 = 1;

/// Flags accepted by every command.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Global {
    /// Log format: human or json. [default: human, or [log] format in tokenlb.toml]
    /// [env: TOKENLB_LOG_FORMAT]
    #[arg(long, global = true, value_name = "FORMAT", value_parser = parse_log_format)]
    pub log_format: Option<LogFormat>,
    /// Log filter such as info, debug or "tokenlb_manager=debug,info". Wins over RUST_LOG,
    /// which wins over TOKENLB_LOG_LEVEL and the config file. [default: info for the
    /// manager, warn for the other commands]
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    s.parse()
}

/// Why a command failed, which decides the exit code.
#[derive(Debug)]
pub enum CliError {
    /// Bad usage or configuration: exit 64.
    Usage(String),
    /// Failure while running: exit 1.
    Runtime(anyhow::Error),
}

impl CliError {
    pub fn usage(message: impl std::fmt::Display) -> Self {
        CliError::Usage(message.to_string())
    }

    pub fn runtime(message: impl std::fmt::Display) -> Self {
        CliError::Runtime(anyhow::anyhow!("{message}"))
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        CliError::Runtime(e)
    }
}

/// Prints the error (one line: the message and its causes) and picks the exit code.
pub fn exit_code(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(CliError::Runtime(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// `--help` and `--version` exit 0; every other parse problem exits 64.
pub fn clap_exit(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let _ = e.print();
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
        _ => ExitCode::from(EXIT_USAGE),
    }
}

/// A panic is a bug; report it in one line instead of a backtrace.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error (please report this bug): {info}");
    }));
}

/// A current-thread runtime for the client commands.
pub fn client_runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::runtime(format!("cannot start the async runtime: {e}")))
}

/// Writes `text` to stdout. A reader that went away (`tokenlb token export | head`) ends the
/// command quietly with success, as Unix tools do, instead of the panic `print!` gives.
pub fn print_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(74);
    }
}

/// `n` with the noun in the right number ("1 token", "2 tokens").
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_in_the_right_number() {
        assert_eq!(super::plural(1, "token", "tokens"), "1 token");
        assert_eq!(super::plural(0, "token", "tokens"), "0 tokens");
        assert_eq!(super::plural(2, "entry", "entries"), "2 entries");
    }
}
