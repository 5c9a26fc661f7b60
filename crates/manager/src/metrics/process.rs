//! The standard `process_*` series, read from `/proc/self` at scrape time (Linux only;
//! elsewhere, and for any file that cannot be read, the series is left out).
//!
//! As in the Prometheus client libraries (`prometheus/procfs`), CPU times in
//! `/proc/self/stat` are taken in ticks of 1/100 s: `USER_HZ` is 100 on every Linux ABI
//! tokenlb runs on, and reading `sysconf` would take `unsafe` code, which the workspace
//! forbids.

use super::header;
use std::fmt::Write;

const USER_HZ: f64 = 100.0;

/// What `/proc` says about this process.
#[derive(Debug, Default, PartialEq)]
pub struct ProcessStats {
    pub resident_bytes: Option<u64>,
    pub cpu_seconds: Option<f64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub start_time_seconds: Option<f64>,
}

impl ProcessStats {
    /// Reads `/proc/self/{status,stat,fd,limits}` and `/proc/stat`.
    pub fn read() -> ProcessStats {
        let read = |p: &str| std::fs::read_to_string(p).ok();
        let stat = read("/proc/self/stat");
        let fields = stat.as_deref().and_then(stat_fields);
        let btime = read("/proc/stat").as_deref().and_then(boot_time);
        ProcessStats {
            resident_bytes: read("/proc/self/status").as_deref().and_then(vm_rss),
            cpu_seconds: fields.map(|(utime, stime, _)| (utime + stime) as f64 / USER_HZ),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as u64),
            max_fds: read("/proc/self/limits")
                .as_deref()
                .and_then(max_open_files),
            start_time_seconds: fields
                .zip(btime)
                .map(|((_, _, start), boot)| boot as f64 + start as f64 / USER_HZ),
        }
    }

    /// Writes every series, each with HELP and TYPE; unread values are left out.
    pub fn render(&self, out: &mut String) {
        let series: [(&str, &str, &str, Option<f64>); 5] = [
            (
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
                self.resident_bytes.map(|v| v as f64),
            ),
            (
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds.",
                self.cpu_seconds,
            ),
            (
                "process_open_fds",
                "gauge",
                "Number of open file descriptors.",
                self.open_fds.map(|v| v as f64),
            ),
            (
                "process_max_fds",
                "gauge",
                "Maximum number of open file descriptors.",
                self.max_fds.map(|v| v as f64),
            ),
            (
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since the Unix epoch in seconds.",
                self.start_time_seconds,
            ),
        ];
        for (name, kind, help, value) in series {
            header(out, name, kind, help);
            if let Some(v) = value {
                let _ = writeln!(out, "{name} {v}");
            }
        }
    }
}

/// `VmRSS:   1234 kB` → bytes.
fn vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// (utime, stime, starttime) in ticks. The command name (field 2) may hold spaces and
/// parentheses, so the fields are counted from the last `)`.
fn stat_fields(stat: &str) -> Option<(u64, u64, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime 15, starttime 22.
    let at = |n: usize| f.get(n - 3)?.parse().ok();
    Some((at(14)?, at(15)?, at(22)?))
}

/// `btime 1700000000` in `/proc/stat`.
fn boot_time(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// The soft limit of `Max open files` in `/proc/self/limits`.
fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_parsed() {
        assert_eq!(
            vm_rss("Name:\tx\nVmRSS:\t  2048 kB\n"),
            Some(2 * 1024 * 1024)
        );
        let stat = "42 (a (weird) name) S 1 2 3 4 5 6 7 8 9 10 150 50 0 0 20 0 1 0 9000 0 0";
        assert_eq!(stat_fields(stat), Some((150, 50, 9000)));
        assert_eq!(
            boot_time("cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
        let limits = "Limit Soft Limit Hard Limit Units\nMax open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
        assert_eq!(stat_fields("garbage"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_read() {
        let p = ProcessStats::read();
        assert!(p.resident_bytes.unwrap_or(0) > 0);
        assert!(p.open_fds.unwrap_or(0) > 0);
        assert!(p.max_fds.unwrap_or(0) >= p.open_fds.unwrap_or(0));
        assert!(p.start_time_seconds.unwrap_or(0.0) > 1_600_000_000.0);
    }
}
