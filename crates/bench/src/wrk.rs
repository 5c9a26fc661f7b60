//! wrk (Debian's `wrk` package) as the harness's second load client.
//!
//! The harness's own client ([`crate::load`]) and wrk both run N keep-alive connections in a
//! closed loop, but they are different programs: ours is a Tokio task per connection that
//! parses each answer with a few byte scans; wrk is one epoll thread in C with an
//! http-parser and, when a Lua script is given, a LuaJIT call per request and per answer.
//! Users measure with wrk, so every goal is checked with both.
//!
//! Three kinds of run, each as `wrk -t1 -cN -dS --latency [-s script] URL` pinned with
//! `taskset` to the load client's CPUs, after a warm-up run of a fifth of the window:
//!
//! - [`WrkWork::Get`]: the URL, as is (no script).
//! - [`WrkWork::Pair`]: a `GET` of the lease, then on the same connection its report
//!   (`POST /api/token/report`, `outcome: success`); a unit is the pair.
//! - [`WrkWork::Unit`]: the "call unit" of issue 15: every `GET` is a unit, and once 64
//!   lease ids have gathered (well within 50 ms at these rates), the next request on that
//!   connection is one batch report `{"reports":[…]}` of all of them, as the Rust client's
//!   batcher sends them.
//!
//! The scripts count units and failed answers per thread; `done()` prints them on one line
//! that [`parse`] reads with wrk's own `Requests/sec` and latency percentiles (wrk's
//! latencies are per request, so a pair's two requests are two samples).

use crate::procs;
use crate::summary::Summary;
use anyhow::{bail, Context};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// What wrk sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrkWork {
    /// The URL's `GET`, every request a unit.
    Get,
    /// A lease `GET` and its report: a unit is the pair.
    Pair,
    /// A lease `GET` per unit and one batch report per 64 leases.
    Unit,
}

/// Reports gathered before a batch is sent.
pub const BATCH: usize = 64;

/// Whether `wrk` can be run.
pub fn available() -> bool {
    Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

const COMMON: &str = r#"
local threads = {}
function setup(thread) table.insert(threads, thread) end
units = 0
failed = 0
function done(summary, latency, requests)
  local u, f = 0, 0
  for _, t in ipairs(threads) do u = u + t:get("units"); f = f + t:get("failed") end
  io.write(string.format("tokenlb-units %d failed %d\n", u, f))
end
"#;

const PAIR: &str = r#"
local leases = {}
local get_req = wrk.format("GET", wrk.path)
function request()
  local id = table.remove(leases)
  if id then
    return wrk.format("POST", "/api/token/report", { ["Content-Type"] = "application/json" },
      '{"lease":"' .. id .. '","outcome":"success","latency_ms":1}')
  end
  return get_req
end
function response(status, headers, body)
  if status ~= 200 then failed = failed + 1; return end
  local id = body:match('"lease":"([^"]+)"')
  if id then table.insert(leases, id) else units = units + 1 end
end
"#;

const UNIT: &str = r#"
local leases = {}
local get_req = wrk.format("GET", wrk.path)
function request()
  if #leases >= BATCH then
    local parts = {}
    for i, id in ipairs(leases) do
      parts[i] = '{"lease":"' .. id .. '","outcome":"success","latency_ms":1}'
    end
    leases = {}
    return wrk.format("POST", "/api/token/report", { ["Content-Type"] = "application/json" },
      '{"reports":[' .. table.concat(parts, ",") .. ']}')
  end
  return get_req
end
function response(status, headers, body)
  if status ~= 200 then failed = failed + 1; return end
  local id = body:match('"lease":"([^"]+)"')
  if id then
    table.insert(leases, id); units = units + 1
  elseif body:find('"error"', 1, true) then
    failed = failed + 1
  end
end
"#;

fn script(work: WrkWork) -> Option<String> {
    let body = match work {
        WrkWork::Get => return None,
        WrkWork::Pair => PAIR.to_string(),
        WrkWork::Unit => UNIT.replace("BATCH", &BATCH.to_string()),
    };
    Some(format!("{COMMON}{body}"))
}

/// One wrk run.
pub struct WrkRun<'a> {
    pub addr: SocketAddr,
    /// Path and query.
    pub path: &'a str,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub work: WrkWork,
    /// `taskset -c` list for wrk.
    pub cpus: Option<&'a str>,
    /// Server processes whose CPU time is read over the measured run.
    pub cpu_pids: &'a [u32],
    /// Where the Lua script is written.
    pub scratch: &'a Path,
}

fn seconds_arg(d: Duration) -> String {
    // wrk takes whole units; milliseconds are not accepted, so round up to a second.
    format!("{}s", d.as_secs_f64().ceil().max(1.0) as u64)
}

fn command(run: &WrkRun<'_>, duration: Duration, script: Option<&Path>) -> Command {
    let mut cmd = match run.cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpus, "wrk"]);
            c
        }
        None => Command::new("wrk"),
    };
    cmd.args([
        "-t1",
        &format!("-c{}", run.connections),
        &format!("-d{}", seconds_arg(duration)),
        "--timeout",
        "5s",
        "--latency",
    ]);
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    cmd.arg(format!("http://{}{}", run.addr, run.path));
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs wrk (warm-up, then the measured run) and summarises the measured run.
pub fn run(run: &WrkRun<'_>) -> anyhow::Result<Summary> {
    if !run.addr.ip().is_loopback() {
        bail!(
            "wrk is only pointed at loopback addresses, not {}",
            run.addr
        );
    }
    std::fs::create_dir_all(run.scratch)
        .with_context(|| format!("creating {}", run.scratch.display()))?;
    let script_path = match script(run.work) {
        Some(text) => {
            let p = run
                .scratch
                .join(format!("wrk-{:?}.lua", run.work).to_lowercase());
            std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
            Some(p)
        }
        None => None,
    };
    let warm = command(run, run.warmup, script_path.as_deref())
        .output()
        .context("running wrk (is the Debian package `wrk` installed?)")?;
    if !warm.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&warm.stderr));
    }
    let before = cpu(run.cpu_pids);
    let out = command(run, run.duration, script_path.as_deref())
        .output()
        .context("running wrk")?;
    let after = cpu(run.cpu_pids);
    if !out.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut s = parse(&text, run.work).with_context(|| format!("reading wrk's output:\n{text}"))?;
    if let (Some(b), Some(a)) = (before, after) {
        if s.count > 0 {
            s.server_cpu_us = Some((a - b) * 1e6 / s.count as f64);
        }
    }
    Ok(s)
}

fn cpu(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&p| procs::cpu_seconds(p)).sum()
}

/// `2.50ms`, `812.00us`, `1.20s` → microseconds.
fn duration_us(s: &str) -> Option<f64> {
    let (num, mul) = if let Some(n) = s.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = s.strip_suffix("m") {
        (n, 60e6)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1e6)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|v| v * mul)
}

/// Reads wrk's `--latency` report (and the scripts' `tokenlb-units` line) into a summary.
/// Units: requests for [`WrkWork::Get`], the scripts' count otherwise; errors: socket errors,
/// non-2xx answers and the scripts' failed answers.
pub fn parse(text: &str, work: WrkWork) -> anyhow::Result<Summary> {
    let mut s = Summary::default();
    let mut requests = None;
    let mut units = None;
    let mut failed = 0u64;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", v] => s.p50_us = duration_us(v).context("p50")?,
            ["90%", v] => s.p90_us = duration_us(v).context("p90")?,
            ["99%", v] => s.p99_us = duration_us(v).context("p99")?,
            ["Latency", avg, _stdev, max, ..] => {
                s.mean_us = duration_us(avg).context("mean")?;
                s.max_us = duration_us(max).context("max")?;
            }
            [n, "requests", "in", secs, ..] => {
                requests = Some(n.parse::<u64>().context("request count")?);
                s.seconds = duration_us(secs.trim_end_matches(',')).context("window")? / 1e6;
            }
            ["Socket", "errors:", rest @ ..] => {
                // connect 0, read 0, write 0, timeout 0
                failed += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => failed += n.parse::<u64>().unwrap_or(0),
            ["tokenlb-units", u, "failed", f] => {
                units = Some(u.parse::<u64>().context("units")?);
                failed += f.parse::<u64>().unwrap_or(0);
            }
            _ => {}
        }
    }
    let requests = requests.context("no request count in wrk's output")?;
    if s.seconds <= 0.0 {
        bail!("no measured window in wrk's output");
    }
    s.count = match work {
        WrkWork::Get => requests,
        _ => units.context("the script printed no unit count")?,
    };
    s.errors = failed;
    s.rate = s.count as f64 / s.seconds;
    // wrk reports no 99.9th percentile: the maximum bounds it.
    s.p999_us = s.max_us;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "Running 4s test @ http://127.0.0.1:8080/\n  1 threads and 32 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   312.45us  101.20us   4.12ms   90.00%\n    Req/Sec   101.2k     3.1k  108.0k    70.00%\n  Latency Distribution\n     50%  298.00us\n     75%  330.00us\n     90%  380.00us\n     99%  610.00us\n  404000 requests in 4.00s, 60.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 4\nRequests/sec: 101000.00\nTransfer/sec:     15.00MB\n";

    #[test]
    fn reads_wrks_report() {
        let s = parse(OUT, WrkWork::Get).unwrap();
        assert_eq!(s.count, 404_000);
        assert_eq!(s.errors, 7);
        assert!((s.seconds - 4.0).abs() < 1e-9);
        assert!((s.rate - 101_000.0).abs() < 1e-6);
        assert!((s.p50_us - 298.0).abs() < 1e-9);
        assert!((s.p99_us - 610.0).abs() < 1e-9);
        assert!((s.max_us - 4120.0).abs() < 1e-6);
    }

    #[test]
    fn scripted_runs_count_the_scripts_units() {
        let text = format!("{OUT}tokenlb-units 150000 failed 3\n");
        let s = parse(&text, WrkWork::Pair).unwrap();
        assert_eq!(s.count, 150_000);
        assert_eq!(s.errors, 10);
        assert!(
            parse(OUT, WrkWork::Unit).is_err(),
            "a unit count is required"
        );
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(duration_us("812.00us"), Some(812.0));
        assert_eq!(duration_us("2.50ms"), Some(2500.0));
        assert_eq!(duration_us("1.20s"), Some(1_200_000.0));
        assert_eq!(duration_us("1.00m"), Some(60e6));
        assert_eq!(duration_us("12"), None);
    }

    #[test]
    fn the_batch_script_names_its_size() {
        let s = script(WrkWork::Unit).unwrap();
        assert!(s.contains("#leases >= 64"));
        assert!(script(WrkWork::Get).is_none());
    }
}
