//! `tokenlb-bench --scale N` (issue 15): one pool from 10 tokens up to N (a million), in one
//! run.
//!
//! - The baseline (bare `axum::serve`) with both load clients, for the ratios.
//! - A manager per pool size 10, 100, … below N, its pool imported at start from a
//!   seed-format tokens.json: `get` with `round_robin` and `best` (the harness's client), and
//!   `round_robin` with wrk at 1,000 tokens. Memory after the runs.
//! - At N: an empty manager, the tokens imported the way a user imports them
//!   (`tokenlb token import FILE`, in batches, with its progress bar), timed; get + report
//!   pairs with the default stats flush (every second: with `round_robin` every pair dirties
//!   another token, so each flush writes a second's worth of rows); `get` with both
//!   strategies and with wrk; memory after the load runs; then the manager is stopped with
//!   SIGTERM (as systemd or Ctrl-C would; the stop is timed too) and started again on the
//!   same data directory, timed from spawn to `/readyz`; then killed (SIGKILL, a crash) and
//!   started once more, timed the same way. The flush's
//!   share of p99 is the pairs' p99 at N against the same pairs at 1,000 tokens, whose
//!   flushes write at most 1,000 rows (`stats_flush_ms` cannot be set beyond a second, so
//!   there is no run without flushes to compare with).
//!
//! Writes `scale.json`, `scale.md` and `scale.svg` (cost against pool size) into the output
//! directory.

use super::{fixed, wrk_group, Bench, Client, Target};
use crate::baseline::Stack;
use crate::load::Work;
use crate::report::{Goal, Memory, Results, Row};
use crate::setup::{self, ManagerOptions};
use crate::svg::{self, Panel, Series};
use crate::wrk::WrkWork;
use crate::{http1, procs};
use anyhow::{bail, Context};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Groups of the scale rows.
const GET: &str = "scale get";
const PAIR: &str = "scale get+report";
/// The pool size the largest is compared with.
const REFERENCE: usize = 1_000;

/// Pool sizes of a scale run up to `largest`: the powers of ten from 10 below it, then it.
pub fn sizes(largest: usize) -> Vec<usize> {
    let mut v: Vec<usize> = std::iter::successors(Some(10usize), |n| n.checked_mul(10))
        .take_while(|&n| n < largest)
        .collect();
    v.push(largest);
    v
}

/// What the scale run measured besides its rows.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ScaleFigures {
    pub tokens: usize,
    pub import_s: Option<f64>,
    pub import_output: String,
    /// Start-up after a clean stop (SIGTERM).
    pub restart_s: Option<f64>,
    /// How long that stop took (the stats fold at close included).
    pub stop_s: Option<f64>,
    /// Start-up after a kill (SIGKILL) of the restarted manager.
    pub restart_after_kill_s: Option<f64>,
    pub rss_after_load_kib: Option<u64>,
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |s| format!("{s:.1} s"))
}

/// Streams a seed-format tokens.json of `n` bench tokens to `path`.
fn write_tokens_file(path: &Path, n: usize) -> anyhow::Result<()> {
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(f);
    w.write_all(b"{\"tokens\": [\n")?;
    for i in 0..n {
        let sep = if i + 1 < n { "," } else { "" };
        writeln!(
            w,
            "{{\"token\": \"{}\", \"name\": \"bench {i}\", \"is_active\": true}}{sep}",
            setup::bench_secret(i)
        )?;
    }
    w.write_all(b"]}\n")?;
    w.flush()?;
    Ok(())
}

impl Bench {
    fn get_target(
        &self,
        group: &'static str,
        addr: std::net::SocketAddr,
        pid: u32,
        n: usize,
        strategy: &'static str,
        pair: bool,
    ) -> Target<'static> {
        let host = addr.to_string();
        let get = Arc::new(http1::get(
            &host,
            &format!("/api/token/get?strategy={strategy}"),
            "",
        ));
        let c = self.plan.matrix_conns;
        Target {
            group,
            label: format!(
                "{}, {n} tokens, {strategy}",
                if pair {
                    "get + report pair"
                } else {
                    "token/get"
                }
            ),
            tokens: Some(n),
            strategy: Some(strategy),
            conns: c,
            addr,
            client: if pair {
                Client::Own(Work::LeasePair { get, host })
            } else {
                Client::Own(Work::Fixed {
                    request: get,
                    expect: 200,
                })
            },
            reference: self.baseline_ref(c),
            pids: vec![pid],
        }
    }

    async fn wrk_get(
        &mut self,
        addr: std::net::SocketAddr,
        pid: u32,
        n: usize,
    ) -> anyhow::Result<()> {
        if !self.plan.wrk {
            return Ok(());
        }
        let c = self.plan.matrix_conns;
        let group = wrk_group(GET);
        self.measure(Target {
            group: &group,
            label: format!("token/get, {n} tokens, round_robin, wrk"),
            tokens: Some(n),
            strategy: Some("round_robin"),
            conns: c,
            addr,
            client: Client::Wrk {
                path: "/api/token/get?strategy=round_robin".into(),
                work: WrkWork::Get,
            },
            reference: Some(self.wrk_ref(c)),
            pids: vec![pid],
        })
        .await
    }

    /// Runs the scale plan up to `largest` tokens and writes scale.{json,md,svg}.
    pub async fn scale(mut self, largest: usize) -> anyhow::Result<(Results, ScaleFigures)> {
        std::fs::create_dir_all(&self.out)
            .with_context(|| format!("creating {}", self.out.display()))?;
        let c = self.plan.matrix_conns;
        eprintln!("baseline");
        let baseline = self
            .programs
            .baseline("baseline", &self.scratch(), false, Stack::Axum)
            .await?;
        let req = http1::get(&baseline.addr.to_string(), "/", "");
        self.measure(Target {
            group: "baseline",
            label: "baseline (bare axum::serve, fixed JSON)".into(),
            tokens: None,
            strategy: None,
            conns: c,
            addr: baseline.addr,
            client: fixed(req),
            reference: None,
            pids: vec![baseline.pid()],
        })
        .await?;
        if self.plan.wrk {
            let group = wrk_group("baseline");
            self.measure(Target {
                group: &group,
                label: "baseline (bare axum::serve, fixed JSON), wrk".into(),
                tokens: None,
                strategy: None,
                conns: c,
                addr: baseline.addr,
                client: Client::Wrk {
                    path: "/".into(),
                    work: WrkWork::Get,
                },
                reference: None,
                pids: vec![baseline.pid()],
            })
            .await?;
        }
        let all = sizes(largest);
        let mut fig = ScaleFigures {
            tokens: largest,
            ..ScaleFigures::default()
        };
        for &n in &all[..all.len() - 1] {
            eprintln!("manager with {n} tokens");
            let dir = self.scratch().join(format!("scale-{n}"));
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
            for strategy in ["round_robin", "best"] {
                let t = self.get_target(GET, m.addr, m.pid(), n, strategy, false);
                self.measure(t).await?;
            }
            if n == REFERENCE {
                self.wrk_get(m.addr, m.pid(), n).await?;
                let t = self.get_target(PAIR, m.addr, m.pid(), n, "round_robin", true);
                self.measure(t).await?;
            }
            self.remember_rss(&m, "manager", Some(n), super::AFTER_LOAD);
        }

        let n = largest;
        eprintln!("manager with {n} tokens, imported through `tokenlb token import`");
        let dir = self.scratch().join(format!("scale-{n}"));
        let _ = std::fs::remove_dir_all(&dir);
        let file = self.scratch().join(format!("tokens-{n}.json"));
        write_tokens_file(&file, n)?;
        let m = self
            .programs
            .manager("manager", &dir, None, &ManagerOptions::default())
            .await?;
        let started = Instant::now();
        let out = std::process::Command::new(&self.programs.tokenlb)
            .arg("token")
            .arg("--manager-url")
            .arg(format!("http://{}", m.addr))
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("import")
            .arg(&file)
            .current_dir(&dir)
            .env_remove("TOKENLB_ADMIN_KEY")
            .output()
            .context("running tokenlb token import")?;
        let took = started.elapsed().as_secs_f64();
        let text = String::from_utf8_lossy(&out.stderr).to_string();
        if !out.status.success() {
            bail!("tokenlb token import failed: {text}");
        }
        fig.import_output = text
            .lines()
            .rev()
            .find(|l| l.contains("added"))
            .unwrap_or("")
            .trim()
            .to_string();
        fig.import_s = Some(took);
        eprintln!("  imported in {took:.1} s: {}", fig.import_output);
        self.remember_rss(&m, "manager", Some(n), "after the import");
        let t = self.get_target(PAIR, m.addr, m.pid(), n, "round_robin", true);
        self.measure(t).await?;
        for strategy in ["round_robin", "best"] {
            let t = self.get_target(GET, m.addr, m.pid(), n, strategy, false);
            self.measure(t).await?;
        }
        self.wrk_get(m.addr, m.pid(), n).await?;
        self.remember_rss(&m, "manager", Some(n), super::AFTER_LOAD);
        fig.rss_after_load_kib = procs::rss_kib(m.pid());
        let stopped = m.stop(Duration::from_secs(300)).await?;
        fig.stop_s = Some(stopped.as_secs_f64());
        eprintln!("  stopped (SIGTERM) in {:.1} s", stopped.as_secs_f64());

        eprintln!("manager with {n} stored tokens, restarted after a clean stop");
        let started = Instant::now();
        let m = self
            .programs
            .manager("manager-restart", &dir, None, &ManagerOptions::default())
            .await?;
        let took = started.elapsed().as_secs_f64();
        fig.restart_s = Some(took);
        eprintln!("  ready in {took:.1} s");
        self.remember_rss(&m, "manager", Some(n), "after a restart");
        // A short load, so the kill leaves flushed and unfolded stats behind, as a crash
        // under load would.
        let t = self.get_target(PAIR, m.addr, m.pid(), n, "round_robin", true);
        self.measure(t).await?;
        drop(m); // SIGKILL

        eprintln!("manager with {n} stored tokens, restarted after a kill");
        let started = Instant::now();
        let m = self
            .programs
            .manager(
                "manager-restart-kill",
                &dir,
                None,
                &ManagerOptions::default(),
            )
            .await?;
        let took = started.elapsed().as_secs_f64();
        fig.restart_after_kill_s = Some(took);
        eprintln!("  ready in {took:.1} s");
        drop(m);
        drop(baseline);

        self.results.goals = scale_goals(&self.results, &fig);
        let r = &self.results;
        setup::write(
            &self.out.join("scale.json"),
            &serde_json::to_string_pretty(&serde_json::json!({ "results": r, "scale": fig }))?,
        )?;
        setup::write(&self.out.join("scale.md"), &markdown(r, &fig))?;
        setup::write(&self.out.join("scale.svg"), &plot(r, &all))?;
        let _ = std::fs::remove_file(&file);
        Ok((self.results, fig))
    }
}

fn rate_of(res: &Results, group: &str, n: usize, strategy: &str, c: usize) -> Option<f64> {
    res.row(&Row::key(group, Some(n), Some(strategy), c))
        .map(|r| r.summary.rate)
}

/// The million-token goals of issue 15.
pub fn scale_goals(res: &Results, fig: &ScaleFigures) -> Vec<Goal> {
    let n = fig.tokens;
    let c = crate::goals::GOAL_CONNS;
    let mut goals = Vec::new();
    let goal = |g: &str, measured: String, met: Option<bool>| Goal {
        goal: g.to_string(),
        measured,
        met,
    };
    goals.push(match fig.import_s {
        Some(s) => goal(
            &format!("{n} tokens imported in ≤ 20 s, with progress"),
            format!("{s:.1} s ({})", fig.import_output),
            Some(s <= 20.0),
        ),
        None => goal("import ≤ 20 s", "—".into(), None),
    });
    goals.push(match fig.rss_after_load_kib {
        Some(k) => goal(
            "manager RSS ≤ 800 MiB after a load run",
            format!("{:.0} MiB", k as f64 / 1024.0),
            Some(k <= 800 * 1024),
        ),
        None => goal("manager RSS ≤ 800 MiB", "—".into(), None),
    });
    let mut parts = Vec::new();
    let mut met = true;
    for (group, strategy) in [
        (GET.to_string(), "round_robin"),
        (GET.to_string(), "best"),
        (wrk_group(GET), "round_robin"),
    ] {
        let (Some(small), Some(large)) = (
            rate_of(res, &group, REFERENCE, strategy, c),
            rate_of(res, &group, n, strategy, c),
        ) else {
            continue;
        };
        let ratio = large / small.max(1e-9);
        met &= ratio >= 0.85;
        parts.push(format!("{group} {strategy}: {ratio:.2}"));
    }
    goals.push(goal(
        &format!("get at {n} tokens within 15 % of {REFERENCE} tokens"),
        if parts.is_empty() {
            "—".into()
        } else {
            format!("{n} ÷ {REFERENCE} rate: {}", parts.join(", "))
        },
        (!parts.is_empty()).then_some(met),
    ));
    goals.push(match fig.restart_s {
        Some(s) => goal(
            &format!("start-up with {n} stored tokens ≤ 10 s"),
            format!(
                "{s:.1} s from spawn to /readyz after a clean stop (the stop: {}); after a \
                 kill under load: {}",
                secs(fig.stop_s),
                secs(fig.restart_after_kill_s)
            ),
            Some(s <= 10.0),
        ),
        None => goal("start-up ≤ 10 s", "—".into(), None),
    });
    let p99 = |tokens: usize| {
        res.row(&Row::key(PAIR, Some(tokens), Some("round_robin"), c))
            .map(|r| r.summary.p99_us)
    };
    goals.push(match (p99(n), p99(REFERENCE)) {
        (Some(large), Some(small)) if small > 0.0 => goal(
            &format!(
                "the stats flush invisible in p99 (get + report p99 at {n} ≤ 1.25× at {REFERENCE} tokens)"
            ),
            format!(
                "p99 {:.3} ms at {n}, {:.3} ms at {REFERENCE}: {:.2}×",
                large / 1000.0,
                small / 1000.0,
                large / small
            ),
            Some(large / small <= 1.25),
        ),
        _ => goal("the stats flush invisible in p99", "—".into(), None),
    });
    goals
}

fn markdown(res: &Results, fig: &ScaleFigures) -> String {
    let mut s = format!(
        "# tokenlb-bench --scale {}\n\nStarted {}.\n\n",
        fig.tokens, res.started_at
    );
    for (k, v) in &res.machine {
        s.push_str(&format!("- {k}: {v}\n"));
    }
    for line in &res.setup {
        s.push_str(&format!("- {line}\n"));
    }
    s.push_str("\n## Goals\n\n| goal | measured | met |\n|---|---|---|\n");
    for g in &res.goals {
        let met = match g.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "not measured",
        };
        s.push_str(&format!("| {} | {} | {met} |\n", g.goal, g.measured));
    }
    s.push_str("\n## Rows\n\n");
    s.push_str(&crate::report::rows_table(&res.rows));
    s.push_str("\n## Memory\n\n| server | tokens | when | RSS MiB |\n|---|---|---|---|\n");
    for m in &res.memory {
        s.push_str(&format!(
            "| {} | {} | {} | {:.1} |\n",
            m.server,
            m.tokens.map_or("—".into(), |n| n.to_string()),
            m.when,
            m.rss_kib as f64 / 1024.0
        ));
    }
    s
}

fn rss_at(memory: &[Memory], n: usize) -> Option<f64> {
    memory
        .iter()
        .find(|m| m.tokens == Some(n) && m.when == super::AFTER_LOAD)
        .map(|m| m.rss_kib as f64 / 1024.0)
}

/// Cost against pool size: get/s (with the baseline), server CPU per get, and memory.
pub fn plot(res: &Results, sizes: &[usize]) -> String {
    let c = crate::goals::GOAL_CONNS;
    let categories: Vec<String> = sizes.iter().map(|&n| svg::thousands(n)).collect();
    let row = |s: &str, n: usize| res.row(&Row::key(GET, Some(n), Some(s), c));
    let base = res
        .row(&Row::key("baseline", None, None, c))
        .map(|r| r.summary.rate);
    let mut rate = vec![Series {
        name: "baseline (bare axum::serve)".into(),
        values: sizes.iter().map(|_| base).collect(),
        dashed: true,
    }];
    let mut cpu = Vec::new();
    for s in ["round_robin", "best"] {
        rate.push(Series {
            name: format!("get {s}"),
            values: sizes
                .iter()
                .map(|&n| row(s, n).map(|r| r.summary.rate))
                .collect(),
            dashed: false,
        });
        cpu.push(Series {
            name: format!("get {s}"),
            values: sizes
                .iter()
                .map(|&n| row(s, n).and_then(|r| r.summary.server_cpu_us))
                .collect(),
            dashed: false,
        });
    }
    let memory = vec![Series {
        name: "manager RSS after the load runs".into(),
        values: sizes.iter().map(|&n| rss_at(&res.memory, n)).collect(),
        dashed: false,
    }];
    let x = format!("tokens in one pool ({c} connections)");
    svg::render(&[
        Panel {
            title: "get requests/s vs pool size".into(),
            x_title: x.clone(),
            categories: categories.clone(),
            series: rate,
        },
        Panel {
            title: "server CPU µs per get vs pool size".into(),
            x_title: x.clone(),
            categories: categories.clone(),
            series: cpu,
        },
        Panel {
            title: "manager RSS (MiB) vs pool size".into(),
            x_title: x,
            categories,
            series: memory,
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_powers_of_ten_up_to_the_largest() {
        assert_eq!(
            sizes(1_000_000),
            [10, 100, 1_000, 10_000, 100_000, 1_000_000]
        );
        assert_eq!(sizes(5_000), [10, 100, 1_000, 5_000]);
        assert_eq!(sizes(10), [10]);
    }

    #[test]
    fn the_tokens_file_is_seed_json() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.json");
        write_tokens_file(&p, 3).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        let tokens = v["tokens"].as_array().unwrap();
        assert_eq!(tokens.len(), 3);
        assert_eq!(tokens[2]["token"], setup::bench_secret(2));
        assert_eq!(tokens[0]["is_active"], true);
    }

    #[test]
    fn goals_read_the_figures() {
        let res = Results {
            started_at: String::new(),
            mode: "scale".into(),
            machine: vec![],
            setup: vec![],
            rows: vec![],
            memory: vec![],
            goals: vec![],
        };
        let fig = ScaleFigures {
            tokens: 1_000_000,
            import_s: Some(25.0),
            import_output: "1000000 added".into(),
            restart_s: Some(3.0),
            stop_s: Some(1.0),
            restart_after_kill_s: Some(12.0),
            rss_after_load_kib: Some(500 * 1024),
        };
        let g = scale_goals(&res, &fig);
        assert_eq!(g[0].met, Some(false), "25 s is over 20 s");
        assert_eq!(g[1].met, Some(true));
        assert_eq!(g[2].met, None, "no rows, not measured");
        assert_eq!(g[3].met, Some(true));
        assert_eq!(g[4].met, None);
    }
}
