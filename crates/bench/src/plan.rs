//! What a run measures: the full plan (issue 6) and the quick smoke plan (CI).
//!
//! The full plan takes a few minutes: the baseline at 1, 8, 32 and 128 connections; the
//! manager at 10, 1,000 and 100,000 tokens with `round_robin` and `best`, `get` alone and
//! get + report pairs at 32 connections, plus a connection sweep on the smallest pool; the
//! health-sweep and fast-flush variants; the web API's cached and realtime answers against
//! the emulator called directly; the baseline once more at the end to show drift. The quick
//! plan keeps one of each kind at a fraction of a second each, so CI sees every path work.

use std::time::Duration;

/// The measurements of one run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub mode: &'static str,
    pub warmup: Duration,
    pub duration: Duration,
    /// Per-unit timeout of the load client.
    pub timeout: Duration,
    /// Connection counts of the sweeps (baseline, and the manager on the smallest pool).
    pub conns: Vec<usize>,
    /// Connections of the pool-size matrix and the goals.
    pub matrix_conns: usize,
    pub sizes: Vec<usize>,
    pub strategies: Vec<&'static str>,
    /// Strategy of the connection sweep.
    pub sweep_strategy: &'static str,
    /// Run the health-sweep / flush variants.
    pub variants: bool,
    /// Connections of the web API's cached answer.
    pub webapi_conns: Vec<usize>,
    /// Connections of the realtime-vs-direct comparison.
    pub realtime_conns: Vec<usize>,
    /// Run the manager's pool-size matrix.
    pub managers: bool,
    /// Run the web API's cached and realtime measurements.
    pub webapi: bool,
    /// Attempts of each load run; the one with the median rate is kept.
    pub repeat: usize,
    /// Measure with wrk too (at the matrix's connections), when it is installed.
    pub wrk: bool,
    /// Measure the baseline behind tokenlb-listen as a second row.
    pub listen_baseline: bool,
}

impl Plan {
    pub fn full() -> Plan {
        Plan {
            mode: "full",
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
            conns: vec![1, 8, 32, 128],
            matrix_conns: 32,
            sizes: vec![10, 1_000, 100_000],
            strategies: vec!["round_robin", "best"],
            sweep_strategy: "best",
            variants: true,
            webapi_conns: vec![1, 32],
            realtime_conns: vec![1, 8],
            managers: true,
            webapi: true,
            repeat: 1,
            wrk: crate::wrk::available(),
            listen_baseline: true,
        }
    }

    pub fn quick() -> Plan {
        Plan {
            mode: "quick",
            warmup: Duration::from_millis(100),
            duration: Duration::from_millis(300),
            timeout: Duration::from_secs(5),
            conns: vec![8],
            matrix_conns: 8,
            sizes: vec![10],
            strategies: vec!["round_robin"],
            sweep_strategy: "round_robin",
            variants: false,
            webapi_conns: vec![8],
            realtime_conns: vec![1],
            managers: true,
            webapi: true,
            repeat: 1,
            wrk: false,
            listen_baseline: false,
        }
    }

    /// Leaves out the named parts (`managers`, `variants`, `webapi`, `sweep`, `wrk`,
    /// `listen`) for a partial run while working on one path; the baseline is always
    /// measured.
    pub fn skipping(mut self, parts: &[String]) -> anyhow::Result<Plan> {
        for part in parts {
            match part.as_str() {
                "managers" => self.managers = false,
                "variants" => self.variants = false,
                "webapi" => self.webapi = false,
                "sweep" => self.conns.retain(|&c| c == self.matrix_conns),
                "wrk" => self.wrk = false,
                "listen" => self.listen_baseline = false,
                other => {
                    anyhow::bail!(
                        "cannot skip {other:?}: use managers, variants, webapi, sweep, wrk or listen"
                    )
                }
            }
        }
        Ok(self)
    }

    /// Overrides the pool sizes and strategies of the matrix (empty: keep the plan's).
    pub fn with_matrix(
        mut self,
        sizes: Vec<usize>,
        strategies: Vec<String>,
    ) -> anyhow::Result<Plan> {
        if !sizes.is_empty() {
            if sizes.iter().any(|&n| n == 0 || n > 1_000_000) {
                anyhow::bail!("pool sizes must be between 1 and 1,000,000");
            }
            self.sizes = sizes;
        }
        if !strategies.is_empty() {
            const KNOWN: &[&str] = &[
                "round_robin",
                "best",
                "weighted",
                "random",
                "least_in_flight",
                "latency",
            ];
            self.strategies = strategies
                .iter()
                .map(|s| {
                    KNOWN
                        .iter()
                        .copied()
                        .find(|k| k == s)
                        .ok_or_else(|| anyhow::anyhow!("unknown strategy {s:?}"))
                })
                .collect::<anyhow::Result<_>>()?;
        }
        Ok(self)
    }

    /// Overrides the measured window (and scales the warm-up to a fifth of it, ≥ 100 ms).
    pub fn with_duration(mut self, d: Duration) -> Plan {
        self.duration = d;
        self.warmup = (d / 5).max(Duration::from_millis(100));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_plan_covers_the_issue() {
        let p = Plan::full();
        assert_eq!(p.sizes, [10, 1_000, 100_000]);
        assert_eq!(p.conns, [1, 8, 32, 128]);
        assert_eq!(p.matrix_conns, 32);
        assert!(p.strategies.contains(&"round_robin") && p.strategies.contains(&"best"));
        assert!(p.variants);
    }

    #[test]
    fn quick_plan_is_short() {
        let p = Plan::quick();
        assert!(p.warmup + p.duration <= Duration::from_millis(500));
        let d = Plan::full().with_duration(Duration::from_secs(2));
        assert_eq!(
            (d.duration, d.warmup),
            (Duration::from_secs(2), Duration::from_millis(400))
        );
    }
}
