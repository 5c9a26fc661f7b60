//! `tokenlb-bench`: the load harness of issue 6 (see BENCHMARKS.md).
//!
//! Thin on purpose: parse the flags, pin the load client to its CPUs before any thread
//! exists, build the client's runtime, and hand over to [`tokenlb_bench::run::Bench`].
//! `serve-baseline` is the baseline server the harness spawns as a separate process.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokenlb_bench::plan::Plan;
use tokenlb_bench::procs;
use tokenlb_bench::run::Bench;
use tokenlb_bench::servers::Programs;

mod proxy;

/// Load harness: the bare-stack baseline, the manager's lease routes at 10 / 1,000 / 100,000
/// tokens, and the web API, measured in one run; writes bench/out/results.{md,json} and
/// bench/out/throughput.svg.
#[derive(Parser)]
#[command(name = "tokenlb-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// Smoke mode: one measurement of each kind, a few seconds in all (for CI).
    #[arg(long)]
    quick: bool,
    /// Measured window of each load run, in seconds (default 5; quick 0.3).
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// The `tokenlb` binary. [default: next to this binary]
    #[arg(long, value_name = "PATH")]
    tokenlb: Option<PathBuf>,
    /// Output directory.
    #[arg(long, value_name = "DIR", default_value = "bench/out")]
    out: PathBuf,
    /// CPUs of the servers under test (taskset list).
    #[arg(long, value_name = "LIST", default_value = "0")]
    server_cpus: String,
    /// CPUs of the load client (and of helpers such as the health-check target).
    #[arg(long, value_name = "LIST", default_value = "1")]
    client_cpus: String,
    /// Do not pin processes to CPUs.
    #[arg(long)]
    no_pin: bool,
    /// Leave out parts of the plan (comma list of managers, variants, webapi, sweep, wrk,
    /// listen), for a partial run while working on one path. The baseline is always measured.
    #[arg(long, value_name = "PARTS", value_delimiter = ',')]
    skip: Vec<String>,
    /// Pool sizes of the manager matrix instead of 10,1000,100000.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    sizes: Vec<usize>,
    /// Strategies of the manager matrix instead of round_robin,best.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    strategies: Vec<String>,
    /// Instead of the matrix: the scale run of issue 15, one pool from 10 tokens up to N
    /// (e.g. 1000000), imported with `tokenlb token import` at N; writes scale.md,
    /// scale.json and scale.svg.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(10..=10_000_000))]
    scale: Option<u64>,
    /// Run every load N times and keep the attempt with the median rate (1-9), for a machine
    /// whose neighbours make single runs jumpy. Every attempt's rate goes into results.json.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=9))]
    repeat: u8,
}

#[derive(Subcommand)]
enum Cmd {
    /// Load one loopback URL (for profiling a server started by hand): GET it, or with
    /// --pair treat it as the manager's `/api/token/get` and report every lease.
    Load {
        /// http://127.0.0.1:PORT/path?query
        url: String,
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Measured seconds (after 1 s of warm-up).
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[arg(long)]
        pair: bool,
    },
    /// Serve the baseline (fixed JSON on every path) until Ctrl-C or SIGTERM.
    ServeBaseline {
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// The serving loop: a plain `axum::serve`, or the manager's own accept loop.
        #[arg(long, value_enum, default_value = "axum")]
        stack: tokenlb_bench::baseline::Stack,
    },
    /// Proxy mode's overhead: p50 / p99 and requests/s through a `[[proxy]]` route against
    /// direct calls to the same loopback upstream, at 1 and 32 connections (writes
    /// OUT/proxy.md and OUT/proxy.json; --duration, --repeat [default 3], pinning and
    /// --tokenlb as for the full run).
    Proxy,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Cmd::ServeBaseline { listen, stack }) = cli.command {
        if !listen.ip().is_loopback() {
            bail!("serve-baseline listens on loopback only, not {listen}");
        }
        return tokenlb_bench::baseline::main(listen, stack);
    }
    if let Some(Cmd::Load {
        url,
        connections,
        duration,
        pair,
    }) = cli.command
    {
        if !cli.no_pin && procs::taskset_available() {
            procs::pin_self(&cli.client_cpus)?;
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let s = runtime.block_on(tokenlb_bench::load::load_url(
            &url,
            connections,
            duration,
            pair,
        ))?;
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    let mut plan = if cli.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    plan = plan
        .skipping(&cli.skip)?
        .with_matrix(cli.sizes.clone(), cli.strategies.clone())?;
    if let Some(secs) = cli.duration {
        if !(0.05..=600.0).contains(&secs) {
            bail!("--duration must be between 0.05 and 600 seconds");
        }
        plan = plan.with_duration(Duration::from_secs_f64(secs));
    }
    plan.repeat = usize::from(cli.repeat);
    let bench = std::env::current_exe().context("locating this binary")?;
    let tokenlb = match cli.tokenlb {
        Some(p) => p,
        None => bench.with_file_name("tokenlb"),
    };
    if !tokenlb.is_file() {
        bail!(
            "no tokenlb binary at {}; build it (cargo build --release -p tokenlb) or pass --tokenlb",
            tokenlb.display()
        );
    }
    let pin = !cli.no_pin && procs::taskset_available();
    let mut setup = vec![format!(
        "servers: {} (release build of this commit), one process each; load clients: tokenlb-bench's own keep-alive HTTP/1.1 client, closed loop{}",
        tokenlb.display(),
        if plan.wrk {
            "; and wrk -t1 (Debian's package) at the matrix's connections"
        } else {
            " (wrk not installed or skipped)"
        }
    )];
    if pin {
        procs::pin_self(&cli.client_cpus)?;
        setup.push(format!(
            "pinned with taskset: servers on CPU {}, load client (and the health-check target) on CPU {}; each Tokio runtime sizes its workers from its CPUs",
            cli.server_cpus, cli.client_cpus
        ));
    } else {
        setup.push("not pinned (taskset missing or --no-pin)".into());
    }
    setup.push(format!(
        "each load run: {:.1} s warm-up, {:.1} s measured; latency of every request, exact percentiles{}",
        plan.warmup.as_secs_f64(),
        plan.duration.as_secs_f64(),
        if plan.repeat > 1 {
            format!("; {} attempts per run, the median-rate attempt kept", plan.repeat)
        } else {
            String::new()
        }
    ));
    let programs = Programs {
        tokenlb,
        bench,
        server_cpus: pin.then(|| cli.server_cpus.clone()),
        helper_cpus: pin.then(|| cli.client_cpus.clone()),
        ready_timeout: Duration::from_secs(600),
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?;
    std::fs::create_dir_all(&cli.out).with_context(|| format!("creating {}", cli.out.display()))?;
    // Servers run in their own directories: every path handed to them must be absolute.
    let out = std::fs::canonicalize(&cli.out)
        .with_context(|| format!("resolving {}", cli.out.display()))?;
    if matches!(cli.command, Some(Cmd::Proxy)) {
        let options = proxy::Options {
            programs,
            out,
            duration: cli
                .duration
                .map_or(Duration::from_secs(5), Duration::from_secs_f64),
            repeat: if cli.repeat > 1 {
                usize::from(cli.repeat)
            } else {
                3
            },
        };
        return runtime.block_on(proxy::run(options));
    }
    let bench = Bench::new(plan, programs, out.clone(), setup);
    if let Some(n) = cli.scale {
        let (results, _) = runtime.block_on(bench.scale(n as usize))?;
        println!("{}", tokenlb_bench::report::rows_table(&results.rows));
        print_goals(&results.goals);
        println!(
            "\nwrote {0}/scale.md, {0}/scale.json, {0}/scale.svg",
            out.display()
        );
        return Ok(());
    }
    let results = runtime.block_on(bench.run())?;
    println!("{}", tokenlb_bench::report::rows_table(&results.rows));
    print_goals(&results.goals);
    println!(
        "\nwrote {0}/results.md, {0}/results.json, {0}/throughput.svg",
        out.display()
    );
    Ok(())
}

fn print_goals(goals: &[tokenlb_bench::report::Goal]) {
    for g in goals {
        let met = match g.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not measured",
        };
        println!("{met:>12}  {}: {}", g.goal, g.measured);
    }
}
