//! `/metrics` after real traffic: the DESIGN §13 series exist, carry sensible values, never
//! a secret or a raw request value, and pass `promtool check metrics`.

use crate::common::TestServer;
use crate::promtool;
use serde_json::json;
use std::collections::HashSet;
use tokenlb_core::OutcomeClass;
use tokenlb_test_support::metrics::{scrape, value};

const SECRET_A: &str = "sk-obs-secret-aaaaaaaaaaaa";
const SECRET_B: &str = "sk-obs-secret-bbbbbbbbbbbb";
const ODD_NAME: &str = "we\"ird\\name 名";

fn v(text: &str, series: &str) -> f64 {
    value(text, series).unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}

async fn traffic(s: &TestServer) -> (String, String) {
    let a = s
        .add_json(json!({ "token": SECRET_A, "name": ODD_NAME, "pool": "obs" }))
        .await;
    let in_2h = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let b = s
        .add_json(
            json!({ "token": SECRET_B, "name": "second", "pool": "obs", "expires_at": in_2h }),
        )
        .await;
    for _ in 0..6 {
        let lease: serde_json::Value = s.lease("?pool=obs").await.json().await.unwrap();
        let r = s
            .report(json!({"lease": lease["lease"], "outcome": "success", "latency_ms": 120}))
            .await;
        assert!(r.status().is_success());
    }
    let r = s
        .report(json!({"id": a, "outcome": "auth", "status": 401, "latency_ms": 40}))
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    // A method no one standardised: counted as `other`, never by its name.
    let odd = reqwest::Method::from_bytes(b"FROBNICATE").unwrap();
    let r = s
        .http
        .request(odd, s.u("/api/token/get"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    (a, b)
}

#[tokio::test]
async fn the_design_series_are_exported_with_sensible_values() {
    let s = TestServer::start_with(|c| c.metrics.per_token = true).await;
    let (a, b) = traffic(&s).await;
    s.state
        .metrics()
        .proxy_request("upstream-a", OutcomeClass::Success);
    let text = scrape(&s.http, &s.url).await;

    let gets = v(
        &text,
        "tokenlb_http_request_duration_seconds_count{route=\"/api/token/get\",method=\"GET\",status=\"2xx\"}",
    );
    assert!(gets >= 6.0, "{gets}");
    assert_eq!(
        v(&text, "tokenlb_http_request_duration_seconds_bucket{route=\"/api/token/get\",method=\"GET\",status=\"2xx\",le=\"+Inf\"}"),
        gets
    );
    assert!(text.contains("method=\"other\",status=\"4xx\""), "{text}");
    assert!(!text.contains("FROBNICATE"));
    assert!(v(&text, "tokenlb_pick_duration_seconds_count{pool=\"obs\"}") >= 6.0);
    let ok = v(
        &text,
        "tokenlb_reported_latency_seconds_count{pool=\"obs\",class=\"success\"}",
    );
    assert_eq!(ok, 6.0);
    let sum = v(
        &text,
        "tokenlb_reported_latency_seconds_sum{pool=\"obs\",class=\"success\"}",
    );
    assert!(
        (sum - ok * 0.12).abs() < 1e-6,
        "{sum} for {ok} reports of 120 ms"
    );
    assert_eq!(
        v(
            &text,
            "tokenlb_reported_latency_seconds_bucket{pool=\"obs\",class=\"success\",le=\"0.1\"}"
        ),
        0.0
    );
    assert_eq!(
        v(
            &text,
            "tokenlb_reported_latency_seconds_bucket{pool=\"obs\",class=\"success\",le=\"0.25\"}"
        ),
        ok
    );
    assert_eq!(
        v(&text, "tokenlb_state_changes_total{pool=\"obs\",from=\"active\",to=\"invalid\",reason=\"auth_failure\"}"),
        1.0
    );
    assert_eq!(v(&text, "tokenlb_tokens_eligible{pool=\"obs\"}"), 1.0);
    assert_eq!(v(&text, "tokenlb_tokens_expiring_24h{pool=\"obs\"}"), 1.0);
    assert_eq!(
        v(&text, "tokenlb_tokens_expiring_24h{pool=\"default\"}"),
        0.0
    );
    assert_eq!(
        v(
            &text,
            "tokenlb_proxy_requests_total{proxy=\"upstream-a\",class=\"success\"}"
        ),
        1.0
    );
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        v(
            &text,
            &format!("tokenlb_build_info{{version=\"{version}\"}}")
        ),
        1.0
    );
    assert_eq!(v(&text, "tokenlb_notify_dropped_total"), 0.0);

    // Per-token series: id and name (escaped), never the secret.
    let odd = "we\\\"ird\\\\name 名";
    let la = format!("pool=\"obs\",token_id=\"{a}\",name=\"{odd}\"");
    assert_eq!(
        v(
            &text,
            &format!("tokenlb_token_state{{{la},state=\"invalid\"}}")
        ),
        1.0
    );
    assert_eq!(
        v(
            &text,
            &format!("tokenlb_token_outcomes_total{{{la},class=\"auth\"}}")
        ),
        1.0
    );
    let lb = format!("pool=\"obs\",token_id=\"{b}\",name=\"second\"");
    assert_eq!(
        v(
            &text,
            &format!("tokenlb_token_state{{{lb},state=\"active\"}}")
        ),
        1.0
    );
    assert_eq!(v(&text, &format!("tokenlb_token_in_flight{{{lb}}}")), 0.0);
    let ewma: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("tokenlb_token_latency_ewma_seconds{pool=\"obs\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(
        !ewma.is_empty() && ewma.iter().all(|x| *x >= 0.04 && *x <= 0.12 + 1e-9),
        "{ewma:?}"
    );

    // Process series, from /proc on Linux.
    if cfg!(target_os = "linux") {
        assert!(v(&text, "process_resident_memory_bytes") > 1e6);
        assert!(v(&text, "process_open_fds") > 0.0);
        assert!(v(&text, "process_max_fds") >= v(&text, "process_open_fds"));
        assert!(v(&text, "process_cpu_seconds_total") >= 0.0);
        let now = chrono::Utc::now().timestamp() as f64;
        let start = v(&text, "process_start_time_seconds");
        assert!(start <= now + 1.0 && start > now - 24.0 * 3600.0, "{start}");
    }

    assert_no_secret(&text);
    assert_every_series_has_help_and_type(&text);
    if promtool::wanted() {
        promtool::run(&["check", "metrics"], std::path::Path::new("."), &text);
    }
    s.stop().await;
}

#[tokio::test]
async fn per_token_series_are_off_by_default() {
    let s = TestServer::start().await;
    s.add_json(json!({ "token": SECRET_A, "name": "a" })).await;
    let text = scrape(&s.http, &s.url).await;
    assert!(!text.contains("tokenlb_token_"), "{text}");
    assert!(text.contains("# TYPE tokenlb_proxy_requests_total counter"));
    assert_no_secret(&text);
    s.stop().await;
}

fn assert_no_secret(text: &str) {
    for secret in [SECRET_A, SECRET_B, "sk-obs", "…"] {
        assert!(!text.contains(secret), "{secret:?} in /metrics");
    }
}

/// Every sample belongs to a family with a `# HELP` and a `# TYPE` line.
fn assert_every_series_has_help_and_type(text: &str) {
    let typed: HashSet<String> = promtool::families(text)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let helped: HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name = line.split(['{', ' ']).next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
            .unwrap_or(name);
        assert!(typed.contains(family), "{name} has no TYPE");
        assert!(helped.contains(family), "{name} has no HELP");
    }
}
