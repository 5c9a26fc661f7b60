//! The manager's configuration: one typed struct, layered and validated once.
//!
//! Layers, lowest first: built-in defaults < `tokenlb.toml` < `TOKENLB_*` environment
//! variables < command-line flags ([`Overrides`]). [`Config::load`] applies them in that order,
//! fills in the `default` pool and validates the result, so the rest of the manager never sees
//! an unchecked value. The environment is read through [`EnvSource`], so tests pass a map and
//! never touch the process environment (the linkerd2-proxy pattern).
//!
//! Every table is `deny_unknown_fields`: a typo in the file is an error naming the file, the
//! line and column, the key and the reason, not a silently ignored setting. Secrets (admin
//! password and key, client keys, the encryption key) are [`Secret`]s; serializing a `Config`
//! (what `tokenlb config check` prints) masks them. [`Config::example_toml`] is the commented
//! example `tokenlb config example` prints; a test proves it parses to the defaults and names
//! every setting.

mod env;
mod load;
mod observe;
mod pool;
mod proxy;
mod validate;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use tokenlb_core::{Policy, Secret, Strategy};

pub use env::{env_var_for, EnvSource, ProcessEnv, ENV_KEYS};
pub use load::{ConfigError, ConfigFile, Overrides};
pub use observe::{MetricsConfig, NotifyConfig, NotifyEvent};
pub use pool::{HealthConfig, HealthKind, PoolConfig};
pub use proxy::{parse_status, Inject, ProxyConfig, ProxyRule};

/// The name of the pool used by requests that name none; always present after loading.
pub const DEFAULT_POOL: &str = "default";

/// Everything `tokenlb manager` can be told. Field comments give the default, the
/// environment variable and the flag (if any).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address of the HTTP API and admin UI. 127.0.0.1:8000, `TOKENLB_LISTEN`, `--listen`.
    /// A host name (`localhost:8000`) is resolved at start.
    #[serde(deserialize_with = "addr_from")]
    pub listen: SocketAddr,
    /// Directory for the SQLite store, generated secrets and key files. `./data`,
    /// `TOKENLB_DATA_DIR`, `--data-dir`.
    pub data_dir: PathBuf,
    /// Seed-format tokens file imported at start when it exists (merge by token value).
    /// `./tokens.json`, `TOKENLB_TOKENS_FILE`, `--tokens-file`.
    pub tokens_file: PathBuf,
    /// Durable store URL; `None` = SQLite in `data_dir`. `TOKENLB_STORE`, `--store`.
    pub store: Option<String>,
    /// Redis URL for shared live state between several managers. `TOKENLB_REDIS`, `--redis`.
    pub redis: Option<String>,
    /// Client keys for get/report/stats; none = those routes are open to direct loopback
    /// peers only. A key is a string (every pool) or `{ key, name, pools, report_by_id }`
    /// (DESIGN §9). `TOKENLB_CLIENT_KEYS` (comma-separated bare keys).
    #[serde(deserialize_with = "client_keys_from")]
    pub client_keys: Vec<ClientKey>,
    /// Names besides the listener's own (localhost, 127.0.0.1, [::1], its address) that the
    /// `Host` header may carry; `"*"` = any. Other hosts get 421. `TOKENLB_ALLOWED_HOSTS`.
    pub allowed_hosts: Vec<String>,
    /// Reverse proxies (IP addresses or CIDRs) whose `Forwarded` / `X-Forwarded-For` /
    /// `X-Real-IP` headers are believed. From anyone else such headers make the request
    /// remote. `TOKENLB_TRUSTED_PROXIES`.
    #[serde(deserialize_with = "nets_from")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Connections open at once; more are closed at accept. 4096, `TOKENLB_MAX_CONNECTIONS`.
    pub max_connections: usize,
    /// Long-poll (`wait_ms`) waiters per pool; more get 503. 1000, `TOKENLB_MAX_WAITERS`.
    pub max_waiters: usize,
    /// Events kept in the store at most (the newest); older ones are pruned every 10 min.
    /// 1,000,000, `TOKENLB_MAX_EVENT_ROWS`.
    pub max_event_rows: u64,
    /// base64 of 32 bytes encrypting secrets at rest; `None` = generated `data_dir/secret.key`.
    /// `TOKENLB_ENCRYPTION_KEY`.
    #[serde(with = "secret_serde::option")]
    pub encryption_key: Option<Secret>,
    /// How often buffered stats are written to the store, 50..=1000 ms. 1000,
    /// `TOKENLB_STATS_FLUSH_MS`.
    pub stats_flush_ms: u64,
    /// Largest accepted request body. 1 MiB, `TOKENLB_MAX_BODY_BYTES`.
    pub max_body_bytes: usize,
    /// Strategy of pools that set none (and of the implicit `default` pool). `best`,
    /// `TOKENLB_DEFAULT_STRATEGY`.
    pub default_strategy: Strategy,
    /// Logging. `[log]`.
    pub log: LogConfig,
    /// Admin access: UI login and the admin API key. `[admin]`.
    pub admin: AdminConfig,
    /// `/metrics` settings. `[metrics]`.
    pub metrics: MetricsConfig,
    /// Webhook targets for changes an operator must know about, `[[notify]]`; none by
    /// default.
    pub notify: Vec<NotifyConfig>,
    /// Proxy routes, `[[proxy]]` (DESIGN §10): upstream APIs served at `/proxy/NAME/…` with a
    /// pool token injected; none by default. Their pools exist after loading.
    pub proxy: Vec<ProxyConfig>,
    /// Pools by name, `[pools.NAME]`; `default` always exists after loading.
    pub pools: BTreeMap<String, PoolConfig>,
    /// The health check of every pool without a `[pools.NAME.health]` table of its own
    /// (configured or created at run time). Not a file setting: `tokenlb up` sets the Wopan
    /// check (with refresh) here because it knows the Wopan base URL; otherwise none.
    #[serde(skip)]
    pub default_health: Option<HealthConfig>,
}

impl Default for Config {
    fn default() -> Self {
        let mut pools = BTreeMap::new();
        pools.insert(DEFAULT_POOL.to_string(), PoolConfig::default());
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            data_dir: PathBuf::from("./data"),
            tokens_file: PathBuf::from("./tokens.json"),
            store: None,
            redis: None,
            client_keys: Vec::new(),
            allowed_hosts: Vec::new(),
            trusted_proxies: Vec::new(),
            max_connections: tokenlb_listen::MAX_CONNECTIONS,
            max_waiters: 1000,
            max_event_rows: 1_000_000,
            encryption_key: None,
            stats_flush_ms: 1000,
            max_body_bytes: 1024 * 1024,
            default_strategy: Strategy::Best,
            log: LogConfig::default(),
            admin: AdminConfig::default(),
            metrics: MetricsConfig::default(),
            notify: Vec::new(),
            proxy: Vec::new(),
            pools,
            default_health: None,
        }
    }
}

impl Config {
    /// The commented example printed by `tokenlb config example`: every setting with its
    /// default. Parsing it gives [`Config::default`].
    pub fn example_toml() -> &'static str {
        include_str!("config/example.toml")
    }

    /// The effective configuration as TOML with every secret masked (for `config check`).
    pub fn to_masked_toml(&self) -> String {
        let mut shown = self.clone();
        shown.store = shown.store.as_deref().map(mask_url_password);
        shown.redis = shown.redis.as_deref().map(mask_url_password);
        for n in &mut shown.notify {
            n.url = observe::mask_webhook_url(&n.url);
        }
        match toml::to_string(&shown) {
            Ok(text) => text,
            // Serializing plain data into TOML cannot fail; keep a readable answer anyway.
            Err(e) => format!("# cannot render the configuration: {e}\n"),
        }
    }

    /// A configured pool by name (`default` always exists after loading).
    pub fn pool(&self, name: &str) -> Option<&PoolConfig> {
        self.pools.get(name)
    }

    /// A proxy route by name.
    pub fn proxy_route(&self, name: &str) -> Option<&ProxyConfig> {
        self.proxy.iter().find(|p| p.name == name)
    }

    /// The health check pool `name` runs: its own `[pools.NAME.health]`, else
    /// [`Config::default_health`], else none. A pool configured in code (not read from a
    /// file) with a check other than `none` counts as having its own.
    pub fn health_of(&self, name: &str) -> HealthConfig {
        match self.pools.get(name) {
            Some(pc) if pc.health_set || pc.health.kind != HealthKind::None => pc.health.clone(),
            _ => self.default_health.clone().unwrap_or_default(),
        }
    }
}

/// A URL with its password (if any) replaced by `****`: store URLs may carry credentials.
fn mask_url_password(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("****"));
            }
            u.to_string()
        }
        Err(_) => "(hidden: not a parseable URL)".to_string(),
    }
}

/// A client key and what it may do (DESIGN §9). In the file either a bare string (every
/// pool, no name) or a table `{ key = "…", name = "svc-a", pools = ["wopan"], report_by_id =
/// false }`. Logs, metrics and events name the key by `name` (or `key-N`), never its value.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientKey {
    pub key: Secret,
    /// What logs name it by; `key-N` (its position, from 1) when unset.
    pub name: String,
    /// The pools it may lease from, report on and read; `None` = every pool.
    pub pools: Option<Vec<String>>,
    /// May report by token id or value (the seed's form) instead of by lease.
    pub report_by_id: bool,
}

impl ClientKey {
    /// A key for every pool, named `key-{n}`.
    pub fn bare(key: &str, n: usize) -> ClientKey {
        ClientKey {
            key: Secret::new(key),
            name: format!("key-{n}"),
            pools: None,
            report_by_id: false,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ClientKeyForm {
    Bare(String),
    Table(ClientKeyTable),
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ClientKeyTable {
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pools: Option<Vec<String>>,
    #[serde(default)]
    report_by_id: bool,
}

impl Serialize for ClientKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ClientKeyTable {
            key: self.key.masked(),
            name: Some(self.name.clone()),
            pools: self.pools.clone(),
            report_by_id: self.report_by_id,
        }
        .serialize(s)
    }
}

/// A listen address from `IP:PORT` or `HOST:PORT`.
fn addr_from<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    tokenlb_listen::parse_addr(&text).map_err(serde::de::Error::custom)
}

/// Networks from strings: CIDRs or single addresses.
fn nets_from<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|v| load::parse_net(v.trim()).map_err(serde::de::Error::custom))
        .collect()
}

/// Deserializes the list, naming unnamed keys by position.
fn client_keys_from<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ClientKey>, D::Error> {
    let forms = Vec::<ClientKeyForm>::deserialize(d).map_err(|_| {
        serde::de::Error::custom(
            "each client key must be a string or a table { key, name, pools, report_by_id }",
        )
    })?;
    Ok(forms
        .into_iter()
        .enumerate()
        .map(|(i, form)| match form {
            ClientKeyForm::Bare(key) => ClientKey::bare(&key, i + 1),
            ClientKeyForm::Table(t) => ClientKey {
                key: Secret::new(t.key),
                name: t.name.unwrap_or_else(|| format!("key-{}", i + 1)),
                pools: t.pools,
                report_by_id: t.report_by_id,
            },
        })
        .collect())
}

/// Logging settings. The CLI applies them; `RUST_LOG` overrides `level` when set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `human` or `json`. `TOKENLB_LOG_FORMAT`, `--log-format`.
    pub format: LogFormat,
    /// A tracing filter: `info`, `debug`, `tokenlb_manager=debug,info`… `TOKENLB_LOG_LEVEL`,
    /// `--log-level`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            level: "info".to_string(),
        }
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "human" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "unknown log format {other:?} (expected human or json)"
            )),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Human => "human",
            LogFormat::Json => "json",
        })
    }
}

/// Admin access (DESIGN §3). Secrets left unset are generated on first start into 0600
/// files in the data dir by the manager.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// UI user name. `admin`, `TOKENLB_ADMIN_USER`.
    pub user: String,
    /// UI password (at least 8 characters); only its argon2 hash is stored.
    /// `TOKENLB_ADMIN_PASSWORD`; else generated into `data_dir/admin-password`.
    #[serde(with = "secret_serde::option")]
    pub password: Option<Secret>,
    /// Admin API key (at least 16 characters). `TOKENLB_ADMIN_KEY`; else generated into
    /// `data_dir/admin-key`.
    #[serde(with = "secret_serde::option")]
    pub key: Option<Secret>,
    /// Idle UI sessions end after this many minutes. 30.
    pub session_idle_minutes: u64,
    /// Failed logins per client address within `login_window_s` before 429. 5.
    pub login_max_failures: u32,
    /// Window of the login failure count, seconds. 300.
    pub login_window_s: u64,
    /// Mark the session cookie `Secure` (set true behind TLS). false.
    pub cookie_secure: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            user: "admin".to_string(),
            password: None,
            key: None,
            session_idle_minutes: 30,
            login_max_failures: 5,
            login_window_s: 300,
            cookie_secure: false,
        }
    }
}

/// A pool's policy when it is built from scratch (used for the implicit `default` pool).
pub(crate) fn policy_with(strategy: Strategy) -> Policy {
    Policy {
        strategy,
        ..Policy::default()
    }
}

/// Serde helpers: secrets deserialize from plain strings and serialize masked.
mod secret_serde {
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};
        use tokenlb_core::Secret;

        pub fn serialize<S: Serializer>(v: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(secret) => s.serialize_some(&secret.masked()),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
            Ok(Option::<String>::deserialize(d)?.map(Secret::new))
        }
    }
}
