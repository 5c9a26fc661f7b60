//! Validation, run once after all layers are applied: a value either passes here or the
//! manager does not start. Each problem is `(key, reason)`; the loader adds where the value
//! came from. Reasons never repeat a secret or a URL that may carry a password.

use super::{Config, HealthConfig, HealthKind, NotifyConfig, PoolConfig};
use base64::Engine as _;

pub(super) type Problem = (String, String);

pub(super) fn problem(key: impl Into<String>, reason: impl Into<String>) -> Problem {
    (key.into(), reason.into())
}

pub(super) fn range<T: PartialOrd + std::fmt::Display>(
    key: &str,
    v: T,
    lo: T,
    hi: T,
) -> Result<(), Problem> {
    if v < lo || v > hi {
        return Err(problem(
            key,
            format!("must be between {lo} and {hi} (got {v})"),
        ));
    }
    Ok(())
}

impl Config {
    pub(super) fn check(&self) -> Result<(), Problem> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(problem("data_dir", "must not be empty"));
        }
        if self.tokens_file.as_os_str().is_empty() {
            return Err(problem("tokens_file", "must not be empty"));
        }
        if let Some(store) = &self.store {
            let ok = ["sqlite:", "postgres://", "postgresql://"]
                .iter()
                .any(|p| store.starts_with(p));
            if !ok {
                return Err(problem(
                    "store",
                    "must be a sqlite:… or postgres://… URL (unset = SQLite in data_dir)",
                ));
            }
        }
        if let Some(redis) = &self.redis {
            if !(redis.starts_with("redis://") || redis.starts_with("rediss://")) {
                return Err(problem("redis", "must be a redis://… or rediss://… URL"));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, key) in self.client_keys.iter().enumerate() {
            if key.key.len() < 16 {
                return Err(problem(
                    format!("client_keys[{i}]"),
                    "must be at least 16 characters long",
                ));
            }
            let name_ok = !key.name.is_empty()
                && key.name.len() <= 64
                && key
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !name_ok {
                return Err(problem(
                    format!("client_keys[{i}].name"),
                    "must be 1-64 letters, digits, '-', '_' or '.'",
                ));
            }
            if !names.insert(key.name.as_str()) {
                return Err(problem(
                    format!("client_keys[{i}].name"),
                    format!("{:?} names another key too", key.name),
                ));
            }
            if key.pools.as_ref().is_some_and(|p| p.is_empty()) {
                return Err(problem(
                    format!("client_keys[{i}].pools"),
                    "must name at least one pool (leave it out for every pool)",
                ));
            }
        }
        for (i, host) in self.allowed_hosts.iter().enumerate() {
            let ok = host == "*"
                || (!host.is_empty()
                    && host.len() <= 255
                    && host.bytes().all(|b| {
                        b.is_ascii_alphanumeric()
                            || matches!(b, b'-' | b'.' | b'_' | b':' | b'[' | b']')
                    }));
            if !ok {
                return Err(problem(
                    format!("allowed_hosts[{i}]"),
                    "must be a host name or address, with or without port, or \"*\"",
                ));
            }
        }
        range("max_connections", self.max_connections, 16, 1 << 20)?;
        range("max_waiters", self.max_waiters, 1, 1 << 20)?;
        range("max_event_rows", self.max_event_rows, 1000, 1 << 40)?;
        if let Some(key) = &self.encryption_key {
            let bytes = base64::engine::general_purpose::STANDARD.decode(key.expose().trim());
            if bytes.map(|b| b.len()) != Ok(32) {
                return Err(problem(
                    "encryption_key",
                    "must be the base64 encoding of exactly 32 bytes (e.g. `openssl rand -base64 32`)",
                ));
            }
        }
        range("stats_flush_ms", self.stats_flush_ms, 50, 1000)?;
        range("max_body_bytes", self.max_body_bytes, 1024, 1 << 30)?;
        if self.log.level.trim().is_empty() {
            return Err(problem("log.level", "must not be empty (e.g. \"info\")"));
        }
        self.check_admin()?;
        for (i, n) in self.notify.iter().enumerate() {
            check_notify(i, n)?;
        }
        let mut routes = std::collections::BTreeSet::new();
        for (i, p) in self.proxy.iter().enumerate() {
            super::proxy::check_proxy(i, p, &mut routes)?;
        }
        for (name, pool) in &self.pools {
            check_pool(name, pool)?;
        }
        Ok(())
    }

    fn check_admin(&self) -> Result<(), Problem> {
        let a = &self.admin;
        let user_ok = !a.user.is_empty()
            && a.user.len() <= 64
            && a.user
                .chars()
                .all(|c| c.is_alphanumeric() || "._-@".contains(c));
        if !user_ok {
            return Err(problem(
                "admin.user",
                "must be 1 to 64 letters, digits or . _ - @",
            ));
        }
        if a.password
            .as_ref()
            .is_some_and(|p| p.expose().chars().count() < 8)
        {
            return Err(problem(
                "admin.password",
                "must be at least 8 characters long",
            ));
        }
        if a.key.as_ref().is_some_and(|k| k.len() < 16) {
            return Err(problem("admin.key", "must be at least 16 characters long"));
        }
        range(
            "admin.session_idle_minutes",
            a.session_idle_minutes,
            1,
            7 * 24 * 60,
        )?;
        range("admin.login_max_failures", a.login_max_failures, 1, 1000)?;
        range("admin.login_window_s", a.login_window_s, 1, 24 * 3600)?;
        Ok(())
    }
}

fn check_pool(name: &str, pool: &PoolConfig) -> Result<(), Problem> {
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !name_ok {
        return Err(problem(
            format!("pools.{name}"),
            "pool names are 1 to 64 ASCII letters, digits, _ or -",
        ));
    }
    pool.policy
        .validate()
        .map_err(|reason| problem(format!("pools.{name}"), reason))?;
    check_health(&format!("pools.{name}.health"), &pool.health)
}

fn check_health(prefix: &str, h: &HealthConfig) -> Result<(), Problem> {
    let key = |k: &str| format!("{prefix}.{k}");
    let method_ok = !h.method.is_empty() && h.method.chars().all(|c| c.is_ascii_uppercase());
    if !method_ok {
        return Err(problem(
            key("method"),
            "must be an upper-case HTTP method such as GET",
        ));
    }
    let header_ok = !h.header.is_empty()
        && h.header
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
    if !header_ok {
        return Err(problem(key("header"), "must be a valid HTTP header name"));
    }
    if !h.header_format.contains("{token}") {
        return Err(problem(key("header_format"), "must contain {token}"));
    }
    range(&key("expect_status"), h.expect_status, 100, 599)?;
    range(&key("probe_interval_s"), h.probe_interval_s, 1, 86_400)?;
    range(&key("sweep_interval_s"), h.sweep_interval_s, 0, 86_400)?;
    range(&key("timeout_ms"), h.timeout_ms, 1, 600_000)?;
    range(&key("refresh_before_s"), h.refresh_before_s, 0, 30 * 86_400)?;
    match (&h.kind, &h.url) {
        (HealthKind::Http, None) => {
            return Err(problem(key("url"), "is required when kind = \"http\""))
        }
        (_, Some(url)) => check_url(&key("url"), url)?,
        _ => {}
    }
    check_url(&key("wopan_base_url"), &h.wopan_base_url)
}

fn check_url(key: &str, url: &str) -> Result<(), Problem> {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(()),
        Ok(_) => Err(problem(key, "must be an http:// or https:// URL")),
        Err(e) => Err(problem(key, format!("is not a valid URL ({e})"))),
    }
}

/// One `[[notify]]` target. The URL is never repeated in a message (webhook URLs often
/// carry their credential).
fn check_notify(i: usize, n: &NotifyConfig) -> Result<(), Problem> {
    let key = |k: &str| format!("notify[{i}].{k}");
    check_url(&key("url"), &n.url)?;
    if n.secret.as_ref().is_some_and(|s| s.len() < 16) {
        return Err(problem(
            key("secret"),
            "must be at least 16 characters long",
        ));
    }
    if n.events.is_empty() {
        return Err(problem(
            key("events"),
            "must name at least one of token_invalid, pool_unavailable, refresh_refused (or be left out for all)",
        ));
    }
    range(&key("coalesce_ms"), n.coalesce_ms, 0, 60_000)?;
    range(&key("max_attempts"), n.max_attempts, 1, 20)?;
    range(&key("queue"), n.queue, 1, 10_000)?;
    range(&key("timeout_ms"), n.timeout_ms, 100, 60_000)
}
