//! `tokenlb keys rotate`: re-encrypt every stored secret under a new key file.
//!
//! Offline on purpose: a running manager keeps the old key in memory and would go on writing
//! secrets under it, so the command refuses while something answers `/healthz` on the
//! configured listen address, and says to stop the manager first. The work is the store's
//! crash-safe [`tokenlb_store::keys`] sequence: [`keys::open_sqlite`] first finishes or
//! discards a rotation an earlier crash interrupted, then [`keys::rotate_key_file`] stages
//! `secret.key.next`, re-encrypts every secret in one transaction and renames the new file
//! over `secret.key`. A SIGKILL at any moment leaves one key that opens the database, and the
//! next start (or the next `keys rotate`) settles the rest. A key given in the configuration
//! (`TOKENLB_ENCRYPTION_KEY`) is the user's to change; there is no key file to rotate.
//! Prints the number of secrets re-encrypted and the new key's public id, never a key.

use super::{CliError, Global};
use crate::logging;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;
use tokenlb_manager::config::{Config, ConfigFile, Overrides, ProcessEnv};
use tokenlb_store::keys;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(clap::Subcommand, Debug)]
enum KeysCommand {
    /// Re-encrypt every stored secret under a new, generated key file (stop the manager first).
    ///
    /// Safe across a crash: whatever the moment it stops, the next start of the manager (or
    /// of this command) finds the one key the database was last committed with.
    Rotate(RotateArgs),
}

#[derive(clap::Args, Debug)]
struct RotateArgs {
    /// Data directory holding tokenlb.db and secret.key. [default: from the configuration]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Configuration file. [default: ./tokenlb.toml if present]
    #[arg(long, value_name = "PATH", env = "TOKENLB_CONFIG")]
    config: Option<PathBuf>,
}

pub fn run(args: Args, global: &Global) -> Result<(), CliError> {
    logging::init_for_client(global)?;
    match args.command {
        KeysCommand::Rotate(rotate) => run_rotate(rotate),
    }
}

fn run_rotate(args: RotateArgs) -> Result<(), CliError> {
    let overrides = Overrides {
        data_dir: args.data_dir,
        ..Overrides::default()
    };
    let config = Config::load(&ConfigFile::from_flag(args.config), &ProcessEnv, &overrides)
        .map_err(CliError::usage)?;
    if config.encryption_key.is_some() {
        return Err(CliError::usage(
            "the encryption key comes from the configuration (encryption_key / \
             TOKENLB_ENCRYPTION_KEY), not from a key file: there is no key file to rotate",
        ));
    }
    if config.store.is_some() {
        return Err(CliError::usage(
            "keys rotate works on the embedded SQLite store in the data directory",
        ));
    }
    let dir = config.data_dir.clone();
    if !dir.join(tokenlb_store::sqlite::DEFAULT_FILE).is_file() {
        return Err(CliError::usage(format!(
            "no database in {}: nothing to rotate",
            dir.display()
        )));
    }
    if manager_answers(config.listen) {
        return Err(CliError::runtime(format!(
            "a manager is running on {}; stop it before rotating its key (it keeps the old key \
             in memory)",
            config.listen
        )));
    }
    let rt = super::client_runtime()?;
    let rotation = rt.block_on(async {
        let (store, _) = keys::open_sqlite(&dir, None).await.map_err(|e| {
            CliError::runtime(format!("opening the store in {}: {e}", dir.display()))
        })?;
        let rotated = keys::rotate_key_file(&store, &dir).await;
        store.close().await;
        rotated.map_err(|e| {
            CliError::runtime(format!(
                "rotating the key in {} (the next start finishes or undoes it): {e}",
                dir.display()
            ))
        })
    })?;
    crate::cmd::print_out(&format!(
        "re-encrypted {} secrets under key {} ({})\n",
        rotation.reencrypted,
        rotation.key_id,
        rotation.path.display()
    ));
    Ok(())
}

/// Whether something accepts connections on the manager's address (best effort, 300 ms).
fn manager_answers(listen: SocketAddr) -> bool {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}
