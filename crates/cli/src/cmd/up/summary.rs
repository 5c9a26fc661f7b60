//! What `tokenlb up` prints on stdout: what started, the self-test verdict with advice when it
//! failed, then the addresses, where the admin credentials are and the seed's curl commands.
//!
//! Secrets never appear: the admin password and key are named by file (or by the variable
//! they came from), tokens only masked (in the self-test lines).

use super::demo;
use super::selftest::{Report, Step};
use super::services::reachable;
use std::net::SocketAddr;
use tokenlb_manager::config::{Config, HealthKind};
use tokenlb_manager::import::ImportSummary;

/// The running services.
pub struct Services {
    pub manager: SocketAddr,
    pub webapi: SocketAddr,
    pub emulator: Option<SocketAddr>,
    /// With --demo: what adding the demo tokens did.
    pub demo_added: Option<ImportSummary>,
    /// With --demo: demo tokens made active again (left invalid or cooling by an earlier run).
    pub demo_enabled: usize,
    /// With --demo: demo tokens an earlier run's emulator had refreshed, reset to the originals.
    pub demo_reset: usize,
    /// What importing the tokens file did (`None`: no file).
    pub tokens_file: Option<ImportSummary>,
}

fn url(addr: SocketAddr) -> String {
    format!("http://{}", reachable(addr))
}

/// The first lines: what runs, and the demo tokens.
pub fn started(s: &Services, config: &Config, pool: &str) {
    match s.emulator {
        Some(_) => {
            println!("tokenlb up --demo: token manager, web API and Wopan emulator (demo data)")
        }
        None => println!("tokenlb up: token manager and web API"),
    }
    println!("  data dir: {}", config.data_dir.display());
    println!("  health checks: {}", health_line(config, pool));
    if s.emulator.is_none() {
        let path = config.tokens_file.display();
        match &s.tokens_file {
            Some(t) => println!(
                "  tokens file {path}: {} added, {} already there, {} refused (see the log)",
                t.added,
                t.skipped,
                t.errors.len()
            ),
            None => println!(
                "  tokens file {path}: none (add tokens with `tokenlb token add` or the admin UI)"
            ),
        }
    }
    if let Some(added) = &s.demo_added {
        println!(
            "  demo tokens: {} in pool {pool:?} ({} added now, {} already there)",
            demo::count(),
            added.added,
            added.skipped
        );
        if s.demo_reset > 0 {
            println!(
                "  demo tokens reset to their originals: {} (an earlier demo's emulator had refreshed them)",
                s.demo_reset
            );
        }
        if s.demo_enabled > 0 {
            println!(
                "  demo tokens made active again: {} (an earlier demo left them invalid or cooling)",
                s.demo_enabled
            );
        }
    }
}

/// Which pools are checked, and how: the web API's pool and every configured one.
fn health_line(config: &Config, web_pool: &str) -> String {
    let mut names: Vec<&str> = config.pools.keys().map(String::as_str).collect();
    if !names.contains(&web_pool) {
        names.push(web_pool);
    }
    names
        .iter()
        .map(|name| {
            let h = config.health_of(name);
            let how = match h.kind {
                HealthKind::None => "none".to_string(),
                HealthKind::Http => format!("http {}", h.url.as_deref().unwrap_or("")),
                HealthKind::Wopan => format!(
                    "wopan at {} (failing tokens probed every {} s, refresh {} h before expiry)",
                    h.wopan_base_url,
                    h.probe_interval_s,
                    h.refresh_before_s / 3600
                ),
            };
            format!("pool {name:?}: {how}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The verdict line, and what to do when it failed.
pub fn self_test_result(r: &Report, demo: bool, config: &Config, manager_url: &str, pool: &str) {
    let total = r.steps.len();
    let (passed, failed, skipped) = (
        r.count(Step::Passed),
        r.count(Step::Failed),
        r.count(Step::Skipped),
    );
    if r.passed() {
        let left = match r.left_rotation.len() {
            0 => String::new(),
            1 => ", but 1 token left rotation during it (above)".to_string(),
            n => format!(", but {n} tokens left rotation during it (above)"),
        };
        match skipped {
            0 => println!("self-test passed ({passed} of {total} steps){left}"),
            n => println!("self-test passed ({passed} of {total} steps, {n} skipped){left}"),
        }
        return;
    }
    if demo {
        println!("self-test failed ({failed} of {total} steps)");
        println!(
            "  The demo runs on {}: check pool {pool:?} in the admin UI (tokens disabled by an \
             admin stay disabled), or start it with a new --data-dir.",
            config.data_dir.display()
        );
        return;
    }
    println!("warning: self-test failed ({failed} of {total} steps); the services keep running");
    if r.no_token {
        println!(
            "  The pool {pool:?} has no usable token. Add your Wopan tokens (no restart needed),"
        );
        println!(
            "  then try the commands below. One token (paste it after this command, then Enter):"
        );
        println!(
            "    tokenlb token add - --name main --pool {pool} --manager-url {manager_url} --data-dir {}",
            config.data_dir.display()
        );
        println!(
            "  or many: list them in {} ({{\"tokens\":[{{\"token\":\"…\",\"name\":\"…\",\"is_active\":true}}]}}) and start again.",
            config.tokens_file.display()
        );
        println!("  To see the whole system work without a Wopan account: tokenlb up --demo");
    } else {
        println!(
            "  Check the tokens in the admin UI (state and last error) and the log lines above."
        );
    }
}

/// The addresses, the credentials' whereabouts and the commands to try.
pub fn running(s: &Services, config: &Config, r: &Report, pool: &str) {
    let manager = url(s.manager);
    let webapi = url(s.webapi);
    println!();
    println!("tokenlb is running:");
    println!(
        "  Manager UI      {manager}/   (user {}, {})",
        config.admin.user,
        password_source(config)
    );
    println!("  Web API         {webapi}/");
    if let Some(e) = s.emulator {
        println!(
            "  Wopan emulator  {}/   (demo data, fault injection at /_emulator/control)",
            url(e)
        );
    }
    println!("  Admin API key   {}", key_source(config));
    println!();
    let folder = r.folder.clone().unwrap_or_else(|| "BD-another".into());
    let file = r.file.clone().unwrap_or_else(|| "01.mp4".into());
    println!("Try:");
    // The seed's first command, asking the pool the web API leases from.
    let pool_arg = if pool == tokenlb_manager::config::DEFAULT_POOL {
        String::new()
    } else {
        format!("&pool={}", encode(pool))
    };
    println!("  curl \"{manager}/api/token/get?strategy=best{pool_arg}\"");
    println!("  curl \"{webapi}/api/folders?realtime=true\"");
    println!(
        "  curl \"{webapi}/api/files?folder={}&realtime=true\"",
        encode(&folder)
    );
    println!(
        "  curl \"{webapi}/api/download/?url={}/{}\"",
        encode(&folder),
        encode(&file)
    );
    for route in &config.proxy {
        println!(
            "  curl \"{manager}/proxy/{}/hello\"   (proxy mode: {} with a token of pool {})",
            route.name,
            route.upstream,
            route.pool_name()
        );
    }
    println!();
    println!("Press Ctrl-C to stop.");
}

fn env_set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.trim().is_empty())
}

fn password_source(config: &Config) -> String {
    if env_set("TOKENLB_ADMIN_PASSWORD") {
        "password from TOKENLB_ADMIN_PASSWORD".into()
    } else if config.admin.password.is_some() {
        "password from the configuration file".into()
    } else {
        format!(
            "password in {}",
            config.data_dir.join("admin-password").display()
        )
    }
}

fn key_source(config: &Config) -> String {
    if env_set("TOKENLB_ADMIN_KEY") {
        "from TOKENLB_ADMIN_KEY".into()
    } else if config.admin.key.is_some() {
        "from the configuration file".into()
    } else {
        format!(
            "in {} (tokenlb token … reads it from there)",
            config.data_dir.join("admin-key").display()
        )
    }
}

/// Percent-encodes a query value, keeping `/` and unreserved characters readable.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn curl_values_are_encoded_but_readable() {
        assert_eq!(encode("BD-another/01.mp4"), "BD-another/01.mp4");
        assert_eq!(encode("a b&c"), "a%20b%26c");
        assert_eq!(encode("相册"), "%E7%9B%B8%E5%86%8C");
    }
}
