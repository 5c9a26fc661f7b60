//! `[pools.NAME]` (a pool's [`Policy`]) and `[pools.NAME.health]` (its health check).
//!
//! The policy's fields sit directly in the pool table, next to the `health` sub-table. Serde's
//! `flatten` cannot be combined with `deny_unknown_fields` (unknown keys would be dropped
//! silently), so the pool table is read by hand: `health` goes to [`HealthConfig`] in place
//! (keeping exact error positions), everything else is collected and handed to `Policy`, whose
//! own `deny_unknown_fields` catches typos.

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use tokenlb_core::Policy;

/// One pool: its policy and its health check.
#[derive(Clone, Debug, Default)]
pub struct PoolConfig {
    /// Strategy, failure thresholds, cooling, leases (tokenlb_core::Policy).
    pub policy: Policy,
    /// How tokens of this pool are probed.
    pub health: HealthConfig,
    /// The file has a `[pools.NAME.health]` table for it. Without one the pool takes
    /// [`Config::default_health`](super::Config::default_health) (`tokenlb up`: Wopan).
    pub health_set: bool,
}

/// Equal settings are equal configurations, however they were written.
impl PartialEq for PoolConfig {
    fn eq(&self, other: &Self) -> bool {
        self.policy == other.policy && self.health == other.health
    }
}

/// What kind of probe checks a token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthKind {
    /// No probes: cooling ends by time, invalid tokens wait for an admin or a refresh.
    #[default]
    None,
    /// An HTTP request carrying the token; the expected status means healthy.
    Http,
    /// Wopan's AppQueryUser (and optionally a root listing).
    Wopan,
}

/// `[pools.NAME.health]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// `none`, `http` or `wopan`. none.
    pub kind: HealthKind,
    /// HTTP method of an `http` probe. GET.
    pub method: String,
    /// URL of an `http` probe (required for `http`).
    pub url: Option<String>,
    /// Header that carries the token. Authorization.
    pub header: String,
    /// Header value; `{token}` is replaced by the token. "Bearer {token}".
    pub header_format: String,
    /// Status that means healthy. 200.
    pub expect_status: u16,
    /// Probe cooling/invalid tokens at most this often, seconds. 30.
    pub probe_interval_s: u64,
    /// Check every token this often, seconds; 0 = off. 0.
    pub sweep_interval_s: u64,
    /// Give up on a probe after this long, ms. 5000.
    pub timeout_ms: u64,
    /// Wopan API base URL for `wopan` probes. https://panservice.mail.wo.cn
    pub wopan_base_url: String,
    /// `wopan` probes also list the root folder. false.
    pub wopan_deep: bool,
    /// Family id whose root the deep `wopan` probe lists; unset = the personal space. unset.
    pub wopan_family_id: Option<u64>,
    /// `wopan` pools: refresh a token that has a refresh token this many seconds before its
    /// `expires_at` (Wopan web tokens live 7 days); 0 = only when the upstream rejects it.
    /// 86400.
    pub refresh_before_s: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            kind: HealthKind::None,
            method: "GET".to_string(),
            url: None,
            header: "Authorization".to_string(),
            header_format: "Bearer {token}".to_string(),
            expect_status: 200,
            probe_interval_s: 30,
            sweep_interval_s: 0,
            timeout_ms: 5000,
            wopan_base_url: "https://panservice.mail.wo.cn".to_string(),
            wopan_deep: false,
            wopan_family_id: None,
            refresh_before_s: 86_400,
        }
    }
}

impl<'de> Deserialize<'de> for PoolConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(PoolVisitor)
    }
}

struct PoolVisitor;

impl<'de> Visitor<'de> for PoolVisitor {
    type Value = PoolConfig;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a pool table: policy settings and an optional [health] table")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PoolConfig, A::Error> {
        let mut health = None;
        let mut policy = toml::Table::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "health" {
                if health.is_some() {
                    return Err(de::Error::duplicate_field("health"));
                }
                health = Some(map.next_value::<HealthConfig>()?);
            } else {
                let value = map.next_value::<toml::Value>()?;
                policy.insert(key, value);
            }
        }
        let policy = Policy::deserialize(toml::Value::Table(policy.clone())).map_err(|e| {
            // Name the key at fault (the loader then points at its line, not the table's).
            let culprit = policy.iter().find(|(k, v)| {
                let one = toml::Table::from_iter([((*k).clone(), (*v).clone())]);
                Policy::deserialize(toml::Value::Table(one)).is_err()
            });
            match culprit {
                Some((k, _)) => de::Error::custom(format!("`{k}`: {}", e.message().trim_end())),
                None => de::Error::custom(e.message().trim_end()),
            }
        })?;
        Ok(PoolConfig {
            policy,
            health_set: health.is_some(),
            health: health.unwrap_or_default(),
        })
    }
}

impl Serialize for PoolConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Flat<'a> {
            #[serde(flatten)]
            policy: &'a Policy,
            health: &'a HealthConfig,
        }
        Flat {
            policy: &self.policy,
            health: &self.health,
        }
        .serialize(s)
    }
}
