//! `tokenlb`: the one binary of the token load balancer.
//!
//! Kept thin on purpose: parse the command line, hand the command to its module under
//! `cmd/`, and turn the result into an exit code (0 ok, 64 bad usage or configuration,
//! 1 runtime failure). Each command sets up logging itself, because the manager takes its
//! log settings from the layered configuration. Adding a command is a variant here and an
//! arm in `main`.

mod cmd;
mod logging;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// jemalloc for the whole process (SQLite's C allocations included: the unprefixed symbols
/// replace malloc/free). With glibc's malloc, loading 100,000 tokens left the heap fragmented
/// (freed rows and pages between live ones), and a 100,000-token manager stayed at ~480 MiB
/// resident where its live data is ~100 MiB. Measured with tokenlb-bench (BENCHMARKS.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Lets jemalloc purge freed pages in background threads, so an idle process gives memory
/// back instead of waiting for its next allocations. Best effort: a failure changes nothing
/// but how soon memory is returned.
fn return_freed_memory() {
    #[cfg(not(target_env = "msvc"))]
    let _ = tikv_jemalloc_ctl::background_thread::write(true);
}

#[derive(Parser)]
#[command(
    name = "tokenlb",
    version,
    about = "tokenlb: a token load balancer — token manager, token CLI and configuration tools",
    long_about = "tokenlb keeps a pool of access tokens for a third-party API, hands them out \
                  with a load-balancing strategy, learns from reported outcomes and takes \
                  failing tokens out of rotation.\n\nExit codes: 0 success, 64 bad usage or \
                  configuration, 1 runtime failure.",
    propagate_version = true,
    args_override_self = true
)]
struct Cli {
    #[command(flatten)]
    global: cmd::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the token manager: pool, strategies, stats, health checks, REST API and admin UI.
    Manager(cmd::manager::Args),
    /// Add, remove, list, import and export tokens of a running manager.
    Token(cmd::token::Args),
    /// Print an example configuration or check one.
    Config(cmd::config::Args),
    /// Run a protocol-faithful Wopan emulator for tests, demos and fault injection.
    WopanEmulator(cmd::wopan_emulator::Args),
    /// Run the cloud-drive web API: Wopan folders, files and download links with cache fallback.
    Webapi(cmd::webapi::Args),
    /// Start manager and web API in one process and self-test them (--demo: with demo Wopan).
    Up(cmd::up::Args),
    /// Rotate the key that encrypts stored secrets (offline; crash-safe).
    Keys(cmd::keys::Args),
    /// Make one request through a [[proxy]] route of a running manager and show how it was classified.
    ProxyCheck(cmd::proxy_check::Args),
}

fn main() -> ExitCode {
    return_freed_memory();
    cmd::install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cmd::clap_exit(e),
    };
    let result = match cli.command {
        Command::Manager(args) => cmd::manager::run(args, &cli.global),
        Command::Token(args) => cmd::token::run(args, &cli.global),
        Command::Config(args) => cmd::config::run(args, &cli.global),
        Command::WopanEmulator(args) => cmd::wopan_emulator::main(args, &cli.global),
        Command::Webapi(args) => cmd::webapi::run(args, &cli.global),
        Command::Up(args) => cmd::up::run(args, &cli.global),
        Command::Keys(args) => cmd::keys::run(args, &cli.global),
        Command::ProxyCheck(args) => cmd::proxy_check::run(args, &cli.global),
    };
    cmd::exit_code(result)
}
