//! A leased token, as the manager hands it out (or as the cache stands in for it).
//!
//! The manager's `GET /api/token/get` answer is parsed leniently (the lease id may be a
//! number or a string; it is sent back exactly as received). The secret lives in a
//! [`Secret`], so printing a [`Lease`] or a [`LeasedToken`] never shows it.

use serde::Deserialize;
use tokenlb_core::{Secret, TokenId};

/// Where a lease came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseSource {
    /// Handed out by the manager, with a lease id to report against.
    Manager,
    /// From the client's cache of last-known good tokens while the manager is unreachable;
    /// its report is queued and sent by token id when the manager is back.
    Cache,
}

/// The token part of a lease: what the caller's operation needs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct LeasedToken {
    /// The token's public id.
    pub id: TokenId,
    /// Its display name.
    pub name: String,
    /// Its pool.
    pub pool: String,
    /// The secret to send upstream (`secret.expose()`); redacted when printed.
    pub secret: Secret,
    /// Manager or cache.
    pub source: LeaseSource,
}

/// A lease: a token plus what is needed to report its outcome.
#[derive(Clone, Debug)]
pub struct Lease {
    pub(crate) token: LeasedToken,
    /// The manager's lease id exactly as it sent it (number or string); `None` for a cached
    /// token.
    pub(crate) lease_id: Option<serde_json::Value>,
    /// The manager's `lease_expires_at`, as sent (RFC 3339 or epoch ms), if any.
    pub(crate) expires_at: Option<String>,
}

impl Lease {
    /// The leased token.
    pub fn token(&self) -> &LeasedToken {
        &self.token
    }

    /// The token's public id.
    pub fn token_id(&self) -> &TokenId {
        &self.token.id
    }

    /// The token's name.
    pub fn name(&self) -> &str {
        &self.token.name
    }

    /// The secret to send upstream.
    pub fn secret(&self) -> &Secret {
        &self.token.secret
    }

    /// The manager's lease id as text, if this lease came from the manager.
    pub fn lease_id(&self) -> Option<String> {
        self.lease_id.as_ref().map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    /// When the manager closes the lease as `unknown` if it is not reported, as it said.
    pub fn expires_at(&self) -> Option<&str> {
        self.expires_at.as_deref()
    }

    /// True when the token came from the cache because the manager was unreachable.
    pub fn is_cached(&self) -> bool {
        self.token.source == LeaseSource::Cache
    }
}

/// The manager's `GET /api/token/get` answer (DESIGN §3).
#[derive(Deserialize)]
pub(crate) struct GetAnswer {
    pub token: String,
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub pool: Option<String>,
    pub lease: serde_json::Value,
    #[serde(default)]
    pub lease_expires_at: Option<serde_json::Value>,
}

impl GetAnswer {
    pub(crate) fn into_lease(self, default_pool: &str) -> Result<Lease, String> {
        if self.token.is_empty() || self.id.is_empty() {
            return Err("the lease answer has an empty token or id".into());
        }
        if !(self.lease.is_string() || self.lease.is_number()) {
            return Err("the lease id is neither a string nor a number".into());
        }
        let expires_at = self.lease_expires_at.and_then(|v| match v {
            serde_json::Value::String(s) => Some(s),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        });
        let name = self.name.unwrap_or_else(|| self.id.clone());
        Ok(Lease {
            token: LeasedToken {
                id: TokenId(self.id),
                name,
                pool: self.pool.unwrap_or_else(|| default_pool.to_string()),
                secret: Secret::new(self.token),
                source: LeaseSource::Manager,
            },
            lease_id: Some(self.lease),
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numeric_and_string_lease_ids_and_hides_the_secret() {
        let json = r#"{"token":"c3f0362b-0000-4997-a9c2-0478702a5fea","id":"t_1","name":"main",
            "pool":"default","lease":42,"lease_expires_at":"2026-01-01T00:00:00Z"}"#;
        let lease = serde_json::from_str::<GetAnswer>(json)
            .unwrap()
            .into_lease("default")
            .unwrap();
        assert_eq!(lease.lease_id().as_deref(), Some("42"));
        assert_eq!(lease.name(), "main");
        assert!(!format!("{lease:?}").contains("0000-4997"));
        let json = r#"{"token":"abc","id":"t_2","lease":"l-9"}"#;
        let lease = serde_json::from_str::<GetAnswer>(json)
            .unwrap()
            .into_lease("p")
            .unwrap();
        assert_eq!(lease.lease_id().as_deref(), Some("l-9"));
        assert_eq!(lease.token().pool, "p");
        let bad = r#"{"token":"abc","id":"t_2","lease":{}}"#;
        assert!(serde_json::from_str::<GetAnswer>(bad)
            .unwrap()
            .into_lease("p")
            .is_err());
    }
}
