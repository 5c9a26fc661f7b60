//! The self-test `tokenlb up` runs once its services listen, as the seed's launcher did: get a
//! token from the manager, list the folders, list the files of a folder, get a download link
//! — each over HTTP like a user, each printed as one ✓ / ✗ line.
//!
//! It tests what a user would try next, so it uses the public routes only and prints short
//! results: names, counts, the answer's source; a token only masked, a link without its query
//! (which may carry credentials). The token it gets is released at once (outcome `unknown`,
//! which counts neither as success nor failure), so the test leaves no trace in the stats.

use reqwest::{Client, StatusCode};
use serde_json::Value;
use std::time::Duration;
use tokenlb_core::secret::mask;
use tokenlb_core::Secret;

/// What to test.
pub struct Plan {
    pub manager_url: String,
    /// Bearer key for the manager's client routes (`None`: loopback access).
    pub key: Option<Secret>,
    /// The admin key, to name the tokens that left rotation during the test.
    pub admin_key: Option<Secret>,
    pub pool: String,
    pub webapi_url: String,
}

/// How one step went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Passed,
    Failed,
    Skipped,
}

/// What the self-test found.
#[derive(Debug, Default)]
pub struct Report {
    pub steps: Vec<Step>,
    /// The manager had no eligible token in the pool (503).
    pub no_token: bool,
    /// The folder and file the listing and download steps used.
    pub folder: Option<String>,
    pub file: Option<String>,
    /// Tokens of the pool that left rotation while the test ran ("name: state (reason)").
    pub left_rotation: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        !self.steps.contains(&Step::Failed)
    }

    pub fn count(&self, step: Step) -> usize {
        self.steps.iter().filter(|s| **s == step).count()
    }

    fn record(&mut self, label: &str, result: Result<String, String>) -> bool {
        match result {
            Ok(text) => {
                println!("  ✓ {label:<15} {text}");
                self.steps.push(Step::Passed);
                true
            }
            Err(text) => {
                println!("  ✗ {label:<15} {text}");
                self.steps.push(Step::Failed);
                false
            }
        }
    }

    fn skip(&mut self, label: &str, why: &str) {
        println!("  – {label:<15} skipped: {why}");
        self.steps.push(Step::Skipped);
    }
}

/// Runs the four steps; never fails as a whole (a broken step is a ✗ line).
pub async fn run(plan: &Plan) -> Report {
    let mut report = Report::default();
    println!("Self-test (over HTTP, like a user):");
    let http = match Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(90))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            report.record("HTTP client", Err(format!("cannot build one: {e}")));
            return report;
        }
    };
    let active_before = active_tokens(&http, plan).await;
    steps(&http, plan, &mut report).await;
    // A token that went invalid or cooling while the test ran is news, even when every step
    // passed on another token (issue 14: the self-test said "passed" and nothing else).
    if let (Some(before), Some(after)) = (active_before, active_tokens(&http, plan).await) {
        if after < before {
            report.left_rotation = out_of_rotation(&http, plan).await;
            for line in &report.left_rotation {
                println!("  ! during the self-test a token left rotation: {line}");
            }
        }
    }
    report
}

async fn steps(http: &Client, plan: &Plan, report: &mut Report) {
    let token = get_token(http, plan, report).await;
    if !report.record("get a token", token) {
        for label in ["list folders", "list files", "download link"] {
            report.skip(label, "needs a token");
        }
        return;
    }
    let folders = list_folders(http, plan).await;
    let names = match &folders {
        Ok((_, names)) => names.clone(),
        Err(_) => Vec::new(),
    };
    if !report.record("list folders", folders.map(|(text, _)| text)) {
        report.skip("list files", "needs the folder list");
        report.skip("download link", "needs the folder list");
        return;
    }
    let Some(folder) = pick_folder(&names) else {
        report.skip("list files", "the drive has no folders");
        report.skip("download link", "the drive has no folders");
        return;
    };
    report.folder = Some(folder.clone());
    let files = list_files(http, plan, &folder).await;
    let file = files.as_ref().ok().and_then(|(_, f)| f.clone());
    if !report.record("list files", files.map(|(text, _)| text)) {
        report.skip("download link", "needs the file list");
        return;
    }
    let Some(file) = file else {
        report.skip("download link", &format!("{folder} holds no files"));
        return;
    };
    report.file = Some(file.clone());
    let link = download_link(http, plan, &format!("{folder}/{file}")).await;
    report.record("download link", link);
}

/// The pool's active token count (`None` when the manager does not say).
async fn active_tokens(http: &Client, plan: &Plan) -> Option<u64> {
    let mut req = http
        .get(format!("{}/api/token/stats", plan.manager_url))
        .query(&[("pool", plan.pool.as_str()), ("limit", "0")]);
    if let Some(k) = &plan.key {
        req = req.bearer_auth(k.expose());
    }
    let (status, body) = send(req).await.ok()?;
    (status == StatusCode::OK)
        .then(|| body.get("active_tokens").and_then(Value::as_u64))
        .flatten()
}

/// "name: state (reason)" of the pool's tokens that are not active now.
async fn out_of_rotation(http: &Client, plan: &Plan) -> Vec<String> {
    let mut req = http
        .get(format!("{}/api/tokens", plan.manager_url))
        .query(&[("pool", plan.pool.as_str()), ("limit", "20")])
        .query(&[("sort", "-last_used")]);
    if let Some(k) = &plan.admin_key {
        req = req.bearer_auth(k.expose());
    }
    let Ok((StatusCode::OK, body)) = send(req).await else {
        return vec!["(the token list needs the admin key; see the admin UI)".to_string()];
    };
    body.get("tokens")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| t.get("state").and_then(Value::as_str) != Some("active"))
        .map(|t| {
            format!(
                "{}: {} ({})",
                text(t, "name"),
                text(t, "state"),
                t.get("state_reason")
                    .and_then(Value::as_str)
                    .unwrap_or("no reason given")
            )
        })
        .collect()
}

async fn get_token(http: &Client, plan: &Plan, report: &mut Report) -> Result<String, String> {
    let mut req = http
        .get(format!("{}/api/token/get", plan.manager_url))
        .query(&[("strategy", "best"), ("pool", plan.pool.as_str())]);
    if let Some(k) = &plan.key {
        req = req.bearer_auth(k.expose());
    }
    let (status, body) = send(req).await?;
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::NOT_FOUND {
        report.no_token = true;
    }
    if status != StatusCode::OK {
        return Err(format!(
            "pool {:?}: HTTP {status}: {}",
            plan.pool,
            error_text(&body)
        ));
    }
    let name = text(&body, "name");
    let shown = mask(body.get("token").and_then(Value::as_str).unwrap_or(""));
    if let Some(lease) = body.get("lease").and_then(Value::as_str) {
        let mut release = http
            .post(format!("{}/api/token/report", plan.manager_url))
            .json(&serde_json::json!({"lease": lease, "outcome": "unknown"}));
        if let Some(k) = &plan.key {
            release = release.bearer_auth(k.expose());
        }
        // An unreleased lease expires by itself; the step is about getting the token.
        let _ = release.send().await;
    }
    Ok(format!("{name} ({shown}) from pool {:?}", plan.pool))
}

async fn list_folders(http: &Client, plan: &Plan) -> Result<(String, Vec<String>), String> {
    let req = http
        .get(format!("{}/api/folders", plan.webapi_url))
        .query(&[("realtime", "true")]);
    let body = realtime_answer(req).await?;
    let names = names(&body, "folders");
    Ok((
        format!(
            "{} folders ({}): {}",
            names.len(),
            text(&body, "source"),
            preview(&names)
        ),
        names,
    ))
}

async fn list_files(
    http: &Client,
    plan: &Plan,
    folder: &str,
) -> Result<(String, Option<String>), String> {
    let req = http
        .get(format!("{}/api/files", plan.webapi_url))
        .query(&[("folder", folder), ("realtime", "true")]);
    let body = realtime_answer(req).await?;
    let names = names(&body, "files");
    let first_file = body
        .get("files")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .find(|e| e.get("type").and_then(Value::as_str) == Some("file"))
        })
        .map(|e| text(e, "name"));
    let source = text(&body, "source");
    let text = format!(
        "{folder}: {} entries ({source}): {}",
        names.len(),
        preview(&names)
    );
    Ok((text, first_file))
}

async fn download_link(http: &Client, plan: &Plan, path: &str) -> Result<String, String> {
    let req = http
        .get(format!("{}/api/download/", plan.webapi_url))
        .query(&[("url", path)]);
    let (status, body) = send(req).await?;
    if status != StatusCode::OK {
        return Err(format!("{path}: HTTP {status}: {}", error_text(&body)));
    }
    if body.get("stale").and_then(Value::as_bool) == Some(true) {
        return Err(format!(
            "{path}: only a stale cached link (Wopan or the tokens failed)"
        ));
    }
    let link = body
        .get("download_url")
        .and_then(Value::as_str)
        .unwrap_or("");
    let shown = match reqwest::Url::parse(link) {
        Ok(u) => format!("{}://{}{}", u.scheme(), u.authority(), u.path()),
        Err(_) => return Err(format!("{path}: the answer has no valid download_url")),
    };
    let size = body.get("size").and_then(Value::as_u64).map(human_size);
    Ok(format!(
        "{path} ({}) → {shown}…",
        size.unwrap_or_else(|| "size unknown".into())
    ))
}

/// A listing answer that must come from Wopan now, not from the cache.
async fn realtime_answer(req: reqwest::RequestBuilder) -> Result<Value, String> {
    let (status, body) = send(req).await?;
    if status != StatusCode::OK {
        return Err(format!("HTTP {status}: {}", error_text(&body)));
    }
    match body.get("source").and_then(Value::as_str) {
        Some("realtime") => Ok(body),
        other => Err(format!(
            "answered from the cache ({}), so Wopan could not be reached with the pool's tokens",
            other.unwrap_or("no source")
        )),
    }
}

async fn send(req: reqwest::RequestBuilder) -> Result<(StatusCode, Value), String> {
    let resp = req
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?;
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((status, body))
}

fn error_text(body: &Value) -> String {
    body.pointer("/error/message")
        .and_then(Value::as_str)
        .map(|m| m.chars().take(300).collect())
        .unwrap_or_else(|| "no error message".into())
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string()
}

fn names(body: &Value, key: &str) -> Vec<String> {
    body.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|e| text(e, "name")).collect())
        .unwrap_or_default()
}

/// The seed's folder when present, else the first.
fn pick_folder(names: &[String]) -> Option<String> {
    names
        .iter()
        .find(|n| n.as_str() == "BD-another")
        .or_else(|| names.first())
        .cloned()
}

fn preview(names: &[String]) -> String {
    const SHOWN: usize = 4;
    let mut text = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(", …");
    }
    if text.is_empty() {
        text.push_str("(none)");
    }
    text
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_previews_are_short() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(5_242_880), "5.0 MiB");
        let names: Vec<String> = (1..=6).map(|i| format!("f{i}")).collect();
        assert_eq!(preview(&names), "f1, f2, f3, f4, …");
        assert_eq!(preview(&[]), "(none)");
    }

    #[test]
    fn the_seed_folder_is_preferred() {
        let names = vec!["Docs".to_string(), "BD-another".to_string()];
        assert_eq!(pick_folder(&names).as_deref(), Some("BD-another"));
        assert_eq!(pick_folder(&names[..1]).as_deref(), Some("Docs"));
        assert_eq!(pick_folder(&[]), None);
    }
}
