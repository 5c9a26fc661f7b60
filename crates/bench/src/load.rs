//! The load generator: N keep-alive connections in a closed loop, for a fixed time or a
//! fixed number of units, every unit timed.
//!
//! Each connection is one task that sends a unit of work, waits for its answer, and sends
//! the next (a closed loop, like wrk): the offered load adapts to the server, so throughput
//! and latency are measured together at a given concurrency. A run has a warm-up (connections
//! opened, caches and the allocator warmed, nothing recorded) and a measured window; a unit
//! counts when it starts and ends inside the window. Every bound is explicit: a per-unit
//! timeout, the window, and an optional unit budget. Only loopback addresses are accepted.

use crate::http1::{self, Conn, HttpError};
use crate::procs;
use crate::summary::{micros, Summary};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one unit of work is.
#[derive(Clone, Debug)]
pub enum Work {
    /// The same pre-built request every time; any other status than `expect` is an error.
    Fixed { request: Arc<Vec<u8>>, expect: u16 },
    /// `GET` a lease (the pre-built request), then `POST /api/token/report` with its id and
    /// outcome `success`: the whole pair is one unit.
    LeasePair { get: Arc<Vec<u8>>, host: String },
    /// A "call unit" (issue 15): `GET` a lease (one unit), and queue its report; the
    /// connection that fills the shared batch sends it as one `{"reports":[…]}`, as the Rust
    /// client's batcher does, inside its unit.
    CallUnit {
        get: Arc<Vec<u8>>,
        host: String,
        batch: Batch,
    },
}

/// Lease ids waiting for their batch report, shared by every connection of a run.
#[derive(Clone, Debug)]
pub struct Batch {
    size: usize,
    pending: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Batch {
    pub fn new(size: usize) -> Batch {
        Batch {
            size: size.max(1),
            pending: Arc::default(),
        }
    }

    /// Queues `lease`; the whole batch when it is full.
    fn push(&self, lease: &str) -> Option<Vec<String>> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.push(lease.to_string());
        (p.len() >= self.size).then(|| std::mem::take(&mut *p))
    }
}

/// One load run.
#[derive(Clone, Debug)]
pub struct Load {
    pub addr: SocketAddr,
    pub connections: usize,
    pub warmup: Duration,
    /// The measured window (an upper bound when `max_units` is set).
    pub duration: Duration,
    /// Stop after this many measured units (over all connections).
    pub max_units: Option<u64>,
    /// A unit that takes longer than this is an error and its connection is reopened.
    pub timeout: Duration,
    pub work: Work,
    /// Server processes whose CPU time is read over the window (for `server_cpu_us`).
    pub cpu_pids: Vec<u32>,
}

/// Why a load run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the load client only talks to loopback addresses, not {0}")]
    NotLoopback(SocketAddr),
    #[error("connections must be between 1 and 10000")]
    Connections,
}

#[derive(Debug, thiserror::Error)]
enum UnitError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("unexpected status {0}")]
    Status(u16),
    #[error("no lease id in the get answer")]
    NoLease,
    #[error("a report of the batch failed")]
    BatchItem,
}

struct Shared {
    record_from: Instant,
    end: Instant,
    budget: Option<AtomicU64>,
}

struct TaskResult {
    samples: Vec<u32>,
    errors: u64,
    last_done: Option<Instant>,
}

/// Loads `url` (`http://127.0.0.1:PORT/path`) with `connections` for `seconds` after 1 s of
/// warm-up: GETs, or lease pairs when `pair` (the URL is then the manager's get route).
pub async fn load_url(
    url: &str,
    connections: usize,
    seconds: f64,
    pair: bool,
) -> anyhow::Result<Summary> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("only http:// URLs"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let addr: SocketAddr = host
        .parse()
        .map_err(|_| anyhow::anyhow!("the URL's host must be IP:PORT, not {host:?}"))?;
    if !(0.05..=3600.0).contains(&seconds) {
        anyhow::bail!("duration must be between 0.05 and 3600 seconds");
    }
    let get = Arc::new(http1::get(host, path, ""));
    let work = if pair {
        Work::LeasePair {
            get,
            host: host.to_string(),
        }
    } else {
        Work::Fixed {
            request: get,
            expect: 200,
        }
    };
    let load = Load {
        addr,
        connections,
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs_f64(seconds),
        max_units: None,
        timeout: Duration::from_secs(5),
        work,
        cpu_pids: vec![],
    };
    Ok(run(&load).await?)
}

/// Runs `load` on the current Tokio runtime and summarises it.
pub async fn run(load: &Load) -> Result<Summary, LoadError> {
    if !load.addr.ip().is_loopback() {
        return Err(LoadError::NotLoopback(load.addr));
    }
    if load.connections == 0 || load.connections > 10_000 {
        return Err(LoadError::Connections);
    }
    let start = Instant::now();
    let shared = Arc::new(Shared {
        record_from: start + load.warmup,
        end: start + load.warmup + load.duration,
        budget: load.max_units.map(AtomicU64::new),
    });
    let tasks: Vec<_> = (0..load.connections)
        .map(|_| tokio::spawn(connection(load.clone(), shared.clone())))
        .collect();
    // CPU over the window only for timed runs (a unit budget may end the run early).
    let timed = load.max_units.is_none();
    let pids = |p: Vec<u32>| if timed { p } else { vec![] };
    let cpu = tokio::spawn(cpu_over_window(pids(load.cpu_pids.clone()), shared.clone()));
    let own = tokio::spawn(cpu_over_window(
        pids(vec![std::process::id()]),
        shared.clone(),
    ));
    let mut samples = Vec::new();
    let mut errors = 0;
    let mut last_done = None;
    for t in tasks {
        if let Ok(r) = t.await {
            samples.extend_from_slice(&r.samples);
            errors += r.errors;
            last_done = last_done.max(r.last_done);
        } else {
            errors += 1;
        }
    }
    let window = match (load.max_units, last_done) {
        (Some(_), Some(done)) => done.saturating_duration_since(shared.record_from),
        _ => load.duration,
    };
    let mut summary = Summary::from_samples(samples, errors, window);
    let per_unit = |cpu: f64| cpu * 1e6 / summary.count.max(1) as f64;
    let timed = timed && summary.count > 0;
    if let (true, Ok(Some(cpu))) = (timed, cpu.await) {
        summary.server_cpu_us = Some(per_unit(cpu));
    }
    if let (true, Ok(Some(cpu))) = (timed, own.await) {
        summary.client_cpu_us = Some(per_unit(cpu));
    }
    Ok(summary)
}

/// CPU seconds the processes used between the start and the end of the window.
async fn cpu_over_window(pids: Vec<u32>, shared: Arc<Shared>) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    let total = |pids: &[u32]| -> Option<f64> { pids.iter().map(|&p| procs::cpu_seconds(p)).sum() };
    tokio::time::sleep_until(shared.record_from.into()).await;
    let before = total(&pids)?;
    tokio::time::sleep_until(shared.end.into()).await;
    Some(total(&pids)? - before)
}

async fn connection(load: Load, shared: Arc<Shared>) -> TaskResult {
    let mut out = TaskResult {
        samples: Vec::with_capacity(4096),
        errors: 0,
        last_done: None,
    };
    let mut conn: Option<Conn> = None;
    let mut report = Vec::with_capacity(256);
    loop {
        let started = Instant::now();
        if started >= shared.end {
            break;
        }
        let measured = started >= shared.record_from;
        if measured {
            if let Some(b) = &shared.budget {
                if b.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_err()
                {
                    break;
                }
            }
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Conn::connect(load.addr).await {
                Ok(c) => conn.insert(c),
                Err(_) => {
                    out.errors += u64::from(measured);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let result = tokio::time::timeout(load.timeout, unit(c, &load.work, &mut report)).await;
        let done = Instant::now();
        let keep = match result {
            Ok(Ok(keep)) => {
                if measured && done <= shared.end {
                    out.samples.push(micros(done - started));
                    out.last_done = Some(done);
                }
                keep
            }
            Ok(Err(_)) | Err(_) => {
                out.errors += u64::from(measured);
                false
            }
        };
        if !keep {
            conn = None;
        }
    }
    out
}

/// One unit on `c`; `Ok(false)` when the server asked to close the connection.
async fn unit(c: &mut Conn, work: &Work, report: &mut Vec<u8>) -> Result<bool, UnitError> {
    match work {
        Work::Fixed { request, expect } => {
            let r = c.send(request).await?;
            if r.status != *expect {
                return Err(UnitError::Status(r.status));
            }
            Ok(!r.close)
        }
        Work::LeasePair { get, host } => {
            let r = c.send(get).await?;
            if r.status != 200 {
                return Err(UnitError::Status(r.status));
            }
            let lease = http1::json_str(c.body(&r), "lease").ok_or(UnitError::NoLease)?;
            let body = format!(r#"{{"lease":"{lease}","outcome":"success","latency_ms":1}}"#);
            report.clear();
            report.extend_from_slice(&http1::post(
                host,
                "/api/token/report",
                "application/json",
                body.as_bytes(),
                "",
            ));
            if r.close {
                return Err(UnitError::Http(HttpError::Closed));
            }
            let r = c.send(report).await?;
            if r.status != 200 {
                return Err(UnitError::Status(r.status));
            }
            Ok(!r.close)
        }
        Work::CallUnit { get, host, batch } => {
            let r = c.send(get).await?;
            if r.status != 200 {
                return Err(UnitError::Status(r.status));
            }
            let lease = http1::json_str(c.body(&r), "lease").ok_or(UnitError::NoLease)?;
            let Some(full) = batch.push(lease) else {
                return Ok(!r.close);
            };
            if r.close {
                return Err(UnitError::Http(HttpError::Closed));
            }
            let mut body = String::with_capacity(full.len() * 64 + 16);
            body.push_str(r#"{"reports":["#);
            for (i, id) in full.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                body.push_str(r#"{"lease":""#);
                body.push_str(id);
                body.push_str(r#"","outcome":"success","latency_ms":1}"#);
            }
            body.push_str("]}");
            report.clear();
            report.extend_from_slice(&http1::post(
                host,
                "/api/token/report",
                "application/json",
                body.as_bytes(),
                "",
            ));
            let r = c.send(report).await?;
            if r.status != 200 {
                return Err(UnitError::Status(r.status));
            }
            if c.body(&r).windows(8).any(|w| w == b"\"error\"") {
                return Err(UnitError::BatchItem);
            }
            Ok(!r.close)
        }
    }
}
