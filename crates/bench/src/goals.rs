//! The goals of issues 6 and 15, checked against the rows of one run.
//!
//! A goal over several configurations (every pool size, both strategies) is met only when
//! each of them meets it; the text names the worst. Goals whose rows this run did not
//! measure (the quick mode skips most) come out as "not measured", never as met.

use crate::report::{Goal, Results, Row};
use crate::run::AFTER_LOAD;

/// Pool sizes the goals name.
pub const SMALL: usize = 10;
pub const MID: usize = 1_000;
pub const LARGE: usize = 100_000;
/// Connections the throughput goals are stated at.
pub const GOAL_CONNS: usize = 32;
/// A variant's p99 may be this much above its reference before we say it "shows".
pub const VARIANT_P99_SLACK: f64 = 1.25;

fn rows<'a>(res: &'a Results, group: &'a str, conns: usize) -> impl Iterator<Item = &'a Row> {
    res.rows
        .iter()
        .filter(move |r| r.group == group && r.connections == conns)
}

fn label(r: &Row) -> String {
    format!(
        "{} tokens {}",
        r.tokens.unwrap_or(0),
        r.strategy.as_deref().unwrap_or("-")
    )
}

/// The worst row of `group` at the goal's connections by rate ratio, with a p99 bound.
fn ratio_goal(res: &Results, goal: &str, group: &str, min_rate: f64, max_p99: Option<f64>) -> Goal {
    let mut worst: Option<(&Row, bool)> = None;
    let mut all_met = true;
    for r in rows(res, group, GOAL_CONNS) {
        let (Some(rate), p99) = (r.rate_ratio, r.p99_ratio) else {
            continue;
        };
        let met = rate >= min_rate && max_p99.is_none_or(|m| p99.is_some_and(|p| p <= m));
        all_met &= met;
        if worst.is_none_or(|(w, _)| rate < w.rate_ratio.unwrap_or(f64::MAX)) {
            worst = Some((r, met));
        }
    }
    match worst {
        None => not_measured(goal),
        Some((w, _)) => Goal {
            goal: goal.to_string(),
            measured: format!(
                "worst {}: {:.2}× rate, {:.2}× p99",
                label(w),
                w.rate_ratio.unwrap_or(0.0),
                w.p99_ratio.unwrap_or(0.0)
            ),
            met: Some(all_met),
        },
    }
}

fn not_measured(goal: &str) -> Goal {
    Goal {
        goal: goal.to_string(),
        measured: "—".to_string(),
        met: None,
    }
}

/// 100,000 tokens within 15 % of 1,000 tokens, for each group and strategy measured at both.
fn size_goal(res: &Results) -> Goal {
    let goal = "100,000 tokens within 15 % of 1,000 tokens' throughput";
    let mut parts = Vec::new();
    let mut met = true;
    for group in ["get", "get+report", "wrk get"] {
        for small in rows(res, group, GOAL_CONNS).filter(|r| r.tokens == Some(MID)) {
            let id = Row::key(group, Some(LARGE), small.strategy.as_deref(), GOAL_CONNS);
            let Some(large) = res.row(&id) else { continue };
            let ratio = large.summary.rate / small.summary.rate.max(1e-9);
            met &= ratio >= 0.85;
            parts.push(format!(
                "{group} {}: {ratio:.2}",
                small.strategy.as_deref().unwrap_or("-")
            ));
        }
    }
    if parts.is_empty() {
        return not_measured(goal);
    }
    Goal {
        goal: goal.to_string(),
        measured: format!("100k ÷ 1k rate: {}", parts.join(", ")),
        met: Some(met),
    }
}

fn realtime_goal(res: &Results) -> Goal {
    let goal = "web API realtime overhead over the direct emulator call ≤ 0.25 ms at p50";
    match rows(res, "webapi realtime", 1).find(|r| r.p50_delta_us.is_some()) {
        None => not_measured(goal),
        Some(r) => {
            let d = r.p50_delta_us.unwrap_or(f64::MAX);
            Goal {
                goal: goal.to_string(),
                measured: format!("{:+.3} ms at 1 connection", d / 1000.0),
                met: Some(d <= 250.0),
            }
        }
    }
}

fn memory_goal(res: &Results) -> Goal {
    let goal = "manager with 100,000 tokens < 150 MiB resident after a load run";
    let worst = res
        .memory
        .iter()
        .filter(|m| m.server == "manager" && m.tokens == Some(LARGE) && m.when == AFTER_LOAD)
        .map(|m| m.rss_kib)
        .max();
    let settled = res
        .memory
        .iter()
        .find(|m| m.server == "manager" && m.tokens == Some(LARGE) && m.when.starts_with("10 s"))
        .map_or(String::new(), |m| {
            format!(" ({:.1} MiB 10 s later)", m.rss_kib as f64 / 1024.0)
        });
    match worst {
        None => not_measured(goal),
        Some(k) => Goal {
            goal: goal.to_string(),
            measured: format!(
                "{:.1} MiB right after the load runs{settled}",
                k as f64 / 1024.0
            ),
            met: Some(k < 150 * 1024),
        },
    }
}

fn variant_goal(res: &Results) -> Goal {
    let goal = "health-check sweep and stats flushing do not show in p99";
    let variants: Vec<&Row> = res
        .rows
        .iter()
        .filter(|r| r.group.starts_with("variant") && r.p99_ratio.is_some())
        .collect();
    if variants.is_empty() {
        return not_measured(goal);
    }
    let met = variants
        .iter()
        .all(|r| r.p99_ratio.is_some_and(|p| p <= VARIANT_P99_SLACK));
    let parts: Vec<String> = variants
        .iter()
        .map(|r| format!("{}: {:.2}× p99", r.label, r.p99_ratio.unwrap_or(0.0)))
        .collect();
    Goal {
        goal: format!("{goal} (p99 ≤ {VARIANT_P99_SLACK}× the same manager without them)"),
        measured: parts.join("; "),
        met: Some(met),
    }
}

/// Every goal of issues 6 and 15 this harness can check. (Pick time is criterion's, the
/// million-token figures are `--scale`'s, cluster mode is `bench/cluster.sh`'s: see
/// BENCHMARKS.md.)
pub fn evaluate(res: &Results) -> Vec<Goal> {
    let mut goals = Vec::new();
    for (client, prefix) in [("harness client", ""), ("wrk", "wrk ")] {
        let g = |group: &str| format!("{prefix}{group}");
        goals.push(ratio_goal(
            res,
            &format!("token/get ≥ 0.85× baseline req/s at 32 connections, p99 ≤ 1.5× baseline's ({client})"),
            &g("get"),
            0.85,
            Some(1.5),
        ));
        goals.push(ratio_goal(
            res,
            &format!(
                "call unit (get + its report in a batch of 64) ≥ 0.75× baseline req/s ({client})"
            ),
            &g("call unit"),
            0.75,
            None,
        ));
        goals.push(ratio_goal(
            res,
            &format!("get + report pairs ≥ 0.42× baseline req/s at 32 connections ({client})"),
            &g("get+report"),
            0.42,
            None,
        ));
    }
    goals.push(size_goal(res));
    goals.push(ratio_goal(
        res,
        "cached web API answer ≥ 0.8× baseline req/s at 32 connections",
        "webapi cached",
        0.8,
        None,
    ));
    goals.push(realtime_goal(res));
    goals.push(memory_goal(res));
    goals.push(variant_goal(res));
    goals
}
