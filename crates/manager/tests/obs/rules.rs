//! The Grafana dashboard and the Prometheus rules: promtool accepts the rules and their unit
//! tests prove each alert fires, and every metric either names is one a real manager
//! exports.

use crate::common::TestServer;
use crate::promtool;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn deploy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

#[test]
fn promtool_accepts_the_rules_and_every_alert_fires_in_its_unit_test() {
    if !promtool::wanted() {
        return;
    }
    let dir = deploy().join("prometheus");
    let out = promtool::run(&["check", "rules", "tokenlb-rules.yml"], &dir, "");
    assert!(out.contains("SUCCESS"), "{out}");
    let out = promtool::run(&["test", "rules", "tokenlb-rules.test.yml"], &dir, "");
    assert!(out.contains("SUCCESS"), "{out}");
    // Each alert is exercised by the unit tests with at least one firing expectation.
    let rules = std::fs::read_to_string(dir.join("tokenlb-rules.yml")).unwrap();
    let tests = std::fs::read_to_string(dir.join("tokenlb-rules.test.yml")).unwrap();
    for alert in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        let fires = tests
            .split("alertname: ")
            .skip(1)
            .any(|t| t.starts_with(alert) && t.contains("exp_labels"));
        assert!(fires, "no unit test makes {alert} fire");
    }
}

/// Metric names in PromQL text: `tokenlb_…` and `process_…` identifiers.
fn names_in(expr: &str, out: &mut BTreeSet<String>) {
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &expr[i..];
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if boundary && (rest.starts_with("tokenlb_") || rest.starts_with("process_")) {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            out.insert(rest[..end].to_string());
            i += end;
        } else {
            i += 1;
        }
    }
}

fn dashboard_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr" | "definition", Value::String(s)) => out.push(s.clone()),
                    _ => dashboard_exprs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| dashboard_exprs(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_dashboard_and_the_rules_name_only_exported_metrics() {
    let text = std::fs::read_to_string(deploy().join("grafana/tokenlb.json")).unwrap();
    let dash: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert_eq!(dash["__inputs"][0]["name"], "DS_PROMETHEUS");
    let mut exprs = Vec::new();
    dashboard_exprs(&dash, &mut exprs);
    assert!(exprs.len() >= 15, "{exprs:?}");
    for p in dash["panels"].as_array().unwrap() {
        if p["type"] != "row" {
            assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{}", p["title"]);
        }
    }
    let rules = std::fs::read_to_string(deploy().join("prometheus/tokenlb-rules.yml")).unwrap();
    let mut names = BTreeSet::new();
    for e in &exprs {
        names_in(e, &mut names);
    }
    // The rules' expressions (and their annotations, which point at metrics too).
    names_in(&rules, &mut names);
    assert!(
        names.contains("tokenlb_pick_duration_seconds_bucket"),
        "{names:?}"
    );

    // A real scrape, with every family present: traffic, a state change, an HTTP request.
    let s = TestServer::start().await;
    s.add_json(json!({ "token": "sk-rules-secret-aaaaaaaaaa", "name": "a" }))
        .await;
    let lease: Value = s.lease("").await.json().await.unwrap();
    s.report(json!({"lease": lease["lease"], "outcome": "rate_limited", "latency_ms": 5}))
        .await;
    let scrape = tokenlb_test_support::metrics::scrape(&s.http, &s.url).await;
    s.stop().await;
    let mut exported = BTreeSet::new();
    for (family, kind) in promtool::families(&scrape) {
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                exported.insert(format!("{family}{suffix}"));
            }
        }
        exported.insert(family);
    }
    let missing: Vec<_> = names.difference(&exported).collect();
    assert!(missing.is_empty(), "named but not exported: {missing:?}");
}
