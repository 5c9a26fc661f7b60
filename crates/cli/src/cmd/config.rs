//! `tokenlb config example | check`: the configuration without starting anything.
//!
//! `example` prints the commented example with every setting and its default; `check` loads
//! the configuration exactly as `tokenlb manager` would (file, `TOKENLB_*` environment) and
//! prints the effective result with every secret masked, or the one problem that would stop
//! the manager (exit 64).

use super::{CliError, Global};
use crate::logging;
use std::path::PathBuf;
use tokenlb_manager::config::{Config, ConfigFile, Overrides, ProcessEnv};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(clap::Subcommand, Debug)]
enum ConfigCommand {
    /// Print a commented tokenlb.toml listing every setting with its default.
    ///
    /// Save it with `tokenlb config example > tokenlb.toml` and delete what you do not change.
    Example,
    /// Validate the configuration and print the effective settings, secrets masked.
    ///
    /// Reads the file (--config, else ./tokenlb.toml if present) and the TOKENLB_*
    /// environment, exactly as `tokenlb manager` does. Exits 64 naming the file, key and
    /// reason when something is wrong.
    Check(CheckArgs),
}

#[derive(clap::Args, Debug)]
struct CheckArgs {
    /// Configuration file. [default: ./tokenlb.toml if present]
    #[arg(long, value_name = "PATH", env = "TOKENLB_CONFIG")]
    config: Option<PathBuf>,
}

pub fn run(args: Args, global: &Global) -> Result<(), CliError> {
    logging::init_for_client(global)?;
    match args.command {
        ConfigCommand::Example => {
            crate::cmd::print_out(Config::example_toml());
            Ok(())
        }
        ConfigCommand::Check(check) => {
            let file = ConfigFile::from_flag(check.config);
            let config =
                Config::load(&file, &ProcessEnv, &Overrides::default()).map_err(CliError::usage)?;
            let source = match &file {
                ConfigFile::Explicit(p) => format!("file {}", p.display()),
                ConfigFile::IfPresent(p) if p.is_file() => format!("file {}", p.display()),
                _ => "defaults (no config file)".to_string(),
            };
            eprintln!("configuration OK: {source} + TOKENLB_* environment");
            crate::cmd::print_out("# effective configuration, secrets masked\n");
            crate::cmd::print_out(&config.to_masked_toml());
            Ok(())
        }
    }
}
