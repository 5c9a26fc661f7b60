//! A description of the machine a run was measured on (for the results and BENCHMARKS.md):
//! CPUs, CPU model, memory, kernel, and the commit and compiler that built the servers.
//!
//! Read from /proc and from the usual tools; anything that cannot be read is left out, since
//! a missing line must not stop a measurement.

use std::process::Command;

fn cmd(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn cpuinfo_field(cpuinfo: &str, field: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// `(name, value)` lines describing this machine.
pub fn describe() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    if cpus > 0 {
        out.push(("CPUs (online)".into(), cpus.to_string()));
    }
    if let Some(model) = cpuinfo_field(&cpuinfo, "model name") {
        out.push(("CPU model".into(), model));
    }
    if let Ok(meminfo) = std::fs::read_to_string("/proc/meminfo") {
        if let Some(kb) = cpuinfo_field(&meminfo, "MemTotal")
            .and_then(|v| v.split_whitespace().next().map(str::to_string))
            .and_then(|v| v.parse::<u64>().ok())
        {
            out.push((
                "memory".into(),
                format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0),
            ));
        }
    }
    if let Ok(k) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        out.push(("kernel".into(), k.trim().to_string()));
    }
    if let Some(v) = cmd("rustc", &["--version"]) {
        out.push(("rustc".into(), v));
    }
    if let Some(v) = cmd("git", &["rev-parse", "--short", "HEAD"]) {
        out.push(("commit".into(), v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuinfo_fields_are_read() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC\nprocessor\t: 1\n";
        assert_eq!(
            cpuinfo_field(text, "model name").as_deref(),
            Some("AMD EPYC")
        );
        assert_eq!(cpuinfo_field(text, "flags"), None);
    }

    #[test]
    fn describe_names_the_cpus_on_linux() {
        let d = describe();
        assert!(d.iter().any(|(k, _)| k == "CPUs (online)"));
    }
}
