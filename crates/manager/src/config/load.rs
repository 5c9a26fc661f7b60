//! Building a [`Config`] from its layers: defaults < file < environment < flags.
//!
//! Each layer remembers which keys it set, so a value that fails validation is reported
//! against where it came from: the file (with its path), the variable, or the flag. TOML
//! errors carry the file, line, column, the key and serde's reason.

use super::env::{self, EnvSource, ENV_KEYS};
use super::{policy_with, Config, LogFormat, DEFAULT_POOL};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use tokenlb_core::{Secret, Strategy};

/// Which configuration file to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigFile {
    /// Given with `--config`: it must exist.
    Explicit(PathBuf),
    /// Read when it exists (`./tokenlb.toml` by default), else defaults only.
    IfPresent(PathBuf),
    /// No file at all.
    None,
}

impl ConfigFile {
    /// `--config PATH` when given, else `./tokenlb.toml` if present.
    pub fn from_flag(path: Option<PathBuf>) -> Self {
        match path {
            Some(p) => ConfigFile::Explicit(p),
            None => ConfigFile::IfPresent(PathBuf::from("tokenlb.toml")),
        }
    }
}

/// The flag layer: values given on the command line, which win over everything else.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub tokens_file: Option<PathBuf>,
    pub store: Option<String>,
    pub redis: Option<String>,
    pub log_format: Option<LogFormat>,
    pub log_level: Option<String>,
}

/// Why a configuration was refused. The messages name the source and never a secret value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {}{}: {reason}", path.display(), position(*line, *column, key.as_deref()))]
    Parse {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        key: Option<String>,
        reason: String,
    },
    #[error("environment variable {var}: {reason}")]
    Env { var: String, reason: String },
    #[error("{origin}: `{key}` {reason}")]
    Invalid {
        origin: String,
        key: String,
        reason: String,
    },
}

fn position(line: Option<usize>, column: Option<usize>, key: Option<&str>) -> String {
    let mut out = String::new();
    if let (Some(l), Some(c)) = (line, column) {
        out.push_str(&format!(", line {l}, column {c}"));
    }
    if let Some(k) = key {
        out.push_str(&format!(", key `{k}`"));
    }
    out
}

impl Config {
    /// Loads and validates the configuration from all layers.
    pub fn load(
        file: &ConfigFile,
        env: &dyn EnvSource,
        flags: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut origins = Origins::default();
        let (mut cfg, explicit) = match file {
            ConfigFile::Explicit(path) => read_file(path, &mut origins)?,
            ConfigFile::IfPresent(path) if path.is_file() => read_file(path, &mut origins)?,
            _ => (Config::default(), BTreeSet::new()),
        };
        cfg.apply_env(env, &mut origins)?;
        cfg.apply_flags(flags, &mut origins);
        cfg.finish(&explicit);
        cfg.check().map_err(|(key, reason)| ConfigError::Invalid {
            origin: origins.of(&key),
            key,
            reason,
        })?;
        Ok(cfg)
    }

    /// Parses `text` as a configuration file (no environment, no flags) and validates it;
    /// `path` is only used in messages.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let (mut cfg, explicit) = parse_file(text, path)?;
        cfg.finish(&explicit);
        cfg.check().map_err(|(key, reason)| ConfigError::Invalid {
            origin: format!("config file {}", path.display()),
            key,
            reason,
        })?;
        Ok(cfg)
    }

    /// Validates a configuration built in code (e.g. in tests).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check().map_err(|(key, reason)| ConfigError::Invalid {
            origin: "configuration".to_string(),
            key,
            reason,
        })
    }

    fn apply_env(&mut self, env: &dyn EnvSource, origins: &mut Origins) -> Result<(), ConfigError> {
        for key in ENV_KEYS {
            let value =
                env::read(env, key).map_err(|(var, reason)| ConfigError::Env { var, reason })?;
            if let Some(value) = value {
                let var = env::env_var_for(key);
                self.set_key(key, &value)
                    .map_err(|reason| ConfigError::Env {
                        var: var.clone(),
                        reason,
                    })?;
                origins.set(key, format!("environment variable {var}"));
            }
        }
        Ok(())
    }

    fn apply_flags(&mut self, flags: &Overrides, origins: &mut Origins) {
        macro_rules! flag {
            ($field:ident, $target:expr, $key:literal, $flag:literal, $conv:expr) => {
                if let Some(v) = &flags.$field {
                    $target = $conv(v.clone());
                    origins.set($key, concat!("flag ", $flag).to_string());
                }
            };
        }
        flag!(listen, self.listen, "listen", "--listen", |v| v);
        flag!(data_dir, self.data_dir, "data_dir", "--data-dir", |v| v);
        flag!(
            tokens_file,
            self.tokens_file,
            "tokens_file",
            "--tokens-file",
            |v| v
        );
        flag!(store, self.store, "store", "--store", Some);
        flag!(redis, self.redis, "redis", "--redis", Some);
        flag!(
            log_format,
            self.log.format,
            "log.format",
            "--log-format",
            |v| v
        );
        flag!(log_level, self.log.level, "log.level", "--log-level", |v| v);
    }

    /// Pools without their own `strategy` use `default_strategy`; `default` always exists.
    fn finish(&mut self, explicit_strategy: &BTreeSet<String>) {
        let strategy = self.default_strategy;
        for (name, pool) in self.pools.iter_mut() {
            if !explicit_strategy.contains(name) {
                pool.policy.strategy = strategy;
            }
        }
        let proxy_pools = self.proxy.iter().map(|p| p.pool_name().to_string());
        for name in std::iter::once(DEFAULT_POOL.to_string()).chain(proxy_pools) {
            self.pools.entry(name).or_insert_with(|| super::PoolConfig {
                policy: policy_with(strategy),
                ..Default::default()
            });
        }
    }

    /// Sets one key from its string form (the environment layer).
    fn set_key(&mut self, key: &str, v: &str) -> Result<(), String> {
        match key {
            "listen" => self.listen = tokenlb_listen::parse_addr(v)?,
            "data_dir" => self.data_dir = PathBuf::from(v),
            "tokens_file" => self.tokens_file = PathBuf::from(v),
            "store" => self.store = Some(v.trim().to_string()),
            "redis" => self.redis = Some(v.trim().to_string()),
            "client_keys" => {
                self.client_keys = list(v)
                    .enumerate()
                    .map(|(i, k)| super::ClientKey::bare(k, i + 1))
                    .collect()
            }
            "allowed_hosts" => self.allowed_hosts = list(v).map(str::to_string).collect(),
            "trusted_proxies" => {
                self.trusted_proxies = list(v).map(parse_net).collect::<Result<_, _>>()?
            }
            "max_connections" => self.max_connections = parse(v, "a number of connections")?,
            "max_waiters" => self.max_waiters = parse(v, "a number of waiters")?,
            "max_event_rows" => self.max_event_rows = parse(v, "a number of events")?,
            "encryption_key" => self.encryption_key = Some(Secret::new(v.trim())),
            "stats_flush_ms" => self.stats_flush_ms = parse(v, "a number of milliseconds")?,
            "max_body_bytes" => self.max_body_bytes = parse(v, "a number of bytes")?,
            "default_strategy" => self.default_strategy = parse::<Strategy>(v, "a strategy")?,
            "log.format" => self.log.format = parse(v, "a log format")?,
            "log.level" => self.log.level = v.trim().to_string(),
            "admin.user" => self.admin.user = v.trim().to_string(),
            "admin.password" => self.admin.password = Some(Secret::new(v)),
            "admin.key" => self.admin.key = Some(Secret::new(v.trim())),
            "admin.session_idle_minutes" => {
                self.admin.session_idle_minutes = parse(v, "a number of minutes")?
            }
            "admin.login_max_failures" => self.admin.login_max_failures = parse(v, "a count")?,
            "admin.login_window_s" => self.admin.login_window_s = parse(v, "a number of seconds")?,
            "admin.cookie_secure" => self.admin.cookie_secure = parse_bool(v)?,
            "metrics.per_token" => self.metrics.per_token = parse_bool(v)?,
            other => return Err(format!("`{other}` cannot be set from the environment")),
        }
        Ok(())
    }
}

fn parse<T: FromStr>(v: &str, what: &str) -> Result<T, String>
where
    T::Err: Display,
{
    v.trim()
        .parse()
        .map_err(|e| format!("{v:?} is not {what} ({e})"))
}

/// The non-empty items of a comma-separated list.
fn list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|k| !k.is_empty())
}

/// An IP network, or a single address (as a /32 or /128).
pub(super) fn parse_net(v: &str) -> Result<ipnet::IpNet, String> {
    v.parse::<ipnet::IpNet>()
        .or_else(|_| v.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{v:?} is not an IP address or a CIDR like 10.0.0.0/8"))
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("{v:?} is not true or false")),
    }
}

fn read_file(
    path: &Path,
    origins: &mut Origins,
) -> Result<(Config, BTreeSet<String>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    origins.file = Some(path.to_path_buf());
    parse_file(&text, path)
}

/// Parses the file layer; also returns the pools that set their own `strategy`.
fn parse_file(text: &str, path: &Path) -> Result<(Config, BTreeSet<String>), ConfigError> {
    let cfg: Config = toml::from_str(text).map_err(|e| parse_error(text, path, &e))?;
    let table: toml::Table = text.parse().map_err(|e| parse_error(text, path, &e))?;
    let explicit = table
        .get("pools")
        .and_then(toml::Value::as_table)
        .map(|pools| {
            pools
                .iter()
                .filter(|(_, p)| p.as_table().is_some_and(|t| t.contains_key("strategy")))
                .map(|(name, _)| name.clone())
                .collect()
        })
        .unwrap_or_default();
    Ok((cfg, explicit))
}

fn parse_error(text: &str, path: &Path, e: &toml::de::Error) -> ConfigError {
    let mut reason = e.message().trim_end().replace('\n', " ");
    let (line, column, key) = match e.span() {
        Some(span) => {
            let mut at = span.start;
            let mut key = key_at(text, span.start);
            // A pool table's error that names its key (`strategy`: …) points at that key.
            if let Some((name, rest)) = reason
                .strip_prefix('`')
                .and_then(|r| r.split_once("`: "))
                .map(|(n, r)| (n.to_string(), r.to_string()))
            {
                if let Some(off) = key_line(&text[span.start..span.end.max(span.start)], &name) {
                    at = span.start + off;
                    key = key.map(|k| format!("{k}.{name}"));
                    reason = rest;
                }
            }
            let (l, c) = line_col(text, at);
            (Some(l), Some(c), key)
        }
        None => (None, None, None),
    };
    ConfigError::Parse {
        path: path.to_path_buf(),
        line,
        column,
        key,
        reason,
    }
}

/// Byte offset of the line `name = …` inside a table's text.
fn key_line(table: &str, name: &str) -> Option<usize> {
    let mut off = 0;
    for line in table.split_inclusive('\n') {
        let t = line.trim_start();
        if t.strip_prefix(name)
            .is_some_and(|r| r.trim_start().starts_with('='))
        {
            return Some(off + (line.len() - t.len()));
        }
        off += line.len();
    }
    None
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// The dotted key at a byte offset: the enclosing `[table]` and the key of the line, so a
/// message can say `pools.fast.strategy` and not only "line 7".
fn key_at(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset.min(text.len()))?;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    let header = |l: &str| {
        let l = l.trim();
        (l.starts_with('[') && l.contains(']')).then(|| {
            l.trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
    };
    if let Some(h) = header(line) {
        return Some(h);
    }
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty() && !k.starts_with('#'));
    let table = text[..line_start].lines().rev().find_map(header);
    match (table, key) {
        (Some(t), Some(k)) => Some(format!("{t}.{k}")),
        (None, Some(k)) => Some(k),
        (Some(t), None) => Some(t),
        (None, None) => None,
    }
}

/// Which layer set each key, for error messages.
#[derive(Default)]
struct Origins {
    file: Option<PathBuf>,
    keys: BTreeMap<String, String>,
}

impl Origins {
    fn set(&mut self, key: &str, origin: String) {
        self.keys.insert(key.to_string(), origin);
    }

    fn of(&self, key: &str) -> String {
        if let Some(origin) = self.keys.get(key) {
            return origin.clone();
        }
        match &self.file {
            Some(path) => format!("config file {}", path.display()),
            None => "default configuration".to_string(),
        }
    }
}
