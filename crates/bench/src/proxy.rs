//! `tokenlb-bench proxy`: what proxy mode (DESIGN §10) adds to a call, measured against a
//! direct call to the same loopback upstream (issue 16).
//!
//! The upstream is the baseline server (fixed JSON on every path, `serve-baseline`); the
//! manager is the release `tokenlb` binary with one `[[proxy]]` route to it and one token
//! (injected as `Authorization: Bearer …`). Both servers run on the server CPUs, the load
//! client on its own, as in the main harness. For 1 and 32 keep-alive connections it loads
//! `GET /v1/bench` directly and `GET /proxy/bench/v1/bench` through the manager, alternating
//! direct and proxied runs, `repeat` times each, and keeps the median-rate attempt of each,
//! in two layouts: the upstream on the server CPUs with the manager (the proxy's work and
//! the upstream's compete, as on one small host), and the upstream on the load client's
//! CPUs (the manager has the server CPUs to itself).
//! Added latency is the proxied percentile minus the direct one; the rate ratio is proxied
//! requests/s over direct requests/s. Writes `proxy.md` and `proxy.json` to the output dir.

use anyhow::Context;
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokenlb_bench::http1;
use tokenlb_bench::load::{self, Load, Work};
use tokenlb_bench::procs::{free_port, Server, Spawn};
use tokenlb_bench::servers::Programs;
use tokenlb_bench::setup::{self, ManagerOptions};
use tokenlb_bench::summary::{median_by_rate, Summary};

/// Connection counts measured.
const CONNECTIONS: [usize; 2] = [1, 32];

/// What to run.
pub struct Options {
    pub programs: Programs,
    pub out: PathBuf,
    pub duration: Duration,
    pub repeat: usize,
}

/// Starts the manager with one proxy route to `upstream`.
async fn manager(p: &Programs, dir: &Path, upstream: SocketAddr) -> anyhow::Result<Server> {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let mut config = setup::manager_config(&ManagerOptions::default());
    config.push_str(&format!(
        "\n[[proxy]]\nname = \"bench\"\nupstream = \"http://{upstream}\"\npool = \"default\"\n\
         inject = {{ header = \"Authorization\", value = \"Bearer {{token}}\" }}\n"
    ));
    setup::write(&dir.join("tokenlb.toml"), &config)?;
    let tokens = r#"{"tokens":[{"token":"bench-proxy-token-0123456789abcdef","name":"bench","is_active":true}]}"#;
    setup::write(&dir.join("tokens.json"), tokens)?;
    let args: Vec<std::ffi::OsString> = vec![
        "manager".into(),
        "--listen".into(),
        addr.to_string().into(),
        "--data-dir".into(),
        dir.join("data").into_os_string(),
        "--config".into(),
        dir.join("tokenlb.toml").into_os_string(),
        "--tokens-file".into(),
        dir.join("tokens.json").into_os_string(),
    ];
    let mut s = Server::spawn(Spawn {
        name: "manager-proxy".into(),
        program: p.tokenlb.clone(),
        args,
        dir: dir.to_path_buf(),
        env: vec![],
        cpus: p.server_cpus.clone(),
        addr,
    })?;
    s.wait_ready("/readyz", p.ready_timeout).await?;
    Ok(s)
}

async fn measure(
    addr: SocketAddr,
    path: &str,
    connections: usize,
    o: &Options,
    pids: Vec<u32>,
) -> anyhow::Result<Summary> {
    let load = Load {
        addr,
        connections,
        warmup: Duration::from_secs(1),
        duration: o.duration,
        max_units: None,
        timeout: Duration::from_secs(5),
        work: Work::Fixed {
            request: Arc::new(http1::get(&addr.to_string(), path, "")),
            expect: 200,
        },
        cpu_pids: pids,
    };
    let s = load::run(&load).await?;
    anyhow::ensure!(
        s.errors == 0 || s.errors * 100 < s.count,
        "{} errors in {} requests to {addr}{path}",
        s.errors,
        s.count
    );
    Ok(s)
}

/// One layout: where the upstream runs.
struct Layout {
    name: &'static str,
    /// Pin the upstream with the load client (helpers) instead of the servers.
    helper: bool,
}

const LAYOUTS: [Layout; 2] = [
    Layout {
        name: "upstream and manager on the server CPU",
        helper: false,
    },
    Layout {
        name: "upstream on the load client's CPU, manager alone on the server CPU",
        helper: true,
    },
];

/// Runs the comparison in every layout; prints and writes the tables.
pub async fn run(o: Options) -> anyhow::Result<()> {
    let dir = o.out.join("proxy");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut md = String::new();
    let mut js = Vec::new();
    for (i, layout) in LAYOUTS.iter().enumerate() {
        let here = dir.join(format!("layout-{i}"));
        let upstream = o
            .programs
            .baseline(
                "upstream",
                &here,
                layout.helper,
                tokenlb_bench::baseline::Stack::Axum,
            )
            .await?;
        let manager = manager(&o.programs, &here.join("manager"), upstream.addr).await?;
        md.push_str(&format!(
            "{}:\n\n| connections | direct p50 / p99 (µs) | proxied p50 / p99 (µs) | added p50 / p99 (µs) | direct req/s | proxied req/s | ratio |\n|---|---|---|---|---|---|---|\n",
            layout.name
        ));
        for &c in &CONNECTIONS {
            let (mut direct, mut proxied) = (Vec::new(), Vec::new());
            for _ in 0..o.repeat {
                let up = vec![upstream.pid()];
                direct.push(measure(upstream.addr, "/v1/bench", c, &o, up).await?);
                let both = vec![upstream.pid(), manager.pid()];
                proxied.push(measure(manager.addr, "/proxy/bench/v1/bench", c, &o, both).await?);
            }
            let (d, _) = median_by_rate(direct).context("no direct run")?;
            let (p, _) = median_by_rate(proxied).context("no proxied run")?;
            md.push_str(&format!(
                "| {c} | {:.0} / {:.0} | {:.0} / {:.0} | {:+.0} / {:+.0} | {:.0} | {:.0} | {:.2} |\n",
                d.p50_us,
                d.p99_us,
                p.p50_us,
                p.p99_us,
                p.p50_us - d.p50_us,
                p.p99_us - d.p99_us,
                d.rate,
                p.rate,
                p.rate / d.rate
            ));
            js.push(
                json!({ "layout": layout.name, "connections": c, "direct": d, "proxied": p,
                "added_p50_us": p.p50_us - d.p50_us, "added_p99_us": p.p99_us - d.p99_us,
                "rate_ratio": p.rate / d.rate }),
            );
        }
        md.push('\n');
        drop(manager);
        drop(upstream);
    }
    println!("{md}");
    setup::write(&o.out.join("proxy.md"), &md)?;
    setup::write(
        &o.out.join("proxy.json"),
        &serde_json::to_string_pretty(&json!({ "rows": js }))?,
    )?;
    println!("wrote {0}/proxy.md and {0}/proxy.json", o.out.display());
    Ok(())
}
