//! Shared helpers of the reliability tests (issue 7, `RELIABILITY.md`): a `tokenlb` child
//! process on an ephemeral loopback port whose log goes to a file (so it can be searched for
//! secrets afterwards and survives a SIGKILL), a seeded RNG whose seed is printed (a failing
//! run can be replayed with `TOKENLB_RELIABILITY_SEED`), and small HTTP helpers.
//!
//! Built on `std::process` and the real binary on purpose: crash safety and storage faults
//! are properties of the process and its data directory, not of the router in isolation.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use tokenlb_test_support::process::listening_addr;

pub const ADMIN_KEY: &str = "reliability-admin-key-5b1e9c0d7a";
pub const CLIENT_KEY: &str = "reliability-client-key-77c2e4f1";

/// A scratch directory removed at the end of the test (unless `TOKENLB_KEEP_SCRATCH` is set).
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("tokenlb-rel-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("TOKENLB_KEEP_SCRATCH").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// `tokenlb` with no inherited TOKENLB_* / RUST_LOG variables, run in `dir`.
pub fn tokenlb(dir: &Path) -> Command {
    tokenlb_test_support::process::clean_command(env!("CARGO_BIN_EXE_tokenlb"), dir)
}

/// A running `tokenlb` child; SIGKILLed on drop.
pub struct Proc {
    pub child: Child,
    pub url: String,
    pub log: PathBuf,
}

impl Proc {
    /// Spawns `cmd` with stdout+stderr into `log` and waits (≤ 60 s) for a log line with
    /// "listening" and its `http://` address.
    pub fn spawn(mut cmd: Command, log: PathBuf) -> Result<Proc, String> {
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let mut child = cmd.stdout(out).stderr(err).spawn().expect("spawn tokenlb");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let addr = text.lines().find_map(listening_addr);
            if let Some(addr) = addr {
                return Ok(Proc {
                    child,
                    url: format!("http://{addr}"),
                    log,
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("exited {status}: {text}"));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("did not start in 60 s: {text}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait up to 30 s for the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Resident set size in KiB from /proc (Linux).
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// `tokenlb manager` on 127.0.0.1:0 with the test admin key, data in `dir/data`, no tokens file
/// (unless `extra` names one), log into `dir/<tag>.log`.
pub fn manager_cmd(dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = tokenlb(dir);
    cmd.env("TOKENLB_ADMIN_KEY", ADMIN_KEY)
        .args(["manager", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"));
    if !extra.contains(&"--tokens-file") {
        cmd.arg("--tokens-file").arg(dir.join("absent-tokens.json"));
    }
    cmd.args(extra);
    cmd
}

pub fn start_manager(dir: &Path, tag: &str, extra: &[&str]) -> Proc {
    Proc::spawn(manager_cmd(dir, extra), dir.join(format!("{tag}.log")))
        .unwrap_or_else(|e| panic!("manager {tag}: {e}"))
}

/// splitmix64: a tiny seeded generator (no dependency), good enough to pick moments and ops.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `TOKENLB_RELIABILITY_SEED` or the clock; prints the seed for replay.
    pub fn from_env(test: &str) -> Rng {
        let seed = std::env::var("TOKENLB_RELIABILITY_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(7)
            });
        println!("{test}: seed {seed} (replay with TOKENLB_RELIABILITY_SEED={seed})");
        Rng(seed)
    }
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..hi` (hi > lo).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }
}

/// An HTTP client for loopback tests: short timeouts so a hung server fails the test quickly.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(256)
        .build()
        .expect("http client")
}

/// `GET /api/tokens` with the admin key: every token row (page by page: the route answers
/// at most 1,000 rows at a time, with the matching `total`).
pub async fn list_tokens(http: &reqwest::Client, url: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    loop {
        let v: Value = http
            .get(format!("{url}/api/tokens?limit=1000&offset={}", rows.len()))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .expect("list tokens")
            .json()
            .await
            .expect("list json");
        let page = v["tokens"].as_array().cloned().unwrap_or_default();
        let total = v["total"].as_u64().unwrap_or(0) as usize;
        let done = page.is_empty() || rows.len() + page.len() >= total;
        rows.extend(page);
        if done {
            return rows;
        }
    }
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The files (paths) among `files` whose bytes contain `needle`.
pub fn files_containing(files: &[PathBuf], needle: &str) -> Vec<PathBuf> {
    files
        .iter()
        .filter(|p| {
            std::fs::read(p)
                .map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
                .unwrap_or(false)
        })
        .cloned()
        .collect()
}
