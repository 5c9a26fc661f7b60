//! The HTTP side of the token commands: where the manager is, the admin key, and turning
//! every failure into one sentence.
//!
//! The admin key comes from `--admin-key` / `TOKENLB_ADMIN_KEY`, else from the `admin-key`
//! file the manager generates in its data dir. API errors (`{"error":{"code","message"}}`)
//! are shown as their message; an unreachable manager says so and how to point at another.

use crate::cmd::CliError;
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;
use std::io::IsTerminal;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokenlb_core::Secret;
use tokenlb_manager::config::{Config, ConfigFile, Overrides, ProcessEnv};
use tokenlb_manager::server::MANAGER_URL_FILE;

/// How to reach the manager; shared by every `tokenlb token` command.
///
/// Without flags or variables, the manager URL and data dir are taken from the manager's own
/// configuration (./tokenlb.toml and TOKENLB_LISTEN / TOKENLB_DATA_DIR) when it loads, so the
/// commands find a manager started from the same directory with the same settings.
#[derive(clap::Args, Debug, Clone)]
pub struct Conn {
    /// Base URL of the running manager. [default: http:// + the manager's `listen` setting,
    /// i.e. http://127.0.0.1:8000 unless tokenlb.toml or TOKENLB_LISTEN say otherwise]
    #[arg(long, global = true, env = "TOKENLB_MANAGER_URL", value_name = "URL")]
    pub manager_url: Option<String>,
    /// Admin API key. Prefer the environment or the key file: flags end up in shell history.
    /// [default: `admin.key` of tokenlb.toml, else read from DATA_DIR/admin-key]
    #[arg(
        long,
        global = true,
        env = "TOKENLB_ADMIN_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub admin_key: Option<String>,
    /// The manager's data dir, where its generated admin-key file is. [default: the
    /// manager's `data_dir` setting, i.e. ./data unless tokenlb.toml says otherwise]
    #[arg(long, global = true, env = "TOKENLB_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl Conn {
    /// Fills in what was not given from the manager's configuration (or its defaults).
    fn resolve(&self) -> (String, PathBuf, Option<Secret>) {
        let needs_config =
            self.manager_url.is_none() || self.data_dir.is_none() || self.admin_key.is_none();
        let config = needs_config
            .then(|| {
                let file = ConfigFile::IfPresent(PathBuf::from("tokenlb.toml"));
                Config::load(&file, &ProcessEnv, &Overrides::default()).ok()
            })
            .flatten()
            .unwrap_or_default();
        // No data dir chosen: the default one, or the demo's under it when the demo's
        // manager started last (`tokenlb up --demo` keeps its own).
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| latest_data_dir(config.data_dir.clone()));
        let recorded = std::fs::read_to_string(data_dir.join(MANAGER_URL_FILE))
            .ok()
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty());
        let url = self.manager_url.clone().or(recorded).unwrap_or_else(|| {
            let mut addr = config.listen;
            if addr.ip().is_unspecified() {
                addr.set_ip(match addr {
                    SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
                });
            }
            format!("http://{addr}")
        });
        let key = match self.admin_key.as_deref().map(str::trim) {
            Some(k) if !k.is_empty() => Some(Secret::new(k)),
            _ => config.admin.key,
        };
        (url, data_dir, key)
    }
}

/// `dir`, or `dir/demo` when the demo's manager recorded its URL there after `dir`'s did.
fn latest_data_dir(dir: PathBuf) -> PathBuf {
    let stamp = |d: &std::path::Path| {
        std::fs::metadata(d.join(MANAGER_URL_FILE))
            .and_then(|m| m.modified())
            .ok()
    };
    let demo = dir.join("demo");
    match (stamp(&dir), stamp(&demo)) {
        (None, Some(_)) => demo,
        (Some(a), Some(b)) if b > a => demo,
        _ => dir,
    }
}

/// A client for the manager's admin API.
pub struct Api {
    http: reqwest::Client,
    base: Url,
    key: Secret,
}

impl Api {
    pub fn new(conn: &Conn) -> Result<Api, CliError> {
        let (manager_url, data_dir, key) = conn.resolve();
        let mut base = Url::parse(&manager_url).map_err(|e| {
            CliError::usage(format!("--manager-url {:?} is not a URL: {e}", manager_url))
        })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(CliError::usage(format!(
                "--manager-url {:?} must start with http:// or https://",
                manager_url
            )));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let key = match key {
            Some(key) => key,
            None => key_file(&data_dir)?,
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| CliError::runtime(format!("cannot build the HTTP client: {e}")))?;
        Ok(Api { http, base, key })
    }

    /// Sends a request to `path` (relative, e.g. `api/tokens`) and returns the JSON answer.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Body>,
    ) -> Result<Value, CliError> {
        let url = self
            .base
            .join(path)
            .map_err(|e| CliError::runtime(format!("bad API path {path}: {e}")))?;
        let mut req = self
            .http
            .request(method, url)
            .bearer_auth(self.key.expose())
            .query(query);
        req = match body {
            Some(Body::Json(v)) => req.json(&v),
            Some(Body::Raw { content_type, data }) => req
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(data),
            None => req,
        };
        let resp = req.send().await.map_err(|e| self.transport(e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.transport(e))?;
        if !status.is_success() {
            return Err(CliError::runtime(api_error(status, &bytes)));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            CliError::runtime(format!(
                "the manager answered {status} with invalid JSON: {e}"
            ))
        })
    }

    fn transport(&self, e: reqwest::Error) -> CliError {
        let base = self.base.as_str().trim_end_matches('/');
        if e.is_connect() {
            CliError::runtime(format!(
                "cannot reach the manager at {base} (is `tokenlb manager` running? \
                 Point elsewhere with --manager-url or TOKENLB_MANAGER_URL)"
            ))
        } else if e.is_timeout() {
            CliError::runtime(format!("the manager at {base} did not answer in time"))
        } else {
            CliError::runtime(format!("request to the manager at {base} failed: {e}"))
        }
    }
}

/// A request body.
pub enum Body {
    Json(Value),
    Raw {
        content_type: &'static str,
        data: Vec<u8>,
    },
}

/// The message of an API error answer, with the status and a hint for 401.
fn api_error(status: StatusCode, body: &[u8]) -> String {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                status.canonical_reason().unwrap_or("error").to_string()
            } else {
                text.chars().take(200).collect()
            }
        });
    let hint = if status == StatusCode::UNAUTHORIZED {
        " — check --admin-key, TOKENLB_ADMIN_KEY or the admin-key file in --data-dir"
    } else {
        ""
    };
    format!("{message} (HTTP {}){hint}", status.as_u16())
}

/// The admin key the manager generated into its data dir.
fn key_file(data_dir: &Path) -> Result<Secret, CliError> {
    let path = data_dir.join("admin-key");
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok(Secret::new(text.trim())),
        Ok(_) => Err(CliError::usage(format!(
            "the admin key file {} is empty",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(CliError::usage(format!(
            "no admin key: pass --admin-key, set TOKENLB_ADMIN_KEY, or point --data-dir at the \
             manager's data dir (no {} found)",
            path.display()
        ))),
        Err(e) => Err(CliError::usage(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

/// A secret given on the command line, or `-` to read it from the first line of stdin.
pub fn secret_arg(value: &str, what: &str) -> Result<String, CliError> {
    if value != "-" {
        return Ok(value.to_string());
    }
    if std::io::stdin().is_terminal() {
        eprint!("{what} (then Enter): ");
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| CliError::runtime(format!("cannot read {what} from standard input: {e}")))?;
    let line = line.trim_end_matches(['\r', '\n']).to_string();
    if line.trim().is_empty() {
        return Err(CliError::usage(format!("no {what} on standard input")));
    }
    Ok(line)
}
