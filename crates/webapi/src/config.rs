//! The web API's configuration: one struct with safe defaults, checked once at start.

use std::path::PathBuf;
use std::time::Duration;
use tokenlb_core::{Secret, Strategy};
use tokenlb_wopan::Space;

/// Longest a download link is cached, whatever the configuration says: links expire
/// upstream at a time nobody documents (research notes §9).
pub const MAX_LINK_TTL: Duration = Duration::from_secs(60);

/// Everything `tokenlb webapi` can be told.
#[derive(Clone, Debug)]
pub struct WebapiConfig {
    /// The manager's base URL (`http://127.0.0.1:8000`).
    pub manager_url: String,
    /// Client key for the manager's get/report routes.
    pub client_key: Option<Secret>,
    /// Pool to lease Wopan tokens from.
    pub pool: String,
    /// Strategy to ask the manager for (`None` = the pool's default).
    pub strategy: Option<Strategy>,
    /// Personal space or a family space by id.
    pub space: Space,
    /// Wopan dispatcher base URL (tests point it at the emulator).
    pub wopan_base_url: String,
    /// Directory for the listing cache (`<data_dir>/webapi-cache`).
    pub data_dir: PathBuf,
    /// How long a cached listing is fresh enough to answer without asking Wopan when the
    /// request does not say `realtime=` (30 min, as AList).
    pub cache_ttl: Duration,
    /// How long a download link is reused (at most [`MAX_LINK_TTL`]).
    pub link_ttl: Duration,
    /// Attempts per upstream operation, each on another token (first included).
    pub max_attempts: u32,
    /// Time budget for one upstream operation over all its attempts.
    pub retry_budget: Duration,
    /// Timeout of one Wopan call.
    pub upstream_timeout: Duration,
    /// How long to keep using cached tokens while the manager is unreachable.
    pub grace_period: Duration,
    /// How often to try the manager again while it is unreachable.
    pub manager_probe_interval: Duration,
    /// `pageSize` of Wopan listings.
    pub page_size: u32,
    /// The key the write routes require (DESIGN §11); `None`: read from, or generated into,
    /// `<data_dir>/webapi-key`.
    pub api_key: Option<Secret>,
    /// Largest upload accepted (`Content-Length`), bytes.
    pub max_upload_bytes: u64,
    /// How often an upload renews the lease of the token it holds.
    pub lease_renew_every: Duration,
    /// How far each renewal moves the lease's deadline.
    pub lease_extend: Duration,
    /// Names besides its own the `Host` header may carry (DESIGN §9); `"*"` = any.
    pub allowed_hosts: Vec<String>,
    /// Connections open at once; more are closed at accept.
    pub max_connections: usize,
}

impl WebapiConfig {
    /// Defaults: pool `default`, personal space, the real Wopan service, `./data`, 30 min
    /// listing TTL, 30 s link TTL, 3 attempts in 30 s, 15 s per Wopan call, 5 min grace.
    pub fn new(manager_url: impl Into<String>) -> Self {
        WebapiConfig {
            manager_url: manager_url.into(),
            client_key: None,
            pool: "default".into(),
            strategy: None,
            space: Space::Personal,
            wopan_base_url: tokenlb_wopan::client::DEFAULT_BASE_URL.into(),
            data_dir: PathBuf::from("./data"),
            cache_ttl: Duration::from_secs(30 * 60),
            link_ttl: Duration::from_secs(30),
            max_attempts: 3,
            retry_budget: Duration::from_secs(30),
            upstream_timeout: Duration::from_secs(15),
            grace_period: Duration::from_secs(300),
            manager_probe_interval: Duration::from_secs(2),
            page_size: 100,
            api_key: None,
            max_upload_bytes: 64 * 1024 * 1024 * 1024,
            lease_renew_every: Duration::from_secs(60),
            lease_extend: Duration::from_secs(300),
            allowed_hosts: Vec::new(),
            max_connections: tokenlb_listen::MAX_CONNECTIONS,
        }
    }

    /// Checks the values; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.link_ttl > MAX_LINK_TTL {
            return Err(format!(
                "link TTL is {} s; download links may be cached for at most {} s",
                self.link_ttl.as_secs(),
                MAX_LINK_TTL.as_secs()
            ));
        }
        if self.page_size == 0 || self.page_size > 1000 {
            return Err("page size must be between 1 and 1000".into());
        }
        if let Space::Family { family_id } = &self.space {
            if family_id.is_empty() || !family_id.bytes().all(|b| b.is_ascii_digit()) {
                return Err("family id must be a number (Wopan's familyId)".into());
            }
        }
        if self.upstream_timeout.is_zero() {
            return Err("upstream timeout must be more than zero".into());
        }
        if self
            .api_key
            .as_ref()
            .is_some_and(|k| k.expose().trim().len() < 16)
        {
            return Err("the web API key must have at least 16 characters".into());
        }
        if !(16..=1 << 20).contains(&self.max_connections) {
            return Err("max connections must be between 16 and 1048576".into());
        }
        if self.lease_renew_every.is_zero() || self.lease_extend < self.lease_renew_every {
            return Err("lease renewal must be more than zero and extend at least as far".into());
        }
        Ok(())
    }

    /// The cache's name for the space (`personal`, `family-<id>`).
    pub fn space_key(&self) -> String {
        match &self.space {
            Space::Personal => "personal".into(),
            Space::Family { family_id } => format!("family-{family_id}"),
        }
    }

    /// The configuration of the token client this service uses.
    pub fn client_config(&self) -> tokenlb_client::ClientConfig {
        let mut c = tokenlb_client::ClientConfig::new(self.manager_url.clone());
        c.client_key = self.client_key.clone();
        c.pool = self.pool.clone();
        c.strategy = self.strategy;
        c.max_attempts = self.max_attempts;
        c.retry_budget = self.retry_budget;
        c.attempt_timeout = self.upstream_timeout + Duration::from_secs(1);
        c.grace_period = self.grace_period;
        c.probe_interval = self.manager_probe_interval;
        c
    }

    /// The configuration of the Wopan client.
    pub fn wopan_config(&self) -> tokenlb_wopan::ClientConfig {
        tokenlb_wopan::ClientConfig {
            base_url: self.wopan_base_url.clone(),
            timeout: self.upstream_timeout,
            page_size: self.page_size,
            ..tokenlb_wopan::ClientConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_limits_hold() {
        let c = WebapiConfig::new("http://127.0.0.1:8000");
        assert!(c.validate().is_ok());
        assert_eq!(c.space_key(), "personal");
        let mut c2 = c.clone();
        c2.link_ttl = Duration::from_secs(61);
        assert!(c2.validate().unwrap_err().contains("60"));
        let mut c3 = c;
        c3.space = Space::Family {
            family_id: "x1".into(),
        };
        assert!(c3.validate().is_err());
        c3.space = Space::Family {
            family_id: "9263097".into(),
        };
        assert_eq!(c3.space_key(), "family-9263097");
    }
}
