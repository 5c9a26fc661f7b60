//! The servers under test, each a separate process: spawned, pinned, awaited, measured, and
//! killed when dropped.
//!
//! Servers run as the real binaries (`tokenlb manager …`, `tokenlb webapi …`,
//! `tokenlb wopan-emulator …`, `tokenlb-bench serve-baseline`), so what is measured is what
//! users run. Fairness on a small machine comes from CPU pinning with `taskset` (util-linux):
//! every server gets the same CPU set, the load client another, and a Tokio runtime sizes its
//! default worker pool from the CPUs it may use, so the baseline and the manager get the same
//! number of workers. Each child runs in its own directory with `TOKENLB_*` and `RUST_LOG`
//! removed from its environment, so nothing from the caller's shell or working directory
//! (a `tokenlb.toml`, a `tokens.json`, client keys) changes what is measured.

use crate::http1::{self, Conn};
use anyhow::{bail, Context};
use std::ffi::OsString;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound and released; the child binds it right after).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Whether `taskset` can be run.
pub fn taskset_available() -> bool {
    Command::new("taskset")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Pins this process (all its threads so far; call before starting a runtime) to `cpus`.
pub fn pin_self(cpus: &str) -> anyhow::Result<()> {
    let status = Command::new("taskset")
        .args(["-a", "-cp", cpus, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .context("running taskset")?;
    if !status.success() {
        bail!("taskset -a -cp {cpus} failed ({status})");
    }
    Ok(())
}

/// How to start one server.
pub struct Spawn {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Working directory (created if missing); the log file goes there too.
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    /// `taskset -c` CPU list, if pinning.
    pub cpus: Option<String>,
    pub addr: SocketAddr,
}

/// A running server process.
pub struct Server {
    pub name: String,
    pub addr: SocketAddr,
    pub log: PathBuf,
    child: Child,
}

impl Server {
    pub fn spawn(s: Spawn) -> anyhow::Result<Server> {
        std::fs::create_dir_all(&s.dir).with_context(|| format!("creating {}", s.dir.display()))?;
        let log = s.dir.join(format!("{}.log", s.name));
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = match &s.cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpus).arg(&s.program);
                c
            }
            None => Command::new(&s.program),
        };
        cmd.args(&s.args)
            .current_dir(&s.dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("TOKENLB_") || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        cmd.envs(s.env.iter().map(|(k, v)| (k, v)));
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {} ({})", s.name, s.program.display()))?;
        Ok(Server {
            name: s.name,
            addr: s.addr,
            log,
            child,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `GET path` answers 200, the process exits (an error with its log's
    /// tail), or `timeout` passes.
    pub async fn wait_ready(&mut self, path: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let req = http1::get(&self.addr.to_string(), path, "");
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before it was ready; its log ends:\n{}",
                    self.name,
                    tail(&self.log, 20)
                );
            }
            if let Ok(mut c) = Conn::connect(self.addr).await {
                if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_secs(2), c.send(&req)).await
                {
                    if r.status == 200 {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "{} was not ready within {timeout:?}; log: {}",
                    self.name,
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the server as a service manager would: SIGTERM (through `kill`, the crate
    /// forbids `unsafe`), then waits up to `timeout` for it to exit, and kills it if it has
    /// not. Returns how long the stop took.
    pub async fn stop(mut self, timeout: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let sent = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()?;
        if !sent.success() {
            bail!("kill -TERM {} failed", self.pid());
        }
        while started.elapsed() < timeout {
            if self.child.try_wait()?.is_some() {
                return Ok(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!(
            "{} did not stop within {timeout:?} of SIGTERM; log: {}",
            self.name,
            self.log.display()
        )
    }

    /// Resident set size in KiB (`VmRSS` of /proc/PID/status).
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmRSS` of a process, KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (user + system, all threads) a process has used so far, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat).map(|t| t as f64 / clock_ticks_per_second())
}

/// `utime + stime` of a /proc/PID/stat line (fields 14 and 15, counted after the `)` that
/// ends the command name, which may itself contain spaces).
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_second() -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .filter(|&hz: &f64| hz > 0.0)
            .unwrap_or(100.0)
    })
}

/// The last `n` lines of a file (for start-up errors).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_from_status_text() {
        let text = "Name:\tx\nVmPeak:\t  9 kB\nVmRSS:\t   12345 kB\nThreads: 3\n";
        assert_eq!(parse_vm_rss(text), Some(12345));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        assert!(rss_kib(std::process::id()).is_some_and(|k| k > 0));
    }

    #[test]
    fn cpu_ticks_are_read_after_the_command_name() {
        let stat = "42 (tokio (x) y) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
        assert_eq!(parse_cpu_ticks("42 (x) S 1"), None);
        assert!(cpu_seconds(std::process::id()).is_some());
    }

    #[test]
    fn free_port_is_loopback_bindable() {
        let p = free_port().unwrap();
        assert!(p > 0);
        assert!(std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
    }
}
