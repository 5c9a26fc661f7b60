//! One harness run: start the servers, run the plan's loads against them, compare, write.
//!
//! Order matters on a small machine. Within one manager, every get + report run comes
//! before the `get`-only runs: a `get` alone leaves its lease open until the lease deadline
//! (60 s), and those leases must not expire in the middle of another measurement; the
//! `get`-only runs of one manager together stay under that deadline. Each pool size gets
//! its own manager (fresh data directory), and memory is read right after its load runs.

use crate::baseline::Stack;
use crate::load::{self, Load, Work};
use crate::plan::Plan;
use crate::procs::Server;
use crate::report::{Memory, Results, Row};
use crate::servers::Programs;
use crate::setup::{self, ManagerOptions};
use crate::summary::median_by_rate;
use crate::wrk::{self, WrkWork};
use crate::{goals, http1, machine, svg};

mod extra;
pub mod scale;
use anyhow::{bail, Context};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// What the baselines are, in their rows' labels.
const AXUM: &str = "bare axum::serve";
const LISTEN: &str = "axum behind tokenlb-listen";

/// When the memory the goal is about is read.
pub const AFTER_LOAD: &str = "after the load runs";

/// A run in progress.
pub struct Bench {
    pub plan: Plan,
    pub programs: Programs,
    /// Output directory (results, plot, scratch directories of the servers).
    pub out: PathBuf,
    pub results: Results,
}

/// What to measure against what.
pub(crate) struct Target<'a> {
    group: &'a str,
    label: String,
    tokens: Option<usize>,
    strategy: Option<&'a str>,
    conns: usize,
    addr: SocketAddr,
    client: Client,
    /// Row id to compare with.
    reference: Option<String>,
    /// The server processes serving this target (their CPU time is measured).
    pids: Vec<u32>,
}

/// Which load client drives a target, with what.
pub(crate) enum Client {
    /// The harness's own client ([`crate::load`]).
    Own(Work),
    /// wrk ([`crate::wrk`]) on a path and query of the target.
    Wrk { path: String, work: WrkWork },
}

pub(crate) fn fixed(request: Vec<u8>) -> Client {
    Client::Own(Work::Fixed {
        request: Arc::new(request),
        expect: 200,
    })
}

/// The group of wrk's row for one of the own client's groups.
pub fn wrk_group(group: &str) -> String {
    format!("wrk {group}")
}

impl Bench {
    pub fn new(plan: Plan, programs: Programs, out: PathBuf, setup: Vec<String>) -> Bench {
        let results = Results {
            started_at: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            mode: plan.mode.to_string(),
            machine: machine::describe(),
            setup,
            rows: vec![],
            memory: vec![],
            goals: vec![],
        };
        Bench {
            plan,
            programs,
            out,
            results,
        }
    }

    pub(crate) fn scratch(&self) -> PathBuf {
        self.out.join("scratch")
    }

    pub(crate) async fn measure(&mut self, t: Target<'_>) -> anyhow::Result<()> {
        let mut attempts = Vec::with_capacity(self.plan.repeat);
        match t.client {
            Client::Own(work) => {
                let load = Load {
                    addr: t.addr,
                    connections: t.conns,
                    warmup: self.plan.warmup,
                    duration: self.plan.duration,
                    max_units: None,
                    timeout: self.plan.timeout,
                    work,
                    cpu_pids: t.pids.clone(),
                };
                for _ in 0..self.plan.repeat.max(1) {
                    attempts.push(load::run(&load).await?);
                }
            }
            Client::Wrk { path, work } => {
                for _ in 0..self.plan.repeat.max(1) {
                    let run = wrk::WrkRun {
                        addr: t.addr,
                        path: &path,
                        connections: t.conns,
                        warmup: self.plan.warmup,
                        duration: self.plan.duration,
                        work,
                        cpus: self.programs.helper_cpus.as_deref(),
                        cpu_pids: &t.pids,
                        scratch: &self.scratch(),
                    };
                    attempts.push(tokio::task::block_in_place(|| wrk::run(&run))?);
                }
            }
        }
        let (summary, rates) = median_by_rate(attempts).context("no load attempt")?;
        let rates = if rates.len() > 1 { rates } else { vec![] };
        let mut row = Row {
            id: Row::key(t.group, t.tokens, t.strategy, t.conns),
            group: t.group.to_string(),
            label: t.label,
            connections: t.conns,
            tokens: t.tokens,
            strategy: t.strategy.map(str::to_string),
            summary,
            reference: None,
            rate_ratio: None,
            p99_ratio: None,
            p50_delta_us: None,
            rates,
        };
        if let Some(reference) = t.reference.as_deref().and_then(|id| self.results.row(id)) {
            row.compare(reference);
        }
        eprintln!(
            "  {:<44} c{:<4} {:>9.0}/s  p50 {:>7.3} ms  p99 {:>7.3} ms  errors {}  cpu server {} / client {} µs{}",
            row.label,
            row.connections,
            row.summary.rate,
            row.summary.p50_us / 1000.0,
            row.summary.p99_us / 1000.0,
            row.summary.errors,
            row.summary
                .server_cpu_us
                .map_or("—".to_string(), |v| format!("{v:.1}")),
            row.summary
                .client_cpu_us
                .map_or("—".to_string(), |v| format!("{v:.1}")),
            row.rate_ratio
                .map_or(String::new(), |r| format!("  ×{r:.2}")),
        );
        if !row.rates.is_empty() {
            let each: Vec<String> = row.rates.iter().map(|r| format!("{r:.0}")).collect();
            eprintln!("      attempts: {}/s (median kept)", each.join(" / "));
        }
        if row.summary.count == 0 {
            bail!(
                "{}: no request succeeded ({} errors)",
                row.label,
                row.summary.errors
            );
        }
        self.results.rows.push(row);
        Ok(())
    }

    pub(crate) fn baseline_ref(&self, conns: usize) -> Option<String> {
        Some(Row::key("baseline", None, None, conns))
    }

    pub(crate) fn remember_rss(
        &mut self,
        server: &Server,
        what: &str,
        tokens: Option<usize>,
        when: &str,
    ) {
        self.remember_rss_of(server.pid(), what, tokens, when);
    }

    fn remember_rss_of(&mut self, pid: u32, what: &str, tokens: Option<usize>, when: &str) {
        if let Some(rss_kib) = crate::procs::rss_kib(pid) {
            let with = tokens.map_or(String::new(), |n| format!(" with {n} tokens"));
            eprintln!("  {what}{with}, {when}: {:.1} MiB", rss_kib as f64 / 1024.0);
            self.results.memory.push(Memory {
                server: what.to_string(),
                when: when.to_string(),
                tokens,
                rss_kib,
            });
        }
    }

    /// The baseline at each connection count (`label` tells a re-run apart), and with wrk
    /// at the matrix's connections.
    async fn baseline(
        &mut self,
        addr: SocketAddr,
        pid: u32,
        conns: &[usize],
        group: &str,
        what: &str,
    ) -> anyhow::Result<()> {
        let req = http1::get(&addr.to_string(), "/", "");
        for &c in conns {
            let reference = (group != "baseline")
                .then(|| self.baseline_ref(c))
                .flatten();
            self.measure(Target {
                group,
                label: format!("{group} ({what}, fixed JSON)"),
                tokens: None,
                strategy: None,
                conns: c,
                addr,
                client: fixed(req.clone()),
                reference,
                pids: vec![pid],
            })
            .await?;
        }
        let c = self.plan.matrix_conns;
        if self.plan.wrk && conns.contains(&c) {
            let wgroup = wrk_group(group);
            let reference = (group != "baseline").then(|| self.wrk_ref(c));
            self.measure(Target {
                group: &wgroup,
                label: format!("{group} ({what}, fixed JSON), wrk"),
                tokens: None,
                strategy: None,
                conns: c,
                addr,
                client: Client::Wrk {
                    path: "/".into(),
                    work: WrkWork::Get,
                },
                reference,
                pids: vec![pid],
            })
            .await?;
        }
        Ok(())
    }

    /// The row wrk's rows are compared with: the baseline measured by wrk.
    pub(crate) fn wrk_ref(&self, conns: usize) -> String {
        Row::key(&wrk_group("baseline"), None, None, conns)
    }

    /// Call units and get + report pairs, then get alone, on one manager; each with the
    /// harness's client and, at the matrix's connections, with wrk.
    async fn manager_loads(
        &mut self,
        addr: SocketAddr,
        pid: u32,
        tokens: usize,
        runs: &[(&'static str, usize)],
    ) -> anyhow::Result<()> {
        let host = addr.to_string();
        let kinds = [
            ("call unit", WrkWork::Unit),
            ("get+report", WrkWork::Pair),
            ("get", WrkWork::Get),
        ];
        for (group, wrk_work) in kinds {
            if group == "get" {
                // Before the get-only runs, whose leases stay open until their deadline.
                self.remember_rss_of(pid, "manager", Some(tokens), "after the get + report runs");
            }
            for &(strategy, c) in runs {
                let path = format!("/api/token/get?strategy={strategy}");
                let get = Arc::new(http1::get(&host, &path, ""));
                let work = match wrk_work {
                    WrkWork::Get => Work::Fixed {
                        request: get,
                        expect: 200,
                    },
                    WrkWork::Pair => Work::LeasePair {
                        get,
                        host: host.clone(),
                    },
                    WrkWork::Unit => Work::CallUnit {
                        get,
                        host: host.clone(),
                        batch: load::Batch::new(wrk::BATCH),
                    },
                };
                let what = match wrk_work {
                    WrkWork::Get => "token/get",
                    WrkWork::Pair => "get + report pair",
                    WrkWork::Unit => "call unit (get, batched report)",
                };
                let label = format!("{what}, {tokens} tokens, {strategy}");
                self.measure(Target {
                    group,
                    label: label.clone(),
                    tokens: Some(tokens),
                    strategy: Some(strategy),
                    conns: c,
                    addr,
                    client: Client::Own(work),
                    reference: self.baseline_ref(c),
                    pids: vec![pid],
                })
                .await?;
                if self.plan.wrk && c == self.plan.matrix_conns {
                    let wgroup = wrk_group(group);
                    self.measure(Target {
                        group: &wgroup,
                        label: format!("{label}, wrk"),
                        tokens: Some(tokens),
                        strategy: Some(strategy),
                        conns: c,
                        addr,
                        client: Client::Wrk {
                            path,
                            work: wrk_work,
                        },
                        reference: Some(self.wrk_ref(c)),
                        pids: vec![pid],
                    })
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// The pool-size matrix (and the connection sweep on the smallest pool).
    async fn managers(&mut self) -> anyhow::Result<()> {
        let plan = self.plan.clone();
        for (i, &n) in plan.sizes.iter().enumerate() {
            eprintln!("manager with {n} tokens");
            let dir = self.scratch().join(format!("manager-{n}"));
            let _ = std::fs::remove_dir_all(&dir);
            let m = self
                .programs
                .manager(
                    "manager",
                    &dir,
                    Some(&setup::tokens_json(n)),
                    &ManagerOptions::default(),
                )
                .await?;
            self.remember_rss(&m, "manager", Some(n), "idle after start");
            let mut runs: Vec<(&str, usize)> = plan
                .strategies
                .iter()
                .map(|&s| (s, plan.matrix_conns))
                .collect();
            if i == 0 {
                runs.extend(
                    plan.conns
                        .iter()
                        .filter(|&&c| c != plan.matrix_conns)
                        .map(|&c| (plan.sweep_strategy, c)),
                );
            }
            self.manager_loads(m.addr, m.pid(), n, &runs).await?;
            self.remember_rss(&m, "manager", Some(n), AFTER_LOAD);
            if i + 1 == plan.sizes.len() && plan.mode == "full" {
                // The allocator returns freed pages with a delay: show where it settles.
                tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                self.remember_rss(&m, "manager", Some(n), "10 s after the load runs");
            }
        }
        Ok(())
    }

    /// Runs the whole plan and writes results.json, results.md and throughput.svg.
    pub async fn run(mut self) -> anyhow::Result<Results> {
        std::fs::create_dir_all(&self.out)
            .with_context(|| format!("creating {}", self.out.display()))?;
        eprintln!("baseline");
        let baseline = self
            .programs
            .baseline("baseline", &self.scratch(), false, Stack::Axum)
            .await?;
        let conns = self.plan.conns.clone();
        self.baseline(baseline.addr, baseline.pid(), &conns, "baseline", AXUM)
            .await?;
        if self.plan.listen_baseline {
            // The same handler behind the manager's accept loop: what tokenlb-listen costs.
            eprintln!("baseline through tokenlb-listen");
            let listen = self
                .programs
                .baseline("baseline-listen", &self.scratch(), false, Stack::Listen)
                .await?;
            let c = [self.plan.matrix_conns];
            self.baseline(listen.addr, listen.pid(), &c, "baseline listen", LISTEN)
                .await?;
        }
        if self.plan.managers {
            self.managers().await?;
        }
        if self.plan.variants {
            self.variants().await?;
        }
        if self.plan.webapi {
            self.webapi().await?;
        }
        eprintln!("baseline again (drift)");
        let c = [self.plan.matrix_conns];
        self.baseline(baseline.addr, baseline.pid(), &c, "baseline again", AXUM)
            .await?;
        drop(baseline);
        self.results.goals = goals::evaluate(&self.results);
        self.write()?;
        Ok(self.results)
    }

    fn write(&self) -> anyhow::Result<()> {
        let r = &self.results;
        let p = &self.plan;
        setup::write(
            &self.out.join("results.json"),
            &serde_json::to_string_pretty(r)?,
        )?;
        setup::write(&self.out.join("results.md"), &crate::report::markdown(r))?;
        setup::write(
            &self.out.join("throughput.svg"),
            &svg::plot(r, &p.conns, &p.sizes, p.sweep_strategy, p.matrix_conns),
        )?;
        Ok(())
    }
}
